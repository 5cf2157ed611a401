//! Shared setup of the local-mode end-to-end tests: the static build-pod and lifecycle images
//! (release builds, made once per target dir under a file lock and reused by every test
//! binary), and a tiny-stack builder with the hello buildpack in a test registry.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join("target"))
}

/// Run `script DEST` once per target dir (the static release build takes minutes).
fn built_once(script: &str, name: &str) -> String {
    let dir = target_dir().join("e2e-images");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = File::create(dir.join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    let layout = dir.join(name);
    let done = dir.join(format!("{name}.done"));
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&layout);
        let dest = if name == "lifecycle" {
            format!("oci:{}:latest", layout.display())
        } else {
            format!("oci:{}", layout.display())
        };
        let out = Command::new(Path::new(ROOT).join(script))
            .arg(dest)
            .env("CARGO_TARGET_DIR", target_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, b"").unwrap();
    }
    format!("oci:{}", layout.display())
}

/// `oci:DIR` with the build-init, completion, rebase and build-waiter images.
pub fn build_pod_images() -> String {
    built_once("images/build-pod/build", "build-pod")
}

/// `oci:DIR:latest`: our lifecycle image.
pub fn lifecycle_image() -> String {
    format!(
        "{}:latest",
        built_once("images/lifecycle/build", "lifecycle")
    )
}

pub fn buildpod(args: &[&str]) -> Output {
    Command::new(BUILDPOD)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn ok(args: &[&str]) -> String {
    let out = buildpod(args);
    assert!(
        out.status.success(),
        "buildpod {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A tiny-stack builder with `images/buildpacks/hello` in `registry`; returns its reference.
pub fn tiny_builder(registry: &str, work: &Path) -> String {
    let stack = work.join("stack");
    ok(&[
        "stack",
        "tiny",
        "--busybox",
        "/bin/busybox",
        "--definition",
        &format!("{ROOT}/images/stacks/tiny/stack.toml"),
        &format!("oci:{}:build", stack.display()),
        &format!("oci:{}:run", stack.display()),
    ]);
    for stage in ["build", "run"] {
        ok(&[
            "image",
            "copy",
            &format!("oci:{}:{stage}", stack.display()),
            &format!("{registry}/stacks/tiny/{stage}:1"),
        ]);
    }
    ok(&[
        "buildpackage",
        "package",
        &format!("{ROOT}/images/buildpacks/hello"),
        "--tag",
        &format!("{registry}/buildpacks/hello:1"),
    ]);
    ok(&[
        "image",
        "copy",
        &lifecycle_image(),
        &format!("{registry}/lifecycle:1"),
    ]);
    let config = work.join("builder.toml");
    std::fs::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"docker://{registry}/buildpacks/hello:1\"\n\
             [[order]]\n[[order.group]]\nid = \"buildpod/hello\"\n\
             [build]\nimage = \"{registry}/stacks/tiny/build:1\"\n\
             [[run.images]]\nimage = \"{registry}/stacks/tiny/run:1\"\n\
             [lifecycle]\nuri = \"docker://{registry}/lifecycle:1\"\n"
        ),
    )
    .unwrap();
    let builder = format!("{registry}/builder/tiny:1");
    ok(&[
        "builder",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--tag",
        &builder,
    ]);
    builder
}
