//! Errors of builder resources and buildpack resolution.

/// What went wrong, and where: every resolution error names the builder and its order entry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Oci(#[from] crate::oci::Error),
    #[error(transparent)]
    Lifecycle(#[from] crate::clusterlifecycle::Error),
    /// An image a resource names that cannot be read or is not what the resource needs.
    #[error("{resource}: image {image}: {reason}")]
    Image {
        resource: String,
        image: String,
        reason: String,
    },
    /// A buildpack directory or `buildpack.toml` that cannot be packaged.
    #[error("buildpack {path}: {reason}")]
    Buildpack { path: String, reason: String },
    /// A pack-style `builder.toml` that cannot be mapped onto builder resources.
    #[error("builder config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("invalid builder resources yaml: {0}")]
    Yaml(String),
    /// A resource that is invalid on its own (webhook-style validation).
    #[error("{kind} {name}: {reason}")]
    Resource {
        kind: String,
        name: String,
        reason: String,
    },
    /// A builder that cannot be resolved as a whole (stack or store missing, no such builder).
    #[error("{builder}: {reason}")]
    Builder { builder: String, reason: String },
    /// One `spec.order[i].group[j]` entry that cannot be resolved; `reason` is kpack's message.
    #[error("{builder}: {entry}: {reason}")]
    Entry {
        builder: String,
        entry: String,
        reason: String,
    },
}

impl Error {
    pub fn image(resource: impl Into<String>, image: &str, reason: impl std::fmt::Display) -> Self {
        Error::Image {
            resource: resource.into(),
            image: image.to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn resource(kind: &str, name: &str, reason: impl Into<String>) -> Self {
        Error::Resource {
            kind: kind.to_string(),
            name: if name.is_empty() { "<unnamed>" } else { name }.to_string(),
            reason: reason.into(),
        }
    }

    /// The message without the builder and entry prefix (kpack's wording, for comparisons).
    pub fn reason(&self) -> String {
        match self {
            Error::Oci(e) => e.to_string(),
            Error::Lifecycle(e) => e.to_string(),
            Error::Yaml(r) | Error::Usage(r) => r.clone(),
            Error::Image { reason, .. }
            | Error::Buildpack { reason, .. }
            | Error::Config { reason, .. }
            | Error::Resource { reason, .. }
            | Error::Builder { reason, .. }
            | Error::Entry { reason, .. } => reason.clone(),
        }
    }
}
