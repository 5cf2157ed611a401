//! Copy images between stores (layout ↔ registry, registry ↔ registry): blobs first, in
//! parallel and bounded, skipping blobs the destination has and mounting blobs held by another
//! repository of the same registry; manifests last.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::Descriptor;

use super::manifest::{descriptor_digest, select_platform};
use super::{BlobStore, Error, Manifest, PlatformSpec, RawManifest};

#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Blobs transferred at once (0: 4).
    pub parallel: usize,
    /// Copy only this platform's manifest out of an index.
    pub platform: Option<PlatformSpec>,
}

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyStats {
    pub uploaded: usize,
    pub skipped: usize,
    pub mounted: usize,
    pub bytes: u64,
}

/// Copy the image `src_ref` of `src` into `dst` under `tags`; returns the root manifest written.
pub fn copy_image(
    src: &dyn BlobStore,
    src_ref: &str,
    dst: &dyn BlobStore,
    tags: &[String],
    opts: &CopyOptions,
) -> Result<(RawManifest, CopyStats), Error> {
    let root = src.get_manifest(src_ref)?;
    let mut stats = CopyStats::default();
    let written = copy_manifest(src, root, dst, tags, opts, &mut stats)?;
    Ok((written, stats))
}

fn copy_manifest(
    src: &dyn BlobStore,
    m: RawManifest,
    dst: &dyn BlobStore,
    tags: &[String],
    opts: &CopyOptions,
    stats: &mut CopyStats,
) -> Result<RawManifest, Error> {
    match m.parse()? {
        Manifest::Image(im) => {
            let mut blobs = vec![im.config().clone()];
            blobs.extend(im.layers().iter().cloned());
            copy_blobs(src, dst, &blobs, opts, stats)?;
            dst.put_manifest(&m, tags)?;
            Ok(m)
        }
        Manifest::Index(idx) => {
            if let Some(p) = &opts.platform {
                let d = select_platform(&idx, p)?;
                let child = src.get_manifest(&descriptor_digest(d)?.to_string())?;
                return copy_manifest(src, child, dst, tags, opts, stats);
            }
            for d in idx.manifests() {
                let child = src.get_manifest(&descriptor_digest(d)?.to_string())?;
                copy_manifest(src, child, dst, &[], opts, stats)?;
            }
            dst.put_manifest(&m, tags)?;
            Ok(m)
        }
    }
}

/// Copy blobs with at most `parallel` transfers at once.
pub fn copy_blobs(
    src: &dyn BlobStore,
    dst: &dyn BlobStore,
    blobs: &[Descriptor],
    opts: &CopyOptions,
    stats: &mut CopyStats,
) -> Result<(), Error> {
    let parallel = if opts.parallel == 0 { 4 } else { opts.parallel };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<Outcome, Error>>> = Mutex::new(Vec::new());
    let same_registry = match (src.registry_repo(), dst.registry_repo()) {
        (Some((sr, srepo)), Some((dr, _))) if sr == dr => Some(srepo),
        _ => None,
    };
    std::thread::scope(|s| {
        for _ in 0..parallel.min(blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = blobs.get(i) else { break };
                let r = copy_blob(src, dst, d, same_registry.as_deref());
                let failed = r.is_err();
                if let Ok(mut v) = results.lock() {
                    v.push(r);
                }
                if failed {
                    // Stop handing out work; running transfers finish.
                    next.store(blobs.len(), Ordering::Relaxed);
                    break;
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::Layout("copy worker panicked".into()))?;
    for r in results {
        match r? {
            Outcome::Skipped => stats.skipped += 1,
            Outcome::Mounted => stats.mounted += 1,
            Outcome::Uploaded(n) => {
                stats.uploaded += 1;
                stats.bytes += n;
            }
        }
    }
    Ok(())
}

enum Outcome {
    Skipped,
    Mounted,
    Uploaded(u64),
}

fn copy_blob(
    src: &dyn BlobStore,
    dst: &dyn BlobStore,
    d: &Descriptor,
    same_registry_repo: Option<&str>,
) -> Result<Outcome, Error> {
    let digest = descriptor_digest(d)?;
    if dst.blob_size(&digest)?.is_some() {
        return Ok(Outcome::Skipped);
    }
    if let Some(from) = same_registry_repo {
        if dst.mount_blob(&digest, from)? {
            return Ok(Outcome::Mounted);
        }
    }
    let size = d.size();
    dst.put_blob(&digest, size, &|| src.open_blob(&digest, Some(size)))?;
    Ok(Outcome::Uploaded(size))
}
