//! The build pod (pure): a kpack `Build` plus what the controller (or the local runner) knows
//! about its builder, secrets and bindings, turned into the `Pod` that runs it
//! (`kpack-build-pod.md` §1), and the pod's state turned back into Build status (§7.3).
//!
//! Two modes: [`Mode::Kpack`] reproduces kpack's pod (Platform API 0.7–0.9, kpack's images);
//! [`Mode::Ours`] negotiates the Platform API up to 0.14, adds resources to every container,
//! keeps init-container log tails as termination messages, and can mount a ClusterLifecycle's
//! binaries at `/cnb/lifecycle`. Both pass PodSecurity `restricted` ([`check_restricted`]).

pub mod build;
pub mod context;
pub mod error;
mod generate;
mod platform;
mod rebase;
mod secrets;
pub mod security;
mod sidecar;
pub mod status;

#[cfg(test)]
mod context_tests;
#[cfg(test)]
mod generate_tests;
#[cfg(test)]
mod ours_tests;
#[cfg(test)]
mod status_tests;
#[cfg(test)]
mod test_support;

pub use build::Build;
pub use context::{
    build_bindings, build_secrets, builder_config, Binding, BuildContext, BuildPodImages,
    BuilderConfig, LifecycleMount, Mode,
};
pub use error::PodError;
pub use generate::build_pod;
pub use security::{check_restricted, Violation};
pub use status::{build_status, failed_status, StatusError, StepLogs};

/// Container names (the controller keys step states on them).
pub const PREPARE: &str = "prepare";
pub const LIFECYCLE: &str = "lifecycle";
pub const ANALYZE: &str = "analyze";
pub const DETECT: &str = "detect";
pub const RESTORE: &str = "restore";
pub const BUILD: &str = "build";
pub const EXPORT: &str = "export";
pub const REBASE: &str = "rebase";
pub const COMPLETION: &str = "completion";
pub const PRE_START: &str = "pre-start";

/// Every step name, in the order they run (kpack's `buildSteps`, plus our `lifecycle`).
pub const STEPS: &[&str] = &[
    PREPARE, LIFECYCLE, ANALYZE, DETECT, RESTORE, BUILD, EXPORT, REBASE, COMPLETION,
];

/// Commands of kpack's images (`/cnb/process/<name>`, as its pack-built images and ours).
pub const PREPARE_COMMAND: &str = "/cnb/process/build-init";
pub const COMPLETION_COMMAND: &str = "/cnb/process/completion";
pub const REBASE_COMMAND: &str = "/cnb/process/rebase";
/// Our build-init image carries the multi-call binary here (`images/build-pod`).
pub const BUILDPOD_COMMAND: &str = "/usr/local/bin/buildpod";

/// Paths inside the pod.
pub const TERMINATION_MESSAGE_PATH: &str = "/tmp/termination-log";
pub const REPORT_PATH: &str = "/var/report/report.toml";
pub const SECRETS_DIR: &str = "/var/build-secrets";
pub const LIFECYCLE_DIR: &str = "/cnb/lifecycle";
