//! The builder image's metadata as kpack writes it: `/cnb/order.toml` and the labels
//! `io.buildpacks.buildpack.order`, `io.buildpacks.buildpack.layers`,
//! `io.buildpacks.lifecycle.apis`, `io.buildpacks.lifecycle.version` and
//! `io.buildpacks.builder.metadata` (plus the builder's `spec.additionalLabels`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::reconcile::Reconciled;
use super::resolve::Resolution;
use super::resources::{BuildpackStack, OrderEntry};
use super::status::{layer_order, BuildpackMetadata};
use super::{Builder, Error};
use crate::clusterlifecycle::descriptor::{
    Apis, LegacyApi, LABEL_APIS, LABEL_BUILDER_METADATA, LABEL_VERSION,
};
use crate::lifecycle::tomlw::quote;

pub const LABEL_ORDER: &str = "io.buildpacks.buildpack.order";
pub const LABEL_LAYERS: &str = "io.buildpacks.buildpack.layers";
/// kpack's builder metadata description.
pub const DESCRIPTION: &str = "Custom Builder built with kpack";

/// `/cnb/order.toml` as kpack writes it (BurntSushi's encoder: indented tables, blank lines
/// between array elements).
pub fn order_toml(order: &[OrderEntry]) -> String {
    if order.is_empty() {
        return "order = []\n".into();
    }
    let mut s = String::new();
    for o in order {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str("[[order]]\n");
        for r in &o.group {
            s.push_str("\n  [[order.group]]\n");
            s.push_str(&format!("    id = {}\n", quote(&r.id)));
            s.push_str(&format!("    version = {}\n", quote(&r.version)));
            if r.optional {
                s.push_str("    optional = true\n");
            }
        }
    }
    s
}

/// kpack's `BuildpackLayerInfo` (field order as Go writes it).
#[derive(Serialize)]
struct KpackLayerInfo<'a> {
    api: &'a str,
    #[serde(rename = "layerDiffID")]
    layer_diff_id: &'a str,
    #[serde(skip_serializing_if = "<[OrderEntry]>::is_empty")]
    order: &'a [OrderEntry],
    #[serde(skip_serializing_if = "<[BuildpackStack]>::is_empty")]
    stacks: &'a [BuildpackStack],
    #[serde(skip_serializing_if = "str::is_empty")]
    homepage: &'a str,
}

#[derive(Serialize)]
struct BuilderMetadata<'a> {
    description: &'a str,
    stack: StackMetadata<'a>,
    lifecycle: LifecycleMetadata<'a>,
    #[serde(rename = "createdBy")]
    created_by: CreatedBy<'a>,
    buildpacks: Vec<BuildpackMetadata>,
}

#[derive(Serialize)]
struct StackMetadata<'a> {
    #[serde(rename = "runImage")]
    run_image: RunImageMetadata<'a>,
}

#[derive(Serialize)]
struct RunImageMetadata<'a> {
    image: &'a str,
    mirrors: Option<Vec<String>>,
}

#[derive(Serialize)]
struct LifecycleMetadata<'a> {
    version: &'a str,
    api: &'a LegacyApi,
    apis: &'a Apis,
}

#[derive(Serialize)]
struct CreatedBy<'a> {
    name: &'a str,
    version: &'a str,
}

pub fn labels(
    rec: &Reconciled,
    builder: &Builder,
    resolution: &Resolution<'_>,
    run_image: &str,
    description: Option<&str>,
) -> Result<Vec<(String, String)>, Error> {
    let lc = &rec.lifecycle.resolved.status;
    let json = |what: &str, v: serde_json::Result<String>| {
        v.map_err(|e| Error::Usage(format!("serialise label {what}: {e}")))
    };
    let ordered = layer_order(resolution);
    let mut layers: BTreeMap<&str, BTreeMap<&str, KpackLayerInfo<'_>>> = BTreeMap::new();
    for s in &ordered {
        let bp = s.buildpack;
        layers.entry(&bp.id).or_default().insert(
            &bp.version,
            KpackLayerInfo {
                api: &bp.api,
                layer_diff_id: &bp.diff_id,
                order: &bp.order,
                stacks: &bp.stacks,
                homepage: &bp.homepage,
            },
        );
    }
    let metadata = BuilderMetadata {
        description: description.unwrap_or(DESCRIPTION),
        stack: StackMetadata {
            run_image: RunImageMetadata {
                image: run_image,
                mirrors: None,
            },
        },
        lifecycle: LifecycleMetadata {
            version: &lc.version,
            api: &lc.api,
            apis: &lc.apis,
        },
        created_by: CreatedBy {
            name: "kpack Builder",
            version: concat!("buildpod ", env!("CARGO_PKG_VERSION")),
        },
        buildpacks: ordered
            .iter()
            .map(|s| BuildpackMetadata {
                id: s.buildpack.id.clone(),
                version: s.buildpack.version.clone(),
                homepage: s.buildpack.homepage.clone(),
            })
            .collect(),
    };
    let mut out = vec![
        (LABEL_VERSION.to_string(), lc.version.clone()),
        (
            LABEL_ORDER.to_string(),
            json(LABEL_ORDER, serde_json::to_string(&resolution.order))?,
        ),
        (
            LABEL_LAYERS.to_string(),
            json(LABEL_LAYERS, serde_json::to_string(&layers))?,
        ),
        (
            LABEL_APIS.to_string(),
            json(LABEL_APIS, serde_json::to_string(&lc.apis))?,
        ),
        (
            LABEL_BUILDER_METADATA.to_string(),
            json(LABEL_BUILDER_METADATA, serde_json::to_string(&metadata))?,
        ),
    ];
    out.extend(
        builder
            .additional_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::resources::BuildpackRef;

    fn r(id: &str, version: &str, optional: bool) -> BuildpackRef {
        BuildpackRef {
            id: id.into(),
            version: version.into(),
            optional,
        }
    }

    // create_builder_test.go "creates a custom builder": the order layer's text.
    #[test]
    fn order_toml_is_kpacks() {
        let order = vec![OrderEntry {
            group: vec![
                r("io.buildpack.1", "v1", false),
                r("io.buildpack.2", "v2", true),
            ],
        }];
        assert_eq!(
            order_toml(&order),
            "[[order]]\n\n  [[order.group]]\n    id = \"io.buildpack.1\"\n    version = \"v1\"\n\n  [[order.group]]\n    id = \"io.buildpack.2\"\n    version = \"v2\"\n    optional = true\n"
        );
        let two = vec![
            OrderEntry {
                group: vec![r("a", "1", false)],
            },
            OrderEntry {
                group: vec![r("b", "2", false)],
            },
        ];
        assert_eq!(
            order_toml(&two),
            "[[order]]\n\n  [[order.group]]\n    id = \"a\"\n    version = \"1\"\n\n[[order]]\n\n  [[order.group]]\n    id = \"b\"\n    version = \"2\"\n"
        );
    }
}
