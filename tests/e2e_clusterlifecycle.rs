//! Our first end-to-end build, kept as a regression test: our lifecycle image is built and
//! pushed to a real registry, selected into a directory as the build pod's init step does, the
//! platform API negotiated from its `lifecycle.toml`, and for Platform API 0.9 and 0.13 the five
//! phases run from that directory with exactly the phase driver's commands, args and env, as
//! the build user (kpack runs every lifecycle container as `CNB_USER_ID`). A POSIX-sh buildpack
//! builds a hello app onto a busybox run image with no bash; the image must pass `skopeo
//! inspect`, and its default process, unpacked by umoci, must run under runc.
//!
//! The lifecycle image is made from the binaries cargo built for the test run (a static release
//! build takes minutes); the dev launcher is dynamically linked, so the run image carries the
//! libraries `ldd` names for it, and nothing else besides busybox.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod launcher_util;
mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use buildpod::clusterlifecycle::phases::{plan, BuildParams, Cache, Phase};
use buildpod::clusterlifecycle::{negotiate, BuildpackApi, LifecycleDescriptor};
use buildpod::layer::Compression;
use buildpod::lifecycle::api::{ApiVersion, PLATFORM_APIS};
use buildpod::oci::assemble::write_image;
use buildpod::oci::{media, ImageConfig, PlatformSpec};
use buildpod::registry::{Client, ClientOptions, Repo};
use launcher_util::{copy_libraries, find_tool, is_root};
use support::registry::Registry;
use support::tools;

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");
const LIFECYCLE: &str = env!("CARGO_BIN_EXE_lifecycle");
const LAUNCHER: &str = env!("CARGO_BIN_EXE_launcher");
/// The stack's build user (the builder image's `CNB_USER_ID`/`CNB_GROUP_ID`).
const CNB_ID: u32 = 1000;
const EPOCH: i64 = 1_700_000_000;

const DETECT: &str = "#!/bin/sh\nexit 0\n";

/// Only POSIX sh and busybox applets: neither the build nor the app may need bash.
const BUILD: &str = r#"#!/bin/sh
set -eu
layer="$CNB_LAYERS_DIR/hello"
mkdir -p "$layer/bin" "$layer/env.launch"
printf '#!/bin/sh\necho "hello from $GREETING in $(pwd) as $(id -u)"\n' > "$layer/bin/hello"
chmod +x "$layer/bin/hello"
printf 'buildpacks' > "$layer/env.launch/GREETING"
printf '[types]\nlaunch = true\ncache = true\n' > "$CNB_LAYERS_DIR/hello.toml"
cat > "$CNB_LAYERS_DIR/launch.toml" <<EOF
[[processes]]
type = "web"
command = ["hello"]
default = true
EOF
echo "built as $(id -u)"
"#;

fn write(p: &Path, s: &str, mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_tree(p: &Path) {
    std::os::unix::fs::lchown(p, Some(CNB_ID), Some(CNB_ID)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path());
        }
    }
}

/// A directory the build user owns, as kpack's volumes are (fsGroup, prepare's chown).
fn user_dir(p: &Path) -> PathBuf {
    fs::create_dir_all(p).unwrap();
    chown_tree(p);
    p.to_path_buf()
}

fn buildpod(args: &[&str]) -> String {
    let out = Command::new(BUILDPOD).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "buildpod {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// `stack/run:busybox`: static busybox with every applet, the dev launcher's libraries, no
/// bash; runs as the build user like real stacks.
fn push_run_image(reg: &Registry, arch: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is installed by ci/test");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    assert!(!root.join("bin/bash").exists(), "busybox has no bash");
    copy_libraries(Path::new(LAUNCHER), root);
    fs::write(root.join("etc/stack-id"), "io.buildpod.stacks.busybox\n").unwrap();

    let client = Client::new(ClientOptions::default()).unwrap();
    let run = Repo::new(client, &reg.host(), "stack/run");
    let layer = common::dir_layer(&run, root, Compression::Gzip, 2);
    let mut cfg = ImageConfig::new("linux", arch);
    cfg.set_created(Some("1980-01-01T00:00:01Z"));
    cfg.set_env("PATH", "/bin");
    cfg.set_user(Some(&format!("{CNB_ID}:{CNB_ID}")));
    cfg.set_label("io.buildpacks.stack.id", "io.buildpod.stacks.busybox");
    write_image(
        &run,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &["busybox".to_string()],
    )
    .unwrap();
    format!("{}/stack/run:busybox", reg.host())
}

/// Everything shared by the builds: registry, run image, selected lifecycle, buildpack.
struct World {
    tmp: tempfile::TempDir,
    reg: Registry,
    run_image: String,
    lifecycle_dir: PathBuf,
    descriptor: LifecycleDescriptor,
}

impl World {
    fn root(&self) -> &Path {
        self.tmp.path()
    }
}

/// Build our lifecycle image into the registry and select it into a directory (the init step).
fn setup() -> World {
    let tmp = tempfile::tempdir().unwrap();
    // The build user must reach the lifecycle, the buildpacks and its own dirs.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let reg = Registry::plain();
    let arch = PlatformSpec::host().arch;
    let run_image = push_run_image(&reg, &arch);

    let lc_ref = format!("{}/buildpod/lifecycle:e2e", reg.host());
    let digest = buildpod(&[
        "lifecycle",
        "image",
        &lc_ref,
        "--lifecycle",
        LIFECYCLE,
        "--launcher",
        LAUNCHER,
        "--arch",
        &arch,
    ]);
    let pushed: serde_json::Value = serde_json::from_str(&tools::skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{lc_ref}"),
    ]))
    .unwrap();
    assert_eq!(pushed["Digest"], digest);

    // The target platform comes from the stack image, as the build pod's init step takes it.
    let lifecycle_dir = tmp.path().join("cnb/lifecycle");
    let out = buildpod(&[
        "lifecycle",
        "select",
        "--image",
        &lc_ref,
        "--platform-of",
        &run_image,
        "--target",
        lifecycle_dir.to_str().unwrap(),
    ]);
    assert!(
        out.starts_with(&format!("selected linux/{arch} layer sha256:")),
        "{out}"
    );
    assert!(out.contains(" by os label from "), "{out}");
    let toml = fs::read_to_string(lifecycle_dir.join("lifecycle.toml")).unwrap();
    let descriptor = LifecycleDescriptor::parse_toml(&toml, "selected lifecycle.toml").unwrap();
    assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"));

    let bp = tmp.path().join("cnb/buildpacks/acme_hello/1.0.0");
    write(
        &bp.join("buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"acme/hello\"\nversion = \"1.0.0\"\n",
        0o644,
    );
    write(&bp.join("bin/detect"), DETECT, 0o755);
    write(&bp.join("bin/build"), BUILD, 0o755);
    write(
        &tmp.path().join("cnb/order.toml"),
        "[[order]]\n[[order.group]]\nid = \"acme/hello\"\nversion = \"1.0.0\"\n",
        0o644,
    );
    World {
        tmp,
        reg,
        run_image,
        lifecycle_dir,
        descriptor,
    }
}

/// kpack's build parameters with the pod's paths moved into `dir` and the lifecycle, order,
/// buildpacks and launcher taken from the selected directory and the world.
fn params(w: &World, api: ApiVersion, dir: &Path, tags: Vec<String>) -> BuildParams {
    let mut p = BuildParams::kpack(tags, &w.run_image);
    p.lifecycle_dir = w.lifecycle_dir.clone();
    p.layers_dir = user_dir(&dir.join("layers"));
    p.app_dir = user_dir(&dir.join("workspace"));
    write(&p.app_dir.join("index.html"), "<h1>hi</h1>\n", 0o644);
    p.platform_dir = dir.join("platform");
    fs::create_dir_all(&p.platform_dir).unwrap();
    p.home = Some(user_dir(&dir.join("home")).display().to_string());
    p.service_binding_root = Some(p.platform_dir.join("bindings").display().to_string());
    p.report = user_dir(&dir.join("report")).join("report.toml");
    p.project_metadata = p.layers_dir.join("project-metadata.toml");
    p.order = Some(w.root().join("cnb/order.toml"));
    p.buildpacks_dir = Some(w.root().join("cnb/buildpacks"));
    p.launcher = Some(w.lifecycle_dir.join("launcher"));
    p.source_date_epoch = Some(EPOCH);
    if api >= ApiVersion::new(0, 12) {
        let run_toml = dir.join("run.toml");
        write(
            &run_toml,
            &format!("[[images]]\nimage = \"{}\"\n", w.run_image),
            0o644,
        );
        p.run_toml = Some(run_toml);
        p.cache = Cache::Image {
            tag: format!("{}/e2e/hello-cache:{api}", w.reg.host()),
            previous: None,
        };
        p.insecure_registries = vec![w.reg.host()];
    } else {
        let stack_toml = dir.join("stack.toml");
        write(
            &stack_toml,
            &format!("[run-image]\nimage = \"{}\"\n", w.run_image),
            0o644,
        );
        p.stack_toml = Some(stack_toml);
        p.cache = Cache::Dir(user_dir(&dir.join("cache")));
    }
    p
}

/// Run the driver's five phases for `api` as the build user; returns their combined output.
fn build(w: &World, api: ApiVersion, p: &BuildParams) -> String {
    let phases = plan(api, p).unwrap();
    assert_eq!(
        phases.iter().map(|i| i.phase).collect::<Vec<_>>(),
        Phase::ALL
    );
    let mut log = String::new();
    for inv in phases {
        assert_eq!(inv.command, w.lifecycle_dir.join(inv.phase.binary()));
        // The container's env: the builder image's, then the driver's.
        let out = Command::new(&inv.command)
            .args(&inv.args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("CNB_USER_ID", CNB_ID.to_string())
            .env("CNB_GROUP_ID", CNB_ID.to_string())
            .envs(inv.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&p.app_dir)
            .uid(CNB_ID)
            .gid(CNB_ID)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "platform {api}: {} {:?} env {:?}: {}\n{text}",
            inv.phase.name(),
            inv.args,
            inv.env,
            out.status
        );
        log.push_str(&text);
    }
    log
}

/// Pull `image` into a layout, unpack it with umoci and run its default process under runc
/// (umoci's runtime config, with no terminal: tests have none).
fn run_default_process(image: &str, id: &str) -> (serde_json::Value, i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let lay = tmp.path().join("oci");
    tools::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &format!("oci:{}:app", lay.display()),
    ]);
    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&lay, "app", &bundle);
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = false.into();
    // Root here cannot raise rlimits above the host's hard limits.
    cfg["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]);
    fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

    let state = tmp.path().join("runc-state");
    let id = format!("{id}-{}", std::process::id());
    let runc = find_tool("runc").expect("runc is installed by ci/test");
    let out = Command::new(&runc)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // `runc run` deletes the container when its process exits; this is only a safety net.
    let _ = Command::new(&runc)
        .arg("--root")
        .arg(&state)
        .args(["delete", "-f", &id])
        .output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.join("rootfs");
    let launcher_sha = tools::sha256_file(&rootfs.join("cnb/lifecycle/launcher"));
    assert!(
        !rootfs.join("bin/bash").exists(),
        "no bash in the app image"
    );
    assert_eq!(
        launcher_sha,
        tools::sha256_file(Path::new(LAUNCHER)),
        "the launcher comes from the selected lifecycle"
    );
    (
        cfg["process"]["args"].clone(),
        out.status.code().unwrap_or(-1),
        text,
    )
}

#[test]
fn lifecycle_image_selected_and_driven_builds_a_runnable_image_at_platform_0_9_and_0_13() {
    if !is_root() {
        eprintln!("skipping: the end-to-end build runs phases as the build user and runc, which needs root");
        return;
    }
    tools::require("skopeo");
    tools::require("umoci");
    assert!(find_tool("runc").is_some(), "runc is installed by ci/test");
    let w = setup();
    let buildpacks = [BuildpackApi {
        id: "acme/hello".into(),
        version: "1.0.0".into(),
        api: "0.10".into(),
    }];
    let highest = negotiate(&w.descriptor.apis, PLATFORM_APIS, None, &buildpacks).unwrap();
    assert_eq!(highest.platform, *PLATFORM_APIS.iter().max().unwrap());

    for max in [ApiVersion::new(0, 9), ApiVersion::new(0, 13)] {
        // A builder that caps the platform API gets exactly that version.
        let api = negotiate(&w.descriptor.apis, PLATFORM_APIS, Some(max), &buildpacks)
            .unwrap()
            .platform;
        assert_eq!(api, max);
        assert!(!w
            .descriptor
            .apis
            .platform
            .deprecated
            .contains(&api.to_string()));

        let dir = w.root().join(format!("build-{api}"));
        fs::create_dir_all(&dir).unwrap();
        let image = format!("{}/e2e/hello:{api}", w.reg.host());
        let also = format!("{}/e2e/hello:latest-{api}", w.reg.host());
        let p = params(&w, api, &dir, vec![image.clone(), also.clone()]);
        let log = build(&w, api, &p);
        assert!(
            log.contains(&format!("built as {CNB_ID}")),
            "platform {api}: {log}"
        );
        assert!(
            log.contains("Adding layer 'acme/hello:hello'"),
            "platform {api}: {log}"
        );
        assert!(
            log.contains("Adding cache layer 'acme/hello:hello'"),
            "platform {api}: {log}"
        );

        // The report names the digest both tags point at, and skopeo accepts the image.
        let report = fs::read_to_string(&p.report).unwrap();
        let inspect = |r: &str| -> serde_json::Value {
            serde_json::from_str(&tools::skopeo(&[
                "inspect",
                "--tls-verify=false",
                &format!("docker://{r}"),
            ]))
            .unwrap()
        };
        let got = inspect(&image);
        let digest = got["Digest"].as_str().unwrap().to_string();
        assert!(
            report.contains(&format!("digest = \"{digest}\"")),
            "{report}"
        );
        assert_eq!(inspect(&also)["Digest"], digest.as_str());
        assert_eq!(got["Architecture"], PlatformSpec::host().arch.as_str());
        assert_eq!(got["Created"], "2023-11-14T22:13:20Z");
        let labels = &got["Labels"];
        assert_eq!(
            labels["io.buildpacks.stack.id"], "io.buildpod.stacks.busybox",
            "{api}"
        );
        let meta: serde_json::Value =
            serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap())
                .unwrap();
        assert_eq!(meta["stack"]["runImage"]["image"], w.run_image.as_str());
        let build_meta: serde_json::Value =
            serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap()).unwrap();
        assert_eq!(build_meta["buildpacks"][0]["id"], "acme/hello");
        let env = got["Env"].to_string();
        assert!(env.contains(&format!("CNB_PLATFORM_API={api}")), "{env}");

        // Its default process runs under runc, as the run image's user.
        let (args, code, out) = run_default_process(&image, &format!("e2e-{api}"));
        assert_eq!(args, serde_json::json!(["/cnb/process/web"]));
        assert_eq!(code, 0, "platform {api}: {out}");
        assert_eq!(
            out,
            format!(
                "hello from buildpacks in {} as {CNB_ID}\n",
                p.app_dir.display()
            ),
            "platform {api}"
        );
    }
}
