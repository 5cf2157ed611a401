//! The `analyzer` phase (`cnb-lifecycle.md` §4.1): resolve the run image (run.toml or
//! stack.toml, mirror on the output's registry first), check registry access, read the previous
//! image's layer metadata and restore its SBOM layer, read the run image's target, and write
//! `analyzed.toml`. Buildpack layer directories are the restorer's business.

use std::path::Path;

use super::analyzed::{AnalyzedMd, RunImageMd};
use super::cli::Inputs;
use super::exitcode::{ANALYZE_ERROR, FAILED, INVALID_ARGS};
use super::image_access::{self as access, Unavailable};
use super::images::{check_output_names, Images};
use super::log::Log;
use super::output::write_file;
use super::phase_error::PhaseError;
use super::privs;
use super::restore_layers::extract_into_layers;
use super::user::RunAs;
use crate::digest::Digest;
use crate::export::inputs::{read_toml, RunImageEntry, RunToml};
use crate::export::labels::{LayersMetadata, LIFECYCLE_METADATA};
use crate::registry::parse_reference;

fn fail(m: impl Into<String>) -> PhaseError {
    PhaseError::new(ANALYZE_ERROR, m)
}

fn invalid(m: impl Into<String>) -> PhaseError {
    PhaseError::new(INVALID_ARGS, m)
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), PhaseError> {
    if inputs.daemon {
        return Err(PhaseError::new(
            FAILED,
            "analyzing images in a docker daemon (-daemon) is not supported yet by this lifecycle; use a registry, or -layout",
        ));
    }
    let output = inputs
        .images
        .first()
        .cloned()
        .ok_or_else(|| invalid("image argument is required"))?;
    let previous = inputs
        .previous_image
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| output.clone());
    if inputs.launch_cache.is_some() {
        log.warn("Ignoring -launch-cache, only intended for use with -daemon");
    }
    let mut destinations = vec![output.clone()];
    destinations.extend(inputs.tags.iter().cloned());
    let named = [
        Some(&previous),
        inputs.run_image.as_ref(),
        inputs.cache_image.as_ref(),
    ];
    for r in named.into_iter().flatten().filter(|r| !r.is_empty()) {
        parse_reference(r).map_err(|e| invalid(e.to_string()))?;
    }
    check_output_names(&destinations, inputs.layout).map_err(invalid)?;

    // Credentials are read before privileges are dropped.
    let images = Images::new(inputs).map_err(|e| fail(e.to_string()))?;
    let run_ref = match inputs.run_image.clone().filter(|r| !r.is_empty()) {
        Some(r) => r,
        None => resolve_run_image(inputs, &images, &output)?,
    };

    let mut owned = vec![inputs.layers.as_path()];
    owned.extend(inputs.launch_cache.as_deref());
    privs::ensure_owner(inputs.uid, inputs.gid, &owned).map_err(|e| fail(e.to_string()))?;
    privs::run_as(inputs.uid, inputs.gid).map_err(|e| fail(e.to_string()))?;

    let previous = check_access(inputs, &images, &previous, &run_ref, &destinations, log)?;
    let (image_ref, metadata) = match previous {
        Some(p) => previous_metadata(inputs, &images, &p, log)?,
        None => (String::new(), LayersMetadata::default()),
    };

    let run = match access::load(&images, &run_ref) {
        Ok(Some(l)) => l,
        Ok(None) => return Err(fail(format!("run image {run_ref} not found"))),
        Err(e) => return Err(fail(format!("reading run image {run_ref}: {e}"))),
    };
    log.debug(&format!("Found image with identifier {:?}", run.identifier));
    let new_api = inputs.platform_api.at_least(0, 12);
    let target = if new_api {
        let t = access::target_of(&run.view);
        if t.os.is_empty() {
            return Err(fail(format!(
                "failed to find OS in run image config of {run_ref}"
            )));
        }
        Some(t)
    } else {
        None
    };
    let analyzed = AnalyzedMd {
        image: Some(image_ref),
        build_image: None,
        metadata,
        run_image: Some(RunImageMd {
            reference: run.identifier,
            image: if new_api { run_ref } else { String::new() },
            extend: false,
            target,
        }),
    };
    write_file(
        &inputs.analyzed,
        analyzed.render().as_bytes(),
        &RunAs::Current,
    )
    .map_err(|e| fail(e.to_string()))
}

/// The run image from run.toml (Platform API >= 0.12) or stack.toml: the image or a mirror,
/// on the output image's registry if one is readable there.
fn resolve_run_image(inputs: &Inputs, images: &Images, output: &str) -> Result<String, PhaseError> {
    let (path, what) = if inputs.platform_api.at_least(0, 12) {
        (&inputs.run_path, "run")
    } else {
        (&inputs.stack_path, "stack")
    };
    let required = format!("-run-image is required when there is no {what} metadata available");
    let entry = read_run_entry(path, what == "run")?.ok_or_else(|| invalid(required.clone()))?;
    let target = access::registry_of(output).unwrap_or_default();
    let readable = |r: &str| access::check_read(images, r).is_ok();
    access::best_mirror(&target, &entry.image, &entry.mirrors, &readable).ok_or_else(|| {
        if entry.image.is_empty() {
            return invalid(required.clone());
        }
        let mut all = vec![entry.image.clone()];
        all.extend(entry.mirrors.iter().cloned());
        invalid(format!(
            "{required}: no run image in {} is readable ({})",
            path.display(),
            all.join(", ")
        ))
    })
}

/// run.toml's first `[[images]]` or stack.toml's `[run-image]`; a missing file is no metadata.
fn read_run_entry(path: &Path, run_toml: bool) -> Result<Option<RunImageEntry>, PhaseError> {
    if !path.exists() {
        return Ok(None);
    }
    let what = if run_toml { "run.toml" } else { "stack.toml" };
    let md: RunToml = read_toml(path, what).map_err(|e| invalid(e.to_string()))?;
    Ok(if run_toml {
        md.images.into_iter().next()
    } else {
        md.run_image
    })
}

/// Read access to the previous and run images, write access to the output names (registry
/// mode) and the cache image. Returns the previous image to read, unless it is unreachable:
/// then the build goes on as a first build.
fn check_access(
    inputs: &Inputs,
    images: &Images,
    previous: &str,
    run_ref: &str,
    destinations: &[String],
    log: &Log,
) -> Result<Option<String>, PhaseError> {
    let read = |r: &str| {
        access::ensure_read(images, r)
            .map_err(|m| fail(format!("validating registry read access: {m}")))
    };
    let write = |r: &str| {
        access::ensure_write(images, r)
            .map_err(|m| fail(format!("validating registry write access: {m}")))
    };
    let mut prev = Some(previous.to_string());
    if !images.is_layout() {
        match access::check_read(images, previous) {
            Ok(()) => {}
            Err(Unavailable::Unreachable(m)) => {
                log.warn(&format!(
                    "Previous image {previous} is unreachable ({m}); continuing as a first build"
                ));
                prev = None;
            }
            Err(e) => {
                return Err(fail(format!(
                "validating registry read access: ensure registry read access to {previous}: {e}"
            )))
            }
        }
        read(run_ref)?;
        for d in destinations {
            write(d)?;
        }
    }
    if let Some(c) = inputs.cache_image.as_deref().filter(|c| !c.is_empty()) {
        write(c)?;
    }
    Ok(prev)
}

/// The previous image's identifier and layer metadata (empty when it is absent, corrupt or
/// carries an unreadable label), and its SBOM layer restored into `<layers>/sbom`.
fn previous_metadata(
    inputs: &Inputs,
    images: &Images,
    reference: &str,
    log: &Log,
) -> Result<(String, LayersMetadata), PhaseError> {
    let img = match access::load(images, reference) {
        Ok(Some(img)) => img,
        Ok(None) => {
            log.info(&format!("Image with name {reference:?} not found"));
            return Ok((String::new(), LayersMetadata::default()));
        }
        Err(Unavailable::Unreachable(m)) => {
            log.warn(&format!(
                "Previous image {reference} is unreachable ({m}); continuing as a first build"
            ));
            return Ok((String::new(), LayersMetadata::default()));
        }
        Err(e) => {
            log.warn(&format!(
                "Ignoring image {reference:?} because it was corrupt: {e}"
            ));
            return Ok((String::new(), LayersMetadata::default()));
        }
    };
    log.debug(&format!("Found image with identifier {:?}", img.identifier));
    let meta = match img.view.config.label(LIFECYCLE_METADATA) {
        None => LayersMetadata::default(),
        Some(l) if l.is_empty() => LayersMetadata::default(),
        Some(l) => match serde_json::from_str::<LayersMetadata>(&l) {
            Ok(m) => m,
            Err(e) => {
                // As in the Go lifecycle: no metadata and no previous image to reuse.
                log.warn(&format!(
                    "Ignoring label {LIFECYCLE_METADATA} of {reference}: {e}"
                ));
                return Ok((String::new(), LayersMetadata::default()));
            }
        },
    };
    let sbom = meta.sbom.as_ref().map(|s| s.sha.as_str()).unwrap_or("");
    if !sbom.is_empty() && !inputs.skip_layers && inputs.platform_api.at_least(0, 8) {
        log.info("Restoring data for SBOM from previous image");
        let restore = || -> Result<(), String> {
            let d: Digest = sbom.parse().map_err(|e| format!("{e}"))?;
            let r = img
                .view
                .open_layer(img.opened.store.as_ref(), &d)
                .map_err(|e| e.to_string())?;
            extract_into_layers(r, &inputs.layers).map_err(|e| e.to_string())?;
            Ok(())
        };
        restore().map_err(|e| fail(format!("retrieving launch SBOM layer: {e}")))?;
    }
    Ok((img.identifier, meta))
}
