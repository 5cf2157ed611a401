//! Git over ssh against a real OpenSSH `sshd` started here on 127.0.0.1 (its own config, host
//! key and authorized_keys, a non-default port, stopped by PID): key auth, `known_hosts`, the
//! trust-unknown-hosts flag, the ssh user forced to `git`, and failures naming the secret; then
//! `prepare` end to end with `INSECURE_SSH_TRUST_UNKNOWN_HOSTS=false`, also as a uid without
//! an `/etc/passwd` entry (kpack runs prepare as the builder's `CNB_USER_ID`). The server is
//! `source_git_util`'s.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod source_git_util;
mod support;

use kpack_util::{read, Out, Root};
use source_git_util::{git, keypair, make_repo, registry_with_run_image, Sshd};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use support::tools;

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

/// One `prepare` run cloning `rev` over ssh, key and known_hosts from a secret, the server
/// named `host` (`127.0.0.1` or `localhost`); as root, or as `uid` (group `uid`), which then owns
/// the pod's volumes (as kpack's CNB_USER_ID does).
struct SshPrepare {
    out: Out,
    root: Root,
    url: String,
    commits: Vec<String>,
    private: String,
    sshd: Sshd,
    _t: tempfile::TempDir,
}

fn prepare_over_ssh(host: &str, rev: &str, uid: Option<u32>) -> SshPrepare {
    let t = tempfile::tempdir().unwrap();
    let (repo, commits) = make_repo(t.path());
    let (private, public) = keypair(t.path(), "client");
    let sshd = Sshd::start(&public);
    let reg = registry_with_run_image();
    let root = Root::new();
    let known_hosts = format!("[{host}]:{} {}\n", sshd.port, sshd.host_key);
    root.secret(
        "ssh-creds",
        &[("ssh-privatekey", &private), ("known_hosts", &known_hosts)],
    );
    let url = format!("ssh://git@{host}:{}{}", sshd.port, repo.display());
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildpod"));
    c.arg0("build-init")
        .arg(format!("-ssh-git=ssh-creds=git@{host}:{}", sshd.port))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &root.home)
        .env("BUILDPOD_ROOT", root.dir.path())
        .env("GIT_URL", &url)
        .env("GIT_REVISION", rev)
        .env("GIT_INITIALIZE_SUBMODULES", "false")
        .env("INSECURE_SSH_TRUST_UNKNOWN_HOSTS", "false")
        .env("IMAGE_TAG", format!("{}/apps/app", reg.host()))
        .env("RUN_IMAGE", format!("{}/run", reg.host()));
    let dir = root.dir.path().to_string_lossy().into_owned();
    if let Some(uid) = uid {
        tools::run("chown", &["-R", &format!("{uid}:{uid}"), &dir]);
        c.uid(uid).gid(uid);
    }
    let out = Out(c.output().unwrap());
    if uid.is_some() {
        // Back to root, which git requires of a repository it reads.
        tools::run("chown", &["-R", "0:0", &dir]);
    }
    SshPrepare {
        out,
        root,
        url,
        commits,
        private,
        sshd,
        _t: t,
    }
}

#[test]
fn prepare_clones_over_ssh_with_known_hosts() {
    let SshPrepare {
        out,
        root,
        url,
        commits,
        private,
        sshd,
        ..
    } = prepare_over_ssh("127.0.0.1", "v1", None);
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

/// kpack runs prepare as the builder's `CNB_USER_ID` (1001 for Paketo's builders), which the
/// build-init image need not list in `/etc/passwd`, and OpenSSH's `ssh` refuses to run for a uid
/// without an entry ("No user exists for uid"): prepare gives it one through nss_wrapper. The
/// host is named `localhost` so name resolution is shown to work under the wrapper too.
#[test]
fn prepare_clones_over_ssh_as_a_uid_without_a_passwd_entry() {
    let passwd = read(Path::new("/etc/passwd"));
    let group = read(Path::new("/etc/group"));
    let uid = (1001..60000)
        .find(|id| {
            buildpod::lifecycle::user::passwd_entry(*id, &passwd).is_none()
                && !group
                    .lines()
                    .any(|l| l.split(':').nth(2) == Some(&id.to_string()))
        })
        .unwrap();
    let p = prepare_over_ssh("localhost", "main", Some(uid));
    let (out, url) = (&p.out, &p.url);
    assert_eq!(out.code(), 0, "uid {uid}: {out:?}\n{}", p.sshd.log());
    assert!(
        out.stdout().ends_with(&format!(
            "Cloning \"{url}\" @ \"main\"...\n\
             Successfully cloned \"{url}\" @ \"main\" in path \"/workspace\"\n"
        )),
        "{out:?}"
    );
    assert!(
        p.sshd.log().contains("Accepted publickey for git"),
        "{}",
        p.sshd.log()
    );
    assert_eq!(head(&p.root), p.commits[1]);
}
