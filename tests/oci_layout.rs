//! OCI layouts we write are read by skopeo and umoci, reproduce the source tree, and are
//! deterministic.

#[path = "common_image.rs"]
mod common;
mod support;

use buildpod::layer::Compression;
use buildpod::oci::layout::Layout;
use buildpod::oci::{BlobStore, ImageConfig, Manifest};
use support::{tools, tree};

#[test]
fn layout_passes_skopeo_and_umoci_and_unpacks_to_the_source_tree() {
    tools::require("skopeo");
    tools::require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree::make_sample_tree(&src);
    let layout_dir = tmp.path().join("layout");
    let layout = Layout::create(&layout_dir).unwrap();
    let m = common::dir_image(&layout, &src, Compression::Gzip, "amd64", "app");

    let image = format!("oci:{}:app", layout_dir.display());
    let raw = tools::skopeo_inspect_raw(&image, &[]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let cfg = tools::skopeo_inspect_config(&image, &[]);
    assert_eq!(cfg["config"]["Labels"]["org.example.name"], "app");
    assert_eq!(cfg["config"]["Entrypoint"][0], "/bin/sh");
    assert_eq!(cfg["architecture"], "amd64");
    // skopeo's digest of the manifest is ours.
    let inspect: serde_json::Value =
        serde_json::from_str(&tools::skopeo(&["inspect", &image])).unwrap();
    assert_eq!(inspect["Digest"], m.digest.to_string());

    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&layout_dir, "app", &bundle);
    tree::snapshot(&src).assert_same(&tree::snapshot(&bundle.join("rootfs")));
}

#[test]
fn zstd_layout_is_read_by_skopeo_and_by_us() {
    tools::require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree::make_sample_tree(&src);
    let layout_dir = tmp.path().join("layout");
    let layout = Layout::create(&layout_dir).unwrap();
    common::dir_image(&layout, &src, Compression::Zstd, "amd64", "z");
    let image = format!("oci:{}:z", layout_dir.display());
    let raw = tools::skopeo_inspect_raw(&image, &[]);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // skopeo can copy it (it verifies every blob digest on the way).
    let copy_dir = tmp.path().join("copy");
    tools::skopeo(&["copy", &image, &format!("oci:{}:z", copy_dir.display())]);

    // And our reader applies it back to the same tree.
    let Manifest::Image(im) = layout.get_manifest("z").unwrap().parse().unwrap() else {
        panic!("index")
    };
    let d = buildpod::oci::manifest::descriptor_digest(&im.layers()[0]).unwrap();
    let out = tmp.path().join("out");
    buildpod::layer::apply_layer(
        layout.open_blob(&d, None).unwrap(),
        &out,
        &Default::default(),
    )
    .unwrap();
    tree::snapshot(&src).assert_same(&tree::snapshot(&out));
}

#[test]
fn same_directory_gives_same_digests_for_gzip_and_zstd_and_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree::make_sample_tree(&src);
    for c in [Compression::Gzip, Compression::Zstd] {
        let a = Layout::create(&tmp.path().join(format!("a{c:?}"))).unwrap();
        let b = Layout::create(&tmp.path().join(format!("b{c:?}"))).unwrap();
        let la = common::dir_layer(&a, &src, c, 1);
        let lb = common::dir_layer(&b, &src, c, 3);
        assert_eq!(la, lb, "{c:?}");
        // And the whole image digest is stable.
        let ma = common::dir_image(&a, &src, c, "amd64", "t");
        let mb = common::dir_image(&b, &src, c, "amd64", "t");
        assert_eq!(ma.digest, mb.digest, "{c:?}");
    }
}

#[test]
fn corrupted_blob_is_detected_on_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "hello").unwrap();
    let layout = Layout::create(&tmp.path().join("l")).unwrap();
    let m = common::dir_image(&layout, &src, Compression::Gzip, "amd64", "t");
    let Manifest::Image(im) = m.parse().unwrap() else {
        panic!()
    };
    let cfg_d = buildpod::oci::manifest::descriptor_digest(im.config()).unwrap();
    let p = layout.blob_path(&cfg_d);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let err = layout.read_blob(&cfg_d, None).unwrap_err().to_string();
    assert!(
        err.contains("digest mismatch") && err.contains(&cfg_d.to_string()),
        "{err}"
    );
    let _ = ImageConfig::new("linux", "amd64");
}
