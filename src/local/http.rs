//! A minimal HTTP/1.1 server for the local runner's loopback endpoints (hand-written: the
//! registry clients in the pod first try TLS on every registry, and a plain server must answer
//! a TLS hello at once, as Go's net/http does, so they fall back to HTTP; `tiny_http` waits for
//! a request line instead). Keep-alive, Content-Length and chunked request bodies, one thread
//! per connection; responses always carry Content-Length.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct Request<'a> {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: &'a mut dyn Read,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
    pub len: u64,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Box::new(io::empty()),
            len: 0,
        }
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn body(mut self, body: Box<dyn Read + Send>, len: u64) -> Self {
        self.body = body;
        self.len = len;
        self
    }
    pub fn bytes(self, b: Vec<u8>) -> Self {
        let len = b.len() as u64;
        self.body(Box::new(io::Cursor::new(b)), len)
    }
}

pub type Handler = dyn Fn(&mut Request<'_>) -> Response + Send + Sync;

/// Serve `handler` on `listener` until `stop` is set (then one more connection wakes it).
pub fn serve(listener: TcpListener, handler: Arc<Handler>, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else { continue };
        let handler = Arc::clone(&handler);
        std::thread::spawn(move || {
            let _ = connection(stream, handler.as_ref());
        });
    }
}

fn connection(stream: TcpStream, handler: &Handler) -> io::Result<()> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first)? == 1 && first[0] == 0x16 {
        // A TLS handshake record: say so in plain HTTP, as Go's server does.
        let mut s = &stream;
        s.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )?;
        return Ok(());
    }
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = io::BufWriter::with_capacity(256 * 1024, stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Ok(());
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let close = get("connection").as_deref() == Some("close");
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let length: u64 = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let resp = {
            let mut body: Box<dyn Read + '_> = if chunked {
                Box::new(Chunked {
                    inner: &mut reader,
                    left: 0,
                    done: false,
                })
            } else {
                Box::new((&mut reader).take(length))
            };
            let mut req = Request {
                method: method.clone(),
                path,
                query,
                headers: headers.clone(),
                body: &mut body,
            };
            let resp = handler(&mut req);
            // Whatever the handler left unread, so the next request starts in the right place.
            io::copy(&mut body, &mut io::sink())?;
            resp
        };
        write!(
            writer,
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            resp.status,
            reason(resp.status),
            resp.len
        )?;
        for (k, v) in &resp.headers {
            write!(writer, "{k}: {v}\r\n")?;
        }
        if close {
            writer.write_all(b"Connection: close\r\n")?;
        }
        writer.write_all(b"\r\n")?;
        if method != "HEAD" {
            let mut body = resp.body.take(resp.len);
            io::copy(&mut body, &mut writer)?;
        }
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    }
}

/// A chunked request body.
struct Chunked<'a, R: BufRead> {
    inner: &'a mut R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                // Trailers until the empty line.
                loop {
                    let mut t = String::new();
                    if self.inner.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
    }
}
