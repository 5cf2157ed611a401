//! The local runner's loopback HTTP server, so the build pod stays exactly a cluster's pod:
//! - `GET /source/<name>` serves the tarball of a `--path` source (the pod sees a blob source);
//! - `/v2/...` is a small OCI distribution registry over an OCI layout (`./out`), so the
//!   exporter pushes and completion reads as they would against any registry, and the result
//!   lands in the layout. Every repository maps to the one layout; a tag becomes the layout's
//!   ref name. Uploads stream to a temp file, hashed on the way, and are renamed into `blobs/`
//!   only when the digest matches.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use super::http::{self, Request, Response};
use crate::digest::Digest;
use crate::oci::layout::Layout;
use crate::oci::{BlobStore, RawManifest};

pub struct LocalServer {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct State {
    layout: Option<Layout>,
    uploads_dir: PathBuf,
    sources: HashMap<String, PathBuf>,
    uploads: Mutex<HashMap<String, Upload>>,
    next: AtomicU64,
}

struct Upload {
    path: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl LocalServer {
    /// Serve `sources` (name → file) and, when `layout` is given, a registry over it.
    /// `port`: the loopback port to prefer (0: any). A fixed port keeps the source URL, which
    /// `project-metadata.toml` and the image's labels record, and so the image digest, the same
    /// from build to build; when it is taken, any free port is used, with a warning.
    pub fn start(
        layout: Option<&Path>,
        work: &Path,
        sources: HashMap<String, PathBuf>,
        port: u16,
    ) -> Result<Self, String> {
        let layout = match layout {
            Some(p) => Some(Layout::create(p).map_err(|e| e.to_string())?),
            None => None,
        };
        let uploads_dir = work.join("uploads");
        std::fs::create_dir_all(&uploads_dir)
            .map_err(|e| format!("{}: {e}", uploads_dir.display()))?;
        let listener = match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => l,
            Err(e) if port != 0 => {
                tracing::warn!(
                    "local server: port {port}: {e}; using another (the image's source URL label will differ)"
                );
                TcpListener::bind("127.0.0.1:0").map_err(|e| format!("local server: {e}"))?
            }
            Err(e) => return Err(format!("local server: port {port}: {e}")),
        };
        let addr = listener
            .local_addr()
            .map_err(|e| format!("local server: {e}"))?;
        let state = Arc::new(State {
            layout,
            uploads_dir,
            sources,
            uploads: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<http::Handler> =
            Arc::new(move |req: &mut Request<'_>| handle(&state, req));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || http::serve(listener, handler, s));
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT`: a registry host (plain HTTP, as loopback registries may be).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn source_url(&self, name: &str) -> String {
        format!("http://{}/source/{name}", self.addr)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    Response::new(status)
        .header("Content-Type", "application/json")
        .bytes(body.into_bytes())
}

fn handle(state: &State, req: &mut Request<'_>) -> Response {
    let path = req.path.clone();
    if let Some(name) = path.strip_prefix("/source/") {
        return source(state, name, &req.method);
    }
    if path == "/v2/" || path == "/v2" {
        return Response::new(200).header("Docker-Distribution-API-Version", "registry/2.0");
    }
    match (&state.layout, path.strip_prefix("/v2/")) {
        (Some(layout), Some(rest)) => registry(state, layout, req, rest),
        _ => error(404, "NAME_UNKNOWN", "not found"),
    }
}

fn source(state: &State, name: &str, method: &str) -> Response {
    match (method, state.sources.get(name)) {
        ("GET" | "HEAD", Some(p)) => match std::fs::File::open(p) {
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                Response::new(200).body(Box::new(f), len)
            }
            Err(e) => error(500, "UNKNOWN", &e.to_string()),
        },
        _ => error(404, "NAME_UNKNOWN", "no such source"),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn registry(state: &State, layout: &Layout, req: &mut Request<'_>, rest: &str) -> Response {
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        return manifest(layout, req, repo, reference);
    }
    if let Some((repo, tail)) = rest.split_once("/blobs/uploads") {
        let id = tail.trim_start_matches('/').to_string();
        return upload(state, layout, req, repo, &id);
    }
    if let Some((_repo, digest)) = rest.rsplit_once("/blobs/") {
        let Ok(d) = digest.parse::<Digest>() else {
            return error(400, "DIGEST_INVALID", digest);
        };
        return match (
            layout.blob_size(&d),
            std::fs::File::open(layout.blob_path(&d)),
        ) {
            (Ok(Some(size)), Ok(f)) => Response::new(200)
                .header("Docker-Content-Digest", d.to_string())
                .header("Content-Type", "application/octet-stream")
                .body(Box::new(f), size),
            _ => error(404, "BLOB_UNKNOWN", digest),
        };
    }
    error(404, "NAME_UNKNOWN", rest)
}

fn manifest(layout: &Layout, req: &mut Request<'_>, repo: &str, reference: &str) -> Response {
    match req.method.as_str() {
        "GET" | "HEAD" => match layout.get_manifest(reference) {
            Ok(m) => Response::new(200)
                .header("Docker-Content-Digest", m.digest.to_string())
                .header("Content-Type", m.media_type.clone())
                .bytes(m.bytes),
            Err(_) => error(404, "MANIFEST_UNKNOWN", &format!("{repo}:{reference}")),
        },
        "PUT" => {
            let media_type = req.header("Content-Type").map(str::to_string);
            let mut bytes = Vec::new();
            // Manifests are small (registries cap them at 4 MiB).
            if req.body.take(4 << 20).read_to_end(&mut bytes).is_err() {
                return error(400, "MANIFEST_INVALID", "read error");
            }
            let m = match RawManifest::from_bytes(bytes, media_type.as_deref()) {
                Ok(m) => m,
                Err(e) => return error(400, "MANIFEST_INVALID", &e.to_string()),
            };
            let tags = if reference.contains(':') {
                Vec::new()
            } else {
                vec![reference.to_string()]
            };
            match layout.put_manifest(&m, &tags) {
                Ok(()) => Response::new(201)
                    .header("Docker-Content-Digest", m.digest.to_string())
                    .header("Location", format!("/v2/{repo}/manifests/{}", m.digest)),
                Err(e) => error(400, "MANIFEST_INVALID", &e.to_string()),
            }
        }
        _ => error(405, "UNSUPPORTED", "method"),
    }
}

fn upload(state: &State, layout: &Layout, req: &mut Request<'_>, repo: &str, id: &str) -> Response {
    let location = |id: &str| format!("/v2/{repo}/blobs/uploads/{id}");
    let query = req.query.clone();
    match (req.method.as_str(), id) {
        ("POST", "") => {
            if let Some(d) = query_param(&query, "mount").and_then(|d| d.parse::<Digest>().ok()) {
                if matches!(layout.blob_size(&d), Ok(Some(_))) {
                    return Response::new(201).header("Docker-Content-Digest", d.to_string());
                }
            }
            let id = format!(
                "{}-{}",
                std::process::id(),
                state.next.fetch_add(1, Ordering::SeqCst)
            );
            let path = state.uploads_dir.join(&id);
            if let Err(e) = std::fs::File::create(&path) {
                return error(500, "UNKNOWN", &e.to_string());
            }
            if let Ok(mut u) = state.uploads.lock() {
                u.insert(
                    id.clone(),
                    Upload {
                        path,
                        hasher: Sha256::new(),
                        size: 0,
                    },
                );
            }
            // A monolithic POST with ?digest= carries the whole blob.
            if let Some(d) = query_param(&query, "digest") {
                return finish(state, layout, req, &id, d);
            }
            Response::new(202)
                .header("Location", location(&id))
                .header("Range", "0-0")
                .header("Docker-Upload-UUID", id)
        }
        ("PATCH", id) => match append(state, req, id) {
            Ok(size) => Response::new(202)
                .header("Location", location(id))
                .header("Range", format!("0-{}", size.saturating_sub(1))),
            Err(r) => r,
        },
        ("PUT", id) => match query_param(&query, "digest") {
            Some(d) => finish(state, layout, req, id, d),
            None => error(400, "DIGEST_INVALID", "missing digest"),
        },
        _ => error(405, "UNSUPPORTED", "method"),
    }
}

/// Stream the request body onto the upload's file, hashing as it goes.
fn append(state: &State, req: &mut Request<'_>, id: &str) -> Result<u64, Response> {
    let mut up = {
        let mut map = state
            .uploads
            .lock()
            .map_err(|_| error(500, "UNKNOWN", "lock"))?;
        map.remove(id)
            .ok_or_else(|| error(404, "BLOB_UPLOAD_UNKNOWN", id))?
    };
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(&up.path)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = req.body.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            up.hasher.update(&buf[..n]);
            up.size += n as u64;
            f.write_all(&buf[..n])?;
        }
    })();
    let size = up.size;
    if let Ok(mut map) = state.uploads.lock() {
        map.insert(id.to_string(), up);
    }
    result.map_err(|e| error(500, "BLOB_UPLOAD_INVALID", &e.to_string()))?;
    Ok(size)
}

fn finish(
    state: &State,
    layout: &Layout,
    req: &mut Request<'_>,
    id: &str,
    digest: &str,
) -> Response {
    if let Err(r) = append(state, req, id) {
        return r;
    }
    let Some(up) = state.uploads.lock().ok().and_then(|mut m| m.remove(id)) else {
        return error(404, "BLOB_UPLOAD_UNKNOWN", id);
    };
    let got = format!("sha256:{}", hex::encode(up.hasher.finalize()));
    let want = match digest.parse::<Digest>() {
        Ok(d) if d.to_string() == got => d,
        _ => {
            let _ = std::fs::remove_file(&up.path);
            return error(
                400,
                "DIGEST_INVALID",
                &format!("{digest}: content is {got}"),
            );
        }
    };
    if let Err(e) = std::fs::rename(&up.path, layout.blob_path(&want)) {
        return error(500, "UNKNOWN", &e.to_string());
    }
    Response::new(201)
        .header("Docker-Content-Digest", want.to_string())
        .header("Location", format!("/v2/blobs/{want}"))
}
