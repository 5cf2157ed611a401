//! kpack's `Build` (`kpack.io/v1alpha2`): the spec fields the build pod reads and the status the
//! controller writes (`kpack-build-pod.md` §7), with kpack's JSON field names. Unknown fields
//! are ignored on read; empty fields are left out on write, as Go's `omitempty` does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ContainerState, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub use crate::kpack::metadata::BuildpackMetadata;

pub const API_VERSION: &str = "kpack.io/v1alpha2";
pub const KIND: &str = "Build";
pub const GROUP: &str = "kpack.io";
pub const VERSION: &str = "v1alpha2";
pub const PLURAL: &str = "builds";

/// Labels and annotations the pod reads (set by kpack's Image reconciler).
pub const LABEL_BUILD_NUMBER: &str = "image.kpack.io/buildNumber";
pub const ANNOTATION_REASON: &str = "image.kpack.io/reason";
pub const ANNOTATION_BUILD_CHANGES: &str = "image.kpack.io/buildChanges";
pub const ANNOTATION_BUILDER_NAME: &str = "image.kpack.io/builderName";
pub const ANNOTATION_BUILDER_KIND: &str = "image.kpack.io/builderKind";
/// The only reason that makes a rebase.
pub const REASON_STACK: &str = "STACK";

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A kpack Build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BuildSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BuildStatus>,
}

fn api_version() -> String {
    API_VERSION.to_string()
}

fn kind() -> String {
    KIND.to_string()
}

impl Build {
    /// Parse a Build from YAML or JSON (one document).
    pub fn from_yaml(s: &str) -> Result<Self, String> {
        serde_norway::from_str(s).map_err(|e| format!("parse build: {e}"))
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("")
    }

    pub fn label(&self, key: &str) -> &str {
        lookup(&self.metadata.labels, key)
    }

    pub fn annotation(&self, key: &str) -> &str {
        lookup(&self.metadata.annotations, key)
    }

    /// `spec.serviceAccountName`, defaulted to `default` (kpack's `SetDefaults`).
    pub fn service_account(&self) -> &str {
        match self.spec.service_account_name.as_str() {
            "" => "default",
            s => s,
        }
    }

    /// kpack's `PodName`: `<name>-build-pod`, shortened like knative's `kmeta.ChildName`.
    pub fn pod_name(&self) -> String {
        child_name(self.name(), "-build-pod")
    }

    /// The Succeeded condition, if any.
    pub fn succeeded(&self) -> Option<&Condition> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_SUCCEEDED)
    }

    /// The Build has finished (its Succeeded condition is True or False).
    pub fn is_finished(&self) -> bool {
        self.succeeded().is_some_and(|c| c.status != "Unknown")
    }
}

fn lookup<'a>(m: &'a Option<BTreeMap<String, String>>, key: &str) -> &'a str {
    m.as_ref()
        .and_then(|m| m.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

/// knative's `kmeta.ChildName`: `parent + suffix`, or, past 63 bytes, the parent cut to
/// `31 - len(suffix)` bytes, then the md5 of the whole parent in hex, then the suffix. (Suffixes
/// of 31 bytes or more, which knative hashes differently, are never used here.)
pub fn child_name(parent: &str, suffix: &str) -> String {
    const LONGEST: usize = 63;
    const HEAD: usize = LONGEST - 32;
    if parent.len() <= LONGEST.saturating_sub(suffix.len()) {
        return format!("{parent}{suffix}");
    }
    let mut keep = HEAD.saturating_sub(suffix.len());
    while !parent.is_char_boundary(keep) {
        keep -= 1;
    }
    let digest = hex::encode(<md5::Md5 as md5::Digest>::digest(parent.as_bytes()));
    format!("{}{digest}{suffix}", &parent[..keep])
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub builder: BuildBuilderSpec,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<BuildCacheConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cnb_bindings: Vec<CnbBinding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_descriptor_path: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub resources: ResourceRequirements,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_build: Option<LastBuild>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notary: Option<NotaryConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign: Option<CosignConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_process: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheduler_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority_class_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_image: Option<BuildSpecImage>,
    /// `""`, `"now"` or unix seconds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub creation_time: String,
    /// buildpod's extension: the ClusterLifecycle whose binaries the phases run (not kpack's;
    /// kpack's CRDs keep unknown fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<ObjectRef>,
}

/// `spec.builder`: an image, or (kpack) a reference to a Builder or ClusterBuilder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildBuilderSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// A `corev1.ObjectReference` reduced to what kpack reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySource>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub revision: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initialize_submodules: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobSource {
    #[serde(default)]
    pub url: String,
    /// `""`, `helper` or `secret`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub strip_components: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySource {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildCacheConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeCache>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryCache>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeCache {
    #[serde(default)]
    pub persistent_volume_claim_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryCache {
    #[serde(default)]
    pub tag: String,
}

/// `spec.services[]`: an ObjectReference to a Secret or a provisioned service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// `spec.cnbBindings[]` (legacy CNB bindings).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CnbBinding {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub metadata_ref: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastBuild {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cache: BuildCache,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildCache {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotaryConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1: Option<NotaryV1Config>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotaryV1Config {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub secret_ref: NotarySecretRef,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotarySecretRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CosignConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<CosignAnnotation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CosignAnnotation {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildSpecImage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
}

pub const CONDITION_SUCCEEDED: &str = "Succeeded";

/// `status` of a Build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    #[serde(default, skip_serializing_if = "is_default")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_metadata: Vec<BuildpackMetadata>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub stack: BuildStack,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lifecycle_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub latest_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub latest_cache_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub latest_attestation_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_states: Vec<ContainerState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps_completed: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStack {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

/// A knative condition (`type`, `status` True/False/Unknown, `reason`, `message`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_names() {
        assert_eq!(
            child_name("app-build-3", "-build-pod"),
            "app-build-3-build-pod"
        );
        let long = "a".repeat(60);
        let n = child_name(&long, "-build-pod");
        // knative: 21 bytes of the parent, md5(parent), the suffix.
        assert_eq!(
            n,
            format!(
                "{}{}-build-pod",
                "a".repeat(21),
                hex::encode(<md5::Md5 as md5::Digest>::digest(long.as_bytes()))
            )
        );
        assert_eq!(n.len(), 63);
    }

    #[test]
    fn parses_kpack_build_yaml() {
        let b = Build::from_yaml(
            r#"
apiVersion: kpack.io/v1alpha2
kind: Build
metadata: {name: b, namespace: ns, labels: {image.kpack.io/buildNumber: "3"}}
spec:
  tags: [reg.io/app]
  builder: {image: reg.io/builder@sha256:bb, imagePullSecrets: [{name: pull}]}
  source: {git: {url: "https://github.com/x/y", revision: abc}, subPath: api}
  cache: {volume: {persistentVolumeClaimName: c}}
  lastBuild: {image: reg.io/app@sha256:pp, cache: {image: reg.io/cache@sha256:cc}, stackId: s}
  env: [{name: BP_X, value: "1"}]
  unknownField: 1
"#,
        )
        .unwrap();
        assert_eq!(b.name(), "b");
        assert_eq!(b.label(LABEL_BUILD_NUMBER), "3");
        assert_eq!(b.service_account(), "default");
        assert_eq!(b.spec.source.sub_path, "api");
        assert_eq!(
            b.spec.last_build.unwrap().cache.image,
            "reg.io/cache@sha256:cc"
        );
        assert_eq!(b.api_version, API_VERSION);
    }
}
