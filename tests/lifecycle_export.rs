//! The `lifecycle exporter` command against a real registry: report.toml, tags, OCI layout
//! mode, and bad input (missing metadata.toml, malformed analyzed.toml, unreadable run image).

#[path = "common_image.rs"]
mod common;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use buildpod::layer::Compression;
use buildpod::oci::layout::Layout;
use buildpod::oci::BlobStore;
use buildpod::registry::{Client, ClientOptions, Repo};
use support::registry::Registry;
use support::tools;

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    reg: Registry,
    run_ref: String,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let reg = Registry::plain();
        let client = Client::new(ClientOptions::default()).unwrap();
        write(&root.join("rootfs/etc/os-release"), "ID=tiny\n");
        let run = Repo::new(client, &reg.host(), "stack/run");
        let m = common::dir_image(&run, &root.join("rootfs"), Compression::Gzip, "amd64", "1");
        let run_ref = format!("{}/stack/run@{}", reg.host(), m.digest);
        let l = root.join("layers");
        write(
            &l.join("acme_hello/bin.toml"),
            "[types]\nlaunch = true\n[metadata]\nv = 1\n",
        );
        write(
            &l.join("acme_hello/bin/bin/hello"),
            "#!/bin/sh\necho hello\n",
        );
        write(
            &l.join("group.toml"),
            "[[group]]\nid = \"acme/hello\"\nversion = \"1.0.0\"\napi = \"0.10\"\n",
        );
        write(
            &l.join("config/metadata.toml"),
            "buildpack-default-process-type = \"web\"\n\n[[buildpacks]]\nid = \"acme/hello\"\nversion = \"1.0.0\"\napi = \"0.10\"\n\n\
             [[processes]]\ntype = \"web\"\ncommand = [\"hello\"]\nargs = []\ndirect = true\nbuildpack-id = \"acme/hello\"\n",
        );
        write(
            &l.join("analyzed.toml"),
            &format!(
                "[run-image]\n  reference = \"{run_ref}\"\n  image = \"{}/stack/run:1\"\n",
                reg.host()
            ),
        );
        write(
            &root.join("run.toml"),
            &format!("[[images]]\n  image = \"{}/stack/run:1\"\n", reg.host()),
        );
        write(&root.join("workspace/index.html"), "<h1>hi</h1>\n");
        write(&root.join("launcher"), "#!/bin/sh\n");
        World {
            _tmp: tmp,
            root,
            reg,
            run_ref,
        }
    }

    fn exporter(&self, extra: &[&str], images: &[String]) -> (i32, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifecycle"));
        c.arg("exporter")
            .env("CNB_PLATFORM_API", "0.13")
            .env_remove("CNB_USER_ID")
            .env("HOME", &self.root)
            .arg("-layers")
            .arg(self.root.join("layers"))
            .arg("-app")
            .arg(self.root.join("workspace"))
            .arg("-run")
            .arg(self.root.join("run.toml"))
            .arg("-launcher")
            .arg(self.root.join("launcher"))
            .args(extra)
            .args(images);
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

#[test]
fn exporter_writes_every_tag_and_report_toml() {
    let w = World::new();
    let a = format!("{}/acme/app:1", w.reg.host());
    let b = format!("{}/acme/app:latest", w.reg.host());
    let c = format!("{}/other/app:x", w.reg.host());
    let (code, out) = w.exporter(&[], &[a.clone(), b.clone(), c.clone()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Adding layer 'acme/hello:bin'"), "{out}");
    assert!(out.contains("Adding layer 'app'"), "{out}");
    let report = fs::read_to_string(w.root.join("layers/report.toml")).unwrap();
    let v: toml::Table = toml::from_str(&report).unwrap();
    let digest = v["image"]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        report,
        format!(
            "[image]\n  tags = [\"{a}\", \"{b}\", \"{c}\"]\n  digest = \"{digest}\"\n  manifest-size = {}\n",
            v["image"]["manifest-size"].as_integer().unwrap()
        )
    );
    for image in [&a, &b, &c] {
        let digest_of = tools::try_skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{image}"),
        ])
        .unwrap();
        assert_eq!(digest_of.trim(), digest, "{image}");
    }
    assert!(out.contains(&format!("*** Images ({digest}):")), "{out}");
}

#[test]
fn exporter_layout_mode_writes_an_oci_layout_per_name() {
    let w = World::new();
    let dir = w.root.join("layout");
    // The run image is read from the layout too: put a copy there.
    let client = Client::new(ClientOptions::default()).unwrap();
    let run_dir = dir.join(w.reg.host()).join("stack/run/sha256");
    let (_, hex) = w.run_ref.rsplit_once("sha256:").unwrap();
    let run_layout = Layout::create(&run_dir.join(hex)).unwrap();
    let repo = Repo::new(client, &w.reg.host(), "stack/run");
    buildpod::oci::copy::copy_image(
        &repo,
        &format!("sha256:{hex}"),
        &run_layout,
        &["latest".to_string()],
        &Default::default(),
    )
    .unwrap();
    let name = format!("{}/acme/app:v1", w.reg.host());
    let (code, out) = w.exporter(
        &["-layout", "-layout-dir", dir.to_str().unwrap()],
        std::slice::from_ref(&name),
    );
    assert_eq!(code, 0, "{out}");
    let out_dir = dir.join(w.reg.host()).join("acme/app/v1");
    let l = Layout::open(&out_dir).unwrap();
    assert_eq!(l.tags().unwrap(), vec!["v1".to_string()]);
    // skopeo cannot parse a ':' (the registry port) in a layout path: check a copy.
    let check = w.root.join("check");
    tools::run(
        "cp",
        &["-r", out_dir.to_str().unwrap(), check.to_str().unwrap()],
    );
    tools::skopeo(&["inspect", &format!("oci:{}:v1", check.display())]);
    assert!(l.get_manifest("v1").is_ok());
}

#[test]
fn exporter_bad_input_names_the_file_or_reference() {
    let w = World::new();
    let img = format!("{}/acme/app:1", w.reg.host());

    fs::write(
        w.root.join("layers/analyzed.toml"),
        "[run-image\nreference = 1",
    )
    .unwrap();
    let (code, out) = w.exporter(&[], std::slice::from_ref(&img));
    assert_eq!(code, 62, "{out}");
    assert!(
        out.contains("analyzed.toml") && out.contains("parse"),
        "{out}"
    );

    write(
        &w.root.join("layers/analyzed.toml"),
        &format!(
            "[run-image]\n  reference = \"{}/stack/missing@sha256:{}\"\n",
            w.reg.host(),
            "0".repeat(64)
        ),
    );
    let (code, out) = w.exporter(&[], std::slice::from_ref(&img));
    assert_eq!(code, 62, "{out}");
    assert!(out.contains("stack/missing"), "{out}");

    write(
        &w.root.join("layers/analyzed.toml"),
        &format!("[run-image]\n  reference = \"{}\"\n", w.run_ref),
    );
    fs::remove_file(w.root.join("layers/config/metadata.toml")).unwrap();
    let (code, out) = w.exporter(&[], std::slice::from_ref(&img));
    assert_eq!(code, 62, "{out}");
    assert!(out.contains("config/metadata.toml"), "{out}");
    assert!(!w.root.join("layers/report.toml").exists());

    let (code, out) = w.exporter(&[], &[]);
    assert_eq!(code, 3, "{out}");
    let (code, out) = w.exporter(&["-run-image", "other/run"], std::slice::from_ref(&img));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("-run-image"), "{out}");
    let (code, out) = w.exporter(&["-daemon"], std::slice::from_ref(&img));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not supported"), "{out}");
}

#[test]
fn exporter_writes_the_cache_to_a_volume_and_an_image() {
    let w = World::new();
    let l = w.root.join("layers");
    write(
        &l.join("acme_hello/deps.toml"),
        "[types]\ncache = true\n[metadata]\nlock = \"abc\"\n",
    );
    write(
        &l.join("acme_hello/deps/lib/dep.txt"),
        "cached dependency\n",
    );
    let img = format!("{}/acme/app:1", w.reg.host());
    let cache = w.root.join("cache");
    let (code, out) = w.exporter(
        &["-cache-dir", cache.to_str().unwrap()],
        std::slice::from_ref(&img),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Adding cache layer 'acme/hello:deps'"),
        "{out}"
    );
    let committed: Vec<String> = fs::read_dir(cache.join("committed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        committed.contains(&"io.buildpacks.lifecycle.cache.metadata".to_string()),
        "{committed:?}"
    );
    assert_eq!(
        committed.iter().filter(|n| n.ends_with(".tar")).count(),
        1,
        "{committed:?}"
    );
    let meta: serde_json::Value = serde_json::from_slice(
        &fs::read(cache.join("committed/io.buildpacks.lifecycle.cache.metadata")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["buildpacks"][0]["layers"]["deps"]["cache"], true);
    assert_eq!(
        meta["buildpacks"][0]["layers"]["deps"]["data"]["lock"],
        "abc"
    );

    let (code, out) = w.exporter(
        &["-cache-dir", cache.to_str().unwrap()],
        std::slice::from_ref(&img),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Reusing cache layer 'acme/hello:deps'"),
        "{out}"
    );

    let cache_img = format!("{}/acme/cache:build", w.reg.host());
    let (code, out) = w.exporter(&["-cache-image", &cache_img], std::slice::from_ref(&img));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Adding cache layer 'acme/hello:deps'"),
        "{out}"
    );
    let cfg =
        tools::skopeo_inspect_config(&format!("docker://{cache_img}"), &["--tls-verify=false"]);
    let label = cfg["config"]["Labels"]["io.buildpacks.lifecycle.cache.metadata"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(label.contains("\"lock\":\"abc\""), "{label}");

    // A cache that cannot be written only warns: the image is still exported.
    fs::write(w.root.join("blocker"), "").unwrap();
    let bad = w.root.join("blocker/cache");
    let (code, out) = w.exporter(
        &["-cache-dir", bad.to_str().unwrap()],
        std::slice::from_ref(&img),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Failed to export cache"), "{out}");
}
