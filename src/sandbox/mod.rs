//! Running one container on this machine, with no container engine: the embedded sandbox
//! (namespaces + overlay + pivot_root, [`embedded`]) or `runc` with a generated bundle
//! ([`runc`]). Both start from the same [`Spec`].
//!
//! The caller spawns this binary again as `sandbox-init` ([`INIT_COMMAND`]): a fresh,
//! single-threaded process is the only safe place to unshare, fork and set up mounts, and its
//! private mount namespace takes the overlay with it when the run ends, even on Ctrl-C.

pub mod embedded;
pub mod init;
pub mod runc;
pub mod spec;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

pub use spec::{Mount, Spec, User};

/// The hidden subcommand of `buildpod` (and argv[0] name) that runs one container.
pub const INIT_COMMAND: &str = "sandbox-init";

/// How a container is isolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Embedded,
    Runc,
}

impl std::str::FromStr for Runtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "embedded" => Ok(Runtime::Embedded),
            "runc" => Ok(Runtime::Runc),
            _ => Err(format!("unknown runtime {s:?} (want embedded or runc)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("container {id}: write {}: {source}", path.display())]
    Write {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: start {}: {source}", program.display())]
    Spawn {
        id: String,
        program: PathBuf,
        source: std::io::Error,
    },
}

/// Starts containers by spawning `program sandbox-init`.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// This binary (`std::env::current_exe()` in the CLI; the built binary in tests).
    pub program: PathBuf,
    pub runtime: Runtime,
}

impl Sandbox {
    /// The process that runs `spec` (not yet spawned): set its stdio, then spawn and wait.
    /// Its exit status is the container's (128+N when the container died of signal N).
    pub fn command(&self, spec: &Spec) -> Result<Command, SandboxError> {
        // sandbox-init changes directory and runc reads paths relative to its bundle: hand it
        // absolute paths.
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let spec = &Spec {
            scratch: absolute(&spec.scratch),
            layers: spec.layers.iter().map(|l| absolute(l)).collect(),
            ..spec.clone()
        };
        let path = spec.scratch.join("spec.json");
        let json = serde_json::to_vec_pretty(spec).map_err(|e| SandboxError::Write {
            id: spec.id.clone(),
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::fsutil::write_atomic(&path, &json).map_err(|e| SandboxError::Write {
            id: spec.id.clone(),
            path: path.clone(),
            source: e.source,
        })?;
        let mut cmd = Command::new(&self.program);
        cmd.arg(INIT_COMMAND)
            .arg(match self.runtime {
                Runtime::Embedded => "embedded",
                Runtime::Runc => "runc",
            })
            .arg(&path)
            .env_clear()
            .env("PATH", spec::DEFAULT_PATH)
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Run `spec` with inherited stdout/stderr and wait.
    pub fn run(&self, spec: &Spec) -> Result<ExitStatus, SandboxError> {
        let mut cmd = self.command(spec)?;
        cmd.status().map_err(|source| SandboxError::Spawn {
            id: spec.id.clone(),
            program: self.program.clone(),
            source,
        })
    }
}
