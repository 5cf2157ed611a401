//! What the analyzer and restorer need from images on top of [`Images`]: access checks with
//! the Go lifecycle's texts, loading an image (or learning it is absent or unreachable), its
//! identifier, its target data, and the run image mirror choice.

use std::sync::Arc;

use super::images::{Images, Opened};
use super::target::{Distro, RunTarget};
use crate::oci::view::ImageView;
use crate::oci::{Error, PlatformSpec};
use crate::registry::{parse_reference, RegistryError, Repo};

pub const DISTRO_NAME_LABEL: &str = "io.buildpacks.base.distro.name";
pub const DISTRO_VERSION_LABEL: &str = "io.buildpacks.base.distro.version";
pub const TARGET_ID_LABEL: &str = "io.buildpacks.base.id";

/// Why an image could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The registry answered 401/403.
    Denied(String),
    /// No answer (connection, TLS, DNS, server errors after retries).
    Unreachable(String),
    /// Anything else (bad manifest or config, ...).
    Broken(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Denied(m) | Unavailable::Unreachable(m) | Unavailable::Broken(m) => {
                f.write_str(m)
            }
        }
    }
}

fn classify_registry(e: &RegistryError) -> fn(String) -> Unavailable {
    match e {
        RegistryError::RetriesExhausted { last, .. } => classify_registry(last),
        RegistryError::Unauthorized { .. } => Unavailable::Denied,
        RegistryError::Status { status, .. } if *status == 401 || *status == 403 => {
            Unavailable::Denied
        }
        RegistryError::Status { status, .. } if *status >= 500 => Unavailable::Unreachable,
        RegistryError::Transport { .. } | RegistryError::UntrustedCertificate { .. } => {
            Unavailable::Unreachable
        }
        _ => Unavailable::Broken,
    }
}

fn classify(e: Error) -> Unavailable {
    let kind = match &e {
        Error::Registry(r) => classify_registry(r),
        _ => Unavailable::Broken,
    };
    kind(e.to_string())
}

/// A loaded image.
pub struct Loaded {
    pub opened: Opened,
    pub view: ImageView,
    /// `registry/repo@sha256:...`, or `<layout path>@sha256:...` in layout mode.
    pub identifier: String,
}

/// Loads `reference` for the host platform. `Ok(None)`: the image does not exist.
pub fn load(images: &Images, reference: &str) -> Result<Option<Loaded>, Unavailable> {
    let layout = images.layout_path(reference).map_err(classify)?;
    if let Some(dir) = &layout {
        if !dir.join("index.json").is_file() {
            return Ok(None);
        }
    }
    let opened = images.open(reference).map_err(classify)?;
    let Some(view) = ImageView::load(
        opened.store.as_ref(),
        &opened.reference,
        &PlatformSpec::host(),
    )
    .map_err(classify)?
    else {
        return Ok(None);
    };
    let identifier = match &layout {
        Some(dir) => format!("{}@{}", dir.display(), view.digest()),
        None => {
            let r = parse_reference(reference).map_err(|e| classify(e.into()))?;
            format!(
                "{}/{}@{}",
                r.resolve_registry(),
                r.repository(),
                view.digest()
            )
        }
    };
    Ok(Some(Loaded {
        opened,
        view,
        identifier,
    }))
}

/// Registry read access (Go's `CheckReadAccess`): an image that does not exist is readable.
/// Layout mode has nothing to check.
pub fn check_read(images: &Images, reference: &str) -> Result<(), Unavailable> {
    if images.is_layout() {
        return Ok(());
    }
    let r = parse_reference(reference).map_err(|e| classify(e.into()))?;
    let what = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    match Repo::for_reference(Arc::clone(images.client()), &r).head_manifest(&what) {
        Ok(_) => Ok(()),
        Err(e) => Err(classify_registry(&e)(e.to_string())),
    }
}

/// `ensure registry read access to <ref>`.
pub fn ensure_read(images: &Images, reference: &str) -> Result<(), String> {
    check_read(images, reference)
        .map_err(|e| format!("ensure registry read access to {reference}: {e}"))
}

/// `ensure registry read/write access to <ref>`: start an upload and cancel it.
pub fn ensure_write(images: &Images, reference: &str) -> Result<(), String> {
    let fail = |e: String| format!("ensure registry read/write access to {reference}: {e}");
    let r = parse_reference(reference).map_err(|e| fail(e.to_string()))?;
    Repo::for_reference(Arc::clone(images.client()), &r)
        .check_push()
        .map_err(|e| fail(e.to_string()))
}

/// The run image's target (`lc:platform/target_data.go`): os, arch and variant from the config,
/// distro and id from the `io.buildpacks.base.*` labels.
pub fn target_of(view: &ImageView) -> RunTarget {
    let c = &view.config;
    let name = c.label(DISTRO_NAME_LABEL);
    let version = c.label(DISTRO_VERSION_LABEL);
    let distro = (name.is_some() || version.is_some()).then(|| Distro {
        name: name.unwrap_or_default(),
        version: version.unwrap_or_default(),
    });
    RunTarget {
        id: c.label(TARGET_ID_LABEL).unwrap_or_default(),
        os: c.os(),
        arch: c.architecture(),
        arch_variant: c.variant().unwrap_or_default().to_string(),
        distro,
    }
}

/// The registry of a reference as go-containerregistry names it (`index.docker.io` for Hub).
pub fn registry_of(reference: &str) -> Option<String> {
    parse_reference(reference)
        .ok()
        .map(|r| r.resolve_registry().to_string())
}

/// The run image among `image` and its `mirrors` (`lc:platform/run_image.go`): the first one
/// on `target_registry` that is readable, else the first readable one.
pub fn best_mirror(
    target_registry: &str,
    image: &str,
    mirrors: &[String],
    readable: &dyn Fn(&str) -> bool,
) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let all: Vec<&str> = std::iter::once(image)
        .chain(mirrors.iter().map(String::as_str))
        .collect();
    all.iter()
        .find(|i| registry_of(i).as_deref() == Some(target_registry) && readable(i))
        .or_else(|| all.iter().find(|i| readable(i)))
        .map(|i| i.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_on_the_target_registry_wins_when_readable() {
        let mirrors = vec![
            "other.io/run:1".to_string(),
            "target.io:5000/run:1".to_string(),
        ];
        let all = |_: &str| true;
        assert_eq!(
            best_mirror("target.io:5000", "base.io/run:1", &mirrors, &all).as_deref(),
            Some("target.io:5000/run:1")
        );
        // The image itself on the target registry comes first.
        assert_eq!(
            best_mirror("base.io", "base.io/run:1", &mirrors, &all).as_deref(),
            Some("base.io/run:1")
        );
        // Not readable on the target registry: the first readable one.
        let not_target = |i: &str| !i.starts_with("target.io");
        assert_eq!(
            best_mirror("target.io:5000", "base.io/run:1", &mirrors, &not_target).as_deref(),
            Some("base.io/run:1")
        );
        let only_other = |i: &str| i.starts_with("other.io");
        assert_eq!(
            best_mirror("none.io", "base.io/run:1", &mirrors, &only_other).as_deref(),
            Some("other.io/run:1")
        );
        assert_eq!(
            best_mirror("x", "base.io/run:1", &mirrors, &|_| false),
            None
        );
        assert_eq!(best_mirror("x", "", &mirrors, &all), None);
        // Docker Hub names compare as go-containerregistry's index.docker.io.
        assert_eq!(
            best_mirror(
                "index.docker.io",
                "gcr.io/r:1",
                &["ubuntu:24.04".into()],
                &all
            )
            .as_deref(),
            Some("ubuntu:24.04")
        );
    }
}
