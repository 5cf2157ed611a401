//! ClusterLifecycle resources: YAML with several lifecycles whose images live in a real
//! registry; kpack's status fields; a builder's explicit reference, the default (highest
//! compatible semver), and OS/arch mismatches with the stack's build image.

mod clusterlifecycle_util;
mod support;

use std::sync::Arc;

use buildpod::clusterlifecycle::resource::{
    self, pick, resolve, BuilderNeeds, ClusterLifecycle, Documents, Resolved,
};
use buildpod::clusterlifecycle::BuildpackApi;
use buildpod::lifecycle::api::ApiVersion;
use buildpod::oci::PlatformSpec;
use buildpod::registry::{Client, ClientOptions, Repo};
use clusterlifecycle_util as u;
use support::registry::Registry;

const P_0_20: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14"];
const B_0_20: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11"];
const P_0_21: &[&str] = &[
    "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
];
const B_0_21: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"];

fn yaml(host: &str) -> String {
    format!(
        r#"apiVersion: kpack.io/v1alpha2
kind: ClusterLifecycle
metadata:
  name: ours
spec:
  image: {host}/lifecycle/ours:0.1.0
---
apiVersion: kpack.io/v1alpha2
kind: ClusterLifecycle
metadata:
  name: upstream-0.20
spec:
  image: {host}/buildpacksio/lifecycle:0.20.0
  serviceAccountRef:
    name: lifecycle-sa
    namespace: kpack
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Secret
metadata:
  name: unrelated
---
apiVersion: kpack.io/v1alpha2
kind: ClusterLifecycle
metadata:
  name: upstream-0.21
spec:
  image: {host}/buildpacksio/lifecycle:0.21.0
---
apiVersion: kpack.io/v1alpha2
kind: ClusterLifecycle
metadata:
  name: windows-0.22
spec:
  image: {host}/buildpacksio/lifecycle:0.22.0-windows
---
apiVersion: kpack.io/v1alpha2
kind: ClusterLifecycle
metadata:
  name: ancient
spec:
  image: {host}/kpack/lifecycle:0.9.3
---
apiVersion: kpack.io/v1alpha2
kind: ClusterBuilder
metadata:
  name: pinned
spec:
  lifecycle:
    kind: ClusterLifecycle
    name: upstream-0.20
  order: []
---
apiVersion: kpack.io/v1alpha2
kind: Builder
metadata:
  name: floating
spec:
  order: []
"#
    )
}

/// Push the five lifecycle images the YAML names.
fn push_images(client: &Arc<Client>, host: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let ours = Repo::new(client.clone(), host, "lifecycle/ours");
    u::ours(&ours, tmp.path(), "0.1.0", false, "0.1.0");
    let up = Repo::new(client.clone(), host, "buildpacksio/lifecycle");
    let base = u::base_layer(&up);
    for (version, p, b) in [("0.20.0", P_0_20, B_0_20), ("0.21.0", P_0_21, B_0_21)] {
        let labels = u::upstream_labels(version, p, b);
        let amd = u::image(
            &up,
            "linux/amd64",
            &labels,
            &[base.clone(), u::upstream_layer(&up, version, "amd64")],
            "",
        );
        let arm = u::image(
            &up,
            "linux/arm64/v8",
            &labels,
            &[base.clone(), u::upstream_layer(&up, version, "arm64")],
            "",
        );
        u::index(
            &up,
            &[(&amd, "linux/amd64"), (&arm, "linux/arm64/v8")],
            version,
        );
    }
    let win = u::upstream_layer(&up, "0.22.0", "windows");
    u::image(
        &up,
        "windows/amd64",
        &u::upstream_labels("0.22.0", P_0_21, B_0_21),
        &[win],
        "0.22.0-windows",
    );
    let old = Repo::new(client.clone(), host, "kpack/lifecycle");
    let l = u::upstream_layer(&old, "0.9.3", "old");
    u::image(
        &old,
        "linux/amd64",
        &u::upstream_labels("0.9.3", &["0.3", "0.4"], &["0.2", "0.3", "0.4"]),
        &[l],
        "0.9.3",
    );
}

struct Env {
    _reg: Registry,
    host: String,
    client: Arc<Client>,
    docs: Documents,
}

fn env() -> Env {
    let reg = Registry::plain();
    let host = reg.host();
    let client = Client::new(ClientOptions::default()).unwrap();
    push_images(&client, &host);
    let docs = resource::parse(&yaml(&host)).unwrap();
    Env {
        _reg: reg,
        host,
        client,
        docs,
    }
}

fn resolve_all(e: &Env, platform: &str) -> Vec<Resolved> {
    let p = PlatformSpec::parse(platform).unwrap();
    e.docs
        .lifecycles
        .iter()
        .map(|l| resolve(&e.client, l, &p).unwrap())
        .collect()
}

fn bps(apis: &[&str]) -> Vec<BuildpackApi> {
    apis.iter()
        .enumerate()
        .map(|(i, a)| BuildpackApi {
            id: format!("example/bp{i}"),
            version: "1.0.0".into(),
            api: a.to_string(),
        })
        .collect()
}

fn needs<'a>(
    lifecycle: Option<&'a str>,
    buildpacks: &'a [BuildpackApi],
    build_image: &'a PlatformSpec,
) -> BuilderNeeds<'a> {
    BuilderNeeds {
        lifecycle,
        buildpacks,
        build_image,
        max_platform: None,
    }
}

#[test]
fn yaml_status_explicit_reference_default_and_os_mismatch() {
    let e = env();
    let names: Vec<&str> = e.docs.lifecycles.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ours",
            "upstream-0.20",
            "upstream-0.21",
            "windows-0.22",
            "ancient"
        ]
    );
    let sa = e.docs.lifecycles[1].service_account_ref.as_ref().unwrap();
    assert_eq!(
        (sa.name.as_str(), sa.namespace.as_str()),
        ("lifecycle-sa", "kpack")
    );
    assert_eq!(e.docs.builders.len(), 2);
    assert_eq!(e.docs.builders[0].kind, "ClusterBuilder");
    assert_eq!(
        e.docs.builders[0].lifecycle.as_deref(),
        Some("upstream-0.20")
    );
    assert_eq!(e.docs.builders[1].lifecycle, None);

    let all = resolve_all(&e, "linux/amd64");
    // kpack's status: the single-platform manifest read, the labels' version and APIs.
    let s = serde_json::to_value(&all[1].status).unwrap();
    let latest = s["image"]["latestImage"].as_str().unwrap();
    assert!(
        latest.starts_with(&format!("{}/buildpacksio/lifecycle@sha256:", e.host)),
        "{latest}"
    );
    let amd64_digest = support::tools::skopeo_inspect_raw(
        &format!("docker://{}/buildpacksio/lifecycle:0.20.0", e.host),
        &["--tls-verify=false"],
    )["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        latest.ends_with(&amd64_digest),
        "{latest} vs {amd64_digest}"
    );
    assert_eq!(
        s["image"]["image"],
        format!("{}/buildpacksio/lifecycle:0.20.0", e.host)
    );
    assert_eq!(s["version"], "0.20.0");
    assert_eq!(
        s["api"],
        serde_json::json!({"buildpack": "0.7", "platform": "0.7"})
    );
    assert_eq!(
        s["apis"]["platform"],
        serde_json::json!({"deprecated": [], "supported": P_0_20})
    );
    assert_eq!(
        s["apis"]["buildpack"]["supported"],
        serde_json::json!(B_0_20)
    );
    let ours = serde_json::to_value(&all[0].status).unwrap();
    assert_eq!(ours["version"], "0.1.0");
    assert_eq!(all[3].platform.to_string(), "windows/amd64");

    let linux = PlatformSpec::parse("linux/amd64").unwrap();
    let modern = bps(&["0.10", "0.7"]);
    // The builder's explicit reference.
    let builder_ref = e.docs.builders[0].lifecycle.as_deref();
    let p = pick(&all, &needs(builder_ref, &modern, &linux)).unwrap();
    assert_eq!(p.lifecycle.name, "upstream-0.20");
    assert_eq!(p.negotiated.platform, ApiVersion::new(0, 14));
    // No reference: the highest semver that fits. 0.22.0 is for windows, so 0.21.0.
    let p = pick(&all, &needs(None, &modern, &linux)).unwrap();
    assert_eq!(
        (
            p.lifecycle.name.as_str(),
            p.lifecycle.status.version.as_str()
        ),
        ("upstream-0.21", "0.21.0")
    );
    assert_eq!(p.negotiated.platform, ApiVersion::new(0, 14));
    // With a maximum platform API (kpack's MAXIMUM_PLATFORM_API_VERSION).
    let mut n = needs(None, &modern, &linux);
    n.max_platform = Some(ApiVersion::new(0, 9));
    assert_eq!(
        pick(&all, &n).unwrap().negotiated.platform,
        ApiVersion::new(0, 9)
    );
    // A buildpack on Buildpack API 0.12 rules out 0.20.0 when named, not by default.
    let newest = bps(&["0.12"]);
    let err = pick(&all, &needs(Some("upstream-0.20"), &newest, &linux)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusterlifecycle upstream-0.20: lifecycle does not support the buildpack api of example/bp0@1.0.0 (api 0.12); lifecycle supports buildpack apis 0.7, 0.8, 0.9, 0.10, 0.11"
    );
    assert_eq!(
        pick(&all, &needs(None, &newest, &linux))
            .unwrap()
            .lifecycle
            .name,
        "upstream-0.21"
    );

    // OS mismatch with the stack's build image, named explicitly.
    let err = pick(&all, &needs(Some("windows-0.22"), &modern, &linux)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("clusterlifecycle windows-0.22: validating lifecycle image {}/buildpacksio/lifecycle:0.22.0-windows: expected platform to be linux/amd64 but got windows/amd64", e.host)
    );
    // An old lifecycle shares no platform API with us.
    let err = pick(&all, &needs(Some("ancient"), &modern, &linux)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusterlifecycle ancient: no common platform api version: lifecycle supports 0.3, 0.4; buildpod supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14"
    );
    let err = pick(&all, &needs(Some("missing"), &modern, &linux)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusterlifecycle missing: not found (have: ours, upstream-0.20, upstream-0.21, windows-0.22, ancient)"
    );
    // Nothing fits: every candidate and its reason, highest version first.
    let err = pick(&all, &needs(None, &bps(&["0.6"]), &linux))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("clusterlifecycle default: no compatible clusterlifecycle: windows-0.22 (0.22.0): validating lifecycle image "), "{err}");
    let order: Vec<usize> = [
        "windows-0.22 (",
        "upstream-0.21 (",
        "upstream-0.20 (",
        "ancient (",
        "ours (",
    ]
    .iter()
    .map(|n| err.find(n).unwrap_or_else(|| panic!("{n} in {err}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{err}");
}

#[test]
fn arm64_build_images_get_the_arm64_manifest_or_a_mismatch() {
    let e = env();
    let arm = PlatformSpec::parse("linux/arm64").unwrap();
    let all = resolve_all(&e, "linux/arm64");
    assert_eq!(all[1].platform.to_string(), "linux/arm64/v8");
    // Ours is a single linux/amd64 image: read as is, then refused for arm64.
    assert_eq!(all[0].platform.to_string(), "linux/amd64");
    let modern = bps(&["0.10"]);
    let err = pick(&all, &needs(Some("ours"), &modern, &arm)).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("expected platform to be linux/arm64 but got linux/amd64"),
        "{err}"
    );
    assert_eq!(
        pick(&all, &needs(None, &modern, &arm))
            .unwrap()
            .lifecycle
            .name,
        "upstream-0.21"
    );
}

#[test]
fn invalid_resources_are_refused_with_kpack_messages() {
    let cases = [
        (
            "apiVersion: kpack.io/v1alpha2\nkind: ClusterLifecycle\nmetadata: {name: a}\nspec: {}\n",
            "clusterlifecycle a: missing field(s): spec.image",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: ClusterLifecycle\nmetadata: {name: a}\nspec: {image: x, serviceAccountRef: {name: sa}}\n",
            "clusterlifecycle a: missing field(s): spec.serviceAccountRef.namespace",
        ),
        (
            "apiVersion: kpack.io/v1alpha1\nkind: ClusterLifecycle\nmetadata: {name: a}\nspec: {image: x}\n",
            "clusterlifecycle a: not supported: apiVersion \"kpack.io/v1alpha1\" (want kpack.io/v1alpha2)",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: ClusterLifecycle\nmetadata: {name: a}\nspec: {image: x}\n---\napiVersion: kpack.io/v1alpha2\nkind: ClusterLifecycle\nmetadata: {name: a}\nspec: {image: y}\n",
            "clusterlifecycle a: defined more than once",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: Builder\nmetadata: {name: b}\nspec: {lifecycle: {kind: ConfigMap, name: lc}}\n",
            "clusterlifecycle lc: not supported: Builder b references a ConfigMap, want a ClusterLifecycle",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(resource::parse(yaml).unwrap_err().to_string(), want);
    }
    let err = resource::parse("kind: [unclosed\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid clusterlifecycle yaml: document 1: "),
        "{err}"
    );
}

#[test]
fn an_image_without_the_lifecycle_labels_is_not_ready() {
    let reg = Registry::plain();
    let client = Client::new(ClientOptions::default()).unwrap();
    let repo = Repo::new(client.clone(), &reg.host(), "not/lifecycle");
    let l = u::base_layer(&repo);
    u::image(
        &repo,
        "linux/amd64",
        &[(
            "io.buildpacks.builder.metadata",
            r#"{"lifecycle":{"version":"1.0.0"}}"#.into(),
        )],
        &[l],
        "v1",
    );
    let cl = ClusterLifecycle {
        name: "bad".into(),
        image: format!("{}/not/lifecycle:v1", reg.host()),
        service_account_ref: None,
    };
    let err = resolve(&client, &cl, &PlatformSpec::parse("linux/amd64").unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("clusterlifecycle bad: image {}/not/lifecycle:v1 has no label io.buildpacks.lifecycle.apis", reg.host())
    );
}
