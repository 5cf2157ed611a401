//! Exporter against a real registry: the image's config, labels and layers follow the spec,
//! exports are reproducible, and unchanged layers are reused without uploads.

#[path = "common_image.rs"]
mod common;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildpod::export::inputs::{read_toml, Analyzed, ConfigMetadata, RunToml};
use buildpod::export::labels::LayersMetadata;
use buildpod::export::{export, ExportOptions, ExportReport, ImageSource};
use buildpod::layer::{CompressOptions, Compression};
use buildpod::lifecycle::order::GroupEntry;
use buildpod::oci::{BlobStore, ImageConfig, Manifest};
use buildpod::registry::{Client, ClientOptions, Repo};
use support::proxy::Proxy;
use support::registry::Registry;
use support::tools;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    fn app(&self) -> PathBuf {
        self.root.join("workspace")
    }
}

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

/// Two buildpacks' output as the builder leaves it.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let l = root.join("layers");
    write(
        &l.join("acme_one/deps.toml"),
        "[types]\nlaunch = true\ncache = true\n[metadata]\nv = 1\n",
    );
    write(&l.join("acme_one/deps/lib/dep.txt"), "dependency\n");
    write(&l.join("acme_one/tools.toml"), "[types]\nbuild = true\n");
    write(&l.join("acme_one/tools/bin/tool"), "build only\n");
    write(&l.join("acme_two/bin.toml"), "[types]\nlaunch = true\n");
    write(&l.join("acme_two/bin/bin/hello"), "#!/bin/sh\necho hello\n");
    write(&l.join("acme_two/store.toml"), "[metadata]\nruns = 3\n");
    write(&l.join("sbom/launch/acme_two/bin/sbom.cdx.json"), "{}\n");
    write(
        &l.join("config/metadata.toml"),
        "buildpack-default-process-type = \"web\"\n\n[[buildpacks]]\nid = \"acme/one\"\nversion = \"1.0.0\"\napi = \"0.10\"\n\n\
         [[buildpacks]]\nid = \"acme/two\"\nversion = \"2.0.0\"\napi = \"0.10\"\n\n\
         [[processes]]\ntype = \"web\"\ncommand = [\"hello\"]\nargs = [\"world\"]\ndirect = true\nbuildpack-id = \"acme/two\"\n\n\
         [[processes]]\ntype = \"worker\"\ncommand = [\"sh\", \"-c\"]\nargs = [\"sleep 1\"]\ndirect = false\nbuildpack-id = \"acme/two\"\n\n\
         [[labels]]\nkey = \"org.acme.built-by\"\nvalue = \"acme\"\n",
    );
    write(&root.join("workspace/index.html"), "<h1>hi</h1>\n");
    write(&root.join("workspace/src/app.sh"), "echo app\n");
    write(&root.join("launcher"), "#!/bin/sh\n# stand-in launcher\n");
    Fixture { _tmp: tmp, root }
}

fn group() -> Vec<GroupEntry> {
    vec![
        GroupEntry {
            id: "acme/one".into(),
            version: "1.0.0".into(),
            api: "0.10".into(),
            homepage: String::new(),
        },
        GroupEntry {
            id: "acme/two".into(),
            version: "2.0.0".into(),
            api: "0.10".into(),
            homepage: "https://acme.example".into(),
        },
    ]
}

fn options(f: &Fixture, analyzed: Analyzed, tags: &[&str]) -> ExportOptions {
    ExportOptions {
        layers_dir: f.layers(),
        app_dir: f.app(),
        launcher: f.root.join("launcher"),
        uid: 1000,
        gid: 1001,
        platform_api: (0, 13),
        group: group(),
        config: read_toml::<ConfigMetadata>(
            &f.layers().join("config/metadata.toml"),
            "metadata.toml",
        )
        .unwrap(),
        analyzed,
        run: toml::from_str::<RunToml>(
            "[[images]]\nimage = \"example.com/run:1\"\nmirrors = [\"mirror.example.com/run:1\"]\n",
        )
        .unwrap(),
        project_metadata: serde_json::json!({"source": {"type": "git", "version": {"commit": "abc"}}}),
        process_type: None,
        source_date_epoch: None,
        compression: CompressOptions::new(Compression::Gzip),
        parallel: 2,
        launcher_version: "0.1.0".into(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    }
}

struct Env {
    _reg: Registry,
    proxy: Proxy,
    client: Arc<Client>,
    run_digest: String,
}

fn env() -> Env {
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.addr(), vec![]);
    let client = Client::new(ClientOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    write(&rootfs.join("etc/os-release"), "ID=tiny\n");
    let run = Repo::new(client.clone(), &proxy.host(), "stack/run");
    let m = common::dir_image(&run, &rootfs, Compression::Gzip, "amd64", "1");
    Env {
        _reg: reg,
        proxy,
        client,
        run_digest: m.digest.to_string(),
    }
}

fn analyzed_first(e: &Env) -> Analyzed {
    toml::from_str(&format!(
        "[run-image]\nreference = \"{}/stack/run@{}\"\nimage = \"example.com/run:1\"\n",
        e.proxy.host(),
        e.run_digest
    ))
    .unwrap()
}

fn run_export(e: &Env, f: &Fixture, o: &ExportOptions, previous: Option<&str>) -> ExportReport {
    let run = Repo::new(e.client.clone(), &e.proxy.host(), "stack/run");
    let app = Repo::new(e.client.clone(), &e.proxy.host(), "acme/app");
    let prev = previous.map(|r| ImageSource {
        store: &app,
        reference: r.to_string(),
    });
    let _ = f;
    export(
        o,
        &ImageSource {
            store: &run,
            reference: e.run_digest.clone(),
        },
        prev.as_ref(),
        &app,
    )
    .unwrap()
}

fn config_of(e: &Env, reference: &str) -> (ImageConfig, Vec<String>) {
    let app = Repo::new(e.client.clone(), &e.proxy.host(), "acme/app");
    let Manifest::Image(im) = app.get_manifest(reference).unwrap().parse().unwrap() else {
        panic!()
    };
    let cd = buildpod::oci::manifest::descriptor_digest(im.config()).unwrap();
    let cfg = ImageConfig::from_json(&app.read_blob(&cd, None).unwrap(), "cfg").unwrap();
    let layers = im.layers().iter().map(|l| l.digest().to_string()).collect();
    (cfg, layers)
}

#[test]
fn exported_image_matches_the_spec_and_is_read_by_skopeo_and_umoci() {
    tools::require("skopeo");
    tools::require("umoci");
    let e = env();
    let f = fixture();
    let o = options(&f, analyzed_first(&e), &["v1", "latest"]);
    let report = run_export(&e, &f, &o, None);
    assert_eq!(report.added.len(), 7, "{report:?}");
    assert_eq!(
        report.added,
        vec![
            "acme/one:deps",
            "acme/two:bin",
            "buildpacksio/lifecycle:launch.sbom",
            "app",
            "buildpacksio/lifecycle:launcher",
            "buildpacksio/lifecycle:config",
            "buildpacksio/lifecycle:process-types"
        ]
    );

    let (cfg, layers) = config_of(&e, "v1");
    assert_eq!(layers.len(), 8);
    assert_eq!(config_of(&e, "latest").1, layers);
    let meta: LayersMetadata =
        serde_json::from_str(&cfg.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    let diff_ids: Vec<String> = cfg
        .diff_ids()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(meta.run_image.top_layer, diff_ids[0]);
    assert_eq!(meta.buildpacks[0].key, "acme/one");
    let deps = &meta.buildpacks[0].layers["deps"];
    assert_eq!((deps.launch, deps.cache, deps.build), (true, true, false));
    assert_eq!(deps.data["v"], 1);
    assert_eq!(deps.sha, diff_ids[1]);
    assert!(
        !meta.buildpacks[0].layers.contains_key("tools"),
        "build-only layer exported"
    );
    assert_eq!(meta.buildpacks[1].layers["bin"].sha, diff_ids[2]);
    assert_eq!(
        meta.buildpacks[1].store.as_ref().unwrap().metadata["runs"],
        3
    );
    assert_eq!(meta.sbom.as_ref().unwrap().sha, diff_ids[3]);
    assert_eq!(meta.app[0].sha, diff_ids[4]);
    assert_eq!(meta.launcher.sha, diff_ids[5]);
    assert_eq!(meta.config.sha, diff_ids[6]);
    assert_eq!(meta.process_types.sha, diff_ids[7]);
    assert_eq!(meta.run_image.image, "example.com/run:1");
    assert_eq!(
        meta.stack.run_image.mirrors,
        vec!["mirror.example.com/run:1"]
    );

    let build: serde_json::Value =
        serde_json::from_str(&cfg.label("io.buildpacks.build.metadata").unwrap()).unwrap();
    assert_eq!(
        build["buildpacks"][1],
        serde_json::json!({"id": "acme/two", "version": "2.0.0", "homepage": "https://acme.example"})
    );
    assert_eq!(build["processes"][0]["type"], "web");
    assert_eq!(
        build["processes"][0]["command"],
        serde_json::json!(["hello"])
    );
    assert_eq!(build["buildpack-default-process-type"], "web");
    let project: serde_json::Value =
        serde_json::from_str(&cfg.label("io.buildpacks.project.metadata").unwrap()).unwrap();
    assert_eq!(project["source"]["version"]["commit"], "abc");
    assert_eq!(cfg.label("org.acme.built-by").as_deref(), Some("acme"));
    assert_eq!(cfg.entrypoint(), Some(vec!["/cnb/process/web".to_string()]));
    assert_eq!(cfg.cmd(), None);
    assert_eq!(
        cfg.working_dir().as_deref(),
        Some(f.app().to_str().unwrap())
    );
    assert_eq!(cfg.env_var("CNB_PLATFORM_API").as_deref(), Some("0.13"));
    assert_eq!(
        cfg.env_var("PATH").as_deref(),
        Some("/cnb/process:/cnb/lifecycle:/usr/bin:/bin")
    );
    assert_eq!(cfg.created(), Some("1980-01-01T00:00:01Z"));
    let history: Vec<String> = cfg
        .inner()
        .history()
        .clone()
        .unwrap()
        .iter()
        .map(|h| h.created_by().clone().unwrap_or_default())
        .collect();
    assert_eq!(
        history[1],
        "Layer: 'deps', Created by buildpack: acme/one@1.0.0"
    );
    assert_eq!(history[7], "Buildpacks Process Types");

    // Independent readers.
    let image = format!("docker://{}/acme/app:v1", e.proxy.host());
    tools::skopeo(&["inspect", "--tls-verify=false", &image]);
    let tmp = tempfile::tempdir().unwrap();
    let lay = tmp.path().join("oci");
    tools::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &image,
        &format!("oci:{}:v1", lay.display()),
    ]);
    let bundle = tmp.path().join("bundle");
    tools::umoci_unpack(&lay, "v1", &bundle);
    let rootfs = bundle.join("rootfs");
    let inside = |p: &Path| rootfs.join(p.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read_link(rootfs.join("cnb/process/web")).unwrap(),
        Path::new("/cnb/lifecycle/launcher")
    );
    assert!(rootfs.join("cnb/lifecycle/launcher").is_file());
    assert_eq!(
        fs::read_to_string(inside(&f.app().join("index.html"))).unwrap(),
        "<h1>hi</h1>\n"
    );
    assert_eq!(
        fs::read_to_string(inside(&f.layers().join("acme_one/deps/lib/dep.txt"))).unwrap(),
        "dependency\n"
    );
    assert!(!inside(&f.layers().join("acme_one/tools")).exists());
    assert!(inside(&f.layers().join("config/metadata.toml")).is_file());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(inside(&f.app().join("index.html")))
            .unwrap()
            .uid(),
        1000
    );
}

#[test]
fn export_is_reproducible_and_source_date_epoch_changes_only_created() {
    let e = env();
    let f = fixture();
    let a = run_export(&e, &f, &options(&f, analyzed_first(&e), &["a"]), None);
    let b = run_export(&e, &f, &options(&f, analyzed_first(&e), &["b"]), None);
    assert_eq!(a.digest, b.digest);
    let mut o = options(&f, analyzed_first(&e), &["c"]);
    o.source_date_epoch = Some(1_700_000_000);
    let c = run_export(&e, &f, &o, None);
    assert_ne!(a.digest, c.digest);
    let (ca, la) = config_of(&e, "a");
    let (cc, lc) = config_of(&e, "c");
    assert_eq!(la, lc, "layers must not change");
    assert_eq!(cc.created(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(ca.labels(), cc.labels());
    assert_eq!(ca.diff_ids().unwrap(), cc.diff_ids().unwrap());
}

#[test]
fn rebuild_reuses_unchanged_layers_and_uploads_only_what_changed() {
    let e = env();
    let f = fixture();
    run_export(&e, &f, &options(&f, analyzed_first(&e), &["v1"]), None);
    let (cfg, _) = config_of(&e, "v1");
    let analyzed_with_previous = |tag: &str| -> Analyzed {
        let meta = cfg.label("io.buildpacks.lifecycle.metadata").unwrap();
        let mut a = analyzed_first(&e);
        a.metadata = serde_json::from_str(&meta).unwrap();
        a.image = Some(buildpod::export::inputs::ImageRef {
            reference: tag.to_string(),
        });
        a
    };

    // Unchanged: every layer reused, no layer blob uploaded.
    e.proxy.clear();
    let r = run_export(
        &e,
        &f,
        &options(&f, analyzed_with_previous("v1"), &["v2"]),
        Some("v1"),
    );
    assert_eq!(r.added, Vec::<String>::new(), "{r:?}");
    assert_eq!(r.reused.len(), 7);
    assert_eq!(
        e.proxy.count("PATCH", "/blobs/uploads/"),
        0,
        "{:?}",
        e.proxy.requests()
    );
    assert_eq!(config_of(&e, "v2").1, config_of(&e, "v1").1);

    // One changed layer: exactly one layer blob uploaded; a metadata-only layer is reused.
    fs::write(f.app().join("index.html"), "<h1>changed</h1>\n").unwrap();
    fs::remove_dir_all(f.layers().join("acme_two/bin")).unwrap();
    e.proxy.clear();
    let r = run_export(
        &e,
        &f,
        &options(&f, analyzed_with_previous("v1"), &["v3"]),
        Some("v1"),
    );
    assert_eq!(r.added, vec!["app"], "{r:?}");
    assert_eq!(
        e.proxy.count("PATCH", "/blobs/uploads/"),
        1,
        "{:?}",
        e.proxy.requests()
    );
    assert!(r.reused.contains(&"acme/two:bin".to_string()));
}

#[test]
fn missing_metadata_for_a_metadata_only_layer_is_an_error() {
    let e = env();
    let f = fixture();
    fs::remove_dir_all(f.layers().join("acme_two/bin")).unwrap();
    let run = Repo::new(e.client.clone(), &e.proxy.host(), "stack/run");
    let app = Repo::new(e.client.clone(), &e.proxy.host(), "acme/app");
    let err = export(
        &options(&f, analyzed_first(&e), &["x"]),
        &ImageSource {
            store: &run,
            reference: e.run_digest.clone(),
        },
        None,
        &app,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("acme/two:bin") && err.contains("no metadata"),
        "{err}"
    );
    assert!(
        app.get_manifest("x").unwrap_err().is_not_found(),
        "no manifest may be written"
    );
}

/// Entry names (in order) and symlink targets of one gzip layer of `acme/app`.
fn layer_entries(e: &Env, digest: &str) -> Vec<(String, String)> {
    let app = Repo::new(e.client.clone(), &e.proxy.host(), "acme/app");
    let blob = app.read_blob(&digest.parse().unwrap(), None).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    a.entries()
        .unwrap()
        .map(|en| {
            let en = en.unwrap();
            let name = String::from_utf8(en.path_bytes().to_vec()).unwrap();
            let link = en
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap())
                .unwrap_or_default();
            (name, link)
        })
        .collect()
}

#[test]
fn app_slices_become_layers_sorted_by_full_path_and_are_reused() {
    let e = env();
    let f = fixture();
    write(&f.app().join("static/css/site.css"), "body{}\n");
    write(&f.app().join("static-x"), "dash sorts before slash\n");
    let meta = f.layers().join("config/metadata.toml");
    let mut text = fs::read_to_string(&meta).unwrap();
    text.push_str("\n[[slices]]\npaths = [\"static/*\"]\n\n[[slices]]\npaths = [\"missing/*\"]\n");
    fs::write(&meta, text).unwrap();
    let o = options(&f, analyzed_first(&e), &["sliced"]);
    let report = run_export(&e, &f, &o, None);
    assert_eq!(
        &report.added[3..6],
        ["slice-1", "slice-2", "slice-3"],
        "{report:?}"
    );
    let (cfg, layers) = config_of(&e, "sliced");
    let app = f.app().to_str().unwrap().to_string();
    let names = |i: usize| -> Vec<String> {
        layer_entries(&e, &layers[i])
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&app))
            .collect()
    };
    assert_eq!(
        names(4),
        [
            app.clone(),
            format!("{app}/static"),
            format!("{app}/static/css"),
            format!("{app}/static/css/site.css"),
        ]
    );
    let diff_ids: Vec<String> = cfg
        .diff_ids()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        diff_ids[5], "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
        "an empty slice is a tar of the end-of-archive blocks"
    );
    assert_eq!(
        names(6),
        [
            app.clone(),
            format!("{app}/index.html"),
            format!("{app}/src"),
            format!("{app}/src/app.sh"),
            format!("{app}/static-x"),
        ],
        "remainder sorted by full path; the fully sliced static/ is not repeated"
    );
    let history: Vec<String> = cfg
        .inner()
        .history()
        .clone()
        .unwrap()
        .iter()
        .map(|h| h.created_by().clone().unwrap_or_default())
        .collect();
    assert_eq!(
        &history[4..7],
        [
            "Application Slice: 1",
            "Application Slice: 2",
            "Application Slice: 3"
        ]
    );
    let meta: LayersMetadata =
        serde_json::from_str(&cfg.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    let app_shas: Vec<&str> = meta.app.iter().map(|a| a.sha.as_str()).collect();
    assert_eq!(app_shas, &diff_ids[4..7]);

    // Rebuild with the remainder changed: the slices are reused, one blob goes up.
    fs::write(f.app().join("index.html"), "<h1>v2</h1>\n").unwrap();
    let mut a = analyzed_first(&e);
    a.metadata = meta;
    a.image = Some(buildpod::export::inputs::ImageRef {
        reference: "sliced".into(),
    });
    e.proxy.clear();
    let r = run_export(&e, &f, &options(&f, a, &["sliced2"]), Some("sliced"));
    assert_eq!(r.added, vec!["slice-3"], "{r:?}");
    assert_eq!(e.proxy.count("PATCH", "/blobs/uploads/"), 1);
}

#[test]
fn symlinks_out_of_the_layers_dir_are_exported_as_symlinks() {
    let e = env();
    let f = fixture();
    let secret = f.root.join("outside-secret");
    fs::write(&secret, "must not be exported\n").unwrap();
    std::os::unix::fs::symlink(&secret, f.layers().join("acme_two/bin/bin/escape")).unwrap();
    std::os::unix::fs::symlink("/etc", f.app().join("etc-link")).unwrap();
    run_export(&e, &f, &options(&f, analyzed_first(&e), &["links"]), None);
    let (_, layers) = config_of(&e, "links");
    let bin = layer_entries(&e, &layers[2]);
    let esc = bin
        .iter()
        .find(|(n, _)| n.ends_with("/bin/escape"))
        .expect("symlink entry");
    assert_eq!(esc.1, secret.to_str().unwrap());
    let app = layer_entries(&e, &layers[4]);
    assert!(app
        .iter()
        .any(|(n, l)| n.ends_with("/etc-link") && l == "/etc"));
    assert!(
        !app.iter()
            .chain(bin.iter())
            .any(|(n, _)| n.contains("passwd") || n.ends_with("outside-secret")),
        "a symlink was followed"
    );
}
