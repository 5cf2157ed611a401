//! Writing phase outputs: atomically (never half-written), world-readable, owned by the build
//! user so later phases running as that user can read and replace them.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fsutil::{self, IoContext, PathError};

use super::user::RunAs;

pub fn write_file(path: &Path, contents: &[u8], run_as: &RunAs) -> Result<(), PathError> {
    fsutil::write_atomic_with(path, |f| {
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(contents)
    })?;
    run_as.give(path).at("chown", path)
}

/// `mkdir -p` handing each created dir to the build user.
pub fn create_dir(path: &Path, run_as: &RunAs) -> Result<(), PathError> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dir(parent, run_as)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => run_as.give(path).at("chown", path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(PathError::new("create directory", path, e)),
    }
}
