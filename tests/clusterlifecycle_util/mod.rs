//! Fixture lifecycle images for the ClusterLifecycle tests: ours (built by the library from
//! stand-in binaries), upstream-style (`/cnb/lifecycle.toml`, last layer, indexes), and
//! hand-made layers for the failure cases.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use buildpod::clusterlifecycle::descriptor::LifecycleDescriptor;
use buildpod::clusterlifecycle::image::{build_image, Binaries, Built, ImageSpec};
use buildpod::layer::{CompressOptions, Compression, TarOptions};
use buildpod::oci::assemble::{push_layer, write_image, StoredLayer};
use buildpod::oci::{media, BlobStore, ImageConfig, RawManifest};
use oci_spec::image::ImageIndex;
use tar::EntryType;

/// A tar entry of a hand-made layer; names are written verbatim (`..`, absolute).
pub enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str, u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

/// Push a layer made of `entries` (gzip).
pub fn layer(store: &dyn BlobStore, entries: &[E]) -> StoredLayer {
    push_layer(
        store,
        &TarOptions::default(),
        &CompressOptions::new(Compression::Gzip),
        media::OCI_MANIFEST,
        &|t| {
            for e in entries {
                match e {
                    E::Dir(n) => t.dir_entry(n.as_bytes(), 0o755, 0, 0)?,
                    E::File(n, data, mode) => t.file_entry(n.as_bytes(), *mode, data.as_bytes())?,
                    E::Sym(n, to) => {
                        t.link_entry(EntryType::Symlink, n.as_bytes(), to.as_bytes(), 0o777)?
                    }
                    E::Hard(n, to) => {
                        t.link_entry(EntryType::Link, n.as_bytes(), to.as_bytes(), 0o644)?
                    }
                }
            }
            Ok(())
        },
    )
    .unwrap()
}

/// An image of `layers` for os/arch[/variant] with `labels`, tagged `tag` ("" for digest only).
pub fn image(
    store: &dyn BlobStore,
    platform: &str,
    labels: &[(&str, String)],
    layers: &[StoredLayer],
    tag: &str,
) -> RawManifest {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut cfg = ImageConfig::new(parts[0], parts[1]);
    if let Some(v) = parts.get(2) {
        cfg.inner_mut().set_variant(Some(v.to_string()));
    }
    cfg.set_created(Some("1980-01-01T00:00:01Z"));
    for (k, v) in labels {
        cfg.set_label(k, v);
    }
    let tags: Vec<String> = if tag.is_empty() {
        vec![]
    } else {
        vec![tag.to_string()]
    };
    write_image(store, &mut cfg, layers, media::OCI_MANIFEST, &tags).unwrap()
}

/// An index over `(manifest, "os/arch[/variant]")`, tagged `tag`.
pub fn index(store: &dyn BlobStore, entries: &[(&RawManifest, &str)], tag: &str) -> RawManifest {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(m, p)| {
            let parts: Vec<&str> = p.split('/').collect();
            let mut platform = serde_json::json!({"os": parts[0], "architecture": parts[1]});
            if let Some(v) = parts.get(2) {
                platform["variant"] = serde_json::json!(v);
            }
            serde_json::json!({
                "mediaType": m.media_type, "size": m.bytes.len(),
                "digest": m.digest.to_string(), "platform": platform,
            })
        })
        .collect();
    let idx: ImageIndex = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests,
    }))
    .unwrap();
    let raw = RawManifest::index(&idx).unwrap();
    store.put_manifest(&raw, &[tag.to_string()]).unwrap();
    raw
}

/// A stand-in binary: a script that prints `what`.
pub fn fake_binary(dir: &Path, name: &str, what: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\necho {what}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Our lifecycle image from stand-in binaries, with a windows layer when `windows`.
pub fn ours(store: &dyn BlobStore, bins: &Path, version: &str, windows: bool, tag: &str) -> Built {
    let linux = Binaries {
        lifecycle: fake_binary(bins, "lifecycle", "linux-lifecycle"),
        launcher: fake_binary(bins, "launcher", "linux-launcher"),
    };
    let win = windows.then(|| Binaries {
        lifecycle: fake_binary(bins, "lifecycle.exe", "windows-lifecycle"),
        launcher: fake_binary(bins, "launcher.exe", "windows-launcher"),
    });
    let spec = ImageSpec {
        descriptor: LifecycleDescriptor::ours(version),
        linux,
        windows: win,
        arch: "amd64".to_string(),
        compression: Compression::Gzip,
    };
    build_image(store, &spec, &[tag.to_string()]).unwrap()
}

/// `lifecycle.toml` listing `platform` APIs, at `version`.
pub fn lifecycle_toml(version: &str, platform: &[&str], buildpack: &[&str]) -> String {
    let q = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[apis]\n[apis.buildpack]\n  deprecated = []\n  supported = [{}]\n[apis.platform]\n  deprecated = []\n  supported = [{}]\n\n[api]\n  platform = \"{}\"\n  buildpack = \"{}\"\n\n[lifecycle]\n  version = \"{version}\"\n",
        q(buildpack),
        q(platform),
        platform[0],
        buildpack[0]
    )
}

/// The labels the upstream image tool sets for a lifecycle at `version`.
pub fn upstream_labels(
    version: &str,
    platform: &[&str],
    buildpack: &[&str],
) -> Vec<(&'static str, String)> {
    let list = |v: &[&str]| serde_json::to_string(v).unwrap();
    vec![
        (
            "io.buildpacks.lifecycle.apis",
            format!(
                r#"{{"buildpack":{{"deprecated":[],"supported":{}}},"platform":{{"deprecated":[],"supported":{}}}}}"#,
                list(buildpack),
                list(platform)
            ),
        ),
        ("io.buildpacks.lifecycle.version", version.to_string()),
        (
            "io.buildpacks.builder.metadata",
            format!(
                r#"{{"lifecycle":{{"version":"{version}"}},"api":{{"buildpack":"{}","platform":"{}"}}}}"#,
                buildpack[0], platform[0]
            ),
        ),
    ]
}

/// An upstream-style lifecycle layer: absolute names, `/cnb/lifecycle.toml` beside the
/// directory, phase symlinks; `tag_text` marks the binaries' content.
pub fn upstream_layer(store: &dyn BlobStore, version: &str, tag_text: &str) -> StoredLayer {
    let toml = lifecycle_toml(
        version,
        &[
            "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
        ],
        &["0.7", "0.12"],
    );
    let bin = format!("#!/bin/sh\necho {tag_text}\n");
    let mut entries = vec![
        E::Dir("/cnb"),
        E::File("/cnb/lifecycle.toml", &toml, 0o644),
        E::Dir("/cnb/lifecycle"),
        E::File("/cnb/lifecycle/launcher", &bin, 0o755),
        E::File("/cnb/lifecycle/lifecycle", &bin, 0o755),
    ];
    for p in [
        "analyzer", "builder", "creator", "detector", "exporter", "extender", "rebaser", "restorer",
    ] {
        entries.push(E::Sym(leak(format!("/cnb/lifecycle/{p}")), "lifecycle"));
    }
    layer(store, &entries)
}

/// A distroless-like base layer (what upstream images have below the lifecycle).
pub fn base_layer(store: &dyn BlobStore) -> StoredLayer {
    layer(
        store,
        &[
            E::Dir("etc"),
            E::File("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\n", 0o644),
        ],
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Sorted names in `dir` (empty when it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
