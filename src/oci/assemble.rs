//! Assemble images: stream layers from directories into a store, then write config and manifest.

use std::path::Path;
use std::sync::Mutex;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};

use super::{media, BlobStore, Error, ImageConfig, RawManifest};
use crate::digest::Digest;
use crate::layer::{write_layer, CompressOptions, LayerInfo, TarOptions, TarWriter};

/// A layer already in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLayer {
    pub info: LayerInfo,
    pub media_type: String,
}

impl StoredLayer {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.info.size,
            &self.info.digest,
        )
    }
}

/// Stream a layer made by `fill` (which writes tar entries) into `store` in one pass.
pub fn push_layer(
    store: &dyn BlobStore,
    tar: &TarOptions,
    compress: &CompressOptions,
    manifest_type: &str,
    fill: &(dyn Fn(&mut TarWriter<&mut dyn std::io::Write>) -> std::io::Result<()> + Sync),
) -> Result<StoredLayer, Error> {
    push_layer_with(store, compress, manifest_type, &|w| {
        let mut t = TarWriter::new(w, tar.clone());
        fill(&mut t)?;
        t.finish()?;
        Ok(())
    })
}

/// Stream a layer whose tar is written by `fill` (a complete archive, end blocks included).
pub fn push_layer_with(
    store: &dyn BlobStore,
    compress: &CompressOptions,
    manifest_type: &str,
    fill: &(dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()> + Sync),
) -> Result<StoredLayer, Error> {
    let info: Mutex<Option<LayerInfo>> = Mutex::new(None);
    let (digest, size) = store.put_blob_stream(&|sink| {
        let li = write_layer(compress, sink, |w| fill(w))?;
        if let Ok(mut slot) = info.lock() {
            *slot = Some(li);
        }
        Ok(())
    })?;
    let info = info
        .into_inner()
        .ok()
        .flatten()
        .ok_or_else(|| Error::Layout("layer producer did not report its digests".into()))?;
    info.digest.verify(&digest, "layer stored")?;
    debug_assert_eq!(info.size, size);
    Ok(StoredLayer {
        media_type: media::layer_type(manifest_type, compress.compression).to_string(),
        info,
    })
}

/// A layer holding the tree at `src`, named `name` in the archive, with `name`'s parents.
pub fn push_dir_layer(
    store: &dyn BlobStore,
    src: &Path,
    name: &str,
    tar: &TarOptions,
    compress: &CompressOptions,
    manifest_type: &str,
) -> Result<StoredLayer, Error> {
    push_layer(store, tar, compress, manifest_type, &|t| {
        t.append_parents(name, false)?;
        t.append_tree(src, name)
    })
}

/// Write `config` (with the layers' diffIDs appended) and a manifest referencing `layers`.
/// Every blob is stored before the manifest is pushed.
pub fn write_image(
    store: &dyn BlobStore,
    config: &mut ImageConfig,
    layers: &[StoredLayer],
    manifest_type: &str,
    tags: &[String],
) -> Result<RawManifest, Error> {
    for l in layers {
        config.push_layer(&l.info.diff_id, None);
    }
    write_manifest(
        store,
        config,
        layers.iter().map(StoredLayer::descriptor).collect(),
        manifest_type,
        tags,
    )
}

/// Store `config` as is and a manifest over `layer_descs` (already in the store or mountable).
pub fn write_manifest(
    store: &dyn BlobStore,
    config: &ImageConfig,
    layer_descs: Vec<Descriptor>,
    manifest_type: &str,
    tags: &[String],
) -> Result<RawManifest, Error> {
    let (cfg_bytes, cfg_digest) = config.to_json()?;
    put_bytes(store, &cfg_digest, &cfg_bytes)?;
    let config_type = if manifest_type == media::DOCKER_MANIFEST {
        media::DOCKER_CONFIG
    } else {
        media::OCI_CONFIG
    };
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(manifest_type))
        .config(Descriptor::new(
            MediaType::from(config_type),
            cfg_bytes.len() as u64,
            &cfg_digest,
        ))
        .layers(layer_descs)
        .build()
        .map_err(|e| Error::Layout(format!("build manifest: {e}")))?;
    let raw = RawManifest::image(&m)?;
    store.put_manifest(&raw, tags)?;
    Ok(raw)
}

/// Store a small in-memory blob.
pub fn put_bytes(store: &dyn BlobStore, d: &Digest, bytes: &[u8]) -> Result<(), Error> {
    store.put_blob(d, bytes.len() as u64, &|| {
        Ok(Box::new(std::io::Cursor::new(bytes.to_vec())))
    })
}
