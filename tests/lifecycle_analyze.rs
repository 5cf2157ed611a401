//! `lifecycle analyzer` against a real registry: the exact analyzed.toml of a first build and
//! of a rebuild (previous image metadata, SBOM layer restored), run image mirror choice,
//! layout mode, and bad input (unreachable previous image, unreadable run image, -daemon).

mod analyze_restore_util;
#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod support;

use std::fs;

use analyze_restore_util::{write, World};
use buildpod::export::labels::{
    BuildpackLayers, LayerMetadata, LayersMetadata, RunImageMetadata, ShaRef, StackMetadata,
    StackRunImage, StoreMetadata, LIFECYCLE_METADATA,
};
use buildpod::oci::assemble::write_image;
use buildpod::oci::{media, ImageConfig};
use support::proxy::Proxy;
use support::registry::Registry;

fn first_build_toml(w: &World, run_digest: &str, image: &str) -> String {
    format!(
        "[image]\n  reference = \"\"\n\n[metadata]\n  [metadata.config]\n    sha = \"\"\n  [metadata.launcher]\n    sha = \"\"\n  [metadata.process-types]\n    sha = \"\"\n  [metadata.run-image]\n    top-layer = \"\"\n    reference = \"\"\n\n\
         [run-image]\n  reference = \"{}/stack/run@{run_digest}\"\n  image = \"{image}\"\n  [run-image.target]\n    id = \"acme.stack\"\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"ubuntu\"\n      version = \"24.04\"\n",
        w.host()
    )
}

#[test]
fn first_build_writes_exact_analyzed_toml_choosing_the_mirror_on_the_output_registry() {
    let w = World::new();
    let run = w.push_run_image();
    // run.toml names the image on another registry (the proxy's address) and a mirror on the
    // output image's registry: the mirror wins.
    let proxy = Proxy::start(w.reg.addr(), vec![]);
    let mirror = format!("{}/stack/run:1", w.host());
    write(
        &w.root.join("run.toml"),
        &format!(
            "[[images]]\n  image = \"{}/stack/run:1\"\n  mirrors = [\"{mirror}\"]\n",
            proxy.host()
        ),
    );
    let app = format!("{}/acme/app:1", w.host());
    let run_toml = w.root.join("run.toml");
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.13",
        &["-run", run_toml.to_str().unwrap(), &app],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Image with name \"{app}\" not found")),
        "{out}"
    );
    let analyzed = fs::read_to_string(w.layers().join("analyzed.toml")).unwrap();
    assert_eq!(
        analyzed,
        first_build_toml(&w, &run.digest.to_string(), &mirror)
    );
    // Nothing else is written into the layers dir.
    let names: Vec<_> = fs::read_dir(w.layers()).unwrap().collect();
    assert_eq!(names.len(), 1);

    // Platform API 0.11 reads stack.toml and writes neither image nor target.
    write(
        &w.root.join("stack.toml"),
        &format!("[run-image]\n  image = \"{mirror}\"\n"),
    );
    let stack = w.root.join("stack.toml");
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.11",
        &["-stack", stack.to_str().unwrap(), &app],
    );
    assert_eq!(code, 0, "{out}");
    let analyzed = fs::read_to_string(w.layers().join("analyzed.toml")).unwrap();
    assert!(
        analyzed.ends_with(&format!(
            "\n\n[run-image]\n  reference = \"{}/stack/run@{}\"\n",
            w.host(),
            run.digest
        )),
        "{analyzed}"
    );

    // No run image anywhere: exit 3 with the Go message.
    let missing = w.root.join("missing.toml");
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.13",
        &["-run", missing.to_str().unwrap(), &app],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("-run-image is required when there is no run metadata available"),
        "{out}"
    );
}

/// A previous app image: a label like the exporter's and an SBOM layer.
fn push_previous_image(w: &World, run_digest: &str) -> (String, String, String) {
    let launch = w.layers().join("sbom/launch");
    write(&launch.join("acme_one/deps/sbom.cdx.json"), "{\"bom\":1}\n");
    write(&launch.join("acme_one/sbom.cdx.json"), "{\"bp\":1}\n");
    let repo = w.repo("acme/app");
    let sbom = w.dir_layer(&repo, &launch);
    fs::remove_dir_all(w.layers().join("sbom")).unwrap();
    let sbom_sha = sbom.info.diff_id.to_string();
    let mut m = LayersMetadata {
        app: vec![ShaRef::new(format!("sha256:{}", "a".repeat(64)))],
        sbom: Some(ShaRef::new(&sbom_sha)),
        config: ShaRef::new(format!("sha256:{}", "c".repeat(64))),
        launcher: ShaRef::new(format!("sha256:{}", "1".repeat(64))),
        process_types: ShaRef::new(format!("sha256:{}", "2".repeat(64))),
        run_image: RunImageMetadata {
            top_layer: format!("sha256:{}", "3".repeat(64)),
            reference: format!("{}/stack/run@{run_digest}", w.host()),
            image: format!("{}/stack/run:1", w.host()),
            mirrors: vec!["mirror.example/stack/run:1".into()],
        },
        stack: StackMetadata {
            run_image: StackRunImage {
                image: format!("{}/stack/run:1", w.host()),
                mirrors: vec!["mirror.example/stack/run:1".into()],
            },
        },
        ..Default::default()
    };
    m.buildpacks.push(BuildpackLayers {
        key: "acme/one".into(),
        version: "1.0.0".into(),
        layers: [(
            "deps".to_string(),
            LayerMetadata {
                sha: format!("sha256:{}", "d".repeat(64)),
                data: serde_json::json!({"v": 1, "name": "deps"}),
                build: false,
                launch: true,
                cache: true,
            },
        )]
        .into(),
        store: Some(StoreMetadata {
            metadata: serde_json::json!({"runs": 3}),
        }),
    });
    let mut cfg = ImageConfig::new("linux", "amd64");
    cfg.set_label(LIFECYCLE_METADATA, &serde_json::to_string(&m).unwrap());
    let man = write_image(
        &repo,
        &mut cfg,
        &[sbom],
        media::OCI_MANIFEST,
        &["1".to_string()],
    )
    .unwrap();
    (
        format!("{}/acme/app:1", w.host()),
        man.digest.to_string(),
        sbom_sha,
    )
}

#[test]
fn rebuild_reads_previous_metadata_and_restores_the_sbom_layer() {
    let w = World::new();
    let run = w.push_run_image();
    let run_digest = run.digest.to_string();
    let (app, app_digest, sbom_sha) = push_previous_image(&w, &run_digest);
    let run_image = format!("{}/stack/run:1", w.host());
    let (code, out) = w.lifecycle("analyzer", "0.14", &["-run-image", &run_image, &app]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Restoring data for SBOM from previous image"),
        "{out}"
    );
    let h = w.host();
    let (a, c, l, p, t, d) = (
        "a".repeat(64),
        "c".repeat(64),
        "1".repeat(64),
        "2".repeat(64),
        "3".repeat(64),
        "d".repeat(64),
    );
    let want = format!(
        "[image]\n  reference = \"{h}/acme/app@{app_digest}\"\n\n[metadata]\n\n  [[metadata.app]]\n    sha = \"sha256:{a}\"\n  [metadata.sbom]\n    sha = \"{sbom_sha}\"\n\n  [[metadata.buildpacks]]\n    key = \"acme/one\"\n    version = \"1.0.0\"\n    [metadata.buildpacks.layers]\n      [metadata.buildpacks.layers.deps]\n        sha = \"sha256:{d}\"\n        build = false\n        launch = true\n        cache = true\n        [metadata.buildpacks.layers.deps.metadata]\n          name = \"deps\"\n          v = 1\n    [metadata.buildpacks.store]\n      [metadata.buildpacks.store.metadata]\n        runs = 3\n  [metadata.config]\n    sha = \"sha256:{c}\"\n  [metadata.launcher]\n    sha = \"sha256:{l}\"\n  [metadata.process-types]\n    sha = \"sha256:{p}\"\n  [metadata.run-image]\n    top-layer = \"sha256:{t}\"\n    reference = \"{h}/stack/run@{run_digest}\"\n    image = \"{h}/stack/run:1\"\n    mirrors = [\"mirror.example/stack/run:1\"]\n  [metadata.stack]\n    [metadata.stack.run-image]\n      image = \"{h}/stack/run:1\"\n      mirrors = [\"mirror.example/stack/run:1\"]\n\n\
         [run-image]\n  reference = \"{h}/stack/run@{run_digest}\"\n  image = \"{run_image}\"\n  [run-image.target]\n    id = \"acme.stack\"\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"ubuntu\"\n      version = \"24.04\"\n"
    );
    assert_eq!(
        fs::read_to_string(w.layers().join("analyzed.toml")).unwrap(),
        want
    );
    let sbom = w.layers().join("sbom/launch");
    assert_eq!(
        fs::read_to_string(sbom.join("acme_one/deps/sbom.cdx.json")).unwrap(),
        "{\"bom\":1}\n"
    );
    assert_eq!(
        fs::read_to_string(sbom.join("acme_one/sbom.cdx.json")).unwrap(),
        "{\"bp\":1}\n"
    );

    // -skip-layers: metadata still read, no SBOM restored.
    fs::remove_dir_all(w.layers().join("sbom")).unwrap();
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.14",
        &["-skip-layers", "-run-image", &run_image, &app],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!w.layers().join("sbom").exists());
    assert_eq!(
        fs::read_to_string(w.layers().join("analyzed.toml")).unwrap(),
        want
    );

    // A label that does not decode: empty metadata and no previous image, like Go.
    let repo = w.repo("acme/app");
    let mut cfg = ImageConfig::new("linux", "amd64");
    cfg.set_label(LIFECYCLE_METADATA, "{not json");
    let layer = w.dir_layer(&repo, &w.root.join("rootfs"));
    write_image(
        &repo,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &["1".into()],
    )
    .unwrap();
    let (code, out) = w.lifecycle("analyzer", "0.14", &["-run-image", &run_image, &app]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Ignoring label io.buildpacks.lifecycle.metadata"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(w.layers().join("analyzed.toml")).unwrap(),
        first_build_toml(&w, &run_digest, &run_image)
    );
}

#[test]
fn unreachable_previous_image_is_a_warning_and_a_first_build() {
    let w = World::new();
    let run = w.push_run_image();
    let run_image = format!("{}/stack/run:1", w.host());
    let app = format!("{}/acme/app:1", w.host());
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.13",
        &[
            "-previous-image",
            "127.0.0.1:1/acme/app:1",
            "-run-image",
            &run_image,
            &app,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Warning: Previous image 127.0.0.1:1/acme/app:1 is unreachable"),
        "{out}"
    );
    assert!(out.contains("continuing as a first build"), "{out}");
    assert_eq!(
        fs::read_to_string(w.layers().join("analyzed.toml")).unwrap(),
        first_build_toml(&w, &run.digest.to_string(), &run_image)
    );
}

#[test]
fn unreadable_run_image_fails_with_the_analyze_exit_code() {
    let w = World::new();
    let app = format!("{}/acme/app:1", w.host());
    let locked = Registry::with_auth("user", "secret");
    let denied = format!("{}/stack/run:1", locked.host());
    let (code, out) = w.lifecycle("analyzer", "0.13", &["-run-image", &denied, &app]);
    assert_eq!(code, 32, "{out}");
    assert!(
        out.contains(&format!(
            "ERROR: failed to analyze: validating registry read access: ensure registry read access to {denied}"
        )),
        "{out}"
    );
    assert!(!w.layers().join("analyzed.toml").exists());

    let missing = format!("{}/stack/missing:1", w.host());
    let (code, out) = w.lifecycle("analyzer", "0.13", &["-run-image", &missing, &app]);
    assert_eq!(code, 32, "{out}");
    assert!(
        out.contains(&format!("run image {missing} not found")),
        "{out}"
    );

    // Write access to the output image is checked too.
    w.push_run_image();
    let run_image = format!("{}/stack/run:1", w.host());
    let out_locked = format!("{}/acme/app:1", locked.host());
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.13",
        &[
            "-previous-image",
            &app,
            "-run-image",
            &run_image,
            &out_locked,
        ],
    );
    assert_eq!(code, 32, "{out}");
    assert!(
        out.contains(&format!(
            "ensure registry read/write access to {out_locked}"
        )),
        "{out}"
    );

    let (code, out) = w.lifecycle("analyzer", "0.13", &["-daemon", &app]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not supported yet"), "{out}");
    let other = format!("{}/acme/app:1", locked.host());
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.13",
        &["-run-image", &run_image, "-tag", &other, &app],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("writing to multiple registries is unsupported"),
        "{out}"
    );
}

#[test]
fn layout_mode_reads_images_from_the_layout_dir() {
    let w = World::new();
    let run = w.push_run_image();
    let dir = w.root.join("layout");
    let run_path = dir.join(w.host()).join("stack/run/1");
    let l = buildpod::oci::layout::Layout::create(&run_path).unwrap();
    buildpod::oci::copy::copy_image(
        &w.repo("stack/run"),
        "1",
        &l,
        &["1".to_string()],
        &Default::default(),
    )
    .unwrap();
    let run_image = format!("{}/stack/run:1", w.host());
    // The output registry is not even running: layout mode never talks to it.
    let app = "127.0.0.1:1/acme/app:1";
    let (code, out) = w.lifecycle(
        "analyzer",
        "0.13",
        &[
            "-layout",
            "-layout-dir",
            dir.to_str().unwrap(),
            "-run-image",
            &run_image,
            app,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("Image with name \"{app}\" not found")),
        "{out}"
    );
    let analyzed = fs::read_to_string(w.layers().join("analyzed.toml")).unwrap();
    assert!(
        analyzed.contains(&format!(
            "[run-image]\n  reference = \"{}@{}\"\n  image = \"{run_image}\"\n",
            run_path.display(),
            run.digest
        )),
        "{analyzed}"
    );
}
