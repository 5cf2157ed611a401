//! Reading one image out of a store: its manifest (one platform of an index), its config, and
//! its layers by diffID as verified, uncompressed tar streams.

use std::io::Read;

use oci_spec::image::{Descriptor, ImageManifest};

use super::manifest::{descriptor_digest, select_platform};
use super::{BlobStore, Error, ImageConfig, Manifest, PlatformSpec, RawManifest};
use crate::digest::{Digest, VerifyingReader};
use crate::layer::Compression;

/// An image's manifest and config.
#[derive(Clone, Debug)]
pub struct ImageView {
    /// The image manifest (never an index), as stored.
    pub manifest: RawManifest,
    pub image: ImageManifest,
    pub config: ImageConfig,
}

impl ImageView {
    /// Loads `reference` (tag, digest, or "" for a layout's only image) from `store`; an index
    /// resolves to `platform`. `Ok(None)` when the store has no such image.
    pub fn load(
        store: &dyn BlobStore,
        reference: &str,
        platform: &PlatformSpec,
    ) -> Result<Option<Self>, Error> {
        let root = match store.get_manifest(reference) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let manifest = match root.parse()? {
            Manifest::Image(_) => root,
            Manifest::Index(idx) => {
                let d = descriptor_digest(select_platform(&idx, platform)?)?;
                store.get_manifest(&d.to_string())?
            }
        };
        let Manifest::Image(image) = manifest.parse()? else {
            return Err(Error::Unsupported(format!(
                "{}: an index inside an index",
                store.location()
            )));
        };
        let cd = descriptor_digest(image.config())?;
        let config = ImageConfig::from_json(
            &store.read_blob(&cd, Some(image.config().size()))?,
            &format!("image config {cd} in {}", store.location()),
        )?;
        Ok(Some(Self {
            manifest,
            image,
            config,
        }))
    }

    /// The manifest digest (what `repo@digest` names).
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// The layer descriptor whose uncompressed tar has `diff_id`.
    pub fn layer(&self, diff_id: &Digest) -> Result<Option<Descriptor>, Error> {
        let ids = self.config.diff_ids()?;
        Ok(ids
            .iter()
            .position(|d| d == diff_id)
            .and_then(|i| self.image.layers().get(i).cloned()))
    }

    /// The uncompressed tar of the layer `diff_id`. The stream fails at its end unless both the
    /// blob digest and the diffID match, so read it to EOF before trusting what it produced.
    pub fn open_layer<'a>(
        &self,
        store: &'a dyn BlobStore,
        diff_id: &Digest,
    ) -> Result<Box<dyn Read + Send + 'a>, Error> {
        let desc = self.layer(diff_id)?.ok_or_else(|| Error::NotFound {
            what: format!("layer {diff_id}"),
            location: store.location(),
        })?;
        let blob = store.open_blob(&descriptor_digest(&desc)?, Some(desc.size()))?;
        let tar: Box<dyn Read + Send + 'a> =
            match Compression::from_media_type(desc.media_type().as_ref()) {
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
                Compression::Zstd => Box::new(
                    zstd::stream::read::Decoder::new(blob)
                        .map_err(|e| Error::io(format!("zstd layer {diff_id}"), e))?,
                ),
                Compression::None => blob,
            };
        Ok(Box::new(VerifyingReader::new(
            tar,
            diff_id.clone(),
            None,
            format!("layer {diff_id} in {}", store.location()),
        )))
    }
}
