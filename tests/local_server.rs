//! The local runner's loopback server: a registry over an OCI layout that real clients (our
//! copy, skopeo) push to and pull from, and source tarballs served over HTTP.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use buildpod::local::server::LocalServer;

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tiny(dir: &Path) {
    run(Command::new(BUILDPOD)
        .args(["stack", "tiny", "--busybox", "/bin/busybox", "--definition"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/images/stacks/tiny/stack.toml"
        ))
        .arg(format!("oci:{}:build", dir.display()))
        .arg(format!("oci:{}:run", dir.display())));
}

#[test]
fn images_pushed_to_the_local_registry_land_in_the_layout() {
    support::tools::require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    tiny(&tmp.path().join("stack"));
    let out = tmp.path().join("out");
    let server = LocalServer::start(Some(&out), tmp.path(), HashMap::new(), 0).unwrap();
    let host = server.host();
    run(Command::new(BUILDPOD)
        .args(["image", "copy"])
        .arg(format!("oci:{}:run", tmp.path().join("stack").display()))
        .arg(format!("docker://{host}/out:app")));
    // skopeo pulls it back over the registry API, and reads the layout directly.
    let via_registry = support::tools::skopeo_inspect_raw(
        &format!("docker://{host}/anything:app"),
        &["--tls-verify=false"],
    );
    let via_layout = support::tools::skopeo_inspect_raw(&format!("oci:{}:app", out.display()), &[]);
    assert_eq!(via_registry, via_layout);
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/out:app"))
        .arg(format!("oci:{}:again", tmp.path().join("copy").display())));
    // Pushing again uploads nothing new and keeps one ref per tag.
    run(Command::new(BUILDPOD)
        .args(["image", "copy"])
        .arg(format!("oci:{}:run", tmp.path().join("stack").display()))
        .arg(format!("docker://{host}/out:app")));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    // No upload is left behind.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_bad_digest_is_refused_and_sources_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app.tar.gz");
    std::fs::write(&src, b"tarball bytes").unwrap();
    let server = LocalServer::start(
        Some(&tmp.path().join("out")),
        tmp.path(),
        HashMap::from([("app.tar.gz".to_string(), src)]),
        0,
    )
    .unwrap();
    let curl = |args: &[&str]| run(Command::new("curl").arg("-s").args(args));
    assert_eq!(curl(&[&server.source_url("app.tar.gz")]), "tarball bytes");
    let host = server.host();
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "--data-binary",
        "abc",
        &format!(
            "http://{host}/v2/x/blobs/uploads/?digest=sha256:{}",
            "0".repeat(64)
        ),
    ]);
    assert_eq!(code, "400");
    let head = curl(&[
        "-I",
        &format!("http://{host}/v2/x/blobs/sha256:{}", "0".repeat(64)),
    ]);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("out/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}
