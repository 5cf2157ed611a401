//! What the pod is generated from besides the Build (kpack's `BuildContext` and
//! `BuildPodBuilderConfig`, §1.1), and the pure parts of gathering it: the builder image's
//! labels and env, a ServiceAccount's secrets, and service bindings.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{
    LocalObjectReference, ResourceRequirements, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;

use super::build::Build;
use super::PodError;
use crate::clusterlifecycle::Apis;
use crate::lifecycle::api::ApiVersion;

/// The images of kpack's own steps (controller env `BUILD_INIT_IMAGE`, `COMPLETION_IMAGE`,
/// `REBASE_IMAGE`, `BUILD_WAITER_IMAGE`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildPodImages {
    pub build_init: String,
    pub build_waiter: String,
    pub completion: String,
    pub rebase: String,
}

/// What the pod needs of the builder image (kpack's `BuildPodBuilderConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuilderConfig {
    /// Label `io.buildpacks.stack.id`.
    pub stack_id: String,
    /// `io.buildpacks.builder.metadata` `.stack.runImage.image`.
    pub run_image: String,
    /// Env `CNB_USER_ID` / `CNB_GROUP_ID`.
    pub uid: i64,
    pub gid: i64,
    /// The lifecycle's Platform APIs: deprecated, then supported, as the builder spells them.
    pub platform_apis: Vec<String>,
    /// The builder image the lifecycle containers run (`repo@digest`).
    pub resolved_image: String,
    /// The builder image's architecture (selects a ClusterLifecycle's binaries); may be empty.
    pub arch: String,
}

/// A service binding (§1.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `spec.services[]`: the secret (`None`: a provisioned service without a binding yet).
    Service {
        name: String,
        secret: Option<String>,
    },
    /// `spec.cnbBindings[]`: a metadata ConfigMap and an optional secret.
    Cnb {
        name: String,
        metadata: String,
        secret: Option<String>,
    },
}

/// Which pod to generate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// kpack's pod, field for field (Platform API 0.7–0.9).
    #[default]
    Kpack,
    /// buildpod's pod: negotiated Platform API up to 0.14, resources on every container, log
    /// tails as termination messages, no Windows leftovers, ClusterLifecycle binaries.
    Ours,
}

/// A ClusterLifecycle whose binaries replace the builder's `/cnb/lifecycle` (ours only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleMount {
    /// The ClusterLifecycle's name (for messages).
    pub name: String,
    /// `status.image.latestImage` (`repo@digest`), read by `buildpod lifecycle select`.
    pub image: String,
    /// `status.apis`: the Platform API is negotiated against these.
    pub apis: Apis,
}

/// Everything but the Build (kpack's `BuildContext`, plus the mode and a clock).
#[derive(Clone, Debug, PartialEq)]
pub struct BuildContext {
    pub builder: BuilderConfig,
    /// The build ServiceAccount's secrets, in its order, de-duplicated (see [`build_secrets`]).
    pub secrets: Vec<Secret>,
    pub bindings: Vec<Binding>,
    /// The ServiceAccount's image pull secrets not already in `secrets`.
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// `MAXIMUM_PLATFORM_API_VERSION`.
    pub max_platform_api: Option<ApiVersion>,
    /// `INJECTED_SIDECAR_SUPPORT`.
    pub injected_sidecar_support: bool,
    /// `INSECURE_SSH_TRUST_UNKNOWN_HOSTS` (kpack's default: true).
    pub ssh_trust_unknown_host: bool,
    pub mode: Mode,
    /// Ours: the ClusterLifecycle the Build names.
    pub lifecycle: Option<LifecycleMount>,
    /// Unix seconds: what `spec.creationTime: now` means (the controller's clock).
    pub now: i64,
    /// Ours: resources for every container when the Build sets none.
    pub default_resources: ResourceRequirements,
    /// Ours: registries reached over plain HTTP (`-insecure-registry`, Platform API 0.13+,
    /// and the lifecycle step).
    pub insecure_registries: Vec<String>,
}

impl BuildContext {
    /// kpack's defaults around `builder`: no secrets or bindings, trust unknown SSH hosts.
    pub fn new(builder: BuilderConfig, mode: Mode) -> Self {
        Self {
            builder,
            secrets: Vec::new(),
            bindings: Vec::new(),
            image_pull_secrets: Vec::new(),
            max_platform_api: None,
            injected_sidecar_support: false,
            ssh_trust_unknown_host: true,
            mode,
            lifecycle: None,
            now: 0,
            default_resources: default_resources(),
            insecure_registries: Vec::new(),
        }
    }
}

/// Ours: what a build step asks for when the Build says nothing (a request that schedules on
/// small nodes; a memory limit that stops a runaway build before it takes the node).
pub fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some([("cpu".into(), q("250m")), ("memory".into(), q("512Mi"))].into()),
        limits: Some([("memory".into(), q("4Gi"))].into()),
        ..Default::default()
    }
}

pub const LABEL_STACK_ID: &str = "io.buildpacks.stack.id";
pub const LABEL_BUILDER_METADATA: &str = "io.buildpacks.builder.metadata";

#[derive(Deserialize, Default)]
struct BuilderMetadata {
    #[serde(default)]
    stack: Stack,
    #[serde(default)]
    lifecycle: Lifecycle,
}

#[derive(Deserialize, Default)]
struct Stack {
    #[serde(default, rename = "runImage")]
    run_image: RunImage,
}

#[derive(Deserialize, Default)]
struct RunImage {
    #[serde(default)]
    image: String,
}

#[derive(Deserialize, Default)]
struct Lifecycle {
    #[serde(default)]
    apis: Apis,
}

/// kpack's `fetchBuilderConfig` on an image already read: its labels, config env (`K=V`), os
/// and architecture, and the reference it was resolved to.
pub fn builder_config(
    labels: &HashMap<String, String>,
    env: &[String],
    os: &str,
    arch: &str,
    resolved_image: &str,
) -> Result<BuilderConfig, PodError> {
    let stack_id = labels
        .get(LABEL_STACK_ID)
        .ok_or(PodError::NoStackId)?
        .clone();
    let md: BuilderMetadata = labels
        .get(LABEL_BUILDER_METADATA)
        .ok_or_else(|| format!("could not find label {LABEL_BUILDER_METADATA}"))
        .and_then(|s| serde_json::from_str(s).map_err(|e| e.to_string()))
        .map_err(PodError::BuilderMetadata)?;
    let id = |name: &'static str| -> Result<i64, PodError> {
        let v = env
            .iter()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
            .ok_or(PodError::MissingEnv(name))?;
        v.parse().map_err(|_| PodError::BadEnv {
            name,
            value: v.to_string(),
        })
    };
    let uid = id("CNB_USER_ID")?;
    let gid = id("CNB_GROUP_ID")?;
    if os == "windows" {
        return Err(PodError::Windows);
    }
    let apis = md.lifecycle.apis.platform;
    Ok(BuilderConfig {
        stack_id,
        run_image: md.stack.run_image.image,
        uid,
        gid,
        platform_apis: apis.deprecated.into_iter().chain(apis.supported).collect(),
        resolved_image: resolved_image.to_string(),
        arch: arch.to_string(),
    })
}

/// kpack's `fetchBuildSecrets`: the ServiceAccount's secrets (read with `get`, in its order,
/// de-duplicated by name), then its image pull secrets not already among them.
pub fn build_secrets<E>(
    sa: &ServiceAccount,
    mut get: impl FnMut(&str) -> Result<Secret, E>,
) -> Result<(Vec<Secret>, Vec<LocalObjectReference>), PodError>
where
    E: std::fmt::Display,
{
    let mut seen = BTreeSet::new();
    let mut secrets = Vec::new();
    for r in sa.secrets.iter().flatten() {
        let name = r.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(PodError::InvalidSecretRef);
        }
        if seen.insert(name.to_string()) {
            secrets.push(get(name).map_err(|e| PodError::Fetch(e.to_string()))?);
        }
    }
    let mut pull = Vec::new();
    for r in sa.image_pull_secrets.iter().flatten() {
        if r.name.is_empty() {
            return Err(PodError::InvalidPullSecretRef);
        }
        if !seen.contains(&r.name) {
            pull.push(r.clone());
        }
    }
    Ok((secrets, pull))
}

/// kpack's `fetchServiceBindings`: `spec.services` (a Secret by name, else `provisioned` reads
/// the object's `.status.binding.name`), or else `spec.cnbBindings`. A secret that any of the
/// namespace's ServiceAccounts lists is forbidden.
pub fn build_bindings<E>(
    build: &Build,
    service_accounts: &[ServiceAccount],
    mut provisioned: impl FnMut(&super::build::Service) -> Result<Option<String>, E>,
) -> Result<Vec<Binding>, PodError>
where
    E: std::fmt::Display,
{
    let forbidden: BTreeSet<&str> = service_accounts
        .iter()
        .flat_map(|sa| sa.secrets.iter().flatten())
        .filter_map(|r| r.name.as_deref())
        .collect();
    let check = |what: &'static str, name: &str, secret: &Option<String>| match secret {
        Some(s) if forbidden.contains(s.as_str()) => Err(PodError::ForbiddenSecret {
            what,
            name: name.to_string(),
            secret: s.clone(),
        }),
        _ => Ok(()),
    };
    let mut out = Vec::new();
    if !build.spec.services.is_empty() {
        for s in &build.spec.services {
            let secret = if s.kind == "Secret" {
                Some(s.name.clone())
            } else {
                provisioned(s).map_err(|e| PodError::Fetch(e.to_string()))?
            };
            check("service", &s.name, &secret)?;
            out.push(Binding::Service {
                name: s.name.clone(),
                secret,
            });
        }
        return Ok(out);
    }
    for b in &build.spec.cnb_bindings {
        let secret = b.secret_ref.as_ref().map(|r| r.name.clone());
        check("binding", &b.name, &secret)?;
        out.push(Binding::Cnb {
            name: b.name.clone(),
            metadata: b
                .metadata_ref
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            secret,
        });
    }
    Ok(out)
}
