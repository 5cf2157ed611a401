//! What the exporter reads: `<layers>/config/metadata.toml`, `analyzed.toml`, `run.toml`,
//! `project-metadata.toml`, and each buildpack's layer directories.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::labels::LayersMetadata;
use super::ExportError;
use crate::lifecycle::buildpack_toml::escape_id;
use crate::lifecycle::launch::{LayerToml, StoreToml};
use crate::lifecycle::order::GroupEntry;

/// `<layers>/config/metadata.toml` as the builder writes it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConfigMetadata {
    #[serde(rename = "buildpack-default-process-type", default)]
    pub default_process_type: String,
    /// The group that built the app, in order (the launcher needs each one's `api`).
    #[serde(default)]
    pub buildpacks: Vec<BuildpackToml>,
    #[serde(default)]
    pub processes: Vec<ProcessToml>,
    #[serde(default)]
    pub labels: Vec<LabelToml>,
    #[serde(default)]
    pub slices: Vec<SliceToml>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct BuildpackToml {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub api: String,
    #[serde(default)]
    pub homepage: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ProcessToml {
    #[serde(rename = "type")]
    pub kind: String,
    /// An array (Platform ≥ 0.10) or a string.
    pub command: toml::Value,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub direct: bool,
    #[serde(rename = "buildpack-id", default)]
    pub buildpack_id: String,
    #[serde(rename = "working-dir", default)]
    pub working_dir: String,
    #[serde(rename = "exec-env", default)]
    pub exec_env: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct LabelToml {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SliceToml {
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `analyzed.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Analyzed {
    #[serde(default)]
    pub image: Option<ImageRef>,
    #[serde(default)]
    pub metadata: LayersMetadata,
    #[serde(rename = "run-image", default)]
    pub run_image: Option<RunImageRef>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ImageRef {
    #[serde(default)]
    pub reference: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunImageRef {
    #[serde(default)]
    pub reference: String,
    #[serde(default)]
    pub image: String,
}

/// `run.toml` (`[[images]]`) or `stack.toml` (`[run-image]`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunToml {
    #[serde(default)]
    pub images: Vec<RunImageEntry>,
    #[serde(rename = "run-image", default)]
    pub run_image: Option<RunImageEntry>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunImageEntry {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

pub fn read_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<T, ExportError> {
    let text = fs::read_to_string(path).map_err(|e| ExportError::Input {
        path: path.to_path_buf(),
        message: format!("read {what}: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| ExportError::Input {
        path: path.to_path_buf(),
        message: format!("parse {what}: {}", e.message()),
    })
}

/// A buildpack's layer as found under `<layers>/<bp>/`.
#[derive(Clone, Debug)]
pub struct FoundLayer {
    pub name: String,
    /// The layer directory, when it has contents here (else only `<name>.toml` exists).
    pub dir: Option<PathBuf>,
    pub toml: LayerToml,
}

/// Layers of one buildpack (sorted by name) and its `store.toml`.
pub fn buildpack_layers(
    layers_dir: &Path,
    bp: &GroupEntry,
) -> Result<(Vec<FoundLayer>, Option<StoreToml>), ExportError> {
    let dir = layers_dir.join(escape_id(&bp.id));
    let mut found: BTreeMap<String, FoundLayer> = BTreeMap::new();
    let mut store = None;
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => {
            return Err(ExportError::Input {
                path: dir,
                message: format!("read buildpack layers: {e}"),
            })
        }
    };
    for e in entries {
        let e = e.map_err(|err| ExportError::Input {
            path: dir.clone(),
            message: err.to_string(),
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name == "store.toml" {
            store = Some(StoreToml::read(&path).map_err(ExportError::toml)?);
            continue;
        }
        if let Some(layer) = name.strip_suffix(".toml") {
            if matches!(layer, "launch" | "build") {
                continue;
            }
            let toml = LayerToml::read(&path).map_err(ExportError::toml)?;
            let ldir = dir.join(layer);
            found.insert(
                layer.to_string(),
                FoundLayer {
                    name: layer.to_string(),
                    dir: ldir.is_dir().then_some(ldir),
                    toml,
                },
            );
        }
    }
    Ok((found.into_values().collect(), store))
}
