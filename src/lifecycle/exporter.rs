//! The `exporter` phase: read the build's outputs, write the app image to a registry (or an
//! OCI layout with `-layout`), write `report.toml`, then the cache (`cnb-lifecycle.md` §4.5).

use std::path::Path;

use super::api::ApiVersion;
use super::cli::Inputs;
use super::exitcode;
use super::images::{check_output_names, Images};
use super::log::Log;
use super::order::{check_group_apis, read_group, GroupEntry};
use super::phase_error::PhaseError;
use super::privs;
use crate::cache;
use crate::export::inputs::{read_toml, Analyzed, ConfigMetadata, RunToml};
use crate::export::{export, ExportOptions, ImageSource};
use crate::layer::{CompressOptions, Compression};

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
    // -run-image is only tolerated when it repeats CNB_RUN_IMAGE (the run image comes from
    // analyzed.toml).
    if let Some(r) = &inputs.run_image {
        if std::env::var("CNB_RUN_IMAGE").ok().as_deref() != Some(r.as_str()) {
            return Err(PhaseError::new(
                exitcode::INVALID_ARGS,
                "-run-image is not supported by the exporter; the run image comes from analyzed.toml",
            ));
        }
    }
    check_output_names(&inputs.images, inputs.layout)
        .map_err(|m| PhaseError::new(exitcode::INVALID_ARGS, m))?;
    // Credentials are read before dropping privileges.
    let images = Images::new(inputs).map_err(export_err)?;
    let cache_dir = inputs.cache_dir.as_deref();
    let owned: Vec<&Path> = cache_dir
        .into_iter()
        .chain(inputs.launch_cache.as_deref())
        .collect();
    // Made while still root, so the build user owns it after ensure_owner.
    if let Some(dir) = cache_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            log.warn(&format!("cannot create cache dir {}: {e}", dir.display()));
        }
    }
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

    let outputs = images.outputs(&inputs.images).map_err(export_err)?;
    let mut opts = opts;
    opts.tags = outputs.tags.clone();
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
        outputs.target.store.as_ref(),
    )
    .map_err(export_err)?;
    for (id, reused) in &report.layers {
        let verb = if *reused { "Reusing" } else { "Adding" };
        log.info(&format!("{verb} layer '{id}'"));
    }
    images
        .finish(
            &outputs,
            &report.digest,
            report.manifest_size,
            &inputs.report,
            log,
        )
        .map_err(export_err)?;

    export_cache(inputs, &images, &opts.group, log);
    Ok(())
}

/// Cache export (§7.6): failures only warn, the image is already saved.
fn export_cache(inputs: &Inputs, images: &Images, group: &[GroupEntry], log: &Log) {
    let location = match cache::Location::from_inputs(
        inputs.cache_image.as_deref(),
        inputs.cache_dir.as_deref(),
        images.client(),
    ) {
        Ok(Some(l)) => l,
        Ok(None) => return,
        Err(e) => {
            log.warn(&format!("Failed to export cache: {e}"));
            return;
        }
    };
    let opts = cache::ExportOptions {
        layers_dir: inputs.layers.clone(),
        group: group.to_vec(),
        uid: inputs.uid.into(),
        gid: inputs.gid.into(),
        platform_api: inputs.platform_api,
    };
    // export_to logs each added or reused layer itself.
    match cache::export_to(&location, &opts, log) {
        Ok(_) => {}
        Err(e) => log.warn(&format!("Failed to export cache: {e}")),
    }
}

fn options(inputs: &Inputs, log: &Log) -> Result<ExportOptions, PhaseError> {
    let analyzed: Analyzed = read_toml(&inputs.analyzed, "analyzed.toml").map_err(export_err)?;
    let group = read_group(&inputs.group)
        .map_err(|e| PhaseError::new(exitcode::EXPORT_ERROR, e.to_string()))?;
    check_group_apis(&inputs.group, &group)
        .map_err(|m| PhaseError::new(exitcode::INCOMPATIBLE_BUILDPACK_API, m))?;
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
