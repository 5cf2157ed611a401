//! Fixtures and the golden-file check shared by the pod tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

use super::build::Build;
use super::context::{Binding, BuildContext, BuildPodImages, BuilderConfig, Mode};

pub const BUILDER: &str = "registry.example.com/builders/my-builder@sha256:4444444444444444444444444444444444444444444444444444444444444444";

pub fn images() -> BuildPodImages {
    BuildPodImages {
        build_init: "registry.example.com/kpack/build-init@sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
        completion: "registry.example.com/kpack/completion@sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
        rebase: "registry.example.com/kpack/rebase@sha256:6666666666666666666666666666666666666666666666666666666666666666".into(),
        build_waiter: "registry.example.com/kpack/build-waiter@sha256:7777777777777777777777777777777777777777777777777777777777777777".into(),
    }
}

pub fn builder() -> BuilderConfig {
    BuilderConfig {
        stack_id: "io.buildpacks.stacks.jammy".into(),
        run_image: "registry.example.com/builders/run:latest".into(),
        uid: 1001,
        gid: 1000,
        platform_apis: vec!["0.7".into(), "0.8".into(), "0.9".into()],
        resolved_image: BUILDER.into(),
        arch: "amd64".into(),
    }
}

pub fn context(mode: Mode) -> BuildContext {
    let mut c = BuildContext::new(builder(), mode);
    c.now = 1_735_732_800;
    c
}

/// The Build of §1.15 (made by an Image; git source, PVC cache, a previous build).
pub fn git_build() -> Build {
    Build::from_yaml(
        r#"
apiVersion: kpack.io/v1alpha2
kind: Build
metadata:
  name: app-build-3
  namespace: apps
  uid: 6f1c2d3e-0000-4000-8000-000000000003
  creationTimestamp: "2025-01-01T12:00:00Z"
  labels:
    image.kpack.io/buildNumber: "3"
    image.kpack.io/image: app
    image.kpack.io/imageGeneration: "1"
  annotations:
    image.kpack.io/reason: COMMIT
    image.kpack.io/buildChanges: '[{"reason":"COMMIT","old":"1111111111111111111111111111111111111111","new":"2222222222222222222222222222222222222222"}]'
    image.kpack.io/builderName: my-builder
    image.kpack.io/builderKind: ClusterBuilder
spec:
  tags: [registry.example.com/apps/app, "registry.example.com/apps/app:b3.20250101.120000"]
  serviceAccountName: builder-sa
  builder:
    image: registry.example.com/builders/my-builder@sha256:4444444444444444444444444444444444444444444444444444444444444444
  runImage:
    image: registry.example.com/builders/run@sha256:3333333333333333333333333333333333333333333333333333333333333333
  source:
    git: {url: "https://github.com/example/app.git", revision: "2222222222222222222222222222222222222222"}
  env: [{name: BP_JVM_VERSION, value: "17"}]
  cache: {volume: {persistentVolumeClaimName: app-cache}}
  lastBuild:
    image: registry.example.com/apps/app@sha256:5555555555555555555555555555555555555555555555555555555555555555
    stackId: io.buildpacks.stacks.jammy
"#,
    )
    .unwrap()
}

/// The Build of kpack's `build_pod_test.go`: three tags, a git source, a PVC cache, CNB
/// bindings, env, resources, a previous build on the builder's stack.
pub fn kpack_test_build() -> Build {
    Build::from_yaml(
        r#"
metadata:
  name: build-name
  namespace: some-namespace
  uid: 11111111-2222-3333-4444-555555555555
  creationTimestamp: "1944-06-06T13:30:00Z"
  labels: {some/label: to-pass-through, image.kpack.io/buildNumber: "12"}
  annotations: {some/annotation: to-pass-through}
spec:
  tags: [someimage/name, "someimage/name:tag2", "someimage/name:tag3"]
  builder:
    image: "builderregistry.io/builder:latest@sha256:42lkajdsf9q87234"
    imagePullSecrets: [{name: builder-pull-secret}]
  serviceAccountName: someserviceaccount
  source:
    git: {url: giturl.com/git.git, revision: gitrev1234}
  cache: {volume: {persistentVolumeClaimName: some-cache-name}}
  env: [{name: keyA, value: valueA}, {name: keyB, value: valueB}]
  resources:
    limits: {cpu: "2", memory: 256M}
    requests: {cpu: "1", memory: 128M}
  lastBuild: {image: "someimage/name@sha256:previous", stackId: com.builder.stack.io}
"#,
    )
    .unwrap()
}

/// kpack's test secrets: index 3 (plain basic-auth) and 7 (bootstrap token) get no volume.
pub fn kpack_test_secrets() -> Vec<Secret> {
    let basic = "kubernetes.io/basic-auth";
    vec![
        secret(
            "git-secret-1",
            basic,
            &[("kpack.io/git", "https://github.com")],
        ),
        secret(
            "git-secret-2",
            "kubernetes.io/ssh-auth",
            &[("kpack.io/git", "https://bitbucket.com")],
        ),
        secret("docker-secret-1", basic, &[("kpack.io/docker", "acr.io")]),
        secret("random-secret-1", basic, &[]),
        secret("docker-secret-2", "kubernetes.io/dockerconfigjson", &[]),
        secret("docker-secret-3", "kubernetes.io/dockercfg", &[]),
        secret("secret.with.dots", "kubernetes.io/dockerconfigjson", &[]),
        secret(
            "secret-to-ignore",
            "bootstrap.kubernetes.io/token",
            &[("kpack.io/docker", "ignoreme.com")],
        ),
    ]
}

pub fn kpack_test_context() -> BuildContext {
    let mut c = BuildContext::new(
        BuilderConfig {
            stack_id: "com.builder.stack.io".into(),
            run_image: "builderregistry.io/run".into(),
            uid: 2000,
            gid: 3000,
            platform_apis: vec!["0.7".into(), "0.8".into(), "0.9".into()],
            resolved_image: "builderregistry.io/builder:latest@sha256:42lkajdsf9q87234".into(),
            arch: String::new(),
        },
        Mode::Kpack,
    );
    c.secrets = kpack_test_secrets();
    c.image_pull_secrets = vec![
        LocalObjectReference {
            name: "image-pull-1".into(),
        },
        LocalObjectReference {
            name: "image-pull-2".into(),
        },
    ];
    c.bindings = vec![
        Binding::Cnb {
            name: "database".into(),
            metadata: "database-configmap".into(),
            secret: None,
        },
        Binding::Cnb {
            name: "apm".into(),
            metadata: "apm-configmap".into(),
            secret: Some("apm-secret".into()),
        },
    ];
    c.now = 1_700_000_000;
    c
}

pub fn kpack_images() -> BuildPodImages {
    BuildPodImages {
        build_init: "build/init:image".into(),
        completion: "completion/image:image".into(),
        rebase: "rebase/image".into(),
        build_waiter: "build/waiter:image".into(),
    }
}

pub fn secret(name: &str, ty: &str, annotations: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .filter(|a: &BTreeMap<String, String>| !a.is_empty()),
            ..Default::default()
        },
        type_: Some(ty.into()),
        ..Default::default()
    }
}

pub fn with_data(mut s: Secret, key: &str, value: &str) -> Secret {
    s.data
        .get_or_insert_with(Default::default)
        .insert(key.into(), ByteString(value.as_bytes().to_vec()));
    s
}

/// The two SA secrets of §1.15.
pub fn example_secrets() -> Vec<Secret> {
    vec![
        secret(
            "git-creds",
            "kubernetes.io/basic-auth",
            &[("kpack.io/git", "https://github.com")],
        ),
        secret("registry-creds", "kubernetes.io/dockerconfigjson", &[]),
    ]
}

pub fn spec(pod: &Pod) -> &k8s_openapi::api::core::v1::PodSpec {
    pod.spec.as_ref().unwrap()
}

pub fn init(pod: &Pod) -> &[Container] {
    spec(pod).init_containers.as_deref().unwrap()
}

pub fn container<'a>(pod: &'a Pod, name: &str) -> &'a Container {
    init(pod)
        .iter()
        .chain(&spec(pod).containers)
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

pub fn names(pod: &Pod) -> Vec<&str> {
    init(pod).iter().map(|c| c.name.as_str()).collect()
}

pub fn args<'a>(pod: &'a Pod, name: &str) -> Vec<&'a str> {
    container(pod, name)
        .args
        .iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

/// `(name, value)` of a container's env.
pub fn envs<'a>(pod: &'a Pod, name: &str) -> Vec<(&'a str, &'a str)> {
    container(pod, name)
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or("")))
        .collect()
}

/// `volume:path[:ro][:subPath]` of a container's mounts.
pub fn mounts(pod: &Pod, name: &str) -> Vec<String> {
    container(pod, name)
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let mut s = format!("{}:{}", m.name, m.mount_path);
            if m.read_only == Some(true) {
                s.push_str(":ro");
            }
            if let Some(p) = &m.sub_path {
                s.push_str(&format!(":{p}"));
            }
            s
        })
        .collect()
}

pub fn volume_names(pod: &Pod) -> Vec<&str> {
    spec(pod)
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect()
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/pod/{name}.yaml"))
}

/// Compare `value` (as JSON) with `tests/fixtures/pod/<name>.yaml`. With
/// `BUILDPOD_UPDATE_GOLDEN=1` the file is rewritten (keeping its leading comment lines).
pub fn golden<T: serde::Serialize>(name: &str, value: &T) {
    let path = golden_path(name);
    let got = serde_json::to_value(value).unwrap();
    if std::env::var_os("BUILDPOD_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let header: String = old
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let body = serde_norway::to_string(&got).unwrap();
        crate::fsutil::write_atomic(&path, format!("{header}{body}").as_bytes()).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (BUILDPOD_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    let want: serde_json::Value = serde_norway::from_str(&text).unwrap();
    if want != got {
        let show = |v: &serde_json::Value| serde_norway::to_string(v).unwrap();
        let (w, g) = (show(&want), show(&got));
        let diff: Vec<String> = diff_lines(&w, &g);
        panic!(
            "{} differs (BUILDPOD_UPDATE_GOLDEN=1 rewrites it):\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}

/// A minimal line diff: lines only in `want` (-) or only in `got` (+), in order.
fn diff_lines(want: &str, got: &str) -> Vec<String> {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = Vec::new();
    for l in &w {
        if !g.contains(l) {
            out.push(format!("- {l}"));
        }
    }
    for l in &g {
        if !w.contains(l) {
            out.push(format!("+ {l}"));
        }
    }
    out
}
