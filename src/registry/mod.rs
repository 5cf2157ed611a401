//! A registry client for the OCI distribution API, hand-written on `ureq` (see `client.rs` for
//! why not `oci-client`): anonymous, basic and bearer auth with docker `config.json`
//! credentials, plain HTTP for loopback and insecure registries, extra CA certificates, retries
//! with backoff, blob mounts, streamed one-pass uploads and bounded parallel transfers.

pub mod auth;
pub mod client;
pub mod keychain;
mod pipe;
mod repo;
pub mod transport;

pub use client::{Client, ClientOptions};
pub use keychain::{AuthEntry, Credential, Keychain};
pub use repo::Repo;

use oci_spec::distribution::Reference;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("{registry}: authentication failed: HTTP {status} for {method} {url}{detail}")]
    Unauthorized {
        registry: String,
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{registry}: {what} not found (HTTP 404 for {method} {url}){detail}")]
    NotFound {
        registry: String,
        what: String,
        method: String,
        url: String,
        detail: String,
    },
    #[error("{registry}: HTTP {status} for {method} {url}{detail}")]
    Status {
        registry: String,
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{registry}: TLS certificate not trusted ({detail}); add its CA certificate with \
         SSL_CERT_FILE or SSL_CERT_DIR, or name the registry insecure"
    )]
    UntrustedCertificate { registry: String, detail: String },
    #[error("{registry}: {op}: {detail}")]
    Transport {
        registry: String,
        op: String,
        detail: String,
    },
    #[error("{registry}: {source}")]
    Protocol {
        registry: String,
        #[source]
        source: ProtocolDetail,
    },
    #[error("{registry}: {op} failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        registry: String,
        op: String,
        attempts: u32,
        last: Box<RegistryError>,
    },
}

/// A message about something the registry did that the protocol does not allow.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolDetail(pub String);

impl RegistryError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }

    pub(crate) fn protocol(registry: &str, msg: impl Into<String>) -> Self {
        RegistryError::Protocol {
            registry: registry.to_string(),
            source: ProtocolDetail(msg.into()),
        }
    }

    /// Worth retrying: server errors, throttling and dropped connections.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            RegistryError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Parse an image reference (`registry/repo:tag`, `repo@sha256:…`; Docker Hub defaults apply).
pub fn parse_reference(s: &str) -> Result<Reference, RegistryError> {
    let bad = |reason: String| RegistryError::Reference {
        reference: s.to_string(),
        reason,
    };
    let r = s.parse::<Reference>().map_err(|e| bad(e.to_string()))?;
    // The distribution spec allows only lower-case repository names; registries reject others.
    if r.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("repository name must be lowercase".into()));
    }
    Ok(r)
}

/// The host to talk to for a reference's registry (Docker Hub's API host differs from its name).
pub fn api_host(registry: &str) -> &str {
    if keychain::is_docker_hub(registry) {
        "registry-1.docker.io"
    } else {
        registry
    }
}
