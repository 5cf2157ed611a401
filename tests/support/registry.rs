//! A real `docker-registry` (distribution 2.8) on 127.0.0.1 with its own config, storage and,
//! optionally, htpasswd auth or TLS. Killed by PID on drop; its files live in a tempdir.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools;

#[derive(Debug, Clone, Default)]
pub struct RegistryOpts {
    /// `(user, password)`: enables htpasswd (bcrypt) auth; anonymous requests get 401.
    pub htpasswd: Option<(String, String)>,
    /// Serve HTTPS with a server cert for IP 127.0.0.1 signed by a freshly generated CA.
    pub tls: bool,
    /// Bearer-token auth (distribution's `auth.token`) against a token server.
    pub token: Option<TokenAuth>,
}

/// distribution's token-auth settings.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificate whose key signs the tokens.
    pub rootcertbundle: PathBuf,
}

pub struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    opts: RegistryOpts,
}

impl Registry {
    pub fn plain() -> Registry {
        Registry::start(RegistryOpts::default())
    }

    pub fn with_auth(user: &str, pass: &str) -> Registry {
        Registry::start(RegistryOpts {
            htpasswd: Some((user.to_string(), pass.to_string())),
            ..Default::default()
        })
    }

    pub fn tls() -> Registry {
        Registry::start(RegistryOpts {
            tls: true,
            ..Default::default()
        })
    }

    pub fn start(opts: RegistryOpts) -> Registry {
        tools::require("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("buildpod-registry-")
            .tempdir()
            .expect("create registry tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("data")).expect("create registry data dir");
        if opts.tls {
            gen_tls(root);
        }
        if let Some((user, pass)) = &opts.htpasswd {
            tools::require("htpasswd");
            let entry = tools::run("htpasswd", &["-Bbn", user, pass]);
            fs::write(root.join("htpasswd"), entry).expect("write htpasswd");
        }
        // The port comes from binding :0 and releasing it, so another process may grab it
        // before the registry does; retry on a fresh port when that happens.
        let log_path = root.join("registry.log");
        let mut last_log = String::new();
        for _ in 0..5 {
            let addr = free_port();
            fs::write(root.join("config.yml"), config_yaml(root, addr, &opts))
                .expect("write registry config");
            let log = fs::File::create(&log_path).expect("create registry log");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(root.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            match wait_ready(&mut child, addr, &opts) {
                Ok(()) => {
                    return Registry {
                        child,
                        addr,
                        dir,
                        opts,
                    }
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = fs::read_to_string(&log_path).unwrap_or_default();
                    if !last_log.contains("address already in use") {
                        panic!("docker-registry did not become ready on {addr} ({why}); log:\n{last_log}");
                    }
                }
            }
        }
        panic!("docker-registry could not bind a free port; last log:\n{last_log}");
    }

    fn kill(&mut self) {
        // SIGKILL: storage is a tempdir, so a graceful shutdown (~1 s) buys nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, for references like `docker://{host}/repo:tag`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(user, password)` when auth is on.
    pub fn creds(&self) -> Option<(String, String)> {
        self.opts.htpasswd.clone()
    }

    /// PEM of the CA that signed the server cert (TLS mode).
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.cert_dir().map(|d| d.join("ca.crt"))
    }

    /// Directory holding only `ca.crt`, for `skopeo --cert-dir` / `--dest-cert-dir` (TLS mode).
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.opts.tls.then(|| self.dir.path().join("certs.d"))
    }

    /// Root of the registry's filesystem storage.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Number of blobs in storage (`docker/registry/v2/blobs/sha256/*/*/data`).
    pub fn blob_count(&self) -> usize {
        let blobs = self.storage_dir().join("docker/registry/v2/blobs/sha256");
        let Ok(prefixes) = fs::read_dir(&blobs) else {
            return 0;
        };
        prefixes
            .flatten()
            .filter_map(|p| fs::read_dir(p.path()).ok())
            .flat_map(|d| d.flatten())
            .filter(|b| b.path().join("data").is_file())
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls until the registry answers HTTP as expected for its mode.
fn wait_ready(child: &mut Child, addr: SocketAddr, opts: &RegistryOpts) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let authed = opts.htpasswd.is_some() || opts.token.is_some();
    let want = match (authed, opts.tls) {
        // Go answers plain HTTP on a TLS port with "HTTP/1.0 400 Bad Request": it is serving.
        (_, true) => "HTTP/1.0 400",
        (true, false) => "HTTP/1.1 401",
        (false, false) => "HTTP/1.1 200",
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        if probe(addr).is_some_and(|line| line.starts_with(want)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for `{want}`"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

/// Sends `GET /v2/` over plain TCP and returns the status line, if any.
fn probe(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines().next().map(str::to_string)
}

fn config_yaml(root: &Path, addr: SocketAddr, opts: &RegistryOpts) -> String {
    let r = root.display();
    let mut y = format!(
        "version: 0.1\n\
         log: {{level: info, fields: {{service: registry}}}}\n\
         storage:\n  filesystem: {{rootdirectory: {r}/data}}\n  delete: {{enabled: true}}\n\
         http:\n  addr: {addr}\n  secret: buildpod-test-secret\n  headers: {{X-Content-Type-Options: [nosniff]}}\n"
    );
    if opts.tls {
        y.push_str(&format!(
            "  tls: {{certificate: {r}/server.crt, key: {r}/server.key}}\n"
        ));
    }
    if let Some(t) = &opts.token {
        y.push_str(&format!(
            "auth:\n  token: {{realm: \"{}\", service: {}, issuer: {}, rootcertbundle: {}}}\n",
            t.realm,
            t.service,
            t.issuer,
            t.rootcertbundle.display()
        ));
    }
    if opts.htpasswd.is_some() {
        y.push_str(&format!(
            "auth:\n  htpasswd: {{realm: buildpod-test, path: {r}/htpasswd}}\n"
        ));
    }
    y
}

/// A CA and a server cert for IP 127.0.0.1 signed by it (EC P-256: fast to generate).
fn gen_tls(root: &Path) {
    tools::require("openssl");
    let certs = root.join("certs.d");
    fs::create_dir_all(&certs).expect("create certs.d");
    fs::write(
        root.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    let r = root.display();
    let ca = certs.join("ca.crt");
    let ca = ca.display();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    // No argument below contains spaces, so splitting on whitespace is safe (paths come from
    // tempfile, whose names have no spaces).
    for cmd in [
        format!(
            "req -x509 {ec} -keyout {r}/ca.key -out {ca} -days 3650 -subj /CN=buildpod-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
        format!("req {ec} -keyout {r}/server.key -out {r}/server.csr -subj /CN=127.0.0.1"),
        format!(
            "x509 -req -in {r}/server.csr -CA {ca} -CAkey {r}/ca.key -CAserial {r}/ca.srl \
             -CAcreateserial -days 3650 -extfile {r}/server.ext -out {r}/server.crt"
        ),
    ] {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        tools::run("openssl", &args);
    }
}
