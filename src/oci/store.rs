//! The blob-and-manifest store abstraction shared by OCI layouts and registries, and the
//! errors of image handling.

use std::io::{self, Read, Write};

use super::RawManifest;
use crate::digest::{Digest, DigestError};
use crate::fsutil::PathError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("invalid {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} not found in {location}")]
    NotFound { what: String, location: String },
    #[error(transparent)]
    Registry(#[from] Box<crate::registry::RegistryError>),
    #[error("{0}")]
    Layout(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Platform(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::Registry(r) => r.is_not_found(),
            _ => false,
        }
    }
}

impl From<crate::registry::RegistryError> for Error {
    fn from(e: crate::registry::RegistryError) -> Self {
        Error::Registry(Box::new(e))
    }
}

/// Produces a blob's bytes into a writer. Must produce the same bytes every time: stores call it
/// again to retry a failed upload instead of buffering the blob.
pub type Producer<'a> = dyn Fn(&mut (dyn Write + Send)) -> io::Result<()> + Sync + 'a;

/// Opens a blob's bytes for reading, again on each retry.
pub type Opener<'a> = dyn Fn() -> Result<Box<dyn Read + Send + 'a>, Error> + Sync + 'a;

/// Where blobs and manifests live: an OCI layout or one repository of a registry.
pub trait BlobStore: Send + Sync {
    /// Human-readable location for messages (`oci:/path` or `registry/repo`).
    fn location(&self) -> String;

    /// The size of a blob if the store has it.
    fn blob_size(&self, d: &Digest) -> Result<Option<u64>, Error>;

    /// A reader over a blob that fails at EOF unless the bytes match `d` (and `size`).
    fn open_blob(&self, d: &Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>, Error>;

    /// Store a blob whose digest is known; `open` may be called more than once (retries).
    fn put_blob(&self, d: &Digest, size: u64, open: &Opener<'_>) -> Result<(), Error>;

    /// Store a blob whose digest is learnt while streaming it (one pass: produce, hash, store).
    fn put_blob_stream(&self, produce: &Producer<'_>) -> Result<(Digest, u64), Error>;

    /// Make a blob that exists in `from_repo` of the same registry available here without
    /// uploading it. Returns false where that is not possible (then upload instead).
    fn mount_blob(&self, _d: &Digest, _from_repo: &str) -> Result<bool, Error> {
        Ok(false)
    }

    /// `(registry host, repository)` when this store is a registry repository.
    fn registry_repo(&self) -> Option<(String, String)> {
        None
    }

    /// A manifest by tag or digest.
    fn get_manifest(&self, reference: &str) -> Result<RawManifest, Error>;

    /// Store a manifest under each tag (or only by digest when `tags` is empty). Callers push
    /// manifests only after every blob they reference is stored.
    fn put_manifest(&self, m: &RawManifest, tags: &[String]) -> Result<(), Error>;

    /// Read a whole small blob (config, manifest) into memory, verified.
    fn read_blob(&self, d: &Digest, size: Option<u64>) -> Result<Vec<u8>, Error> {
        let mut buf = Vec::new();
        self.open_blob(d, size)?
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(format!("read blob {d} from {}", self.location()), e))?;
        Ok(buf)
    }
}
