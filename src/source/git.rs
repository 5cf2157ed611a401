//! Git sources, fetched as kpack does: `git init` in `/workspace` (so `.git` stays there), add
//! `origin`, resolve the revision with `ls-remote`, fetch that one commit shallowly, check it
//! out detached, optionally update submodules, and write `project-metadata.toml`.
//!
//! Transport: the `git` program (and `ssh` for ssh URLs). gix was evaluated first: it builds
//! (about 2 min of extra compile), but its file:// transport spawns `git-upload-pack`, its ssh
//! transport spawns `ssh`, and it cannot update submodules, so the image needs those programs
//! either way; the git CLI covers every case kpack supports with one well-tested code path.
//! Credentials never reach argv: basic auth goes through `GIT_ASKPASS` (this binary, reading
//! the secret from its environment), ssh keys through a 0600 temp file.
//!
//! OpenSSH's `ssh` looks the process uid up in the passwd database before anything else and
//! exits "No user exists for uid N" without an entry (no option turns that off). kpack runs
//! prepare as the builder's `CNB_USER_ID`, which the build-init image need not list; then `ssh`
//! runs with nss_wrapper preloaded and a temp passwd/group that adds the uid (see
//! [`passwd_shim`]). git itself falls back to "unknown" and needs nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::metadata::ProjectSource;
use super::SourceError;
use crate::creds::git::{GitAuth, GitKeychain};

/// Set in the environment of `git` when this binary acts as its askpass helper.
pub const ASKPASS_ENV: &str = "BUILDPOD_GIT_ASKPASS";
const USER_ENV: &str = "BUILDPOD_GIT_USERNAME";
const PASS_ENV: &str = "BUILDPOD_GIT_PASSWORD";

/// What to clone.
pub struct GitRequest<'a> {
    pub url: &'a str,
    pub revision: &'a str,
    pub submodules: bool,
    pub trust_unknown_hosts: bool,
    pub workspace: &'a Path,
    pub workspace_shown: &'a str,
    pub metadata_dir: &'a Path,
    pub metadata_dir_shown: &'a str,
}

/// Answer git's askpass prompt from the environment (`Username for ...` / `Password for ...`).
pub fn askpass(prompt: &str) -> i32 {
    let var = if prompt.starts_with("Username") {
        USER_ENV
    } else {
        PASS_ENV
    };
    match std::env::var(var) {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(_) => 1,
    }
}

/// The ssh user is always `git` (kpack), whatever the URL says.
pub fn ssh_url_with_git_user(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("ssh://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        return format!("ssh://git@{host}/{path}");
    }
    if !url.contains("://") {
        if let Some((before, path)) = url.split_once(':') {
            let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
            return format!("git@{host}:{path}");
        }
    }
    url.to_string()
}

/// The git invocation environment for one remote.
struct GitEnv {
    env: Vec<(String, String)>,
    url: String,
    secret: Option<String>,
    _tmp: tempfile::TempDir,
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The preload library nss_wrapper ships (Debian package `libnss-wrapper`).
const NSS_WRAPPER_LIB: &str = "libnss_wrapper.so";

/// Where the library is looked for: the multiarch directory first (the build-init image's).
fn nss_wrapper_candidates() -> Vec<PathBuf> {
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    [multiarch.as_str(), "/usr/lib64", "/usr/lib"]
        .iter()
        .map(|d| Path::new(d).join(NSS_WRAPPER_LIB))
        .collect()
}

/// Whether git reaches `url` through ssh: `ssh://` (and git's aliases) or scp-like
/// `[user@]host:path`, which git takes for a local path when a `/` comes before the first `:`.
fn is_ssh_url(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return matches!(scheme, "ssh" | "git+ssh" | "ssh+git");
    }
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        _ => false,
    }
}

/// What `ssh` needs when `uid` has no entry in `passwd` (the text of `/etc/passwd`, read by hand:
/// the binary is static, without NSS): writes `passwd` and `group` into `dir` (the originals
/// plus a line for `uid`/`gid`, home `dir`) and returns the environment assignments that make
/// `ssh` read them through the first existing library of `libs`. `None` when the uid has an
/// entry. Without the library: an error for an ssh `url`, `None` otherwise (only a submodule
/// over ssh could then fail, with ssh's own "No user exists for uid").
fn passwd_shim(
    (uid, gid): (u32, u32),
    (passwd, group): (&str, &str),
    libs: &[PathBuf],
    dir: &Path,
    url: &str,
) -> Result<Option<String>, String> {
    if crate::lifecycle::user::passwd_entry(uid, passwd).is_some() {
        return Ok(None);
    }
    let Some(lib) = libs.iter().find(|l| l.is_file()) else {
        if !is_ssh_url(url) {
            return Ok(None);
        }
        let dirs: Vec<String> = libs
            .iter()
            .filter_map(|l| l.parent().map(|d| d.display().to_string()))
            .collect();
        return Err(format!(
            "ssh needs a passwd entry for the current user, but uid {uid} has none in /etc/passwd \
             and {NSS_WRAPPER_LIB} (nss_wrapper, Debian package libnss-wrapper), which would \
             provide one, is not in {}",
            dirs.join(", ")
        ));
    };
    let with_line = |text: &str, line: String| {
        let mut t = text.to_string();
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        t + &line
    };
    let passwd_file = dir.join("passwd");
    let group_file = dir.join("group");
    let passwd_text = with_line(
        passwd,
        format!(
            "buildpod:x:{uid}:{gid}:buildpod:{}:/bin/sh\n",
            dir.display()
        ),
    );
    let gid_known = group
        .lines()
        .any(|l| l.split(':').nth(2) == Some(&gid.to_string()));
    let group_text = if gid_known {
        group.to_string()
    } else {
        with_line(group, format!("buildpod:x:{gid}:\n"))
    };
    for (p, t) in [(&passwd_file, passwd_text), (&group_file, group_text)] {
        std::fs::write(p, t).map_err(|e| format!("write {}: {e}", p.display()))?;
    }
    Ok(Some(format!(
        "LD_PRELOAD={} NSS_WRAPPER_PASSWD={} NSS_WRAPPER_GROUP={}",
        shell_quote(lib),
        shell_quote(&passwd_file),
        shell_quote(&group_file)
    )))
}

fn git_env(url: &str, auth: Option<GitAuth>, trust: bool) -> Result<GitEnv, SourceError> {
    let tmp = tempfile::tempdir().map_err(|e| SourceError::new(format!("create temp dir: {e}")))?;
    let mut env: Vec<(String, String)> = vec![
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
        ("HOME".into(), tmp.path().display().to_string()),
        ("LC_ALL".into(), "C".into()),
        // The pod's /workspace is a volume kubelet creates as root (0777, group fsGroup), and
        // prepare runs as the builder's user: git's ownership check would refuse it. Config
        // from the environment counts as command-line config, where safe.directory is honoured.
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "safe.directory".into()),
        ("GIT_CONFIG_VALUE_0".into(), "*".into()),
    ];
    let mut url = url.to_string();
    let mut secret = None;
    let mut ssh = String::from("ssh -o BatchMode=yes");
    let write_private = |name: &str, content: &str| -> Result<PathBuf, SourceError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let p = tmp.path().join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| SourceError::new(format!("write {}: {e}", p.display())))?;
        let mut c = content.to_string();
        if !c.ends_with('\n') {
            c.push('\n');
        }
        std::io::Write::write_all(&mut f, c.as_bytes())
            .map_err(|e| SourceError::new(format!("write {}: {e}", p.display())))?;
        Ok(p)
    };
    match auth {
        Some(GitAuth::Basic {
            secret: s,
            username,
            password,
        }) => {
            // `BUILDPOD_BINARY` names the buildpod binary when this code runs inside another
            // program (the library's tests).
            let me = match std::env::var_os("BUILDPOD_BINARY") {
                Some(p) => PathBuf::from(p),
                None => std::env::current_exe()
                    .map_err(|e| SourceError::new(format!("locate askpass helper: {e}")))?,
            };
            env.push(("GIT_ASKPASS".into(), me.display().to_string()));
            env.push((ASKPASS_ENV.into(), "1".into()));
            env.push((USER_ENV.into(), username));
            env.push((PASS_ENV.into(), password));
            secret = Some(s);
        }
        Some(GitAuth::Ssh {
            secret: s,
            private_key,
            known_hosts,
        }) => {
            let key = write_private("id", &private_key)?;
            ssh.push_str(&format!(" -i {} -o IdentitiesOnly=yes", shell_quote(&key)));
            url = ssh_url_with_git_user(&url);
            secret = Some(s);
            if !trust {
                if let Some(kh) = known_hosts {
                    let p = write_private("known_hosts", &kh)?;
                    ssh.push_str(&format!(
                        " -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                        shell_quote(&p)
                    ));
                }
            }
        }
        None => {}
    }
    if trust {
        ssh.push_str(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null");
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let shim = passwd_shim(
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ),
        (&read("/etc/passwd"), &read("/etc/group")),
        &nss_wrapper_candidates(),
        tmp.path(),
        &url,
    )
    .map_err(SourceError::new)?;
    if let Some(assignments) = shim {
        ssh = format!("{assignments} {ssh}");
        // git picks ssh's flags (-p, protocol v2's SendEnv) by the command's first word, which
        // is now an assignment: say it is OpenSSH.
        env.push(("GIT_SSH_VARIANT".into(), "ssh".into()));
    }
    env.push(("GIT_SSH_COMMAND".into(), ssh));
    Ok(GitEnv {
        env,
        url,
        secret,
        _tmp: tmp,
    })
}

/// Run git in `dir`; Err carries git's stderr.
fn git(dir: &Path, env: &GitEnv, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run git (git sources need the git program in the image): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn is_auth_failure(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("authentication failed")
        || s.contains("could not read username")
        || s.contains("could not read password")
        || s.contains("permission denied (publickey")
        || s.contains("host key verification failed")
        || s.contains("403")
        || s.contains("401")
}

/// go-git's `ReferenceName.Short()`.
fn short_ref(name: &str) -> &str {
    for p in ["refs/heads/", "refs/tags/", "refs/remotes/"] {
        if let Some(s) = name.strip_prefix(p) {
            return s;
        }
    }
    name
}

/// A 40-hex (sha1) or 64-hex (sha256) object id.
fn is_full_commit_id(revision: &str) -> bool {
    matches!(revision.len(), 40 | 64) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `revision` names on the remote: the first advertised ref whose short name
/// matches (peeled for annotated tags), else the revision itself (a commit).
pub fn resolve_revision(ls_remote: &str, revision: &str) -> String {
    let refs: Vec<(&str, &str)> = ls_remote
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    for (hash, name) in &refs {
        if name.ends_with("^{}") {
            continue;
        }
        if short_ref(name) == revision {
            let peeled = format!("{name}^{{}}");
            if let Some((h, _)) = refs.iter().find(|(_, n)| *n == peeled) {
                return h.to_string();
            }
            return hash.to_string();
        }
    }
    revision.to_string()
}

/// kpack's git `Fetcher.Fetch`.
pub fn fetch(
    req: &GitRequest<'_>,
    keychain: &GitKeychain,
    log: &dyn Fn(&str),
) -> Result<(), SourceError> {
    log(&format!(
        "Cloning \"{}\" @ \"{}\"...",
        req.url, req.revision
    ));
    let env = git_env(req.url, keychain.resolve(req.url)?, req.trust_unknown_hosts)?;
    let ws = req.workspace;
    std::fs::create_dir_all(ws)
        .map_err(|e| SourceError::new(format!("create {}: {e}", req.workspace_shown)))?;
    let setup = |args: &[&str]| {
        git(ws, &env, args).map_err(|e| SourceError::new(format!("initializing repository: {e}")))
    };
    setup(&["init", "-q", "."])?;
    setup(&["remote", "add", "origin", &env.url])?;
    // Listing errors (e.g. auth) are ignored here, as kpack does; the fetch reports them. A full
    // commit id (what kpack's controller passes once it has resolved the source) skips the
    // listing: no ref is named like one, so it would resolve to itself.
    let hash = if is_full_commit_id(req.revision) {
        req.revision.to_string()
    } else {
        match git(ws, &env, &["ls-remote", "origin"]) {
            Ok(out) => resolve_revision(&out, req.revision),
            Err(_) => req.revision.to_string(),
        }
    };
    let fetched = git(
        ws,
        &env,
        &[
            "-c",
            "protocol.version=2",
            // Keep the received pack (as go-git does) instead of re-compressing every object
            // into a loose file: half the time of a shallow fetch of large files.
            "-c",
            "fetch.unpackLimit=1",
            "fetch",
            "-q",
            "--no-tags",
            "--depth",
            "1",
            "origin",
            &hash,
        ],
    );
    if let Err(e) = fetched {
        let hint = match &env.secret {
            Some(s) => format!(" (credentials from secret \"{s}\")"),
            None => " (no git secret matches this repository)".to_string(),
        };
        return Err(SourceError::new(if is_auth_failure(&e) {
            format!("invalid credentials for repository: authentication required{hint}: {e}")
        } else {
            format!("unable to fetch references for repository: {e}")
        }));
    }
    git(
        ws,
        &env,
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "-q",
            "--detach",
            "FETCH_HEAD",
        ],
    )
    .map_err(|e| SourceError::new(format!("checking out revision: {e}")))?;
    if req.submodules {
        update_submodules(ws, keychain, req.trust_unknown_hosts, log)?;
    }
    let commit = git(ws, &env, &["rev-parse", "HEAD"])
        .map_err(|e| SourceError::new(format!("checking out revision: {e}")))?
        .trim()
        .to_string();
    ProjectSource::Git {
        repository: req.url.to_string(),
        revision: req.revision.to_string(),
        commit,
    }
    .write(req.metadata_dir)
    .map_err(|_| {
        SourceError::new(format!(
            "invalid metadata destination '{}/project-metadata.toml' for git repository: {}",
            req.metadata_dir_shown, req.url
        ))
    })?;
    log(&format!(
        "Successfully cloned \"{}\" @ \"{}\" in path \"{}\"",
        req.url, req.revision, req.workspace_shown
    ));
    Ok(())
}

fn update_submodules(
    ws: &Path,
    keychain: &GitKeychain,
    trust: bool,
    log: &dyn Fn(&str),
) -> Result<(), SourceError> {
    let plain = git_env("", None, trust)?;
    let list = git(
        ws,
        &plain,
        &[
            "config",
            "-f",
            ".gitmodules",
            "--get-regexp",
            r"^submodule\..*\.url$",
        ],
    )
    .unwrap_or_default();
    for line in list.lines() {
        let Some((key, url)) = line.split_once(' ') else {
            continue;
        };
        let name = key
            .trim_start_matches("submodule.")
            .trim_end_matches(".url");
        log(&format!("Updating submodule {url}"));
        let mut env = git_env(url, keychain.resolve(url)?, trust)?;
        // What `git submodule` (a shell script) sets before running the helper: URLs from
        // .gitmodules are not the user's, so protocol.allow's "user" policy (file://) applies.
        env.env.push(("GIT_PROTOCOL_FROM_USER".into(), "0".into()));
        let path = git(
            ws,
            &plain,
            &[
                "config",
                "-f",
                ".gitmodules",
                &format!("submodule.{name}.path"),
            ],
        )
        .unwrap_or_default()
        .trim()
        .to_string();
        git(
            ws,
            &env,
            &[
                "-c",
                "fetch.unpackLimit=1",
                // `git submodule update` is a shell script (git 2.39 to at least 2.47) that
                // only checks the work tree and runs this; calling it directly spares the
                // build-init image the scripts, git-sh-i18n--envsubst and a shell toolbox.
                "submodule--helper",
                "update",
                "--init",
                "--recursive",
                "--",
                &path,
            ],
        )
        .map_err(|e| SourceError::new(format!("updating submodule {url}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_kpack() {
        let ls = "aaa\tHEAD\nbbb\trefs/heads/main\nccc\trefs/tags/v1\nddd\trefs/tags/v1^{}\neee\trefs/tags/light\n";
        assert_eq!(resolve_revision(ls, "main"), "bbb");
        assert_eq!(resolve_revision(ls, "v1"), "ddd");
        assert_eq!(resolve_revision(ls, "light"), "eee");
        assert_eq!(resolve_revision(ls, "HEAD"), "aaa");
        assert_eq!(resolve_revision(ls, "0123abc"), "0123abc");
        assert!(is_full_commit_id(&"ab12".repeat(10)));
        assert!(!is_full_commit_id("0123abc"));
        assert!(!is_full_commit_id(&"zz".repeat(20)));
    }

    #[test]
    fn ssh_urls_as_git_tells_them() {
        for u in [
            "ssh://git@h/r",
            "git+ssh://h/r",
            "git@github.com:org/r.git",
            "h:r",
        ] {
            assert!(is_ssh_url(u), "{u}");
        }
        for u in [
            "https://h/r",
            "git://h/r",
            "file:///r",
            "/srv/r",
            "./a:b",
            "r",
        ] {
            assert!(!is_ssh_url(u), "{u}");
        }
    }

    #[test]
    fn passwd_shim_only_for_uids_without_an_entry() {
        let t = tempfile::tempdir().unwrap();
        let lib = t.path().join(NSS_WRAPPER_LIB);
        std::fs::write(&lib, "").unwrap();
        let missing = t.path().join("nowhere").join(NSS_WRAPPER_LIB);
        let passwd = "root:x:0:0:root:/root:/bin/sh\ncnb:x:1002:1000::/home/cnb:/sbin/nologin";
        let group = "root:x:0:\ncnb:x:1000:\n";
        let url = "ssh://git@h/r";

        // Listed: nothing to do, library or not.
        let shim = passwd_shim(
            (1002, 1000),
            (passwd, group),
            std::slice::from_ref(&missing),
            t.path(),
            url,
        );
        assert_eq!(shim, Ok(None));

        // Not listed: a passwd with the uid (home = the dir), the group only when new.
        let shim = passwd_shim(
            (1001, 1000),
            (passwd, group),
            &[missing.clone(), lib.clone()],
            t.path(),
            url,
        )
        .unwrap()
        .unwrap();
        let d = t.path().display();
        assert_eq!(
            shim,
            format!(
                "LD_PRELOAD='{d}/{NSS_WRAPPER_LIB}' NSS_WRAPPER_PASSWD='{d}/passwd' \
                 NSS_WRAPPER_GROUP='{d}/group'"
            )
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("passwd")).unwrap(),
            format!("{passwd}\nbuildpod:x:1001:1000:buildpod:{d}:/bin/sh\n")
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("group")).unwrap(),
            group
        );
        passwd_shim((1001, 1001), (passwd, group), &[lib], t.path(), url).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("group")).unwrap(),
            format!("{group}buildpod:x:1001:\n")
        );

        // Without the library: an error naming the uid and the library for ssh, else nothing.
        let e = passwd_shim(
            (1001, 1000),
            (passwd, group),
            std::slice::from_ref(&missing),
            t.path(),
            url,
        )
        .unwrap_err();
        assert_eq!(
            e,
            format!(
                "ssh needs a passwd entry for the current user, but uid 1001 has none in \
                 /etc/passwd and libnss_wrapper.so (nss_wrapper, Debian package libnss-wrapper), \
                 which would provide one, is not in {d}/nowhere"
            )
        );
        let shim = passwd_shim(
            (1001, 1000),
            (passwd, group),
            &[missing],
            t.path(),
            "https://h/r",
        );
        assert_eq!(shim, Ok(None));
    }

    #[test]
    fn ssh_user_is_always_git() {
        assert_eq!(
            ssh_url_with_git_user("ssh://me@h:22/r.git"),
            "ssh://git@h:22/r.git"
        );
        assert_eq!(ssh_url_with_git_user("me@h:org/r"), "git@h:org/r");
        assert_eq!(ssh_url_with_git_user("https://h/r"), "https://h/r");
    }
}
