//! `/platform/env/<NAME>` files: build env from project.toml and `PLATFORM_ENV_<NAME>`
//! variables (kpack's `SetupPlatformEnvVars`).

use std::path::Path;

use crate::fsutil::{write_atomic_with, PathError};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "invalid environment variable name {0:?}: it would be written outside the env directory"
    )]
    BadName(String),
    #[error(transparent)]
    Io(#[from] PathError),
}

/// Write one variable. Names that would leave `<platform>/env` are refused (kpack would write
/// them wherever `..` leads).
pub fn write_env(platform_dir: &Path, name: &str, value: &str) -> Result<(), EnvError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return Err(EnvError::BadName(name.to_string()));
    }
    let path = platform_dir.join("env").join(name);
    write_atomic_with(&path, |f| {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        std::io::Write::write_all(f, value.as_bytes())
    })?;
    Ok(())
}

/// Write every `PLATFORM_ENV_<X>=<v>` of `vars` as `<platform>/env/<X>`.
pub fn setup_platform_env(
    platform_dir: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), EnvError> {
    for (k, v) in vars {
        if let Some(name) = k.strip_prefix("PLATFORM_ENV_") {
            write_env(platform_dir, name, &v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ported from kpack's platform_env_vars_setup_test.
    #[test]
    fn writes_platform_env_files() {
        let t = tempfile::tempdir().unwrap();
        let vars = vec![
            ("PLATFORM_ENV_FOO".to_string(), "bar=baz".to_string()),
            ("PLATFORM_ENV_EMPTY".to_string(), String::new()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        setup_platform_env(t.path(), vars).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("env/FOO")).unwrap(),
            "bar=baz"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("env/EMPTY")).unwrap(),
            ""
        );
        assert!(!t.path().join("env/OTHER").exists());
        let names: Vec<_> = std::fs::read_dir(t.path().join("env")).unwrap().collect();
        assert_eq!(names.len(), 2);
        assert!(matches!(
            write_env(t.path(), "../escape", "x"),
            Err(EnvError::BadName(_))
        ));
    }
}
