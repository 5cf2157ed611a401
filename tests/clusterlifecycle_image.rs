//! Our lifecycle image, built by `buildpod lifecycle image` from this build's `lifecycle` and
//! `launcher` binaries: valid for skopeo and umoci, the same digest every time and wherever it is
//! written, and `buildpod lifecycle select` gets a working lifecycle back out of the registry.
//!
//! The static release binaries (images/lifecycle/build) take minutes to build on CI's two cores,
//! so these tests use the binaries cargo built for the test run: the image logic is the same.

mod clusterlifecycle_util;
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use buildpod::clusterlifecycle::image::PHASES;
use buildpod::registry::{Client, ClientOptions, Repo};
use support::registry::Registry;
use support::tools;

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");
const LIFECYCLE: &str = env!("CARGO_BIN_EXE_lifecycle");
const LAUNCHER: &str = env!("CARGO_BIN_EXE_launcher");

/// Run buildpod; `Ok(stdout)` on success, `Err(stderr)` otherwise.
fn buildpod(args: &[&str]) -> Result<String, String> {
    let out = Command::new(BUILDPOD).args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn build(dest: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "lifecycle",
        "image",
        dest,
        "--lifecycle",
        LIFECYCLE,
        "--launcher",
        LAUNCHER,
    ];
    args.extend_from_slice(extra);
    buildpod(&args).unwrap()
}

#[test]
fn our_image_is_valid_reproducible_and_selectable() {
    tools::require("skopeo");
    tools::require("umoci");
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let l1 = tmp.path().join("one");
    let l2 = tmp.path().join("two");
    let d1 = build(&format!("oci:{}:lc", l1.display()), &[]);
    let d2 = build(&format!("oci:{}:lc", l2.display()), &[]);
    assert_eq!(d1, d2, "two builds, two digests");
    let image = format!("oci:{}:lc", l1.display());
    let inspect: serde_json::Value =
        serde_json::from_str(&tools::skopeo(&["inspect", &image])).unwrap();
    assert_eq!(inspect["Digest"], d1);
    let cfg = tools::skopeo_inspect_config(&image, &[]);
    let labels = &cfg["config"]["Labels"];
    assert_eq!(cfg["config"]["WorkingDir"], "/layers");
    assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");
    assert_eq!(labels["linux"], cfg["rootfs"]["diff_ids"][0]);
    assert!(labels.get("windows").is_none());
    assert_eq!(
        labels["io.buildpacks.builder.metadata"],
        format!(
            r#"{{"lifecycle":{{"version":"{}"}},"api":{{"buildpack":"0.7","platform":"0.7"}}}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    let apis: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.lifecycle.apis"].as_str().unwrap()).unwrap();
    assert_eq!(apis["platform"]["supported"][7], "0.14");
    assert_eq!(apis["buildpack"]["supported"][5], "0.12");
    assert!(labels["io.buildpacks.lifecycle.metadata"]
        .as_str()
        .unwrap()
        .contains(r#""apis":{"buildpack""#));

    // umoci unpacks it to exactly the lifecycle directory.
    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&l1, "lc", &bundle);
    let dir = bundle.join("rootfs/cnb/lifecycle");
    let mut want: Vec<String> = PHASES.iter().map(|s| s.to_string()).collect();
    want.extend(["launcher", "lifecycle", "lifecycle.toml"].map(String::from));
    want.sort();
    assert_eq!(clusterlifecycle_util::listing(&dir), want);
    assert_eq!(
        clusterlifecycle_util::listing(&bundle.join("rootfs")),
        vec!["cnb"]
    );
    assert_eq!(
        tools::sha256_file(&dir.join("lifecycle")),
        tools::sha256_file(Path::new(LIFECYCLE))
    );
    assert_eq!(
        fs::read_link(dir.join("builder")).unwrap(),
        Path::new("lifecycle")
    );

    // Written straight to a registry: same digest; and selected back into a working directory.
    let reference = format!("{}/buildpod/lifecycle:ours", reg.host());
    assert_eq!(build(&reference, &[]), d1);
    let remote: serde_json::Value = serde_json::from_str(&tools::skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]))
    .unwrap();
    assert_eq!(remote["Digest"], d1);
    let target = tmp.path().join("cnb-lifecycle");
    let t = target.to_string_lossy();
    let out = buildpod(&[
        "lifecycle",
        "select",
        "--image",
        &reference,
        "--os",
        "linux",
        "--arch",
        "amd64",
        "--target",
        &t,
    ])
    .unwrap();
    assert!(
        out.starts_with("selected linux/amd64 layer sha256:"),
        "{out}"
    );
    assert!(out.contains(" by os label from "), "{out}");
    let version = Command::new(target.join("lifecycle"))
        .arg("-version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        tools::sha256_file(&target.join("launcher")),
        tools::sha256_file(Path::new(LAUNCHER))
    );
}

#[test]
fn windows_binaries_add_a_windows_layer_and_label() {
    tools::require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    // Stand-ins: we cannot compile Windows binaries here.
    let bins = tmp.path().join("win");
    let wl = clusterlifecycle_util::fake_binary(&bins, "lifecycle.exe", "win-lifecycle");
    let wn = clusterlifecycle_util::fake_binary(&bins, "launcher.exe", "win-launcher");
    let (wl, wn) = (wl.to_string_lossy(), wn.to_string_lossy());
    let extra = ["--windows-lifecycle", &*wl, "--windows-launcher", &*wn];
    let layout = tmp.path().join("layout");
    let d1 = build(&format!("oci:{}:lc", layout.display()), &extra);
    let d2 = build(&format!("oci:{}:lc2", layout.display()), &extra);
    assert_eq!(d1, d2);
    let image = format!("oci:{}:lc", layout.display());
    let cfg = tools::skopeo_inspect_config(&image, &[]);
    let labels = &cfg["config"]["Labels"];
    assert_eq!(labels["linux"], cfg["rootfs"]["diff_ids"][0]);
    assert_eq!(labels["windows"], cfg["rootfs"]["diff_ids"][1]);

    let target = tmp.path().join("t");
    let t = target.to_string_lossy();
    let out = buildpod(&[
        "lifecycle",
        "select",
        "--image",
        &image,
        "--os",
        "windows",
        "--arch",
        "amd64",
        "--target",
        &t,
    ])
    .unwrap();
    assert!(out.starts_with("selected windows/amd64 layer "), "{out}");
    assert_eq!(
        fs::read_to_string(target.join("exporter.exe")).unwrap(),
        "#!/bin/sh\necho win-lifecycle\n"
    );
    // Only one of the pair is refused by clap.
    let err = buildpod(&[
        "lifecycle",
        "image",
        &image,
        "--lifecycle",
        LIFECYCLE,
        "--launcher",
        LAUNCHER,
        "--windows-lifecycle",
        &wl,
    ])
    .unwrap_err();
    assert!(err.contains("--windows-launcher"), "{err}");
}

#[test]
fn select_takes_the_platform_from_the_stack_image_and_refuses_a_mismatch() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let client = Client::new(ClientOptions::default()).unwrap();
    let host = reg.host();
    let lc = Repo::new(client.clone(), &host, "lifecycle");
    clusterlifecycle_util::ours(&lc, &tmp.path().join("bin"), "0.1.0", false, "v1");
    let stack = Repo::new(client, &host, "stack/build");
    let l = clusterlifecycle_util::base_layer(&stack);
    clusterlifecycle_util::image(
        &stack,
        "linux/arm64",
        &[],
        std::slice::from_ref(&l),
        "arm64",
    );
    clusterlifecycle_util::image(&stack, "linux/amd64", &[], &[l], "amd64");
    let target = tmp.path().join("t");
    let t = target.to_string_lossy();
    let lc_ref = format!("{host}/lifecycle:v1");
    let ok = buildpod(&[
        "lifecycle",
        "select",
        "--image",
        &lc_ref,
        "--platform-of",
        &format!("{host}/stack/build:amd64"),
        "--target",
        &t,
    ])
    .unwrap();
    assert!(ok.starts_with("selected linux/amd64 layer"), "{ok}");
    let err = buildpod(&[
        "lifecycle",
        "select",
        "--image",
        &lc_ref,
        "--platform-of",
        &format!("{host}/stack/build:arm64"),
        "--target",
        &t,
    ])
    .unwrap_err();
    assert_eq!(
        err.trim_end(),
        format!("ERROR: lifecycle image {host}/lifecycle:v1: architecture mismatch: the image is for linux/amd64, want linux/arm64")
    );
}
