//! The exporter: turns a finished build (`<layers>`, `<app>`) plus a run image into the app
//! image (`cnb-lifecycle.md` §7). Layers are produced in parallel and streamed (tar, hash,
//! compress, upload in one pass); a layer whose diffID matches the previous image's is
//! referenced, never compressed or uploaded again.

pub mod exporter;
pub mod inputs;
pub mod labels;
pub mod layers;
pub mod rebase;
pub mod report;
pub mod slices;

pub use exporter::{export, ExportOptions, ExportReport, ImageSource};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    Toml(Box<crate::lifecycle::tomlr::TomlError>),
    #[error("run image {reference}: {message}")]
    RunImage { reference: String, message: String },
    #[error("layer {layer}: {message}")]
    Layer { layer: String, message: String },
    #[error(transparent)]
    Image(#[from] crate::oci::Error),
}

impl ExportError {
    pub(crate) fn toml(e: crate::lifecycle::tomlr::TomlError) -> Self {
        ExportError::Toml(Box::new(e))
    }
}
