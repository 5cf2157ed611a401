//! The CNB launcher (`cnb-lifecycle.md` §9): picks the process (argv[0] type, user command,
//! `--`), builds its environment from the buildpacks' layers and exec.d programs, and replaces
//! itself with the process, directly or through bash. It ships in every app image, so it keeps
//! to small parts of the library: no logging framework, no HTTP, no argument parser.

pub mod cli;
pub mod env;
pub mod execd;
pub mod layers;
pub mod metadata;
pub mod process;
pub mod run;
pub mod shell;
pub mod sys;

#[cfg(test)]
mod run_tests;

use std::path::PathBuf;

use crate::fsutil::PathError;
use crate::lifecycle::api;
use crate::lifecycle::cli::CliError;
use crate::lifecycle::exitcode;

/// Any error before exec (launch-specific ones).
pub const LAUNCH_ERROR: i32 = 82;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `CNB_PLATFORM_API` unset or unsupported (exit 11).
    #[error(transparent)]
    PlatformApi(#[from] CliError),
    /// Exit 1, as `cmd.FailErr` gives in the reference launcher.
    #[error("failed to read metadata: {0}")]
    ReadMetadata(PathError),
    #[error("failed to read metadata: {}: {message}", path.display())]
    ParseMetadata { path: PathBuf, message: String },
    #[error(
        "buildpack {id:?}: buildpack api version {api:?} is incompatible with the lifecycle; supported buildpack api versions are {}",
        api::list(api::BUILDPACK_APIS)
    )]
    BuildpackApi { id: String, api: String },
    #[error("failed to launch: {0}")]
    Launch(#[from] run::Failure),
}

impl LaunchError {
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::PlatformApi(e) => e.exit_code(),
            LaunchError::ReadMetadata(_) | LaunchError::ParseMetadata { .. } => exitcode::FAILED,
            LaunchError::BuildpackApi { .. } => exitcode::INCOMPATIBLE_BUILDPACK_API,
            LaunchError::Launch(_) => LAUNCH_ERROR,
        }
    }
}
