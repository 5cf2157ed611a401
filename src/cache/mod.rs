//! The build cache (`cnb-lifecycle.md` §3.17, §7.6): layers buildpacks marked `cache = true`,
//! kept between builds in a volume directory or in a cache image, plus their metadata.
//!
//! Two backends with the Go lifecycle's formats:
//! - [`volume`][]: `<dir>/committed/sha256:<hex>.tar` (uncompressed layer tars named by diffID)
//!   and `<dir>/committed/io.buildpacks.lifecycle.cache.metadata` (JSON); a new cache is built
//!   in `<dir>/staging/` and swapped in on commit (`committed-backup/` only during the swap).
//! - [`image`][]: an image with no base whose layers are the cached tars (gzip) and whose label
//!   `io.buildpacks.lifecycle.cache.metadata` holds the metadata; its manifest is pushed only
//!   after every blob is stored.
//!
//! Reading ([`CacheReader`]): metadata, and a layer by diffID as a verified tar stream (a
//! missing or corrupt layer is [`CacheError::Read`], which callers skip with a warning).
//! Writing ([`CacheWriter`]): layers streamed from a tar producer (hash and store, plus gzip
//! and upload for an image, in one pass), layers reused from the previous cache without
//! writing or uploading them again, then an atomic commit.
//!
//! The exporter writes the cache with one call:
//!
//! ```ignore
//! let location = cache::Location::from_inputs(
//!     inputs.cache_image.as_deref(), inputs.cache_dir.as_deref(), images.client())?;
//! if let Some(location) = location {
//!     match cache::export_to(&location, &cache::ExportOptions {
//!         layers_dir: inputs.layers.clone(), group: group.clone(),
//!         uid: inputs.uid.into(), gid: inputs.gid.into(), platform_api: inputs.platform_api,
//!     }, log) {
//!         Ok(report) => {}                       // report.added / report.reused
//!         Err(e) => log.warn(&format!("Failed to export cache: {e}")), // never fails the phase
//!     }
//! }
//! ```
//!
//! or, with a writer it opened itself, [`export`]`(&opts, &writer, &previous_metadata, log)`.

pub mod export;
pub mod image;
pub mod volume;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::digest::Digest;
use crate::export::labels::{BuildpackLayers, LayerMetadata, ShaRef};
use crate::fsutil::PathError;
use crate::registry::{parse_reference, Client, Repo};

pub use export::{export, export_to, CacheReport, ExportOptions};
pub use image::{ImageCache, ImageCacheWriter};
pub use volume::{VolumeCache, VolumeCacheWriter};

/// The cache image label, and the metadata file's name in a volume cache.
pub const METADATA_LABEL: &str = "io.buildpacks.lifecycle.cache.metadata";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A cached layer that is missing or does not match its digest. Never fatal: the layer is
    /// skipped (restore) or written again (export).
    #[error("{0}")]
    Read(String),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Image(#[from] crate::oci::Error),
    #[error("{0}")]
    Other(String),
}

impl CacheError {
    pub fn is_read(&self) -> bool {
        matches!(self, CacheError::Read(_))
    }
}

/// `io.buildpacks.lifecycle.cache.metadata` (Go field order: `sbom`, `buildpacks`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    #[serde(default)]
    pub sbom: ShaRef,
    /// Go writes `null` for none (a nil slice).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        serialize_with = "empty_as_null"
    )]
    pub buildpacks: Vec<BuildpackLayers>,
}

fn empty_as_null<S: serde::Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl CacheMetadata {
    /// Parses the label or file contents; unreadable metadata is an empty cache, as in the Go
    /// lifecycle (the next export replaces it).
    pub fn decode(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// JSON as Go's `encoding/json` writes it, HTML-safe escapes included.
    pub fn encode(&self) -> String {
        go_json_escape(&serde_json::to_string(self).unwrap_or_else(|_| "{}".into()))
    }

    pub fn buildpack(&self, id: &str) -> Option<&BuildpackLayers> {
        self.buildpacks.iter().find(|b| b.key == id)
    }

    pub fn layer(&self, bp: &str, layer: &str) -> Option<&LayerMetadata> {
        self.buildpack(bp).and_then(|b| b.layers.get(layer))
    }
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; in serialized JSON they can only
/// occur inside strings, so replacing them everywhere is exact.
fn go_json_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A cache being read (restorer, and the exporter for reuse).
pub trait CacheReader: Send + Sync {
    /// The cache dir or image name, for messages.
    fn name(&self) -> String;
    /// Whether anything was ever committed here.
    fn exists(&self) -> bool;
    fn metadata(&self) -> Result<CacheMetadata, CacheError>;
    /// The uncompressed tar of a cached layer. The stream fails at EOF unless its content
    /// matches `diff_id`; a missing layer is [`CacheError::Read`].
    fn open_layer(&self, diff_id: &Digest) -> Result<Box<dyn Read + Send + '_>, CacheError>;
}

/// Writes a layer's complete tar stream (end-of-archive blocks included). May be called more
/// than once (a retried upload); it must write the same bytes every time.
pub type TarFill<'a> = dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()> + Sync + 'a;

/// A new cache being written (exporter).
pub trait CacheWriter: Send + Sync {
    fn name(&self) -> String;
    /// Streams a layer into the new cache in one pass; returns its diffID.
    fn add_layer(&self, fill: &TarFill<'_>) -> Result<Digest, CacheError>;
    /// Keeps a layer of the previous cache without writing or uploading it again. A missing or
    /// corrupt previous layer is [`CacheError::Read`] (the caller adds it instead).
    fn reuse_layer(&self, diff_id: &Digest) -> Result<(), CacheError>;
    /// Makes the new cache current with `metadata`; `layers` gives the order of the added and
    /// reused layers (the cache image's layer order).
    fn commit(&self, metadata: &CacheMetadata, layers: &[Digest]) -> Result<(), CacheError>;
}

/// Where the cache lives: `-cache-image` wins over `-cache-dir`, as in the Go lifecycle.
pub enum Location {
    Dir(PathBuf),
    /// A registry image (never an OCI layout: the Go lifecycle keeps cache images remote).
    Image {
        name: String,
        repo: Repo,
        tag: String,
    },
}

impl Location {
    pub fn from_inputs(
        cache_image: Option<&str>,
        cache_dir: Option<&Path>,
        client: &Arc<Client>,
    ) -> Result<Option<Self>, CacheError> {
        if let Some(name) = cache_image.filter(|s| !s.is_empty()) {
            let r = parse_reference(name)
                .map_err(|e| CacheError::Other(format!("cache image: {e}")))?;
            let tag = r.digest().or(r.tag()).unwrap_or("latest").to_string();
            return Ok(Some(Location::Image {
                name: name.to_string(),
                repo: Repo::for_reference(Arc::clone(client), &r),
                tag,
            }));
        }
        Ok(cache_dir.map(|d| Location::Dir(d.to_path_buf())))
    }

    /// Opens the committed cache for reading.
    pub fn reader(&self) -> Result<Box<dyn CacheReader>, CacheError> {
        Ok(match self {
            Location::Dir(d) => Box::new(VolumeCache::open(d)),
            Location::Image { name, repo, tag } => {
                Box::new(ImageCache::open(Box::new(repo.clone()), tag, name)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_json_matches_go() {
        let mut m = CacheMetadata::default();
        m.buildpacks.push(BuildpackLayers {
            key: "bp/id".into(),
            version: "1.0.0".into(),
            ..Default::default()
        });
        assert_eq!(
            m.encode(),
            r#"{"sbom":{"sha":""},"buildpacks":[{"key":"bp/id","version":"1.0.0","layers":{}}]}"#
        );
        assert_eq!(CacheMetadata::decode(&m.encode()), m);
        assert_eq!(
            CacheMetadata::decode(r#"{"sbom":{"sha":"x"},"buildpacks":null}"#)
                .sbom
                .sha,
            "x"
        );
        assert_eq!(CacheMetadata::decode("not json"), CacheMetadata::default());
        let mut m = CacheMetadata::default();
        m.sbom.sha = "<a&b>".into();
        assert_eq!(
            m.encode(),
            r#"{"sbom":{"sha":"\u003ca\u0026b\u003e"},"buildpacks":null}"#
        );
        assert_eq!(CacheMetadata::decode(&m.encode()), m);
    }
}
