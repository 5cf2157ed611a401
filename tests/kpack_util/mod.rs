//! Helpers for the kpack step tests: a temp root standing in for the pod's fixed paths, secret
//! volumes, running the real binary under a step's argv[0], and a small HTTP file server.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// A temp root with kpack's directories under it (`BUILDPOD_ROOT`).
pub struct Root {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
}

impl Root {
    pub fn new() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("kpack-root-")
            .tempdir()
            .unwrap();
        for d in [
            "workspace",
            "platform",
            "builder/home",
            "var/build-secrets",
            "projectMetadata",
            "registrySourcePullSecrets",
            "var/report",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        // HOME for the node keychain: empty, so nothing leaks in from the host.
        let home = dir.path().join("nodehome");
        std::fs::create_dir_all(&home).unwrap();
        Root { dir, home }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p.trim_start_matches('/'))
    }

    /// Create `/var/build-secrets/<name>` with `files`.
    pub fn secret(&self, name: &str, files: &[(&str, &str)]) {
        let d = self.path("var/build-secrets").join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (f, c) in files {
            std::fs::write(d.join(f), c).unwrap();
        }
    }

    /// Run the binary as `argv0` with `args` and `env`, in this root.
    pub fn run(&self, argv0: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = Command::new(env!("CARGO_BIN_EXE_buildpod"));
        c.arg0(argv0)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("BUILDPOD_ROOT", self.dir.path());
        for (k, v) in env {
            c.env(k, v);
        }
        Out(c.output().unwrap())
    }
}

pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// A tiny HTTP/1.0 server on 127.0.0.1 serving fixed bodies, optionally requiring an exact
/// `Authorization` header, recording the headers it saw.
pub struct HttpServer {
    addr: SocketAddr,
    pub seen_auth: Arc<Mutex<Vec<Option<String>>>>,
}

impl HttpServer {
    pub fn start(files: HashMap<String, Vec<u8>>, auth: Option<String>) -> HttpServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let files = Arc::new(files);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (files, auth, seen) = (Arc::clone(&files), auth.clone(), Arc::clone(&seen2));
                std::thread::spawn(move || serve(s, &files, auth.as_deref(), &seen));
            }
        });
        HttpServer {
            addr,
            seen_auth: seen,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

fn serve(
    s: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    auth: Option<&str>,
    seen: &Mutex<Vec<Option<String>>>,
) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    let mut got_auth = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                got_auth = Some(v.trim().to_string());
            }
        }
    }
    seen.lock().unwrap().push(got_auth.clone());
    let mut w = s;
    let (status, body): (&str, Vec<u8>) = if auth.is_some() && got_auth.as_deref() != auth {
        ("401 Unauthorized", b"unauthorized\n".to_vec())
    } else {
        match files.get(path.trim_start_matches('/')) {
            Some(b) => ("200 OK", b.clone()),
            None => ("404 Not Found", b"404 page not found\n".to_vec()),
        }
    };
    let _ = write!(
        w,
        "HTTP/1.0 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(&body);
    let _ = w.flush();
}

/// A tar with `entries` (path, contents; a trailing `/` makes a directory; `-> target` a symlink).
pub fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in entries {
        let mut h = tar::Header::new_gnu();
        if let Some(target) = c.strip_prefix("-> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, p, target).unwrap();
        } else if p.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
            b.append_data(&mut h, p, std::io::empty()).unwrap();
        } else {
            h.set_size(c.len() as u64);
            h.set_mode(if p.ends_with(".sh") { 0o755 } else { 0o644 });
            b.append_data(&mut h, p, c.as_bytes()).unwrap();
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn read(p: &Path) -> String {
    let mut s = String::new();
    std::fs::File::open(p)
        .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
        .read_to_string(&mut s)
        .unwrap();
    s
}
