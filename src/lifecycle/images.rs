//! How the image phases (analyzer, restorer, exporter, rebaser) reach images: registry
//! credentials in the lifecycle's order (`CNB_REGISTRY_AUTH`, then the docker config),
//! insecure registries, and the experimental OCI layout mode where each reference maps to
//! `<layout-dir>/<registry>/<repository>/<tag>` (or `/<algorithm>/<hex>` for a digest).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cli::Inputs;
use super::log::Log;
use crate::digest::Digest;
use crate::export::report::Report;
use crate::fsutil::PathError;
use crate::oci::copy::{copy_image, CopyOptions};
use crate::oci::layout::Layout;
use crate::oci::{BlobStore, Error};
use crate::registry::{parse_reference, Client, ClientOptions, Keychain, Repo};

/// Credentials resolved once for the whole process (the creator resolves them as root, before
/// its phases drop privileges and could no longer read a root-only docker config).
static RESOLVED: std::sync::OnceLock<Keychain> = std::sync::OnceLock::new();

/// The lifecycle's credential order: `CNB_REGISTRY_AUTH`, then the docker config.
fn resolve_keychain() -> Result<Keychain, Error> {
    let mut keychain = match std::env::var("CNB_REGISTRY_AUTH") {
        Ok(json) if !json.trim().is_empty() => Keychain::from_cnb_registry_auth(&json)?,
        _ => Keychain::empty(),
    };
    // First writer wins: CNB_REGISTRY_AUTH before the docker config.
    keychain.append(Keychain::from_environment()?);
    Ok(keychain)
}

/// Resolve credentials now and keep them for every later [`Images::new`] in this process.
pub fn resolve_credentials_once() -> Result<(), Error> {
    if RESOLVED.get().is_none() {
        let _ = RESOLVED.set(resolve_keychain()?);
    }
    Ok(())
}

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
        let keychain = match RESOLVED.get() {
            Some(k) => k.clone(),
            None => resolve_keychain()?,
        };
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

/// Where a phase writes its image: the first name's repository receives it under every tag it
/// has there; other repositories (and, in layout mode, other names) get a copy afterwards.
pub struct Outputs {
    pub target: Opened,
    /// Tags to write in `target`.
    pub tags: Vec<String>,
    /// Names written through `target`.
    pub direct: Vec<String>,
    /// Names that get a copy.
    pub copies: Vec<String>,
}

impl Images {
    pub fn outputs(&self, names: &[String]) -> Result<Outputs, Error> {
        let first = names
            .first()
            .ok_or_else(|| Error::Layout("no output image named".into()))?;
        let target = self.create(first)?;
        if self.is_layout() {
            return Ok(Outputs {
                tags: vec![target.reference.clone()],
                target,
                direct: names[..1].to_vec(),
                copies: names[1..].to_vec(),
            });
        }
        let (first_repo, _) = split_tag(first);
        let (direct, copies): (Vec<String>, Vec<String>) = names
            .iter()
            .cloned()
            .partition(|n| split_tag(n).0 == first_repo);
        let mut tags: Vec<String> = Vec::new();
        for n in &direct {
            let t = split_tag(n).1;
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        Ok(Outputs {
            target,
            tags,
            direct,
            copies,
        })
    }

    /// Copy the written image to the other names, then write `report.toml` naming every name
    /// saved (a failed copy is a warning and the name is left out, as the lifecycle does).
    pub fn finish(
        &self,
        out: &Outputs,
        digest: &Digest,
        manifest_size: u64,
        report: &Path,
        log: &Log,
    ) -> Result<(), PathError> {
        let digest = digest.to_string();
        Report {
            tags: self.save_copies(out, &digest, log),
            digest,
            manifest_size,
        }
        .write(report)
    }

    /// Copy the written image (`digest`) to the other names; returns every name saved. A failed
    /// copy is a warning, and the name is left out of the report, as the lifecycle does.
    fn save_copies(&self, out: &Outputs, digest: &str, log: &Log) -> Vec<String> {
        let mut saved = out.direct.clone();
        for name in &out.copies {
            let copied = self.create(name).and_then(|dst| {
                copy_image(
                    out.target.store.as_ref(),
                    digest,
                    dst.store.as_ref(),
                    std::slice::from_ref(&dst.reference),
                    &CopyOptions::default(),
                )
            });
            match copied {
                Ok(_) => saved.push(name.clone()),
                Err(e) => log.warn(&format!("failed to save {name}: {e}")),
            }
        }
        log.info(&format!("*** Images ({digest}):"));
        for s in &saved {
            log.info(&format!("      {s}"));
        }
        saved
    }
}

/// `registry/repo` and tag of a name.
fn split_tag(name: &str) -> (String, String) {
    match parse_reference(name) {
        Ok(r) => (
            format!("{}/{}", r.resolve_registry(), r.repository()),
            r.tag().unwrap_or("latest").to_string(),
        ),
        Err(_) => (name.to_string(), String::new()),
    }
}

/// Output names: every one parses and (outside layout mode) all share one registry.
pub fn check_output_names(names: &[String], layout: bool) -> Result<(), String> {
    let mut registry: Option<String> = None;
    for n in names {
        let r = parse_reference(n).map_err(|e| e.to_string())?;
        let reg = r.resolve_registry().to_string();
        match &registry {
            None => registry = Some(reg),
            Some(first) if *first != reg && !layout => {
                return Err(format!(
                    "writing to multiple registries is unsupported: {n} is not on {first}"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
