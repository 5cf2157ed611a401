//! The `builder` phase: run each buildpack of group.toml in order, layer the build env, read
//! what they wrote and leave `<layers>/config/metadata.toml` (and SBOMs) for the exporter.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::fsutil::{IoContext, PathError};

use super::api::{self, ApiVersion};
use super::buildpack_toml::{escape_id, BuildpackDescriptor, LookupError};
use super::cli::Inputs;
use super::detect::BuildpackStore;
use super::detector::{build_target, invocation, DetectorError};
use super::env::{read_env_dir, Action, Env};
use super::exec::Invocation;
use super::exitcode as code;
use super::launch::{read_build_toml, read_launch_toml, BuildMetadata, LayerToml, StoreToml};
use super::log::Log;
use super::order::{read_group, GroupEntry};
use super::output::{create_dir, write_file};
use super::plan::{render_buildpack_plan, Plan};
use super::processes::ProcessMap;
use super::sbom::{self, SbomError};
use super::store::DirStore;
use super::tomlr::TomlError;

#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("read buildpack group: {0}")]
    Group(TomlError),
    #[error(
        "{}: field `group[{index}].api`: buildpack api {api:?} of {id} is not supported; supported versions are {}",
        path.display(),
        api::list(api::BUILDPACK_APIS)
    )]
    GroupApi {
        path: PathBuf,
        index: usize,
        id: String,
        api: String,
    },
    #[error("read plan: {0}")]
    Plan(TomlError),
    #[error(transparent)]
    Setup(DetectorError),
    #[error("look up buildpack: {0}")]
    Lookup(LookupError),
    #[error("buildpack {bp} failed: bin/build exited with {status}")]
    BuildpackFailed { bp: String, status: String },
    #[error("buildpack {bp}: run {}: {source}", path.display())]
    Spawn {
        bp: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("buildpack {bp}: {source}")]
    Output { bp: String, source: TomlError },
    #[error("buildpack {bp}: {source}")]
    Sbom { bp: String, source: SbomError },
    #[error(transparent)]
    Io(#[from] PathError),
}

impl BuilderError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BuilderError::GroupApi { .. } => code::INCOMPATIBLE_BUILDPACK_API,
            BuilderError::Lookup(e) if e.is_unsupported_api() => code::INCOMPATIBLE_BUILDPACK_API,
            BuilderError::Group(_) | BuilderError::Plan(_) | BuilderError::Setup(_) => code::FAILED,
            BuilderError::BuildpackFailed { .. } => code::BUILD_FAILED_WITH_ERRORS,
            _ => code::BUILD_ERROR,
        }
    }
}

/// Everything collected from the buildpacks for metadata.toml and the legacy SBOM.
#[derive(Default)]
struct Collected {
    meta: BuildMetadata,
    processes: ProcessMap,
    bom_launch: Vec<serde_json::Value>,
    bom_build: Vec<serde_json::Value>,
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), BuilderError> {
    let group = read_group(&inputs.group).map_err(BuilderError::Group)?;
    for (index, g) in group.iter().enumerate() {
        if api::find_supported(api::BUILDPACK_APIS, &g.api).is_none() {
            return Err(BuilderError::GroupApi {
                path: inputs.group.clone(),
                index,
                id: g.id.clone(),
                api: g.api.clone(),
            });
        }
    }
    let mut plan = Plan::read(&inputs.plan).map_err(BuilderError::Plan)?;
    let target =
        build_target(inputs, log).map_err(|e| BuilderError::Setup(DetectorError::Analyzed(e)))?;
    let inv = invocation(inputs, target).map_err(BuilderError::Setup)?;
    let sbom_dir = inputs.layers.join("sbom");
    match fs::remove_dir_all(&sbom_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(PathError::new("remove", &sbom_dir, e).into())
        }
        _ => {}
    }
    let plans = tempfile::Builder::new()
        .prefix("cnb-build-")
        .tempdir()
        .at("create temp dir in", &std::env::temp_dir())?;
    inv.run_as.give(plans.path()).at("chown", plans.path())?;
    let mut store = DirStore::new(inputs.buildpacks.clone());
    let mut env = Env::scrubbed(std::env::vars_os());
    inv.run_as.adjust_env(&mut env);
    let mut out = Collected::default();
    for g in &group {
        let bp = store
            .lookup(&g.id, &g.version)
            .map_err(BuilderError::Lookup)?;
        log.debug(&format!("Running build for buildpack {}", bp.key()));
        build_one(
            inputs,
            &inv,
            &bp,
            g,
            &mut plan,
            &mut env,
            plans.path(),
            &mut out,
            log,
        )?;
    }
    finish(inputs, &inv, group, out)
}

#[allow(clippy::too_many_arguments)]
fn build_one(
    inputs: &Inputs,
    inv: &Invocation,
    bp: &BuildpackDescriptor,
    entry: &GroupEntry,
    plan: &mut Plan,
    env: &mut Env,
    plans: &Path,
    out: &mut Collected,
    log: &Log,
) -> Result<(), BuilderError> {
    let key = bp.key();
    let escaped = escape_id(&bp.id);
    let bp_plan = plan.find(&bp.id);
    // A transient input in our private temp dir: no need for an atomic, synced write.
    let plan_path = plans.join(format!("{escaped}-plan.toml"));
    fs::write(&plan_path, render_buildpack_plan(&bp_plan)).at("write", &plan_path)?;
    inv.run_as.give(&plan_path).at("chown", &plan_path)?;
    let bp_layers = inputs.layers.join(&escaped);
    create_dir(&bp_layers, &inv.run_as)?;

    let bp_env = inv.env(env, bp, ("CNB_BP_PLAN_PATH", &plan_path), Some(&bp_layers));
    let mut cmd = inv.command(
        bp,
        "build",
        &[
            bp_layers.as_path(),
            inv.platform.as_path(),
            plan_path.as_path(),
        ],
        &bp_env,
    );
    // bin/build's stdout and stderr both go to our stdout, like every lifecycle line.
    let stdout = std::io::stdout();
    let spawn_err = |source| BuilderError::Spawn {
        bp: key.clone(),
        path: bp.dir.join("bin").join("build"),
        source,
    };
    let fd = stdout.as_fd().try_clone_to_owned().map_err(spawn_err)?;
    let fd2 = fd.try_clone().map_err(spawn_err)?;
    cmd.stdout(Stdio::from(fd)).stderr(Stdio::from(fd2));
    let status = cmd.status().map_err(spawn_err)?;
    if !status.success() {
        let status = match status.code() {
            Some(c) => format!("code {c}"),
            None => format!("{status}"),
        };
        return Err(BuilderError::BuildpackFailed { bp: key, status });
    }

    let output = |source| BuilderError::Output {
        bp: key.clone(),
        source,
    };
    let layers = process_layers(&bp_layers).map_err(output)?;
    for (name, _) in layers.iter().filter(|(_, l)| l.build) {
        add_layer_env(env, &bp_layers.join(name))?;
    }
    for (name, _) in layers.iter().filter(|(_, l)| l.launch) {
        for w in check_execd(&bp_layers.join(name).join("exec.d")) {
            log.warn(&w);
        }
    }

    let build_toml = bp_layers.join("build.toml");
    let mut met: Vec<String> = bp_plan.iter().map(|r| r.name.clone()).collect();
    if build_toml.exists() {
        let b = read_build_toml(&build_toml).map_err(output)?;
        for (i, name) in b.unmet.iter().enumerate() {
            if !met.contains(name) {
                return Err(output(TomlError::Field {
                    path: build_toml.clone(),
                    field: format!("unmet[{i}].name"),
                    reason: format!("{name:?} is not in this buildpack's plan"),
                }));
            }
        }
        met.retain(|n| !b.unmet.contains(n));
        out.bom_build
            .extend(b.bom.iter().map(|v| bom_entry(v, entry)));
    }
    plan.filter(&met);

    let launch_toml = bp_layers.join("launch.toml");
    if launch_toml.exists() {
        let mut warnings = Vec::new();
        let l = read_launch_toml(&launch_toml, bp.api, &bp.id, &mut warnings).map_err(output)?;
        warnings.extend(out.processes.add(l.processes));
        for w in warnings {
            log.warn(&w);
        }
        out.meta.labels.extend(l.labels);
        out.meta.slices.extend(l.slices);
        out.bom_launch
            .extend(l.bom.iter().map(|v| bom_entry(v, entry)));
    }
    let store_toml = bp_layers.join("store.toml");
    if store_toml.exists() {
        StoreToml::read(&store_toml).map_err(output)?;
    }
    copy_sboms(inputs, inv, bp, &escaped, &bp_layers, &layers)
}

/// Reads every `<layer>.toml`, sorted by name; a layer with no type set is renamed
/// `<layer>.ignore` so nothing picks it up.
fn process_layers(bp_layers: &Path) -> Result<Vec<(String, LayerToml)>, TomlError> {
    let mut names = Vec::new();
    let rd = fs::read_dir(bp_layers).map_err(|source| TomlError::Read {
        path: bp_layers.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".toml") {
            if !["launch", "build", "store"].contains(&stem) && e.path().is_file() {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let l = LayerToml::read(&bp_layers.join(format!("{name}.toml")))?;
        let dir = bp_layers.join(&name);
        if !(l.launch || l.build || l.cache) && dir.is_dir() {
            let ignored = bp_layers.join(format!("{name}.ignore"));
            let _ = fs::remove_dir_all(&ignored);
            fs::rename(&dir, &ignored).map_err(|source| TomlError::Read {
                path: dir.clone(),
                source,
            })?;
        }
        out.push((name, l));
    }
    Ok(out)
}

/// exec.d programs run at launch (before the process, output on fd 3); one that is not
/// executable would only fail at container start, so say so at build time.
fn check_execd(dir: &Path) -> Vec<String> {
    let entries = |d: &Path| -> Vec<(PathBuf, fs::Metadata)> {
        fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::metadata(e.path()).ok().map(|m| (e.path(), m)))
            .collect()
    };
    let mut files = Vec::new();
    for (p, m) in entries(dir) {
        if m.is_dir() {
            // exec.d/<process-type>/ holds programs for that process only.
            files.extend(entries(&p).into_iter().filter(|(_, m)| m.is_file()));
        } else if m.is_file() {
            files.push((p, m));
        }
    }
    let mut warnings: Vec<String> = files
        .into_iter()
        .filter(|(_, m)| m.permissions().mode() & 0o111 == 0)
        .map(|(p, _)| format!("exec.d file {} is not executable", p.display()))
        .collect();
    warnings.sort();
    warnings
}

/// A build layer's root dirs, then `env/`, then `env.build/` (unsuffixed files override).
fn add_layer_env(env: &mut Env, layer: &Path) -> Result<(), PathError> {
    let existing: Vec<&str> = ["bin", "lib", "include", "pkgconfig"]
        .into_iter()
        .filter(|s| layer.join(s).is_dir())
        .collect();
    env.add_root_dir(layer, &existing);
    for sub in ["env", "env.build"] {
        let dir = layer.join(sub);
        env.apply_dir(
            &read_env_dir(&dir).at("read env dir", &dir)?,
            Action::Override,
        );
    }
    Ok(())
}

fn copy_sboms(
    inputs: &Inputs,
    inv: &Invocation,
    bp: &BuildpackDescriptor,
    escaped: &str,
    bp_layers: &Path,
    layers: &[(String, LayerToml)],
) -> Result<(), BuilderError> {
    let mut files = Vec::new();
    let rd = fs::read_dir(bp_layers).at("read directory", bp_layers)?;
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if let Some(f) = sbom::classify(&name) {
            files.push(f.map_err(|source| BuilderError::Sbom {
                bp: bp.key(),
                source,
            })?);
        }
    }
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    sbom::validate(&files, &bp.sbom_formats).map_err(|source| BuilderError::Sbom {
        bp: bp.key(),
        source,
    })?;
    for f in &files {
        let types = match &f.owner {
            sbom::Owner::Layer(name) => layers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| (l.launch, l.cache)),
            _ => None,
        };
        let src = bp_layers.join(&f.file_name);
        let bytes = fs::read(&src).at("read", &src)?;
        for dest in sbom::destinations(f, escaped, types) {
            let dest = inputs.layers.join("sbom").join(dest);
            if let Some(parent) = dest.parent() {
                create_dir(parent, &inv.run_as)?;
            }
            write_file(&dest, &bytes, &inv.run_as)?;
        }
    }
    Ok(())
}

fn bom_entry(v: &toml::Value, g: &GroupEntry) -> serde_json::Value {
    let mut j = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    if let Some(o) = j.as_object_mut() {
        o.insert(
            "buildpack".into(),
            serde_json::json!({"id": g.id, "version": g.version}),
        );
    }
    j
}

fn finish(
    inputs: &Inputs,
    inv: &Invocation,
    group: Vec<GroupEntry>,
    mut out: Collected,
) -> Result<(), BuilderError> {
    if inputs.platform_api.at_least(0, 9) {
        for (kind, bom) in [("launch", &out.bom_launch), ("build", &out.bom_build)] {
            let dir = inputs.layers.join("sbom").join(kind);
            create_dir(&dir, &inv.run_as)?;
            let json = if bom.is_empty() {
                "null".to_string()
            } else {
                serde_json::Value::Array(bom.clone()).to_string()
            };
            write_file(&dir.join("sbom.legacy.json"), json.as_bytes(), &inv.run_as)?;
        }
    }
    let (processes, default_process) = out.processes.list();
    out.meta.buildpacks = group;
    out.meta.processes = processes;
    out.meta.default_process = default_process;
    let config = inputs.layers.join("config");
    create_dir(&config, &inv.run_as)?;
    let text = out.meta.render(inputs.platform_api);
    write_file(&config.join("metadata.toml"), text.as_bytes(), &inv.run_as)?;
    Ok(())
}

/// For callers that want the Buildpack API of a group entry.
pub fn group_api(g: &GroupEntry) -> Option<ApiVersion> {
    api::find_supported(api::BUILDPACK_APIS, &g.api)
}
