//! Phase command lines: Go `flag` rules (`-flag v`, `-flag=v`, `--flag`, parsing stops at the
//! first positional), flag > `CNB_*` env > default, and flags gated by Platform API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::api::{self, ApiVersion};
use super::exitcode;
use super::log::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Detector,
    Builder,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Detector => "detector",
            Phase::Builder => "builder",
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

/// Resolved inputs of a phase.
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

/// (flag, env var, is bool, minimum Platform API)
type FlagSpec = (&'static str, Option<&'static str>, bool, ApiVersion);

const fn v(minor: u32) -> ApiVersion {
    ApiVersion::new(0, minor)
}

fn flags(phase: Phase) -> Vec<FlagSpec> {
    let mut f: Vec<FlagSpec> = vec![
        ("app", Some("CNB_APP_DIR"), false, v(7)),
        ("buildpacks", Some("CNB_BUILDPACKS_DIR"), false, v(7)),
        ("group", Some("CNB_GROUP_PATH"), false, v(7)),
        ("layers", Some("CNB_LAYERS_DIR"), false, v(7)),
        ("log-level", Some("CNB_LOG_LEVEL"), false, v(7)),
        ("no-color", Some("CNB_NO_COLOR"), true, v(7)),
        ("plan", Some("CNB_PLAN_PATH"), false, v(7)),
        ("platform", Some("CNB_PLATFORM_DIR"), false, v(7)),
        ("build-config", Some("CNB_BUILD_CONFIG_DIR"), false, v(11)),
        ("version", None, true, v(7)),
    ];
    match phase {
        Phase::Detector => f.extend([
            ("order", Some("CNB_ORDER_PATH"), false, v(7)),
            ("analyzed", Some("CNB_ANALYZED_PATH"), false, v(10)),
            // Image extensions are not implemented; the flags are accepted so platforms that
            // always pass them still work when no extensions are configured.
            ("extensions", Some("CNB_EXTENSIONS_DIR"), false, v(10)),
            ("generated", Some("CNB_GENERATED_DIR"), false, v(10)),
            ("run", Some("CNB_RUN_PATH"), false, v(12)),
        ]),
        Phase::Builder => f.push(("analyzed", Some("CNB_ANALYZED_PATH"), false, v(12))),
    }
    f
}

/// Go's strconv.ParseBool.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn usage(phase: Phase, specs: &[FlagSpec]) -> String {
    let mut s = format!("Usage: {} [flags]\n", phase.name());
    for (name, env, _, _) in specs {
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
        .filter(|s| platform_api >= s.3)
        .collect();
    let mut set: HashMap<&str, String> = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Ok(Parsed::Help(usage(phase, &specs)));
        }
        let Some(spec) = specs.iter().find(|s| s.0 == name) else {
            return Err(CliError::Flag(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let value = if spec.2 {
            let raw = inline.unwrap_or_else(|| "true".into());
            parse_bool(&raw).ok_or_else(|| {
                CliError::Flag(format!("invalid boolean value {raw:?} for -{name}"))
            })?;
            raw
        } else if let Some(v) = inline {
            v
        } else {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| CliError::Flag(format!("flag needs an argument: -{name}")))?
        };
        set.insert(spec.0, value);
        i += 1;
    }
    if i < args.len() {
        return Err(CliError::Args(format!(
            "failed to parse arguments: received {} unexpected argument(s) ({}); {} takes none",
            args.len() - i,
            args[i..].join(" "),
            phase.name()
        )));
    }
    if set.get("version").and_then(|v| parse_bool(v)) == Some(true) {
        return Ok(Parsed::Version);
    }
    // flag, then environment, then default
    let get = |name: &str| -> Option<String> {
        if let Some(v) = set.get(name) {
            return Some(v.clone());
        }
        let spec = specs.iter().find(|s| s.0 == name)?;
        spec.1.and_then(env).filter(|v| !v.is_empty())
    };
    let dir = |name: &str, default: &str| abs(&get(name).unwrap_or_else(|| default.into()));
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
    let int = |name: &str| {
        env(name)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    Ok(Parsed::Run(Box::new(Inputs {
        phase,
        platform_api,
        app: dir("app", "/workspace"),
        buildpacks: dir("buildpacks", "/cnb/buildpacks"),
        build_config: (platform_api >= v(11)).then(|| dir("build-config", "/cnb/build-config")),
        group: under_layers("group", "group.toml"),
        plan: under_layers("plan", "plan.toml"),
        analyzed: under_layers("analyzed", "analyzed.toml"),
        order,
        platform: dir("platform", "/platform"),
        log_level: Level::parse(&get("log-level").unwrap_or_else(|| "info".into())),
        uid: int("CNB_USER_ID"),
        gid: int("CNB_GROUP_ID"),
        exec_env: env("CNB_EXEC_ENV")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "production".into()),
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
}
