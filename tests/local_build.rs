//! `buildpod build` end to end with the tiny stack and the hello buildpack: the build pod our
//! generator makes runs here, step by step, under the embedded sandbox and under runc, from a
//! directory, a git repository and a blob; the image lands in an OCI layout or a registry and
//! runs with `buildpod run`. Bad input fails with the step, its exit code and what was tried.
//! The build-pod and lifecycle images are static release builds, made once (tests/local_util).

mod local_util;
mod support;

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use local_util::{build_pod_images, buildpod, tiny_builder};
use support::registry::Registry;

fn skip() -> bool {
    let skip = !nix::unistd::geteuid().is_root() || support::tools::which("runc").is_none();
    if skip {
        eprintln!("skipped: needs root and runc");
    }
    skip
}

/// What every test here starts from: a registry, a temp dir, the tiny builder pushed to the
/// registry and the build-pod images. `None` (skipped) without root and runc.
fn setup() -> Option<(Registry, tempfile::TempDir, String, String)> {
    if skip() {
        return None;
    }
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let builder = tiny_builder(&reg.host(), tmp.path());
    let images = build_pod_images();
    Some((reg, tmp, builder, images))
}

fn app(dir: &Path, greeting: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("hello.txt"), format!("{greeting}\n")).unwrap();
    dir.display().to_string()
}

fn build_args<'a>(builder: &'a str, images: &'a str, work: &'a str) -> Vec<&'a str> {
    vec![
        "build",
        "--builder",
        builder,
        "--build-pod-images",
        images,
        "--work-dir",
        work,
    ]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_directory_builds_into_a_layout_and_runs_under_both_runtimes() {
    let Some((_reg, tmp, builder, images)) = setup() else {
        return;
    };
    let src = app(&tmp.path().join("hello-app"), "hello from a layout");
    let out = tmp.path().join("out");
    let work = tmp.path().join("work");
    let mut args = build_args(&builder, &images, work.to_str().unwrap());
    args.extend(["--path", &src, "--output", out.to_str().unwrap()]);
    let run = buildpod(&args);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    for step in [
        "PREPARE",
        "ANALYZE",
        "DETECT",
        "RESTORE",
        "BUILD",
        "EXPORT",
        "COMPLETION",
    ] {
        assert!(
            stderr.contains(&format!("===> {step} (")),
            "{step}: {stderr}"
        );
    }
    assert!(stderr.contains("===> image: oci:"), "{stderr}");
    // The completion step's termination message, decoded.
    let md: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(md["stackID"], "io.buildpacks.stacks.tiny");
    assert_eq!(md["buildpackMetadata"][0]["id"], "buildpod/hello");
    let latest = md["latestImage"].as_str().unwrap();
    // skopeo reads the layout, and the image is the one completion reported.
    let raw = support::tools::skopeo(&["inspect", &format!("oci:{}:hello-app", out.display())]);
    let inspected: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        inspected["Digest"].as_str().unwrap(),
        latest.rsplit_once('@').unwrap().1
    );
    assert!(latest.contains("/out@sha256:"), "{latest}");
    // Step logs are kept in the work dir.
    let log = std::fs::read_to_string(work.join("pod/logs/build.log")).unwrap();
    assert!(log.contains("greeting: hello from a layout"), "{log}");
    for runtime in ["embedded", "runc"] {
        let image = format!("oci:{}:hello-app", out.display());
        let r = buildpod(&["run", "--runtime", runtime, &image]);
        assert_eq!(r.status.code(), Some(0), "{runtime}: {}", text(&r.stderr));
        assert_eq!(text(&r.stdout), "hello from a layout\n", "{runtime}");
    }
    // A cold image cache: each layer pulled and unpacked is reported, once.
    let image = format!("oci:{}:hello-app", out.display());
    let cold = |cache: &Path| {
        Command::new(local_util::BUILDPOD)
            .args(["run", &image])
            .env("BUILDPOD_CACHE", cache)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let fresh = tmp.path().join("fresh-cache");
    let r = cold(&fresh);
    let err = text(&r.stderr);
    assert_eq!(text(&r.stdout), "hello from a layout\n", "{err}");
    let layers = support::tools::layer_digests(&image).len();
    for i in 1..=layers {
        assert!(
            err.contains(&format!("===> pulled {image} layer {i}/{layers} ")),
            "{err}"
        );
    }
    let err = text(&cold(&fresh).stderr);
    assert!(!err.contains("===> pulled"), "{err}");
}

#[test]
fn embedded_and_runc_builds_publish_the_same_digest() {
    let Some((reg, tmp, builder, images)) = setup() else {
        return;
    };
    let src = app(&tmp.path().join("app"), "same bytes");
    let mut digests = Vec::new();
    // One loopback port for both builds: the source URL is part of the image's labels.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    for runtime in ["embedded", "runc"] {
        let tag = format!("{}/apps/hello-{runtime}:1", reg.host());
        let work = tmp.path().join(format!("work-{runtime}"));
        let mut args = build_args(&builder, &images, work.to_str().unwrap());
        args.extend(["--local-port", &port]);
        args.extend([
            "--path",
            &src,
            "--tag",
            &tag,
            "--publish",
            "--runtime",
            runtime,
        ]);
        let run = buildpod(&args);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        let md: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let latest = md["latestImage"].as_str().unwrap().to_string();
        assert!(latest.starts_with(&format!("{}/apps/hello-{runtime}@sha256:", reg.host())));
        digests.push(latest.rsplit_once('@').unwrap().1.to_string());
        let r = buildpod(&["run", &tag]);
        assert_eq!(text(&r.stdout), "same bytes\n");
    }
    assert_eq!(digests[0], digests[1]);
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git_daemon(base: &Path) -> (Daemon, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Daemon(child);
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (d, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("git daemon did not start");
}

#[test]
fn git_and_blob_sources_build_and_a_rebuild_reuses_the_previous_image() {
    let Some((_reg, tmp, builder, images)) = setup() else {
        return;
    };
    let repos = tmp.path().join("repos");
    let repo = repos.join("app.git");
    app(&repo, "from git");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-qm",
        "one",
    ]);
    let (_daemon, port) = git_daemon(&repos);
    let out = tmp.path().join("out");
    let url = format!("git://127.0.0.1:{port}/app.git");
    let work = tmp.path().join("work-git");
    let mut args = build_args(&builder, &images, work.to_str().unwrap());
    args.extend(["--git", &url, "--revision", "main", "--tag", "app"]);
    args.extend(["--output", out.to_str().unwrap()]);
    let run = buildpod(&args);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let image = format!("oci:{}:app", out.display());
    assert_eq!(text(&buildpod(&["run", &image]).stdout), "from git\n");

    // A blob source (a tarball served over HTTP), built into the same layout: the analyzer
    // finds the previous image there.
    let tarball = tmp.path().join("app.tar.gz");
    let src = app(&tmp.path().join("blob-src"), "from a blob");
    let status = Command::new("tar")
        .args(["-czf", tarball.to_str().unwrap(), "-C", &src, "."])
        .status()
        .unwrap();
    assert!(status.success());
    let server = buildpod::local::server::LocalServer::start(
        None,
        tmp.path(),
        std::collections::HashMap::from([("app.tar.gz".to_string(), tarball)]),
        0,
    )
    .unwrap();
    let url = server.source_url("app.tar.gz");
    let work = tmp.path().join("work-blob");
    let mut args = build_args(&builder, &images, work.to_str().unwrap());
    args.extend([
        "--blob",
        &url,
        "--tag",
        "app",
        "--output",
        out.to_str().unwrap(),
    ]);
    let run = buildpod(&args);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let analyze = std::fs::read_to_string(work.join("pod/logs/analyze.log")).unwrap();
    assert!(
        !analyze.contains("not found"),
        "previous image not found: {analyze}"
    );
    assert_eq!(text(&buildpod(&["run", &image]).stdout), "from a blob\n");
}

#[test]
fn bad_input_names_the_builder_the_failed_step_and_what_was_tried() {
    let Some((reg, tmp, builder, images)) = setup() else {
        return;
    };
    let work = tmp.path().join("work");
    let w = work.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();

    // An unknown builder: nothing runs.
    let unknown = format!("{}/builder/nope:1", reg.host());
    let mut args = build_args(&unknown, &images, w);
    let src = app(&tmp.path().join("app"), "x");
    args.extend(["--path", &src, "--output", o]);
    let run = buildpod(&args);
    assert_eq!(run.status.code(), Some(1));
    let err = text(&run.stderr);
    assert!(
        err.contains(&format!("ERROR: builder {unknown}: ")),
        "{err}"
    );
    assert!(!err.contains("===> PREPARE"), "{err}");

    // An app no buildpack detects: the detect step fails, its log lists what was tried.
    let empty = tmp.path().join("empty-app");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("README"), "no hello.txt\n").unwrap();
    let mut args = build_args(&builder, &images, w);
    args.extend(["--path", empty.to_str().unwrap(), "--output", o]);
    let run = buildpod(&args);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    let err = text(&run.stderr);
    assert!(
        err.contains("===> DETECT failed with exit code 20"),
        "{err}"
    );
    assert!(err.contains("buildpod/hello"), "{err}");
    assert!(!err.contains("===> BUILD ("), "{err}");

    // Publishing to a registry nobody listens on: export fails, nothing is tagged.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tag = format!("{dead}/app:1");
    let mut args = build_args(&builder, &images, w);
    args.extend(["--path", &src, "--tag", &tag, "--publish"]);
    let run = buildpod(&args);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    let err = text(&run.stderr);
    assert!(err.contains("failed with exit code"), "{err}");
}

#[test]
fn a_failing_buildpack_and_a_builder_without_cnb_user_id_fail_clearly() {
    let Some((reg, tmp, builder, images)) = setup() else {
        return;
    };
    let work = tmp.path().join("work");
    let w = work.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let src = app(&tmp.path().join("app"), "x");

    // The buildpack's build fails: the build step fails with the lifecycle's code and the
    // buildpack's own message; nothing is exported.
    let mut args = build_args(&builder, &images, w);
    args.extend(["--path", &src, "--output", o]);
    args.extend(["--env", "BP_HELLO_FAIL=the greeting is not polite"]);
    let run = buildpod(&args);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{err}");
    assert!(err.contains("ERROR: the greeting is not polite"), "{err}");
    assert!(err.contains("===> BUILD failed with exit code 51"), "{err}");
    assert!(!err.contains("===> EXPORT ("), "{err}");
    let index = std::fs::read(out.join("index.json")).unwrap_or_else(|_| b"{}".to_vec());
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert!(
        index["manifests"].as_array().is_none_or(|m| m.is_empty()),
        "nothing was tagged: {index}"
    );

    // A builder whose image has no CNB_USER_ID: refused before anything runs, naming it.
    let layout = tmp.path().join("nouser");
    let l = layout.display().to_string();
    local_util::ok(&["image", "copy", &builder, &format!("oci:{l}:b")]);
    let env = support::tools::skopeo_inspect_config(&format!("oci:{l}:b"), &[]);
    let mut umoci = vec![
        "config".to_string(),
        "--no-history".into(),
        "--image".into(),
        format!("{l}:b"),
        "--clear=config.env".into(),
    ];
    for e in env["config"]["Env"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        if !e.starts_with("CNB_USER_ID=") {
            umoci.extend(["--config.env".to_string(), e.to_string()]);
        }
    }
    support::tools::umoci(&umoci.iter().map(String::as_str).collect::<Vec<_>>());
    let nouser = format!("{}/builder/nouser:1", reg.host());
    local_util::ok(&["image", "copy", &format!("oci:{l}:b"), &nouser]);
    let mut args = build_args(&nouser, &images, w);
    args.extend(["--path", &src, "--output", o]);
    let run = buildpod(&args);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains(&nouser), "{err}");
    assert!(err.contains("CNB_USER_ID"), "{err}");
    assert!(!err.contains("===> PREPARE"), "{err}");
}

/// Lines of `r` sent to a channel as they come.
fn lines(r: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn ctrl_c_mid_export_tags_nothing_and_keeps_the_cache() {
    let Some((_reg, tmp, builder, images)) = setup() else {
        return;
    };
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let src = app(&tmp.path().join("app"), "cached");
    let work = |n: &str| tmp.path().join(format!("work-{n}")).display().to_string();
    let args = |w: &str| {
        let mut a: Vec<String> = build_args(&builder, &images, w)
            .into_iter()
            .map(String::from)
            .collect();
        a.extend(
            [
                "--path",
                &src,
                "--tag",
                "app",
                "--output",
                o,
                "--cache-dir",
                c,
                "--env",
                "BP_HELLO_COUNT_BUILDS=true",
            ]
            .map(String::from),
        );
        a
    };
    let tagged = || {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        index["manifests"].clone()
    };

    let w1 = work("1");
    let first = args(&w1);
    let run = buildpod(&first.iter().map(String::as_str).collect::<Vec<_>>());
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{err}");
    assert!(err.contains("build number 1"), "{err}");
    let before = tagged();

    // A slow export (300 MiB of random data), interrupted as Ctrl-C does: SIGINT to the
    // whole foreground process group.
    let w2 = work("2");
    let mut second = args(&w2);
    second.extend(["--env".into(), "BP_HELLO_PAYLOAD_MB=300".into()]);
    let mut child = Command::new(local_util::BUILDPOD)
        .args(&second)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let rx = lines(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("no export step: {seen:#?}"));
        let export = line.starts_with("===> EXPORT");
        seen.push(line);
        if export {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let err = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted by SIGINT during export: stopped, nothing was tagged"),
        "{err}"
    );
    assert!(!err.contains("===> COMPLETION"), "{err}");
    assert_eq!(tagged(), before, "the interrupted build tagged nothing");

    // The cache is the first build's, intact: the next build restores it.
    let w3 = work("3");
    let third = args(&w3);
    let run = buildpod(&third.iter().map(String::as_str).collect::<Vec<_>>());
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{err}");
    assert!(err.contains("build number 2"), "{err}");
    assert_eq!(
        text(&buildpod(&["run", &format!("oci:{o}:app")]).stdout),
        "cached\n"
    );
}

/// Tag `tag` in the layout at `dir` anew with one more layer holding `name`. (umoci 0.4.7's
/// `insert` writes a tar without its end blocks, which tar readers reject.)
fn add_file_layer(dir: &Path, tag: &str, name: &str, body: &str) {
    use buildpod::layer::{CompressOptions, Compression, TarOptions};
    use buildpod::oci::assemble::{push_layer, write_manifest};
    let store = buildpod::oci::layout::Layout::open(dir).unwrap();
    let platform = buildpod::oci::PlatformSpec::new("linux", "amd64", None);
    let view = buildpod::oci::view::ImageView::load(&store, tag, &platform)
        .unwrap()
        .unwrap();
    let layer = push_layer(
        &store,
        &TarOptions::default(),
        &CompressOptions::new(Compression::Gzip),
        buildpod::oci::media::OCI_MANIFEST,
        &|t| t.file_entry(name.as_bytes(), 0o644, body.as_bytes()),
    )
    .unwrap();
    let mut config = view.config.clone();
    config.push_layer(&layer.info.diff_id, None);
    let mut descs = view.image.layers().clone();
    descs.push(layer.descriptor());
    write_manifest(
        &store,
        &config,
        descs,
        buildpod::oci::media::OCI_MANIFEST,
        &[tag.to_string()],
    )
    .unwrap();
}

#[test]
fn rebase_moves_the_app_onto_a_rebuilt_run_image() {
    let Some((reg, tmp, builder, images)) = setup() else {
        return;
    };
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let src = app(&tmp.path().join("app"), "rebased");
    let work = tmp.path().join("work");
    let mut args = build_args(&builder, &images, work.to_str().unwrap());
    args.extend(["--path", &src, "--tag", "app", "--output", o]);
    let run = buildpod(&args);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let image = format!("oci:{o}:app");
    let before = support::tools::layer_digests(&image);
    let run_ref = format!("{}/stacks/tiny/run:1", reg.host());
    let old_run = support::tools::layer_digests(&format!("docker://{run_ref}"));
    assert_eq!(before[..old_run.len()], old_run[..]);

    // A rebuilt run image (one more layer, e.g. a security patch) under the same tag.
    let patched = tmp.path().join("patched");
    let p = patched.display().to_string();
    local_util::ok(&["image", "copy", &run_ref, &format!("oci:{p}:run")]);
    add_file_layer(&patched, "run", "etc/stack-patch", "2\n");
    local_util::ok(&["image", "copy", &format!("oci:{p}:run"), &run_ref]);
    let new_run = support::tools::layer_digests(&format!("docker://{run_ref}"));
    assert_eq!(new_run.len(), old_run.len() + 1);

    let work = tmp.path().join("work-rebase");
    let mut args = build_args(&builder, &images, work.to_str().unwrap());
    // As kpack does on a stack update: the builder is reconciled (its relocated run image is
    // the new one), then the image is rebased onto it.
    local_util::ok(&[
        "builder",
        "create",
        "--config",
        tmp.path().join("builder.toml").to_str().unwrap(),
        "--tag",
        &builder,
    ]);
    args.extend(["--rebase", "--tag", "app", "--output", o]);
    let run = buildpod(&args);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{err}");
    assert!(err.contains("===> REBASE"), "{err}");
    assert!(!err.contains("===> PREPARE"), "{err}");
    let after = support::tools::layer_digests(&image);
    assert_eq!(after[..new_run.len()], new_run[..], "the new run image");
    assert_eq!(
        after[new_run.len()..],
        before[old_run.len()..],
        "the app's layers, untouched"
    );
    let ran = buildpod(&["run", &image]);
    assert_eq!(text(&ran.stdout), "rebased\n", "{}", text(&ran.stderr));

    // Rebasing what was never built says so.
    let mut args = build_args(&builder, &images, work.to_str().unwrap());
    args.extend(["--rebase", "--tag", "never", "--output", o]);
    let run = buildpod(&args);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("--rebase oci:{o}:never")), "{err}");
}
