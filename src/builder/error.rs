//! Errors of builder resources and buildpack resolution.

/// What went wrong, and where: every resolution error names the builder and its order entry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Oci(#[from] crate::oci::Error),
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
            Error::Yaml(r) => r.clone(),
            Error::Resource { reason, .. }
            | Error::Builder { reason, .. }
            | Error::Entry { reason, .. } => reason.clone(),
        }
    }
}
