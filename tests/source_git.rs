//! Git sources through `prepare`, against real servers started here: `git daemon` and
//! `git http-backend` behind a small HTTP server with basic auth.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod source_git_util;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kpack_util::{read, Root};
use source_git_util::git;

/// A bare repository `repos/app.git` with history: main (3 commits), a branch, a lightweight
/// and an annotated tag, an executable and a symlink. Returns (root, commits oldest first).
fn make_repo() -> (tempfile::TempDir, Vec<String>) {
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let mut commits = Vec::new();
    for i in 1..=3 {
        std::fs::write(work.join("version.txt"), format!("v{i}\n")).unwrap();
        if i == 2 {
            std::fs::write(work.join("run.sh"), "#!/bin/sh\necho run\n").unwrap();
            std::os::unix::fs::PermissionsExt::set_mode(
                &mut std::fs::metadata(work.join("run.sh"))
                    .unwrap()
                    .permissions(),
                0o755,
            );
            Command::new("chmod")
                .args(["755"])
                .arg(work.join("run.sh"))
                .status()
                .unwrap();
            std::os::unix::fs::symlink("version.txt", work.join("link")).unwrap();
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", &format!("c{i}")]);
        commits.push(git(&work, &["rev-parse", "HEAD"]));
        if i == 1 {
            git(&work, &["tag", "light"]);
        }
        if i == 2 {
            git(&work, &["tag", "-a", "v2", "-m", "annotated"]);
            git(&work, &["branch", "feature"]);
        }
    }
    let repos = t.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    git(
        t.path(),
        &["clone", "-q", "--bare", "work", "repos/app.git"],
    );
    (t, commits)
}

struct Daemon(Child, u16);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn git_daemon(base: &Path) -> Daemon {
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
            ])
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon(child, port);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    panic!("git daemon did not start");
}

/// `git http-backend` as CGI behind a thread-per-connection HTTP/1.0 server requiring basic auth.
fn http_backend(base: PathBuf, auth_b64: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (base, auth) = (base.clone(), auth_b64.clone());
            std::thread::spawn(move || cgi(s, &base, &auth));
        }
    });
    port
}

fn cgi(s: TcpStream, base: &Path, auth: &str) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut w = s;
    if get("authorization").as_deref() != Some(&format!("Basic {auth}")) {
        let _ = w.write_all(b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let len: usize = get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    let mut c = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("REMOTE_USER", "git")
        .env("CONTENT_TYPE", get("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", len.to_string())
        .env("GIT_PROTOCOL", get("git-protocol").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&body).unwrap();
    let out = c.wait_with_output().unwrap().stdout;
    let split = out
        .windows(4)
        .position(|x| x == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|x| x == b"\n\n").map(|i| (i, 2)))
        .unwrap();
    let head = String::from_utf8_lossy(&out[..split.0]).to_string();
    let rest = &out[split.0 + split.1..];
    let mut status = "200 OK".to_string();
    let mut hs = String::new();
    for l in head.lines() {
        if let Some(v) = l.strip_prefix("Status:") {
            status = v.trim().to_string();
        } else {
            hs.push_str(l.trim_end());
            hs.push_str("\r\n");
        }
    }
    let _ = write!(
        w,
        "HTTP/1.0 {status}\r\n{hs}Content-Length: {}\r\n\r\n",
        rest.len()
    );
    let _ = w.write_all(rest);
}

fn fetch_only(url: &str, rev: &str, args: &[&str], root: &Root) -> Result<(), String> {
    std::env::set_var("BUILDPOD_BINARY", env!("CARGO_BIN_EXE_buildpod"));
    let paths = buildpod::kpack::paths::Paths::under(root.dir.path());
    let basic: Vec<String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("-basic-git="))
        .map(str::to_string)
        .collect();
    let kc = buildpod::creds::git::GitKeychain::new(&paths, &basic, &[]).unwrap();
    let lines = std::cell::RefCell::new(Vec::new());
    let r = buildpod::source::git::fetch(
        &buildpod::source::git::GitRequest {
            url,
            revision: rev,
            submodules: false,
            trust_unknown_hosts: true,
            workspace: &paths.workspace(),
            workspace_shown: "/workspace",
            metadata_dir: &paths.project_metadata_dir(),
            metadata_dir_shown: "/projectMetadata",
        },
        &kc,
        &|l| lines.borrow_mut().push(l.to_string()),
    );
    let lines = lines.into_inner();
    r.map_err(|e| e.to_string())?;
    assert_eq!(lines[0], format!("Cloning \"{url}\" @ \"{rev}\"..."));
    assert_eq!(
        lines.last().unwrap(),
        &format!("Successfully cloned \"{url}\" @ \"{rev}\" in path \"/workspace\"")
    );
    Ok(())
}

fn head(root: &Root) -> String {
    git(&root.path("workspace"), &["rev-parse", "HEAD"])
}

#[test]
fn git_daemon_branch_tag_commit_and_metadata() {
    let (t, commits) = make_repo();
    let d = git_daemon(&t.path().join("repos"));
    let url = format!("git://127.0.0.1:{}/app.git", d.1);
    for (rev, want) in [
        ("main", &commits[2]),
        ("feature", &commits[1]),
        ("light", &commits[0]),
        ("v2", &commits[1]),
        (commits[1].as_str(), &commits[1]),
    ] {
        let root = Root::new();
        fetch_only(&url, rev, &[], &root).unwrap();
        assert_eq!(&head(&root), want, "{rev}");
        assert_eq!(
            read(&root.path("projectMetadata/project-metadata.toml")),
            format!("[source]\n  type = \"git\"\n  [source.metadata]\n    repository = \"{url}\"\n    revision = \"{rev}\"\n  [source.version]\n    commit = \"{want}\"\n")
        );
        // .git stays in the workspace; the exec bit and symlinks are kept.
        assert!(root.path("workspace/.git").is_dir());
        if rev != "light" {
            use std::os::unix::fs::PermissionsExt as _;
            let m = std::fs::metadata(root.path("workspace/run.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o111, 0o111);
            assert_eq!(
                std::fs::read_link(root.path("workspace/link")).unwrap(),
                Path::new("version.txt")
            );
        }
    }
    let root = Root::new();
    let e = fetch_only(&url, "doesnotexist", &[], &root).unwrap_err();
    assert!(
        e.starts_with("unable to fetch references for repository:"),
        "{e}"
    );
    assert!(e.contains("doesnotexist"), "{e}");
}

#[test]
fn local_file_protocol() {
    let (t, commits) = make_repo();
    let url = format!("file://{}", t.path().join("repos/app.git").display());
    let root = Root::new();
    fetch_only(&url, "main", &[], &root).unwrap();
    assert_eq!(head(&root), commits[2]);
}

#[test]
fn https_basic_auth_with_secrets() {
    let (t, commits) = make_repo();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode("gituser:git-Pa55");
    let port = http_backend(t.path().join("repos"), b64);
    let url = format!("http://127.0.0.1:{port}/app.git");
    let root = Root::new();
    root.secret(
        "good-git",
        &[("username", "gituser"), ("password", "git-Pa55")],
    );
    root.secret("bad-git", &[("username", "gituser"), ("password", "wrong")]);
    fetch_only(
        &url,
        "feature",
        &[&format!("-basic-git=good-git=127.0.0.1:{port}")],
        &root,
    )
    .unwrap();
    assert_eq!(head(&root), commits[1]);

    let root2 = Root::new();
    root2.secret("bad-git", &[("username", "gituser"), ("password", "wrong")]);
    let e = fetch_only(
        &url,
        "main",
        &[&format!("-basic-git=bad-git=http://127.0.0.1:{port}")],
        &root2,
    )
    .unwrap_err();
    assert!(
        e.starts_with("invalid credentials for repository: authentication required (credentials from secret \"bad-git\")"),
        "{e}"
    );
    assert!(!e.contains("wrong"), "{e}");
    let root3 = Root::new();
    let e = fetch_only(&url, "main", &[], &root3).unwrap_err();
    assert!(e.contains("no git secret matches this repository"), "{e}");
}

// kpack's git fetch_test "initializes submodules": with GIT_INITIALIZE_SUBMODULES each
// submodule is logged and checked out; without, its directory stays empty.
#[test]
fn submodules_when_asked() {
    let t = tempfile::tempdir().unwrap();
    let repos = t.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    // The daemon serves whatever appears under `repos`, so the submodule URL can name it.
    let d = git_daemon(&repos);
    let lib_url = format!("git://127.0.0.1:{}/lib.git", d.1);
    let lib = t.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q", "-b", "main"]);
    std::fs::write(lib.join("lib.txt"), "from the submodule\n").unwrap();
    git(&lib, &["add", "-A"]);
    git(&lib, &["commit", "-q", "-m", "lib"]);
    git(t.path(), &["clone", "-q", "--bare", "lib", "repos/lib.git"]);
    let app = t.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    git(&app, &["init", "-q", "-b", "main"]);
    std::fs::write(app.join("main.txt"), "app\n").unwrap();
    git(&app, &["submodule", "add", "-q", &lib_url, "vendor/lib"]);
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "app"]);
    git(t.path(), &["clone", "-q", "--bare", "app", "repos/app.git"]);
    let url = format!("git://127.0.0.1:{}/app.git", d.1);

    let fetch = |submodules: bool| {
        let root = Root::new();
        let paths = buildpod::kpack::paths::Paths::under(root.dir.path());
        let kc = buildpod::creds::git::GitKeychain::new(&paths, &[], &[]).unwrap();
        let lines = std::cell::RefCell::new(Vec::new());
        buildpod::source::git::fetch(
            &buildpod::source::git::GitRequest {
                url: &url,
                revision: "main",
                submodules,
                trust_unknown_hosts: true,
                workspace: &paths.workspace(),
                workspace_shown: "/workspace",
                metadata_dir: &paths.project_metadata_dir(),
                metadata_dir_shown: "/projectMetadata",
            },
            &kc,
            &|l| lines.borrow_mut().push(l.to_string()),
        )
        .unwrap();
        (root, lines.into_inner())
    };
    let (root, lines) = fetch(true);
    assert_eq!(
        read(&root.path("workspace/vendor/lib/lib.txt")),
        "from the submodule\n"
    );
    assert_eq!(
        lines,
        vec![
            format!("Cloning \"{url}\" @ \"main\"..."),
            format!("Updating submodule {lib_url}"),
            format!("Successfully cloned \"{url}\" @ \"main\" in path \"/workspace\""),
        ]
    );
    let (root, lines) = fetch(false);
    assert_eq!(read(&root.path("workspace/main.txt")), "app\n");
    assert!(root.path("workspace/vendor/lib").is_dir());
    assert!(!root.path("workspace/vendor/lib/lib.txt").exists());
    assert_eq!(lines.len(), 2, "{lines:?}");
}
