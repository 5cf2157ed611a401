//! kpack's fixed paths, redirectable into a temp root for tests.
//!
//! Every path is kpack's constant prefixed by `$BUILDPOD_ROOT` when that is set, so tests can run
//! the real binaries against a scratch tree without touching `/workspace` and friends.

use std::path::{Path, PathBuf};

/// The environment variable that moves every fixed path under another root.
pub const ROOT_ENV: &str = "BUILDPOD_ROOT";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// kpack's real paths (`/workspace`, ...).
    pub fn kpack() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// Everything under `root`.
    pub fn under(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$BUILDPOD_ROOT` if set, else kpack's paths.
    pub fn from_env() -> Self {
        match std::env::var_os(ROOT_ENV) {
            Some(r) if !r.is_empty() => Self::under(r),
            _ => Self::kpack(),
        }
    }

    /// Whether these are the real pod paths (mount checks only make sense then).
    pub fn is_kpack(&self) -> bool {
        self.root == Path::new("/")
    }

    /// kpack's absolute path `abs` under our root.
    pub fn at(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub fn workspace(&self) -> PathBuf {
        self.at("/workspace")
    }
    pub fn platform(&self) -> PathBuf {
        self.at("/platform")
    }
    pub fn builder_home(&self) -> PathBuf {
        self.at("/builder/home")
    }
    pub fn docker_config(&self) -> PathBuf {
        self.at("/builder/home/.docker/config.json")
    }
    pub fn build_secrets(&self) -> PathBuf {
        self.at("/var/build-secrets")
    }
    pub fn cosign_secrets(&self) -> PathBuf {
        self.at("/var/build-secrets/cosign")
    }
    pub fn registry_source_pull_secrets(&self) -> PathBuf {
        self.at("/registrySourcePullSecrets")
    }
    pub fn project_metadata_dir(&self) -> PathBuf {
        self.at("/projectMetadata")
    }
    pub fn layers(&self) -> PathBuf {
        self.at("/layers")
    }
    pub fn report(&self) -> PathBuf {
        self.at("/var/report/report.toml")
    }
    pub fn notary(&self) -> PathBuf {
        self.at("/var/notary/v1")
    }

    /// What a path looks like in messages: kpack's path, not our redirected one, so logs match
    /// kpack's byte for byte.
    pub fn shown(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) if !self.is_kpack() => format!("/{}", rel.display()),
            _ => p.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_shows_kpack_paths() {
        let p = Paths::under("/tmp/r");
        assert_eq!(p.workspace(), PathBuf::from("/tmp/r/workspace"));
        assert_eq!(p.shown(&p.workspace()), "/workspace");
        let k = Paths::kpack();
        assert_eq!(
            k.docker_config(),
            PathBuf::from("/builder/home/.docker/config.json")
        );
        assert_eq!(k.shown(&k.report()), "/var/report/report.toml");
    }
}
