//! `analyzed.toml` (`cnb-lifecycle.md` §3.7): written by the analyzer, read (and rewritten) by
//! the restorer. Rendered as Go's BurntSushi encoder renders `files.Analyzed`: field names and
//! order of the Go structs, `omitempty` where Go has it, nil slices and pointers left out.

use std::path::Path;

use serde_json::Value as Json;

use super::target::{read_analyzed_target, Distro, RunTarget};
use super::tomlr::{self, Fields, TomlError};
use super::tomlw::{Item, Tbl};
use crate::export::labels::{LayerMetadata, LayersMetadata, ShaRef};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalyzedMd {
    /// `[image] reference`: the previous image's identifier ("" when there is none).
    pub image: Option<String>,
    /// `[build-image] reference` (extensions only).
    pub build_image: Option<String>,
    /// The previous image's `io.buildpacks.lifecycle.metadata`.
    pub metadata: LayersMetadata,
    pub run_image: Option<RunImageMd>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunImageMd {
    /// `repo@digest` (registry) or `<layout path>@digest`.
    pub reference: String,
    /// The name as given (Platform API >= 0.12).
    pub image: String,
    pub extend: bool,
    /// Platform API >= 0.12.
    pub target: Option<RunTarget>,
}

impl AnalyzedMd {
    /// Reads `path`; `Ok(None)` when it does not exist. Errors name the file and the field.
    pub fn read(path: &Path) -> Result<Option<Self>, TomlError> {
        let table = match tomlr::read(path) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let root = Fields::root(path, &table);
        let reference = |key: &str| -> Result<Option<String>, TomlError> {
            match root.table(key)? {
                Some(t) => root.child(key, t, |f| f.str_or_empty("reference").map(Some)),
                None => Ok(None),
            }
        };
        let metadata = match root.get("metadata") {
            None => LayersMetadata::default(),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| root.err("metadata", e.message().to_string()))?,
        };
        let run_image = match root.table("run-image")? {
            None => None,
            Some(t) => Some(root.child("run-image", t, |f| {
                Ok(RunImageMd {
                    reference: f.str_or_empty("reference")?,
                    image: f.str_or_empty("image")?,
                    extend: f.bool("extend")?,
                    target: None,
                })
            })?),
        };
        let run_image = match run_image {
            Some(mut r) => {
                r.target = read_analyzed_target(path)?;
                Some(r)
            }
            None => None,
        };
        Ok(Some(Self {
            image: reference("image")?,
            build_image: reference("build-image")?,
            metadata,
            run_image,
        }))
    }

    pub fn render(&self) -> String {
        let mut t = Tbl::new();
        if let Some(r) = &self.image {
            t = t.table("image", Tbl::new().str("reference", r));
        }
        if let Some(r) = &self.build_image {
            t = t.table("build-image", Tbl::new().str("reference", r));
        }
        t = t.table("metadata", metadata_tbl(&self.metadata));
        if let Some(r) = &self.run_image {
            let mut ri = Tbl::new()
                .str("reference", &r.reference)
                .str_opt("image", &r.image);
            if r.extend {
                ri = ri.bool("extend", true);
            }
            if let Some(tg) = &r.target {
                ri = ri.table("target", target_tbl(tg));
            }
            t = t.table("run-image", ri);
        }
        t.render()
    }
}

fn target_tbl(t: &RunTarget) -> Tbl {
    let mut tt = Tbl::new()
        .str_opt("id", &t.id)
        .str("os", &t.os)
        .str("arch", &t.arch)
        .str_opt("arch-variant", &t.arch_variant);
    if let Some(Distro { name, version }) = &t.distro {
        tt = tt.table(
            "distro",
            Tbl::new().str("name", name).str("version", version),
        );
    }
    tt
}

fn sha_tbl(s: &ShaRef) -> Tbl {
    Tbl::new().str("sha", &s.sha)
}

/// `files.LayersMetadata` in TOML: `app`, `sbom`, `buildpacks`, `config`, `launcher`,
/// `process-types`, `run-image`, `stack`.
fn metadata_tbl(m: &LayersMetadata) -> Tbl {
    let mut t = Tbl::new();
    if !m.app.is_empty() {
        t = t.tables("app", m.app.iter().map(sha_tbl).collect());
    }
    if let Some(s) = &m.sbom {
        t = t.table("sbom", sha_tbl(s));
    }
    if !m.buildpacks.is_empty() {
        let bps = m
            .buildpacks
            .iter()
            .map(|b| {
                let layers = Tbl(b
                    .layers
                    .iter()
                    .map(|(name, l)| (name.clone(), Item::Table(layer_tbl(l))))
                    .collect());
                let mut bt = Tbl::new()
                    .str("key", &b.key)
                    .str("version", &b.version)
                    .table("layers", layers);
                if let Some(s) = &b.store {
                    bt = bt.table("store", with_data(Tbl::new(), &s.metadata));
                }
                bt
            })
            .collect();
        t = t.tables("buildpacks", bps);
    }
    let ri = &m.run_image;
    t = t
        .table("config", sha_tbl(&m.config))
        .table("launcher", sha_tbl(&m.launcher))
        .table("process-types", sha_tbl(&m.process_types))
        .table(
            "run-image",
            Tbl::new()
                .str("top-layer", &ri.top_layer)
                .str("reference", &ri.reference)
                .str_opt("image", &ri.image)
                .strs_opt("mirrors", &ri.mirrors),
        );
    let st = &m.stack.run_image;
    if !st.image.is_empty() || !st.mirrors.is_empty() {
        t = t.table(
            "stack",
            Tbl::new().table(
                "run-image",
                Tbl::new()
                    .str_opt("image", &st.image)
                    .strs_opt("mirrors", &st.mirrors),
            ),
        );
    }
    t
}

/// A layer: `sha`, `metadata` (the JSON `data`), `build`, `launch`, `cache`.
fn layer_tbl(l: &LayerMetadata) -> Tbl {
    let t = with_data(Tbl::new().str("sha", &l.sha), &l.data);
    t.bool("build", l.build)
        .bool("launch", l.launch)
        .bool("cache", l.cache)
}

/// Adds free-form data as `metadata` (left out when null, as Go leaves out a nil interface).
fn with_data(mut t: Tbl, data: &Json) -> Tbl {
    if let Some(item) = data_item(data) {
        t.0.push(("metadata".into(), item));
    }
    t
}

fn data_item(data: &Json) -> Option<Item> {
    match json_to_toml(data)? {
        toml::Value::Table(t) => Some(Item::Table(Tbl::from_toml(&t))),
        other => Some(Item::Value(other)),
    }
}

/// A restored `<layer>.toml`: `[metadata]` only, no `[types]` (`cnb-lifecycle.md` §3.13).
pub fn render_layer_toml(data: &Json) -> String {
    match data_item(data) {
        Some(item) => Tbl(vec![("metadata".into(), item)]).render(),
        None => String::new(),
    }
}

/// JSON (as decoded from labels) to TOML. Nulls are dropped; TOML datetimes that went through
/// serde's private representation come back as datetimes.
pub fn json_to_toml(v: &Json) -> Option<toml::Value> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => toml::Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Json::String(s) => toml::Value::String(s.clone()),
        Json::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Json::Object(o) => {
            if let (1, Some(Json::String(s))) = (o.len(), o.get("$__toml_private_datetime")) {
                if let Ok(d) = s.parse::<toml::value::Datetime>() {
                    return Some(toml::Value::Datetime(d));
                }
            }
            toml::Value::Table(
                o.iter()
                    .filter_map(|(k, v)| json_to_toml(v).map(|t| (k.clone(), t)))
                    .collect(),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::labels::{BuildpackLayers, StoreMetadata};

    #[test]
    fn first_build_layout_matches_go() {
        let a = AnalyzedMd {
            image: Some(String::new()),
            run_image: Some(RunImageMd {
                reference: "reg/run@sha256:ab".into(),
                image: "reg/run:1".into(),
                target: Some(RunTarget {
                    os: "linux".into(),
                    arch: "amd64".into(),
                    distro: Some(Distro {
                        name: "ubuntu".into(),
                        version: "24.04".into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = a.render();
        assert_eq!(
            text,
            "[image]\n  reference = \"\"\n\n[metadata]\n  [metadata.config]\n    sha = \"\"\n  [metadata.launcher]\n    sha = \"\"\n  [metadata.process-types]\n    sha = \"\"\n  [metadata.run-image]\n    top-layer = \"\"\n    reference = \"\"\n\n[run-image]\n  reference = \"reg/run@sha256:ab\"\n  image = \"reg/run:1\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"ubuntu\"\n      version = \"24.04\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("analyzed.toml");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(AnalyzedMd::read(&p).unwrap().unwrap(), a);
        assert_eq!(AnalyzedMd::read(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    fn previous_metadata_round_trips_with_data_and_store() {
        let mut m = LayersMetadata {
            app: vec![ShaRef::new("sha256:a")],
            sbom: Some(ShaRef::new("sha256:s")),
            ..Default::default()
        };
        m.buildpacks.push(BuildpackLayers {
            key: "acme/one".into(),
            version: "1.0".into(),
            layers: [(
                "deps".to_string(),
                LayerMetadata {
                    sha: "sha256:d".into(),
                    data: serde_json::json!({"v": 1, "x": {"y": "z"}, "n": null}),
                    launch: true,
                    cache: true,
                    build: false,
                },
            )]
            .into(),
            store: Some(StoreMetadata {
                metadata: serde_json::json!({"runs": 3}),
            }),
        });
        m.stack.run_image.image = "run:1".into();
        let a = AnalyzedMd {
            image: Some("reg/app@sha256:p".into()),
            metadata: m,
            ..Default::default()
        };
        let text = a.render();
        assert!(
            text.contains("  [[metadata.buildpacks]]\n    key = \"acme/one\"\n    version = \"1.0\"\n    [metadata.buildpacks.layers]\n      [metadata.buildpacks.layers.deps]\n        sha = \"sha256:d\"\n        build = false\n        launch = true\n        cache = true\n        [metadata.buildpacks.layers.deps.metadata]\n          v = 1\n          [metadata.buildpacks.layers.deps.metadata.x]\n            y = \"z\"\n    [metadata.buildpacks.store]\n      [metadata.buildpacks.store.metadata]\n        runs = 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  [metadata.stack]\n    [metadata.stack.run-image]\n      image = \"run:1\"\n"
            ),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("analyzed.toml");
        std::fs::write(&p, &text).unwrap();
        let back = AnalyzedMd::read(&p).unwrap().unwrap();
        let mut want = a.clone();
        want.metadata.buildpacks[0]
            .layers
            .get_mut("deps")
            .unwrap()
            .data = serde_json::json!({"v": 1, "x": {"y": "z"}});
        assert_eq!(back, want);
        assert_eq!(
            render_layer_toml(&back.metadata.buildpacks[0].layers["deps"].data),
            "[metadata]\n  v = 1\n  [metadata.x]\n    y = \"z\"\n"
        );
        assert_eq!(render_layer_toml(&Json::Null), "");
    }

    #[test]
    fn malformed_metadata_names_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("analyzed.toml");
        std::fs::write(&p, "[metadata]\napp = \"x\"\n").unwrap();
        let e = AnalyzedMd::read(&p).unwrap_err().to_string();
        assert!(e.contains("analyzed.toml: field `metadata`"), "{e}");
        std::fs::write(&p, "[image\n").unwrap();
        let e = AnalyzedMd::read(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("parse {}", p.display())), "{e}");
    }
}
