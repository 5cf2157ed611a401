//! `lifecycle rebaser` against a real registry (through a counting proxy): run layers are
//! swapped, app layer blobs are never fetched or uploaded, labels follow the new base, and
//! target mismatches are refused unless `-force`.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use buildpod::export::inputs::{Analyzed, ConfigMetadata, RunToml};
use buildpod::export::labels::LayersMetadata;
use buildpod::export::{export, ExportOptions, ImageSource};
use buildpod::layer::{CompressOptions, Compression};
use buildpod::lifecycle::order::GroupEntry;
use buildpod::oci::assemble::write_image;
use buildpod::oci::{media, BlobStore, ImageConfig, Manifest, RawManifest};
use buildpod::registry::{Client, ClientOptions, Repo};
use support::proxy::Proxy;
use support::registry::Registry;
use support::tools;

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

/// A run image with one layer holding `/etc/os-release` = `release`.
fn run_image(
    store: &dyn BlobStore,
    tag: &str,
    release: &str,
    arch: &str,
    stack: &str,
) -> RawManifest {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("etc/os-release"), release);
    let layer = common::dir_layer(store, tmp.path(), Compression::Gzip, 1);
    let mut cfg = ImageConfig::new("linux", arch);
    cfg.set_env("PATH", "/usr/bin:/bin");
    cfg.set_label("io.buildpacks.stack.id", stack);
    cfg.set_label("io.buildpacks.base.distro.name", "tiny");
    cfg.set_label("org.example.release", release);
    write_image(
        store,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &[tag.to_string()],
    )
    .unwrap()
}

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    _reg: Registry,
    proxy: Proxy,
    client: Arc<Client>,
}

impl World {
    fn host(&self) -> String {
        self.proxy.host()
    }

    fn repo(&self, name: &str) -> Repo {
        Repo::new(self.client.clone(), &self.host(), name)
    }

    /// Build `acme/app:v1` on `stack/run:latest` with the library exporter.
    fn app(&self) {
        let l = self.root.join("layers");
        write(&l.join("acme_hello/bin.toml"), "[types]\nlaunch = true\n");
        write(
            &l.join("acme_hello/bin/bin/hello"),
            "#!/bin/sh\necho hello\n",
        );
        write(
            &l.join("config/metadata.toml"),
            "[[processes]]\ntype = \"web\"\ncommand = [\"hello\"]\ndirect = true\nbuildpack-id = \"acme/hello\"\n",
        );
        write(&self.root.join("workspace/app.txt"), "the app\n");
        write(&self.root.join("launcher"), "#!/bin/sh\n");
        let run = self.repo("stack/run");
        let run_digest = run.get_manifest("latest").unwrap().digest.to_string();
        let analyzed: Analyzed = toml::from_str(&format!(
            "[run-image]\nreference = \"{h}/stack/run@{run_digest}\"\nimage = \"{h}/stack/run\"\n",
            h = self.host()
        ))
        .unwrap();
        let opts = ExportOptions {
            layers_dir: l.clone(),
            app_dir: self.root.join("workspace"),
            launcher: self.root.join("launcher"),
            uid: 1000,
            gid: 1000,
            platform_api: (0, 13),
            group: vec![GroupEntry {
                id: "acme/hello".into(),
                version: "1.0.0".into(),
                api: "0.10".into(),
                homepage: String::new(),
            }],
            config: toml::from_str::<ConfigMetadata>(
                &fs::read_to_string(l.join("config/metadata.toml")).unwrap(),
            )
            .unwrap(),
            analyzed,
            run: toml::from_str::<RunToml>(&format!(
                "[[images]]\nimage = \"{}/stack/run\"\n",
                self.host()
            ))
            .unwrap(),
            project_metadata: serde_json::json!({}),
            process_type: None,
            source_date_epoch: None,
            compression: CompressOptions::new(Compression::Gzip),
            parallel: 2,
            launcher_version: "0.1.0".into(),
            tags: vec!["v1".into()],
        };
        let app = self.repo("acme/app");
        export(
            &opts,
            &ImageSource {
                store: &run,
                reference: run_digest,
            },
            None,
            &app,
        )
        .unwrap();
    }

    fn rebaser(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
            .arg("rebaser")
            .env("CNB_PLATFORM_API", "0.13")
            .env("HOME", &self.root)
            .env_remove("CNB_USER_ID")
            .arg("-report")
            .arg(self.root.join("report.toml"))
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn image(&self, repo: &str, reference: &str) -> (Vec<String>, ImageConfig) {
        let r = self.repo(repo);
        let Manifest::Image(im) = r.get_manifest(reference).unwrap().parse().unwrap() else {
            panic!("index")
        };
        let cd = buildpod::oci::manifest::descriptor_digest(im.config()).unwrap();
        let cfg = ImageConfig::from_json(&r.read_blob(&cd, None).unwrap(), "cfg").unwrap();
        (
            im.layers().iter().map(|l| l.digest().to_string()).collect(),
            cfg,
        )
    }
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.addr(), vec![]);
    let client = Client::new(ClientOptions::default()).unwrap();
    let w = World {
        root: tmp.path().to_path_buf(),
        _tmp: tmp,
        _reg: reg,
        proxy,
        client,
    };
    run_image(
        &w.repo("stack/run"),
        "latest",
        "ID=tiny\nVERSION=1\n",
        "amd64",
        "io.example.tiny",
    );
    w.app();
    w
}

#[test]
fn rebase_swaps_run_layers_without_touching_app_layer_blobs() {
    tools::require("skopeo");
    tools::require("umoci");
    let w = world();
    let (old_layers, old_cfg) = w.image("acme/app", "v1");
    let v2 = run_image(
        &w.repo("stack/run"),
        "latest",
        "ID=tiny\nVERSION=2\n",
        "amd64",
        "io.example.tiny",
    );
    let (v2_layers, v2_cfg) = w.image("stack/run", "latest");

    w.proxy.clear();
    let app = format!("{}/acme/app:v2", w.host());
    let (code, out) = w.rebaser(&[
        "-previous-image",
        &format!("{}/acme/app:v1", w.host()),
        &app,
    ]);
    assert_eq!(code, 0, "{out}");
    for r in w.proxy.requests() {
        for l in &old_layers[1..] {
            assert!(
                !(r.path.contains(l.as_str())
                    && matches!(r.method.as_str(), "GET" | "PUT" | "PATCH")),
                "app layer blob transferred: {} {}",
                r.method,
                r.path
            );
        }
        assert!(!r.method.eq("PATCH"), "blob upload: {}", r.path);
    }

    let (layers, cfg) = w.image("acme/app", "v2");
    assert_eq!(layers[0], v2_layers[0], "run layer swapped");
    assert_eq!(layers[1..], old_layers[1..], "app layers kept");
    let meta: LayersMetadata =
        serde_json::from_str(&cfg.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    assert_eq!(
        meta.run_image.top_layer,
        v2_cfg.diff_ids().unwrap()[0].to_string()
    );
    assert_eq!(
        meta.run_image.reference,
        format!("{}/stack/run@{}", w.host(), v2.digest)
    );
    assert_eq!(
        cfg.label("org.example.release").as_deref(),
        Some("ID=tiny\nVERSION=1\n"),
        "labels other than io.buildpacks.stack.*/base.* stay as the app had them"
    );
    assert_eq!(
        cfg.entrypoint(),
        old_cfg.entrypoint(),
        "config comes from the app"
    );
    assert_eq!(cfg.created(), Some("1980-01-01T00:00:01Z"));

    let report = fs::read_to_string(w.root.join("report.toml")).unwrap();
    let v: toml::Table = toml::from_str(&report).unwrap();
    let digest = w
        .repo("acme/app")
        .get_manifest("v2")
        .unwrap()
        .digest
        .to_string();
    assert_eq!(v["image"]["digest"].as_str(), Some(digest.as_str()));
    assert_eq!(v["image"]["tags"][0].as_str(), Some(app.as_str()));

    // The result unpacks with the new base and the same app.
    let tmp = tempfile::tempdir().unwrap();
    let lay = tmp.path().join("oci");
    tools::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{app}"),
        &format!("oci:{}:v2", lay.display()),
    ]);
    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&lay, "v2", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        "ID=tiny\nVERSION=2\n"
    );
    let app_file = w.root.join("workspace/app.txt");
    assert_eq!(
        fs::read_to_string(rootfs.join(app_file.strip_prefix("/").unwrap())).unwrap(),
        "the app\n"
    );
}

#[test]
fn mismatched_targets_are_refused_unless_forced() {
    let w = world();
    run_image(
        &w.repo("stack/arm"),
        "latest",
        "ID=tiny\n",
        "arm64",
        "io.example.tiny",
    );
    let app = format!("{}/acme/app:v1", w.host());
    let arm = format!("{}/stack/arm", w.host());
    let (code, out) = w.rebaser(&["-run-image", &arm, &app]);
    assert_eq!(code, 72, "{out}");
    assert!(
        out.contains("architecture") && out.contains("-force"),
        "{out}"
    );
    assert!(!w.root.join("report.toml").exists(), "{out}");
    let (code, out) = w.rebaser(&["-run-image", &arm, "-force", &app]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Warning") && out.contains("architecture"),
        "{out}"
    );
    let (_, cfg) = w.image("acme/app", "v1");
    assert_eq!(cfg.architecture(), "arm64");
    let meta: LayersMetadata =
        serde_json::from_str(&cfg.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    assert_eq!(
        meta.run_image.image, arm,
        "forced onto an unknown run image: recorded"
    );

    // An app without lifecycle metadata: exit 72, naming the image.
    run_image(&w.repo("plain/img"), "latest", "x", "amd64", "s");
    let plain = format!("{}/plain/img", w.host());
    let (code, out) = w.rebaser(&[&plain]);
    assert_eq!(code, 72, "{out}");
    assert!(
        out.contains("plain/img") && out.contains("-run-image"),
        "{out}"
    );
}
