//! Shared by the sample buildpack, sample app and debian stack tests: the apps in `test-apps/`
//! with their smoke checks, a plain HTTP GET, and the debian stack built once per machine
//! (root filesystems cached under `${BUILDPOD_CACHE:-$HOME/.cache/buildpod}/stacks/debian`).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn buildpack_dir(name: &str) -> PathBuf {
    repo().join("images/buildpacks").join(name)
}

/// The sample buildpacks with a `bin/` (the composite `samples` has none).
pub const BUILDPACKS: &[&str] = &["nodejs", "python", "go", "procfile", "static"];

/// `test-apps/<app>/smoke.toml` (format: test-apps/README.md).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    pub buildpack: String,
    pub path: String,
    pub body_contains: String,
    #[serde(default = "ok")]
    pub status: u16,
    pub process: Option<String>,
}

fn ok() -> u16 {
    200
}

/// Every app in `test-apps/` (a directory with a smoke.toml), sorted by name.
pub fn apps() -> Vec<(String, PathBuf, Smoke)> {
    let mut out = Vec::new();
    for e in fs::read_dir(repo().join("test-apps")).unwrap() {
        let dir = e.unwrap().path();
        let smoke = dir.join("smoke.toml");
        if !smoke.is_file() {
            continue;
        }
        let s: Smoke = toml::from_str(&fs::read_to_string(&smoke).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", smoke.display()));
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, dir, s));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port (HTTP/1.0, no keep-alive): (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    Ok((status, body.to_string()))
}

/// Poll until the app answers `smoke` on `port` (or `alive` says it stopped, or 60 s pass);
/// returns the last response or error, for the assertion.
pub fn wait_smoke(
    port: u16,
    smoke: &Smoke,
    mut alive: impl FnMut() -> bool,
) -> Result<(u16, String), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Err("never tried".to_string());
    while Instant::now() < deadline {
        last = http_get(port, &smoke.path).map_err(|e| e.to_string());
        if matches!(&last, Ok((code, _)) if *code == smoke.status) {
            return last;
        }
        if !alive() {
            return Err(format!("the app exited; last answer: {last:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

/// True when this process may debootstrap and chroot.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why the debian stack cannot be built here, if it cannot.
pub fn debian_stack_unavailable() -> Option<String> {
    if !is_root() {
        return Some("needs root (debootstrap, chroot)".into());
    }
    for tool in ["debootstrap", "unshare", "chroot", "skopeo", "umoci"] {
        if which(tool).is_none() {
            return Some(format!("{tool} is not installed (ci/test installs it)"));
        }
    }
    None
}

/// `tool` on PATH or in /usr/sbin, /sbin (chroot, debootstrap: root's tools).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// `buildpod stack debian BUILD RUN [extra]` with the machine's cache; (build, run) digests.
pub fn build_debian_stack(build: &str, run: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_buildpod"))
        .current_dir(repo())
        .args(["stack", "debian", build, run, "--log-level", "warn"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "buildpod stack debian: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} digest in {stdout}"))
            .to_string()
    };
    (digest("build"), digest("run"))
}

/// Copy a directory tree (modes kept), as `cp -a`.
pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}
