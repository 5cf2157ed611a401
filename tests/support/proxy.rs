//! A TCP-level HTTP/1.1 proxy in front of a plain registry: records every request head and
//! injects faults. One request per connection (`Connection: close` is forced), so a response
//! ends at EOF and the proxy only has to pipe bytes after rewriting the head.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Request target as sent, including the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// First header value named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer `status` (e.g. 503) instead of forwarding, for the next `times` requests matching.
    Status {
        method: &'static str,
        path_contains: &'static str,
        status: u16,
        times: usize,
    },
    /// Forward the request but cut both connections after `after_bytes` bytes of the request
    /// body (as on the wire, chunk framing included), `times` times.
    DropRequestBody {
        method: &'static str,
        path_contains: &'static str,
        after_bytes: usize,
        times: usize,
    },
}

impl Fault {
    fn matches(&self, method: &str, path: &str) -> bool {
        let (m, p, times) = match self {
            Fault::Status {
                method,
                path_contains,
                times,
                ..
            }
            | Fault::DropRequestBody {
                method,
                path_contains,
                times,
                ..
            } => (method, path_contains, *times),
        };
        times > 0 && m.eq_ignore_ascii_case(method) && path.contains(p)
    }

    fn consume(&mut self) {
        match self {
            Fault::Status { times, .. } | Fault::DropRequestBody { times, .. } => *times -= 1,
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<Vec<Recorded>>,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, faults: Vec<Fault>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults),
            requests: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let _ = handle(conn, &shared);
                    });
                }
            })
        };
        Proxy {
            addr,
            shared,
            stop,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// All request heads seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests with this method (case-insensitive) whose path contains `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
            .count()
    }

    pub fn clear(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Adds faults after start (e.g. once setup traffic has passed).
    pub fn add_fault(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push(fault);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (head, rest) = match read_head(&mut client)? {
        Head::Http(head, rest) => (head, rest),
        Head::Closed => return Ok(()),
        // Clients that probe HTTPS first (skopeo with tls-verify=false) must get the registry's
        // own plain-HTTP answer at once, or they wait for a TLS handshake timeout.
        Head::NotHttp(bytes) => return pipe(client, TcpStream::connect(shared.upstream)?, &bytes),
    };
    let head_text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head_text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    shared.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
    });

    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let content_length: u64 = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    // A body that ends before the cut point cannot be cut: such a fault waits for a later request.
    let applies = |f: &Fault| match f {
        Fault::DropRequestBody { after_bytes, .. } => {
            chunked || content_length > *after_bytes as u64
        }
        Fault::Status { .. } => true,
    };
    let fault = {
        let mut faults = shared.faults.lock().unwrap();
        let found = faults
            .iter_mut()
            .find(|f| f.matches(&method, &path) && applies(f));
        found.map(|f| {
            f.consume();
            f.clone()
        })
    };
    if let Some(Fault::Status { status, .. }) = fault {
        return answer(client, status);
    }

    let mut out = format!("{request_line}\r\n");
    for (k, v) in &headers {
        let lk = k.to_ascii_lowercase();
        if lk != "connection" && lk != "keep-alive" && lk != "proxy-connection" {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");

    let mut upstream = TcpStream::connect(shared.upstream)?;
    upstream.write_all(out.as_bytes())?;

    if let Some(Fault::DropRequestBody { after_bytes, .. }) = fault {
        let mut sent = rest.len().min(after_bytes);
        upstream.write_all(&rest[..sent])?;
        let mut buf = [0u8; 16 * 1024];
        let mut tail = rest[..sent].to_vec();
        // A chunked body may end before the cut point; then the client waits for the answer.
        let ended = |t: &[u8]| chunked && t.ends_with(b"0\r\n\r\n");
        while sent < after_bytes && !ended(&tail) {
            let n = client.read(&mut buf[..(after_bytes - sent).min(16 * 1024)])?;
            if n == 0 {
                break;
            }
            upstream.write_all(&buf[..n])?;
            tail.extend_from_slice(&buf[..n]);
            tail.drain(..tail.len().saturating_sub(5));
            sent += n;
        }
        if !ended(&tail) {
            let _ = upstream.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        return pipe(client, upstream, &[]);
    }

    pipe(client, upstream, &rest)
}

/// Sends `rest` then pipes both ways until upstream closes (it does: `Connection: close`).
fn pipe(mut client: TcpStream, mut upstream: TcpStream, rest: &[u8]) -> io::Result<()> {
    upstream.write_all(rest)?;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let to_upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut upstream, &mut client);
    // The response is complete (upstream closed): unblock the request pipe too.
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = to_upstream.join();
    Ok(())
}

enum Head {
    /// The head (without the blank line) and any body bytes already read.
    Http(Vec<u8>, Vec<u8>),
    /// The peer closed before sending a full head.
    Closed,
    /// A TLS handshake: the bytes read so far.
    NotHttp(Vec<u8>),
}

/// Reads until the end of the request head.
fn read_head(s: &mut TcpStream) -> io::Result<Head> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            buf.truncate(i);
            return Ok(Head::Http(buf, rest));
        }
        if buf.first() == Some(&0x16) {
            return Ok(Head::NotHttp(buf));
        }
        if buf.len() > 256 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Answers with `status` and a registry-style error body, then drains what the client still
/// sends so that closing does not reset the connection before the client reads the answer.
fn answer(mut client: TcpStream, status: u16) -> io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    };
    let body = format!(
        r#"{{"errors":[{{"code":"UNAVAILABLE","message":"buildpod test proxy: injected {status}"}}]}}"#
    );
    write!(
        client,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let _ = io::copy(&mut client, &mut io::sink());
    Ok(())
}
