//! kpack resources that describe builders (`kpack.io/v1alpha2`): ClusterStack, ClusterBuildpack,
//! Buildpack, ClusterStore, Builder and ClusterBuilder, parsed from multi-document YAML.
//!
//! Buildpack-providing resources are modelled by their `status.buildpacks`: that is what kpack's
//! reconcilers read from the buildpackage images, and what resolution works on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::k8s_yaml::{objects, Metadata, Object};

pub const API_VERSION: &str = "kpack.io/v1alpha2";
pub const KIND_BUILDPACK: &str = "Buildpack";
pub const KIND_CLUSTER_BUILDPACK: &str = "ClusterBuildpack";
pub const KIND_CLUSTER_STORE: &str = "ClusterStore";
pub const KIND_CLUSTER_STACK: &str = "ClusterStack";
pub const KIND_BUILDER: &str = "Builder";
pub const KIND_CLUSTER_BUILDER: &str = "ClusterBuilder";
pub const KIND_CLUSTER_LIFECYCLE: &str = "ClusterLifecycle";
/// kpack's `DefaultLifecycleName`.
pub const DEFAULT_LIFECYCLE: &str = "default-lifecycle";
/// The namespace of namespaced objects written without one (kubectl's default context).
pub const DEFAULT_NAMESPACE: &str = "default";

/// `{id, version, optional}` of an order group (`corev1alpha1.BuildpackRef`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRef {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// `order[]` of a meta-buildpack or a builder status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntry {
    #[serde(default)]
    pub group: Vec<BuildpackRef>,
}

/// `stacks[]` of a buildpack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackStack {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixins: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreImage {
    #[serde(default)]
    pub image: String,
}

/// One entry of `status.buildpacks` (kpack's `corev1alpha1.BuildpackStatus`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildpackStatus {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub diff_id: String,
    #[serde(default)]
    pub digest: String,
    /// Compressed layer size.
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub store_image: StoreImage,
    #[serde(default)]
    pub api: String,
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub order: Vec<OrderEntry>,
    #[serde(default)]
    pub stacks: Vec<BuildpackStack>,
}

impl BuildpackStatus {
    /// `id@version`, as kpack prints a `BuildpackInfo`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// Whether two entries are the same buildpack layer (not merely the same id@version).
    pub fn same_content(&self, other: &Self) -> bool {
        let eq = |a: &str, b: &str| !a.is_empty() && a == b;
        eq(&self.diff_id, &other.diff_id) || eq(&self.digest, &other.digest)
    }
}

/// Where a buildpack comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Buildpack,
    ClusterBuildpack,
    ClusterStore,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Buildpack => KIND_BUILDPACK,
            SourceKind::ClusterBuildpack => KIND_CLUSTER_BUILDPACK,
            SourceKind::ClusterStore => KIND_CLUSTER_STORE,
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec.serviceAccountRef` (cluster-scoped resources).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// A Buildpack, ClusterBuildpack or ClusterStore: a named set of buildpacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildpackSource {
    pub kind: SourceKind,
    pub name: String,
    /// Set for namespaced Buildpacks only.
    pub namespace: Option<String>,
    /// `spec.image` (Buildpack, ClusterBuildpack) or `spec.sources[].image` (ClusterStore).
    pub images: Vec<String>,
    pub service_account: Option<ServiceAccountRef>,
    pub buildpacks: Vec<BuildpackStatus>,
}

impl BuildpackSource {
    /// `Kind name` or `Kind namespace/name`, as errors print it.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// `status.buildImage` / `status.runImage` of a ClusterStack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackImage {
    #[serde(default)]
    pub latest_image: String,
    #[serde(default)]
    pub image: String,
}

/// `status` of a ClusterStack (kpack's `ResolvedClusterStack`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub build_image: StackImage,
    #[serde(default)]
    pub run_image: StackImage,
    #[serde(default)]
    pub mixins: Vec<String>,
    #[serde(default)]
    pub user_id: i64,
    #[serde(default)]
    pub group_id: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStack {
    pub name: String,
    pub id: String,
    pub build_image: String,
    pub run_image: String,
    pub service_account: Option<ServiceAccountRef>,
    pub status: Option<StackStatus>,
}

/// An ObjectReference (`{kind, name}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// One `spec.order[].group[]` entry (kpack's `BuilderBuildpackRef`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderBuildpackRef {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: String,
}

impl BuilderBuildpackRef {
    /// The fields that are set, as `{id: x, version: y}`.
    pub fn describe(&self) -> String {
        let fields: Vec<String> = [
            ("id", &self.id),
            ("version", &self.version),
            ("kind", &self.kind),
            ("name", &self.name),
            ("image", &self.image),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
        format!("{{{}}}", fields.join(", "))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderOrderEntry {
    #[serde(default)]
    pub group: Vec<BuilderBuildpackRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuilderKind {
    Builder,
    ClusterBuilder,
}

impl BuilderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuilderKind::Builder => KIND_BUILDER,
            BuilderKind::ClusterBuilder => KIND_CLUSTER_BUILDER,
        }
    }
}

/// A Builder or ClusterBuilder, with kpack's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Builder {
    pub kind: BuilderKind,
    pub name: String,
    /// Set for Builders only.
    pub namespace: Option<String>,
    pub tag: String,
    pub stack: ObjectRef,
    /// `None` when `spec.store` is empty.
    pub store: Option<ObjectRef>,
    pub lifecycle: ObjectRef,
    pub order: Vec<BuilderOrderEntry>,
    pub service_account: String,
    pub additional_labels: BTreeMap<String, String>,
}

impl Builder {
    /// `Builder ns/name` or `ClusterBuilder name`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.as_str(), self.name),
            None => format!("{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// Every builder-related object of a YAML stream; other kinds (ClusterLifecycles included, see
/// `clusterlifecycle::resource::parse`) are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub stacks: Vec<ClusterStack>,
    /// Buildpacks, ClusterBuildpacks and ClusterStores in document order.
    pub sources: Vec<BuildpackSource>,
    pub builders: Vec<Builder>,
}

impl Resources {
    pub fn source(
        &self,
        kind: SourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&BuildpackSource> {
        self.sources
            .iter()
            .find(|s| s.kind == kind && s.name == name && s.namespace.as_deref() == namespace)
    }

    pub fn stack(&self, name: &str) -> Option<&ClusterStack> {
        self.stacks.iter().find(|s| s.name == name)
    }

    /// A builder by kind and name; `namespace` is ignored for ClusterBuilders.
    pub fn builder(&self, kind: BuilderKind, namespace: &str, name: &str) -> Option<&Builder> {
        self.builders.iter().find(|b| {
            b.kind == kind
                && b.name == name
                && (kind == BuilderKind::ClusterBuilder
                    || b.namespace.as_deref() == Some(namespace))
        })
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceSpec {
    #[serde(default)]
    image: String,
    #[serde(default)]
    sources: Vec<StoreImage>,
    #[serde(default)]
    service_account_ref: Option<ServiceAccountRef>,
    #[serde(default)]
    service_account_name: String,
}

#[derive(Default, Deserialize)]
struct SourceStatus {
    #[serde(default)]
    buildpacks: Vec<BuildpackStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StackSpec {
    #[serde(default)]
    id: String,
    #[serde(default)]
    build_image: StoreImage,
    #[serde(default)]
    run_image: StoreImage,
    #[serde(default)]
    service_account_ref: Option<ServiceAccountRef>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuilderSpec {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    stack: ObjectRef,
    #[serde(default)]
    store: ObjectRef,
    #[serde(default)]
    lifecycle: ObjectRef,
    #[serde(default)]
    order: Vec<BuilderOrderEntry>,
    #[serde(default)]
    service_account_name: String,
    /// The pre-v1alpha2 spelling kpack still accepts.
    #[serde(default)]
    service_account: String,
    #[serde(default)]
    additional_labels: BTreeMap<String, String>,
}

/// Parse every document of `yaml`.
pub fn parse(yaml: &str) -> Result<Resources, Error> {
    let mut res = Resources::default();
    for doc in objects(yaml).map_err(Error::Yaml)? {
        let kind = doc.kind.clone();
        let relevant = [
            KIND_BUILDPACK,
            KIND_CLUSTER_BUILDPACK,
            KIND_CLUSTER_STORE,
            KIND_CLUSTER_STACK,
            KIND_BUILDER,
            KIND_CLUSTER_BUILDER,
        ];
        if !relevant.contains(&kind.as_str()) {
            continue;
        }
        if doc.api_version != API_VERSION {
            return Err(Error::resource(
                &kind,
                &doc.metadata.name,
                format!(
                    "not supported: apiVersion {:?} (want {API_VERSION})",
                    doc.api_version
                ),
            ));
        }
        if doc.metadata.name.is_empty() {
            return Err(Error::resource(
                &kind,
                "",
                "missing field(s): metadata.name",
            ));
        }
        match kind.as_str() {
            KIND_BUILDPACK => res.sources.push(source(doc, SourceKind::Buildpack)?),
            KIND_CLUSTER_BUILDPACK => res.sources.push(source(doc, SourceKind::ClusterBuildpack)?),
            KIND_CLUSTER_STORE => res.sources.push(source(doc, SourceKind::ClusterStore)?),
            KIND_CLUSTER_STACK => res.stacks.push(stack(doc)?),
            KIND_BUILDER => res.builders.push(builder(doc, BuilderKind::Builder)?),
            _ => res
                .builders
                .push(builder(doc, BuilderKind::ClusterBuilder)?),
        }
    }
    duplicates(&res)?;
    Ok(res)
}

fn duplicates(res: &Resources) -> Result<(), Error> {
    let mut seen = std::collections::BTreeSet::new();
    let keys = res
        .sources
        .iter()
        .map(|s| (s.kind.as_str(), s.namespace.clone(), s.name.clone()))
        .chain(
            res.stacks
                .iter()
                .map(|s| (KIND_CLUSTER_STACK, None, s.name.clone())),
        )
        .chain(
            res.builders
                .iter()
                .map(|b| (b.kind.as_str(), b.namespace.clone(), b.name.clone())),
        );
    for (kind, ns, name) in keys {
        let shown = match &ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        };
        if !seen.insert((kind, ns, name)) {
            return Err(Error::resource(kind, &shown, "defined more than once"));
        }
    }
    Ok(())
}

fn part<T: serde::de::DeserializeOwned + Default>(
    value: Option<serde_norway::Value>,
    kind: &str,
    name: &str,
    what: &str,
) -> Result<T, Error> {
    match value {
        None => Ok(T::default()),
        Some(v) if v.is_null() => Ok(T::default()),
        Some(v) => serde_norway::from_value(v)
            .map_err(|e| Error::resource(kind, name, format!("invalid {what}: {e}"))),
    }
}

fn namespace(meta: &Metadata) -> String {
    if meta.namespace.is_empty() {
        DEFAULT_NAMESPACE.to_string()
    } else {
        meta.namespace.clone()
    }
}

fn source(doc: Object, kind: SourceKind) -> Result<BuildpackSource, Error> {
    let (k, name) = (kind.as_str(), doc.metadata.name.as_str());
    let spec: SourceSpec = part(doc.spec, k, name, "spec")?;
    let status: SourceStatus = part(doc.status, k, name, "status")?;
    let images = match kind {
        SourceKind::ClusterStore => spec.sources.into_iter().map(|s| s.image).collect(),
        _ if spec.image.is_empty() => Vec::new(),
        _ => vec![spec.image],
    };
    let service_account = match kind {
        // A namespaced Buildpack pulls with a service account of its own namespace.
        SourceKind::Buildpack if !spec.service_account_name.is_empty() => Some(ServiceAccountRef {
            name: spec.service_account_name,
            namespace: namespace(&doc.metadata),
        }),
        _ => spec.service_account_ref,
    };
    for (i, bp) in status.buildpacks.iter().enumerate() {
        if bp.id.is_empty() {
            return Err(Error::resource(
                k,
                name,
                format!("missing field(s): status.buildpacks[{i}].id"),
            ));
        }
    }
    Ok(BuildpackSource {
        kind,
        name: name.to_string(),
        namespace: (kind == SourceKind::Buildpack).then(|| namespace(&doc.metadata)),
        images,
        service_account,
        buildpacks: status.buildpacks,
    })
}

fn stack(doc: Object) -> Result<ClusterStack, Error> {
    let name = doc.metadata.name.as_str();
    let spec: StackSpec = part(doc.spec, KIND_CLUSTER_STACK, name, "spec")?;
    let status: Option<StackStatus> = match doc.status {
        Some(v) if !v.is_null() => Some(part(Some(v), KIND_CLUSTER_STACK, name, "status")?),
        _ => None,
    };
    let missing: Vec<&str> = [
        ("spec.id", &spec.id),
        ("spec.buildImage.image", &spec.build_image.image),
        ("spec.runImage.image", &spec.run_image.image),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_empty())
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        return Err(Error::resource(
            KIND_CLUSTER_STACK,
            name,
            format!("missing field(s): {}", missing.join(", ")),
        ));
    }
    Ok(ClusterStack {
        name: name.to_string(),
        id: spec.id,
        build_image: spec.build_image.image,
        run_image: spec.run_image.image,
        service_account: spec.service_account_ref,
        status,
    })
}

fn builder(doc: Object, kind: BuilderKind) -> Result<Builder, Error> {
    let (k, name) = (kind.as_str(), doc.metadata.name.as_str());
    let spec: BuilderSpec = part(doc.spec, k, name, "spec")?;
    let err = |reason: String| Error::resource(k, name, reason);
    // kpack's SetDefaults and Validate (builder_validation.go).
    if spec.stack.name.is_empty() {
        return Err(err("missing field(s): spec.stack.name".into()));
    }
    let mut stack = spec.stack;
    if stack.kind.is_empty() {
        stack.kind = KIND_CLUSTER_STACK.into();
    }
    if stack.kind != KIND_CLUSTER_STACK {
        return Err(err(format!(
            "invalid value: {}: spec.stack.kind (must be {KIND_CLUSTER_STACK})",
            stack.kind
        )));
    }
    let store = match spec.store {
        s if s.name.is_empty() && s.kind.is_empty() => None,
        mut s => {
            if s.kind.is_empty() {
                s.kind = KIND_CLUSTER_STORE.into();
            }
            if s.name.is_empty() {
                return Err(err("missing field(s): spec.store.name".into()));
            }
            if s.kind != KIND_CLUSTER_STORE {
                return Err(err(format!(
                    "invalid value: {}: spec.store.kind (must be {KIND_CLUSTER_STORE})",
                    s.kind
                )));
            }
            Some(s)
        }
    };
    let mut lifecycle = spec.lifecycle;
    if lifecycle.name.is_empty() {
        lifecycle.name = DEFAULT_LIFECYCLE.into();
    }
    if lifecycle.kind.is_empty() {
        lifecycle.kind = KIND_CLUSTER_LIFECYCLE.into();
    }
    let service_account = match kind {
        BuilderKind::ClusterBuilder => String::new(),
        BuilderKind::Builder if !spec.service_account_name.is_empty() => spec.service_account_name,
        BuilderKind::Builder if !spec.service_account.is_empty() => spec.service_account,
        BuilderKind::Builder => "default".into(),
    };
    Ok(Builder {
        kind,
        name: name.to_string(),
        namespace: (kind == BuilderKind::Builder).then(|| namespace(&doc.metadata)),
        tag: spec.tag,
        stack,
        store,
        lifecycle,
        order: spec.order,
        service_account,
        additional_labels: spec.additional_labels,
    })
}
