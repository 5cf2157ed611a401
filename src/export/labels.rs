//! The labels the exporter writes (`cnb-lifecycle.md` §7.4), with Go's field order and names.
//! The same types read the previous image's label and `analyzed.toml`'s `[metadata]` (TOML
//! names accepted as aliases: `run-image`, `top-layer`, layer `metadata`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
pub const BUILD_METADATA: &str = "io.buildpacks.build.metadata";
pub const PROJECT_METADATA: &str = "io.buildpacks.project.metadata";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShaRef {
    #[serde(default)]
    pub sha: String,
}

impl ShaRef {
    pub fn new(sha: impl ToString) -> Self {
        Self {
            sha: sha.to_string(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerMetadata {
    #[serde(default)]
    pub sha: String,
    #[serde(rename = "data", alias = "metadata", default)]
    pub data: serde_json::Value,
    #[serde(default)]
    pub build: bool,
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub cache: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreMetadata {
    #[serde(default)]
    pub metadata: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayers {
    pub key: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub layers: BTreeMap<String, LayerMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreMetadata>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunImageMetadata {
    #[serde(rename = "topLayer", alias = "top-layer", default)]
    pub top_layer: String,
    #[serde(default)]
    pub reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StackRunImage {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StackMetadata {
    #[serde(rename = "runImage", alias = "run-image", default)]
    pub run_image: StackRunImage,
}

/// `io.buildpacks.lifecycle.metadata`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayersMetadata {
    #[serde(default)]
    pub app: Vec<ShaRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<ShaRef>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayers>,
    #[serde(default)]
    pub config: ShaRef,
    #[serde(default)]
    pub launcher: ShaRef,
    #[serde(rename = "process-types", default)]
    pub process_types: ShaRef,
    #[serde(rename = "runImage", alias = "run-image", default)]
    pub run_image: RunImageMetadata,
    #[serde(default)]
    pub stack: StackMetadata,
}

impl LayersMetadata {
    /// The previous image's SHA for a buildpack's layer.
    pub fn layer_sha(&self, bp: &str, layer: &str) -> Option<&str> {
        self.buildpacks
            .iter()
            .find(|b| b.key == bp)
            .and_then(|b| b.layers.get(layer))
            .map(|l| l.sha.as_str())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackRef {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub homepage: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LauncherSource {
    pub git: GitSource,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GitSource {
    pub repository: String,
    pub commit: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LauncherMetadata {
    pub version: String,
    pub source: LauncherSource,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessLabel {
    #[serde(rename = "type")]
    pub kind: String,
    /// An array for Platform ≥ 0.10, a string below.
    pub command: serde_json::Value,
    /// `null` when absent, as Go writes it.
    pub args: Option<Vec<String>>,
    pub direct: bool,
    #[serde(rename = "buildpackID")]
    pub buildpack_id: String,
    #[serde(
        rename = "working-dir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(rename = "exec-env", default, skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// `io.buildpacks.build.metadata`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadataLabel {
    pub buildpacks: Vec<BuildpackRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<BuildpackRef>,
    pub launcher: LauncherMetadata,
    pub processes: Vec<ProcessLabel>,
    #[serde(
        rename = "buildpack-default-process-type",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub default_process_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_metadata_json_field_order_and_toml_aliases() {
        let mut m = LayersMetadata {
            app: vec![ShaRef::new("sha256:a")],
            ..Default::default()
        };
        m.buildpacks.push(BuildpackLayers {
            key: "bp/one".into(),
            version: "1.0".into(),
            layers: BTreeMap::from([(
                "deps".into(),
                LayerMetadata {
                    sha: "sha256:d".into(),
                    launch: true,
                    ..Default::default()
                },
            )]),
            store: None,
        });
        m.run_image.top_layer = "sha256:t".into();
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(
            s,
            r#"{"app":[{"sha":"sha256:a"}],"buildpacks":[{"key":"bp/one","version":"1.0","layers":{"deps":{"sha":"sha256:d","data":null,"build":false,"launch":true,"cache":false}}}],"config":{"sha":""},"launcher":{"sha":""},"process-types":{"sha":""},"runImage":{"topLayer":"sha256:t","reference":""},"stack":{"runImage":{"image":""}}}"#
        );
        let t: LayersMetadata = toml::from_str(
            "[[app]]\nsha = \"sha256:a\"\n[run-image]\ntop-layer = \"sha256:t\"\nreference = \"r\"\n\
             [[buildpacks]]\nkey = \"bp/one\"\nversion = \"1.0\"\n[buildpacks.layers.deps]\nsha = \"sha256:d\"\nlaunch = true\n[buildpacks.layers.deps.metadata]\nv = 1\n",
        )
        .unwrap();
        assert_eq!(t.run_image.top_layer, "sha256:t");
        assert_eq!(t.layer_sha("bp/one", "deps"), Some("sha256:d"));
        assert_eq!(t.buildpacks[0].layers["deps"].data["v"], 1);
    }
}
