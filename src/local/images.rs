//! Images the local runner starts containers from: pulled from a registry or an OCI layout,
//! each layer unpacked once into a cache keyed by its diffID (`<root>/layers/<hex>`, whiteouts in
//! overlayfs's form), and stacked as overlay lower directories. Images that share a base share
//! its unpacked layers: a rebuilt app costs its new layers only, on disk and in time. Unpacking
//! goes to a temp dir renamed into place, so a cache entry is either complete or absent, even
//! after Ctrl-C.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::layer::extract::{apply_tar, drain, AbsolutePaths, ExtractOptions, Whiteouts};
use crate::oci::location::Location;
use crate::oci::view::ImageView;
use crate::oci::{ImageConfig, PlatformSpec};
use crate::registry::Client;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {reference}: {source}")]
    Oci {
        reference: String,
        #[source]
        source: crate::oci::Error,
    },
    #[error("image {reference}: not found")]
    NotFound { reference: String },
    #[error("image {reference}: unpack layer {diff_id}: {message}")]
    Unpack {
        reference: String,
        diff_id: String,
        message: String,
    },
    #[error("image cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An image ready to run.
#[derive(Clone, Debug)]
pub struct CachedImage {
    pub reference: String,
    pub digest: Digest,
    pub config: ImageConfig,
    /// The unpacked layers, lowest first: a container's read-only lower directories. Never
    /// modify them.
    pub layers: Vec<PathBuf>,
}

/// What a user watching a pull sees: each layer as it is fetched and unpacked.
pub trait PullProgress: Send + Sync {
    /// Layer `index` (from 1) of `count` of `reference` starts; `size` is its blob's size.
    fn layer_started(
        &self,
        reference: &str,
        diff_id: &Digest,
        index: usize,
        count: usize,
        size: u64,
    );
    /// `n` more bytes of the current layer's tar were unpacked.
    fn layer_bytes(&self, n: u64);
    fn layer_finished(&self);
}

/// Counts what passes through for a [`PullProgress`].
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn PullProgress,
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.layer_bytes(n as u64);
        Ok(n)
    }
}

pub struct ImageCache {
    root: PathBuf,
    client: Arc<Client>,
    progress: Option<Arc<dyn PullProgress>>,
    /// References already resolved in this process: a build pod names the builder image in
    /// five containers, and each would otherwise fetch its manifest and config again.
    seen: Mutex<HashMap<String, CachedImage>>,
}

impl ImageCache {
    pub fn new(root: impl Into<PathBuf>, client: Arc<Client>) -> Self {
        Self {
            root: root.into(),
            client,
            progress: None,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Report each layer unpacked to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn PullProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `reference` as users write it (`oci:DIR:TAG`, `docker://REF`, `REF`), for linux/amd64.
    pub fn get(&self, reference: &str) -> Result<CachedImage, ImageError> {
        if let Some(hit) = self
            .seen
            .lock()
            .ok()
            .and_then(|m| m.get(reference).cloned())
        {
            return Ok(hit);
        }
        let image = self.resolve(reference)?;
        if let Ok(mut m) = self.seen.lock() {
            m.insert(reference.to_string(), image.clone());
        }
        Ok(image)
    }

    fn resolve(&self, reference: &str) -> Result<CachedImage, ImageError> {
        let oci = |source| ImageError::Oci {
            reference: reference.to_string(),
            source,
        };
        let platform = PlatformSpec::new("linux", "amd64", None);
        let (store, view) = Location::parse(reference)
            .and_then(|l| l.load(&self.client, &platform))
            .map_err(oci)?;
        let view = view.ok_or_else(|| ImageError::NotFound {
            reference: reference.to_string(),
        })?;
        let ids = view.config.diff_ids().map_err(oci)?;
        let layers = match self.layered(reference, store.as_ref(), &view, &ids)? {
            Some(layers) => layers,
            None => {
                // A layer implies a directory where a lower layer has a file or symlink (e.g.
                // `lib/x` over a `lib -> usr/lib` link): only a merged tree means what the
                // image means there.
                let dir = self.root.join("flat").join(view.digest().hex());
                if !dir.is_dir() {
                    self.unpack(reference, store.as_ref(), &view, &ids, &[], &dir)?;
                }
                vec![dir]
            }
        };
        Ok(CachedImage {
            reference: reference.to_string(),
            digest: view.digest().clone(),
            config: view.config.clone(),
            layers,
        })
    }

    /// Each layer's own directory, lowest first; `None` when the layers cannot be stacked.
    fn layered(
        &self,
        reference: &str,
        store: &dyn crate::oci::BlobStore,
        view: &ImageView,
        ids: &[Digest],
    ) -> Result<Option<Vec<PathBuf>>, ImageError> {
        let mut layers = Vec::with_capacity(ids.len().max(1));
        for id in ids {
            let dir = self.root.join("layers").join(id.hex());
            if !dir.is_dir() {
                let one = std::slice::from_ref(id);
                match self.unpack(reference, store, view, one, &layers, &dir) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    // E.g. a cache on a file system that refuses overlayfs's whiteout xattrs
                    // (itself an overlay): a merged root needs none. A broken layer fails
                    // there again, with its own error.
                    Err(e @ ImageError::Unpack { .. }) => {
                        tracing::warn!(error = %e, "unpacking {reference} merged instead");
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                }
            }
            layers.push(dir);
        }
        if layers.is_empty() {
            // overlayfs needs a lower directory: an image without layers is an empty root.
            let empty = self.root.join("layers").join("empty");
            std::fs::create_dir_all(&empty).map_err(|source| ImageError::Cache {
                path: empty.clone(),
                source,
            })?;
            layers.push(empty);
        }
        Ok(Some(layers))
    }

    /// Unpack `ids` into `dir`: one layer in overlay form over `lowers`, or (no lowers) the
    /// whole image merged. False when the layer cannot be stacked on `lowers`.
    fn unpack(
        &self,
        reference: &str,
        store: &dyn crate::oci::BlobStore,
        view: &ImageView,
        ids: &[Digest],
        lowers: &[PathBuf],
        dir: &Path,
    ) -> Result<bool, ImageError> {
        let cache = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Cache { path, source }
        };
        let parent = dir.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(cache(parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(parent)
            .map_err(cache(parent))?;
        let layered = ids.len() == 1 && !lowers.is_empty();
        let opts = ExtractOptions {
            absolute: AbsolutePaths::Reroot,
            whiteouts: if ids.len() == 1 {
                Whiteouts::Overlay
            } else {
                Whiteouts::Apply
            },
            same_owner: true,
            strip_components: 0,
        };
        let quiet = NoProgress;
        let progress: &dyn PullProgress = self.progress.as_deref().unwrap_or(&quiet);
        let descriptors = view.image.layers();
        // `ids` continue the stack `lowers` ends (a merged unpack has no lowers).
        for (index, id) in (lowers.len()..).zip(ids) {
            let unpack_err = |message: String| ImageError::Unpack {
                reference: reference.to_string(),
                diff_id: id.to_string(),
                message,
            };
            let r = view
                .open_layer(store, id)
                .map_err(|e| unpack_err(e.to_string()))?;
            let size = descriptors.get(index).map_or(0, |d| d.size());
            progress.layer_started(reference, id, index + 1, descriptors.len(), size);
            let mut r = Counting { inner: r, progress };
            let stats =
                apply_tar(&mut r, tmp.path(), &opts).map_err(|e| unpack_err(e.to_string()))?;
            // The digests are checked at EOF: read what the tar reader left.
            drain(std::io::BufReader::new(r)).map_err(|e| unpack_err(e.to_string()))?;
            progress.layer_finished();
            if layered && !inherit_implied_dirs(tmp.path(), &stats.implied_dirs, lowers) {
                return Ok(false);
            }
        }
        // The temp dir's 0700 would hide the root from the container's user, unless the layer
        // sets the root's mode itself.
        use std::os::unix::fs::PermissionsExt;
        let root_mode = std::fs::metadata(tmp.path())
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o700);
        if root_mode == 0o700 {
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(cache(tmp.path()))?;
        }
        let kept = tmp.keep();
        match std::fs::rename(&kept, dir) {
            Ok(()) => Ok(true),
            // Someone else unpacked the same layer meanwhile: theirs is as good.
            Err(_) if dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&kept);
                Ok(true)
            }
            Err(e) => Err(ImageError::Cache {
                path: dir.to_path_buf(),
                source: e,
            }),
        }
    }
}

struct NoProgress;

impl PullProgress for NoProgress {
    fn layer_started(&self, _: &str, _: &Digest, _: usize, _: usize, _: u64) {}
    fn layer_bytes(&self, _: u64) {}
    fn layer_finished(&self) {}
}

/// A directory a layer implies without listing it shadows the lower layers' directory in an
/// overlay: give it their mode and owner, as a merged unpack would have kept them. False when
/// a lower layer has something other than a directory there.
fn inherit_implied_dirs(root: &Path, implied: &[PathBuf], lowers: &[PathBuf]) -> bool {
    use cap_std::ambient_authority;
    use cap_std::fs::{FileTypeExt, MetadataExt};
    use std::os::unix::fs::PermissionsExt;
    let Ok(dirs) = lowers
        .iter()
        .rev()
        .map(|l| cap_std::fs::Dir::open_ambient_dir(l, ambient_authority()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    for rel in implied {
        // The topmost lower layer that has the path decides, as overlayfs would.
        let found = dirs.iter().find_map(|d| d.symlink_metadata(rel).ok());
        let Some(meta) = found else { continue };
        // A whiteout (0/0 character device): nothing below shows through.
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            continue;
        }
        if !meta.is_dir() {
            return false;
        }
        let path = root.join(rel);
        let (mode, uid, gid) = (meta.mode() & 0o7777, meta.uid(), meta.gid());
        if std::os::unix::fs::chown(&path, Some(uid), Some(gid)).is_err()
            || std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).is_err()
        {
            return false;
        }
    }
    true
}
