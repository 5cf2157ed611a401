//! The status kpack reports on a Builder or ClusterBuilder once its image is written
//! (`BuilderRecord`, `create_builder.go`), and the checks kpack makes before writing it
//! (`builder_builder.go` `validateBuilder`, `buildpack_validation.go`).

use serde::Serialize;

use super::resolve::{semver_of, Resolution, Selected};
use super::resources::{
    Builder, BuilderKind, BuildpackStatus, ClusterStack, OrderEntry, StackStatus,
};
use super::Error;
use crate::clusterlifecycle::descriptor::{Apis, LegacyApi};
use crate::clusterlifecycle::resource::Status as LifecycleResourceStatus;

/// Platform APIs kpack's builder creation accepts (`supportedPlatformApis`); one is enough.
pub const KPACK_PLATFORM_APIS: &[&str] = &["0.3", "0.4", "0.5", "0.6", "0.7", "0.8"];

/// `status.builderMetadata[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuildpackMetadata {
    pub id: String,
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub homepage: String,
}

/// `status.stack`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStack {
    pub run_image: String,
    pub id: String,
}

/// `status.lifecycle` (the ClusterLifecycle's status without its image).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LifecycleStatus {
    pub version: String,
    pub api: LegacyApi,
    pub apis: Apis,
}

/// The status fields of a ready builder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuilderStatus {
    pub latest_image: String,
    pub builder_metadata: Vec<BuildpackMetadata>,
    pub order: Vec<OrderEntry>,
    pub stack: BuildStack,
    pub lifecycle: LifecycleStatus,
    pub os: String,
}

/// What the builder image turned out to be.
#[derive(Clone, Debug)]
pub struct Written<'a> {
    /// `<repository>@<digest>` of the builder image.
    pub latest_image: &'a str,
    /// `<repository>@<digest>` of the run image copied next to it (see [`run_image_tag`]).
    pub relocated_run_image: &'a str,
    /// The build image config's `os`.
    pub os: &'a str,
}

/// The status kpack would report, after kpack's checks of the buildpacks against the stack and
/// the lifecycle.
pub fn status(
    builder: &Builder,
    resolution: &Resolution<'_>,
    stack: &StackStatus,
    lifecycle: &LifecycleResourceStatus,
    written: &Written<'_>,
) -> Result<BuilderStatus, Error> {
    validate(resolution, stack, &lifecycle.apis).map_err(|reason| Error::Builder {
        builder: builder.describe(),
        reason,
    })?;
    Ok(BuilderStatus {
        latest_image: written.latest_image.to_string(),
        builder_metadata: layer_order(resolution)
            .into_iter()
            .map(|s| BuildpackMetadata {
                id: s.buildpack.id.clone(),
                version: s.buildpack.version.clone(),
                homepage: s.buildpack.homepage.clone(),
            })
            .collect(),
        order: resolution.order.clone(),
        stack: BuildStack {
            run_image: written.relocated_run_image.to_string(),
            id: stack.id.clone(),
        },
        lifecycle: LifecycleStatus {
            version: lifecycle.version.clone(),
            api: lifecycle.api.clone(),
            apis: lifecycle.apis.clone(),
        },
        os: written.os.to_string(),
    })
}

/// The buildpacks in the order their layers go into the image (and `builderMetadata` lists
/// them): compressed size descending, ties by `id@version` descending.
pub fn layer_order<'a>(resolution: &Resolution<'a>) -> Vec<Selected<'a>> {
    let mut all = resolution.buildpacks.clone();
    all.sort_by(|a, b| {
        b.buildpack
            .size
            .cmp(&a.buildpack.size)
            .then_with(|| b.buildpack.key().cmp(&a.buildpack.key()))
    });
    all
}

/// kpack's `validateBuilder`: the lifecycle offers a Platform API kpack knows, and every
/// non-meta buildpack speaks a Buildpack API of the lifecycle and runs on the stack.
pub fn validate(
    resolution: &Resolution<'_>,
    stack: &StackStatus,
    apis: &Apis,
) -> Result<(), String> {
    let platform: Vec<&str> = apis
        .platform
        .deprecated
        .iter()
        .chain(&apis.platform.supported)
        .map(String::as_str)
        .collect();
    if !KPACK_PLATFORM_APIS.iter().any(|a| platform.contains(a)) {
        return Err(format!(
            "unsupported platform apis in kpack lifecycle: {}, expecting one of: {}",
            platform.join(", "),
            KPACK_PLATFORM_APIS.join(", ")
        ));
    }
    let relaxed = platform
        .iter()
        .any(|a| semver_of(a).is_some_and(|v| v >= semver::Version::new(0, 7, 0)));
    let buildpack: Vec<&str> = apis
        .buildpack
        .deprecated
        .iter()
        .chain(&apis.buildpack.supported)
        .map(String::as_str)
        .collect();
    for s in layer_order(resolution) {
        supports(s.buildpack, &buildpack, stack, relaxed)
            .map_err(|e| format!("validating buildpack {}: {e}", s.buildpack.key()))?;
    }
    Ok(())
}

fn supports(
    bp: &BuildpackStatus,
    apis: &[&str],
    stack: &StackStatus,
    relaxed: bool,
) -> Result<(), String> {
    if !bp.order.is_empty() {
        return Ok(()); // meta-buildpacks have no API or stacks of their own
    }
    if !apis.contains(&bp.api.as_str()) {
        return Err(format!(
            "unsupported buildpack api: {}, expecting: {}",
            bp.api,
            apis.join(", ")
        ));
    }
    // Stacks are optional (and deprecated) from Buildpack API 0.10.
    if bp.stacks.is_empty() {
        return Ok(());
    }
    let any_stack = semver_of(&bp.api).is_some_and(|v| v >= semver::Version::new(0, 5, 0));
    let Some(s) = bp
        .stacks
        .iter()
        .find(|s| s.id == stack.id || (s.id == "*" && any_stack))
    else {
        return Err(format!("stack {} is not supported", stack.id));
    };
    let missing: Vec<&str> = s
        .mixins
        .iter()
        .filter(|m| !mixin_present(&stack.mixins, m, relaxed))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("stack missing mixin(s): {}", missing.join(", ")))
    }
}

/// kpack's `mixinPresent`: under the relaxed contract (Platform API 0.7+) a stage-specific
/// requirement is met by the plain mixin, and a plain one by both stage-specific ones.
fn mixin_present(have: &[String], want: &str, relaxed: bool) -> bool {
    let has = |m: &str| have.iter().any(|h| h == m);
    if !relaxed {
        return has(want);
    }
    match want.split_once(':') {
        Some(("build" | "run", plain)) => has(want) || has(plain),
        _ => has(want) || (has(&format!("build:{want}")) && has(&format!("run:{want}"))),
    }
}

/// The tag the builder image is written to: `spec.tag`, or when it has no tag or `latest`,
/// `<repo>:builder-<namespace>-<name>` (`<repo>:clusterbuilder-<name>` for a ClusterBuilder).
pub fn resolved_builder_ref(builder: &Builder) -> Result<String, Error> {
    let tag = builder.tag.as_str();
    if tag.is_empty() {
        return Err(Error::Builder {
            builder: builder.describe(),
            reason: "missing field(s): spec.tag".into(),
        });
    }
    let slash = tag.rfind('/').map_or(0, |i| i + 1);
    let (repo, t) = match tag[slash..].rfind(':') {
        Some(i) => (&tag[..slash + i], &tag[slash + i + 1..]),
        None => (tag, ""),
    };
    if !t.is_empty() && t != "latest" {
        return Ok(tag.to_string());
    }
    Ok(match (builder.kind, &builder.namespace) {
        (BuilderKind::Builder, Some(ns)) => format!("{repo}:builder-{ns}-{}", builder.name),
        _ => format!("{repo}:clusterbuilder-{}", builder.name),
    })
}

/// Where kpack copies the stack's run image: `<resolved builder ref>-run-image`.
pub fn run_image_tag(builder: &Builder) -> Result<String, Error> {
    Ok(format!("{}-run-image", resolved_builder_ref(builder)?))
}

/// The builder's ClusterStack, which must have a status (kpack requires it to be ready).
pub fn ready_stack<'a>(
    stacks: &'a [ClusterStack],
    builder: &Builder,
) -> Result<(&'a ClusterStack, &'a StackStatus), Error> {
    let err = |reason: String| Error::Builder {
        builder: builder.describe(),
        reason,
    };
    let stack = stacks
        .iter()
        .find(|s| s.name == builder.stack.name)
        .ok_or_else(|| err(format!("clusterstack '{}' not found", builder.stack.name)))?;
    let status = stack
        .status
        .as_ref()
        .filter(|s| !s.build_image.latest_image.is_empty() && !s.run_image.latest_image.is_empty())
        .ok_or_else(|| err(format!("clusterstack '{}' is not ready", stack.name)))?;
    Ok((stack, status))
}
