//! What cosign writes: the simple-signing payload (`sigstore/pkg/signature/payload`) and the
//! signature image (`<repo>:sha256-<hex>.sig`) whose layers are payloads annotated with their
//! signature. JSON is produced as Go's `encoding/json` produces it (struct field order, sorted
//! map keys, HTML-safe escaping), so payload bytes match cosign's for the same input.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::oci::media;

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// Go's `json.Marshal` of a string (with `SetEscapeHTML(true)`, the default).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The simple-signing payload for `docker_reference@digest`; `optional` is `null` without
/// annotations, as cosign writes it.
pub fn simple_signing(
    docker_reference: &str,
    digest: &str,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let optional = if annotations.is_empty() {
        "null".to_string()
    } else {
        let kv: Vec<String> = annotations
            .iter()
            .map(|(k, v)| format!("{}:{}", go_json_string(k), go_json_string(v)))
            .collect();
        format!("{{{}}}", kv.join(","))
    };
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{}}},"image":{{"docker-manifest-digest":{}}},"type":{}}},"optional":{optional}}}"#,
        go_json_string(docker_reference),
        go_json_string(digest),
        go_json_string(SIGNATURE_TYPE),
    )
    .into_bytes()
}

/// A signature layer: the payload blob and its base64 signature.
pub struct SigLayer {
    pub payload: Vec<u8>,
    pub signature_b64: String,
}

impl SigLayer {
    pub fn digest(&self) -> Digest {
        Digest::of(&self.payload)
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
            "size": self.payload.len(),
            "digest": self.digest().to_string(),
            "annotations": { SIGNATURE_ANNOTATION: self.signature_b64 },
        })
    }
}

/// A signature image's manifest and config, as JSON values.
pub struct SigImage {
    pub manifest: Value,
    pub config: Value,
}

/// Key order of ggcr's structs (`v1.Manifest`, `v1.Descriptor`).
const MANIFEST_ORDER: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "size",
    "digest",
    "config",
    "layers",
    "annotations",
];
/// Key order of ggcr's `v1.ConfigFile`.
const CONFIG_ORDER: &[&str] = &[
    "architecture",
    "created",
    "history",
    "os",
    "rootfs",
    "type",
    "diff_ids",
    "config",
];

/// Serialise as Go does a struct: keys in `order` first (field order), then the rest sorted.
fn render(v: &Value, order: &[&str]) -> Vec<u8> {
    fn value(out: &mut String, v: &Value, order: &[&str]) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by_key(|k| {
                    (
                        order.iter().position(|o| o == k).unwrap_or(order.len()),
                        (*k).clone(),
                    )
                });
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&go_json_string(k));
                    out.push(':');
                    value(out, &m[k], order);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    value(out, x, order);
                }
                out.push(']');
            }
            Value::String(s) => out.push_str(&go_json_string(s)),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    value(&mut out, v, order);
    out.into_bytes()
}

impl SigImage {
    /// cosign's empty signatures image (`empty.Signatures()` with one layer appended): OCI
    /// media types unless `docker` (`COSIGN_DOCKER_MEDIA_TYPES`).
    pub fn new(docker: bool, created: &str) -> SigImage {
        let (m, c) = if docker {
            (media::DOCKER_MANIFEST, media::DOCKER_CONFIG)
        } else {
            (media::OCI_MANIFEST, media::OCI_CONFIG)
        };
        SigImage {
            manifest: json!({
                "schemaVersion": 2,
                "mediaType": m,
                "config": { "mediaType": c, "size": 0, "digest": "" },
                "layers": [],
            }),
            config: json!({
                "architecture": "",
                "created": created,
                "history": [],
                "os": "",
                "rootfs": { "type": "layers", "diff_ids": [] },
                "config": {},
            }),
        }
    }

    /// An existing signature image read back from the registry.
    pub fn parse(manifest: &[u8], config: &[u8]) -> Result<SigImage, String> {
        let p = |b: &[u8], what: &str| {
            serde_json::from_slice::<Value>(b)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| format!("signature image {what} is not a JSON object"))
        };
        Ok(SigImage {
            manifest: p(manifest, "manifest")?,
            config: p(config, "config")?,
        })
    }

    /// The signature layers already present: (payload digest, media type, base64 signature).
    pub fn layers(&self) -> Vec<(String, String, String)> {
        self.manifest["layers"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .map(|l| {
                        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                        (
                            s(&l["digest"]),
                            s(&l["mediaType"]),
                            s(&l["annotations"][SIGNATURE_ANNOTATION]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// ggcr's `mutate.Append`: the layer's descriptor, its diffID and an empty history entry.
    pub fn append(&mut self, layer: &SigLayer) {
        let push = |v: &mut Value, item: Value| match v.as_array_mut() {
            Some(a) => a.push(item),
            None => *v = Value::Array(vec![item]),
        };
        push(&mut self.manifest["layers"], layer.descriptor());
        push(
            &mut self.config["rootfs"]["diff_ids"],
            Value::String(layer.digest().to_string()),
        );
        push(
            &mut self.config["history"],
            json!({ "created": "0001-01-01T00:00:00Z" }),
        );
    }

    /// The config bytes and the manifest bytes pointing at them.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u8>, String) {
        let config = render(&self.config, CONFIG_ORDER);
        let cm = &mut self.manifest["config"];
        cm["size"] = json!(config.len());
        cm["digest"] = json!(Digest::of(&config).to_string());
        let media_type = self.manifest["mediaType"]
            .as_str()
            .unwrap_or(media::OCI_MANIFEST)
            .to_string();
        (config, render(&self.manifest, MANIFEST_ORDER), media_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_gos_json() {
        let mut a = BTreeMap::new();
        assert_eq!(
            String::from_utf8(simple_signing("r.io/app", "sha256:ab", &a)).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"r.io/app"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#
        );
        a.insert("buildNumber".into(), "3".into());
        a.insert("a&b".into(), "<x>\n".into());
        assert_eq!(
            String::from_utf8(simple_signing("r.io/app", "sha256:ab", &a)).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"r.io/app"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":{"a\u0026b":"\u003cx\u003e\n","buildNumber":"3"}}"#
        );
    }

    #[test]
    fn signature_image_like_ggcr() {
        let mut img = SigImage::new(false, "2026-01-01T00:00:00Z");
        let l = SigLayer {
            payload: b"{}".to_vec(),
            signature_b64: "c2ln".into(),
        };
        img.append(&l);
        let (config, manifest, mt) = img.finish();
        assert_eq!(mt, media::OCI_MANIFEST);
        let d = l.digest();
        assert_eq!(
            String::from_utf8(config.clone()).unwrap(),
            format!(
                r#"{{"architecture":"","created":"2026-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{d}"]}},"config":{{}}}}"#
            )
        );
        assert_eq!(
            String::from_utf8(manifest.clone()).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"{SIMPLE_SIGNING_MEDIA_TYPE}","size":2,"digest":"{d}","annotations":{{"{SIGNATURE_ANNOTATION}":"c2ln"}}}}]}}"#,
                config.len(),
                Digest::of(&config)
            )
        );
        let mut again = SigImage::parse(&manifest, &config).unwrap();
        assert_eq!(
            again.layers(),
            vec![(
                d.to_string(),
                SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
                "c2ln".to_string()
            )]
        );
        again.append(&l);
        let (config, _, _) = again.finish();
        let v: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(v["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        let (_, _, mt) = SigImage::new(true, "x").finish();
        assert_eq!(mt, media::DOCKER_MANIFEST);
    }
}
