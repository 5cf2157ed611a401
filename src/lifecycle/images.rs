//! How the image phases (analyzer, restorer, exporter, rebaser) reach images: registry
//! credentials in the lifecycle's order (`CNB_REGISTRY_AUTH`, then the docker config),
//! insecure registries, and the experimental OCI layout mode where each reference maps to
//! `<layout-dir>/<registry>/<repository>/<tag>` (or `/<algorithm>/<hex>` for a digest).

use std::path::PathBuf;
use std::sync::Arc;

use super::cli::Inputs;
use crate::oci::layout::Layout;
use crate::oci::{BlobStore, Error};
use crate::registry::{parse_reference, Client, ClientOptions, Keychain, Repo};

pub struct Images {
    client: Arc<Client>,
    layout_dir: Option<PathBuf>,
}

/// An opened image: its store and the reference to use inside it.
pub struct Opened {
    pub store: Box<dyn BlobStore>,
    pub reference: String,
}

impl Images {
    /// Resolve credentials (before any privilege drop, like the Go lifecycle).
    pub fn new(inputs: &Inputs) -> Result<Self, Error> {
        let mut keychain = match std::env::var("CNB_REGISTRY_AUTH") {
            Ok(json) if !json.trim().is_empty() => Keychain::from_cnb_registry_auth(&json)?,
            _ => Keychain::empty(),
        };
        // First writer wins: CNB_REGISTRY_AUTH before the docker config.
        keychain.append(Keychain::from_environment()?);
        let client = Client::new(ClientOptions {
            keychain,
            insecure: inputs.insecure_registries.clone(),
            ..Default::default()
        })?;
        let layout_dir = if inputs.layout {
            Some(inputs.layout_dir.clone().ok_or_else(|| {
                Error::Layout("-layout needs -layout-dir (or CNB_LAYOUT_DIR)".into())
            })?)
        } else {
            None
        };
        Ok(Images { client, layout_dir })
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    pub fn is_layout(&self) -> bool {
        self.layout_dir.is_some()
    }

    /// The layout directory of `reference` in layout mode.
    pub fn layout_path(&self, reference: &str) -> Result<Option<PathBuf>, Error> {
        let Some(root) = &self.layout_dir else {
            return Ok(None);
        };
        let r = parse_reference(reference)?;
        let mut p = root.join(r.resolve_registry()).join(r.repository());
        match r.digest() {
            Some(d) => {
                let (alg, hex) = d.split_once(':').unwrap_or(("sha256", d));
                p = p.join(alg).join(hex);
            }
            None => p = p.join(r.tag().unwrap_or("latest")),
        }
        Ok(Some(p))
    }

    /// Open `reference` for reading.
    pub fn open(&self, reference: &str) -> Result<Opened, Error> {
        if let Some(dir) = self.layout_path(reference)? {
            return Ok(Opened {
                store: Box::new(Layout::open(&dir)?),
                reference: String::new(),
            });
        }
        let r = parse_reference(reference)?;
        let inner = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        Ok(Opened {
            store: Box::new(Repo::for_reference(Arc::clone(&self.client), &r)),
            reference: inner,
        })
    }

    /// Open `reference` for writing; `reference` is the tag (or empty in a layout).
    pub fn create(&self, reference: &str) -> Result<Opened, Error> {
        if let Some(dir) = self.layout_path(reference)? {
            let r = parse_reference(reference)?;
            return Ok(Opened {
                store: Box::new(Layout::create(&dir)?),
                reference: r.tag().unwrap_or("latest").to_string(),
            });
        }
        self.open(reference)
    }
}
