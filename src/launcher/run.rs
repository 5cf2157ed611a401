//! The launch sequence (`lc:launch/launcher.go`): resolve the process, `chdir` to the app,
//! build the env, run exec.d, then exec the process directly or through bash.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::layers::{self, LayerDir};
use super::metadata::LaunchMetadata;
use super::process::{self, ResolveError, Resolved};
use super::sys::{look_path, LookPathError, Sys};
use super::{env, execd, shell};
use crate::fsutil::PathError;
use crate::lifecycle::api::ApiVersion;
use crate::lifecycle::env::Env;

/// What the launcher was started with.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub platform_api: ApiVersion,
    pub layers_dir: PathBuf,
    pub app_dir: PathBuf,
    /// The launcher's argv[0]: picks the process type and is `$0` for bash profiles.
    pub argv0: OsString,
    pub args: Vec<OsString>,
    pub environ: Vec<(OsString, OsString)>,
}

/// Why a launch failed before exec (exit 82).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("determine start command: {0}")]
    StartCommand(#[from] ResolveError),
    #[error("change to app directory: {}: {source}", path.display())]
    AppDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read layers: {0}")]
    Layers(#[from] PathError),
    #[error("exec.d: {0}")]
    ExecD(#[from] execd::ExecDError),
    #[error("process {0:?} has an empty command")]
    EmptyCommand(String),
    #[error("path lookup: {0}")]
    PathLookup(#[from] LookPathError),
    #[error("change directory: {}: {source}", path.display())]
    WorkingDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("direct exec: {}: {source}", path.display())]
    DirectExec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("process type '{process}' provided by unknown buildpack '{id}'")]
    UnknownBuildpack { process: String, id: String },
    #[error("bash exec: {source}")]
    BashExec { source: std::io::Error },
}

/// Runs the launch sequence; with the real [`Sys`] it returns only on failure.
pub fn launch(inv: &Invocation, md: &LaunchMetadata, sys: &mut dyn Sys) -> Result<(), Failure> {
    let ptype = process::type_from_argv0(&inv.argv0, md);
    let proc = process::resolve(inv.platform_api, md, ptype.as_deref(), &inv.args)?;
    sys.chdir(&inv.app_dir).map_err(|source| Failure::AppDir {
        path: inv.app_dir.clone(),
        source,
    })?;
    let bps = layers::scan(&inv.layers_dir, md, &proc.r#type)?;
    let mut env = env::base(inv.environ.iter().cloned());
    env::apply_layers(&mut env, &bps);
    for program in bps.iter().flatten().flat_map(|l| &l.execd) {
        let out = sys.run_execd(program, &env, &inv.app_dir)?;
        for (k, v) in execd::parse(program, &out)? {
            env.set(&k, v);
        }
    }
    let working_dir = if proc.working_dir.is_empty() {
        inv.app_dir.clone()
    } else {
        // A relative dir is inside the app dir: we are there already.
        PathBuf::from(&proc.working_dir)
    };
    if proc.direct {
        direct(&proc, &working_dir, &env, sys)
    } else {
        with_shell(inv, md, &bps, &proc, &working_dir, &env, sys)
    }
}

fn direct(
    proc: &Resolved,
    working_dir: &Path,
    env: &Env,
    sys: &mut dyn Sys,
) -> Result<(), Failure> {
    let first = proc
        .command
        .first()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::EmptyCommand(proc.r#type.clone()))?;
    // Looked up before the chdir, so a relative PATH entry means the app dir.
    let program = look_path(first, env.get("PATH"))?;
    sys.chdir(working_dir)
        .map_err(|source| Failure::WorkingDir {
            path: working_dir.to_path_buf(),
            source,
        })?;
    let argv: Vec<OsString> = proc.command.iter().chain(&proc.args).cloned().collect();
    sys.exec(&program, &argv, env)
        .map_err(|source| Failure::DirectExec {
            path: program,
            source,
        })
}

fn with_shell(
    inv: &Invocation,
    md: &LaunchMetadata,
    bps: &[Vec<LayerDir>],
    proc: &Resolved,
    working_dir: &Path,
    env: &Env,
    sys: &mut dyn Sys,
) -> Result<(), Failure> {
    // Only a script with args needs its buildpack's api (legacy < 0.4 never is one here), but
    // the reference still refuses a process whose buildpack is unknown.
    if !proc.args.is_empty()
        && !proc.buildpack_id.is_empty()
        && md.buildpack(&proc.buildpack_id).is_none()
    {
        return Err(Failure::UnknownBuildpack {
            process: proc.r#type.clone(),
            id: proc.buildpack_id.clone(),
        });
    }
    let mut profiles: Vec<String> = bps
        .iter()
        .flatten()
        .flat_map(|l| &l.profiles)
        .map(|p| p.display().to_string())
        .collect();
    // Sourced as a relative path; bash starts in the app dir.
    if inv
        .app_dir
        .join(".profile")
        .metadata()
        .is_ok_and(|m| !m.is_dir())
    {
        profiles.push(".profile".into());
    }
    let script = shell::script(
        &profiles,
        &working_dir.display().to_string(),
        proc.args.len(),
    );
    let argv = shell::argv(script, &inv.argv0, &proc.command, &proc.args);
    sys.exec(Path::new(shell::BASH), &argv, env)
        .map_err(|source| Failure::BashExec { source })
}
