//! The `launcher` binary: inputs from the environment (`CNB_PLATFORM_API`, `CNB_LAYERS_DIR`,
//! `CNB_APP_DIR`), metadata.toml, then the launch. Errors are printed like the lifecycle's
//! (`ERROR: ...` on stdout) and give the spec's exit codes; after exec the app's own apply.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::metadata::LaunchMetadata;
use super::run::{launch, Invocation};
use super::sys::Sys;
use super::LaunchError;
use crate::lifecycle::cli::platform_api;
use crate::lifecycle::log::{Level, Log};

pub const DEFAULT_LAYERS_DIR: &str = "/layers";
pub const DEFAULT_APP_DIR: &str = "/workspace";

/// Runs the launcher and returns the exit code (only ever 0 with a test [`Sys`]).
pub fn main(argv: Vec<OsString>, environ: Vec<(OsString, OsString)>, sys: &mut dyn Sys) -> i32 {
    let log = Log::new(Level::Info);
    match run(argv, environ, sys, &log) {
        Ok(()) => 0,
        Err(e) => {
            log.error(&e.to_string());
            e.exit_code()
        }
    }
}

fn run(
    mut argv: Vec<OsString>,
    environ: Vec<(OsString, OsString)>,
    sys: &mut dyn Sys,
    log: &Log,
) -> Result<(), LaunchError> {
    let var = |k: &str| {
        environ
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.to_str())
            .filter(|v| !v.is_empty())
    };
    let platform = platform_api(var("CNB_PLATFORM_API"))?;
    // Absolute, so that paths stay right after the chdir to the app dir.
    let dir = |k: &str, default: &str| -> PathBuf {
        let p = Path::new(var(k).unwrap_or(default));
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    };
    let layers_dir = dir("CNB_LAYERS_DIR", DEFAULT_LAYERS_DIR);
    let app_dir = dir("CNB_APP_DIR", DEFAULT_APP_DIR);
    let md = LaunchMetadata::read(&layers_dir.join("config").join("metadata.toml"))?;
    if let Some(t) = var("CNB_PROCESS_TYPE") {
        log.warn(&format!(
            "CNB_PROCESS_TYPE is not supported in Platform API {platform}"
        ));
        log.warn(&format!(
            "Run with ENTRYPOINT '{t}' to invoke the '{t}' process type"
        ));
    }
    let argv0 = if argv.is_empty() {
        OsString::from("launcher")
    } else {
        argv.remove(0)
    };
    let inv = Invocation {
        platform_api: platform,
        layers_dir,
        app_dir,
        argv0,
        args: argv,
        environ,
    };
    launch(&inv, &md, sys)?;
    Ok(())
}
