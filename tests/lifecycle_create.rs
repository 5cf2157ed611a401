//! End to end in one process: `lifecycle creator` builds an app with a POSIX-sh buildpack onto a
//! busybox run image in a real registry, as the build user; the image is pulled with skopeo,
//! unpacked with umoci and its processes run under chroot through our launcher. A rebuild reuses
//! the unchanged layers and the cache.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod launcher_util;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use buildpod::layer::Compression;
use buildpod::registry::{Client, ClientOptions, Repo};
use launcher_util::{find_tool, is_root, Rootfs};
use support::registry::Registry;
use support::tools;

fn write(p: &Path, s: &str, mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

const BUILD: &str = r#"#!/bin/sh
set -eu
layer="$CNB_LAYERS_DIR/hello"
mkdir -p "$layer/bin" "$layer/env.launch" "$layer/exec.d"
printf '#!/bin/sh\necho "hello from $GREETING in $(pwd) ($FROM_EXECD)"\n' > "$layer/bin/hello"
printf '#!/bin/sh\necho "FROM_EXECD = \\"exec.d\\"" >&3\n' > "$layer/exec.d/helper"
chmod +x "$layer/exec.d/helper"
chmod +x "$layer/bin/hello"
printf 'buildpacks' > "$layer/env.launch/GREETING"
printf '[types]\nlaunch = true\ncache = true\n[metadata]\nversion = "1"\n' > "$CNB_LAYERS_DIR/hello.toml"
cat > "$CNB_LAYERS_DIR/launch.toml" <<EOF
[[processes]]
type = "web"
command = ["hello"]
default = true

[[processes]]
type = "greet"
command = ["echo"]
args = ["named", "process"]
EOF
echo "built as $(id -u)"
"#;

/// `stack/run:1` with `/etc/stack-version` = `version`.
fn push_run_image(reg: &Registry, version: &str) {
    let rootfs = Rootfs::new();
    fs::remove_dir_all(rootfs.path("cnb")).unwrap();
    rootfs.write("etc/stack-version", version);
    let client = Client::new(ClientOptions::default()).unwrap();
    let run = Repo::new(client, &reg.host(), "stack/run");
    common::dir_image(&run, rootfs.root(), Compression::Gzip, "amd64", "1");
}

/// Pull `image` and unpack it; returns (tempdir, rootfs, env, entrypoint).
fn unpack(image: &str) -> (tempfile::TempDir, PathBuf, Vec<String>, String) {
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
    let cfg = tools::skopeo_inspect_config(&format!("oci:{}:app", lay.display()), &[]);
    let env: Vec<String> = cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let entrypoint = cfg["config"]["Entrypoint"][0].as_str().unwrap().to_string();
    let rootfs = bundle.join("rootfs");
    (tmp, rootfs, env, entrypoint)
}

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    reg: Registry,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        // The build user must reach the app, buildpacks and launcher.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let reg = Registry::plain();
        // Run image: busybox, bash and the launcher's libraries (the test launcher is dynamic).
        push_run_image(&reg, "1");

        let bp = root.join("buildpacks/acme_hello/1.0.0");
        write(
            &bp.join("buildpack.toml"),
            "api = \"0.10\"\n[buildpack]\nid = \"acme/hello\"\nversion = \"1.0.0\"\n",
            0o644,
        );
        write(&bp.join("bin/detect"), "#!/bin/sh\nexit 0\n", 0o755);
        write(&bp.join("bin/build"), BUILD, 0o755);
        write(
            &root.join("order.toml"),
            "[[order]]\n[[order.group]]\nid = \"acme/hello\"\nversion = \"1.0.0\"\n",
            0o644,
        );
        write(
            &root.join("run.toml"),
            &format!("[[images]]\nimage = \"{}/stack/run:1\"\n", reg.host()),
            0o644,
        );
        write(&root.join("workspace/index.html"), "<h1>hi</h1>\n", 0o644);
        fs::create_dir_all(root.join("platform")).unwrap();
        fs::create_dir_all(root.join("layers")).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_launcher"), root.join("launcher")).unwrap();
        World {
            _tmp: tmp,
            root,
            reg,
        }
    }

    fn creator(&self, image: &str) -> (i32, String) {
        let run = self.root.join("run.toml");
        self.creator_with("0.13", &["-run", run.to_str().unwrap()], image)
    }

    fn creator_with(&self, api: &str, extra: &[&str], image: &str) -> (i32, String) {
        let r = &self.root;
        let layers = r.join(format!("layers-{api}"));
        let layers = if api == "0.13" {
            r.join("layers")
        } else {
            layers
        };
        fs::create_dir_all(&layers).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
            .arg("creator")
            .env("CNB_PLATFORM_API", api)
            .env("CNB_USER_ID", "1000")
            .env("CNB_GROUP_ID", "1000")
            .env("HOME", r)
            .args(["-app", r.join("workspace").to_str().unwrap()])
            .args(["-layers", layers.to_str().unwrap()])
            .args(["-buildpacks", r.join("buildpacks").to_str().unwrap()])
            .args(["-order", r.join("order.toml").to_str().unwrap()])
            .args(["-platform", r.join("platform").to_str().unwrap()])
            .args(extra)
            .args(["-launcher", r.join("launcher").to_str().unwrap()])
            .args(["-cache-dir", r.join("cache").to_str().unwrap()])
            .arg(image)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

/// Run `argv` in the unpacked image under chroot with the image's environment.
fn chroot(rootfs: &Path, env: &[String], argv: &[&str]) -> (i32, String) {
    let out = Command::new(find_tool("chroot").unwrap())
        .arg(rootfs)
        .args(argv)
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .current_dir("/")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn creator_builds_exports_and_the_image_runs() {
    if !is_root() {
        eprintln!("skipping: the creator test drops privileges and runs chroot, which needs root");
        return;
    }
    tools::require("skopeo");
    tools::require("umoci");
    let w = World::new();
    let image = format!("{}/acme/app:1", w.reg.host());
    let (code, out) = w.creator(&image);
    assert_eq!(code, 0, "{out}");
    for banner in [
        "ANALYZING",
        "DETECTING",
        "RESTORING",
        "BUILDING",
        "EXPORTING",
    ] {
        assert!(out.contains(&format!("===> {banner}")), "{out}");
    }
    assert!(
        out.contains("built as 1000"),
        "buildpack ran as the build user: {out}"
    );
    assert!(out.contains("Adding layer 'acme/hello:hello'"), "{out}");
    assert!(
        out.contains("Adding cache layer 'acme/hello:hello'"),
        "{out}"
    );
    let report = fs::read_to_string(w.root.join("layers/report.toml")).unwrap();
    assert!(report.contains(&image), "{report}");

    // Pull, unpack, run.
    let (_tmp, rootfs, env, entrypoint) = unpack(&image);
    assert_eq!(entrypoint, "/cnb/process/web");
    let app = w.root.join("workspace");
    let (code, out) = chroot(&rootfs, &env, &[&entrypoint]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("hello from buildpacks in {} (exec.d)\n", app.display())
    );
    let (code, out) = chroot(&rootfs, &env, &["/cnb/process/greet"]);
    assert_eq!((code, out.as_str()), (0, "named process\n"));
    let (code, out) = chroot(&rootfs, &env, &["/cnb/process/greet", "overridden"]);
    assert_eq!((code, out.as_str()), (0, "overridden\n"));
    let (code, _) = chroot(
        &rootfs,
        &env,
        &["/cnb/lifecycle/launcher", "--", "sh", "-c", "exit 7"],
    );
    assert_eq!(code, 7, "the app's exit code passes through");

    // Rebase onto a new run image of the same name: the app still runs on the new base.
    push_run_image(&w.reg, "2");
    let rebased = format!("{}/acme/app:rebased", w.reg.host());
    let out = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .arg("rebaser")
        .env("CNB_PLATFORM_API", "0.13")
        .env("HOME", &w.root)
        .args(["-previous-image", &image, "-report"])
        .arg(w.root.join("rebase-report.toml"))
        .arg(&rebased)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_tmp2, rootfs2, env2, entrypoint2) = unpack(&rebased);
    assert_eq!(
        fs::read_to_string(rootfs2.join("etc/stack-version")).unwrap(),
        "2"
    );
    let (code, out) = chroot(&rootfs2, &env2, &[&entrypoint2]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("hello from buildpacks"), "{out}");

    // Rebuild of the same image: unchanged layers are reused, the cached layer is restored.
    let (code, out) = w.creator(&image);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Reusing layer 'acme/hello:hello'"), "{out}");
    assert!(out.contains("Reusing layer 'app'"), "{out}");
    assert!(
        out.contains("Reusing cache layer 'acme/hello:hello'"),
        "{out}"
    );
    assert!(
        out.contains("Restoring data for \"acme/hello:hello\" from cache"),
        "{out}"
    );
}

#[test]
fn creator_across_platform_apis() {
    if !is_root() {
        eprintln!("skipping: the creator test drops privileges, which needs root");
        return;
    }
    let w = World::new();
    write(
        &w.root.join("stack.toml"),
        &format!("[run-image]\nimage = \"{}/stack/run:1\"\n", w.reg.host()),
        0o644,
    );
    let run = w.root.join("run.toml");
    let stack = w.root.join("stack.toml");
    for minor in [7, 9, 11, 12, 14] {
        let api = format!("0.{minor}");
        let extra = if minor < 12 {
            ["-stack", stack.to_str().unwrap()]
        } else {
            ["-run", run.to_str().unwrap()]
        };
        let image = format!("{}/acme/app:api{minor}", w.reg.host());
        let (code, out) = w.creator_with(&api, &extra, &image);
        assert_eq!(code, 0, "platform {api}: {out}");
        let cfg =
            tools::skopeo_inspect_config(&format!("docker://{image}"), &["--tls-verify=false"]);
        let env = cfg["config"]["Env"].to_string();
        assert!(
            env.contains(&format!("CNB_PLATFORM_API={api}")),
            "{api}: {env}"
        );
        let meta: serde_json::Value = serde_json::from_str(
            cfg["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            meta["stack"]["runImage"]["image"],
            format!("{}/stack/run:1", w.reg.host()),
            "{api}"
        );
        assert_eq!(
            meta["runImage"].get("image").is_some(),
            minor >= 12,
            "{api}: {meta}"
        );
    }
}
