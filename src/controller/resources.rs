//! kpack's resources as kube-rs sees them: `Build` as a typed resource, the others
//! (Builder, ClusterBuilder, ClusterLifecycle, provisioned services) read as dynamic objects.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::Client;

use crate::pod::build::{self, Build};

impl kube::Resource for Build {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(build::KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(build::GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(build::VERSION)
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(build::PLURAL)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// apimachinery's `UnsafeGuessKindToResource`: lower-case, then `s`, `es` or `ies`.
pub fn guess_plural(kind: &str) -> String {
    let k = kind.to_lowercase();
    if k.is_empty() {
        return k;
    }
    if k.ends_with('s')
        || k.ends_with("ch")
        || k.ends_with("sh")
        || k.ends_with('x')
        || k.ends_with('z')
    {
        return format!("{k}es");
    }
    if let Some(stem) = k.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    format!("{k}s")
}

fn api_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        &guess_plural(kind),
    )
}

/// GET an object by apiVersion and kind (namespaced when `namespace` is set).
pub(super) async fn get_dynamic(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<DynamicObject>, kube::Error> {
    let ar = api_resource(api_version, kind);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.get_opt(name).await
}

/// `.status.<path...>` of a dynamic object as a string ("" if absent).
pub(super) fn status_str(o: &DynamicObject, path: &[&str]) -> String {
    let mut v = o.data.get("status");
    for p in path {
        v = v.and_then(|x| x.get(p));
    }
    v.and_then(|x| x.as_str()).unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_like_apimachinery() {
        assert_eq!(guess_plural("ClusterBuilder"), "clusterbuilders");
        assert_eq!(guess_plural("Policy"), "policies");
        assert_eq!(guess_plural("Gateway"), "gateways");
        assert_eq!(guess_plural("Ingress"), "ingresses");
        assert_eq!(guess_plural("ProvisionedService"), "provisionedservices");
    }
}
