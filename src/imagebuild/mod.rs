//! Build an image from a declarative definition (TOML): layers of files, directories, symlinks
//! and trees with fixed modes and owners, and the config (entrypoint, env, user, labels). Every
//! entry gets the normalized mtime and the config a fixed `created`, so the same inputs always
//! give the same digest. Used by `images/build-pod` (`buildpod image build`).

pub mod build;
pub mod definition;

pub use build::{build_image, Built};
pub use definition::{Definition, Entry, EntryKind, ImageConfigDef, LayerDef, Vars};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The definition (or one it includes) is unreadable or invalid.
    #[error("image definition {path}: {msg}")]
    Definition { path: String, msg: String },
    /// Writing one layer failed (a source file, the store).
    #[error("layer {layer:?}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: crate::oci::Error,
    },
    #[error(transparent)]
    Oci(#[from] crate::oci::Error),
}

impl Error {
    pub(crate) fn definition(path: &str, msg: impl Into<String>) -> Self {
        Error::Definition {
            path: path.to_string(),
            msg: msg.into(),
        }
    }
}
