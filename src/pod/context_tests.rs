//! kpack's `generator_test.go` (§8): the builder image's labels and env, ServiceAccount
//! secrets, service bindings and forbidden secrets.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ObjectReference, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::build::{CnbBinding, Service};
use super::test_support::*;
use super::*;

const METADATA: &str = r#"{"description":"Some description","stack":{"runImage":{"image":"some-registry.io/run-image","mirrors":null}},"lifecycle":{"version":"0.20.12","api":{"buildpack":"0.7","platform":"0.7"},"apis":{"buildpack":{"deprecated":[],"supported":["0.7","0.8"]},"platform":{"deprecated":["0.6"],"supported":["0.7","0.8","0.9"]}}},"createdBy":{"name":"kpack Builder","version":""},"buildpacks":[]}"#;

fn labels() -> HashMap<String, String> {
    HashMap::from([
        (
            "io.buildpacks.stack.id".to_string(),
            "some.stack.id".to_string(),
        ),
        (
            "io.buildpacks.builder.metadata".to_string(),
            METADATA.to_string(),
        ),
    ])
}

fn env() -> Vec<String> {
    vec![
        "PATH=/usr/bin".into(),
        "CNB_USER_ID=1234".into(),
        "CNB_GROUP_ID=5678".into(),
    ]
}

#[test]
fn builder_config_from_image() {
    let c = builder_config(
        &labels(),
        &env(),
        "linux",
        "arm64",
        "reg.io/builder@sha256:b",
    )
    .unwrap();
    assert_eq!(
        c,
        BuilderConfig {
            stack_id: "some.stack.id".into(),
            run_image: "some-registry.io/run-image".into(),
            uid: 1234,
            gid: 5678,
            platform_apis: vec!["0.6".into(), "0.7".into(), "0.8".into(), "0.9".into()],
            resolved_image: "reg.io/builder@sha256:b".into(),
            arch: "arm64".into(),
        }
    );
}

#[test]
fn builder_config_errors() {
    let err = |labels: &HashMap<String, String>, env: &[String], os: &str| {
        builder_config(labels, env, os, "amd64", "x")
            .unwrap_err()
            .to_string()
    };
    let mut l = labels();
    l.remove("io.buildpacks.stack.id");
    assert_eq!(
        err(&l, &env(), "linux"),
        "builder image stack ID label not present"
    );
    let mut l = labels();
    l.remove("io.buildpacks.builder.metadata");
    assert_eq!(
        err(&l, &env(), "linux"),
        "unable to get builder metadata: could not find label io.buildpacks.builder.metadata"
    );
    let no_uid: Vec<String> = env()
        .into_iter()
        .filter(|e| !e.starts_with("CNB_USER_ID"))
        .collect();
    assert_eq!(
        err(&labels(), &no_uid, "linux"),
        "ENV CNB_USER_ID not found"
    );
    let no_gid: Vec<String> = env()
        .into_iter()
        .filter(|e| !e.starts_with("CNB_GROUP_ID"))
        .collect();
    assert_eq!(
        err(&labels(), &no_gid, "linux"),
        "ENV CNB_GROUP_ID not found"
    );
    let bad = vec!["CNB_USER_ID=cnb".to_string(), "CNB_GROUP_ID=1".to_string()];
    assert_eq!(
        err(&labels(), &bad, "linux"),
        r#"ENV CNB_USER_ID: strconv.ParseInt: parsing "cnb": invalid syntax"#
    );
    assert_eq!(
        err(&labels(), &env(), "windows"),
        "windows builds are not supported"
    );
}

fn sa(secrets: &[&str], pull: &[&str]) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some("some-sa".into()),
            ..Default::default()
        },
        secrets: Some(
            secrets
                .iter()
                .map(|n| ObjectReference {
                    name: Some(n.to_string()),
                    ..Default::default()
                })
                .collect(),
        ),
        image_pull_secrets: Some(
            pull.iter()
                .map(|n| LocalObjectReference {
                    name: n.to_string(),
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn fetch(name: &str) -> Result<Secret, String> {
    match name {
        "missing" => Err(format!("secrets \"{name}\" not found")),
        _ => Ok(secret(name, "kubernetes.io/dockerconfigjson", &[])),
    }
}

#[test]
fn secrets_from_the_service_account() {
    let (secrets, pull) = build_secrets(&sa(&["s1", "s2", "s1"], &["s2", "p1"]), fetch).unwrap();
    let names: Vec<_> = secrets
        .iter()
        .map(|s| s.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    assert_eq!(pull, [LocalObjectReference { name: "p1".into() }]);
    assert_eq!(
        build_secrets(&sa(&["s1", ""], &[]), fetch)
            .unwrap_err()
            .to_string(),
        "ServiceAccount has invalid Secret reference"
    );
    assert_eq!(
        build_secrets(&sa(&["s1"], &[""]), fetch)
            .unwrap_err()
            .to_string(),
        "ServiceAccount has invalid ImagePullSecret reference"
    );
    assert_eq!(
        build_secrets(&sa(&["missing"], &[]), fetch)
            .unwrap_err()
            .to_string(),
        "secrets \"missing\" not found"
    );
}

fn no_provisioned(_: &Service) -> Result<Option<String>, String> {
    Ok(None)
}

#[test]
fn bindings_and_forbidden_secrets() {
    let mut b = git_build();
    b.spec.services = vec![
        Service {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: "database".into(),
        },
        Service {
            api_version: "example.com/v1".into(),
            kind: "Provisioned".into(),
            name: "apm".into(),
        },
    ];
    b.spec.cnb_bindings = vec![CnbBinding {
        name: "ignored".into(),
        metadata_ref: Some(LocalObjectReference { name: "m".into() }),
        secret_ref: None,
    }];
    let provisioned = |s: &Service| -> Result<Option<String>, String> {
        Ok((s.name == "apm").then(|| "apm-binding-secret".to_string()))
    };
    let got = build_bindings(&b, &[sa(&["sa-secret"], &[])], provisioned).unwrap();
    assert_eq!(
        got,
        [
            Binding::Service {
                name: "database".into(),
                secret: Some("database".into())
            },
            Binding::Service {
                name: "apm".into(),
                secret: Some("apm-binding-secret".into())
            },
        ]
    );
    assert_eq!(
        build_bindings(&b, &[sa(&["database"], &[])], provisioned)
            .unwrap_err()
            .to_string(),
        r#"build rejected: service "database" uses forbidden secret "database""#
    );
    // cnbBindings count only without services.
    b.spec.services.clear();
    b.spec.cnb_bindings = vec![CnbBinding {
        name: "apm".into(),
        metadata_ref: Some(LocalObjectReference {
            name: "apm-cm".into(),
        }),
        secret_ref: Some(LocalObjectReference {
            name: "apm-secret".into(),
        }),
    }];
    assert_eq!(
        build_bindings(&b, &[], no_provisioned).unwrap(),
        [Binding::Cnb {
            name: "apm".into(),
            metadata: "apm-cm".into(),
            secret: Some("apm-secret".into())
        }]
    );
    assert_eq!(
        build_bindings(
            &b,
            &[sa(&[], &[]), sa(&["apm-secret"], &[])],
            no_provisioned
        )
        .unwrap_err()
        .to_string(),
        r#"build rejected: binding "apm" uses forbidden secret "apm-secret""#
    );
}
