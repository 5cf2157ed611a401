//! kpack `ClusterLifecycle` resources (`kpack.io/v1alpha2`): parsing (multi-document YAML),
//! the status kpack's reconciler derives from the image, and choosing a builder's lifecycle.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::descriptor::{Apis, LegacyApi, LABEL_APIS, LABEL_BUILDER_METADATA};
use super::negotiate::{negotiate, BuildpackApi, Negotiated};
use super::Error;
use crate::k8s_yaml::{objects, Object};
use crate::lifecycle::api::{ApiVersion, PLATFORM_APIS};
use crate::oci::location::Location;
use crate::oci::manifest::{descriptor_digest, select_platform};
use crate::oci::{ImageConfig, Manifest, PlatformSpec};
use crate::registry::Client;

pub const API_VERSION: &str = "kpack.io/v1alpha2";
pub const KIND: &str = "ClusterLifecycle";

/// `spec.serviceAccountRef`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// A ClusterLifecycle as written by users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterLifecycle {
    pub name: String,
    pub image: String,
    pub service_account_ref: Option<ServiceAccountRef>,
}

/// A Builder's or ClusterBuilder's `spec.lifecycle` (an ObjectReference).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuilderRef {
    pub kind: String,
    pub name: String,
    /// The ClusterLifecycle it names, if any.
    pub lifecycle: Option<String>,
}

/// The kpack objects of a YAML stream that matter here; other kinds are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Documents {
    pub lifecycles: Vec<ClusterLifecycle>,
    pub builders: Vec<BuilderRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LifecycleSpec {
    #[serde(default)]
    image: String,
    #[serde(default)]
    service_account_ref: Option<ServiceAccountRef>,
}

#[derive(Deserialize)]
struct BuilderSpec {
    #[serde(default)]
    lifecycle: Option<ObjectRef>,
}

#[derive(Deserialize)]
struct ObjectRef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

/// Parse every document of `yaml`; ClusterLifecycles are validated as kpack's webhook does.
pub fn parse(yaml: &str) -> Result<Documents, Error> {
    let mut docs = Documents::default();
    for doc in objects(yaml).map_err(Error::Yaml)? {
        match doc.kind.as_str() {
            KIND => docs.lifecycles.push(lifecycle(doc)?),
            "Builder" | "ClusterBuilder" => docs.builders.push(builder(doc)?),
            _ => {}
        }
    }
    let mut names: Vec<&str> = docs.lifecycles.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::resource(w[0], "defined more than once"));
    }
    Ok(docs)
}

fn spec<T: serde::de::DeserializeOwned>(doc: &mut Object, what: &str) -> Result<Option<T>, Error> {
    doc.spec
        .take()
        .map(|v| {
            serde_norway::from_value(v)
                .map_err(|e| Error::resource(&doc.metadata.name, format!("invalid {what}: {e}")))
        })
        .transpose()
}

fn lifecycle(mut doc: Object) -> Result<ClusterLifecycle, Error> {
    let name = doc.metadata.name.clone();
    if doc.api_version != API_VERSION {
        return Err(Error::resource(
            &name,
            format!(
                "not supported: apiVersion {:?} (want {API_VERSION})",
                doc.api_version
            ),
        ));
    }
    if name.is_empty() {
        return Err(Error::resource(
            "<unnamed>",
            "missing field(s): metadata.name",
        ));
    }
    let spec: Option<LifecycleSpec> = spec(&mut doc, "spec")?;
    let Some(spec) = spec.filter(|s| !s.image.is_empty()) else {
        return Err(Error::resource(&name, "missing field(s): spec.image"));
    };
    if let Some(sa) = &spec.service_account_ref {
        let missing: Vec<&str> = [("name", &sa.name), ("namespace", &sa.namespace)]
            .into_iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(k, _)| k)
            .collect();
        if !missing.is_empty() {
            let fields: Vec<String> = missing
                .iter()
                .map(|k| format!("spec.serviceAccountRef.{k}"))
                .collect();
            return Err(Error::resource(
                &name,
                format!("missing field(s): {}", fields.join(", ")),
            ));
        }
    }
    Ok(ClusterLifecycle {
        name,
        image: spec.image,
        service_account_ref: spec.service_account_ref,
    })
}

fn builder(mut doc: Object) -> Result<BuilderRef, Error> {
    let spec: Option<BuilderSpec> = spec(&mut doc, "builder spec")?;
    let lifecycle = match spec.and_then(|s| s.lifecycle) {
        None => None,
        Some(r) if r.kind.is_empty() || r.kind == KIND => Some(r.name),
        Some(r) => {
            return Err(Error::resource(
                &r.name,
                format!(
                    "not supported: {} {} references a {}, want a {KIND}",
                    doc.kind, doc.metadata.name, r.kind
                ),
            ))
        }
    };
    Ok(BuilderRef {
        kind: doc.kind,
        name: doc.metadata.name,
        lifecycle,
    })
}

/// `status.image`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedImage {
    /// `<repository>@<digest>` of the single-platform manifest read.
    pub latest_image: String,
    /// `spec.image` as written.
    pub image: String,
}

/// The status fields kpack's reconciler sets on a ready ClusterLifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub image: ResolvedImage,
    pub version: String,
    pub api: LegacyApi,
    pub apis: Apis,
}

/// A ClusterLifecycle with its status and the platform of its image's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub spec_image: String,
    pub status: Status,
    pub platform: PlatformSpec,
}

/// Read a ClusterLifecycle's image as kpack does: an index gives the manifest for `platform`
/// (kpack: linux/amd64); both `io.buildpacks.builder.metadata` and
/// `io.buildpacks.lifecycle.apis` are required.
pub fn resolve(
    client: &Arc<Client>,
    cl: &ClusterLifecycle,
    platform: &PlatformSpec,
) -> Result<Resolved, Error> {
    let err = |reason: String| Error::resource(&cl.name, reason);
    let location = Location::parse(&cl.image)?;
    let (store, reference) = location.open(client)?;
    let mut m = store.get_manifest(&reference)?;
    if let Manifest::Index(idx) = m.parse()? {
        let d = select_platform(&idx, platform).map_err(|e| err(e.to_string()))?;
        m = store.get_manifest(&descriptor_digest(d)?.to_string())?;
    }
    let Manifest::Image(im) = m.parse()? else {
        return Err(err(format!("not supported: nested index in {}", cl.image)));
    };
    let cfg_digest = descriptor_digest(im.config())?;
    let cfg = ImageConfig::from_json(
        &store.read_blob(&cfg_digest, Some(im.config().size()))?,
        &format!("config of {}", cl.image),
    )?;
    let label = |key: &str| {
        cfg.label(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err(format!("image {} has no label {key}", cl.image)))
    };
    #[derive(Deserialize)]
    struct Descriptor {
        #[serde(default)]
        lifecycle: Option<Version>,
        #[serde(default)]
        api: Option<LegacyApi>,
    }
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        version: String,
    }
    let bad = |key: &str, e: serde_json::Error| err(format!("label {key} of {}: {e}", cl.image));
    let d: Descriptor = serde_json::from_str(&label(LABEL_BUILDER_METADATA)?)
        .map_err(|e| bad(LABEL_BUILDER_METADATA, e))?;
    let apis: Apis = serde_json::from_str(&label(LABEL_APIS)?).map_err(|e| bad(LABEL_APIS, e))?;
    let latest_image = crate::builder::fetch::identifier(&location, &m.digest)?;
    Ok(Resolved {
        name: cl.name.clone(),
        spec_image: cl.image.clone(),
        status: Status {
            image: ResolvedImage {
                latest_image,
                image: cl.image.clone(),
            },
            version: d.lifecycle.map(|l| l.version).unwrap_or_default(),
            api: d.api.unwrap_or_default(),
            apis,
        },
        platform: PlatformSpec::new(&cfg.os(), &cfg.architecture(), cfg.variant()),
    })
}

/// What a builder needs of its lifecycle.
#[derive(Clone, Debug)]
pub struct BuilderNeeds<'a> {
    /// `spec.lifecycle.name`; `None` picks the highest compatible version.
    pub lifecycle: Option<&'a str>,
    pub buildpacks: &'a [BuildpackApi],
    /// The platform of the stack's build image.
    pub build_image: &'a PlatformSpec,
    /// kpack's `MAXIMUM_PLATFORM_API_VERSION`.
    pub max_platform: Option<ApiVersion>,
}

/// The chosen lifecycle and the Platform API to run it with.
#[derive(Clone, Copy, Debug)]
pub struct Picked<'a> {
    pub lifecycle: &'a Resolved,
    pub negotiated: Negotiated,
}

/// Choose the lifecycle for a builder: the one it names, or else the highest semver version
/// that runs on the build image's platform, shares a Platform API with us and supports every
/// buildpack's API.
pub fn pick<'a>(all: &'a [Resolved], needs: &BuilderNeeds<'_>) -> Result<Picked<'a>, Error> {
    if let Some(name) = needs.lifecycle {
        let Some(l) = all.iter().find(|l| l.name == name) else {
            let have: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
            return Err(Error::resource(
                name,
                format!("not found (have: {})", or_none(&have.join(", "))),
            ));
        };
        return check(l, needs).map_err(|reason| Error::resource(name, reason));
    }
    let mut candidates: Vec<&Resolved> = all.iter().collect();
    candidates.sort_by_key(|l| std::cmp::Reverse(semver_of(&l.status.version)));
    let mut refused = Vec::new();
    for l in candidates {
        match check(l, needs) {
            Ok(p) => return Ok(p),
            Err(reason) => refused.push(format!("{} ({}): {reason}", l.name, l.status.version)),
        }
    }
    Err(Error::resource(
        "default",
        format!(
            "no compatible clusterlifecycle: {}",
            or_none(&refused.join("; "))
        ),
    ))
}

fn check<'a>(l: &'a Resolved, needs: &BuilderNeeds<'_>) -> Result<Picked<'a>, String> {
    if !platform_matches(needs.build_image, &l.platform) {
        return Err(format!(
            "validating lifecycle image {}: expected platform to be {} but got {}",
            l.spec_image, needs.build_image, l.platform
        ));
    }
    let negotiated = negotiate(
        &l.status.apis,
        PLATFORM_APIS,
        needs.max_platform,
        needs.buildpacks,
    )
    .map_err(|e| e.to_string())?;
    Ok(Picked {
        lifecycle: l,
        negotiated,
    })
}

/// kpack's `platformMatches`: equal OS; arch and variant equal when both are set.
pub fn platform_matches(want: &PlatformSpec, have: &PlatformSpec) -> bool {
    let both_eq = |a: &str, b: &str| a.is_empty() || b.is_empty() || a == b;
    want.os == have.os
        && both_eq(&want.arch, &have.arch)
        && both_eq(
            want.variant.as_deref().unwrap_or(""),
            have.variant.as_deref().unwrap_or(""),
        )
}

/// Versions that are not semver ("0.20", "dev") sort below every semver version.
fn semver_of(v: &str) -> Option<semver::Version> {
    let v = v.strip_prefix('v').unwrap_or(v);
    semver::Version::parse(v)
        .or_else(|_| semver::Version::parse(&format!("{v}.0")))
        .ok()
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}
