//! Files a buildpack writes in its layers dir (`launch.toml`, `build.toml`, `store.toml`,
//! `<layer>.toml`) and the `<layers>/config/metadata.toml` the builder hands the exporter.

use std::path::Path;

use super::api::ApiVersion;
use super::order::GroupEntry;
use super::tomlr::{self, Fields, TomlError};
use super::tomlw::Tbl;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub r#type: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub direct: bool,
    pub default: bool,
    pub working_dir: String,
    pub exec_env: Vec<String>,
    pub buildpack_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchToml {
    pub labels: Vec<Label>,
    pub processes: Vec<Process>,
    pub slices: Vec<Slice>,
    /// Legacy `[[bom]]` entries, passed through to `sbom.legacy.json`.
    pub bom: Vec<toml::Value>,
}

/// Process types are `[A-Za-z0-9._-]+` (they become file names under /cnb/process).
pub fn valid_process_type(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Reads launch.toml with the rules of the buildpack's API: `command` is a string with an
/// optional `direct` before 0.9, an array (always direct, `direct` forbidden) from 0.9;
/// `working-dir` from 0.8; `exec-env` from 0.12. Warnings go to `warn`.
pub fn read_launch_toml(
    path: &Path,
    api: ApiVersion,
    bp_id: &str,
    warn: &mut Vec<String>,
) -> Result<LaunchToml, TomlError> {
    let table = tomlr::read(path)?;
    let root = Fields::root(path, &table);
    let mut out = LaunchToml::default();
    for (i, t) in root.tables("labels")?.into_iter().enumerate() {
        out.labels.push(root.child(&format!("labels[{i}]"), t, |f| {
            Ok(Label {
                key: f.req_str("key")?,
                value: f.str_or_empty("value")?,
            })
        })?);
    }
    for (i, t) in root.tables("processes")?.into_iter().enumerate() {
        let p = root.child(&format!("processes[{i}]"), t, |f| {
            read_process(&f, api, bp_id, warn)
        })?;
        if p.default && out.processes.iter().any(|q| q.default) {
            return Err(root.err(
                &format!("processes[{i}].default"),
                "only one process may be the default",
            ));
        }
        out.processes.push(p);
    }
    for (i, t) in root.tables("slices")?.into_iter().enumerate() {
        out.slices.push(root.child(&format!("slices[{i}]"), t, |f| {
            Ok(Slice {
                paths: f.str_array("paths")?,
            })
        })?);
    }
    if let Some(toml::Value::Array(b)) = root.get("bom") {
        warn.push(format!("{}: [[bom]] is deprecated", path.display()));
        out.bom = b.clone();
    }
    Ok(out)
}

fn read_process(
    f: &Fields<'_>,
    api: ApiVersion,
    bp_id: &str,
    warn: &mut Vec<String>,
) -> Result<Process, TomlError> {
    let r#type = f.req_str("type")?;
    if !valid_process_type(&r#type) {
        return Err(f.err(
            "type",
            format!("{type:?} may only contain letters, digits, '.', '_' and '-'"),
        ));
    }
    let (command, direct) = if api.at_least(0, 9) {
        if f.has("direct") {
            return Err(f.err("direct", "is not supported by buildpack api 0.9 and later"));
        }
        if matches!(f.get("command"), Some(toml::Value::String(_))) {
            return Err(f.err(
                "command",
                "must be an array of strings for buildpack api 0.9 and later",
            ));
        }
        (f.str_array("command")?, true)
    } else {
        if matches!(f.get("command"), Some(toml::Value::Array(_))) {
            return Err(f.err("command", "must be a string before buildpack api 0.9"));
        }
        (f.str("command")?.into_iter().collect(), f.bool("direct")?)
    };
    if command.first().is_none_or(String::is_empty) {
        return Err(f.err("command", "is required"));
    }
    let mut working_dir = f.str_or_empty("working-dir")?;
    if !working_dir.is_empty() && !api.at_least(0, 8) {
        warn.push(format!(
            "Warning: process {type:?} of {bp_id}: working-dir needs buildpack api 0.8 or later; ignored"
        ));
        working_dir.clear();
    }
    Ok(Process {
        r#type,
        command,
        args: f.str_array("args")?,
        direct,
        default: f.bool("default")?,
        working_dir,
        exec_env: if api.at_least(0, 12) {
            f.str_array("exec-env")?
        } else {
            Vec::new()
        },
        buildpack_id: bp_id.to_string(),
    })
}

/// build.toml: names this buildpack did not satisfy (they stay in the plan for later ones).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildToml {
    pub unmet: Vec<String>,
    pub bom: Vec<toml::Value>,
}

pub fn read_build_toml(path: &Path) -> Result<BuildToml, TomlError> {
    let table = tomlr::read(path)?;
    let root = Fields::root(path, &table);
    let mut out = BuildToml::default();
    for (i, t) in root.tables("unmet")?.into_iter().enumerate() {
        out.unmet
            .push(root.child(&format!("unmet[{i}]"), t, |f| f.req_str("name"))?);
    }
    if let Some(toml::Value::Array(b)) = root.get("bom") {
        out.bom = b.clone();
    }
    Ok(out)
}

/// store.toml: free-form `[metadata]` kept across builds (exported as image metadata).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreToml {
    pub metadata: toml::Table,
}

impl StoreToml {
    pub fn read(path: &Path) -> Result<Self, TomlError> {
        let table = tomlr::read(path)?;
        let root = Fields::root(path, &table);
        Ok(Self {
            metadata: root.table("metadata")?.cloned().unwrap_or_default(),
        })
    }

    pub fn render(&self) -> String {
        Tbl::new()
            .table("metadata", Tbl::from_toml(&self.metadata))
            .render()
    }
}

/// `<layers>/<bp>/<layer>.toml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerToml {
    pub launch: bool,
    pub build: bool,
    pub cache: bool,
    pub metadata: toml::Table,
}

impl LayerToml {
    pub fn read(path: &Path) -> Result<Self, TomlError> {
        let table = tomlr::read(path)?;
        Self::from_table(path, &table)
    }

    pub fn from_table(path: &Path, table: &toml::Table) -> Result<Self, TomlError> {
        let root = Fields::root(path, table);
        // Buildpack API < 0.6 put the types at the top level; now they must be in [types].
        for k in ["launch", "build", "cache"] {
            if root.has(k) {
                return Err(root.err(k, format!("must be set in [types] (types.{k})")));
            }
        }
        let mut l = LayerToml {
            metadata: root.table("metadata")?.cloned().unwrap_or_default(),
            ..LayerToml::default()
        };
        if let Some(t) = root.table("types")? {
            root.child("types", t, |f| {
                l.launch = f.bool("launch")?;
                l.build = f.bool("build")?;
                l.cache = f.bool("cache")?;
                Ok(())
            })?;
        }
        Ok(l)
    }
}

/// `<layers>/config/metadata.toml` contents written by the builder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildMetadata {
    pub buildpacks: Vec<GroupEntry>,
    pub labels: Vec<Label>,
    /// Sorted by type.
    pub processes: Vec<Process>,
    pub slices: Vec<Slice>,
    pub default_process: String,
}

impl BuildMetadata {
    /// Platform API >= 0.10 gets `command` as an array; older platforms a string, with the
    /// extra command words moved in front of `args`.
    pub fn render(&self, platform: ApiVersion) -> String {
        let procs = self
            .processes
            .iter()
            .map(|p| {
                let t = Tbl::new().str("type", &p.r#type);
                let (t, args) = if platform.at_least(0, 10) {
                    (t.strs("command", &p.command), p.args.clone())
                } else {
                    let first = p.command.first().cloned().unwrap_or_default();
                    let mut args: Vec<String> = p.command.iter().skip(1).cloned().collect();
                    args.extend(p.args.iter().cloned());
                    (t.str("command", first), args)
                };
                t.strs_opt("args", &args)
                    .bool("direct", p.direct)
                    .str("buildpack-id", &p.buildpack_id)
                    .str_opt("working-dir", &p.working_dir)
                    .strs_opt("exec-env", &p.exec_env)
            })
            .collect();
        Tbl::new()
            .str_opt("buildpack-default-process-type", &self.default_process)
            .tables(
                "buildpacks",
                self.buildpacks.iter().map(GroupEntry::to_tbl).collect(),
            )
            .tables_opt(
                "labels",
                self.labels
                    .iter()
                    .map(|l| Tbl::new().str("key", &l.key).str("value", &l.value))
                    .collect(),
            )
            .tables_opt("processes", procs)
            .tables_opt(
                "slices",
                self.slices
                    .iter()
                    .map(|s| Tbl::new().strs("paths", &s.paths))
                    .collect(),
            )
            .render()
    }
}

/// Parses what an exec.d program wrote to fd 3: flat `NAME = "value"` pairs.
pub fn parse_execd_output(path: &Path, text: &str) -> Result<Vec<(String, String)>, TomlError> {
    let table = tomlr::parse(path, text)?;
    let root = Fields::root(path, &table);
    table
        .keys()
        .map(|k| Ok((k.clone(), root.str_or_empty(k)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(api: ApiVersion, text: &str) -> Result<LaunchToml, TomlError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("launch.toml");
        std::fs::write(&p, text).unwrap();
        read_launch_toml(&p, api, "bp", &mut Vec::new())
    }

    #[test]
    fn process_dialects() {
        let old = launch(
            ApiVersion::new(0, 8),
            "[[processes]]\ntype = \"web\"\ncommand = \"run\"\nargs = [\"a\"]\ndirect = true\n",
        )
        .unwrap();
        assert_eq!(old.processes[0].command, ["run"]);
        assert!(old.processes[0].direct);
        let new = launch(
            ApiVersion::new(0, 9),
            "[[processes]]\ntype = \"web\"\ncommand = [\"run\", \"x\"]\n",
        )
        .unwrap();
        assert!(new.processes[0].direct);
        let e = launch(
            ApiVersion::new(0, 9),
            "[[processes]]\ntype = \"web\"\ncommand = [\"run\"]\ndirect = false\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("field `processes[0].direct`"), "{e}");
        let e = launch(
            ApiVersion::new(0, 9),
            "[[processes]]\ntype = \"web\"\ncommand = \"run\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("`processes[0].command`"), "{e}");
        let e = launch(
            ApiVersion::new(0, 10),
            "[[processes]]\ntype = \"a\"\ncommand = [\"x\"]\ndefault = true\n[[processes]]\ntype = \"b\"\ncommand = [\"x\"]\ndefault = true\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("`processes[1].default`"), "{e}");
    }

    #[test]
    fn layer_types_must_be_in_types_table() {
        let p = Path::new("/l/x.toml");
        let t = tomlr::parse(p, "launch = true\n").unwrap();
        let e = LayerToml::from_table(p, &t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/l/x.toml: field `launch`: must be set in [types] (types.launch)"
        );
        let t = tomlr::parse(p, "[types]\nbuild = 1\n").unwrap();
        let e = LayerToml::from_table(p, &t).unwrap_err();
        assert!(
            e.to_string().contains("`types.build`: expected a boolean"),
            "{e}"
        );
    }

    #[test]
    fn execd_output_is_flat_strings() {
        let p = Path::new("fd3");
        let got = parse_execd_output(p, "A = \"1\"\nB = \"x y\"\n").unwrap();
        assert_eq!(
            got,
            [
                ("A".to_string(), "1".to_string()),
                ("B".into(), "x y".into())
            ]
        );
        let e = parse_execd_output(p, "A = 1\n").unwrap_err();
        assert!(
            e.to_string().contains("field `A`: expected a string"),
            "{e}"
        );
    }

    #[test]
    fn metadata_command_by_platform() {
        let m = BuildMetadata {
            processes: vec![Process {
                r#type: "web".into(),
                command: vec!["bash".into(), "-c".into()],
                args: vec!["run".into()],
                direct: true,
                buildpack_id: "bp".into(),
                ..Process::default()
            }],
            ..BuildMetadata::default()
        };
        assert!(m
            .render(ApiVersion::new(0, 10))
            .contains("command = [\"bash\", \"-c\"]\n  args = [\"run\"]"));
        assert!(m
            .render(ApiVersion::new(0, 9))
            .contains("command = \"bash\"\n  args = [\"-c\", \"run\"]"));
    }
}
