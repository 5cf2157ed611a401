//! A real libcnb.rs buildpack (tests/fixtures/lifecycle/libcnb-bp, libcnb 0.30) detects and
//! builds under our lifecycle. libcnb insists on positional args and every CNB_TARGET_*.

mod lifecycle_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use lifecycle_util::{assert_code, World};

/// Builds the fixture once into a dir beside our own target dir; returns the binary.
fn build_fixture() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lifecycle/libcnb-bp");
    let target = Path::new(env!("CARGO_BIN_EXE_lifecycle"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("libcnb-fixture");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet"])
        .current_dir(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "building the libcnb fixture failed");
    target.join("release/buildpod-libcnb-fixture")
}

fn install(w: &World, bin: &Path) {
    let dir = w.path("buildpacks/buildpod_libcnb-fixture/0.1.0");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(
        dir.join("buildpack.toml"),
        "api = \"0.10\"\n\n[buildpack]\nid = \"buildpod/libcnb-fixture\"\nversion = \"0.1.0\"\nname = \"libcnb fixture\"\n\n[[targets]]\nos = \"linux\"\n",
    )
    .unwrap();
    // libcnb picks detect or build from argv[0].
    for name in ["detect", "build"] {
        std::os::unix::fs::symlink(bin, dir.join("bin").join(name)).unwrap();
    }
}

#[test]
fn libcnb_buildpack_detects_and_builds() {
    let bin = build_fixture();
    let w = World::new();
    install(&w, &bin);
    w.bp(
        "after",
        "1",
        "0.10",
        "",
        "echo \"after sees LIBCNB_FIXTURE=$LIBCNB_FIXTURE\"",
    );
    w.write(
        "layers/analyzed.toml",
        "[run-image.target]\nos = \"linux\"\narch = \"amd64\"\n[run-image.target.distro]\nname = \"ubuntu\"\nversion = \"24.04\"\n",
    );
    w.order(&[&["buildpod/libcnb-fixture@0.1.0", "after@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    assert_eq!(
        w.read("layers/group.toml"),
        "[[group]]\n  id = \"buildpod/libcnb-fixture\"\n  version = \"0.1.0\"\n  api = \"0.10\"\n\n[[group]]\n  id = \"after\"\n  version = \"1\"\n  api = \"0.10\"\n"
    );
    assert_eq!(
        w.read("layers/plan.toml"),
        "[[entries]]\n\n  [[entries.providers]]\n    id = \"buildpod/libcnb-fixture\"\n    version = \"0.1.0\"\n\n  [[entries.requires]]\n    name = \"libcnb-fixture\"\n"
    );
    let r = w.builder(&[]);
    assert_code(&r, 0);
    assert!(
        r.out
            .contains("libcnb target os=linux arch=amd64 variant= distro=ubuntu 24.04"),
        "{}",
        r.out
    );
    assert!(r.out.contains("libcnb plan entries=1"), "{}", r.out);
    assert!(r.out.contains("after sees LIBCNB_FIXTURE=yes"), "{}", r.out);
    let meta = w.read("layers/config/metadata.toml");
    assert!(
        meta.starts_with("buildpack-default-process-type = \"web\"\n"),
        "{meta}"
    );
    assert!(
        meta.contains("  type = \"web\"\n  command = [\"echo\"]\n  args = [\"hello from libcnb\"]\n  direct = true\n  buildpack-id = \"buildpod/libcnb-fixture\"\n"),
        "{meta}"
    );
    let layer = w.read("layers/buildpod_libcnb-fixture/tool.toml");
    assert!(
        layer.contains("build = true") && layer.contains("launch = true"),
        "{layer}"
    );
}

#[test]
fn libcnb_gets_distro_from_build_container_without_analyzed() {
    let bin = build_fixture();
    let w = World::new();
    install(&w, &bin);
    w.order(&[&["buildpod/libcnb-fixture@0.1.0"]]);
    // Platform API 0.9: no analyzed.toml target; distro comes from /etc/os-release.
    let mut w = w;
    w.platform_api = "0.9".into();
    assert_code(&w.detector(&[]), 0);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    assert!(r.out.contains("libcnb target os=linux"), "{}", r.out);
}
