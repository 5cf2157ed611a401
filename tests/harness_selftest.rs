//! Proves the shared harness in `tests/support/` works against the real tools.

mod support;

use std::path::Path;

use support::proxy::{Fault, Proxy};
use support::registry::Registry;
use support::tools::{self, skopeo, skopeo_inspect_config, skopeo_inspect_raw, try_skopeo};
use support::tree::{self, Node};

/// A one-layer OCI layout at `dir/layout` tagged `v1`; returns its `oci:` reference.
fn small_layout(dir: &Path) -> String {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello.txt"), "hello from the harness\n").unwrap();
    let layout = dir.join("layout");
    tools::oci_layout_from_dir(&layout, "v1", &rootfs);
    format!("oci:{}:v1", layout.display())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn plain_registry_push_and_inspect_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = small_layout(tmp.path());
    let reg = Registry::plain();
    assert_eq!(reg.host(), format!("127.0.0.1:{}", reg.addr().port()));
    assert!(reg.ca_cert().is_none() && reg.cert_dir().is_none());
    assert_eq!(reg.blob_count(), 0);

    let dest = format!("docker://{}/harness/small:v1", reg.host());
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);

    let local = skopeo_inspect_raw(&src, &[]);
    let remote = skopeo_inspect_raw(&dest, &["--tls-verify=false"]);
    assert_eq!(local, remote);
    assert_eq!(
        remote["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = skopeo_inspect_config(&dest, &["--tls-verify=false"]);
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    // Layer, config and manifest.
    assert_eq!(reg.blob_count(), 3);
    assert!(reg.log().contains("listening on"), "{}", reg.log());

    let pid = reg.pid();
    assert!(pid_alive(pid));
    drop(reg);
    assert!(!pid_alive(pid), "registry pid {pid} still alive after drop");
}

#[test]
fn auth_registry_rejects_anonymous_and_accepts_creds() {
    let tmp = tempfile::tempdir().unwrap();
    let src = small_layout(tmp.path());
    let reg = Registry::with_auth("alice", "s3cret");
    assert_eq!(
        reg.creds(),
        Some(("alice".to_string(), "s3cret".to_string()))
    );
    let dest = format!("docker://{}/harness/auth:v1", reg.host());

    let err = try_skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]).unwrap_err();
    assert!(
        err.contains("unauthorized") || err.contains("401"),
        "unexpected error: {err}"
    );
    let err = try_skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wrong",
        &src,
        &dest,
    ])
    .unwrap_err();
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");

    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &src,
        &dest,
    ]);
    let m = skopeo_inspect_raw(&dest, &["--tls-verify=false", "--creds", "alice:s3cret"]);
    assert_eq!(m["schemaVersion"], 2);
}

#[test]
fn tls_registry_trusts_only_its_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let src = small_layout(tmp.path());
    let reg = Registry::tls();
    let cert_dir = reg.cert_dir().unwrap();
    let ca = reg.ca_cert().unwrap();
    assert!(ca.is_file() && ca.starts_with(&cert_dir));
    assert!(std::fs::read_to_string(&ca)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let dest = format!("docker://{}/harness/tls:v1", reg.host());

    let err = try_skopeo(&["copy", &src, &dest]).unwrap_err();
    assert!(err.contains("certificate"), "unexpected error: {err}");

    let cd = cert_dir.to_string_lossy();
    skopeo(&["copy", "--dest-cert-dir", &cd, &src, &dest]);
    let m = skopeo_inspect_raw(&dest, &["--cert-dir", &cd]);
    assert_eq!(m, skopeo_inspect_raw(&src, &[]));
}

#[test]
fn proxy_is_transparent_and_counts_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let src = small_layout(tmp.path());
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.addr(), vec![]);
    let dest = format!("docker://{}/harness/proxied:v1", proxy.host());

    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    assert_eq!(proxy.count("PUT", "/v2/harness/proxied/manifests/v1"), 1);
    assert!(
        proxy.count("PUT", "/blobs/uploads/") >= 2,
        "{:?}",
        proxy.requests()
    );
    assert!(proxy.count("POST", "/blobs/uploads/") >= 2);
    assert!(proxy
        .requests()
        .iter()
        .all(|r| r.header("host").is_some() && r.path.starts_with("/v2/")));
    assert_eq!(reg.blob_count(), 3);

    proxy.clear();
    assert!(proxy.requests().is_empty());
    let m = skopeo_inspect_raw(&dest, &["--tls-verify=false"]);
    assert_eq!(m, skopeo_inspect_raw(&src, &[]));
    assert!(proxy.count("GET", "/v2/harness/proxied/manifests/v1") >= 1);

    let addr = proxy.addr();
    drop(proxy);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "proxy still accepting after drop"
    );
}

#[test]
fn proxy_status_fault_reaches_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let src = small_layout(tmp.path());
    let reg = Registry::plain();
    let proxy = Proxy::start(
        reg.addr(),
        vec![Fault::Status {
            method: "PUT",
            path_contains: "/manifests/",
            status: 503,
            times: 1,
        }],
    );
    let dest = format!("docker://{}/harness/fault:v1", proxy.host());

    let result = try_skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    let puts = proxy.count("PUT", "/manifests/");
    match result {
        // skopeo gave up: the error must be the injected one.
        Err(err) => assert!(err.contains("503") || err.contains("injected"), "{err}"),
        // skopeo retried: the retry went through upstream.
        Ok(_) => assert!(
            puts >= 2,
            "manifest PUT not retried: {:?}",
            proxy.requests()
        ),
    }
    assert!(puts >= 1);
    // Fault exhausted: the next push goes through.
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    skopeo_inspect_raw(&dest, &["--tls-verify=false"]);
}

#[test]
fn proxy_drop_request_body_fault_cuts_the_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    tree::make_sample_tree(&rootfs);
    let layout = tmp.path().join("layout");
    tools::oci_layout_from_dir(&layout, "big", &rootfs);
    let src = format!("oci:{}:big", layout.display());
    let reg = Registry::plain();
    let proxy = Proxy::start(
        reg.addr(),
        vec![Fault::DropRequestBody {
            method: "PATCH",
            path_contains: "/blobs/uploads/",
            after_bytes: 1000,
            times: 1,
        }],
    );
    let dest = format!("docker://{}/harness/cut:v1", proxy.host());

    let result = try_skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    let patches = proxy.count("PATCH", "/blobs/uploads/");
    assert!(patches >= 1, "{:?}", proxy.requests());
    match result {
        Err(err) => assert!(err.contains("writing blob"), "{err}"),
        // A client that survives must have re-sent the cut upload.
        Ok(_) => assert!(patches >= 3, "{:?}", proxy.requests()),
    }
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    assert_eq!(
        skopeo_inspect_raw(&dest, &["--tls-verify=false"]),
        skopeo_inspect_raw(&src, &[])
    );
}

#[test]
fn snapshot_of_sample_tree_is_stable_and_detects_changes() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    tree::make_sample_tree(&root);
    let a = tree::snapshot(&root);
    let b = tree::snapshot(&root);
    a.assert_same(&b);
    assert_eq!(a, b);

    // The same tree built elsewhere snapshots identically.
    let other = tmp.path().join("other");
    tree::make_sample_tree(&other);
    tree::snapshot(&other).assert_same(&a);

    assert_eq!(a.nodes["empty"], Node::Dir { mode: 0o755 });
    assert_eq!(a.nodes["private"], Node::Dir { mode: 0o700 });
    assert!(matches!(
        a.nodes["bin/run.sh"],
        Node::File { mode: 0o755, .. }
    ));
    assert!(matches!(
        a.nodes["etc/secret.conf"],
        Node::File { mode: 0o600, .. }
    ));
    assert!(matches!(
        a.nodes["big.bin"],
        Node::File { size: 1048576, .. }
    ));
    assert_eq!(
        a.nodes["empty-file"],
        Node::File {
            mode: 0o644,
            size: 0,
            sha256: tools::sha256_bytes(b""),
        }
    );
    let long = tree::sample_long_path();
    assert!(long.len() > 100 && a.nodes.contains_key(&long));
    assert_eq!(a.nodes["long-link"], Node::Symlink { target: long });
    assert_eq!(
        a.nodes["dangling"],
        Node::Symlink {
            target: "does/not/exist".into()
        }
    );
    assert!(a.nodes.keys().any(|k| !k.is_ascii()));
    let pair: std::collections::BTreeSet<String> =
        ["hard/one".to_string(), "hard/two".to_string()].into();
    assert_eq!(a.hardlink_groups, [pair].into());

    std::fs::set_permissions(
        root.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let c = tree::snapshot(&root);
    assert_ne!(a, c);
    assert_eq!(a.diff(&c).len(), 1, "{:?}", a.diff(&c));

    std::fs::write(root.join("a/b/c/deep.txt"), "changed\n").unwrap();
    assert_eq!(a.diff(&tree::snapshot(&root)).len(), 2);
}

#[test]
fn umoci_round_trip_preserves_the_sample_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    tree::make_sample_tree(&rootfs);
    let layout = tmp.path().join("layout");
    tools::oci_layout_from_dir(&layout, "sample", &rootfs);
    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&layout, "sample", &bundle);
    tree::snapshot(&bundle.join("rootfs")).assert_same(&tree::snapshot(&rootfs));

    let blob = layout.join("index.json");
    assert!(tools::sha256_file(&blob).starts_with("sha256:"));
    assert_eq!(
        tools::sha256_file(&blob),
        tools::sha256_bytes(&std::fs::read(&blob).unwrap())
    );
}

#[test]
#[should_panic(expected = "required tool definitely-not-a-tool-xyz not installed")]
fn require_panics_for_missing_tools() {
    tools::require("definitely-not-a-tool-xyz");
}
