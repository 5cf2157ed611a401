//! Which layer of a lifecycle image holds the lifecycle for a platform:
//! 1. a config label named after the OS (`linux`, `windows`) gives the layer's diffID (kpack's
//!    own lifecycle images, ours);
//! 2. otherwise an index gives the manifest for os/arch/variant;
//! 3. otherwise a single-platform image whose config os/arch match gives its last layer
//!    (today's upstream `buildpacksio/lifecycle` images).

use oci_spec::image::{Descriptor, ImageManifest};

use super::Error;
use crate::digest::Digest;
use crate::oci::manifest::{descriptor_digest, select_platform};
use crate::oci::{BlobStore, ImageConfig, Manifest, PlatformSpec};

/// How the layer was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// The config label named after the OS.
    Label,
    /// The index entry for the platform, then that image's last layer.
    Index,
    /// A single-platform image for the platform: its last layer.
    LastLayer,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Label => "os label",
            Method::Index => "index platform",
            Method::LastLayer => "last layer",
        })
    }
}

/// The chosen layer and where it came from.
#[derive(Clone, Debug)]
pub struct Selection {
    /// `location[:tag|@digest]`, for messages.
    pub image: String,
    pub method: Method,
    pub layer: Descriptor,
    pub diff_id: Digest,
    /// The single-platform manifest the layer belongs to.
    pub manifest: Digest,
    pub config: ImageConfig,
}

/// A readable name for `reference` in `store`.
pub fn image_name(store: &dyn BlobStore, reference: &str) -> String {
    let loc = store.location();
    match reference {
        "" => loc,
        r if r.starts_with("sha256:") => format!("{loc}@{r}"),
        r => format!("{loc}:{r}"),
    }
}

/// Find the lifecycle layer for `want` in the image `reference` of `store`.
pub fn select_layer(
    store: &dyn BlobStore,
    reference: &str,
    want: &PlatformSpec,
) -> Result<Selection, Error> {
    let name = image_name(store, reference);
    let root = store.get_manifest(reference)?;
    match root.parse()? {
        Manifest::Image(m) => from_image(store, &name, root.digest, &m, want, false),
        Manifest::Index(idx) => {
            let d = select_platform(&idx, want).map_err(|e| Error::select(&name, e.to_string()))?;
            let child = store.get_manifest(&descriptor_digest(d)?.to_string())?;
            match child.parse()? {
                Manifest::Image(m) => from_image(store, &name, child.digest, &m, want, true),
                Manifest::Index(_) => Err(Error::select(
                    &name,
                    format!("not supported: nested index {} for {want}", child.digest),
                )),
            }
        }
    }
}

fn from_image(
    store: &dyn BlobStore,
    name: &str,
    manifest: Digest,
    m: &ImageManifest,
    want: &PlatformSpec,
    via_index: bool,
) -> Result<Selection, Error> {
    let cfg_digest = descriptor_digest(m.config())?;
    let config = ImageConfig::from_json(
        &store.read_blob(&cfg_digest, Some(m.config().size()))?,
        &format!("config of {name}"),
    )?;
    let diff_ids = config.diff_ids()?;
    if diff_ids.len() != m.layers().len() {
        return Err(Error::select(
            name,
            format!(
                "config lists {} diffIDs for {} layers",
                diff_ids.len(),
                m.layers().len()
            ),
        ));
    }
    let have = PlatformSpec::new(&config.os(), &config.architecture(), config.variant());
    let pick = |i: usize, method: Method, config: ImageConfig| Selection {
        image: name.to_string(),
        method,
        layer: m.layers()[i].clone(),
        diff_id: diff_ids[i].clone(),
        manifest: manifest.clone(),
        config,
    };
    if let Some(label) = config.label(&want.os).filter(|l| !l.is_empty()) {
        check_arch(name, &have, want)?;
        let d: Digest = label.parse().map_err(|_| {
            Error::select(
                name,
                format!("label {:?} is {label:?}, not a layer diffID", want.os),
            )
        })?;
        let Some(i) = diff_ids.iter().position(|x| *x == d) else {
            return Err(Error::select(
                name,
                format!(
                    "label {:?} names layer {d}, which is not in the image (its diffIDs: {})",
                    want.os,
                    list(&diff_ids)
                ),
            ));
        };
        return Ok(pick(i, Method::Label, config));
    }
    if have.os != want.os {
        return Err(Error::select(
            name,
            format!(
                "no {:?} label and the image is for {have}, not {want}",
                want.os
            ),
        ));
    }
    check_arch(name, &have, want)?;
    if m.layers().is_empty() {
        return Err(Error::select(name, "the image has no layers"));
    }
    let method = if via_index {
        Method::Index
    } else {
        Method::LastLayer
    };
    Ok(pick(m.layers().len() - 1, method, config))
}

/// kpack's `platformMatches`: arch and variant must be equal when both sides name one.
fn check_arch(name: &str, have: &PlatformSpec, want: &PlatformSpec) -> Result<(), Error> {
    let differ = |a: &str, b: &str| !a.is_empty() && !b.is_empty() && a != b;
    let variant = |p: &PlatformSpec| p.variant.clone().unwrap_or_default();
    if differ(&have.arch, &want.arch) || differ(&variant(have), &variant(want)) {
        return Err(Error::select(
            name,
            format!("architecture mismatch: the image is for {have}, want {want}"),
        ));
    }
    Ok(())
}

fn list(d: &[Digest]) -> String {
    if d.is_empty() {
        return "none".to_string();
    }
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
