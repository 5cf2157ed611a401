//! `<layers>/config/metadata.toml` as the launcher reads it (`cnb-lifecycle.md` §3.8): the
//! buildpacks in group order with their checked APIs, and the processes with `command` as a
//! list (an array from Platform 0.10, a single string before).

use std::path::Path;

use super::LaunchError;
use crate::export::inputs::{ConfigMetadata, ProcessToml};
use crate::fsutil::IoContext;
use crate::lifecycle::api::{self, ApiVersion};
use crate::lifecycle::launch::Process;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildpack {
    pub id: String,
    pub api: ApiVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchMetadata {
    pub buildpacks: Vec<Buildpack>,
    pub processes: Vec<Process>,
}

impl LaunchMetadata {
    pub fn read(path: &Path) -> Result<Self, LaunchError> {
        let text = std::fs::read_to_string(path)
            .at("read", path)
            .map_err(LaunchError::ReadMetadata)?;
        let config: ConfigMetadata =
            toml::from_str(&text).map_err(|e| LaunchError::ParseMetadata {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
        Self::from_config(path, config)
    }

    /// Checks every buildpack's api (exit 12). A missing api is read as 0.2, as the reference
    /// launcher does, so it is refused too.
    pub fn from_config(path: &Path, config: ConfigMetadata) -> Result<Self, LaunchError> {
        let mut buildpacks = Vec::with_capacity(config.buildpacks.len());
        for bp in config.buildpacks {
            let requested = if bp.api.is_empty() { "0.2" } else { &bp.api };
            let Some(api) = api::find_supported(api::BUILDPACK_APIS, requested) else {
                return Err(LaunchError::BuildpackApi {
                    id: bp.id,
                    api: requested.to_string(),
                });
            };
            buildpacks.push(Buildpack { id: bp.id, api });
        }
        let processes = config
            .processes
            .into_iter()
            .map(process)
            .collect::<Result<_, _>>()
            .map_err(|message| LaunchError::ParseMetadata {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(Self {
            buildpacks,
            processes,
        })
    }

    pub fn process(&self, r#type: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.r#type == r#type)
    }

    pub fn buildpack(&self, id: &str) -> Option<&Buildpack> {
        self.buildpacks.iter().find(|b| b.id == id)
    }
}

fn process(p: ProcessToml) -> Result<Process, String> {
    let bad = || {
        format!(
            "process {:?}: command must be a string or an array of strings",
            p.kind
        )
    };
    let command = match &p.command {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    Ok(Process {
        r#type: p.kind,
        command,
        args: p.args.unwrap_or_default(),
        direct: p.direct,
        default: false,
        working_dir: p.working_dir,
        exec_env: p.exec_env,
        buildpack_id: p.buildpack_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LaunchMetadata, LaunchError> {
        LaunchMetadata::from_config(Path::new("m.toml"), toml::from_str(text).unwrap())
    }

    #[test]
    fn commands_of_both_platform_dialects() {
        let md = parse(
            "[[buildpacks]]\nid = \"a/b\"\napi = \"0.8\"\n\
             [[processes]]\ntype = \"new\"\ncommand = [\"bash\", \"-c\"]\nargs = [\"x\"]\ndirect = true\nbuildpack-id = \"a/b\"\n\
             [[processes]]\ntype = \"old\"\ncommand = \"run\"\nworking-dir = \"sub\"\n",
        )
        .unwrap();
        assert_eq!(
            md.buildpacks,
            [Buildpack {
                id: "a/b".into(),
                api: ApiVersion::new(0, 8)
            }]
        );
        let new = md.process("new").unwrap();
        assert_eq!(new.command, ["bash", "-c"]);
        assert_eq!(new.args, ["x"]);
        assert!(new.direct);
        let old = md.process("old").unwrap();
        assert_eq!(old.command, ["run"]);
        assert!(old.args.is_empty() && !old.direct);
        assert_eq!(old.working_dir, "sub");
    }

    #[test]
    fn unsupported_or_missing_buildpack_api_is_exit_12() {
        for (text, api) in [
            ("[[buildpacks]]\nid = \"x\"\napi = \"0.3\"\n", "0.3"),
            ("[[buildpacks]]\nid = \"x\"\n", "0.2"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.exit_code(), 12);
            assert_eq!(
                e.to_string(),
                format!("buildpack \"x\": buildpack api version {api:?} is incompatible with the lifecycle; supported buildpack api versions are 0.7, 0.8, 0.9, 0.10, 0.11, 0.12")
            );
        }
    }

    #[test]
    fn bad_command_type_is_reported() {
        let e = parse("[[processes]]\ntype = \"w\"\ncommand = 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to read metadata: m.toml: process \"w\": command must be a string or an array of strings"
        );
        assert_eq!(e.exit_code(), 1);
    }
}
