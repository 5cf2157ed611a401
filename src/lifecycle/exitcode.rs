//! Exit codes from the platform spec (and the reference lifecycle where the spec is silent).

pub const FAILED: i32 = 1;
pub const FLAG_PARSE: i32 = 2;
pub const INVALID_ARGS: i32 = 3;
pub const INCOMPATIBLE_PLATFORM_API: i32 = 11;
pub const INCOMPATIBLE_BUILDPACK_API: i32 = 12;
/// No group passed and no buildpack errored.
pub const DETECT_FAILED: i32 = 20;
/// No group passed and at least one buildpack errored.
pub const DETECT_FAILED_WITH_ERRORS: i32 = 21;
pub const DETECT_ERROR: i32 = 22;
/// A buildpack's `bin/build` exited non-zero.
pub const BUILD_FAILED_WITH_ERRORS: i32 = 51;
/// Any other build error (bad launch.toml, SBOM validation, ...).
pub const BUILD_ERROR: i32 = 52;

pub const ANALYZE_ERROR: i32 = 32;
pub const RESTORE_ERROR: i32 = 42;
/// Image export failed (a failed cache export only warns).
pub const EXPORT_ERROR: i32 = 62;
pub const REBASE_ERROR: i32 = 72;
/// Launcher failure before the process is exec'd.
pub const LAUNCH_ERROR: i32 = 82;

/// `bin/detect` results.
pub const DETECT_PASS: i32 = 0;
pub const DETECT_FAIL: i32 = 100;
