//! Git over ssh against a real OpenSSH `sshd` started here on 127.0.0.1 (its own config, host
//! key and authorized_keys, a non-default port, stopped by PID): key auth, `known_hosts`, the
//! trust-unknown-hosts flag, the ssh user forced to `git`, and failures naming the secret; then
//! `prepare` end to end with `INSECURE_SSH_TRUST_UNKNOWN_HOSTS=false`.
//!
//! kpack always logs in as `git`, so sshd runs in a private mount namespace where a
//! bind-mounted `/etc/passwd` has a `git` account (and `/run` is a tmpfs for sshd's privilege
//! separation directory); nothing on the host changes.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use buildpod::layer::Compression;
use buildpod::registry::{Client, ClientOptions, Repo};
use kpack_util::{read, Root};
use support::registry::Registry;
use support::tools;

fn git(dir: &Path, args: &[&str]) -> String {
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
fn make_repo(t: &Path) -> (PathBuf, Vec<String>) {
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
fn keypair(dir: &Path, name: &str) -> (String, String) {
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

struct Sshd {
    child: Child,
    port: u16,
    /// The server's host key line (`ssh-ed25519 AAAA... host`).
    host_key: String,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    fn start(authorized: &str) -> Sshd {
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
    fn known_hosts(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    fn url(&self, user: &str, repo: &Path) -> String {
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, repo.display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

/// kpack's git source fetch through the library, with `-ssh-git` secrets.
fn fetch(
    url: &str,
    rev: &str,
    ssh_args: &[String],
    trust: bool,
    root: &Root,
) -> Result<(), String> {
    let paths = buildpod::kpack::paths::Paths::under(root.dir.path());
    let kc = buildpod::creds::git::GitKeychain::new(&paths, &[], ssh_args).unwrap();
    buildpod::source::git::fetch(
        &buildpod::source::git::GitRequest {
            url,
            revision: rev,
            submodules: false,
            trust_unknown_hosts: trust,
            workspace: &paths.workspace(),
            workspace_shown: "/workspace",
            metadata_dir: &paths.project_metadata_dir(),
            metadata_dir_shown: "/projectMetadata",
        },
        &kc,
        &|_| {},
    )
    .map_err(|e| e.to_string())
}

fn head(root: &Root) -> String {
    git(&root.path("workspace"), &["rev-parse", "HEAD"])
}

#[test]
fn ssh_key_known_hosts_and_trust() {
    let t = tempfile::tempdir().unwrap();
    let (repo, commits) = make_repo(t.path());
    let (private, public) = keypair(t.path(), "client");
    let (other_private, _) = keypair(t.path(), "stranger");
    let sshd = Sshd::start(&public);
    let impostor = Sshd::start(&public);
    let annotation = format!("git@127.0.0.1:{}", sshd.port);
    let arg = |secret: &str| vec![format!("{secret}={annotation}")];

    // Trusting unknown hosts: the key alone is enough; the URL's user is replaced by `git`.
    let root = Root::new();
    root.secret("ssh-creds", &[("ssh-privatekey", &private)]);
    fetch(
        &sshd.url("someone", &repo),
        "v1",
        &arg("ssh-creds"),
        true,
        &root,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(head(&root), commits[0]);
    assert!(
        sshd.log().contains("Accepted publickey for git"),
        "{}",
        sshd.log()
    );

    // Not trusting: the secret's known_hosts must name the server's key.
    let root = Root::new();
    root.secret(
        "ssh-creds",
        &[
            ("ssh-privatekey", &private),
            ("known_hosts", &sshd.known_hosts()),
        ],
    );
    let url = sshd.url("git", &repo);
    fetch(&url, "main", &arg("ssh-creds"), false, &root).unwrap();
    assert_eq!(head(&root), commits[1]);
    assert_eq!(
        read(&root.path("projectMetadata/project-metadata.toml")),
        format!("[source]\n  type = \"git\"\n  [source.metadata]\n    repository = \"{url}\"\n    revision = \"main\"\n  [source.version]\n    commit = \"{}\"\n", commits[1])
    );

    // A known_hosts entry with another host's key is refused, naming the secret; trusting
    // unknown hosts ignores it.
    let root = Root::new();
    let wrong = format!("[127.0.0.1]:{} {}\n", sshd.port, impostor.host_key);
    root.secret(
        "ssh-creds",
        &[("ssh-privatekey", &private), ("known_hosts", &wrong)],
    );
    let e = fetch(&url, "main", &arg("ssh-creds"), false, &root).unwrap_err();
    assert!(e.contains("credentials from secret \"ssh-creds\""), "{e}");
    assert!(e.contains("Host key verification failed"), "{e}");
    let root = Root::new();
    root.secret(
        "ssh-creds",
        &[("ssh-privatekey", &private), ("known_hosts", &wrong)],
    );
    fetch(&url, "main", &arg("ssh-creds"), true, &root).unwrap();

    // No known_hosts and no trust: the host is unknown.
    let root = Root::new();
    root.secret("ssh-creds", &[("ssh-privatekey", &private)]);
    let e = fetch(&url, "main", &arg("ssh-creds"), false, &root).unwrap_err();
    assert!(e.contains("Host key verification failed"), "{e}");

    // A key the server does not know: invalid credentials naming the secret, key not shown.
    let root = Root::new();
    root.secret("ssh-wrong", &[("ssh-privatekey", &other_private)]);
    let e = fetch(&url, "main", &arg("ssh-wrong"), true, &root).unwrap_err();
    assert!(
        e.starts_with(
            "invalid credentials for repository: authentication required (credentials from secret \"ssh-wrong\")"
        ),
        "{e}"
    );
    assert!(e.contains("Permission denied (publickey)"), "{e}");
    let key_body = other_private.lines().nth(1).unwrap();
    assert!(!e.contains(key_body), "{e}");

    // A secret for another host does not apply: anonymous, and said so.
    let root = Root::new();
    root.secret("ssh-creds", &[("ssh-privatekey", &private)]);
    let e = fetch(
        &url,
        "main",
        &["ssh-creds=git@example.com".to_string()],
        true,
        &root,
    )
    .unwrap_err();
    assert!(e.contains("no git secret matches this repository"), "{e}");
}

#[test]
fn prepare_clones_over_ssh_with_known_hosts() {
    let t = tempfile::tempdir().unwrap();
    let (repo, commits) = make_repo(t.path());
    let (private, public) = keypair(t.path(), "client");
    let sshd = Sshd::start(&public);

    let reg = Registry::plain();
    let client = Client::new(ClientOptions::default()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("os-release"), "ID=test\n").unwrap();
    common::dir_image(
        &Repo::new(Arc::clone(&client), &reg.host(), "run"),
        src.path(),
        Compression::Gzip,
        "amd64",
        "latest",
    );

    let root = Root::new();
    root.secret(
        "ssh-creds",
        &[
            ("ssh-privatekey", &private),
            ("known_hosts", &sshd.known_hosts()),
        ],
    );
    let url = sshd.url("git", &repo);
    let out = root.run(
        "build-init",
        &[&format!("-ssh-git=ssh-creds=git@127.0.0.1:{}", sshd.port)],
        &[
            ("GIT_URL", &url),
            ("GIT_REVISION", "v1"),
            ("GIT_INITIALIZE_SUBMODULES", "false"),
            ("INSECURE_SSH_TRUST_UNKNOWN_HOSTS", "false"),
            ("IMAGE_TAG", &format!("{}/apps/app", reg.host())),
            ("RUN_IMAGE", &format!("{}/run", reg.host())),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}\n{}", sshd.log());
    assert_eq!(
        out.stdout(),
        format!(
            "Loading registry credentials from service account secrets\n\
             No registry credentials were loaded from service account secrets\n\
             Loading cluster credential helpers\n\
             Cloning \"{url}\" @ \"v1\"...\n\
             Successfully cloned \"{url}\" @ \"v1\" in path \"/workspace\"\n"
        )
    );
    assert_eq!(head(&root), commits[0]);
    assert!(read(&root.path("projectMetadata/project-metadata.toml"))
        .contains(&format!("commit = \"{}\"", commits[0])));
    assert!(!out.all().contains(private.lines().nth(1).unwrap()));
}
