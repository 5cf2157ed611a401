//! The controller's settings: kpack's controller env (`BUILD_INIT_IMAGE`, `COMPLETION_IMAGE`,
//! `REBASE_IMAGE`, `BUILD_WAITER_IMAGE`, `MAXIMUM_PLATFORM_API_VERSION`,
//! `INSECURE_SSH_TRUST_UNKNOWN_HOSTS`, `INJECTED_SIDECAR_SUPPORT`) plus ours (`BUILDPOD_POD_MODE`).

use crate::lifecycle::api::ApiVersion;
use crate::pod::{BuildPodImages, Mode};

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub images: BuildPodImages,
    pub max_platform_api: Option<ApiVersion>,
    pub ssh_trust_unknown_host: bool,
    pub mode: Mode,
    /// Registries the builder image may be read from over plain HTTP.
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required (the image of kpack's {1} step)")]
    MissingImage(&'static str, &'static str),
    #[error("MAXIMUM_PLATFORM_API_VERSION {0:?}: want <major>.<minor>[.<patch>]")]
    MaxPlatform(String),
    #[error("BUILDPOD_POD_MODE {0:?}: want kpack or buildpod")]
    Mode(String),
    #[error("not supported yet: INJECTED_SIDECAR_SUPPORT=true (the controller does not mark sidecars ready or stop them)")]
    Sidecars,
}

impl Config {
    /// From `get(name)` (the process env in `cmd/controller`). Flags given on the command line
    /// are passed in as env values by the caller.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let image = |name: &'static str, step: &'static str| {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::MissingImage(name, step))
        };
        let images = BuildPodImages {
            build_init: image("BUILD_INIT_IMAGE", "prepare")?,
            completion: image("COMPLETION_IMAGE", "completion")?,
            rebase: image("REBASE_IMAGE", "rebase")?,
            build_waiter: get("BUILD_WAITER_IMAGE").unwrap_or_default(),
        };
        let max_platform_api = match get("MAXIMUM_PLATFORM_API_VERSION").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(parse_max(&v).ok_or(ConfigError::MaxPlatform(v))?),
        };
        // kpack's flaghelpers.GetEnvBool: empty or invalid means the default (true).
        let ssh_trust_unknown_host = !matches!(
            get("INSECURE_SSH_TRUST_UNKNOWN_HOSTS").as_deref(),
            Some("false" | "0" | "f" | "F" | "FALSE" | "False")
        );
        if matches!(
            get("INJECTED_SIDECAR_SUPPORT").as_deref(),
            Some("true" | "1" | "t" | "T" | "TRUE" | "True")
        ) {
            return Err(ConfigError::Sidecars);
        }
        let mode = match get("BUILDPOD_POD_MODE").as_deref().unwrap_or("") {
            "" | "kpack" => Mode::Kpack,
            "buildpod" | "ours" => Mode::Ours,
            other => return Err(ConfigError::Mode(other.to_string())),
        };
        let insecure_registries = get("BUILDPOD_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(Self {
            images,
            max_platform_api,
            ssh_trust_unknown_host,
            mode,
            insecure_registries,
        })
    }
}

/// Masterminds semver as kpack's controller parses it, kept to major.minor.
fn parse_max(v: &str) -> Option<ApiVersion> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    if let Some(patch) = parts.next() {
        patch.parse::<u64>().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(ApiVersion::new(major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const IMAGES: [(&str, &str); 3] = [
        ("BUILD_INIT_IMAGE", "reg/build-init@sha256:1"),
        ("COMPLETION_IMAGE", "reg/completion@sha256:2"),
        ("REBASE_IMAGE", "reg/rebase@sha256:3"),
    ];

    #[test]
    fn kpack_env() {
        let mut e = IMAGES.to_vec();
        e.push(("MAXIMUM_PLATFORM_API_VERSION", "0.8"));
        e.push(("INSECURE_SSH_TRUST_UNKNOWN_HOSTS", "false"));
        let c = Config::from_lookup(env(&e)).unwrap();
        assert_eq!(c.images.completion, "reg/completion@sha256:2");
        assert_eq!(c.max_platform_api, Some(ApiVersion::new(0, 8)));
        assert!(!c.ssh_trust_unknown_host);
        assert_eq!(c.mode, Mode::Kpack);
        let c = Config::from_lookup(env(&IMAGES)).unwrap();
        assert!(c.ssh_trust_unknown_host);
        assert_eq!(c.max_platform_api, None);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Config::from_lookup(env(&IMAGES[1..]))
                .unwrap_err()
                .to_string(),
            "BUILD_INIT_IMAGE is required (the image of kpack's prepare step)"
        );
        let mut e = IMAGES.to_vec();
        e.push(("MAXIMUM_PLATFORM_API_VERSION", "zero"));
        assert_eq!(
            Config::from_lookup(env(&e)).unwrap_err().to_string(),
            "MAXIMUM_PLATFORM_API_VERSION \"zero\": want <major>.<minor>[.<patch>]"
        );
        let mut e = IMAGES.to_vec();
        e.push(("INJECTED_SIDECAR_SUPPORT", "true"));
        assert!(matches!(
            Config::from_lookup(env(&e)),
            Err(ConfigError::Sidecars)
        ));
        let mut e = IMAGES.to_vec();
        e.push(("BUILDPOD_POD_MODE", "buildpod"));
        assert_eq!(Config::from_lookup(env(&e)).unwrap().mode, Mode::Ours);
    }
}
