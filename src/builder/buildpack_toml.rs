//! `buildpack.toml` as `pack buildpack package` reads it, and the pieces of it that go into a
//! buildpackage's labels (pack's `dist.ModuleInfo`, `dist.Stack`, `dist.Target`).

use serde::{Deserialize, Serialize};

use super::resources::{BuildpackRef, BuildpackStack, OrderEntry};

/// pack's `AssumedBuildpackAPIVersion`: the API of a `buildpack.toml` without `api`.
pub const ASSUMED_API: &str = "0.1";

/// `[buildpack]` (pack's `ModuleInfo`), serialised as pack writes it into labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub homepage: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
}

/// pack's `License` has TOML tags only, so Go writes its JSON keys as `Type` and `URI`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    #[serde(default, rename(serialize = "Type"), alias = "Type")]
    pub r#type: String,
    #[serde(default, rename(serialize = "URI"), alias = "URI")]
    pub uri: String,
}

/// A target (`[[targets]]`) in the JSON shape of pack's `dist.Target` (its `specs` are not
/// read or written).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distributions: Vec<Distribution>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// A parsed and checked `buildpack.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub api: String,
    pub info: ModuleInfo,
    /// A composite (meta) buildpack's `[[order]]`; empty for a component buildpack.
    pub order: Vec<OrderEntry>,
    pub stacks: Vec<BuildpackStack>,
    pub targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    buildpack: Option<ModuleInfo>,
    #[serde(default)]
    order: Vec<RawOrder>,
    #[serde(default)]
    stacks: Vec<BuildpackStack>,
    #[serde(default)]
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
struct RawOrder {
    #[serde(default)]
    group: Vec<BuildpackRef>,
}

#[derive(Deserialize)]
struct RawTarget {
    #[serde(default)]
    os: String,
    #[serde(default)]
    arch: String,
    #[serde(default, alias = "arch-variant")]
    variant: String,
    /// The spec's spelling: `[[targets.distros]] name, version`.
    #[serde(default)]
    distros: Vec<RawDistro>,
    /// pack's own spelling: `distributions = [{name, versions}]`.
    #[serde(default)]
    distributions: Vec<RawDistribution>,
}

#[derive(Deserialize)]
struct RawDistro {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct RawDistribution {
    #[serde(default)]
    name: String,
    #[serde(default)]
    versions: Vec<String>,
}

/// `/` in an id becomes `_` in paths (`/cnb/buildpacks/<escaped id>/<version>`).
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

impl Descriptor {
    /// Parse `text` and check it as pack does, and that the id and version make safe path
    /// components; the error is the reason only.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| format!("invalid buildpack.toml: {e}"))?;
        let info = raw.buildpack.unwrap_or_default();
        if info.id.is_empty() {
            return Err("buildpack.id is required".into());
        }
        if info.version.is_empty() {
            return Err("buildpack.version is required".into());
        }
        let escaped = escape_id(&info.id);
        for (what, v) in [
            ("buildpack.id", escaped.as_str()),
            ("buildpack.version", &info.version),
        ] {
            if v == "." || v == ".." || v.contains('/') || v.contains('\0') {
                return Err(format!("{what} {v:?} is not usable as a path component"));
            }
        }
        let order: Vec<OrderEntry> = raw
            .order
            .into_iter()
            .map(|o| OrderEntry { group: o.group })
            .collect();
        for (i, o) in order.iter().enumerate() {
            if let Some(j) = o.group.iter().position(|r| r.id.is_empty()) {
                return Err(format!("order[{i}].group[{j}]: id is required"));
            }
        }
        if !order.is_empty() && (!raw.stacks.is_empty() || !raw.targets.is_empty()) {
            return Err(format!(
                "buildpack {}@{}: cannot have both targets/stacks and an order defined",
                info.id, info.version
            ));
        }
        let targets = raw
            .targets
            .into_iter()
            .map(|t| {
                let mut distributions: Vec<Distribution> = t
                    .distributions
                    .into_iter()
                    .map(|d| Distribution {
                        name: d.name,
                        versions: d.versions,
                    })
                    .collect();
                distributions.extend(t.distros.into_iter().map(|d| Distribution {
                    name: d.name,
                    versions: if d.version.is_empty() {
                        Vec::new()
                    } else {
                        vec![d.version]
                    },
                }));
                Target {
                    os: t.os,
                    arch: t.arch,
                    variant: t.variant,
                    distributions,
                }
            })
            .collect();
        Ok(Descriptor {
            api: raw.api.unwrap_or_else(|| ASSUMED_API.to_string()),
            info,
            order,
            stacks: raw.stacks,
            targets,
        })
    }

    /// `id@version`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.info.id, self.info.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_component_buildpack() {
        let d = Descriptor::parse(
            r#"api = "0.10"
[buildpack]
id = "acme/hello"
version = "1.0.0"
homepage = "https://example.com"
[[buildpack.licenses]]
type = "MIT"
[[targets]]
os = "linux"
arch = "amd64"
[[targets.distros]]
name = "debian"
version = "12"
[metadata]
anything = 1
"#,
        )
        .unwrap();
        assert_eq!(d.key(), "acme/hello@1.0.0");
        assert_eq!(escape_id(&d.info.id), "acme_hello");
        assert_eq!(
            serde_json::to_string(&d.info).unwrap(),
            r#"{"id":"acme/hello","version":"1.0.0","homepage":"https://example.com","licenses":[{"Type":"MIT","URI":""}]}"#
        );
        assert_eq!(
            serde_json::to_string(&d.targets).unwrap(),
            r#"[{"os":"linux","arch":"amd64","distributions":[{"name":"debian","versions":["12"]}]}]"#
        );
    }

    #[test]
    fn composite_and_errors() {
        let d = Descriptor::parse(
            "[buildpack]\nid = \"meta\"\nversion = \"2\"\n[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"1\"\noptional = true\n",
        )
        .unwrap();
        assert_eq!(d.api, ASSUMED_API);
        assert_eq!(d.order[0].group[0].id, "a");
        assert!(d.order[0].group[0].optional);
        let err = |t: &str| Descriptor::parse(t).unwrap_err();
        assert_eq!(
            err("[buildpack]\nversion = \"1\"\n"),
            "buildpack.id is required"
        );
        assert_eq!(
            err("[buildpack]\nid = \"a\"\n"),
            "buildpack.version is required"
        );
        assert_eq!(
            err("[buildpack]\nid = \"..\"\nversion = \"1\"\n"),
            "buildpack.id \"..\" is not usable as a path component"
        );
        assert_eq!(
            err("[buildpack]\nid = \"a\"\nversion = \"1/2\"\n"),
            "buildpack.version \"1/2\" is not usable as a path component"
        );
        assert_eq!(
            err("[buildpack]\nid = \"m\"\nversion = \"1\"\n[[stacks]]\nid = \"*\"\n[[order]]\n[[order.group]]\nid = \"a\"\n"),
            "buildpack m@1: cannot have both targets/stacks and an order defined"
        );
        assert!(err("not toml [").starts_with("invalid buildpack.toml: "));
    }
}
