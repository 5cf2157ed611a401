//! The `rebaser` phase (`cnb-lifecycle.md` §4.7, §10): pick the new run image (flag, env, or
//! the app's run image metadata with mirror choice), rebase, save to every name, report.

use super::cli::Inputs;
use super::exitcode;
use super::images::{check_output_names, Images, Opened};
use super::log::Log;
use super::phase_error::PhaseError;
use super::privs;
use crate::export::labels::{LayersMetadata, LIFECYCLE_METADATA};
use crate::export::rebase::{rebase, Loaded, RebaseError, RebaseOptions};
use crate::oci::view::ImageView;
use crate::oci::{ImageConfig, PlatformSpec};
use crate::registry::parse_reference;

fn rebase_err(e: impl std::fmt::Display) -> PhaseError {
    PhaseError::new(exitcode::REBASE_ERROR, e.to_string())
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), PhaseError> {
    if inputs.daemon {
        return Err(PhaseError::new(
            exitcode::FAILED,
            "rebasing in a docker daemon (-daemon) is not supported by this lifecycle",
        ));
    }
    check_output_names(&inputs.images, false)
        .map_err(|m| PhaseError::new(exitcode::INVALID_ARGS, m))?;
    let images = Images::new(inputs).map_err(rebase_err)?;
    privs::run_as(inputs.uid, inputs.gid).map_err(rebase_err)?;

    let app_name = inputs
        .previous_image
        .clone()
        .unwrap_or_else(|| inputs.images[0].clone());
    let app = images.open(&app_name).map_err(rebase_err)?;
    let app_view = load(&app, &PlatformSpec::host())
        .map_err(|e| rebase_err(format!("app image {app_name}: {e}")))?;
    let run_name = match &inputs.run_image {
        Some(r) => r.clone(),
        None => run_image_from_metadata(&images, &app_name, &app_view.config, log)?,
    };
    let run = images
        .open(&run_name)
        .map_err(|e| rebase_err(format!("run image {run_name}: {e}")))?;
    // An index is resolved to the app's platform; the label records the digest reference.
    let platform = PlatformSpec::new(&app_view.config.os(), &app_view.config.architecture(), None);
    let run_view =
        load(&run, &platform).map_err(|e| rebase_err(format!("run image {run_name}: {e}")))?;
    let run_repo = parse_reference(&run_name)
        // Fully qualified like go-containerregistry (`index.docker.io/...`), so kpack sees the
        // same reference it would have written.
        .map(|r| format!("{}/{}", r.resolve_registry(), r.repository()))
        .map_err(rebase_err)?;
    let outputs = images.outputs(&inputs.images).map_err(rebase_err)?;
    let opts = RebaseOptions {
        run_image_name: run_name.clone(),
        run_image_reference: format!("{run_repo}@{}", run_view.digest()),
        force: inputs.force,
        tags: outputs.tags.clone(),
    };
    let report = rebase(
        &Loaded {
            store: app.store.as_ref(),
            name: app_name.clone(),
            view: app_view,
        },
        &Loaded {
            store: run.store.as_ref(),
            name: run_name.clone(),
            view: run_view,
        },
        outputs.target.store.as_ref(),
        &opts,
    )
    .map_err(|e| match e {
        RebaseError::Incompatible(m) => rebase_err(format!("{m} (use -force to rebase anyway)")),
        e => rebase_err(e),
    })?;
    for w in &report.warnings {
        log.warn(&format!("{w}; rebasing anyway because of -force"));
    }
    images
        .finish(
            &outputs,
            &report.digest,
            report.manifest_size,
            &inputs.report,
            log,
        )
        .map_err(rebase_err)
}

/// The image's manifest (one platform of an index) and config.
fn load(o: &Opened, platform: &PlatformSpec) -> Result<ImageView, crate::oci::Error> {
    ImageView::load(o.store.as_ref(), &o.reference, platform)?
        .ok_or_else(|| crate::oci::Error::Layout("image not found".into()))
}

/// No `-run-image`: the app's `runImage.image` and mirrors (or the deprecated `stack`), the
/// mirror on the app's registry when readable, else the first readable one.
fn run_image_from_metadata(
    images: &Images,
    app_name: &str,
    app: &ImageConfig,
    log: &Log,
) -> Result<String, PhaseError> {
    let meta: LayersMetadata = app
        .label(LIFECYCLE_METADATA)
        .and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or_default();
    let (image, mirrors) = if !meta.run_image.image.is_empty() {
        (meta.run_image.image, meta.run_image.mirrors)
    } else {
        (meta.stack.run_image.image, meta.stack.run_image.mirrors)
    };
    if image.is_empty() {
        return Err(rebase_err(format!(
            "set app image: {app_name} has no run image metadata; pass -run-image"
        )));
    }
    let app_registry = parse_reference(app_name)
        .map(|r| r.resolve_registry().to_string())
        .unwrap_or_default();
    let mut candidates: Vec<String> = std::iter::once(image).chain(mirrors).collect();
    // Same registry first, in metadata order; then the rest.
    candidates.sort_by_key(|c| {
        parse_reference(c)
            .map(|r| r.resolve_registry() != app_registry)
            .unwrap_or(true)
    });
    for c in &candidates {
        match images
            .open(c)
            .and_then(|o| o.store.get_manifest(&o.reference))
        {
            Ok(_) => return Ok(c.clone()),
            Err(e) => log.debug(&format!("run image {c} is not readable: {e}")),
        }
    }
    Err(rebase_err(format!(
        "none of the run images is readable: {}",
        candidates.join(", ")
    )))
}
