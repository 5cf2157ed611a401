//! images/controller: the manifests parse, the Deployment passes PodSecurity `restricted`, its
//! env names what the controller reads and the ConfigMaps it references exist; the RBAC rules
//! cover the controller's API calls; the image definition builds an image with the controller
//! as entry point and a non-root numeric user.
#![cfg(feature = "controller")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use buildpod::controller::Config;
use buildpod::oci::layout::Layout;
use buildpod::oci::manifest::descriptor_digest;
use buildpod::oci::{BlobStore as _, ImageConfig, Manifest};
use buildpod::pod::check_restricted;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/images/controller");

fn docs(file: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(Path::new(DIR).join(file)).unwrap();
    let mut out = Vec::new();
    for de in serde_norway::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(de).unwrap();
        if !v.is_null() {
            out.push(v);
        }
    }
    out
}

fn deployment() -> Deployment {
    serde_json::from_value(docs("deployment.yaml").remove(0)).unwrap()
}

#[test]
fn manifests_parse_and_deployment_is_restricted() {
    for f in [
        "namespace.yaml",
        "crd-build.yaml",
        "rbac.yaml",
        "config.yaml",
        "deployment.yaml",
    ] {
        assert!(!docs(f).is_empty(), "{f}");
        for d in docs(f) {
            assert!(
                d["apiVersion"].is_string() && d["kind"].is_string(),
                "{f}: {d}"
            );
        }
    }
    let d = deployment();
    let template = d.spec.unwrap().template;
    let pod = Pod {
        metadata: template.metadata.unwrap_or_default(),
        spec: template.spec,
        status: None,
    };
    assert_eq!(check_restricted(&pod), vec![]);
}

#[test]
fn deployment_env_is_what_the_controller_reads() {
    let maps: BTreeMap<String, ConfigMap> = docs("config.yaml")
        .into_iter()
        .map(|v| serde_json::from_value::<ConfigMap>(v).unwrap())
        .map(|c| (c.metadata.name.clone().unwrap(), c))
        .collect();
    let d = deployment();
    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
    let mut env = BTreeMap::new();
    for e in c.env.as_ref().unwrap() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                let r = from.config_map_key_ref.as_ref().unwrap();
                let map = maps
                    .get(&r.name)
                    .unwrap_or_else(|| panic!("no ConfigMap {}", r.name));
                map.data.as_ref().unwrap()[&r.key].clone()
            }
            _ => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    assert!(config.images.build_init.contains("build-init"));
    assert!(config.images.completion.contains("completion"));
    assert!(config.images.rebase.contains("rebase"));
    assert_eq!(config.mode, buildpod::pod::Mode::Ours);
}

#[test]
fn rbac_covers_the_controller_calls() {
    let role: ClusterRole = docs("rbac.yaml")
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .map(|d| serde_json::from_value(d).unwrap())
        .unwrap();
    let allowed = |group: &str, resource: &str, verb: &str| {
        role.rules.iter().flatten().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for (g, r, v) in [
        ("kpack.io", "builds", "watch"),
        ("kpack.io", "builds", "list"),
        ("kpack.io", "builds/status", "patch"),
        ("kpack.io", "clusterbuilders", "get"),
        ("kpack.io", "builders", "get"),
        ("kpack.io", "clusterlifecycles", "get"),
        ("", "pods", "create"),
        ("", "pods", "watch"),
        ("", "pods/log", "get"),
        ("", "serviceaccounts", "get"),
        ("", "serviceaccounts", "list"),
        ("", "secrets", "get"),
    ] {
        assert!(allowed(g, r, v), "{v} {g}/{r}");
    }
}

#[test]
fn image_definition_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("controller");
    std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
    let ca = tmp.path().join("ca.crt");
    std::fs::write(&ca, b"").unwrap();
    let layout = tmp.path().join("layout");
    let out = Command::new(env!("CARGO_BIN_EXE_buildpod"))
        .args(["image", "build", &format!("{DIR}/controller.toml")])
        .arg(format!("oci:{}:controller", layout.display()))
        .arg(format!("--set=binary={}", bin.display()))
        .arg(format!("--set=ca_certificates={}", ca.display()))
        .args([
            "--set=revision=abc",
            "--set=version=0.1.0",
            "--log-level=warn",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Layout::open(&layout).unwrap();
    let m = store.get_manifest("controller").unwrap();
    let Manifest::Image(im) = m.parse().unwrap() else {
        panic!("not an image");
    };
    let cfg = ImageConfig::from_json(
        &store
            .read_blob(&descriptor_digest(im.config()).unwrap(), None)
            .unwrap(),
        "config",
    )
    .unwrap();
    assert_eq!(
        cfg.entrypoint(),
        Some(vec!["/usr/local/bin/controller".to_string()])
    );
    assert_eq!(cfg.user().as_deref(), Some("65532:65532"));
    assert_eq!(cfg.os(), "linux");
}
