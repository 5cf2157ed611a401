//! The `detector` phase: read order.toml, run detection, write group.toml and plan.toml.

use std::sync::Arc;

use crate::fsutil::PathError;

use super::buildpack_toml::LookupError;
use super::cli::Inputs;
use super::detect::{BuildpackStore, DetectError, Detector};
use super::env::{read_env_dir, Env};
use super::exec::{Invocation, ProcessDetectRunner};
use super::exitcode as code;
use super::log::Log;
use super::order::{read_order, render_group};
use super::output::write_file;
use super::store::DirStore;
use super::target::{read_analyzed_target, RunTarget};
use super::tomlr::TomlError;
use super::user::RunAs;

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("read order: {0}")]
    Order(TomlError),
    #[error("verify buildpack: {0}")]
    Verify(LookupError),
    #[error("read analyzed metadata: {0}")]
    Analyzed(TomlError),
    #[error("read env dir {}: {source}", path.display())]
    EnvDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("create scratch dir for detection: {source}")]
    Scratch { source: std::io::Error },
    #[error("detect: {0}")]
    Detect(DetectError),
    #[error("write detect output: {0}")]
    Write(PathError),
}

impl DetectorError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DetectorError::Verify(e) | DetectorError::Detect(DetectError::Lookup(e))
                if e.is_unsupported_api() =>
            {
                code::INCOMPATIBLE_BUILDPACK_API
            }
            DetectorError::Detect(DetectError::NoGroupPassed { errored: true }) => {
                code::DETECT_FAILED_WITH_ERRORS
            }
            DetectorError::Detect(DetectError::NoGroupPassed { errored: false }) => {
                code::DETECT_FAILED
            }
            DetectorError::Detect(DetectError::Lookup(_)) => code::DETECT_ERROR,
            _ => code::FAILED,
        }
    }
}

/// The build target: analyzed.toml's run image (Platform API >= 0.12), completed from the
/// build container. A missing analyzed.toml is a warning, as in the reference lifecycle.
pub fn build_target(inputs: &Inputs, log: &Log) -> Result<RunTarget, TomlError> {
    let mut t = RunTarget::default();
    if inputs.platform_api.at_least(0, 12) {
        match read_analyzed_target(&inputs.analyzed)? {
            Some(a) => t = a,
            None => log.warn(&format!(
                "no run image target in {}; using the build container's",
                inputs.analyzed.display()
            )),
        }
    }
    let os_release = std::fs::read_to_string("/etc/os-release").ok();
    Ok(t.filled(os_release.as_deref()))
}

pub fn invocation(inputs: &Inputs, target: RunTarget) -> Result<Invocation, DetectorError> {
    let env_dir = |p: std::path::PathBuf| {
        read_env_dir(&p).map_err(|source| DetectorError::EnvDir { path: p, source })
    };
    Ok(Invocation {
        app: inputs.app.clone(),
        platform: inputs.platform.clone(),
        platform_env: env_dir(inputs.platform.join("env"))?,
        build_config_env: match &inputs.build_config {
            Some(b) => env_dir(b.join("env"))?,
            None => Vec::new(),
        },
        target,
        exec_env: inputs.exec_env.clone(),
        run_as: RunAs::from_env(inputs.uid, inputs.gid),
    })
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), DetectorError> {
    let order = read_order(&inputs.order).map_err(DetectorError::Order)?;
    let mut store = DirStore::new(inputs.buildpacks.clone());
    // Every top-level element must exist with a supported api before anything runs.
    for e in order.iter().flatten() {
        store
            .lookup(&e.id, &e.version)
            .map_err(DetectorError::Verify)?;
    }
    let target = build_target(inputs, log).map_err(DetectorError::Analyzed)?;
    let check = inputs.platform_api.at_least(0, 12).then(|| target.clone());
    let inv = Arc::new(invocation(inputs, target)?);
    let mut base = Env::scrubbed(std::env::vars_os());
    inv.run_as.adjust_env(&mut base);
    let runner = ProcessDetectRunner::new(inv.clone(), base)
        .map_err(|source| DetectorError::Scratch { source })?;
    let mut det = Detector::new(&mut store, &runner, check);
    let result = det.detect(&order);
    let report = std::mem::take(&mut det.report);
    let detected = match result {
        Ok(d) => d,
        Err(e) => {
            // Users must see why nothing passed: replay what every buildpack said.
            if matches!(e, DetectError::NoGroupPassed { .. }) {
                for line in &report {
                    log.info(line);
                }
                log.error("No buildpack groups passed detection.");
                log.error("please check that you are running against the correct path.");
            }
            return Err(DetectorError::Detect(e));
        }
    };
    for line in &report {
        log.debug(line);
    }
    let plan = detected.plan.render();
    let group = render_group(&detected.group);
    write_file(&inputs.plan, plan.as_bytes(), &inv.run_as).map_err(DetectorError::Write)?;
    write_file(&inputs.group, group.as_bytes(), &inv.run_as).map_err(DetectorError::Write)?;
    log.info(&format!(
        "{} of {} buildpacks participating",
        detected.group.len(),
        detected.considered
    ));
    let width = detected.group.iter().map(|g| g.id.len()).max().unwrap_or(0);
    for g in &detected.group {
        log.info(&format!("{:<width$} {}", g.id, g.version));
    }
    Ok(())
}
