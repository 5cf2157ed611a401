//! Application sources for kpack's prepare step: git repositories, blobs (zip, tar, tar.gz)
//! and registry images, each unpacked into `/workspace` without ever writing outside it, plus
//! the `project-metadata.toml` the exporter reads.

pub mod archive;
pub mod blob;
pub mod git;
pub mod metadata;
pub mod registry;

/// A prepare-step failure; the message is what kpack prints.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    pub fn new(msg: impl Into<String>) -> Self {
        SourceError(msg.into())
    }
}

impl From<String> for SourceError {
    fn from(s: String) -> Self {
        SourceError(s)
    }
}
