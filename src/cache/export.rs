//! Cache export (`cnb-lifecycle.md` §7.6, `lc:phase/cache.go`): every `cache = true` layer of
//! the group's buildpacks (group order, layers by name) and the SBOM cache layer
//! (`<layers>/sbom/cache`), each reused from the previous cache when its diffID is unchanged
//! and otherwise streamed into the new one; then the metadata and an atomic commit.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{
    CacheError, CacheMetadata, CacheReader, CacheWriter, ImageCache, ImageCacheWriter, Location,
    VolumeCache, VolumeCacheWriter,
};
use crate::digest::{Digest, HashWriter};
use crate::export::inputs::buildpack_layers;
use crate::export::labels::{BuildpackLayers, LayerMetadata};
use crate::export::layers::{Planned, Source};
use crate::lifecycle::api::ApiVersion;
use crate::lifecycle::log::Log;
use crate::lifecycle::order::GroupEntry;

pub struct ExportOptions {
    pub layers_dir: PathBuf,
    /// group.toml's buildpacks, in order.
    pub group: Vec<GroupEntry>,
    /// Owner of the entries below each layer directory (`CNB_USER_ID`/`CNB_GROUP_ID`).
    pub uid: u64,
    pub gid: u64,
    /// The SBOM cache layer is written from Platform API 0.8.
    pub platform_api: ApiVersion,
}

/// What a cache export did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheReport {
    /// The metadata committed with the cache.
    pub metadata: CacheMetadata,
    /// Layer ids (`<bp-id>:<layer>`, `buildpacksio/lifecycle:cache.sbom`) written anew.
    pub added: Vec<String>,
    /// Layer ids kept from the previous cache.
    pub reused: Vec<String>,
}

/// Opens the previous cache at `location`, exports into a new one there and commits it.
pub fn export_to(
    location: &Location,
    opts: &ExportOptions,
    log: &Log,
) -> Result<CacheReport, CacheError> {
    match location {
        Location::Dir(dir) => {
            let previous = VolumeCache::open(dir);
            let meta = previous_metadata(&previous, log)?;
            let writer = VolumeCacheWriter::create(dir)?;
            export(opts, &writer, &meta, log)
        }
        Location::Image { name, repo, tag } => {
            let previous = ImageCache::open(Box::new(repo.clone()), tag, name)?;
            let meta = previous_metadata(&previous, log)?;
            let writer =
                ImageCacheWriter::create(Box::new(repo.clone()), tag, name, Some(&previous));
            export(opts, &writer, &meta, log)
        }
    }
}

fn previous_metadata(c: &dyn CacheReader, log: &Log) -> Result<CacheMetadata, CacheError> {
    if !c.exists() {
        log.info("Layer cache not found");
    }
    c.metadata()
}

/// A layer to cache.
struct Job {
    id: String,
    dir: PathBuf,
    previous_sha: String,
    /// (buildpack index, layer name, its metadata); `None` for the SBOM layer.
    layer: Option<(usize, String, LayerMetadata)>,
}

/// Writes the cache: see the module doc. A layer that cannot be cached is a warning; the SBOM
/// layer, the metadata and the commit are errors (the exporter only warns about them too).
pub fn export(
    opts: &ExportOptions,
    writer: &dyn CacheWriter,
    previous: &CacheMetadata,
    log: &Log,
) -> Result<CacheReport, CacheError> {
    let mut meta = CacheMetadata::default();
    let mut jobs = Vec::new();
    for (i, bp) in opts.group.iter().enumerate() {
        meta.buildpacks.push(BuildpackLayers {
            key: bp.id.clone(),
            version: bp.version.clone(),
            ..Default::default()
        });
        let (layers, _) = buildpack_layers(&opts.layers_dir, bp).map_err(|e| {
            CacheError::Other(format!("reading layers for buildpack '{}': {e}", bp.id))
        })?;
        for l in layers.into_iter().filter(|l| l.toml.cache) {
            let id = format!("{}:{}", bp.id, l.name);
            let Some(dir) = l.dir else {
                log.warn(&format!(
                    "Failed to cache layer '{id}' because it has no contents"
                ));
                continue;
            };
            let data = serde_json::to_value(toml::Value::Table(l.toml.metadata.clone()))
                .unwrap_or_default();
            let data = match data.as_object() {
                Some(o) if o.is_empty() => serde_json::Value::Null,
                _ => data,
            };
            let previous_sha = previous
                .layer(&bp.id, &l.name)
                .map(|m| m.sha.clone())
                .unwrap_or_default();
            jobs.push(Job {
                id,
                dir,
                previous_sha,
                layer: Some((
                    i,
                    l.name.clone(),
                    LayerMetadata {
                        sha: String::new(),
                        data,
                        build: l.toml.build,
                        launch: l.toml.launch,
                        cache: l.toml.cache,
                    },
                )),
            });
        }
    }
    let sbom = opts.layers_dir.join("sbom/cache");
    if opts.platform_api.at_least(0, 8) && sbom.is_dir() {
        jobs.push(Job {
            id: "buildpacksio/lifecycle:cache.sbom".into(),
            dir: sbom,
            previous_sha: previous.sbom.sha.clone(),
            layer: None,
        });
    }

    let results = run_jobs(&jobs, |j| add_or_reuse(writer, j, opts.uid, opts.gid));
    let mut report = CacheReport::default();
    let mut order = Vec::new();
    for (job, result) in jobs.into_iter().zip(results) {
        let (d, reused, warning) = match result {
            Ok(v) => v,
            Err(e) if job.layer.is_some() => {
                log.warn(&format!("Failed to cache layer '{}': {e}", job.id));
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(w) = warning {
            log.warn(&w);
        }
        if reused {
            log.info(&format!("Reusing cache layer '{}'", job.id));
            report.reused.push(job.id.clone());
        } else {
            log.info(&format!("Adding cache layer '{}'", job.id));
            report.added.push(job.id.clone());
        }
        log.debug(&format!("Layer '{}' SHA: {d}", job.id));
        match job.layer {
            Some((i, name, mut lm)) => {
                lm.sha = d.to_string();
                meta.buildpacks[i].layers.insert(name, lm);
            }
            None => meta.sbom.sha = d.to_string(),
        }
        if !order.contains(&d) {
            order.push(d);
        }
    }
    writer
        .commit(&meta, &order)
        .map_err(|e| CacheError::Other(format!("committing cache {}: {e}", writer.name())))?;
    report.metadata = meta;
    Ok(report)
}

/// Runs `f` over the jobs on a few threads; results in job order.
fn run_jobs<T: Send>(jobs: &[Job], f: impl Fn(&Job) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
        .min(jobs.len());
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let r = f(job);
                if let Ok(mut v) = slots.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// The layer tar of a directory, exactly as the exporter writes it (§7.3): parents with their
/// on-disk owner and mode, then the tree owned by `uid:gid`, absolute names, fixed mtimes.
fn dir_layer(dir: &Path, uid: u64, gid: u64) -> Planned {
    Planned {
        id: String::new(),
        created_by: String::new(),
        source: Source::Dir(dir.to_path_buf()),
        previous_shas: Vec::new(),
        uid,
        gid,
    }
}

/// `(diffID, reused, warning)`.
fn add_or_reuse(
    writer: &dyn CacheWriter,
    job: &Job,
    uid: u64,
    gid: u64,
) -> Result<(Digest, bool, Option<String>), CacheError> {
    let layer = dir_layer(&job.dir, uid, gid);
    let fill = |w: &mut dyn Write| layer.write(w).map(|_| ());
    let mut warning = None;
    if !job.previous_sha.is_empty() {
        // Hash only, to learn whether the layer changed since the previous cache.
        let mut hw = HashWriter::new(io::sink());
        fill(&mut hw).map_err(|e| CacheError::Other(format!("{}: {e}", job.dir.display())))?;
        let (_, d, _) = hw.finish();
        if d.to_string() == job.previous_sha {
            match writer.reuse_layer(&d) {
                Ok(()) => return Ok((d, true, None)),
                Err(e) if e.is_read() => warning = Some(format!("{e}, skipping reuse")),
                Err(e) => return Err(e),
            }
        }
    }
    let d = writer.add_layer(&fill)?;
    Ok((d, false, warning))
}
