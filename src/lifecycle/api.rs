//! Platform and Buildpack API versions: parsing and the lists this lifecycle supports.

use std::fmt;

/// Platform API versions this lifecycle implements (exact matches only, as for all 0.x APIs).
pub const PLATFORM_APIS: &[ApiVersion] = &[
    ApiVersion::new(0, 7),
    ApiVersion::new(0, 8),
    ApiVersion::new(0, 9),
    ApiVersion::new(0, 10),
    ApiVersion::new(0, 11),
    ApiVersion::new(0, 12),
    ApiVersion::new(0, 13),
    ApiVersion::new(0, 14),
];

/// Buildpack API versions this lifecycle can run.
pub const BUILDPACK_APIS: &[ApiVersion] = &[
    ApiVersion::new(0, 7),
    ApiVersion::new(0, 8),
    ApiVersion::new(0, 9),
    ApiVersion::new(0, 10),
    ApiVersion::new(0, 11),
    ApiVersion::new(0, 12),
];

/// A `major.minor` API version. Ordering is numeric, so 0.10 > 0.9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid api version {0:?}: expected <major>.<minor>")]
pub struct ParseApiError(pub String);

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Parses `v?<major>[.<minor>]`; a bare major means minor 0 (as the reference lifecycle does).
    pub fn parse(s: &str) -> Result<Self, ParseApiError> {
        let err = || ParseApiError(s.to_string());
        let body = s.strip_prefix('v').unwrap_or(s);
        let (major, minor) = match body.split_once('.') {
            Some((ma, mi)) => (ma, mi),
            None => (body, ""),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !(minor.is_empty() || digits(minor)) {
            return Err(err());
        }
        let major = major.parse().map_err(|_| err())?;
        let minor = if minor.is_empty() {
            0
        } else {
            minor.parse().map_err(|_| err())?
        };
        Ok(Self { major, minor })
    }

    /// `self` (what we implement) can serve a consumer asking for `other`: for 0.x the versions
    /// must be equal, otherwise majors match and our minor is at least theirs.
    pub fn supports(self, other: ApiVersion) -> bool {
        if self.major == 0 {
            return self == other;
        }
        self.major == other.major && self.minor >= other.minor
    }

    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= ApiVersion::new(major, minor)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Renders a supported list as "0.7, 0.8, ..." for error messages.
pub fn list(apis: &[ApiVersion]) -> String {
    apis.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Returns the supported version matching `requested`, if any.
pub fn find_supported(apis: &[ApiVersion], requested: &str) -> Option<ApiVersion> {
    let v = ApiVersion::parse(requested).ok()?;
    apis.iter().copied().find(|s| s.supports(v)).map(|_| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_reference() {
        assert_eq!(ApiVersion::parse("0.10").unwrap(), ApiVersion::new(0, 10));
        assert_eq!(ApiVersion::parse("v0.9").unwrap(), ApiVersion::new(0, 9));
        assert_eq!(ApiVersion::parse("1").unwrap(), ApiVersion::new(1, 0));
        assert!(ApiVersion::parse("0.x").is_err());
        assert!(ApiVersion::parse("").is_err());
        assert!(ApiVersion::parse("0.1.2").is_err());
    }

    #[test]
    fn zero_major_needs_exact_match() {
        assert!(find_supported(PLATFORM_APIS, "0.12").is_some());
        assert!(find_supported(PLATFORM_APIS, "0.6").is_none());
        assert!(find_supported(PLATFORM_APIS, "0.15").is_none());
        assert!(find_supported(BUILDPACK_APIS, "0.12").is_some());
        assert!(ApiVersion::new(0, 10) > ApiVersion::new(0, 9));
        assert_eq!(list(&BUILDPACK_APIS[..2]), "0.7, 0.8");
    }
}
