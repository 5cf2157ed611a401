//! The launcher's side effects, behind [`Sys`] so the launch sequence can be tested without
//! replacing the test process: `chdir`, running an exec.d program, and the final exec.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::execd::{self, ExecDError};
use crate::lifecycle::env::Env;

pub trait Sys {
    fn chdir(&mut self, dir: &Path) -> io::Result<()>;
    /// Runs an exec.d program in `cwd` and returns its fd 3 output.
    fn run_execd(&mut self, program: &Path, env: &Env, cwd: &Path) -> Result<Vec<u8>, ExecDError>;
    /// Replaces the launcher with `program` (`argv[0]` as given). Returns only on failure,
    /// except in test implementations.
    fn exec(&mut self, program: &Path, argv: &[OsString], env: &Env) -> io::Result<()>;
}

/// The real system.
pub struct OsSys;

impl Sys for OsSys {
    fn chdir(&mut self, dir: &Path) -> io::Result<()> {
        std::env::set_current_dir(dir)
    }

    fn run_execd(&mut self, program: &Path, env: &Env, cwd: &Path) -> Result<Vec<u8>, ExecDError> {
        execd::run(program, env, cwd)
    }

    fn exec(&mut self, program: &Path, argv: &[OsString], env: &Env) -> io::Result<()> {
        let mut cmd = Command::new(program);
        if let Some((arg0, rest)) = argv.split_first() {
            cmd.arg0(arg0).args(rest);
        }
        // std's exec (rather than a bare execve) puts SIGPIPE back to its default, which the
        // Rust runtime had set to ignored and an exec would otherwise hand down to the app.
        Err(cmd.env_clear().envs(env.vars()).exec())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("exec: {file:?}: {reason}")]
pub struct LookPathError {
    pub file: OsString,
    pub reason: String,
}

/// Finds `file` like Go's `exec.LookPath`: a name with a `/` is used as is (relative to the
/// current dir); otherwise the first executable in `path_var` wins, and one found through a
/// relative `PATH` entry is refused.
pub fn look_path(file: &OsStr, path_var: &OsStr) -> Result<PathBuf, LookPathError> {
    let err = |reason: String| LookPathError {
        file: file.to_os_string(),
        reason,
    };
    if file.as_bytes().contains(&b'/') {
        return executable(Path::new(file))
            .map(|()| PathBuf::from(file))
            .map_err(|e| err(e.to_string()));
    }
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(file);
        if executable(&candidate).is_ok() {
            if !candidate.is_absolute() {
                return Err(err(
                    "cannot run executable found relative to current directory".into(),
                ));
            }
            return Ok(candidate);
        }
    }
    Err(err("executable file not found in $PATH".into()))
}

fn executable(p: &Path) -> io::Result<()> {
    let m = std::fs::metadata(p)?;
    if m.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if m.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn look_path_rules() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        for (p, mode) in [(a.join("tool"), 0o644), (b.join("tool"), 0o755)] {
            fs::write(&p, "").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(
            look_path(OsStr::new("tool"), OsStr::new(&path)).unwrap(),
            b.join("tool")
        );
        let e = look_path(OsStr::new("nope"), OsStr::new(&path)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        let rel = a.join("tool");
        assert!(
            look_path(rel.as_os_str(), OsStr::new("")).is_err(),
            "not executable"
        );
        let abs = b.join("tool");
        assert_eq!(look_path(abs.as_os_str(), OsStr::new("")).unwrap(), abs);
    }
}
