//! Reading the builder image (kpack's `fetchBuilderConfig`) with the Build's registry
//! credentials, taken from its ServiceAccount's docker secrets and pull secrets.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;

use crate::oci::location::Location;
use crate::pod::BuilderConfig;
use crate::registry::AuthEntry;
use crate::registry::{Client, ClientOptions, Keychain};

/// Reads a builder image into what the pod needs. Blocking (the controller runs it on a
/// blocking thread); a trait so that tests can answer without a registry.
pub trait BuilderReader: Send + Sync + 'static {
    fn read(&self, image: &str, keychain: &Keychain) -> Result<BuilderConfig, String>;
}

/// The real reader: `crate::registry` (HTTPS; loopback and `insecure` registries may be HTTP).
pub struct RegistryBuilderReader {
    pub insecure: Vec<String>,
}

impl BuilderReader for RegistryBuilderReader {
    fn read(&self, image: &str, keychain: &Keychain) -> Result<BuilderConfig, String> {
        let client = Client::new(ClientOptions {
            keychain: keychain.clone(),
            insecure: self.insecure.clone(),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        read_builder(&client, image)
    }
}

fn read_builder(client: &Arc<Client>, image: &str) -> Result<BuilderConfig, String> {
    use crate::builder::pod_config::{read, ReadError};
    read(client, &Location::Registry(image.to_string()), image).map_err(|e| match e {
        ReadError::Fetch(m) => format!("builder image {image}: {m}"),
        ReadError::Config(e) => e.to_string(),
    })
}

/// Registry credentials from Kubernetes secrets: `.dockerconfigjson`, `.dockercfg`, and
/// basic-auth secrets annotated `kpack.io/docker` (first one for a registry wins, as kpack).
pub fn keychain_from_secrets(secrets: &[Secret]) -> Keychain {
    let mut k = Keychain::empty();
    for s in secrets {
        let data = |key: &str| {
            s.data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
                .unwrap_or_default()
        };
        let ty = s.type_.as_deref().unwrap_or("");
        let found = match ty {
            "kubernetes.io/dockerconfigjson" => {
                Keychain::from_config_json(&data(".dockerconfigjson"), None).ok()
            }
            "kubernetes.io/dockercfg" => Keychain::from_dockercfg(&data(".dockercfg"), None).ok(),
            "kubernetes.io/basic-auth" => {
                let registry = s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kpack.io/docker"))
                    .filter(|r| !r.is_empty());
                registry.map(|r| {
                    let mut one = Keychain::empty();
                    let text = |key| String::from_utf8_lossy(&data(key)).into_owned();
                    one.insert(r, AuthEntry::basic(&text("username"), &text("password")));
                    one
                })
            }
            _ => None,
        };
        if let Some(found) = found {
            for (key, entry) in found.entries() {
                if k.matching_key(key).is_none() {
                    k.insert(key, entry.clone());
                }
            }
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, ty: &str, ann: Option<&str>, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                annotations: ann.map(|r| [("kpack.io/docker".to_string(), r.to_string())].into()),
                ..Default::default()
            },
            type_: Some(ty.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            k8s_openapi::ByteString(v.as_bytes().to_vec()),
                        )
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn keychain_first_secret_wins() {
        let k = keychain_from_secrets(&[
            secret(
                "b",
                "kubernetes.io/basic-auth",
                Some("reg.io"),
                &[("username", "u1"), ("password", "p1")],
            ),
            secret(
                "j",
                "kubernetes.io/dockerconfigjson",
                None,
                &[(
                    ".dockerconfigjson",
                    r#"{"auths":{"reg.io":{"username":"u2","password":"p2"},"other.io":{"username":"u3","password":"p3"}}}"#,
                )],
            ),
            secret("x", "Opaque", None, &[]),
        ]);
        let keys: Vec<_> = k.entries().keys().cloned().collect();
        assert_eq!(keys, ["other.io", "reg.io"]);
        assert_eq!(k.entries()["reg.io"].username.as_deref(), Some("u1"));
    }
}
