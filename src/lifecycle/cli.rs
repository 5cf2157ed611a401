//! Phase command lines: Go `flag` rules (`-flag v`, `-flag=v`, `--flag`, parsing stops at the
//! first positional), flag > `CNB_*` env > default, and flags gated by Platform API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::api::{self, ApiVersion};
use super::exitcode;
use super::log::Level;
use crate::goflag::{parse_bool, scan, FlagType, ScanError, Scanned};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Analyzer,
    Detector,
    Restorer,
    Builder,
    Exporter,
    Creator,
    Rebaser,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Analyzer => "analyzer",
            Phase::Detector => "detector",
            Phase::Restorer => "restorer",
            Phase::Builder => "builder",
            Phase::Exporter => "exporter",
            Phase::Creator => "creator",
            Phase::Rebaser => "rebaser",
        }
    }

    /// How many `<image>` arguments the phase takes: (min, max).
    fn positional(self) -> (usize, usize) {
        match self {
            Phase::Analyzer | Phase::Creator => (1, 1),
            Phase::Exporter | Phase::Rebaser => (1, usize::MAX),
            _ => (0, 0),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CliError {
    #[error(
        "please set 'CNB_PLATFORM_API'; supported platform api versions are {}",
        api::list(api::PLATFORM_APIS)
    )]
    PlatformApiUnset,
    #[error("platform api version {v:?} is incompatible with the lifecycle; supported platform api versions are {list}", v = .0, list = api::list(api::PLATFORM_APIS))]
    PlatformApiUnsupported(String),
    #[error("{0}")]
    Flag(String),
    #[error("{0}")]
    Args(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::PlatformApiUnset | CliError::PlatformApiUnsupported(_) => {
                exitcode::INCOMPATIBLE_PLATFORM_API
            }
            CliError::Flag(_) => exitcode::FLAG_PARSE,
            CliError::Args(_) => exitcode::INVALID_ARGS,
        }
    }
}

/// Resolved inputs of a phase. Fields a phase has no flag for keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub phase: Phase,
    pub platform_api: ApiVersion,
    pub app: PathBuf,
    pub buildpacks: PathBuf,
    /// Platform API >= 0.11 only.
    pub build_config: Option<PathBuf>,
    pub group: PathBuf,
    pub layers: PathBuf,
    pub order: PathBuf,
    pub plan: PathBuf,
    pub platform: PathBuf,
    pub analyzed: PathBuf,
    pub log_level: Level,
    pub uid: u32,
    pub gid: u32,
    pub exec_env: String,
    /// Positional `<image>` arguments: the output image, then extra tags.
    pub images: Vec<String>,
    /// Repeatable `-tag`.
    pub tags: Vec<String>,
    pub previous_image: Option<String>,
    pub run_image: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub cache_image: Option<String>,
    pub launch_cache: Option<PathBuf>,
    pub skip_layers: bool,
    pub run_path: PathBuf,
    pub stack_path: PathBuf,
    pub report: PathBuf,
    pub project_metadata: PathBuf,
    pub launcher: PathBuf,
    pub launcher_sbom: PathBuf,
    pub process_type: Option<String>,
    pub parallel: bool,
    pub daemon: bool,
    pub layout: bool,
    pub layout_dir: Option<PathBuf>,
    pub insecure_registries: Vec<String>,
    pub force: bool,
    pub build_image: Option<String>,
    pub generated: PathBuf,
    pub extended: PathBuf,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<Inputs>),
    Version,
    Help(String),
}

/// Reads and checks `CNB_PLATFORM_API` (exit 11 when unset or unsupported).
pub fn platform_api(value: Option<&str>) -> Result<ApiVersion, CliError> {
    let v = value
        .filter(|v| !v.is_empty())
        .ok_or(CliError::PlatformApiUnset)?;
    api::find_supported(api::PLATFORM_APIS, v)
        .ok_or_else(|| CliError::PlatformApiUnsupported(v.to_string()))
}

/// (flag, env var, is bool, minimum Platform API, maximum Platform API (exclusive))
type FlagSpec = (
    &'static str,
    Option<&'static str>,
    bool,
    ApiVersion,
    ApiVersion,
);

const fn v(minor: u32) -> ApiVersion {
    ApiVersion::new(0, minor)
}

const ANY: ApiVersion = ApiVersion::new(u32::MAX, 0);

const fn flag(name: &'static str, env: &'static str, min: u32) -> FlagSpec {
    (name, Some(env), false, v(min), ANY)
}

const fn boolean(name: &'static str, env: &'static str, min: u32) -> FlagSpec {
    (name, Some(env), true, v(min), ANY)
}

/// A flag with no environment variable.
const fn bare(name: &'static str, min: u32) -> FlagSpec {
    (name, None, false, v(min), ANY)
}

/// A flag removed at Platform API `max`.
const fn until(spec: FlagSpec, max: u32) -> FlagSpec {
    (spec.0, spec.1, spec.2, spec.3, v(max))
}

/// Flags taking several values (`-tag a -tag b`); the environment form is comma-separated.
const REPEATABLE: &[&str] = &["tag", "insecure-registry"];

const APP: FlagSpec = flag("app", "CNB_APP_DIR", 7);
const ANALYZED: FlagSpec = flag("analyzed", "CNB_ANALYZED_PATH", 7);
const BUILDPACKS: FlagSpec = flag("buildpacks", "CNB_BUILDPACKS_DIR", 7);
const BUILD_CONFIG: FlagSpec = flag("build-config", "CNB_BUILD_CONFIG_DIR", 11);
const CACHE_DIR: FlagSpec = flag("cache-dir", "CNB_CACHE_DIR", 7);
const CACHE_IMAGE: FlagSpec = flag("cache-image", "CNB_CACHE_IMAGE", 7);
const DAEMON: FlagSpec = boolean("daemon", "CNB_USE_DAEMON", 7);
const GID: FlagSpec = flag("gid", "CNB_GROUP_ID", 7);
const GROUP: FlagSpec = flag("group", "CNB_GROUP_PATH", 7);
const INSECURE: FlagSpec = flag("insecure-registry", "CNB_INSECURE_REGISTRIES", 13);
const LAUNCH_CACHE: FlagSpec = flag("launch-cache", "CNB_LAUNCH_CACHE_DIR", 7);
const LAUNCHER: FlagSpec = bare("launcher", 7);
const LAUNCHER_SBOM: FlagSpec = bare("launcher-sbom", 11);
const LAYERS: FlagSpec = flag("layers", "CNB_LAYERS_DIR", 7);
const LAYOUT: FlagSpec = boolean("layout", "CNB_USE_LAYOUT", 12);
const LAYOUT_DIR: FlagSpec = flag("layout-dir", "CNB_LAYOUT_DIR", 12);
const LOG_LEVEL: FlagSpec = flag("log-level", "CNB_LOG_LEVEL", 7);
const NO_COLOR: FlagSpec = boolean("no-color", "CNB_NO_COLOR", 7);
const ORDER: FlagSpec = flag("order", "CNB_ORDER_PATH", 7);
const PARALLEL: FlagSpec = boolean("parallel", "CNB_PARALLEL_EXPORT", 7);
const PLAN: FlagSpec = flag("plan", "CNB_PLAN_PATH", 7);
const PLATFORM: FlagSpec = flag("platform", "CNB_PLATFORM_DIR", 7);
const PREVIOUS_IMAGE: FlagSpec = flag("previous-image", "CNB_PREVIOUS_IMAGE", 7);
const PROCESS_TYPE: FlagSpec = flag("process-type", "CNB_PROCESS_TYPE", 7);
const PROJECT_METADATA: FlagSpec = flag("project-metadata", "CNB_PROJECT_METADATA_PATH", 7);
const REPORT: FlagSpec = flag("report", "CNB_REPORT_PATH", 7);
const RUN: FlagSpec = flag("run", "CNB_RUN_PATH", 12);
const RUN_IMAGE: FlagSpec = flag("run-image", "CNB_RUN_IMAGE", 7);
const SKIP_LAYERS: FlagSpec = boolean("skip-layers", "CNB_SKIP_LAYERS", 9);
const STACK: FlagSpec = until(flag("stack", "CNB_STACK_PATH", 7), 12);
const TAG: FlagSpec = bare("tag", 7);
const UID: FlagSpec = flag("uid", "CNB_USER_ID", 7);
const VERSION: FlagSpec = ("version", None, true, v(7), ANY);

fn flags(phase: Phase) -> Vec<FlagSpec> {
    let mut f: Vec<FlagSpec> = vec![LOG_LEVEL, NO_COLOR, VERSION];
    f.extend(match phase {
        Phase::Analyzer => vec![
            ANALYZED,
            CACHE_IMAGE,
            DAEMON,
            GID,
            LAYERS,
            PREVIOUS_IMAGE,
            RUN_IMAGE,
            TAG,
            UID,
            flag("launch-cache", "CNB_LAUNCH_CACHE_DIR", 9),
            SKIP_LAYERS,
            LAYOUT,
            LAYOUT_DIR,
            RUN,
            INSECURE,
            STACK,
        ],
        Phase::Detector => vec![
            APP,
            BUILDPACKS,
            GROUP,
            LAYERS,
            ORDER,
            PLAN,
            PLATFORM,
            flag("analyzed", "CNB_ANALYZED_PATH", 10),
            // Image extensions are not implemented; the flags are accepted so platforms that
            // always pass them still work when no extensions are configured.
            flag("extensions", "CNB_EXTENSIONS_DIR", 10),
            flag("generated", "CNB_GENERATED_DIR", 10),
            BUILD_CONFIG,
            RUN,
        ],
        Phase::Restorer => vec![
            ANALYZED,
            CACHE_DIR,
            CACHE_IMAGE,
            GID,
            GROUP,
            LAYERS,
            boolean("skip-layers", "CNB_SKIP_LAYERS", 7),
            UID,
            flag("build-image", "CNB_BUILD_IMAGE", 10),
            boolean("daemon", "CNB_USE_DAEMON", 12),
            flag("generated", "CNB_GENERATED_DIR", 12),
            LAYOUT,
            LAYOUT_DIR,
            flag("run", "CNB_RUN_PATH", 14),
            INSECURE,
        ],
        Phase::Builder => vec![
            APP,
            BUILDPACKS,
            GROUP,
            LAYERS,
            PLAN,
            PLATFORM,
            BUILD_CONFIG,
            flag("analyzed", "CNB_ANALYZED_PATH", 12),
        ],
        Phase::Exporter => vec![
            ANALYZED,
            APP,
            CACHE_DIR,
            CACHE_IMAGE,
            DAEMON,
            GID,
            GROUP,
            LAUNCH_CACHE,
            LAUNCHER,
            LAYERS,
            PARALLEL,
            PROCESS_TYPE,
            PROJECT_METADATA,
            REPORT,
            UID,
            // Rejected unless it equals $CNB_RUN_IMAGE (checked by the exporter).
            RUN_IMAGE,
            LAUNCHER_SBOM,
            flag("extended", "CNB_EXTENDED_DIR", 12),
            LAYOUT,
            LAYOUT_DIR,
            RUN,
            INSECURE,
            STACK,
        ],
        Phase::Creator => vec![
            APP,
            BUILDPACKS,
            CACHE_DIR,
            CACHE_IMAGE,
            DAEMON,
            GID,
            LAUNCH_CACHE,
            LAUNCHER,
            LAYERS,
            ORDER,
            PARALLEL,
            PLATFORM,
            PREVIOUS_IMAGE,
            PROCESS_TYPE,
            PROJECT_METADATA,
            REPORT,
            RUN_IMAGE,
            boolean("skip-restore", "CNB_SKIP_RESTORE", 7),
            STACK,
            TAG,
            UID,
            BUILD_CONFIG,
            LAUNCHER_SBOM,
            LAYOUT,
            LAYOUT_DIR,
            RUN,
            INSECURE,
        ],
        Phase::Rebaser => vec![
            DAEMON,
            GID,
            REPORT,
            RUN_IMAGE,
            UID,
            flag("previous-image", "CNB_PREVIOUS_IMAGE", 11),
            boolean("force", "CNB_FORCE_REBASE", 12),
            INSECURE,
        ],
    });
    f
}

fn usage(phase: Phase, specs: &[FlagSpec]) -> String {
    let images = match phase.positional() {
        (0, _) => "",
        (1, 1) => " <image>",
        _ => " <image> [<image>...]",
    };
    let mut s = format!("Usage: {} [flags]{images}\n", phase.name());
    for (name, env, ..) in specs {
        match env {
            Some(e) => s.push_str(&format!("  -{name}  (env {e})\n")),
            None => s.push_str(&format!("  -{name}\n")),
        }
    }
    s
}

pub fn parse(
    phase: Phase,
    platform_api: ApiVersion,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, CliError> {
    let specs: Vec<FlagSpec> = flags(phase)
        .into_iter()
        .filter(|s| platform_api >= s.3 && platform_api < s.4)
        .collect();
    let kind = |name: &str| {
        specs
            .iter()
            .find(|s| s.0 == name)
            .map(|s| if s.2 { FlagType::Bool } else { FlagType::Value })
    };
    let Scanned {
        flags: found,
        positional: i,
    } = match scan(args, kind) {
        Ok(f) => f,
        Err(ScanError::Help) => return Ok(Parsed::Help(usage(phase, &specs))),
        Err(ScanError::Usage(m)) => return Err(CliError::Flag(m)),
    };
    let mut set: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, value) in found {
        let values = set.entry(name).or_default();
        if !REPEATABLE.contains(&name) {
            values.clear();
        }
        values.push(value);
    }
    let positional = &args[i..];
    let (min, max) = phase.positional();
    if positional.len() < min || positional.len() > max {
        return Err(CliError::Args(match (min, max) {
            (0, _) => format!(
                "failed to parse arguments: received {} unexpected argument(s) ({}); {} takes none",
                positional.len(),
                positional.join(" "),
                phase.name()
            ),
            (1, 1) => format!(
                "failed to parse arguments: received {} arguments, but expected 1",
                positional.len()
            ),
            _ => "failed to parse arguments: at least one image argument is required".into(),
        }));
    }
    if set
        .get("version")
        .and_then(|v| v.last())
        .and_then(|v| parse_bool(v))
        == Some(true)
    {
        return Ok(Parsed::Version);
    }
    let spec_env = |name: &str| -> Option<String> {
        let spec = specs.iter().find(|s| s.0 == name)?;
        spec.1.and_then(env).filter(|v| !v.is_empty())
    };
    // flag, then environment, then default
    let get = |name: &str| -> Option<String> {
        match set.get(name).and_then(|v| v.last()) {
            Some(v) => Some(v.clone()),
            None => spec_env(name),
        }
    };
    let list = |name: &str| -> Vec<String> {
        match set.get(name) {
            Some(v) => v.clone(),
            None => spec_env(name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
    // Go: an invalid boolean from the environment is false.
    let boolean = |name: &str| get(name).and_then(|v| parse_bool(&v)).unwrap_or(false);
    // Go: an invalid integer from the environment is 0.
    let int = |name: &str, env_name: &str| {
        get(name)
            .or_else(|| env(env_name))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let dir = |name: &str, default: &str| abs(&get(name).unwrap_or_else(|| default.into()));
    let opt_dir = |name: &str| get(name).map(|d| abs(&d));
    let layers = dir("layers", "/layers");
    let under_layers = |name: &str, file: &str| {
        get(name)
            .map(PathBuf::from)
            .unwrap_or_else(|| layers.join(file))
    };
    let order = get("order").map(PathBuf::from).unwrap_or_else(|| {
        let in_layers = layers.join("order.toml");
        if in_layers.exists() {
            in_layers
        } else {
            PathBuf::from("/cnb/order.toml")
        }
    });
    let skip_layers = boolean("skip-layers")
        || boolean("skip-restore")
        || env("CNB_SKIP_RESTORE").is_some_and(|v| parse_bool(&v) == Some(true))
        || env("CNB_SKIP_LAYERS").is_some_and(|v| parse_bool(&v) == Some(true));
    Ok(Parsed::Run(Box::new(Inputs {
        phase,
        platform_api,
        app: dir("app", "/workspace"),
        buildpacks: dir("buildpacks", "/cnb/buildpacks"),
        build_config: (platform_api >= v(11)).then(|| dir("build-config", "/cnb/build-config")),
        group: under_layers("group", "group.toml"),
        plan: under_layers("plan", "plan.toml"),
        analyzed: under_layers("analyzed", "analyzed.toml"),
        report: under_layers("report", "report.toml"),
        project_metadata: under_layers("project-metadata", "project-metadata.toml"),
        generated: get("generated")
            .map(|d| abs(&d))
            .unwrap_or_else(|| layers.join("generated")),
        extended: get("extended")
            .map(|d| abs(&d))
            .unwrap_or_else(|| layers.join("extended")),
        order,
        platform: dir("platform", "/platform"),
        log_level: Level::parse(&get("log-level").unwrap_or_else(|| "info".into())),
        uid: int("uid", "CNB_USER_ID"),
        gid: int("gid", "CNB_GROUP_ID"),
        exec_env: env("CNB_EXEC_ENV")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "production".into()),
        images: positional.to_vec(),
        tags: list("tag"),
        previous_image: get("previous-image"),
        run_image: get("run-image"),
        cache_dir: opt_dir("cache-dir"),
        cache_image: get("cache-image"),
        launch_cache: opt_dir("launch-cache"),
        skip_layers,
        run_path: PathBuf::from(get("run").unwrap_or_else(|| "/cnb/run.toml".into())),
        stack_path: PathBuf::from(get("stack").unwrap_or_else(|| "/cnb/stack.toml".into())),
        launcher: PathBuf::from(
            get("launcher").unwrap_or_else(|| "/cnb/lifecycle/launcher".into()),
        ),
        launcher_sbom: dir("launcher-sbom", "/cnb/lifecycle"),
        process_type: get("process-type"),
        parallel: boolean("parallel"),
        daemon: boolean("daemon"),
        layout: boolean("layout"),
        layout_dir: opt_dir("layout-dir"),
        insecure_registries: list("insecure-registry"),
        force: boolean("force"),
        build_image: get("build-image"),
        layers,
    })))
}

fn abs(p: &str) -> PathBuf {
    std::path::absolute(Path::new(p)).unwrap_or_else(|_| PathBuf::from(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(phase: Phase, api: u32, a: &str, env: &[(&str, &str)]) -> Result<Inputs, CliError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(phase, v(api), &args(a), &|k| env.get(k).cloned())? {
            Parsed::Run(i) => Ok(*i),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn platform_api_required() {
        assert_eq!(platform_api(None), Err(CliError::PlatformApiUnset));
        let e = platform_api(Some("0.3")).unwrap_err();
        assert_eq!(e.exit_code(), 11);
        assert!(
            e.to_string()
                .contains("0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14"),
            "{e}"
        );
        assert_eq!(platform_api(Some("0.12")), Ok(v(12)));
    }

    #[test]
    fn flag_env_default_precedence() {
        let i = run(
            Phase::Detector,
            12,
            "-layers /l --app=/a -no-color -log-level debug",
            &[
                ("CNB_APP_DIR", "/env-app"),
                ("CNB_PLATFORM_DIR", "/p"),
                ("CNB_USER_ID", "1000"),
            ],
        )
        .unwrap();
        assert_eq!(i.app, PathBuf::from("/a"));
        assert_eq!(i.platform, PathBuf::from("/p"));
        assert_eq!(i.group, PathBuf::from("/l/group.toml"));
        assert_eq!(i.order, PathBuf::from("/cnb/order.toml"));
        assert_eq!(i.buildpacks, PathBuf::from("/cnb/buildpacks"));
        assert_eq!(i.build_config, Some(PathBuf::from("/cnb/build-config")));
        assert_eq!(i.log_level, Level::Debug);
        assert_eq!(i.uid, 1000);
        assert_eq!(i.exec_env, "production");
    }

    #[test]
    fn flags_gated_by_platform_api_and_args_rejected() {
        let e = run(Phase::Builder, 11, "-analyzed /x", &[]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(run(Phase::Builder, 12, "-analyzed /x", &[]).is_ok());
        assert_eq!(run(Phase::Builder, 10, "", &[]).unwrap().build_config, None);
        let e = run(Phase::Detector, 12, "-app /a extra -layers /l", &[]).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let e = run(Phase::Detector, 12, "-app", &[]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = run(Phase::Detector, 12, "-no-color=maybe", &[]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn image_phases_take_positionals_and_repeatable_flags() {
        let i = run(
            Phase::Exporter,
            12,
            "-cache-dir c -run /r.toml reg/app:1 reg/app:2",
            &[
                ("CNB_INSECURE_REGISTRIES", "a:5000, b"),
                ("CNB_USER_ID", "7"),
            ],
        )
        .unwrap();
        assert_eq!(i.images, ["reg/app:1", "reg/app:2"]);
        assert_eq!(i.insecure_registries, Vec::<String>::new(), "gated to 0.13");
        assert!(i.cache_dir.unwrap().is_absolute());
        assert_eq!(i.run_path, PathBuf::from("/r.toml"));
        assert_eq!(i.report, PathBuf::from("/layers/report.toml"));
        assert_eq!(i.uid, 7);
        let i = run(
            Phase::Analyzer,
            13,
            "-tag a -tag b -layers /l img",
            &[("CNB_INSECURE_REGISTRIES", "a:5000, b")],
        )
        .unwrap();
        assert_eq!(i.tags, ["a", "b"]);
        assert_eq!(i.insecure_registries, ["a:5000", "b"]);
        assert_eq!(i.analyzed, PathBuf::from("/l/analyzed.toml"));
        let e = run(Phase::Analyzer, 13, "img other", &[]).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.to_string(),
            "failed to parse arguments: received 2 arguments, but expected 1"
        );
        assert_eq!(
            run(Phase::Exporter, 12, "", &[]).unwrap_err().exit_code(),
            3
        );
        // -stack exists below 0.12 only; -skip-layers for the analyzer from 0.9.
        assert_eq!(
            run(Phase::Analyzer, 12, "-stack s img", &[])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert!(run(Phase::Analyzer, 11, "-stack s img", &[]).is_ok());
        assert_eq!(
            run(Phase::Analyzer, 8, "-skip-layers img", &[])
                .unwrap_err()
                .exit_code(),
            2
        );
        let i = run(Phase::Restorer, 12, "", &[("CNB_SKIP_RESTORE", "true")]).unwrap();
        assert!(i.skip_layers);
        let i = run(
            Phase::Rebaser,
            12,
            "-force=true app",
            &[("CNB_FORCE_REBASE", "nonsense")],
        )
        .unwrap();
        assert!(i.force);
        let i = run(
            Phase::Rebaser,
            12,
            "app",
            &[("CNB_FORCE_REBASE", "nonsense")],
        )
        .unwrap();
        assert!(!i.force, "an invalid env boolean is false");
    }
}
