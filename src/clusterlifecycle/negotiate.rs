//! Platform API negotiation between a lifecycle, this platform and a builder's buildpacks (pure).

use super::descriptor::{ApiSet, Apis};
use crate::lifecycle::api::{self, ApiVersion};

/// One buildpack of a builder and the Buildpack API it declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildpackApi {
    pub id: String,
    pub version: String,
    pub api: String,
}

/// The outcome of a negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The Platform API to run the phases with (`CNB_PLATFORM_API`).
    pub platform: ApiVersion,
    /// The lifecycle lists it as deprecated only.
    pub deprecated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiateError {
    #[error(
        "no common platform api version: lifecycle supports {lifecycle}; buildpod supports {ours}{max}"
    )]
    NoCommonPlatform {
        lifecycle: String,
        ours: String,
        max: String,
    },
    #[error("lifecycle does not support the buildpack api of {buildpacks}; lifecycle supports buildpack apis {lifecycle}")]
    UnsupportedBuildpacks {
        buildpacks: String,
        lifecycle: String,
    },
    #[error("invalid {what} {value:?}: want <major>.<minor>")]
    Invalid { what: String, value: String },
}

/// Pick the highest Platform API that the lifecycle accepts (supported or deprecated), that we
/// implement (`ours`) and that is at most `max`; then check that the lifecycle accepts every
/// buildpack's API. 0.x versions match exactly; from 1.0 a lifecycle at 1.n accepts 1.0–1.n.
pub fn negotiate(
    lifecycle: &Apis,
    ours: &[ApiVersion],
    max: Option<ApiVersion>,
    buildpacks: &[BuildpackApi],
) -> Result<Negotiated, NegotiateError> {
    let supported = parse(&lifecycle.platform.supported, "lifecycle platform api")?;
    let deprecated = parse(&lifecycle.platform.deprecated, "lifecycle platform api")?;
    let accepts = |list: &[ApiVersion], v: ApiVersion| list.iter().any(|l| l.supports(v));
    let platform = ours
        .iter()
        .copied()
        .filter(|v| max.is_none_or(|m| *v <= m))
        .filter(|v| accepts(&supported, *v) || accepts(&deprecated, *v))
        .max()
        .ok_or_else(|| NegotiateError::NoCommonPlatform {
            lifecycle: show(&lifecycle.platform),
            ours: api::list(ours),
            max: max.map(|m| format!(" up to {m}")).unwrap_or_default(),
        })?;

    let mut bp_apis = parse(&lifecycle.buildpack.supported, "lifecycle buildpack api")?;
    bp_apis.extend(parse(
        &lifecycle.buildpack.deprecated,
        "lifecycle buildpack api",
    )?);
    let mut refused = Vec::new();
    for bp in buildpacks {
        let v = ApiVersion::parse(&bp.api).map_err(|_| NegotiateError::Invalid {
            what: format!("buildpack api of {}@{}", bp.id, bp.version),
            value: bp.api.clone(),
        })?;
        if !accepts(&bp_apis, v) {
            refused.push(format!("{}@{} (api {})", bp.id, bp.version, bp.api));
        }
    }
    if !refused.is_empty() {
        return Err(NegotiateError::UnsupportedBuildpacks {
            buildpacks: refused.join(", "),
            lifecycle: show(&lifecycle.buildpack),
        });
    }
    Ok(Negotiated {
        platform,
        deprecated: !accepts(&supported, platform),
    })
}

fn parse(v: &[String], what: &str) -> Result<Vec<ApiVersion>, NegotiateError> {
    v.iter()
        .map(|s| {
            ApiVersion::parse(s).map_err(|_| NegotiateError::Invalid {
                what: what.to_string(),
                value: s.clone(),
            })
        })
        .collect()
}

/// "0.7, 0.8 (deprecated: 0.6)" or "none".
fn show(set: &ApiSet) -> String {
    let mut s = if set.supported.is_empty() {
        "none".to_string()
    } else {
        set.supported.join(", ")
    };
    if !set.deprecated.is_empty() {
        s.push_str(&format!(" (deprecated: {})", set.deprecated.join(", ")));
    }
    s
}
