//! The `creator` phase (`cnb-lifecycle.md` §4.6): analyze, detect, restore, build and export in
//! one process, for local use. Credentials are resolved before privileges drop; then the process
//! becomes the build user (with its HOME and USER) and runs each phase with its own exit codes.

use super::cli::{Inputs, Phase};
use super::images::resolve_credentials_once;
use super::log::Log;
use super::phase_error::PhaseError;
use super::{analyzer, builder, detector, exitcode, exporter, privs, restorer, user};

fn as_phase(inputs: &Inputs, phase: Phase) -> Inputs {
    let mut i = inputs.clone();
    i.phase = phase;
    i
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), PhaseError> {
    if inputs.daemon {
        return Err(PhaseError::new(
            exitcode::FAILED,
            "creating images in a docker daemon (-daemon) is not supported yet by this lifecycle; use a registry or -layout",
        ));
    }
    resolve_credentials_once().map_err(|e| PhaseError::new(exitcode::FAILED, e.to_string()))?;
    let owned: Vec<&std::path::Path> = inputs
        .cache_dir
        .as_deref()
        .into_iter()
        .chain(inputs.launch_cache.as_deref())
        .chain(std::iter::once(inputs.layers.as_path()))
        .collect();
    let fail = |e: std::io::Error| PhaseError::new(exitcode::FAILED, e.to_string());
    // Made while still root, so the build user owns it after ensure_owner.
    if let Some(dir) = &inputs.cache_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            PhaseError::new(
                exitcode::FAILED,
                format!("create cache dir {}: {e}", dir.display()),
            )
        })?;
    }
    privs::ensure_owner(inputs.uid, inputs.gid, &owned).map_err(fail)?;
    privs::run_as(inputs.uid, inputs.gid).map_err(fail)?;
    set_user_env(inputs.uid);

    // Errors carry the failing phase's verb, as the dispatcher prints them for single phases.
    fn verb(v: &'static str) -> impl Fn(PhaseError) -> PhaseError {
        move |e| PhaseError::new(e.code, format!("failed to {v}: {e}"))
    }
    log.info("===> ANALYZING");
    analyzer::run(&as_phase(inputs, Phase::Analyzer), log).map_err(verb("analyze"))?;
    log.info("===> DETECTING");
    detector::run(&as_phase(inputs, Phase::Detector), log)
        .map_err(|e| PhaseError::new(e.exit_code(), format!("failed to detect: {e}")))?;
    log.info("===> RESTORING");
    restorer::run(&as_phase(inputs, Phase::Restorer), log).map_err(verb("restore"))?;
    log.info("===> BUILDING");
    builder::run(&as_phase(inputs, Phase::Builder), log)
        .map_err(|e| PhaseError::new(e.exit_code(), format!("failed to build: {e}")))?;
    log.info("===> EXPORTING");
    exporter::run(&as_phase(inputs, Phase::Exporter), log).map_err(verb("export"))
}

/// `SetEnvironmentForUser`: HOME and USER of the build user from /etc/passwd (read by hand;
/// a static binary has no NSS). Runs before any phase starts a thread.
fn set_user_env(uid: u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    if let Some((user, home)) = user::passwd_entry(uid, &passwd) {
        std::env::set_var("USER", user);
        std::env::set_var("HOME", home);
    }
}
