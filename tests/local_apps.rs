//! Every app in `test-apps/` built end to end with `buildpod build` on our builder (the debian
//! stack, the sample buildpacks, our lifecycle; `images/builders/build`), published to a real
//! registry, started with `buildpod run` under the embedded sandbox and under runc, and asked
//! over HTTP for what its `smoke.toml` says. The Node app is then rebuilt after a one-line
//! change: its dependency layer is reused (no `npm ci`) and only the app layer is new.
//! The debian stack's root filesystems are cached (`$BUILDPOD_CACHE`); the first run on a
//! machine takes minutes for debootstrap.

mod local_util;
mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use local_util::{build_pod_images, buildpod, BUILDPOD};
use support::registry::Registry;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const APPS: [&str; 5] = ["nodejs-npm", "python-pip", "go", "static", "procfile"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[derive(serde::Deserialize)]
struct Smoke {
    path: String,
    body_contains: String,
}

fn smoke(app: &str) -> Smoke {
    let p = Path::new(ROOT)
        .join("test-apps")
        .join(app)
        .join("smoke.toml");
    toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM: buildpod's sandbox kills the container's whole process tree.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// Start `image` with PORT set and GET `path` until it answers (or two minutes pass).
fn serve_and_get(image: &str, runtime: &str, path: &str) -> String {
    let port = free_port();
    let log_path = std::env::temp_dir().join(format!("buildpod-run-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(BUILDPOD)
        .args([
            "run",
            "--runtime",
            runtime,
            "--env",
            &format!("PORT={port}"),
            image,
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let url = format!("http://127.0.0.1:{port}{path}");
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(120) {
        let out = Command::new("curl")
            .args(["-fsS", "-m", "5", &url])
            .output()
            .unwrap();
        if out.status.success() {
            let _ = std::fs::remove_file(&log_path);
            return text(&out.stdout);
        }
        last = text(&out.stderr);
        // The container exited: no point in waiting out the two minutes.
        if let Ok(Some(status)) = running.0.try_wait() {
            last = format!("{last}\nbuildpod run exited: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(running);
    let run_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    panic!("{image} ({runtime}) did not answer {url}: {last}\n--- buildpod run:\n{run_log}");
}

fn build(builder: &str, images: &str, src: &Path, tag: &str, cache: &Path, work: &Path) -> String {
    let out = buildpod(&[
        "build",
        "--builder",
        builder,
        "--build-pod-images",
        images,
        "--path",
        src.to_str().unwrap(),
        "--tag",
        tag,
        "--publish",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
        // This machine reaches npm and PyPI through a TLS-intercepting proxy.
        "--trust-host-certs",
        "--env",
        "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{tag}: {stderr}");
    stderr
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn every_test_app_builds_runs_and_answers_on_the_debian_stack() {
    if !nix::unistd::geteuid().is_root() || support::tools::which("runc").is_none() {
        eprintln!("skipped: needs root and runc");
        return;
    }
    let reg = Registry::plain();
    let prefix = format!("{}/buildpod", reg.host());
    let out = Command::new(Path::new(ROOT).join("images/builders/build"))
        .arg(&prefix)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "images/builders/build: {}",
        text(&out.stderr)
    );
    let builder = format!("{prefix}/builders/default:bookworm");
    let images = build_pod_images();
    let tmp = tempfile::tempdir().unwrap();
    for app in APPS {
        let src = tmp.path().join(app);
        copy_dir(&Path::new(ROOT).join("test-apps").join(app), &src);
        let tag = format!("{}/apps/{app}:1", reg.host());
        let cache = tmp.path().join(format!("cache-{app}"));
        build(
            &builder,
            &images,
            &src,
            &tag,
            &cache,
            &tmp.path().join(format!("work-{app}")),
        );
        let s = smoke(app);
        for runtime in ["embedded", "runc"] {
            let body = serve_and_get(&tag, runtime, &s.path);
            assert!(body.contains(&s.body_contains), "{app} ({runtime}): {body}");
        }
    }

    // A one-line change to the Node app: node_modules is reused, the new app answers.
    let src = tmp.path().join("nodejs-npm");
    let server = src.join("server.js");
    let js = std::fs::read_to_string(&server).unwrap();
    let changed = js.replace("Hello from Node.js", "Hello again from Node.js");
    assert_ne!(js, changed, "server.js has no greeting to change");
    std::fs::write(&server, changed).unwrap();
    // Through a recording proxy: the blobs the rebuild uploads are counted on the wire.
    let old = support::tools::layer_digests(&format!("docker://{}/apps/nodejs-npm:1", reg.host()));
    let proxy = support::proxy::Proxy::start(reg.addr(), vec![]);
    let tag = format!("{}/apps/nodejs-npm:1", proxy.host());
    let work = tmp.path().join("work-nodejs-npm-2");
    let log = build(
        &builder,
        &images,
        &src,
        &tag,
        &tmp.path().join("cache-nodejs-npm"),
        &work,
    );
    assert!(log.contains("reusing node_modules"), "{log}");
    assert!(!log.contains("npm ci"), "{log}");
    let export = std::fs::read_to_string(work.join("pod/logs/export.log")).unwrap();
    assert!(
        export.contains("Reusing layer 'buildpod/nodejs:modules'"),
        "{export}"
    );
    assert!(export.contains("Adding layer 'app'"), "{export}");
    let new = support::tools::layer_digests(&format!("docker://{}/apps/nodejs-npm:1", reg.host()));
    let changed: BTreeSet<String> = new.iter().filter(|d| !old.contains(d)).cloned().collect();
    assert_eq!(changed.len(), 1, "one new layer (the app's): {changed:?}");
    let config = support::tools::skopeo_inspect_raw(
        &format!("docker://{}/apps/nodejs-npm:1", reg.host()),
        &["--tls-verify=false"],
    )["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let uploaded: BTreeSet<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .filter_map(|r| r.path.split("digest=").nth(1).map(str::to_string))
        .map(|q| q.split('&').next().unwrap_or("").replace("%3A", ":"))
        .filter(|d| *d != config)
        .collect();
    assert_eq!(uploaded, changed, "only the app layer was uploaded");
    let body = serve_and_get(&tag, "embedded", "/");
    assert!(body.contains("Hello again from Node.js"), "{body}");
}
