//! Rebase (`cnb-lifecycle.md` §10): put an app image's layers above a new run image. Only
//! manifests and configs are read; app layer blobs are never downloaded or uploaded (the new
//! manifest references them; a different target repository gets them by cross-repo mount).

use oci_spec::image::{Descriptor, History};

use super::labels::{LayersMetadata, StackRunImage, LIFECYCLE_METADATA};
use crate::digest::Digest;
use crate::oci::assemble::write_manifest;
use crate::oci::config::rfc3339;
use crate::oci::copy::{copy_blobs, CopyOptions, CopyStats};
use crate::oci::view::ImageView;
use crate::oci::{BlobStore, ImageConfig};

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error("app image {reference}: {message}")]
    App { reference: String, message: String },
    #[error("run image {reference}: {message}")]
    RunImage { reference: String, message: String },
    /// A check that `force` overrides.
    #[error("{0}")]
    Incompatible(String),
    #[error(transparent)]
    Image(#[from] crate::oci::Error),
}

pub struct RebaseOptions {
    /// The new run image's name as the user gave it (recorded in the labels with `force`).
    pub run_image_name: String,
    /// The new run image as a digest reference (`repo@sha256:…`), for `runImage.reference`.
    pub run_image_reference: String,
    pub force: bool,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebaseReport {
    pub digest: Digest,
    pub manifest_size: u64,
    /// Warnings for checks overridden by `force`.
    pub warnings: Vec<String>,
    pub base: CopyStats,
}

/// An image already read from its store (manifest and config only).
pub struct Loaded<'a> {
    pub store: &'a dyn BlobStore,
    /// How messages name it.
    pub name: String,
    pub view: ImageView,
}

/// Rebase `app` onto `new_run`, writing the result into `target` under `opts.tags`.
pub fn rebase(
    app: &Loaded<'_>,
    new_run: &Loaded<'_>,
    target: &dyn BlobStore,
    opts: &RebaseOptions,
) -> Result<RebaseReport, RebaseError> {
    let app_err = |message: String| RebaseError::App {
        reference: app.name.clone(),
        message,
    };
    let (a, r) = (&app.view, &new_run.view);
    let label = a.config.label(LIFECYCLE_METADATA).ok_or_else(|| {
        app_err(format!(
            "has no {LIFECYCLE_METADATA} label; was it built with buildpacks?"
        ))
    })?;
    let mut meta: LayersMetadata = serde_json::from_str(&label)
        .map_err(|e| app_err(format!("label {LIFECYCLE_METADATA}: {e}")))?;
    let platform_api = a.config.env_var("CNB_PLATFORM_API").unwrap_or_default();
    let modern = api_at_least(&platform_api, 12);

    let mut warnings = Vec::new();
    let mut check = |ok: bool, message: String| -> Result<(), RebaseError> {
        if ok {
            Ok(())
        } else if opts.force {
            warnings.push(message);
            Ok(())
        } else {
            Err(RebaseError::Incompatible(message))
        }
    };
    if modern {
        check(
            a.config.label("io.buildpacks.rebasable").as_deref() != Some("false"),
            "app image is not marked as rebasable (io.buildpacks.rebasable=false)".into(),
        )?;
        for msg in target_mismatches(&a.config, &r.config) {
            check(false, msg)?;
        }
        let name = strip_digest(&opts.run_image_name);
        let known = [&meta.run_image.image, &meta.stack.run_image.image]
            .into_iter()
            .chain(meta.run_image.mirrors.iter())
            .chain(meta.stack.run_image.mirrors.iter())
            .any(|n| !n.is_empty() && strip_digest(n) == name);
        check(
            known || meta.run_image.image.is_empty(),
            format!(
                "new base image '{}' not found in existing run image metadata: {}",
                opts.run_image_name,
                serde_json::to_string(&meta.run_image).unwrap_or_default()
            ),
        )?;
        if !known {
            meta.run_image.image = opts.run_image_name.clone();
            meta.run_image.mirrors.clear();
            meta.stack.run_image = StackRunImage {
                image: opts.run_image_name.clone(),
                mirrors: Vec::new(),
            };
        }
    } else {
        let app_stack = a.config.label("io.buildpacks.stack.id").unwrap_or_default();
        let run_stack = r.config.label("io.buildpacks.stack.id").unwrap_or_default();
        check(
            app_stack == run_stack,
            format!("incompatible stack: '{run_stack}' is not compatible with '{app_stack}'"),
        )?;
        let missing = missing_mixins(&a.config, &r.config);
        check(
            missing.is_empty(),
            format!("missing required mixin(s): {}", missing.join(", ")),
        )?;
    }

    // Swap the layers up to and including the old top layer.
    let diff_ids = a.config.diff_ids()?;
    let top: Digest = meta.run_image.top_layer.parse().map_err(|_| {
        app_err(format!(
            "runImage.topLayer {:?} is not a digest",
            meta.run_image.top_layer
        ))
    })?;
    let idx = diff_ids
        .iter()
        .position(|d| *d == top)
        .ok_or_else(|| app_err(format!("runImage.topLayer {top} is not one of its layers")))?;
    let run_diff_ids = r.config.diff_ids()?;
    let new_top = run_diff_ids
        .last()
        .cloned()
        .ok_or_else(|| RebaseError::RunImage {
            reference: new_run.name.clone(),
            message: "image has no layers".into(),
        })?;
    let mut base = CopyStats::default();
    copy_blobs(
        new_run.store,
        target,
        r.image.layers(),
        &CopyOptions {
            parallel: 4,
            platform: None,
        },
        &mut base,
    )?;
    let app_layers = &a.image.layers()[idx + 1..];
    // Rebasing within the app's repository: its layers are there already. Elsewhere they are
    // mounted from the app's repository (or copied between layouts).
    let in_place = match (app.store.registry_repo(), target.registry_repo()) {
        (Some(a), Some(t)) => a == t,
        _ => app.store.location() == target.location(),
    };
    if !in_place {
        let mut app_stats = CopyStats::default();
        copy_blobs(
            app.store,
            target,
            app_layers,
            &CopyOptions::default(),
            &mut app_stats,
        )?;
    }

    let mut config = a.config.clone();
    {
        let inner = config.inner_mut();
        inner.set_os(r.config.inner().os().clone());
        inner.set_architecture(r.config.inner().architecture().clone());
        inner.set_os_version(r.config.inner().os_version().clone());
    }
    let created = rfc3339(crate::layer::NORMALIZED_MTIME as i64);
    config.set_created(Some(&created));
    let ids: Vec<String> = run_diff_ids
        .iter()
        .chain(diff_ids[idx + 1..].iter())
        .map(|d| d.to_string())
        .collect();
    *config.inner_mut().rootfs_mut().diff_ids_mut() = ids.clone();
    // Like the Go rebaser: history without `created_by`, one entry per layer.
    let history = ids
        .iter()
        .map(|_| {
            let mut h = History::default();
            h.set_created(Some(created.clone()));
            h
        })
        .collect();
    config.inner_mut().set_history(Some(history));

    meta.run_image.top_layer = new_top.to_string();
    meta.run_image.reference = opts.run_image_reference.clone();
    config.set_label(
        LIFECYCLE_METADATA,
        &serde_json::to_string(&meta).map_err(|e| app_err(e.to_string()))?,
    );
    let prefixes: &[&str] = if modern {
        &["io.buildpacks.stack.", "io.buildpacks.base."]
    } else {
        &["io.buildpacks.stack."]
    };
    for key in config.labels().keys() {
        if prefixes.iter().any(|p| key.starts_with(p)) {
            config.remove_label(key);
        }
    }
    for (k, v) in r.config.labels() {
        if prefixes.iter().any(|p| k.starts_with(p)) {
            config.set_label(&k, &v);
        }
    }

    let descs: Vec<Descriptor> = r.image.layers().iter().chain(app_layers).cloned().collect();
    let m = write_manifest(target, &config, descs, &a.manifest.media_type, &opts.tags)?;
    Ok(RebaseReport {
        digest: m.digest,
        manifest_size: m.bytes.len() as u64,
        warnings,
        base,
    })
}

fn api_at_least(v: &str, minor: u32) -> bool {
    let mut it = v.split('.');
    match (
        it.next().and_then(|m| m.parse::<u32>().ok()),
        it.next().and_then(|m| m.parse::<u32>().ok()),
    ) {
        (Some(major), Some(m)) => major > 0 || m >= minor,
        _ => false,
    }
}

fn strip_digest(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// Target checks (Platform ≥ 0.12): os and arch equal, variant a wildcard when empty, distro
/// labels matching where the new image sets them.
fn target_mismatches(app: &ImageConfig, run: &ImageConfig) -> Vec<String> {
    let mut out = Vec::new();
    let pairs = [
        ("os", app.os(), run.os()),
        ("architecture", app.architecture(), run.architecture()),
    ];
    for (field, a, r) in pairs {
        if a != r {
            out.push(format!(
                "unable to satisfy target {field}: app image has {a:?}, new run image has {r:?}"
            ));
        }
    }
    if let (Some(a), Some(r)) = (app.variant(), run.variant()) {
        if !a.is_empty() && !r.is_empty() && a != r {
            out.push(format!(
                "unable to satisfy target variant: app image has {a:?}, new run image has {r:?}"
            ));
        }
    }
    for key in [
        "io.buildpacks.base.distro.name",
        "io.buildpacks.base.distro.version",
    ] {
        let r = run.label(key).unwrap_or_default();
        let a = app.label(key).unwrap_or_default();
        if !r.is_empty() && !a.is_empty() && a != r {
            out.push(format!(
                "unable to satisfy target {key}: app image has {a:?}, new run image has {r:?}"
            ));
        }
    }
    out
}

/// App mixins the new run image lacks, ignoring `build:`/`run:` stage prefixes.
fn missing_mixins(app: &ImageConfig, run: &ImageConfig) -> Vec<String> {
    let parse = |c: &ImageConfig| -> Vec<String> {
        c.label("io.buildpacks.stack.mixins")
            .and_then(|v| serde_json::from_str::<Vec<String>>(&v).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                m.strip_prefix("run:")
                    .or_else(|| m.strip_prefix("build:"))
                    .unwrap_or(&m)
                    .to_string()
            })
            .collect()
    };
    let have = parse(run);
    let mut missing: Vec<String> = parse(app)
        .into_iter()
        .filter(|m| !have.contains(m))
        .collect();
    // Sorted, as the lifecycle prints them.
    missing.sort();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names() {
        assert!(api_at_least("0.12", 12));
        assert!(api_at_least("0.14", 12));
        assert!(!api_at_least("0.9", 12));
        assert!(!api_at_least("", 12));
        assert_eq!(strip_digest("r/run@sha256:ab"), "r/run");
    }

    #[test]
    fn target_and_mixin_checks() {
        let mut a = ImageConfig::new("linux", "amd64");
        let mut r = ImageConfig::new("linux", "arm64");
        assert_eq!(target_mismatches(&a, &r).len(), 1);
        r = ImageConfig::new("linux", "amd64");
        r.set_label("io.buildpacks.base.distro.name", "debian");
        assert!(
            target_mismatches(&a, &r).is_empty(),
            "empty app distro is a wildcard"
        );
        a.set_label("io.buildpacks.base.distro.name", "ubuntu");
        assert_eq!(target_mismatches(&a, &r).len(), 1);
        a.set_label(
            "io.buildpacks.stack.mixins",
            r#"["run:curl","git","build:make"]"#,
        );
        r.set_label("io.buildpacks.stack.mixins", r#"["curl","make"]"#);
        assert_eq!(missing_mixins(&a, &r), vec!["git"]);
    }
}
