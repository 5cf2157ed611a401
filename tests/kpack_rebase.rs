//! kpack's `rebase` step as a real process against a real registry (htpasswd auth, behind a
//! counting proxy): an app image built with the library exporter is rebased onto a new run
//! image without moving app layer blobs, the report is lifecycle's, `completion` then reports
//! the new run image, and every error path prints kpack's text with its exit code.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod support;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use buildpod::export::inputs::{Analyzed, ConfigMetadata, RunToml};
use buildpod::export::labels::LayersMetadata;
use buildpod::export::{export, ExportOptions, ImageSource};
use buildpod::kpack::metadata::decompress;
use buildpod::layer::{CompressOptions, Compression};
use buildpod::lifecycle::order::GroupEntry;
use buildpod::oci::assemble::write_image;
use buildpod::oci::{media, BlobStore, ImageConfig, Manifest, RawManifest};
use buildpod::registry::{AuthEntry, Client, ClientOptions, Keychain, Repo};
use kpack_util::{read, Root};
use support::proxy::Proxy;
use support::registry::Registry;
use support::tools;

const USER: &str = "rebaser";
const PASS: &str = "rebase-Pa55-word";
const STACK: &str = "io.example.tiny";

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

struct World {
    _reg: Registry,
    proxy: Proxy,
    client: Arc<Client>,
    build: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let reg = Registry::with_auth(USER, PASS);
        let proxy = Proxy::start(reg.addr(), vec![]);
        let mut kc = Keychain::empty();
        kc.insert(&proxy.host(), AuthEntry::basic(USER, PASS));
        let client = Client::new(ClientOptions {
            keychain: kc,
            ..Default::default()
        })
        .unwrap();
        let w = World {
            _reg: reg,
            proxy,
            client,
            build: tempfile::tempdir().unwrap(),
        };
        w.run_image("stack/run", "ID=tiny\nVERSION=1\n", STACK);
        w.app();
        w
    }

    fn host(&self) -> String {
        self.proxy.host()
    }

    fn repo(&self, name: &str) -> Repo {
        Repo::new(self.client.clone(), &self.host(), name)
    }

    /// `<repo>:latest` with one layer holding `/etc/os-release`.
    fn run_image(&self, repo: &str, release: &str, stack: &str) -> RawManifest {
        let store = self.repo(repo);
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join("etc/os-release"), release);
        let layer = common::dir_layer(&store, tmp.path(), Compression::Gzip, 1);
        let mut cfg = ImageConfig::new("linux", "amd64");
        cfg.set_env("PATH", "/usr/bin:/bin");
        cfg.set_label("io.buildpacks.stack.id", stack);
        cfg.set_label("io.buildpacks.stack.release", release);
        write_image(
            &store,
            &mut cfg,
            &[layer],
            media::OCI_MANIFEST,
            &["latest".into()],
        )
        .unwrap()
    }

    /// `acme/app:latest` on `stack/run:latest`, exported with Platform API 0.9 as kpack's
    /// lifecycle containers do.
    fn app(&self) {
        let root = self.build.path();
        let l = root.join("layers");
        write(&l.join("acme_hello/bin.toml"), "[types]\nlaunch = true\n");
        write(&l.join("acme_hello/bin/bin/hello"), "#!/bin/sh\necho hi\n");
        write(
            &l.join("config/metadata.toml"),
            "[[processes]]\ntype = \"web\"\ncommand = [\"hello\"]\ndirect = true\nbuildpack-id = \"acme/hello\"\n",
        );
        write(&root.join("workspace/app.txt"), "the app\n");
        write(&root.join("launcher"), "#!/bin/sh\n");
        let run = self.repo("stack/run");
        let run_digest = run.get_manifest("latest").unwrap().digest.to_string();
        let opts = ExportOptions {
            layers_dir: l.clone(),
            app_dir: root.join("workspace"),
            launcher: root.join("launcher"),
            uid: 1000,
            gid: 1000,
            platform_api: (0, 9),
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
            analyzed: toml::from_str::<Analyzed>(&format!(
                "[run-image]\nreference = \"{h}/stack/run@{run_digest}\"\nimage = \"{h}/stack/run\"\n",
                h = self.host()
            ))
            .unwrap(),
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
            launcher_version: "0.20.12".into(),
            tags: vec!["latest".into()],
        };
        export(
            &opts,
            &ImageSource {
                store: &run,
                reference: run_digest,
            },
            None,
            &self.repo("acme/app"),
        )
        .unwrap();
    }

    fn image(&self, repo: &str, reference: &str) -> (RawManifest, Vec<String>, ImageConfig) {
        let r = self.repo(repo);
        let raw = r.get_manifest(reference).unwrap();
        let Manifest::Image(im) = raw.parse().unwrap() else {
            panic!("index")
        };
        let cd = buildpod::oci::manifest::descriptor_digest(im.config()).unwrap();
        let cfg = ImageConfig::from_json(&r.read_blob(&cd, None).unwrap(), "cfg").unwrap();
        let layers = im.layers().iter().map(|l| l.digest().to_string()).collect();
        (raw, layers, cfg)
    }

    /// A kpack root with a docker config secret for the registry.
    fn root(&self) -> Root {
        let root = Root::new();
        root.secret(
            "registry-creds",
            &[(
                ".dockerconfigjson",
                &format!(
                    r#"{{"auths":{{"{}":{{"username":"{USER}","password":"{PASS}"}}}}}}"#,
                    self.host()
                ),
            )],
        );
        root
    }
}

/// The rebase pod's arguments (`build_pod.go` rebasePod).
fn pod_args<'a>(run: &'a str, last: &'a str, tags: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--run-image",
        run,
        "--last-built-image",
        last,
        "--report",
        "/var/report/report.toml",
        "-dockerconfig=registry-creds",
    ];
    a.extend_from_slice(tags);
    a
}

#[test]
fn rebase_then_completion_like_kpack() {
    tools::require("skopeo");
    tools::require("umoci");
    let w = World::new();
    let h = w.host();
    let (old, old_layers, old_cfg) = w.image("acme/app", "latest");
    let v2 = w.run_image("stack/run", "ID=tiny\nVERSION=2\n", STACK);
    let (_, v2_layers, v2_cfg) = w.image("stack/run", "latest");

    let root = w.root();
    let run = format!("{h}/stack/run");
    let last = format!("{h}/acme/app@{}", old.digest);
    let t0 = format!("{h}/acme/app");
    let t1 = format!("{h}/acme/app:b2.20260101.120000");
    let t2 = format!("{h}/mirror/app:b2");
    w.proxy.clear();
    let out = root.run(
        "rebase",
        &pod_args(&run, &last, &[&t0, &t1, &t2]),
        &[(
            "BUILD_CHANGES",
            r#"[{"reason":"STACK","old":"sha256:aa","new":"sha256:bb"}]"#,
        )],
    );
    assert_eq!(out.code(), 0, "{out:?}");

    // App layer blobs never cross the wire: no GET, no upload (mounts are POSTs).
    for r in w.proxy.requests() {
        for l in &old_layers[1..] {
            assert!(
                !(r.path.contains(l.as_str())
                    && matches!(r.method.as_str(), "GET" | "PATCH" | "PUT")),
                "app layer blob transferred: {} {}",
                r.method,
                r.path
            );
        }
        assert_ne!(r.method, "PATCH", "streamed blob upload: {}", r.path);
    }

    let (new, layers, cfg) = w.image("acme/app", "latest");
    assert_eq!(layers[0], v2_layers[0], "run layer swapped");
    assert_eq!(layers[1..], old_layers[1..], "app layers kept");
    assert_eq!(cfg.entrypoint(), old_cfg.entrypoint());
    assert_eq!(
        cfg.label("io.buildpacks.stack.release").as_deref(),
        Some("ID=tiny\nVERSION=2\n"),
        "stack labels follow the new run image"
    );
    let meta: LayersMetadata =
        serde_json::from_str(&cfg.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    assert_eq!(
        meta.run_image.top_layer,
        v2_cfg.diff_ids().unwrap()[0].to_string()
    );
    assert_eq!(meta.run_image.reference, format!("{run}@{}", v2.digest));
    for (repo, tag) in [("acme/app", "b2.20260101.120000"), ("mirror/app", "b2")] {
        assert_eq!(w.repo(repo).get_manifest(tag).unwrap().digest, new.digest);
    }

    let d = new.digest.to_string();
    assert_eq!(
        out.stdout(),
        format!(
            "Build reason(s): STACK\nSTACK:\n\t\x1b[31m-\x1b[0m \x1b[31msha256:aa\x1b[0m\n\t\x1b[32m+\x1b[0m \x1b[32msha256:bb\x1b[0m\n\
             Loading cluster credential helpers\n\
             Loading secret for \"{h}\" from secret \"registry-creds\" at location \"/var/build-secrets/registry-creds\"\n\
             *** Images ({d}):\n      {t0}\n      {t1}\n      {t2}\n"
        )
    );
    assert!(!out.all().contains(PASS));
    assert_eq!(
        read(&root.path("var/report/report.toml")),
        format!(
            "[image]\n  tags = [\"{t0}\", \"{t1}\", \"{t2}\"]\n  digest = \"{d}\"\n  manifest-size = {}\n",
            new.bytes.len()
        )
    );

    // completion reads the rebaser's report and reports the new run image.
    let term = root.path("tmp/termination-log");
    let out = root.run(
        "completion",
        &["-dockerconfig=registry-creds"],
        &[("TERMINATION_MESSAGE_PATH", term.to_str().unwrap())],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let m = decompress(&read(&term)).unwrap();
    assert_eq!(m.latest_image, format!("{t0}@{d}"));
    assert_eq!(m.stack_run_image, format!("{run}@{}", v2.digest));
    assert_eq!(m.stack_id, STACK);
    assert_eq!(m.lifecycle_version, "0.20.12");

    // The rebased image unpacks with the new base and the same app.
    let tmp = tempfile::tempdir().unwrap();
    let lay = tmp.path().join("layout");
    tools::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("--src-creds={USER}:{PASS}"),
        &format!("docker://{t1}"),
        &format!("oci:{}:v2", lay.display()),
    ]);
    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&lay, "v2", &bundle);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        "ID=tiny\nVERSION=2\n"
    );
    let app_file = w.build.path().join("workspace/app.txt");
    assert_eq!(
        fs::read_to_string(rootfs.join(app_file.strip_prefix("/").unwrap())).unwrap(),
        "the app\n"
    );
}

#[test]
fn rebase_errors_match_kpack() {
    let w = World::new();
    let h = w.host();
    let app = w.repo("acme/app").get_manifest("latest").unwrap().digest;
    let last = format!("{h}/acme/app@{app}");
    let run = format!("{h}/stack/run");
    let t0 = format!("{h}/acme/app");
    let root = w.root();
    let report = root.path("var/report/report.toml");

    let missing = format!("{h}/acme/gone@sha256:{}", "0".repeat(64));
    let out = root.run("rebase", &pod_args(&run, &missing, &[&t0]), &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout().ends_with(&format!(
            "ERROR: could not access previous image: {missing}\n"
        )),
        "{out:?}"
    );

    let out = root.run(
        "rebase",
        &pod_args(&format!("{h}/stack/none"), &last, &[&t0]),
        &[],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout().ends_with(&format!(
            "ERROR: could not access run image: {h}/stack/none\n"
        )),
        "{out:?}"
    );

    // Without credentials the registry answers 401, which imgutil treats as "not found".
    let bare = Root::new();
    let out = bare.run(
        "rebase",
        &["--run-image", &run, "--last-built-image", &last, &t0],
        &[],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout()
            .ends_with(&format!("ERROR: could not access previous image: {last}\n")),
        "{out:?}"
    );

    w.run_image("stack/other", "ID=other\n", "io.example.other");
    let out = root.run(
        "rebase",
        &pod_args(&format!("{h}/stack/other"), &last, &[&t0]),
        &[],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout().ends_with(
            "ERROR: incompatible stack: 'io.example.other' is not compatible with 'io.example.tiny'\n"
        ),
        "{out:?}"
    );

    w.run_image("stack/nostack", "ID=x\n", "");
    let out = root.run(
        "rebase",
        &pod_args(&format!("{h}/stack/nostack"), &last, &[&t0]),
        &[],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout()
            .ends_with("ERROR: stack not defined on new base image\n"),
        "{out:?}"
    );
    assert!(!report.exists(), "no report after a failure");
    // Nothing was written: the app is unchanged.
    assert_eq!(
        w.repo("acme/app").get_manifest("latest").unwrap().digest,
        app
    );

    // A missing docker config secret directory is fine; a bad -basic-docker is exit 3.
    let out = root.run("rebase", &["-basic-docker=x=y=z", &t0], &[]);
    assert_eq!(out.code(), 3, "{out:?}");
    assert_eq!(
        out.stdout(),
        "Loading cluster credential helpers\nERROR: failed to : could not parse docker secret argument x=y=z\n"
    );
    // Unknown flags: Go's usage and exit 2.
    let out = root.run("rebase", &["-nope", &t0], &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out
        .stderr()
        .starts_with("flag provided but not defined: -nope\n"));
}
