//! The phase driver (pure): for a negotiated Platform API and a build's parameters, the
//! command, arguments and environment of each phase — analyze, detect, restore, build, export —
//! as the lifecycle expects them. Used by the pod generator and the local runner.
//!
//! The arguments are kpack's (`kpack-build-pod.md` §1.7: identical for Platform 0.7–0.9), with
//! the paths taken from the parameters. Optional parameters add the flags each Platform API
//! defines for them (`cnb-lifecycle.md` §4): `run.toml` is passed with `-run` from 0.12 (the
//! restorer from 0.14) and `stack.toml` with `-stack` below 0.12, so the same parameters serve
//! every API; asking for what an API cannot do (an OCI layout before 0.12, insecure registries
//! before 0.13, a build config dir before 0.11) is an error. Flags are `-name=value`, before the
//! positional image names, as Go's flag package requires.

use std::path::{Path, PathBuf};

use crate::lifecycle::api::{self, ApiVersion, PLATFORM_APIS};

/// A phase of a build, in the order they run (Platform ≥ 0.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Analyze,
    Detect,
    Restore,
    Build,
    Export,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Analyze,
        Phase::Detect,
        Phase::Restore,
        Phase::Build,
        Phase::Export,
    ];

    /// The container name kpack gives the phase.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Analyze => "analyze",
            Phase::Detect => "detect",
            Phase::Restore => "restore",
            Phase::Build => "build",
            Phase::Export => "export",
        }
    }

    /// The binary under the lifecycle directory.
    pub fn binary(self) -> &'static str {
        match self {
            Phase::Analyze => "analyzer",
            Phase::Detect => "detector",
            Phase::Restore => "restorer",
            Phase::Build => "builder",
            Phase::Export => "exporter",
        }
    }
}

/// The cache of a build (kpack §1.8).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Cache {
    #[default]
    None,
    /// A volume: `-cache-dir` on restore and export.
    Dir(PathBuf),
    /// A registry image: analyze and restore read `previous` (the digest of the last build's
    /// cache) or else `tag`; export always writes `tag`.
    Image {
        tag: String,
        previous: Option<String>,
    },
}

/// Everything the phases are run with. [`BuildParams::kpack`] gives kpack's paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildParams {
    /// The output image first, then additional tags.
    pub tags: Vec<String>,
    /// May be empty from Platform 0.12 when `run_toml` names the run image.
    pub run_image: String,
    pub previous_image: Option<String>,
    pub cache: Cache,
    pub process_type: Option<String>,
    /// Unix seconds for the image's `created` (kpack's `spec.creationTime`).
    pub source_date_epoch: Option<i64>,
    /// The build user (analyze, restore and export take it as flags; kpack uses the builder's
    /// `CNB_USER_ID`/`CNB_GROUP_ID` env instead and leaves these unset).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Where the lifecycle binaries are (`/cnb/lifecycle`).
    pub lifecycle_dir: PathBuf,
    pub layers_dir: PathBuf,
    pub app_dir: PathBuf,
    pub platform_dir: PathBuf,
    /// `HOME` for analyze, restore and export.
    pub home: Option<String>,
    /// `SERVICE_BINDING_ROOT` for analyze and build.
    pub service_binding_root: Option<String>,
    pub report: PathBuf,
    pub project_metadata: PathBuf,
    /// `run.toml` (Platform ≥ 0.12).
    pub run_toml: Option<PathBuf>,
    /// `stack.toml` (Platform < 0.12).
    pub stack_toml: Option<PathBuf>,
    pub order: Option<PathBuf>,
    pub buildpacks_dir: Option<PathBuf>,
    /// Operator env dir (Platform ≥ 0.11).
    pub build_config_dir: Option<PathBuf>,
    pub launcher: Option<PathBuf>,
    /// Read and write images in this OCI layout directory instead of a registry (≥ 0.12).
    pub layout_dir: Option<PathBuf>,
    /// Registries reached over plain HTTP (≥ 0.13).
    pub insecure_registries: Vec<String>,
    pub log_level: Option<String>,
}

impl BuildParams {
    /// kpack's build pod: `/layers`, `/workspace`, `/platform`, `/builder/home`, bindings under
    /// `/platform/bindings`, the report in `/var/report`.
    pub fn kpack(tags: Vec<String>, run_image: &str) -> Self {
        Self {
            tags,
            run_image: run_image.to_string(),
            previous_image: None,
            cache: Cache::None,
            process_type: None,
            source_date_epoch: None,
            uid: None,
            gid: None,
            lifecycle_dir: PathBuf::from("/cnb/lifecycle"),
            layers_dir: PathBuf::from(DEFAULT_LAYERS),
            app_dir: PathBuf::from("/workspace"),
            platform_dir: PathBuf::from(DEFAULT_PLATFORM),
            home: Some("/builder/home".to_string()),
            service_binding_root: Some("/platform/bindings".to_string()),
            report: PathBuf::from("/var/report/report.toml"),
            project_metadata: PathBuf::from("/layers/project-metadata.toml"),
            run_toml: None,
            stack_toml: None,
            order: None,
            buildpacks_dir: None,
            build_config_dir: None,
            launcher: None,
            layout_dir: None,
            insecure_registries: Vec::new(),
            log_level: None,
        }
    }
}

/// The lifecycle's own defaults: flags equal to them are left out, as kpack does.
const DEFAULT_LAYERS: &str = "/layers";
const DEFAULT_PLATFORM: &str = "/platform";

/// One phase to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub phase: Phase,
    /// `<lifecycle_dir>/<binary>`.
    pub command: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("platform api {api} is not supported by buildpod (supported: {supported})")]
    UnsupportedApi { api: ApiVersion, supported: String },
    #[error("{what} needs platform api {min} or newer, not {api}")]
    TooOld {
        what: &'static str,
        min: ApiVersion,
        api: ApiVersion,
    },
    #[error("invalid build parameters: {0}")]
    Invalid(&'static str),
}

/// The five phases for Platform API `api`.
pub fn plan(api: ApiVersion, p: &BuildParams) -> Result<Vec<Invocation>, DriverError> {
    if !PLATFORM_APIS.contains(&api) {
        return Err(DriverError::UnsupportedApi {
            api,
            supported: api::list(PLATFORM_APIS),
        });
    }
    validate(api, p)?;
    Ok(Phase::ALL
        .iter()
        .map(|&phase| Invocation {
            phase,
            command: p.lifecycle_dir.join(phase.binary()),
            args: args(phase, api, p),
            env: env(phase, api, p),
        })
        .collect())
}

fn validate(api: ApiVersion, p: &BuildParams) -> Result<(), DriverError> {
    let need = |what, min: ApiVersion| {
        if api < min {
            Err(DriverError::TooOld { what, min, api })
        } else {
            Ok(())
        }
    };
    if p.tags.is_empty() || p.tags.iter().any(String::is_empty) {
        return Err(DriverError::Invalid("an output image tag is required"));
    }
    if p.run_image.is_empty() && (api < ApiVersion::new(0, 12) || p.run_toml.is_none()) {
        return Err(DriverError::Invalid(
            "a run image is required (or run.toml from platform api 0.12)",
        ));
    }
    if p.layout_dir.is_some() {
        need("exporting to an oci layout", ApiVersion::new(0, 12))?;
    }
    if !p.insecure_registries.is_empty() {
        need("insecure registries", ApiVersion::new(0, 13))?;
    }
    if p.build_config_dir.is_some() {
        need("a build config directory", ApiVersion::new(0, 11))?;
    }
    Ok(())
}

fn flag(name: &str, value: impl std::fmt::Display) -> String {
    format!("-{name}={value}")
}

fn in_layers(p: &BuildParams, file: &str) -> PathBuf {
    p.layers_dir.join(file)
}

fn args(phase: Phase, api: ApiVersion, p: &BuildParams) -> Vec<String> {
    let mut a = Vec::new();
    let group = flag("group", in_layers(p, "group.toml").display());
    let plan = flag("plan", in_layers(p, "plan.toml").display());
    let analyzed = flag("analyzed", in_layers(p, "analyzed.toml").display());
    let layers = flag("layers", p.layers_dir.display());
    let app = flag("app", p.app_dir.display());
    match phase {
        Phase::Analyze => {
            a.extend([layers, analyzed]);
            if !p.run_image.is_empty() {
                a.push(flag("run-image", &p.run_image));
            }
            a.extend(cache_args(phase, &p.cache));
            a.extend(p.tags[1..].iter().map(|t| flag("tag", t)));
            if let Some(prev) = p.previous_image.as_deref().filter(|s| !s.is_empty()) {
                a.push(flag("previous-image", prev));
            }
        }
        Phase::Detect => {
            a.extend([app, group, plan]);
            if p.layers_dir != Path::new(DEFAULT_LAYERS) {
                a.push(layers);
            }
        }
        Phase::Restore => {
            a.extend([group, layers]);
            a.extend(cache_args(phase, &p.cache));
            a.push(analyzed);
        }
        Phase::Build => a.extend([layers, app, group, plan]),
        Phase::Export => {
            a.extend([layers, app, group, analyzed]);
            a.push(flag("project-metadata", p.project_metadata.display()));
            a.extend(cache_args(phase, &p.cache));
            if let Some(t) = p.process_type.as_deref().filter(|s| !s.is_empty()) {
                a.push(flag("process-type", t));
            }
            a.push(flag("report", p.report.display()));
        }
    }
    a.extend(extra_args(phase, api, p));
    match phase {
        Phase::Analyze => a.push(p.tags[0].clone()),
        Phase::Export => a.extend(p.tags.iter().cloned()),
        _ => {}
    }
    a
}

fn cache_args(phase: Phase, cache: &Cache) -> Vec<String> {
    match (cache, phase) {
        (Cache::Dir(d), Phase::Restore | Phase::Export) => vec![flag("cache-dir", d.display())],
        (Cache::Image { tag, previous }, Phase::Analyze | Phase::Restore) => {
            let read = previous.as_deref().filter(|s| !s.is_empty()).unwrap_or(tag);
            vec![flag("cache-image", read)]
        }
        (Cache::Image { tag, .. }, Phase::Export) => vec![flag("cache-image", tag)],
        _ => vec![],
    }
}

/// Flags for optional parameters, gated by the API that defines them.
fn extra_args(phase: Phase, api: ApiVersion, p: &BuildParams) -> Vec<String> {
    use Phase::*;
    let at_least = |minor| api >= ApiVersion::new(0, minor);
    let registry_phase = matches!(phase, Analyze | Restore | Export);
    let mut a = Vec::new();
    if let Some(l) = &p.log_level {
        a.push(flag("log-level", l));
    }
    if registry_phase {
        if let Some(u) = p.uid {
            a.push(flag("uid", u));
        }
        if let Some(g) = p.gid {
            a.push(flag("gid", g));
        }
    }
    if matches!(phase, Detect | Build) {
        if p.platform_dir != Path::new(DEFAULT_PLATFORM) {
            a.push(flag("platform", p.platform_dir.display()));
        }
        if let Some(b) = &p.buildpacks_dir {
            a.push(flag("buildpacks", b.display()));
        }
        if let Some(b) = &p.build_config_dir {
            a.push(flag("build-config", b.display()));
        }
    }
    if phase == Detect {
        if let Some(o) = &p.order {
            a.push(flag("order", o.display()));
        }
    }
    let run_min = if phase == Restore { 14 } else { 12 };
    if let Some(r) = &p.run_toml {
        if phase != Build && at_least(run_min) {
            a.push(flag("run", r.display()));
        }
    }
    if let Some(s) = &p.stack_toml {
        if matches!(phase, Analyze | Export) && !at_least(12) {
            a.push(flag("stack", s.display()));
        }
    }
    if registry_phase {
        if let Some(d) = &p.layout_dir {
            a.push("-layout".to_string());
            a.push(flag("layout-dir", d.display()));
        }
        for r in &p.insecure_registries {
            a.push(flag("insecure-registry", r));
        }
    }
    if phase == Export {
        if let Some(l) = &p.launcher {
            a.push(flag("launcher", l.display()));
        }
    }
    a
}

/// kpack's env per phase; entries with an empty value are dropped (its `envs()` helper).
fn env(phase: Phase, api: ApiVersion, p: &BuildParams) -> Vec<(String, String)> {
    let mut e: Vec<(&str, String)> = Vec::new();
    let home = || ("HOME", p.home.clone().unwrap_or_default());
    let platform = ("CNB_PLATFORM_API", api.to_string());
    let bindings = || {
        (
            "SERVICE_BINDING_ROOT",
            p.service_binding_root.clone().unwrap_or_default(),
        )
    };
    match phase {
        Phase::Analyze => e.extend([home(), platform, bindings()]),
        Phase::Detect => e.push(platform),
        Phase::Restore => e.extend([home(), platform]),
        Phase::Build => e.extend([platform, bindings()]),
        Phase::Export => {
            e.extend([home(), platform]);
            if let Some(t) = p.source_date_epoch {
                e.push(("SOURCE_DATE_EPOCH", t.to_string()));
            }
            e.push(("CNB_RUN_IMAGE", p.run_image.clone()));
        }
    }
    e.into_iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
