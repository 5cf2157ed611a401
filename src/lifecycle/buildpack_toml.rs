//! `buildpack.toml`: the descriptor of a component or composite buildpack.

use std::path::{Path, PathBuf};

use super::api::{self, ApiVersion};
use super::order::{read_order_groups, OrderEntry};
use super::target::{Distro, Target};
use super::tomlr::{self, Fields, TomlError};

#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error(transparent)]
    Toml(#[from] TomlError),
    #[error(
        "{}: field `api`: buildpack api {api:?} is not supported; supported versions are {}",
        path.display(),
        api::list(api::BUILDPACK_APIS)
    )]
    UnsupportedApi { path: PathBuf, api: String },
}

/// Looking a buildpack up by id and version in the buildpacks dir.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("buildpack {id}@{version} not found: {} does not exist", path.display())]
    NotFound {
        id: String,
        version: String,
        path: PathBuf,
    },
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
}

impl LookupError {
    /// An unsupported Buildpack API has its own exit code.
    pub fn is_unsupported_api(&self) -> bool {
        matches!(
            self,
            LookupError::Descriptor(DescriptorError::UnsupportedApi { .. })
        )
    }
}

/// `<buildpacks>/<id with / as _>/<version>`, as builder images lay buildpacks out.
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildpackDescriptor {
    /// The directory holding `buildpack.toml` (`CNB_BUILDPACK_DIR`).
    pub dir: PathBuf,
    pub api: ApiVersion,
    /// The api as written, copied into group.toml.
    pub api_str: String,
    pub id: String,
    pub version: String,
    pub name: String,
    pub homepage: String,
    pub clear_env: bool,
    pub sbom_formats: Vec<String>,
    pub exec_env: Vec<String>,
    /// Non-empty for composite (meta) buildpacks.
    pub order: Vec<Vec<OrderEntry>>,
    /// After `[[stacks]]` translation; empty matches any target.
    pub targets: Vec<Target>,
}

impl BuildpackDescriptor {
    pub fn is_composite(&self) -> bool {
        !self.order.is_empty()
    }

    /// `<id>@<version>`, as the logs and memo keys spell it.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    pub fn read(dir: &Path) -> Result<Self, DescriptorError> {
        let path = dir.join("buildpack.toml");
        let table = tomlr::read(&path)?;
        let bin_build_exists = dir.join("bin").join("build").exists();
        Self::from_table(dir, &path, &table, bin_build_exists)
    }

    pub fn from_table(
        dir: &Path,
        path: &Path,
        table: &toml::Table,
        bin_build_exists: bool,
    ) -> Result<Self, DescriptorError> {
        let root = Fields::root(path, table);
        let api_str = root.req_str("api")?;
        let api = api::find_supported(api::BUILDPACK_APIS, &api_str).ok_or_else(|| {
            DescriptorError::UnsupportedApi {
                path: path.to_path_buf(),
                api: api_str.clone(),
            }
        })?;
        let bp = root
            .table("buildpack")?
            .ok_or_else(|| root.err("buildpack", "is required"))?;
        let mut d = root.child("buildpack", bp, |f| {
            let id = f.req_str("id")?;
            validate_id(&id).map_err(|reason| f.err("id", reason))?;
            Ok(BuildpackDescriptor {
                dir: dir.to_path_buf(),
                api,
                api_str: api_str.clone(),
                version: f.req_str("version")?,
                id,
                name: f.str_or_empty("name")?,
                homepage: f.str_or_empty("homepage")?,
                clear_env: f.bool("clear-env")?,
                sbom_formats: f.str_array("sbom-formats")?,
                exec_env: exec_env(&f)?,
                order: Vec::new(),
                targets: Vec::new(),
            })
        })?;
        d.order = read_order_groups(&root, "order")?;
        d.targets = read_targets(&root)?;
        let stacks = read_stack_ids(&root)?;
        if !d.is_composite() {
            d.targets = infer_targets(d.targets, &stacks, api, bin_build_exists);
        }
        Ok(d)
    }
}

/// Ids are `[A-Za-z0-9./-]`, and a few names are reserved for lifecycle-owned layer dirs.
pub fn validate_id(id: &str) -> Result<(), String> {
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-'))
    {
        return Err(format!(
            "{id:?} may only contain letters, digits, '.', '/' and '-'"
        ));
    }
    if ["app", "config", "generated", "sbom"].contains(&id) {
        return Err(format!("{id:?} is reserved"));
    }
    Ok(())
}

/// The spec writes `[[buildpack.exec-env]] name = ..`; the reference lifecycle reads an array of
/// strings. Accept both so buildpacks written against either work.
fn exec_env(f: &Fields<'_>) -> Result<Vec<String>, TomlError> {
    match f.get("exec-env") {
        Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_table) => {
            let mut out = Vec::new();
            for (i, t) in f.tables("exec-env")?.into_iter().enumerate() {
                out.push(f.child(&format!("exec-env[{i}]"), t, |g| g.req_str("name"))?);
            }
            Ok(out)
        }
        _ => f.str_array("exec-env"),
    }
}

fn read_targets(root: &Fields<'_>) -> Result<Vec<Target>, TomlError> {
    let mut out = Vec::new();
    for (i, t) in root.tables("targets")?.into_iter().enumerate() {
        out.push(root.child(&format!("targets[{i}]"), t, |f| {
            // The spec says `variant`, the reference lifecycle `arch-variant`: accept either.
            let arch_variant = match f.str("arch-variant")? {
                Some(v) => v,
                None => f.str_or_empty("variant")?,
            };
            let mut distros = Vec::new();
            for (j, d) in f.tables("distros")?.into_iter().enumerate() {
                distros.push(f.child(&format!("distros[{j}]"), d, |g| {
                    Ok(Distro {
                        name: g.str_or_empty("name")?,
                        version: g.str_or_empty("version")?,
                    })
                })?);
            }
            Ok(Target {
                os: f.str_or_empty("os")?,
                arch: f.str_or_empty("arch")?,
                arch_variant,
                distros,
            })
        })?);
    }
    Ok(out)
}

fn read_stack_ids(root: &Fields<'_>) -> Result<Vec<String>, TomlError> {
    let mut out = Vec::new();
    for (i, t) in root.tables("stacks")?.into_iter().enumerate() {
        out.push(root.child(&format!("stacks[{i}]"), t, |f| f.req_str("id"))?);
    }
    Ok(out)
}

const BIONIC: &str = "io.buildpacks.stacks.bionic";

/// Targets for buildpacks that declare none: translate legacy `[[stacks]]` (bionic and `*`),
/// else a buildpack with `bin/build` is assumed to be for linux on any arch.
pub fn infer_targets(
    targets: Vec<Target>,
    stacks: &[String],
    api: ApiVersion,
    bin_build_exists: bool,
) -> Vec<Target> {
    if !targets.is_empty() {
        return targets;
    }
    let mut out = Vec::new();
    for s in stacks {
        if s == BIONIC && (api.at_least(0, 10) || stacks.len() == 1) {
            out.push(Target {
                os: "linux".into(),
                arch: "amd64".into(),
                arch_variant: String::new(),
                distros: vec![Distro {
                    name: "ubuntu".into(),
                    version: "18.04".into(),
                }],
            });
        } else if s == "*" {
            out.push(Target::default());
        }
    }
    if out.is_empty() && bin_build_exists {
        out.push(Target {
            os: "linux".into(),
            ..Target::default()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BuildpackDescriptor, DescriptorError> {
        let p = Path::new("/bp/buildpack.toml");
        let t = tomlr::parse(p, text)?;
        BuildpackDescriptor::from_table(Path::new("/bp"), p, &t, true)
    }

    #[test]
    fn stacks_translate_to_targets() {
        let d = parse("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n").unwrap();
        assert_eq!(d.targets[0].os, "linux");
        assert_eq!(d.targets[0].distros[0].version, "18.04");
        let d = parse("api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[stacks]]\nid = \"io.buildpacks.stacks.jammy\"\n").unwrap();
        assert_eq!(
            d.targets,
            vec![Target {
                os: "linux".into(),
                ..Target::default()
            }]
        );
        let d = parse(
            "api = \"0.7\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n[[stacks]]\nid = \"*\"\n",
        )
        .unwrap();
        assert_eq!(d.targets, vec![Target::default()]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("api = \"0.10\"\n[buildpack]\nversion = \"1\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/bp/buildpack.toml: field `buildpack.id`: is required"
        );
        let e = parse("api = \"0.3\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\n").unwrap_err();
        assert!(matches!(e, DescriptorError::UnsupportedApi { .. }), "{e}");
        let e = parse(
            "api = \"0.10\"\n[buildpack]\nid = \"a\"\nversion = \"1\"\nclear-env = \"yes\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("`buildpack.clear-env`: expected a boolean"),
            "{e}"
        );
        let e = parse("api = \"0.10\"\n[buildpack]\nid = \"a b\"\nversion = \"1\"\n").unwrap_err();
        assert!(e.to_string().contains("`buildpack.id`"), "{e}");
    }
}
