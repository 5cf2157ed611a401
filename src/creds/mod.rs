//! Credentials from kpack's secret volumes (`/var/build-secrets/<name>`): registry (docker)
//! credentials, git credentials and blob credentials, plus the registry access checks.
//!
//! Every credential remembers which secret it came from, so failures can name the secret
//! (kpack#367: users could not tell which secret or registry was wrong). Secret values never
//! appear in `Debug` output or error messages.

pub mod access;
pub mod blob;
pub mod docker;
pub mod git;

use std::io;
use std::path::Path;

/// Parse `name=value` as kpack's `strings.Split(arg, "=")` with exactly two parts.
pub fn split_secret_arg(arg: &str) -> Option<(&str, &str)> {
    let mut parts = arg.split('=');
    let (a, b) = (parts.next()?, parts.next()?);
    parts.next().is_none().then_some((a, b))
}

/// An I/O error worded as Go's `os` package words it (`open <path>: no such file or directory`),
/// which is what kpack prints.
pub fn go_io_error(op: &str, path: &Path, e: &io::Error) -> String {
    let mut msg = e.to_string();
    if let Some(i) = msg.find(" (os error") {
        msg.truncate(i);
    }
    let mut c = msg.chars();
    let msg = match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => msg,
    };
    format!("{op} {}: {msg}", path.display())
}

/// Read a secret file, as a string with Go's error wording.
pub fn read_secret_file(path: &Path, shown: &Path) -> Result<String, String> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| go_io_error("open", shown, &e))
}

/// Read an optional secret file: `None` when missing.
pub fn read_optional(path: &Path, shown: &Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(go_io_error("open", shown, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_args_and_go_errors() {
        assert_eq!(split_secret_arg("a=b"), Some(("a", "b")));
        assert_eq!(split_secret_arg("a=b=c"), None);
        assert_eq!(split_secret_arg("a"), None);
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            go_io_error("open", Path::new("/x/y"), &e),
            "open /x/y: no such file or directory"
        );
    }
}
