//! Buildpackages: images with one layer per buildpack and two labels that describe them,
//! `io.buildpacks.buildpackage.metadata` (the package's own buildpack) and
//! `io.buildpacks.buildpack.layers` (every buildpack: id → version → api, layer diffID, order,
//! stacks). Reading one gives the buildpacks kpack's reconcilers put into `status.buildpacks`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::buildpack_toml::{ModuleInfo, Target};
use super::fetch::Image;
use super::resources::{BuildpackStack, BuildpackStatus, OrderEntry, StoreImage};
use crate::digest::Digest;

pub const LABEL_METADATA: &str = "io.buildpacks.buildpackage.metadata";
pub const LABEL_LAYERS: &str = "io.buildpacks.buildpack.layers";

/// One buildpack of `io.buildpacks.buildpack.layers` (pack's `dist.ModuleLayerInfo`, fields in
/// Go's order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    #[serde(default)]
    pub api: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<BuildpackStack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderEntry>,
    #[serde(default, rename = "layerDiffID")]
    pub layer_diff_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub homepage: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `io.buildpacks.buildpack.layers`: id → version → layer (sorted, as Go writes map keys).
pub type Layers = BTreeMap<String, BTreeMap<String, LayerInfo>>;

/// `io.buildpacks.buildpackage.metadata` (pack's `buildpack.Metadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMetadata {
    #[serde(flatten)]
    pub info: ModuleInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<BuildpackStack>,
}

/// A buildpackage as read from its image.
#[derive(Clone, Debug)]
pub struct Buildpackage {
    pub metadata: Option<PackageMetadata>,
    pub layers: Layers,
    /// Every buildpack with its layer's digest and compressed size, sorted by `id@version`
    /// (kpack's `status.buildpacks`; `storeImage.image` is the image's name as written).
    pub buildpacks: Vec<BuildpackStatus>,
}

/// Read the buildpackage labels of `image`; the error is the reason only.
pub fn read(image: &Image) -> Result<Buildpackage, String> {
    let cfg = &image.view.config;
    let layers_json = cfg
        .label(LABEL_LAYERS)
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| format!("not a buildpackage: no label {LABEL_LAYERS}"))?;
    let layers: Layers = serde_json::from_str(&layers_json)
        .map_err(|e| format!("invalid label {LABEL_LAYERS}: {e}"))?;
    // Optional for kpack (it only reports the package's id and version from it).
    let metadata = match cfg.label(LABEL_METADATA).filter(|l| !l.trim().is_empty()) {
        None => None,
        Some(m) => Some(
            serde_json::from_str::<PackageMetadata>(&m)
                .map_err(|e| format!("invalid label {LABEL_METADATA}: {e}"))?,
        ),
    };
    if layers.values().all(BTreeMap::is_empty) {
        return Err(format!("label {LABEL_LAYERS} lists no buildpacks"));
    }
    let mut buildpacks = Vec::new();
    for (id, versions) in &layers {
        for (version, info) in versions {
            let key = format!("{id}@{version}");
            let diff_id: Digest = info
                .layer_diff_id
                .parse()
                .map_err(|e| format!("buildpack {key}: invalid layerDiffID: {e}"))?;
            let desc = image
                .view
                .layer(&diff_id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("buildpack {key}: layer {diff_id} is not in the image"))?;
            buildpacks.push(BuildpackStatus {
                id: id.clone(),
                version: version.clone(),
                diff_id: diff_id.to_string(),
                digest: desc.digest().to_string(),
                size: i64::try_from(desc.size()).unwrap_or(i64::MAX),
                store_image: StoreImage {
                    image: image.name.clone(),
                },
                api: info.api.clone(),
                homepage: info.homepage.clone(),
                order: info.order.clone(),
                stacks: info.stacks.clone(),
            });
        }
    }
    buildpacks.sort_by_key(BuildpackStatus::key);
    Ok(Buildpackage {
        metadata,
        layers,
        buildpacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_info_json_is_packs() {
        let mut layers = Layers::new();
        layers.entry("b".into()).or_default().insert(
            "1.0.0".into(),
            LayerInfo {
                api: "0.10".into(),
                stacks: vec![BuildpackStack {
                    id: "*".into(),
                    mixins: vec![],
                }],
                layer_diff_id: "sha256:00".into(),
                homepage: "h".into(),
                ..Default::default()
            },
        );
        layers.entry("a".into()).or_default().insert(
            "2".into(),
            LayerInfo {
                api: "0.10".into(),
                order: vec![OrderEntry {
                    group: vec![super::super::resources::BuildpackRef {
                        id: "b".into(),
                        version: "1.0.0".into(),
                        optional: true,
                    }],
                }],
                layer_diff_id: "sha256:01".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            serde_json::to_string(&layers).unwrap(),
            r#"{"a":{"2":{"api":"0.10","order":[{"group":[{"id":"b","version":"1.0.0","optional":true}]}],"layerDiffID":"sha256:01"}},"b":{"1.0.0":{"api":"0.10","stacks":[{"id":"*"}],"layerDiffID":"sha256:00","homepage":"h"}}}"#
        );
        let md = PackageMetadata {
            info: ModuleInfo {
                id: "a".into(),
                version: "2".into(),
                ..Default::default()
            },
            stacks: vec![],
        };
        assert_eq!(
            serde_json::to_string(&md).unwrap(),
            r#"{"id":"a","version":"2"}"#
        );
        let back: PackageMetadata =
            serde_json::from_str(r#"{"id":"a","version":"2","stacks":[{"id":"s"}]}"#).unwrap();
        assert_eq!(back.stacks[0].id, "s");
    }
}
