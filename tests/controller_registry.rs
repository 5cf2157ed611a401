//! The controller's builder reader against a real `docker-registry` with authentication: the
//! credentials come from the Build's ServiceAccount secrets (`keychain_from_secrets`), the
//! labels and env become the pod's builder config, the image is pinned by digest; without
//! credentials, or with a builder lacking `CNB_USER_ID`, the error says so.
#![cfg(feature = "controller")]

mod support;

use std::collections::BTreeMap;

use buildpod::controller::{keychain_from_secrets, BuilderReader, RegistryBuilderReader};
use buildpod::layer::{CompressOptions, Compression, TarOptions};
use buildpod::oci::assemble::{push_layer, write_image};
use buildpod::oci::{media, ImageConfig};
use buildpod::registry::{AuthEntry, Client, ClientOptions, Keychain, Repo};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use support::registry::Registry;

const USER: &str = "builder-user";
const PASS: &str = "builder-pass";
const METADATA: &str = r#"{"stack":{"runImage":{"image":"registry.example.com/run"}},"lifecycle":{"version":"0.20.12","apis":{"platform":{"deprecated":[],"supported":["0.9","0.12"]}}}}"#;

/// Push a builder-like image; its digest.
fn push_builder(reg: &Registry, repo: &str, env: &[(&str, &str)]) -> String {
    let mut kc = Keychain::empty();
    kc.insert(&reg.host(), AuthEntry::basic(USER, PASS));
    let client = Client::new(ClientOptions {
        keychain: kc,
        ..Default::default()
    })
    .unwrap();
    let store = Repo::new(client, &reg.host(), repo);
    let layer = push_layer(
        &store,
        &TarOptions::default(),
        &CompressOptions::new(Compression::Gzip),
        media::OCI_MANIFEST,
        &|t| t.file_entry(b"cnb/stack.toml", 0o644, b"[run-image]\n"),
    )
    .unwrap();
    let mut cfg = ImageConfig::new("linux", "amd64");
    cfg.set_label("io.buildpacks.stack.id", "io.buildpacks.stacks.jammy");
    cfg.set_label("io.buildpacks.builder.metadata", METADATA);
    for (k, v) in env {
        cfg.set_env(k, v);
    }
    write_image(
        &store,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &["latest".into()],
    )
    .unwrap()
    .digest
    .to_string()
}

fn docker_secret(host: &str) -> Secret {
    let json = format!(r#"{{"auths":{{"{host}":{{"username":"{USER}","password":"{PASS}"}}}}}}"#);
    Secret {
        metadata: ObjectMeta {
            name: Some("registry-creds".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(json.into_bytes()),
        )])),
        ..Default::default()
    }
}

#[test]
fn builder_image_read_with_service_account_credentials() {
    let reg = Registry::with_auth(USER, PASS);
    let host = reg.host();
    let digest = push_builder(
        &reg,
        "builders/b",
        &[("CNB_USER_ID", "1001"), ("CNB_GROUP_ID", "1000")],
    );
    let reader = RegistryBuilderReader { insecure: vec![] };
    let keychain = keychain_from_secrets(&[docker_secret(&host)]);
    let image = format!("{host}/builders/b:latest");
    let c = reader.read(&image, &keychain).unwrap();
    assert_eq!(c.stack_id, "io.buildpacks.stacks.jammy");
    assert_eq!(c.run_image, "registry.example.com/run");
    assert_eq!((c.uid, c.gid), (1001, 1000));
    assert_eq!(c.platform_apis, ["0.9", "0.12"]);
    assert_eq!(c.resolved_image, format!("{host}/builders/b@{digest}"));
    assert_eq!(c.arch, "amd64");

    let anonymous = reader.read(&image, &Keychain::empty()).unwrap_err();
    assert!(
        anonymous.starts_with(&format!("builder image {image}: ")),
        "{anonymous}"
    );

    push_builder(&reg, "builders/no-user", &[("CNB_GROUP_ID", "1000")]);
    assert_eq!(
        reader
            .read(&format!("{host}/builders/no-user:latest"), &keychain)
            .unwrap_err(),
        "ENV CNB_USER_ID not found"
    );
}
