//! Images the local runner starts containers from: pulled from a registry or an OCI layout and
//! unpacked once into a content-addressed cache (`<root>/rootfs/<manifest hex>`), so a warm run
//! only reads a manifest. Unpacking goes to a temp dir renamed into place, so a cache entry is
//! either complete or absent, even after Ctrl-C.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::layer::extract::{apply_tar, drain, AbsolutePaths, ExtractOptions};
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
    /// The unpacked root: a container's read-only lower layer. Never modify it.
    pub rootfs: PathBuf,
}

pub struct ImageCache {
    root: PathBuf,
    client: Arc<Client>,
    /// References already resolved in this process: a build pod names the builder image in
    /// five containers, and each would otherwise fetch its manifest and config again.
    seen: Mutex<HashMap<String, CachedImage>>,
}

impl ImageCache {
    pub fn new(root: impl Into<PathBuf>, client: Arc<Client>) -> Self {
        Self {
            root: root.into(),
            client,
            seen: Mutex::new(HashMap::new()),
        }
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
        let (store, what) = Location::parse(reference)
            .and_then(|l| l.open(&self.client))
            .map_err(oci)?;
        let platform = PlatformSpec::new("linux", "amd64", None);
        let view = ImageView::load(store.as_ref(), &what, &platform)
            .map_err(oci)?
            .ok_or_else(|| ImageError::NotFound {
                reference: reference.to_string(),
            })?;
        let rootfs = self.root.join("rootfs").join(view.digest().hex());
        if !rootfs.is_dir() {
            self.unpack(reference, store.as_ref(), &view, &rootfs)?;
        }
        Ok(CachedImage {
            reference: reference.to_string(),
            digest: view.digest().clone(),
            config: view.config.clone(),
            rootfs,
        })
    }

    fn unpack(
        &self,
        reference: &str,
        store: &dyn crate::oci::BlobStore,
        view: &ImageView,
        rootfs: &Path,
    ) -> Result<(), ImageError> {
        let cache = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Cache { path, source }
        };
        let parent = rootfs.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(cache(parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(parent)
            .map_err(cache(parent))?;
        let opts = ExtractOptions {
            absolute: AbsolutePaths::Reroot,
            whiteouts: true,
            same_owner: nix::unistd::geteuid().is_root(),
            strip_components: 0,
        };
        let ids = view.config.diff_ids().map_err(|source| ImageError::Oci {
            reference: reference.to_string(),
            source,
        })?;
        for id in ids {
            let unpack_err = |message: String| ImageError::Unpack {
                reference: reference.to_string(),
                diff_id: id.to_string(),
                message,
            };
            let mut r = view
                .open_layer(store, &id)
                .map_err(|e| unpack_err(e.to_string()))?;
            apply_tar(&mut r, tmp.path(), &opts).map_err(|e| unpack_err(e.to_string()))?;
            // The digests are checked at EOF: read what the tar reader left.
            drain(std::io::BufReader::new(r)).map_err(|e| unpack_err(e.to_string()))?;
        }
        // The temp dir's 0700 would hide the root from the container's user.
        use std::os::unix::fs::PermissionsExt;
        let root_mode = std::fs::metadata(tmp.path().join("."))
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o700);
        if root_mode == 0o700 {
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(cache(tmp.path()))?;
        }
        let kept = tmp.keep();
        match std::fs::rename(&kept, rootfs) {
            Ok(()) => Ok(()),
            // Someone else unpacked the same image meanwhile: theirs is as good.
            Err(_) if rootfs.is_dir() => {
                let _ = std::fs::remove_dir_all(&kept);
                Ok(())
            }
            Err(e) => Err(ImageError::Cache {
                path: rootfs.to_path_buf(),
                source: e,
            }),
        }
    }
}
