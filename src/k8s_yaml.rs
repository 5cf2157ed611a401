//! Kubernetes objects from a multi-document YAML stream (`kubectl apply -f` files): the envelope
//! (`apiVersion`, `kind`, `metadata`) typed, `spec` and `status` left as YAML values for each
//! kind's own types. Shared by the ClusterLifecycle and builder resource readers.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Option<serde_norway::Value>,
    #[serde(default)]
    pub status: Option<serde_norway::Value>,
}

#[derive(Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// Every non-empty document, in order. Errors read `document <n>: <reason>`.
pub fn objects(yaml: &str) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let err = |e: serde_norway::Error| format!("document {}: {e}", i + 1);
        let value = serde_norway::Value::deserialize(de).map_err(err)?;
        if value.is_null() {
            continue;
        }
        out.push(serde_norway::from_value(value).map_err(err)?);
    }
    Ok(out)
}
