//! The Platform API a pod runs the phases with (§1.3).

use super::context::{BuildContext, Mode};
use super::PodError;
use crate::clusterlifecycle::{negotiate, ApiSet, Apis};
use crate::lifecycle::api::{ApiVersion, PLATFORM_APIS};

/// The chosen API and how `CNB_PLATFORM_API` spells it (kpack keeps the builder's spelling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PlatformApi {
    pub version: ApiVersion,
    pub spelled: String,
}

/// kpack's `supportedPlatformAPIVersions`, in the order it tries them.
const KPACK_APIS: [ApiVersion; 3] = [
    ApiVersion::new(0, 9),
    ApiVersion::new(0, 8),
    ApiVersion::new(0, 7),
];

pub(super) fn select(ctx: &BuildContext) -> Result<PlatformApi, PodError> {
    match ctx.mode {
        Mode::Kpack => kpack(&ctx.builder.platform_apis, ctx.max_platform_api),
        Mode::Ours => ours(ctx),
    }
}

/// kpack's `highestSupportedPlatformAPI`: the first of 0.9, 0.8, 0.7 (at most `max`) that the
/// builder lists, compared as semver.
fn kpack(builder: &[String], max: Option<ApiVersion>) -> Result<PlatformApi, PodError> {
    for want in KPACK_APIS {
        if max.is_some_and(|m| want > m) {
            continue;
        }
        for v in builder {
            let parsed = semver_triple(v).ok_or_else(|| PodError::BadPlatformVersion(v.clone()))?;
            if parsed == Some((want.major.into(), want.minor.into(), 0)) {
                return Ok(PlatformApi {
                    version: want,
                    spelled: v.clone(),
                });
            }
        }
    }
    Err(PodError::UnsupportedPlatformApis(builder.join(",")))
}

/// Masterminds semver (`v?MAJOR[.MINOR[.PATCH]][-pre][+meta]`): `None` if not a version,
/// `Some(None)` for a pre-release (never equal to a release), else the numbers.
fn semver_triple(s: &str) -> Option<Option<(u64, u64, u64)>> {
    let body = s.strip_prefix('v').unwrap_or(s);
    let (body, meta) = body.split_once('+').unwrap_or((body, ""));
    let (core, pre) = body.split_once('-').unwrap_or((body, ""));
    let ident_ok = |x: &str| {
        x.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if (body.contains('-') && !ident_ok(pre)) || (s.contains('+') && !ident_ok(meta)) {
        return None;
    }
    let mut nums = [0u64; 3];
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nums[i] = p.parse().ok()?;
    }
    Some(if pre.is_empty() {
        Some((nums[0], nums[1], nums[2]))
    } else {
        None
    })
}

/// Ours: negotiate with the ClusterLifecycle's APIs, or else the builder's lifecycle's.
fn ours(ctx: &BuildContext) -> Result<PlatformApi, PodError> {
    let (what, apis) = match &ctx.lifecycle {
        Some(l) => (format!("clusterlifecycle {}", l.name), l.apis.clone()),
        None => (
            format!("builder {}", ctx.builder.resolved_image),
            Apis {
                buildpack: ApiSet::default(),
                platform: ApiSet {
                    deprecated: Vec::new(),
                    supported: ctx.builder.platform_apis.clone(),
                },
            },
        ),
    };
    let n = negotiate(&apis, PLATFORM_APIS, ctx.max_platform_api, &[])
        .map_err(|source| PodError::Negotiate { what, source })?;
    Ok(PlatformApi {
        version: n.platform,
        spelled: n.platform.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn kpack_selection() {
        let pick = |v: &[&str], max| kpack(&s(v), max).map(|p| p.spelled);
        assert_eq!(pick(&["0.7", "0.8", "0.9", "0.10"], None).unwrap(), "0.9");
        assert_eq!(
            pick(&["0.7", "0.8", "0.9"], Some(ApiVersion::new(0, 8))).unwrap(),
            "0.8"
        );
        assert_eq!(pick(&["v0.8.0"], None).unwrap(), "v0.8.0");
        assert_eq!(
            pick(&["0.2", "0.999"], None).unwrap_err().to_string(),
            "unsupported builder platform API versions: 0.2,0.999"
        );
        assert_eq!(
            pick(&["0.9-rc.1"], None).unwrap_err().to_string(),
            "unsupported builder platform API versions: 0.9-rc.1"
        );
        assert_eq!(
            pick(&["x.y"], None).unwrap_err().to_string(),
            "unexpected platform version x.y: Invalid Semantic Version"
        );
        assert!(pick(&["0.9"], Some(ApiVersion::new(0, 6))).is_err());
    }
}
