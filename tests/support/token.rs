//! A bearer-token server for distribution's `auth.token`: checks basic credentials and issues
//! ES256 JWTs whose `x5c` header carries the signing certificate (the registry trusts it via
//! `rootcertbundle`). Records the scopes it was asked for.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::registry::TokenAuth;
use super::tools;

pub const SERVICE: &str = "buildpod-test-registry";
pub const ISSUER: &str = "buildpod-test-issuer";

pub struct TokenServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    cert_pem: PathBuf,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    pass: String,
}

impl TokenServer {
    pub fn start(user: &str, pass: &str) -> TokenServer {
        tools::require("openssl");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        tools::run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{d}/key.pem"),
                "-out",
                &format!("{d}/cert.pem"),
                "-days",
                "2",
                "-subj",
                "/CN=buildpod-token-signer",
            ],
        );
        tools::run(
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &format!("{d}/key.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("{d}/key.p8"),
            ],
        );
        tools::run(
            "openssl",
            &[
                "x509",
                "-in",
                &format!("{d}/cert.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("{d}/cert.der"),
            ],
        );
        let p8 = std::fs::read(format!("{d}/key.p8")).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &p8, &SystemRandom::new())
                .unwrap();
        let signer = Arc::new(Signer {
            key,
            cert_der: std::fs::read(format!("{d}/cert.der")).unwrap(),
            user: user.to_string(),
            pass: pass.to_string(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s2, r2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).ok();
                        let _ = serve(conn, &signer, &r2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TokenServer {
            addr,
            stop,
            thread: Some(thread),
            requests,
            cert_pem: dir.path().join("cert.pem"),
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn auth(&self) -> TokenAuth {
        TokenAuth {
            realm: self.realm(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            rootcertbundle: self.cert_pem.clone(),
        }
    }

    /// Query strings of the token requests received.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn serve(conn: TcpStream, signer: &Signer, requests: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line.split(' ').nth(1).unwrap_or("").to_string();
    let mut auth = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            }
        }
    }
    let query = target
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    requests.lock().unwrap().push(query.clone());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", signer.user, signer.pass))
    );
    let mut out = conn;
    if auth.as_deref() != Some(expected.as_str()) {
        let body = r#"{"details":"invalid credentials"}"#;
        return write!(out, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    }
    // Grant exactly the scopes asked for.
    let mut access = Vec::new();
    for kv in query.split('&') {
        if let Some(scope) = kv.strip_prefix("scope=") {
            let scope = scope
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/");
            let parts: Vec<&str> = scope.splitn(3, ':').collect();
            if let [typ, name, actions] = parts.as_slice() {
                access.push(serde_json::json!({"type": typ, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}));
            }
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(&signer.cert_der)]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": signer.user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = signer
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}
