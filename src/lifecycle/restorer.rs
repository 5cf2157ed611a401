//! The `restorer` phase (`cnb-lifecycle.md` §4.3): `store.toml` and layer metadata from the
//! previous image (via analyzed.toml) and the cache, cached layer data extracted in parallel
//! (stale layers removed, missing or corrupt cache entries skipped with a warning), then SBOM
//! files copied back to the buildpacks' layers.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::analyzed::AnalyzedMd;
use super::cli::Inputs;
use super::exitcode::{FAILED, INCOMPATIBLE_BUILDPACK_API, RESTORE_ERROR};
use super::image_access as access;
use super::images::Images;
use super::log::Log;
use super::order::{check_group_apis, read_group, GroupEntry};
use super::output::write_file;
use super::phase_error::PhaseError;
use super::privs;
use super::restore_layers::{
    data_actions, extract_into_layers, remove_layer, restore_metadata, restore_sboms, DataAction,
};
use super::user::RunAs;
use crate::cache::{CacheError, CacheMetadata, CacheReader, Location};
use crate::digest::Digest;
use crate::export::labels::LayersMetadata;

fn fail(m: impl Into<String>) -> PhaseError {
    PhaseError::new(RESTORE_ERROR, m)
}

pub fn run(inputs: &Inputs, log: &Log) -> Result<(), PhaseError> {
    if inputs.daemon {
        return Err(PhaseError::new(
            FAILED,
            "restoring with a docker daemon (-daemon) is not supported yet by this lifecycle",
        ));
    }
    if inputs.build_image.as_deref().is_some_and(|b| !b.is_empty()) {
        return Err(PhaseError::new(
            FAILED,
            "-build-image (build image extension) is not supported yet by this lifecycle",
        ));
    }
    let has_cache =
        inputs.cache_image.as_deref().is_some_and(|c| !c.is_empty()) || inputs.cache_dir.is_some();
    if !has_cache {
        log.warn("No cached data will be used, no cache specified.");
    }
    let group = read_group(&inputs.group)
        .map_err(|e| PhaseError::new(FAILED, format!("read buildpack group: {e}")))?;
    check_group_apis(&inputs.group, &group)
        .map_err(|m| PhaseError::new(INCOMPATIBLE_BUILDPACK_API, m))?;
    // Credentials are read before privileges are dropped.
    let images = Images::new(inputs).map_err(|e| fail(e.to_string()))?;
    let mut owned = vec![inputs.layers.as_path()];
    owned.extend(inputs.cache_dir.as_deref());
    privs::ensure_owner(inputs.uid, inputs.gid, &owned).map_err(|e| fail(e.to_string()))?;
    privs::run_as(inputs.uid, inputs.gid).map_err(|e| fail(e.to_string()))?;

    let app_meta = match AnalyzedMd::read(&inputs.analyzed)
        .map_err(|e| fail(format!("read analyzed metadata: {e}")))?
    {
        Some(mut a) => {
            if a.run_image.as_ref().is_some_and(|r| r.extend) {
                return Err(fail(format!(
                    "{}: run image extension (run-image.extend) is not supported yet by this lifecycle",
                    inputs.analyzed.display()
                )));
            }
            check_run_image(inputs, &images, &mut a, log)?;
            a.metadata
        }
        None => {
            log.warn(&format!(
                "no analyzed metadata found at path '{}'",
                inputs.analyzed.display()
            ));
            LayersMetadata::default()
        }
    };

    let location = Location::from_inputs(
        inputs.cache_image.as_deref(),
        inputs.cache_dir.as_deref(),
        images.client(),
    )
    .map_err(|e| fail(format!("initializing cache: {e}")))?;
    let cache: Option<Box<dyn CacheReader>> = match &location {
        Some(l) => Some(
            l.reader()
                .map_err(|e| fail(format!("initializing cache: {e}")))?,
        ),
        None => None,
    };
    let cache_meta = match &cache {
        Some(c) => {
            if !c.exists() {
                log.info("Layer cache not found");
            }
            c.metadata()
                .map_err(|e| fail(format!("retrieving cache metadata: {e}")))?
        }
        None => {
            log.debug("Usable cache not provided, using empty cache metadata");
            CacheMetadata::default()
        }
    };

    log.debug("Restoring Layer Metadata");
    let shas = restore_metadata(
        &inputs.layers,
        &group,
        &app_meta,
        &cache_meta,
        inputs.skip_layers,
        inputs.platform_api,
        log,
    )
    .map_err(|e| fail(e.to_string()))?;

    let mut jobs: Vec<Job> = Vec::new();
    for (bp, name, action) in data_actions(&inputs.layers, &group, &cache_meta, &shas)
        .map_err(|e| fail(format!("reading buildpack layer directory: {e}")))?
    {
        let id = format!("{}:{name}", bp.id);
        match action {
            DataAction::Remove { recorded, cached } => {
                log.info(&format!("Removing {id:?}, wrong sha"));
                log.debug(&format!("Layer sha: {recorded:?}, cache sha: {cached:?}"));
                remove_layer(&inputs.layers, &bp.id, &name)
                    .map_err(|e| fail(format!("removing layer: {e}")))?;
            }
            DataAction::Restore(sha) => {
                log.info(&format!("Restoring data for {id:?} from cache"));
                jobs.push(Job {
                    layer: Some((bp, name)),
                    sha,
                });
            }
        }
    }
    let sboms = inputs.platform_api.at_least(0, 8) && !inputs.skip_layers;
    if sboms && !cache_meta.sbom.sha.is_empty() {
        log.info("Restoring data for SBOM from cache");
        jobs.push(Job {
            layer: None,
            sha: cache_meta.sbom.sha.clone(),
        });
    }
    if let Some(c) = &cache {
        restore_data(inputs, c.as_ref(), &jobs, log)?;
    }
    if sboms {
        restore_sboms(&inputs.layers, &group).map_err(|e| fail(format!("restoring data: {e}")))?;
    }
    Ok(())
}

/// Platform API >= 0.14: the run image the analyzer chose must still be readable (no new
/// mirror choice); its target is filled in if analyzed.toml lacks it, and the file rewritten.
fn check_run_image(
    inputs: &Inputs,
    images: &Images,
    analyzed: &mut AnalyzedMd,
    log: &Log,
) -> Result<(), PhaseError> {
    if !inputs.platform_api.at_least(0, 14) {
        return Ok(());
    }
    let Some(run) = analyzed
        .run_image
        .as_mut()
        .filter(|r| !r.reference.is_empty())
    else {
        return Ok(());
    };
    access::ensure_read(images, &run.reference)
        .map_err(|m| fail(format!("validating registry read access: {m}")))?;
    if run.target.is_some() {
        return Ok(());
    }
    let img = match access::load(images, &run.reference) {
        Ok(Some(i)) => i,
        Ok(None) => return Err(fail(format!("run image {} not found", run.reference))),
        Err(e) => return Err(fail(format!("reading run image {}: {e}", run.reference))),
    };
    log.debug(&format!("Updating run image target from {}", run.reference));
    run.target = Some(access::target_of(&img.view));
    write_file(
        &inputs.analyzed,
        analyzed.render().as_bytes(),
        &RunAs::Current,
    )
    .map_err(|e| fail(e.to_string()))
}

/// A cached tar to extract: a buildpack layer, or the SBOM layer (`None`).
struct Job {
    layer: Option<(GroupEntry, String)>,
    sha: String,
}

impl Job {
    fn id(&self) -> String {
        match &self.layer {
            Some((bp, name)) => format!("{}:{name}", bp.id),
            None => "buildpacksio/lifecycle:cache.sbom".into(),
        }
    }
}

/// Extracts the jobs' tars on a few threads. A missing or corrupt cache entry is skipped with
/// a warning and its layer removed, so the buildpack rebuilds it; the export replaces it.
fn restore_data(
    inputs: &Inputs,
    cache: &dyn CacheReader,
    jobs: &[Job],
    log: &Log,
) -> Result<(), PhaseError> {
    let one = |job: &Job| -> Result<(), CacheError> {
        let d: Digest = job
            .sha
            .parse()
            .map_err(|e| CacheError::Read(format!("{e}")))?;
        log.debug(&format!("Retrieving data for {:?}", job.sha));
        let r = cache.open_layer(&d)?;
        extract_into_layers(r, &inputs.layers).map_err(|e| CacheError::Read(e.to_string()))?;
        Ok(())
    };
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                if let Err(e) = one(job) {
                    if let Ok(mut f) = failures.lock() {
                        f.push((i, e));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort_by_key(|(i, _)| *i);
    for (i, e) in failures {
        let job = &jobs[i];
        if !e.is_read() {
            return Err(fail(format!("restoring data: layer {}: {e}", job.id())));
        }
        log.warn(&format!("Skipping restore for layer {}: {e}", job.id()));
        match &job.layer {
            Some((bp, name)) => remove_layer(&inputs.layers, &bp.id, name)
                .map_err(|e| fail(format!("removing layer: {e}")))?,
            // Half-extracted SBOM files must not be copied back to the layers.
            None => match std::fs::remove_dir_all(inputs.layers.join("sbom/cache")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(fail(format!("removing partial SBOM cache: {e}")))
                }
                _ => {}
            },
        }
    }
    Ok(())
}
