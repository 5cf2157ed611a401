//! The debian stack (`images/stacks/debian`, `buildpod stack debian`): built twice from the
//! cached root filesystems it gives the same digests; skopeo reads both images, with the stack
//! labels, the non-root CNB user and the build image's CNB variables; the run image's layer is
//! the build image's first; umoci unpacks both, and in a chroot of the build image the CNB user
//! runs node, python3 -m venv, go, git and npm, while the run image has the runtimes only.
//!
//! The first run on a machine makes the root filesystems with debootstrap and apt (a few
//! minutes, cached under `${BUILDPOD_CACHE:-$HOME/.cache/buildpod}/stacks/debian`); needs root.

mod samples_util;
mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use support::tools;

/// `chroot --userspec=1000:1000 ROOT sh -c SCRIPT` with a clean environment: (code, output).
fn chroot_sh(root: &Path, script: &str) -> (i32, String) {
    let out = Command::new(samples_util::which("chroot").unwrap())
        .arg("--userspec=1000:1000")
        .arg(root)
        .args(["/bin/sh", "-c", script])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/home/cnb")
        .env("LANG", "C.UTF-8")
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

/// The image's `/dev/null` for tools that open it (a runtime would mount /dev).
fn dev_null(root: &Path) {
    let p = root.join("dev/null");
    if !p.exists() {
        nix::sys::stat::mknod(
            &p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        // mknod applies the umask.
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    }
}

fn env_of(cfg: &serde_json::Value) -> Vec<String> {
    cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn debian_stack_is_reproducible_labelled_and_has_its_tools() {
    if let Some(why) = samples_util::debian_stack_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lay = tmp.path().join("layout");
    let at = |tag: &str| format!("oci:{}:{tag}", lay.display());
    let (build, run) = samples_util::build_debian_stack(&at("build"), &at("run"), &[]);
    // Again, from the same cache (same blobs, so the layout does not grow).
    let (build2, run2) = samples_util::build_debian_stack(&at("build2"), &at("run2"), &[]);
    assert_eq!((&build, &run), (&build2, &run2), "same digests twice");

    let build_cfg = tools::skopeo_inspect_config(&at("build"), &[]);
    let run_cfg = tools::skopeo_inspect_config(&at("run"), &[]);
    for (cfg, stage) in [(&build_cfg, "build"), (&run_cfg, "run")] {
        let labels = &cfg["config"]["Labels"];
        assert_eq!(
            labels["io.buildpacks.stack.id"],
            "io.buildpacks.stacks.bookworm"
        );
        assert_eq!(labels["io.buildpacks.stack.distro.name"], "debian");
        assert_eq!(labels["io.buildpacks.stack.distro.version"], "12");
        assert_eq!(labels["io.buildpacks.base.distro.name"], "debian");
        assert!(labels["io.buildpacks.stack.description"]
            .as_str()
            .unwrap()
            .ends_with(&format!("({stage} image)")));
        let mixins: Vec<String> =
            serde_json::from_str(labels["io.buildpacks.stack.mixins"].as_str().unwrap()).unwrap();
        for m in [
            "ca-certificates",
            "nodejs",
            "python3",
            "python3-venv",
            "busybox",
        ] {
            assert!(mixins.contains(&m.to_string()), "{stage}: {mixins:?}");
        }
        let build_only = mixins.iter().any(|m| m == "build:golang-go");
        assert_eq!(build_only, stage == "build", "{stage}: {mixins:?}");
        assert_eq!(cfg["config"]["User"], "1000:1000");
        assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");
        let env = env_of(cfg);
        let cnb: Vec<&String> = env.iter().filter(|e| e.starts_with("CNB_")).collect();
        if stage == "build" {
            assert_eq!(
                cnb,
                [
                    "CNB_USER_ID=1000",
                    "CNB_GROUP_ID=1000",
                    "CNB_STACK_ID=io.buildpacks.stacks.bookworm"
                ]
            );
        } else {
            assert!(cnb.is_empty(), "{env:?}");
        }
        assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    }
    // The run image's one layer is the build image's first (one blob in a registry).
    let build_m = tools::skopeo_inspect_raw(&at("build"), &[]);
    let run_m = tools::skopeo_inspect_raw(&at("run"), &[]);
    assert_eq!(
        build_m["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(run_m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(build_m["layers"].as_array().unwrap().len(), 2);
    assert_eq!(build_m["layers"][0], run_m["layers"][0]);
    // `skopeo inspect` (not --raw/--config) reads them too.
    let inspected: serde_json::Value =
        serde_json::from_str(&tools::skopeo(&["inspect", &at("run")])).unwrap();
    assert_eq!(inspected["Digest"], run);

    // The build image, unpacked: the CNB user, clean apt state, owners kept, the tools.
    let bundle = tmp.path().join("build-bundle");
    tools::umoci_unpack(&lay, "build", &bundle);
    let root = bundle.join("rootfs");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l == "cnb:x:1000:1000:cnb:/home/cnb:/bin/bash"),
        "{passwd}"
    );
    assert!(fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .lines()
        .any(|l| l == "cnb:x:1000:"));
    for dir in ["home/cnb", "workspace"] {
        let m = fs::metadata(root.join(dir)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (1000, 1000, 0o755),
            "{dir}"
        );
    }
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    // A group-owned setgid tool (shadow) keeps its owner.
    let chage = fs::metadata(root.join("usr/bin/chage")).unwrap();
    assert_eq!((chage.gid(), chage.mode() & 0o7777), (42, 0o2755));
    assert_eq!(
        fs::read_dir(root.join("var/lib/apt/lists"))
            .unwrap()
            .count(),
        0,
        "apt lists"
    );
    for gone in [
        "etc/machine-id",
        "etc/resolv.conf",
        "etc/hostname",
        "var/cache/ldconfig/aux-cache",
        "var/cache/apt/pkgcache.bin",
        "usr/sbin/policy-rc.d",
        "var/log/dpkg.log",
        "var/log/apt/history.log",
    ] {
        assert!(!root.join(gone).exists(), "{gone} is in the image");
    }
    dev_null(&root);
    let (code, out) = chroot_sh(
        &root,
        "set -e; id -un; node --version; npm --version; python3 -m venv --help | head -n1; \
         python3 -m pip --version; go version; git --version; \
         cd /tmp && python3 -m venv v && v/bin/python -c 'import sys; print(sys.prefix)'",
    );
    assert_eq!(code, 0, "{out}");
    for want in [
        "cnb\n",
        "v18.",
        "usage: venv",
        "pip ",
        "go version go1.19",
        "git version 2.39",
        "/tmp/v\n",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }

    // The run image: the runtimes, not the build tools.
    let bundle = tmp.path().join("run-bundle");
    tools::umoci_unpack(&lay, "run", &bundle);
    let root = bundle.join("rootfs");
    dev_null(&root);
    let (code, out) = chroot_sh(
        &root,
        "set -e; node --version; python3 --version; busybox httpd --help 2>&1 | head -n1; \
         for t in go npm git pip3 curl; do if command -v $t; then echo \"has $t\"; fi; done",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("v18.") && out.contains("Python 3.11"), "{out}");
    assert!(out.contains("BusyBox v1.35"), "{out}");
    assert!(!out.contains("has "), "build tools in the run image: {out}");
}
