//! The cache image (`lc:cache/image_cache.go`): no base, OCI media types, `os` of the build,
//! no architecture, one gzip layer per cached tar, metadata in a label.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Mutex;

use oci_spec::image::Descriptor;

use super::{CacheError, CacheMetadata, CacheReader, CacheWriter, TarFill, METADATA_LABEL};
use crate::digest::Digest;
use crate::layer::{CompressOptions, Compression, NORMALIZED_MTIME};
use crate::oci::assemble::{push_layer_with, write_manifest};
use crate::oci::config::rfc3339;
use crate::oci::manifest::descriptor_digest;
use crate::oci::view::ImageView;
use crate::oci::{media, BlobStore, ImageConfig, PlatformSpec};

/// A cache image opened for reading; a missing image is an empty cache.
pub struct ImageCache {
    store: Box<dyn BlobStore>,
    name: String,
    image: Option<ImageView>,
}

impl ImageCache {
    /// Opens `reference` (a tag or digest) in `store`; `name` is the full image name.
    pub fn open(
        store: Box<dyn BlobStore>,
        reference: &str,
        name: &str,
    ) -> Result<Self, CacheError> {
        let image = ImageView::load(store.as_ref(), reference, &PlatformSpec::host())
            .map_err(|e| CacheError::Other(format!("accessing cache image {name:?}: {e}")))?;
        Ok(Self {
            store,
            name: name.to_string(),
            image,
        })
    }

    /// The layers of the committed cache image by diffID (blobs a new cache may reuse).
    pub fn layers(&self) -> HashMap<Digest, Descriptor> {
        let Some(img) = &self.image else {
            return HashMap::new();
        };
        img.config
            .diff_ids()
            .unwrap_or_default()
            .into_iter()
            .zip(img.image.layers().iter().cloned())
            .collect()
    }
}

impl CacheReader for ImageCache {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn exists(&self) -> bool {
        self.image.is_some()
    }

    fn metadata(&self) -> Result<CacheMetadata, CacheError> {
        Ok(self
            .image
            .as_ref()
            .and_then(|i| i.config.label(METADATA_LABEL))
            .map(|l| CacheMetadata::decode(&l))
            .unwrap_or_default())
    }

    fn open_layer(&self, diff_id: &Digest) -> Result<Box<dyn Read + Send + '_>, CacheError> {
        let img = self
            .image
            .as_ref()
            .ok_or_else(|| CacheError::Read(format!("cache image {} not found", self.name)))?;
        img.open_layer(self.store.as_ref(), diff_id)
            .map_err(|e| CacheError::Read(format!("layer with SHA '{diff_id}': {e}")))
    }
}

/// A new cache image, pushed to `tag` of `store` on commit.
pub struct ImageCacheWriter {
    store: Box<dyn BlobStore>,
    tag: String,
    name: String,
    previous: HashMap<Digest, Descriptor>,
    compress: CompressOptions,
    layers: Mutex<HashMap<Digest, Descriptor>>,
    done: Mutex<bool>,
}

impl ImageCacheWriter {
    /// `previous`: the committed cache image, whose blobs are reused by diffID.
    pub fn create(
        store: Box<dyn BlobStore>,
        tag: &str,
        name: &str,
        previous: Option<&ImageCache>,
    ) -> Self {
        Self {
            store,
            tag: tag.to_string(),
            name: name.to_string(),
            previous: previous.map(ImageCache::layers).unwrap_or_default(),
            compress: CompressOptions::new(Compression::Gzip),
            layers: Mutex::new(HashMap::new()),
            done: Mutex::new(false),
        }
    }

    fn record(&self, d: Digest, desc: Descriptor) -> Result<(), CacheError> {
        self.layers
            .lock()
            .map_err(|_| CacheError::Other("cache writer lock poisoned".into()))?
            .insert(d, desc);
        Ok(())
    }

    fn check_open(&self) -> Result<(), CacheError> {
        match self.done.lock() {
            Ok(d) if !*d => Ok(()),
            _ => Err(CacheError::Other(
                "cache cannot be modified after commit".into(),
            )),
        }
    }
}

impl CacheWriter for ImageCacheWriter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn add_layer(&self, fill: &TarFill<'_>) -> Result<Digest, CacheError> {
        self.check_open()?;
        let stored = push_layer_with(
            self.store.as_ref(),
            &self.compress,
            media::OCI_MANIFEST,
            fill,
        )?;
        let d = stored.info.diff_id.clone();
        self.record(d.clone(), stored.descriptor())?;
        Ok(d)
    }

    fn reuse_layer(&self, diff_id: &Digest) -> Result<(), CacheError> {
        self.check_open()?;
        let desc = self.previous.get(diff_id).ok_or_else(|| {
            CacheError::Read(format!(
                "layer with SHA '{diff_id}' not found in cache image {}",
                self.name
            ))
        })?;
        let blob = descriptor_digest(desc)?;
        match self.store.blob_size(&blob)? {
            Some(n) if n == desc.size() => self.record(diff_id.clone(), desc.clone()),
            _ => Err(CacheError::Read(format!(
                "layer with SHA '{diff_id}' (blob {blob}) is missing from cache image {}",
                self.name
            ))),
        }
    }

    fn commit(&self, metadata: &CacheMetadata, order: &[Digest]) -> Result<(), CacheError> {
        self.check_open()?;
        if let Ok(mut d) = self.done.lock() {
            *d = true;
        }
        let mut layers = self
            .layers
            .lock()
            .map_err(|_| CacheError::Other("cache writer lock poisoned".into()))?
            .clone();
        let mut order = order.to_vec();
        if order.is_empty() {
            // An image needs a layer: the empty tar (1024 zero bytes), as imgutil adds.
            let stored = push_layer_with(
                self.store.as_ref(),
                &self.compress,
                media::OCI_MANIFEST,
                &|w: &mut dyn Write| w.write_all(&[0u8; 1024]),
            )?;
            order.push(stored.info.diff_id.clone());
            layers.insert(stored.info.diff_id.clone(), stored.descriptor());
        }
        let mut config = ImageConfig::new(std::env::consts::OS, "");
        config.set_created(Some(&rfc3339(NORMALIZED_MTIME as i64)));
        config.set_label(METADATA_LABEL, &metadata.encode());
        let mut descs = Vec::with_capacity(order.len());
        for d in &order {
            let desc = layers.get(d).ok_or_else(|| {
                CacheError::Other(format!("cache layer {d} was neither added nor reused"))
            })?;
            config
                .inner_mut()
                .rootfs_mut()
                .diff_ids_mut()
                .push(d.to_string());
            descs.push(desc.clone());
        }
        // Every blob is stored by now; the manifest goes last.
        write_manifest(
            self.store.as_ref(),
            &config,
            descs,
            media::OCI_MANIFEST,
            std::slice::from_ref(&self.tag),
        )?;
        Ok(())
    }
}
