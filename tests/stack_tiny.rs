//! The tiny stack (`images/stacks/tiny`), built by `buildpod stack tiny` from the host's static
//! busybox: the same digests twice and wherever written, valid for skopeo and umoci, the stack
//! labels and CNB env, a non-root user, and a shell that runs inside the unpacked rootfs.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use support::tools;

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");
const DEFINITION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/images/stacks/tiny/stack.toml");

/// `(build digest, run digest)`.
fn build(dir: &Path) -> (String, String) {
    let out = Command::new(BUILDPOD)
        .args([
            "stack",
            "tiny",
            "--definition",
            DEFINITION,
            "--busybox",
            "/bin/busybox",
        ])
        .arg(format!("oci:{}:build", dir.display()))
        .arg(format!("oci:{}:run", dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let digest = |stage: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{stage} ")))
            .unwrap_or_else(|| panic!("no {stage} digest in {stdout:?}"))
            .to_string()
    };
    (digest("build"), digest("run"))
}

#[test]
fn tiny_stack_is_reproducible_labelled_and_runs() {
    tools::require("skopeo");
    tools::require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let one = build(&tmp.path().join("one"));
    let two = build(&tmp.path().join("two"));
    assert_eq!(one, two, "two builds, two digests");

    let image = |tag: &str| format!("oci:{}:{tag}", tmp.path().join("one").display());
    let build_cfg = tools::skopeo_inspect_config(&image("build"), &[]);
    let run_cfg = tools::skopeo_inspect_config(&image("run"), &[]);
    for cfg in [&build_cfg, &run_cfg] {
        let labels = &cfg["config"]["Labels"];
        assert_eq!(
            labels["io.buildpacks.stack.id"],
            "io.buildpacks.stacks.tiny"
        );
        assert_eq!(labels["io.buildpacks.stack.mixins"], "[]");
        assert_eq!(labels["io.buildpacks.base.distro.name"], "busybox");
        assert!(labels["io.buildpacks.base.distro.version"]
            .as_str()
            .unwrap()
            .starts_with('1'));
        assert_eq!(cfg["config"]["User"], "1000:1000");
        assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");
    }
    let env: Vec<&str> = build_cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"CNB_USER_ID=1000") && env.contains(&"CNB_GROUP_ID=1000"),
        "{env:?}"
    );
    assert!(!run_cfg["config"]["Env"].to_string().contains("CNB_USER_ID"));
    // One layer, shared by both images.
    assert_eq!(
        build_cfg["rootfs"]["diff_ids"],
        run_cfg["rootfs"]["diff_ids"]
    );
    assert_eq!(build_cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&tmp.path().join("one"), "run", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("cnb:x:1000:1000:cnb:/home/cnb:/bin/sh"),
        "{passwd}"
    );
    let home = std::fs::metadata(rootfs.join("home/cnb")).unwrap();
    let tmp_dir = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp_dir.mode() & 0o7777, 0o1777);
    if nix::unistd::geteuid().is_root() {
        assert_eq!((home.uid(), home.gid()), (1000, 1000));
        // The busybox is static: it runs with nothing but the rootfs.
        let out = tools::run(
            "chroot",
            &[
                rootfs.to_str().unwrap(),
                "/usr/bin/env",
                "sh",
                "-c",
                "id cnb; echo hello",
            ],
        );
        assert_eq!(
            out.trim(),
            "uid=1000(cnb) gid=1000(cnb) groups=1000(cnb)\nhello"
        );
    }
}
