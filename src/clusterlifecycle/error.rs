//! Errors of lifecycle images and ClusterLifecycle resources.

use crate::fsutil::PathError;
use crate::layer::ExtractError;

use super::negotiate::NegotiateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Oci(#[from] crate::oci::Error),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("lifecycle image {image}: {source}")]
    Extract {
        image: String,
        #[source]
        source: ExtractError,
    },
    /// The image has no lifecycle for the wanted platform, or names a layer it lacks.
    #[error("lifecycle image {image}: {reason}")]
    Select { image: String, reason: String },
    /// A lifecycle descriptor (`lifecycle.toml` or a label) that does not parse.
    #[error("invalid {what}: {reason}")]
    Descriptor { what: String, reason: String },
    #[error(transparent)]
    Negotiate(#[from] NegotiateError),
    /// A ClusterLifecycle (or builder reference) that is invalid or cannot be used.
    #[error("clusterlifecycle {name}: {reason}")]
    Resource { name: String, reason: String },
    #[error("invalid clusterlifecycle yaml: {0}")]
    Yaml(String),
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn select(image: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Select {
            image: image.into(),
            reason: reason.into(),
        }
    }

    pub fn descriptor(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Descriptor {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub fn resource(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Resource {
            name: name.into(),
            reason: reason.into(),
        }
    }
}
