//! `lifecycle restorer` with caches written by `cache::export` (what the exporter calls): a
//! cached layer restored from a volume cache and from a cache image (same bytes, layer.toml
//! back), corrupted cache entries skipped with a warning, the SHA rule removing stale layers,
//! no cache, malformed analyzed.toml; and cache reuse on a second export (no blob uploaded).

mod analyze_restore_util;
#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use analyze_restore_util::{write, World};
use buildpod::cache::{self, CacheReader, CacheReport, ImageCache, Location};
use buildpod::export::labels::{BuildpackLayers, LayerMetadata, StoreMetadata};
use buildpod::lifecycle::analyzed::AnalyzedMd;
use buildpod::lifecycle::api::ApiVersion;
use buildpod::lifecycle::log::{Level, Log};
use buildpod::lifecycle::order::GroupEntry;
use buildpod::oci::manifest::descriptor_digest;
use support::proxy::Proxy;
use support::tree::{snapshot, Snapshot};

fn group() -> Vec<GroupEntry> {
    ["acme/one", "acme/two"]
        .iter()
        .map(|id| GroupEntry {
            id: id.to_string(),
            version: "1.0.0".into(),
            api: "0.10".into(),
            homepage: String::new(),
        })
        .collect()
}

/// What the builder leaves: cached layers (one also launch), a launch-only layer, SBOMs.
fn build_output(w: &World) {
    let l = w.layers();
    write(
        &l.join("group.toml"),
        "[[group]]\n  id = \"acme/one\"\n  version = \"1.0.0\"\n  api = \"0.10\"\n\n[[group]]\n  id = \"acme/two\"\n  version = \"1.0.0\"\n  api = \"0.10\"\n",
    );
    write(
        &l.join("acme_one/deps.toml"),
        "[types]\nlaunch = true\ncache = true\n[metadata]\nv = 1\n",
    );
    write(&l.join("acme_one/deps/lib/dep.txt"), "dependency\n");
    write(&l.join("acme_one/deps/bin/run"), "#!/bin/sh\necho run\n");
    fs::set_permissions(
        l.join("acme_one/deps/bin/run"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("dep.txt", l.join("acme_one/deps/lib/link")).unwrap();
    write(
        &l.join("acme_one/tools.toml"),
        "[types]\nbuild = true\ncache = true\n[metadata]\ntool = \"x\"\n",
    );
    write(&l.join("acme_one/tools/bin/t"), "tool\n");
    write(&l.join("acme_one/web.toml"), "[types]\nlaunch = true\n");
    write(&l.join("acme_one/web/index.html"), "web\n");
    write(
        &l.join("acme_two/gems.toml"),
        "[types]\ncache = true\n[metadata]\ngems = [\"a\", \"b\"]\n",
    );
    write(&l.join("acme_two/gems/Gemfile.lock"), "GEM\n");
    write(
        &l.join("sbom/cache/acme_one/deps/sbom.cdx.json"),
        "{\"deps\":1}\n",
    );
}

fn opts(w: &World) -> cache::ExportOptions {
    cache::ExportOptions {
        layers_dir: w.layers(),
        group: group(),
        uid: 0,
        gid: 0,
        platform_api: ApiVersion::new(0, 13),
    }
}

fn log() -> Log {
    Log::new(Level::Warn)
}

/// The next build's starting point: analyzed.toml from the previous image, no layers.
fn next_build(w: &World, deps_sha: &str) {
    let l = w.layers();
    for d in ["acme_one", "acme_two", "sbom"] {
        let _ = fs::remove_dir_all(l.join(d));
    }
    let mut a = AnalyzedMd {
        image: Some(format!("{}/acme/app@sha256:{}", w.host(), "e".repeat(64))),
        ..Default::default()
    };
    let layer = |sha: &str, data: serde_json::Value, cache: bool| LayerMetadata {
        sha: sha.into(),
        data,
        build: false,
        launch: true,
        cache,
    };
    a.metadata.buildpacks.push(BuildpackLayers {
        key: "acme/one".into(),
        version: "1.0.0".into(),
        layers: [
            (
                "deps".to_string(),
                layer(deps_sha, serde_json::json!({"v": 1}), true),
            ),
            (
                "web".to_string(),
                layer(
                    &format!("sha256:{}", "f".repeat(64)),
                    serde_json::json!({"w": 1}),
                    false,
                ),
            ),
        ]
        .into(),
        store: Some(StoreMetadata {
            metadata: serde_json::json!({"runs": 3}),
        }),
    });
    fs::write(l.join("analyzed.toml"), a.render()).unwrap();
}

fn sha_of(report: &CacheReport, bp: &str, layer: &str) -> String {
    report
        .metadata
        .buildpacks
        .iter()
        .find(|b| b.key == bp)
        .unwrap()
        .layers[layer]
        .sha
        .clone()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks a fully restored layers dir against the snapshots taken before the cache export.
fn assert_restored(w: &World, out: &str, deps: &Snapshot, tools: &Snapshot, gems: &Snapshot) {
    let l = w.layers();
    for line in [
        "Restoring metadata for \"acme/one:deps\" from app image",
        "Restoring metadata for \"acme/one:web\" from app image",
        "Restoring metadata for \"acme/one:tools\" from cache",
        "Restoring metadata for \"acme/two:gems\" from cache",
        "Restoring data for \"acme/one:deps\" from cache",
        "Restoring data for \"acme/one:tools\" from cache",
        "Restoring data for \"acme/two:gems\" from cache",
        "Restoring data for SBOM from cache",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    deps.assert_same(&snapshot(&l.join("acme_one/deps")));
    tools.assert_same(&snapshot(&l.join("acme_one/tools")));
    gems.assert_same(&snapshot(&l.join("acme_two/gems")));
    // <layer>.toml files come back without [types]; store.toml too.
    assert_eq!(read(&l.join("acme_one/deps.toml")), "[metadata]\n  v = 1\n");
    assert_eq!(
        read(&l.join("acme_one/tools.toml")),
        "[metadata]\n  tool = \"x\"\n"
    );
    assert_eq!(read(&l.join("acme_one/web.toml")), "[metadata]\n  w = 1\n");
    assert_eq!(
        read(&l.join("acme_two/gems.toml")),
        "[metadata]\n  gems = [\"a\", \"b\"]\n"
    );
    assert_eq!(
        read(&l.join("acme_one/store.toml")),
        "[metadata]\n  runs = 3\n"
    );
    assert!(!l.join("acme_one/web").exists());
    assert_eq!(
        read(&l.join("acme_one/deps.sbom.cdx.json")),
        "{\"deps\":1}\n"
    );
    assert!(!l.join("sbom").exists());
}

#[test]
fn cached_layers_restored_from_a_volume_cache_and_corrupt_entries_skipped() {
    let w = World::new();
    build_output(&w);
    let l = w.layers();
    let (deps, tools, gems) = (
        snapshot(&l.join("acme_one/deps")),
        snapshot(&l.join("acme_one/tools")),
        snapshot(&l.join("acme_two/gems")),
    );
    let cache_dir = w.root.join("cache");
    let report = cache::export_to(&Location::Dir(cache_dir.clone()), &opts(&w), &log()).unwrap();
    assert_eq!(
        report.added,
        [
            "acme/one:deps",
            "acme/one:tools",
            "acme/two:gems",
            "buildpacksio/lifecycle:cache.sbom"
        ]
    );
    let deps_sha = sha_of(&report, "acme/one", "deps");
    let committed = cache_dir.join("committed");
    assert!(committed.join(format!("{deps_sha}.tar")).is_file());
    let meta = read(&committed.join("io.buildpacks.lifecycle.cache.metadata"));
    assert!(
        meta.starts_with("{\"sbom\":{\"sha\":\"sha256:") && meta.ends_with("}\n"),
        "{meta}"
    );
    assert!(
        meta.contains(&format!("\"deps\":{{\"sha\":\"{deps_sha}\",\"data\":{{\"v\":1}},\"build\":false,\"launch\":true,\"cache\":true}}")),
        "{meta}"
    );

    // A second export with nothing changed reuses every layer (hard links, no rewrite).
    let again = cache::export_to(&Location::Dir(cache_dir.clone()), &opts(&w), &log()).unwrap();
    assert!(again.added.is_empty(), "{again:?}");
    assert_eq!(again.reused.len(), 4);
    assert_eq!(again.metadata, report.metadata);

    next_build(&w, &deps_sha);
    let cache_arg = cache_dir.to_str().unwrap();
    let (code, out) = w.lifecycle("restorer", "0.13", &["-cache-dir", cache_arg]);
    assert_eq!(code, 0, "{out}");
    assert_restored(&w, &out, &deps, &tools, &gems);

    // Corrupt entries: one tar truncated, one deleted. Both skipped; the rest restored.
    next_build(&w, &deps_sha);
    let tar = committed.join(format!("{deps_sha}.tar"));
    let len = fs::metadata(&tar).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&tar)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    fs::remove_file(committed.join(format!("{}.tar", sha_of(&report, "acme/two", "gems"))))
        .unwrap();
    let sbom_tar = committed.join(format!("{}.tar", report.metadata.sbom.sha));
    fs::write(&sbom_tar, b"not a tar").unwrap();
    let (code, out) = w.lifecycle("restorer", "0.13", &["-cache-dir", cache_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Warning: Skipping restore for layer acme/one:deps: "),
        "{out}"
    );
    assert!(
        out.contains("Warning: Skipping restore for layer buildpacksio/lifecycle:cache.sbom: "),
        "{out}"
    );
    assert!(!l.join("acme_one/deps.sbom.cdx.json").exists() && !l.join("sbom").exists());
    assert!(
        out.contains("Warning: Skipping restore for layer acme/two:gems: "),
        "{out}"
    );
    // A half-restored layer would look valid to its buildpack: it is removed instead.
    assert!(!l.join("acme_one/deps").exists() && !l.join("acme_one/deps.toml").exists());
    assert!(!l.join("acme_two/gems.toml").exists());
    tools.assert_same(&snapshot(&l.join("acme_one/tools")));
    // The next export replaces the corrupt entries.
    build_output(&w);
    let fixed = cache::export_to(&Location::Dir(cache_dir.clone()), &opts(&w), &log()).unwrap();
    assert_eq!(
        fixed.added,
        [
            "acme/one:deps",
            "acme/two:gems",
            "buildpacksio/lifecycle:cache.sbom"
        ]
    );
}

#[test]
fn cached_layers_restored_from_a_cache_image_and_a_corrupt_blob_skipped() {
    let w = World::new();
    build_output(&w);
    let l = w.layers();
    let (deps, tools, gems) = (
        snapshot(&l.join("acme_one/deps")),
        snapshot(&l.join("acme_one/tools")),
        snapshot(&l.join("acme_two/gems")),
    );
    let proxy = Proxy::start(w.reg.addr(), vec![]);
    let name = format!("{}/acme/cache:build", proxy.host());
    let location = Location::from_inputs(Some(&name), None, &w.client)
        .unwrap()
        .unwrap();
    let report = cache::export_to(&location, &opts(&w), &log()).unwrap();
    assert_eq!(report.added.len(), 4);
    let deps_sha = sha_of(&report, "acme/one", "deps");
    let raw =
        support::tools::skopeo_inspect_raw(&format!("docker://{name}"), &["--tls-verify=false"]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(raw["layers"].as_array().unwrap().len(), 4);
    let config =
        support::tools::skopeo_inspect_config(&format!("docker://{name}"), &["--tls-verify=false"]);
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["diff_ids"][0], deps_sha);
    let label = config["config"]["Labels"]["io.buildpacks.lifecycle.cache.metadata"]
        .as_str()
        .unwrap();
    assert_eq!(label, cache::CacheMetadata::encode(&report.metadata));

    // Nothing changed: no blob is uploaded again, only the manifest is written.
    proxy.clear();
    let again = cache::export_to(&location, &opts(&w), &log()).unwrap();
    assert_eq!(again.reused.len(), 4, "{again:?}");
    assert_eq!(proxy.count("POST", "/blobs/uploads/"), 0);
    assert_eq!(proxy.count("PUT", "/manifests/"), 1);

    next_build(&w, &deps_sha);
    let (code, out) = w.lifecycle("restorer", "0.13", &["-cache-image", &name]);
    assert_eq!(code, 0, "{out}");
    assert_restored(&w, &out, &deps, &tools, &gems);

    // Corrupt the stored blob of one layer: the registry serves other bytes.
    let img = match location {
        Location::Image {
            ref repo, ref tag, ..
        } => ImageCache::open(Box::new(repo.clone()), tag, &name).unwrap(),
        Location::Dir(_) => unreachable!(),
    };
    assert!(img.exists());
    let layers = img.layers();
    let blob = descriptor_digest(&layers[&deps_sha.parse().unwrap()]).unwrap();
    let data = w
        .reg
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&blob.hex()[..2])
        .join(blob.hex())
        .join("data");
    let len = fs::metadata(&data).unwrap().len() as usize;
    fs::write(&data, vec![b'x'; len]).unwrap();
    next_build(&w, &deps_sha);
    let (code, out) = w.lifecycle("restorer", "0.13", &["-cache-image", &name]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Warning: Skipping restore for layer acme/one:deps: "),
        "{out}"
    );
    assert!(!l.join("acme_one/deps").exists() && !l.join("acme_one/deps.toml").exists());
    gems.assert_same(&snapshot(&l.join("acme_two/gems")));
}

#[test]
fn stale_layers_removed_and_no_cache_restores_only_launch_metadata() {
    let w = World::new();
    build_output(&w);
    let cache_dir = w.root.join("cache");
    cache::export_to(&Location::Dir(cache_dir.clone()), &opts(&w), &log()).unwrap();
    let l = w.layers();

    // The previous image recorded another deps than the cache holds: the layer is removed.
    next_build(&w, &format!("sha256:{}", "0".repeat(64)));
    let (code, out) = w.lifecycle(
        "restorer",
        "0.13",
        &["-cache-dir", cache_dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Removing \"acme/one:deps\", wrong sha"),
        "{out}"
    );
    assert!(!l.join("acme_one/deps").exists() && !l.join("acme_one/deps.toml").exists());
    assert!(l.join("acme_one/tools/bin/t").is_file());

    // No cache: a warning; launch-only metadata and store.toml restored, cached layers not.
    next_build(&w, &format!("sha256:{}", "0".repeat(64)));
    let (code, out) = w.lifecycle("restorer", "0.13", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Warning: No cached data will be used, no cache specified."),
        "{out}"
    );
    let mut names: Vec<String> = fs::read_dir(l.join("acme_one"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["store.toml", "web.toml"]);

    // -skip-layers: store.toml only.
    next_build(&w, &format!("sha256:{}", "0".repeat(64)));
    let (code, out) = w.lifecycle(
        "restorer",
        "0.13",
        &["-skip-layers", "-cache-dir", cache_dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Skipping buildpack layer analysis"), "{out}");
    let names: Vec<_> = fs::read_dir(l.join("acme_one")).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn malformed_analyzed_toml_is_a_restore_error_naming_the_file() {
    let w = World::new();
    build_output(&w);
    let analyzed = w.layers().join("analyzed.toml");
    fs::write(&analyzed, "[metadata]\napp = \"not a list\"\n").unwrap();
    let (code, out) = w.lifecycle("restorer", "0.13", &[]);
    assert_eq!(code, 42, "{out}");
    assert!(
        out.contains(&format!(
            "ERROR: failed to restore: read analyzed metadata: {}: field `metadata`",
            analyzed.display()
        )),
        "{out}"
    );
    fs::write(&analyzed, "[image\n").unwrap();
    let (code, out) = w.lifecycle("restorer", "0.13", &[]);
    assert_eq!(code, 42, "{out}");
    assert!(
        out.contains(&format!("parse {}", analyzed.display())),
        "{out}"
    );

    // A buildpack API the lifecycle does not support: exit 12.
    write(
        &w.layers().join("group.toml"),
        "[[group]]\n  id = \"acme/one\"\n  version = \"1.0.0\"\n  api = \"0.3\"\n",
    );
    let (code, out) = w.lifecycle("restorer", "0.13", &[]);
    assert_eq!(code, 12, "{out}");
}

#[test]
fn platform_0_14_checks_the_run_image_and_fills_in_its_target() {
    let w = World::new();
    build_output(&w);
    let run = w.push_run_image();
    let analyzed = w.layers().join("analyzed.toml");
    let reference = format!("{}/stack/run@{}", w.host(), run.digest);
    fs::write(
        &analyzed,
        format!("[image]\n  reference = \"\"\n\n[run-image]\n  reference = \"{reference}\"\n"),
    )
    .unwrap();
    let (code, out) = w.lifecycle("restorer", "0.14", &[]);
    assert_eq!(code, 0, "{out}");
    let text = read(&analyzed);
    assert!(
        text.ends_with(&format!("[run-image]\n  reference = \"{reference}\"\n  [run-image.target]\n    id = \"acme.stack\"\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"ubuntu\"\n      version = \"24.04\"\n")),
        "{text}"
    );

    let locked = support::registry::Registry::with_auth("user", "secret");
    let denied = format!("{}/stack/run@{}", locked.host(), run.digest);
    fs::write(
        &analyzed,
        format!("[run-image]\n  reference = \"{denied}\"\n"),
    )
    .unwrap();
    let (code, out) = w.lifecycle("restorer", "0.14", &[]);
    assert_eq!(code, 42, "{out}");
    assert!(
        out.contains(&format!("ensure registry read access to {denied}")),
        "{out}"
    );
    // Platform API 0.13 does not look at the run image.
    let (code, out) = w.lifecycle("restorer", "0.13", &[]);
    assert_eq!(code, 0, "{out}");

    let (code, out) = w.lifecycle("restorer", "0.13", &["-daemon"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not supported yet"), "{out}");
}

#[test]
fn as_root_the_layers_and_cache_go_to_the_build_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to change owners");
        return;
    }
    let w = World::new();
    build_output(&w);
    let cache_dir = w.root.join("cache");
    let report = cache::export_to(&Location::Dir(cache_dir.clone()), &opts(&w), &log()).unwrap();
    next_build(&w, &sha_of(&report, "acme/one", "deps"));
    // The build user must be able to reach the tempdir.
    fs::set_permissions(&w.root, fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out) = w.lifecycle(
        "restorer",
        "0.13",
        &[
            "-uid",
            "4321",
            "-gid",
            "4322",
            "-cache-dir",
            cache_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    use std::os::unix::fs::MetadataExt;
    let owner = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    let l = w.layers();
    for p in [
        l.clone(),
        l.join("group.toml"),
        l.join("acme_one/deps.toml"),
        l.join("acme_one/deps/lib/dep.txt"),
        l.join("acme_one/deps/lib/link"),
        cache_dir.join("committed"),
    ] {
        assert_eq!(owner(&p), (4321, 4322), "{}", p.display());
    }
}
