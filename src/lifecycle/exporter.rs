//! The `exporter` phase: read the build's outputs, write the app image to a registry (or an
//! OCI layout with `-layout`), write `report.toml`, then the cache (`cnb-lifecycle.md` §4.5).

use std::path::Path;

use super::api::{self, ApiVersion};
use super::cli::Inputs;
use super::exitcode;
use super::images::Images;
use super::log::Log;
use super::order::read_group;
use super::privs;
use crate::export::inputs::{read_toml, Analyzed, ConfigMetadata, RunToml};
use crate::export::report::Report;
use crate::export::{export, ExportOptions, ImageSource};
use crate::layer::{CompressOptions, Compression};
use crate::oci::copy::{copy_image, CopyOptions};
use crate::registry::parse_reference;

/// A phase failure: what to print and the exit code.
#[derive(Debug)]
pub struct PhaseError {
    pub message: String,
    pub code: i32,
}

impl PhaseError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        PhaseError {
            message: message.into(),
            code,
        }
    }
}

impl std::fmt::Display for PhaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn export_err(e: impl std::fmt::Display) -> PhaseError {
    PhaseError::new(exitcode::EXPORT_ERROR, e.to_string())
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), PhaseError> {
    if inputs.daemon {
        return Err(PhaseError::new(
            exitcode::FAILED,
            "exporting to a docker daemon (-daemon) is not supported by this lifecycle; export to a registry or use -layout",
        ));
    }
    let target_names = output_names(inputs)?;
    // Credentials are read before dropping privileges.
    let images = Images::new(inputs).map_err(export_err)?;
    let cache_dir = inputs.cache_dir.as_deref();
    let owned: Vec<&Path> = cache_dir
        .into_iter()
        .chain(inputs.launch_cache.as_deref())
        .collect();
    privs::ensure_owner(inputs.uid, inputs.gid, &owned).map_err(export_err)?;
    privs::run_as(inputs.uid, inputs.gid).map_err(export_err)?;

    let opts = options(inputs, log)?;
    let run_ref = opts
        .analyzed
        .run_image
        .as_ref()
        .map(|r| r.reference.clone())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            PhaseError::new(
                exitcode::EXPORT_ERROR,
                format!(
                    "{}: run-image.reference is missing; run the analyzer first",
                    inputs.analyzed.display()
                ),
            )
        })?;
    let run = images.open(&run_ref).map_err(export_err)?;
    let previous = match opts.analyzed.image.as_ref().map(|i| i.reference.as_str()) {
        Some(r) if !r.is_empty() => match images.open(r) {
            Ok(o) => Some(o),
            Err(e) => {
                log.warn(&format!(
                    "previous image {r} cannot be opened ({e}); no layers will be reused"
                ));
                None
            }
        },
        _ => None,
    };

    // The first name's repository receives the image under every tag it has there; other
    // repositories (and, in layout mode, other names) get a copy.
    let target = images.create(&target_names[0]).map_err(export_err)?;
    let (first_repo, _) = split_tag(&target_names[0]);
    let (same, extra): (Vec<String>, Vec<String>) = if images.is_layout() {
        (target_names[..1].to_vec(), target_names[1..].to_vec())
    } else {
        target_names
            .iter()
            .cloned()
            .partition(|n| split_tag(n).0 == first_repo)
    };
    let mut opts = opts;
    opts.tags = if images.is_layout() {
        vec![target.reference.clone()]
    } else {
        let mut tags: Vec<String> = same.iter().map(|n| split_tag(n).1).collect();
        tags.dedup();
        tags
    };
    let previous = previous.as_ref().map(|p| ImageSource {
        store: p.store.as_ref(),
        reference: p.reference.clone(),
    });
    let report = export(
        &opts,
        &ImageSource {
            store: run.store.as_ref(),
            reference: run.reference.clone(),
        },
        previous.as_ref(),
        target.store.as_ref(),
    )
    .map_err(export_err)?;
    for (id, reused) in &report.layers {
        let verb = if *reused { "Reusing" } else { "Adding" };
        log.info(&format!("{verb} layer '{id}'"));
    }
    let mut saved = same;
    let digest = report.digest.to_string();
    for name in extra {
        let dst = images.create(&name).map_err(export_err)?;
        match copy_image(
            target.store.as_ref(),
            &digest,
            dst.store.as_ref(),
            std::slice::from_ref(&dst.reference),
            &CopyOptions::default(),
        ) {
            Ok(_) => saved.push(name),
            Err(e) => log.warn(&format!("failed to save {name}: {e}")),
        }
    }
    log.info(&format!("*** Images ({digest}):"));
    for s in &saved {
        log.info(&format!("      {s}"));
    }
    Report {
        tags: saved,
        digest,
        manifest_size: report.manifest_size,
    }
    .write(&inputs.report)
    .map_err(export_err)?;

    if inputs.cache_dir.is_some() || inputs.cache_image.is_some() {
        // Cache export failures only warn (§7.6).
        log.warn("cache export is not supported yet by this exporter; no cache was written");
    }
    Ok(())
}

/// `<image> [<image>...]`: every name parses and all share one registry.
fn output_names(inputs: &Inputs) -> Result<Vec<String>, PhaseError> {
    let invalid = |m: String| PhaseError::new(exitcode::INVALID_ARGS, m);
    let mut registry: Option<String> = None;
    for n in &inputs.images {
        let r = parse_reference(n).map_err(|e| invalid(e.to_string()))?;
        let reg = r.resolve_registry().to_string();
        match &registry {
            None => registry = Some(reg),
            Some(first) if *first != reg && !inputs.layout => {
                return Err(invalid(format!(
                    "writing to multiple registries is unsupported: {n} is not on {first}"
                )))
            }
            _ => {}
        }
    }
    Ok(inputs.images.clone())
}

/// `registry/repo` and tag of a name.
fn split_tag(name: &str) -> (String, String) {
    match parse_reference(name) {
        Ok(r) => (
            format!("{}/{}", r.resolve_registry(), r.repository()),
            r.tag().unwrap_or("latest").to_string(),
        ),
        Err(_) => (name.to_string(), String::new()),
    }
}

fn options(inputs: &Inputs, log: &Log) -> Result<ExportOptions, PhaseError> {
    let analyzed: Analyzed = read_toml(&inputs.analyzed, "analyzed.toml").map_err(export_err)?;
    let group = read_group(&inputs.group)
        .map_err(|e| PhaseError::new(exitcode::EXPORT_ERROR, e.to_string()))?;
    for g in &group {
        if api::find_supported(api::BUILDPACK_APIS, &g.api).is_none() {
            return Err(PhaseError::new(
                exitcode::INCOMPATIBLE_BUILDPACK_API,
                format!(
                    "{}: buildpack {}@{} has api {:?}, which is not supported; supported versions are {}",
                    inputs.group.display(),
                    g.id,
                    g.version,
                    g.api,
                    api::list(api::BUILDPACK_APIS)
                ),
            ));
        }
    }
    let config: ConfigMetadata = read_toml(
        &inputs.layers.join("config/metadata.toml"),
        "config/metadata.toml",
    )
    .map_err(export_err)?;
    let run_file = if inputs.platform_api >= ApiVersion::new(0, 12) {
        &inputs.run_path
    } else {
        &inputs.stack_path
    };
    let run: RunToml = if run_file.exists() {
        read_toml(run_file, "run metadata").map_err(export_err)?
    } else {
        RunToml::default()
    };
    let project_metadata = if inputs.project_metadata.exists() {
        let t: toml::Value =
            read_toml(&inputs.project_metadata, "project metadata").map_err(export_err)?;
        serde_json::to_value(t).unwrap_or_else(|_| serde_json::json!({}))
    } else {
        serde_json::json!({})
    };
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if inputs.platform_api >= ApiVersion::new(0, 9) && !v.is_empty() => {
            match v.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    log.warn(&format!(
                        "SOURCE_DATE_EPOCH {v:?} is not a number of seconds; ignoring it"
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    let compression = match std::env::var("BUILDPOD_LAYER_COMPRESSION").as_deref() {
        Ok("zstd") => CompressOptions::new(Compression::Zstd),
        Ok("gzip") | Ok("") | Err(_) => CompressOptions::new(Compression::Gzip),
        Ok(other) => {
            return Err(PhaseError::new(
                exitcode::INVALID_ARGS,
                format!("BUILDPOD_LAYER_COMPRESSION={other:?}: want gzip or zstd"),
            ))
        }
    };
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(ExportOptions {
        layers_dir: inputs.layers.clone(),
        app_dir: inputs.app.clone(),
        launcher: inputs.launcher.clone(),
        uid: inputs.uid.into(),
        gid: inputs.gid.into(),
        platform_api: (inputs.platform_api.major, inputs.platform_api.minor),
        group,
        config,
        analyzed,
        run,
        project_metadata,
        process_type: inputs.process_type.clone(),
        source_date_epoch,
        compression,
        parallel: cpus.max(2),
        launcher_version: env!("CARGO_PKG_VERSION").to_string(),
        tags: Vec::new(),
    })
}
