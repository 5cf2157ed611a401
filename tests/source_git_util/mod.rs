//! Shared by the git source tests: a `git` runner for fixtures, a registry with a run image
//! (prepare checks it), and an OpenSSH `sshd` on 127.0.0.1 (its own config, host key and
//! authorized_keys, a non-default port, stopped by PID) with key pairs and a small bare repository.
//!
//! kpack always logs in as `git` over ssh, so sshd runs in a private mount namespace where a
//! bind-mounted `/etc/passwd` has a `git` account (uid 0, so sessions can read the tests' 0700
//! temp dirs; and `/run` is a tmpfs for sshd's privilege separation directory); nothing on the
//! host changes. Needs root. Include with `mod source_git_util;` next to `mod support;` and
//! `mod common;` (common_image.rs).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use buildpod::layer::Compression;
use buildpod::registry::{Client, ClientOptions, Repo};

use crate::support::registry::Registry;
use crate::support::tools;

/// Run git in `dir` (a fixed identity, no system config, HOME = `dir`); its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository `<t>/repos/app.git`: main (2 commits) and a tag on the first.
pub fn make_repo(t: &Path) -> (PathBuf, Vec<String>) {
    let work = t.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let mut commits = Vec::new();
    for i in 1..=2 {
        std::fs::write(work.join("version.txt"), format!("v{i}\n")).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", &format!("c{i}")]);
        commits.push(git(&work, &["rev-parse", "HEAD"]));
        if i == 1 {
            git(&work, &["tag", "v1"]);
        }
    }
    std::fs::create_dir_all(t.join("repos")).unwrap();
    git(t, &["clone", "-q", "--bare", "work", "repos/app.git"]);
    (t.join("repos/app.git"), commits)
}

/// An ed25519 key pair: (private key text, public key line).
pub fn keypair(dir: &Path, name: &str) -> (String, String) {
    let p = dir.join(name);
    tools::run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            name,
            "-f",
            p.to_str().unwrap(),
        ],
    );
    (
        std::fs::read_to_string(&p).unwrap(),
        std::fs::read_to_string(p.with_extension("pub")).unwrap(),
    )
}

pub struct Sshd {
    child: Child,
    pub port: u16,
    /// The server's host key line (`ssh-ed25519 AAAA... host`).
    pub host_key: String,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    pub fn start(authorized: &str) -> Sshd {
        tools::require("unshare");
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "sshd is required (apt-get install openssh-server)"
        );
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "sshd tests run as root");
        let dir = tempfile::Builder::new()
            .prefix("buildpod-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let (_, host_key) = keypair(d, "host_key");
        std::fs::write(d.join("authorized_keys"), authorized).unwrap();
        let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        if !passwd.ends_with('\n') {
            passwd.push('\n');
        }
        // uid 0 so the session can read the test's (0700) temp dirs.
        passwd.push_str(&format!("git:x:0:0:git:{}:/bin/sh\n", d.display()));
        std::fs::write(d.join("passwd"), passwd).unwrap();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            std::fs::write(
                d.join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                     AuthorizedKeysFile {d}/authorized_keys\nAllowUsers git\nPubkeyAuthentication yes\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                     StrictModes no\nPermitRootLogin prohibit-password\n\
                     SetEnv PATH=/usr/local/bin:/usr/bin:/bin\nLogLevel VERBOSE\n",
                    d = d.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let child = Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(
                    "mount -t tmpfs tmpfs /run && mkdir -m 0755 /run/sshd && \
                     mount --bind \"$1\" /etc/passwd && exec /usr/sbin/sshd -D -e -f \"$2\"",
                )
                .arg("sh")
                .arg(d.join("passwd"))
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut child = child;
            for _ in 0..100 {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        port,
                        host_key: host_key.trim().to_string(),
                        dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // Most likely the port was taken meanwhile: try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    /// `known_hosts` naming this server (non-default port form).
    pub fn known_hosts(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    pub fn url(&self, user: &str, repo: &Path) -> String {
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, repo.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

/// A registry with the run image `run:latest` (prepare checks read access to it).
pub fn registry_with_run_image() -> Registry {
    let reg = Registry::plain();
    let client = Client::new(ClientOptions::default()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("os-release"), "ID=test\n").unwrap();
    crate::common::dir_image(
        &Repo::new(Arc::clone(&client), &reg.host(), "run"),
        src.path(),
        Compression::Gzip,
        "amd64",
        "latest",
    );
    reg
}
