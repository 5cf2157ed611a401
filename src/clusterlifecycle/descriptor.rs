//! The lifecycle descriptor: `lifecycle.toml` and the image labels that carry the same facts
//! (`io.buildpacks.lifecycle.apis`, `io.buildpacks.builder.metadata`,
//! `io.buildpacks.lifecycle.metadata`, `io.buildpacks.lifecycle.version`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::lifecycle::api::{ApiVersion, BUILDPACK_APIS, PLATFORM_APIS};
use crate::lifecycle::tomlw::quote;

pub const LABEL_APIS: &str = "io.buildpacks.lifecycle.apis";
pub const LABEL_BUILDER_METADATA: &str = "io.buildpacks.builder.metadata";
pub const LABEL_LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
pub const LABEL_VERSION: &str = "io.buildpacks.lifecycle.version";

/// The SBOM formats the reference lifecycle declares; we declare none (we write no SBOMs of
/// the lifecycle binaries).
const SBOM_FORMATS: &[&str] = &[];

/// Supported and deprecated versions of one API, as strings exactly as published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSet {
    #[serde(default)]
    pub deprecated: Vec<String>,
    #[serde(default)]
    pub supported: Vec<String>,
}

impl ApiSet {
    pub fn supporting(versions: &[ApiVersion]) -> Self {
        Self {
            deprecated: Vec::new(),
            supported: versions.iter().map(ToString::to_string).collect(),
        }
    }

    /// `deprecated ++ supported`, parsed (the order kpack lists them in).
    pub fn all(&self, what: &str) -> Result<Vec<ApiVersion>, Error> {
        parse_list(&self.deprecated, what)
            .and_then(|mut d| {
                d.extend(parse_list(&self.supported, what)?);
                Ok(d)
            })
            .map(|mut v| {
                v.dedup();
                v
            })
    }

    pub fn deprecated_versions(&self, what: &str) -> Result<Vec<ApiVersion>, Error> {
        parse_list(&self.deprecated, what)
    }

    pub fn is_empty(&self) -> bool {
        self.deprecated.is_empty() && self.supported.is_empty()
    }
}

fn parse_list(v: &[String], what: &str) -> Result<Vec<ApiVersion>, Error> {
    v.iter()
        .map(|s| ApiVersion::parse(s).map_err(|e| Error::descriptor(what, e)))
        .collect()
}

/// Buildpack and Platform API sets (`[apis]` of lifecycle.toml, the `io.buildpacks.lifecycle.apis`
/// label, kpack's `status.apis`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Apis {
    #[serde(default)]
    pub buildpack: ApiSet,
    #[serde(default)]
    pub platform: ApiSet,
}

impl Apis {
    /// What our lifecycle implements.
    pub fn ours() -> Self {
        Self {
            buildpack: ApiSet::supporting(BUILDPACK_APIS),
            platform: ApiSet::supporting(PLATFORM_APIS),
        }
    }
}

/// The single-version API pair of RFC-0011 (`[api]`, kpack's deprecated `status.api`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyApi {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub buildpack: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
}

/// What a lifecycle is: its version and the APIs it speaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleDescriptor {
    pub version: String,
    pub apis: Apis,
    pub api: LegacyApi,
}

#[derive(Serialize, Deserialize)]
struct Info {
    #[serde(default)]
    version: String,
}

/// `io.buildpacks.builder.metadata` as a lifecycle image carries it.
#[derive(Serialize, Deserialize)]
struct BuilderMetadata {
    #[serde(default)]
    lifecycle: Option<Info>,
    #[serde(default)]
    api: Option<LegacyApi>,
}

/// `io.buildpacks.lifecycle.metadata` (kpack's old lifecycle image; pack's LifecycleMetadata).
#[derive(Serialize, Deserialize)]
struct LifecycleMetadata {
    #[serde(default)]
    version: String,
    #[serde(default)]
    api: Option<LegacyApi>,
    #[serde(default)]
    apis: Option<Apis>,
}

#[derive(Deserialize)]
struct TomlFile {
    #[serde(default)]
    apis: Option<Apis>,
    #[serde(default)]
    api: Option<LegacyApi>,
    #[serde(default)]
    lifecycle: Option<Info>,
}

impl LifecycleDescriptor {
    /// Our lifecycle at `version`.
    pub fn ours(version: &str) -> Self {
        let apis = Apis::ours();
        let api = LegacyApi {
            buildpack: apis
                .buildpack
                .supported
                .first()
                .cloned()
                .unwrap_or_default(),
            platform: apis.platform.supported.first().cloned().unwrap_or_default(),
        };
        Self {
            version: version.to_string(),
            apis,
            api,
        }
    }

    /// Parse `lifecycle.toml`. A descriptor with only `[api]` (before `[apis]` existed) supports
    /// exactly those versions.
    pub fn parse_toml(text: &str, what: &str) -> Result<Self, Error> {
        let f: TomlFile = toml::from_str(text).map_err(|e| Error::descriptor(what, e))?;
        let api = f.api.unwrap_or_default();
        let apis = match f.apis {
            Some(a) if !a.platform.is_empty() => a,
            _ => from_legacy(&api),
        };
        let d = Self {
            version: f.lifecycle.map(|l| l.version).unwrap_or_default(),
            apis,
            api,
        };
        d.check(what)?;
        Ok(d)
    }

    /// `lifecycle.toml` laid out like the reference lifecycle's template.
    pub fn to_toml(&self) -> String {
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let sbom: Vec<String> = SBOM_FORMATS.iter().map(|s| s.to_string()).collect();
        format!(
            "[apis]\n[apis.buildpack]\n  deprecated = {}\n  supported = {}\n\
             [apis.platform]\n  deprecated = {}\n  supported = {}\n\n\
             # For backwards compatibility the minimum supported APIs are provided in RFC-0011 format\n\
             [api]\n  platform = {}\n  buildpack = {}\n\n\
             [lifecycle]\n  version = {}\n  sbom-formats = {}\n",
            list(&self.apis.buildpack.deprecated),
            list(&self.apis.buildpack.supported),
            list(&self.apis.platform.deprecated),
            list(&self.apis.platform.supported),
            quote(&self.api.platform),
            quote(&self.api.buildpack),
            quote(&self.version),
            list(&sbom),
        )
    }

    /// Read the labels of a lifecycle image: APIs from `io.buildpacks.lifecycle.apis`, else
    /// `io.buildpacks.lifecycle.metadata`, else the single versions of
    /// `io.buildpacks.builder.metadata`.
    pub fn from_labels(labels: &HashMap<String, String>, what: &str) -> Result<Self, Error> {
        let json = |key: &str| labels.get(key).filter(|v| !v.is_empty());
        let bad =
            |key: &str, e: serde_json::Error| Error::descriptor(format!("{what} label {key}"), e);
        let builder: Option<BuilderMetadata> = json(LABEL_BUILDER_METADATA)
            .map(|v| serde_json::from_str(v).map_err(|e| bad(LABEL_BUILDER_METADATA, e)))
            .transpose()?;
        let meta: Option<LifecycleMetadata> = json(LABEL_LIFECYCLE_METADATA)
            .map(|v| serde_json::from_str(v).map_err(|e| bad(LABEL_LIFECYCLE_METADATA, e)))
            .transpose()?;
        let apis: Option<Apis> = json(LABEL_APIS)
            .map(|v| serde_json::from_str(v).map_err(|e| bad(LABEL_APIS, e)))
            .transpose()?;
        let api = builder
            .as_ref()
            .and_then(|b| b.api.clone())
            .or_else(|| meta.as_ref().and_then(|m| m.api.clone()))
            .unwrap_or_default();
        let apis = apis
            .or_else(|| meta.as_ref().and_then(|m| m.apis.clone()))
            .filter(|a| !a.platform.is_empty())
            .unwrap_or_else(|| from_legacy(&api));
        let version = labels
            .get(LABEL_VERSION)
            .cloned()
            .or_else(|| {
                builder
                    .as_ref()
                    .and_then(|b| b.lifecycle.as_ref())
                    .map(|l| l.version.clone())
            })
            .or_else(|| meta.as_ref().map(|m| m.version.clone()))
            .unwrap_or_default();
        let d = Self { version, apis, api };
        if d.apis.platform.is_empty() {
            return Err(Error::descriptor(
                format!("{what} labels"),
                format!("no platform apis in {LABEL_APIS}, {LABEL_LIFECYCLE_METADATA} or {LABEL_BUILDER_METADATA}"),
            ));
        }
        d.check(&format!("{what} labels"))?;
        Ok(d)
    }

    /// The labels a lifecycle image carries (the OS layer labels are added by the image builder).
    pub fn labels(&self) -> Result<Vec<(String, String)>, Error> {
        let builder = BuilderMetadata {
            lifecycle: Some(Info {
                version: self.version.clone(),
            }),
            api: Some(self.api.clone()),
        };
        let meta = LifecycleMetadata {
            version: self.version.clone(),
            api: Some(self.api.clone()),
            apis: Some(self.apis.clone()),
        };
        Ok(vec![
            (LABEL_APIS.to_string(), to_json(&self.apis)?),
            (LABEL_BUILDER_METADATA.to_string(), to_json(&builder)?),
            (LABEL_LIFECYCLE_METADATA.to_string(), to_json(&meta)?),
            (LABEL_VERSION.to_string(), self.version.clone()),
        ])
    }

    fn check(&self, what: &str) -> Result<(), Error> {
        self.apis.platform.all(&format!("{what} platform apis"))?;
        self.apis.buildpack.all(&format!("{what} buildpack apis"))?;
        Ok(())
    }
}

fn from_legacy(api: &LegacyApi) -> Apis {
    let one = |s: &str| ApiSet {
        deprecated: Vec::new(),
        supported: if s.is_empty() {
            Vec::new()
        } else {
            vec![s.to_string()]
        },
    };
    Apis {
        buildpack: one(&api.buildpack),
        platform: one(&api.platform),
    }
}

/// Label values are JSON in struct field order, as Go encodes them.
fn to_json<T: Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::descriptor("label", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = r#"[apis]
[apis.buildpack]
  deprecated = []
  supported = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"]
[apis.platform]
  deprecated = []
  supported = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15"]

# For backwards compatibility the minimum supported APIs are provided in RFC-0011 format
[api]
  platform = "0.7"
  buildpack = "0.7"

[lifecycle]
  version = "0.21.17"
  sbom-formats = ["application/vnd.cyclonedx+json", "application/spdx+json", "application/vnd.syft+json"]
"#;

    #[test]
    fn parses_the_upstream_descriptor() {
        let d = LifecycleDescriptor::parse_toml(UPSTREAM, "lifecycle.toml").unwrap();
        assert_eq!(d.version, "0.21.17");
        assert_eq!(d.apis.platform.supported.len(), 9);
        assert_eq!(d.api.platform, "0.7");
        assert_eq!(
            d.apis.platform.all("p").unwrap().last(),
            Some(&ApiVersion::new(0, 15))
        );
    }

    #[test]
    fn ours_round_trips_and_matches_the_template_layout() {
        let d = LifecycleDescriptor::ours("0.1.0");
        let text = d.to_toml();
        assert!(
            text.starts_with(
                "[apis]\n[apis.buildpack]\n  deprecated = []\n  supported = [\"0.7\", "
            ),
            "{text}"
        );
        assert!(
            text.contains("[api]\n  platform = \"0.7\"\n  buildpack = \"0.7\"\n"),
            "{text}"
        );
        assert!(text.contains("supported = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\", \"0.13\", \"0.14\"]"), "{text}");
        assert_eq!(LifecycleDescriptor::parse_toml(&text, "t").unwrap(), d);
    }

    #[test]
    fn labels_round_trip_and_have_the_upstream_shape() {
        let d = LifecycleDescriptor::ours("0.1.0");
        let labels: HashMap<String, String> = d.labels().unwrap().into_iter().collect();
        assert_eq!(
            labels[LABEL_BUILDER_METADATA],
            r#"{"lifecycle":{"version":"0.1.0"},"api":{"buildpack":"0.7","platform":"0.7"}}"#
        );
        assert!(
            labels[LABEL_APIS].starts_with(r#"{"buildpack":{"deprecated":[],"supported":["0.7","#)
        );
        assert!(labels[LABEL_LIFECYCLE_METADATA].starts_with(r#"{"version":"0.1.0","api":"#));
        assert_eq!(LifecycleDescriptor::from_labels(&labels, "img").unwrap(), d);
    }

    #[test]
    fn legacy_only_descriptors_and_labels() {
        let d = LifecycleDescriptor::parse_toml(
            "[api]\nplatform = \"0.4\"\nbuildpack = \"0.2\"\n[lifecycle]\nversion = \"0.9.3\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(d.apis.platform.supported, vec!["0.4"]);
        let labels = HashMap::from([(
            LABEL_BUILDER_METADATA.to_string(),
            r#"{"lifecycle":{"version":"0.9.3"},"api":{"buildpack":"0.2","platform":"0.3"}}"#
                .to_string(),
        )]);
        let d = LifecycleDescriptor::from_labels(&labels, "img").unwrap();
        assert_eq!(
            (d.version.as_str(), d.apis.platform.supported.clone()),
            ("0.9.3", vec!["0.3".to_string()])
        );
        let err = LifecycleDescriptor::from_labels(&HashMap::new(), "img").unwrap_err();
        assert!(err.to_string().contains("no platform apis"), "{err}");
        let err = LifecycleDescriptor::parse_toml(
            "[apis.platform]\nsupported = [\"0.x\"]\n",
            "lifecycle.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("0.x"), "{err}");
    }
}
