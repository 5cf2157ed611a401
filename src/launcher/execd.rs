//! exec.d programs (`cnb-lifecycle.md` §3.15, §9.3): each runs with the launch env so far,
//! in the app dir, with the launcher's stdout and stderr; fd 3 is the write end of a pipe
//! whose contents, flat TOML `NAME = "value"`, override variables before the next one runs.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lifecycle::env::Env;
use crate::lifecycle::launch::parse_execd_output;
use crate::lifecycle::tomlr::TomlError;

#[derive(Debug, thiserror::Error)]
pub enum ExecDError {
    #[error("run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exited with {status}", path.display())]
    Failed {
        path: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("read output of {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("output of {}: {source}", path.display())]
    Output { path: PathBuf, source: TomlError },
}

/// Parses what `program` wrote to fd 3.
pub fn parse(program: &Path, out: &[u8]) -> Result<Vec<(String, String)>, ExecDError> {
    let output_err = |source| ExecDError::Output {
        path: program.to_path_buf(),
        source,
    };
    let text = std::str::from_utf8(out).map_err(|e| {
        output_err(TomlError::Syntax {
            path: PathBuf::from("fd 3"),
            message: format!("not UTF-8: {e}"),
        })
    })?;
    parse_execd_output(Path::new("fd 3"), text).map_err(output_err)
}

/// Runs `program` and returns what it wrote to fd 3. The pipe is read to its end before the
/// exit status counts, so a program that writes much is never blocked.
pub fn run(program: &Path, env: &Env, cwd: &Path) -> Result<Vec<u8>, ExecDError> {
    let spawn_err = |source| ExecDError::Spawn {
        path: program.to_path_buf(),
        source,
    };
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
    let write_fd = write.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(env.vars())
        .current_dir(cwd)
        .stdin(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec. The pipe is close-on-exec,
    // so fd 3 gets a plain duplicate; if it already is fd 3 the flag is cleared instead.
    unsafe {
        cmd.pre_exec(move || {
            let rc = if write_fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(write_fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(write);
    let mut out = Vec::new();
    let read_result = std::fs::File::from(read).read_to_end(&mut out);
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        return Err(ExecDError::Failed {
            path: program.to_path_buf(),
            status,
        });
    }
    read_result.map_err(|source| ExecDError::Read {
        path: program.to_path_buf(),
        source,
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("prog");
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn fd3_output_env_and_cwd() {
        let d = tempfile::tempdir().unwrap();
        let mut env = Env::default();
        env.set("PATH", "/usr/bin:/bin");
        env.set("IN", "from-env");
        let p = script(
            d.path(),
            "echo \"A = \\\"$IN\\\"\" >&3\necho \"B = \\\"$(pwd)\\\"\" >&3\n",
        );
        let out = run(&p, &env, d.path()).unwrap();
        let pairs = parse(&p, &out).unwrap();
        let cwd = d.path().canonicalize().unwrap().display().to_string();
        assert_eq!(pairs, [("A".into(), "from-env".into()), ("B".into(), cwd)]);
    }

    #[test]
    fn failures_name_the_program() {
        let d = tempfile::tempdir().unwrap();
        let env = Env::default();
        let p = script(d.path(), "exit 3\n");
        let e = run(&p, &env, d.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} exited with exit status: 3", p.display())
        );
        let e = parse(&p, b"A = 1\n").unwrap_err();
        assert!(
            e.to_string().contains("field `A`: expected a string"),
            "{e}"
        );
    }
}
