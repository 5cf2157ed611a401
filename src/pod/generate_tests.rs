//! kpack's `build_pod_test.go` (§8), ported for the kpack-compatible mode: the fixture is
//! kpack's (three tags, eight SA secrets, CNB bindings, a PVC cache), the expectations are
//! HEAD's (`kpack-build-pod.md` §1).

use k8s_openapi::api::core::v1::{LocalObjectReference, Pod};

use super::build::{BlobSource, BuildSpecImage, CosignAnnotation, RegistrySource};
use super::test_support::*;
use super::*;

fn pod_of(b: &Build, ctx: &BuildContext) -> Pod {
    build_pod(b, &kpack_images(), ctx).unwrap()
}

fn kpack_pod() -> Pod {
    pod_of(&kpack_test_build(), &kpack_test_context())
}

fn err_of(b: &Build, ctx: &BuildContext) -> String {
    build_pod(b, &kpack_images(), ctx).unwrap_err().to_string()
}

const PREV: &str = "someimage/name@sha256:previous";

// The whole §1.15 example pod, hand-written.
#[test]
fn example_git_build_pod() {
    let mut ctx = context(Mode::Kpack);
    ctx.secrets = example_secrets();
    let pod = build_pod(&git_build(), &images(), &ctx).unwrap();
    golden("kpack-git-build", &pod);
    assert_eq!(check_restricted(&pod), vec![]);
}

// The kpack test fixture's full pod (reviewed against §1.5–1.10).
#[test]
fn kpack_fixture_pod() {
    let pod = kpack_pod();
    golden("kpack-full", &pod);
    // kpack#972: the build pod passes PodSecurity `restricted`.
    assert_eq!(check_restricted(&pod), vec![]);
}

#[test]
fn metadata_owner_reference_labels_and_annotations() {
    let pod = kpack_pod();
    let m = &pod.metadata;
    assert_eq!(m.name.as_deref(), Some("build-name-build-pod"));
    assert_eq!(m.namespace.as_deref(), Some("some-namespace"));
    let labels: Vec<_> = m.labels.as_ref().unwrap().iter().collect();
    assert_eq!(
        format!("{labels:?}"),
        r#"[("image.kpack.io/buildNumber", "12"), ("kpack.io/build", "build-name"), ("some/label", "to-pass-through")]"#
    );
    let ann: Vec<_> = m.annotations.as_ref().unwrap().iter().collect();
    assert_eq!(
        format!("{ann:?}"),
        r#"[("sidecar.istio.io/inject", "false"), ("some/annotation", "to-pass-through")]"#
    );
    let owner = &m.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        (
            "kpack.io/v1alpha2",
            "Build",
            "build-name",
            "11111111-2222-3333-4444-555555555555",
            Some(true),
            Some(true)
        )
    );
}

#[test]
fn service_account_node_selector_and_scheduling() {
    let mut b = kpack_test_build();
    b.spec.node_selector = [("disktype".to_string(), "ssd".to_string())].into();
    b.spec.priority_class_name = "high".into();
    b.spec.scheduler_name = "custom".into();
    b.spec.runtime_class_name = Some("gvisor".into());
    b.spec.active_deadline_seconds = Some(600);
    let pod = pod_of(&b, &kpack_test_context());
    let s = spec(&pod);
    assert_eq!(
        s.service_account_name.as_deref(),
        Some("someserviceaccount")
    );
    // No kubernetes.io/os at HEAD (Windows support is gone).
    assert_eq!(
        s.node_selector,
        Some([("disktype".to_string(), "ssd".to_string())].into())
    );
    assert_eq!(s.priority_class_name.as_deref(), Some("high"));
    assert_eq!(s.scheduler_name.as_deref(), Some("custom"));
    assert_eq!(s.runtime_class_name.as_deref(), Some("gvisor"));
    assert_eq!(s.active_deadline_seconds, Some(600));
    assert_eq!(s.restart_policy.as_deref(), Some("Never"));
    // Only the builder's pull secrets are the pod's.
    assert_eq!(
        s.image_pull_secrets,
        Some(vec![LocalObjectReference {
            name: "builder-pull-secret".into()
        }])
    );
    b.spec.service_account_name.clear();
    let pod = pod_of(&b, &kpack_test_context());
    assert_eq!(spec(&pod).service_account_name.as_deref(), Some("default"));
}

#[test]
fn pod_security_context_from_builder_user_and_group() {
    let pod = kpack_pod();
    let sc = spec(&pod).security_context.as_ref().unwrap();
    assert_eq!(
        (
            sc.run_as_user,
            sc.run_as_group,
            sc.fs_group,
            sc.run_as_non_root
        ),
        (Some(2000), Some(3000), Some(3000), Some(true))
    );
    assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
    for c in init(&pod).iter().chain(&spec(&pod).containers) {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(
            (
                sc.run_as_non_root,
                sc.allow_privilege_escalation,
                sc.privileged
            ),
            (Some(true), Some(false), Some(false)),
            "{}",
            c.name
        );
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".into()])
        );
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    }
}

#[test]
fn init_containers_are_the_build_steps_in_order() {
    let pod = kpack_pod();
    assert_eq!(
        names(&pod),
        ["prepare", "analyze", "detect", "restore", "build", "export"]
    );
    let regular: Vec<_> = spec(&pod).containers.iter().map(|c| &c.name).collect();
    assert_eq!(regular, ["completion"]);
    let images: Vec<_> = init(&pod)
        .iter()
        .map(|c| c.image.as_deref().unwrap())
        .collect();
    assert_eq!(images[0], "build/init:image");
    for i in &images[1..] {
        assert_eq!(
            *i,
            "builderregistry.io/builder:latest@sha256:42lkajdsf9q87234"
        );
    }
    let commands: Vec<_> = init(&pod)
        .iter()
        .chain(&spec(&pod).containers)
        .map(|c| c.command.as_ref().unwrap()[0].as_str())
        .collect();
    assert_eq!(
        commands,
        [
            "/cnb/process/build-init",
            "/cnb/lifecycle/analyzer",
            "/cnb/lifecycle/detector",
            "/cnb/lifecycle/restorer",
            "/cnb/lifecycle/builder",
            "/cnb/lifecycle/exporter",
            "/cnb/process/completion"
        ]
    );
}

#[test]
fn workspace_sub_path_on_every_mount_but_prepare() {
    let mut b = kpack_test_build();
    b.spec.source.sub_path = "some/path".into();
    let pod = pod_of(&b, &kpack_test_context());
    assert!(mounts(&pod, "prepare").contains(&"workspace-dir:/workspace".to_string()));
    for name in ["analyze", "detect", "build", "export"] {
        assert!(
            mounts(&pod, name).contains(&"workspace-dir:/workspace:some/path".to_string()),
            "{name}"
        );
    }
    assert_eq!(
        envs(&pod, "prepare")
            .into_iter()
            .find(|(k, _)| *k == "SOURCE_SUB_PATH"),
        Some(("SOURCE_SUB_PATH", "some/path"))
    );
}

#[test]
fn cnb_bindings_on_detect_and_build() {
    let pod = kpack_pod();
    let vols = volume_names(&pod);
    let tail = &vols[vols.len() - 3..];
    assert_eq!(
        tail,
        [
            "binding-metadata-database",
            "binding-metadata-apm",
            "binding-secret-apm"
        ]
    );
    let want = [
        "binding-metadata-database:/platform/bindings/database/metadata:ro",
        "binding-metadata-apm:/platform/bindings/apm/metadata:ro",
        "binding-secret-apm:/platform/bindings/apm/secret:ro",
    ];
    for name in ["detect", "build"] {
        assert!(
            mounts(&pod, name).ends_with(&want.map(String::from)),
            "{name}"
        );
    }
    for name in ["prepare", "analyze", "restore", "export", "completion"] {
        assert!(
            !mounts(&pod, name).iter().any(|m| m.starts_with("binding-")),
            "{name}"
        );
    }
}

#[test]
fn service_bindings() {
    let mut ctx = kpack_test_context();
    ctx.bindings = vec![
        Binding::Service {
            name: "naming".into(),
            secret: Some("naming-secret".into()),
        },
        Binding::Service {
            name: "unbound".into(),
            secret: None,
        },
    ];
    let pod = pod_of(&kpack_test_build(), &ctx);
    assert_eq!(volume_names(&pod).last(), Some(&"binding-naming"));
    assert_eq!(
        spec(&pod)
            .volumes
            .as_ref()
            .unwrap()
            .last()
            .unwrap()
            .secret
            .as_ref()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("naming-secret")
    );
    for name in ["detect", "build"] {
        assert_eq!(
            mounts(&pod, name).last().map(String::as_str),
            Some("binding-naming:/platform/bindings/naming:ro")
        );
    }
    // SERVICE_BINDING_ROOT is on analyze and build, not detect.
    let has_root = |n| envs(&pod, n).contains(&("SERVICE_BINDING_ROOT", "/platform/bindings"));
    assert!(has_root("analyze") && has_root("build") && !has_root("detect"));
}

#[test]
fn prepare_secret_args_volumes_and_pull_secrets() {
    let pod = kpack_pod();
    assert_eq!(
        args(&pod, "prepare"),
        [
            "-basic-git=git-secret-1=https://github.com",
            "-ssh-git=git-secret-2=https://bitbucket.com",
            "-basic-docker=docker-secret-1=acr.io",
            "-dockerconfig=docker-secret-2",
            "-dockercfg=docker-secret-3",
            "-dockerconfig=secret.with.dots",
            "-imagepull=image-pull-1",
            "-imagepull=image-pull-2",
            "-imagepull=builder-pull-secret",
        ]
    );
    assert_eq!(
        mounts(&pod, "prepare"),
        [
            "secret-volume-0:/var/build-secrets/git-secret-1",
            "secret-volume-1:/var/build-secrets/git-secret-2",
            "secret-volume-2:/var/build-secrets/docker-secret-1",
            "secret-volume-4:/var/build-secrets/docker-secret-2",
            "secret-volume-5:/var/build-secrets/docker-secret-3",
            "secret-volume-6:/var/build-secrets/secret.with.dots",
            "pull-secret-volume-0:/var/build-secrets/image-pull-1",
            "pull-secret-volume-1:/var/build-secrets/image-pull-2",
            "pull-secret-volume-2:/var/build-secrets/builder-pull-secret",
            "registry-source-pull-secrets-dir:/registrySourcePullSecrets:ro",
            "platform-dir:/platform",
            "workspace-dir:/workspace",
            "home-dir:/builder/home",
            "layers-dir:/projectMetadata",
        ]
    );
    assert_eq!(
        volume_names(&pod),
        [
            "secret-volume-0",
            "secret-volume-1",
            "secret-volume-2",
            "secret-volume-4",
            "secret-volume-5",
            "secret-volume-6",
            "pull-secret-volume-0",
            "pull-secret-volume-1",
            "pull-secret-volume-2",
            "cache-dir",
            "layers-dir",
            "home-dir",
            "workspace-dir",
            "platform-dir",
            "report-dir",
            "network-wait-launcher-dir",
            "registry-source-pull-secrets-dir",
            "notary-dir",
            "binding-metadata-database",
            "binding-metadata-apm",
            "binding-secret-apm",
        ]
    );
    assert_eq!(
        container(&pod, "prepare").working_dir.as_deref(),
        Some("/workspace")
    );
}

#[test]
fn pull_secrets_are_deduplicated() {
    let mut ctx = kpack_test_context();
    ctx.image_pull_secrets.push(LocalObjectReference {
        name: "builder-pull-secret".into(),
    });
    ctx.image_pull_secrets.push(LocalObjectReference {
        name: "image-pull-1".into(),
    });
    let pod = pod_of(&kpack_test_build(), &ctx);
    let pulls: Vec<_> = args(&pod, "prepare")
        .into_iter()
        .filter(|a| a.starts_with("-imagepull"))
        .collect();
    assert_eq!(
        pulls,
        [
            "-imagepull=image-pull-1",
            "-imagepull=image-pull-2",
            "-imagepull=builder-pull-secret"
        ]
    );
}

#[test]
fn prepare_env_for_git_source() {
    let mut b = kpack_test_build();
    b.spec.project_descriptor_path = "path/to/project.toml".into();
    let annotations = b.metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert("image.kpack.io/builderName".into(), "builder-name".into());
    annotations.insert("image.kpack.io/builderKind".into(), "ClusterBuilder".into());
    annotations.insert("image.kpack.io/buildChanges".into(), "some-changes".into());
    let mut ctx = kpack_test_context();
    ctx.ssh_trust_unknown_host = false;
    let pod = pod_of(&b, &ctx);
    assert_eq!(
        envs(&pod, "prepare"),
        [
            ("GIT_URL", "giturl.com/git.git"),
            ("GIT_REVISION", "gitrev1234"),
            ("GIT_INITIALIZE_SUBMODULES", "false"),
            ("PLATFORM_ENV_keyA", "valueA"),
            ("PLATFORM_ENV_keyB", "valueB"),
            ("SOURCE_SUB_PATH", ""),
            ("PROJECT_DESCRIPTOR_PATH", "path/to/project.toml"),
            ("IMAGE_TAG", "someimage/name"),
            ("RUN_IMAGE", "builderregistry.io/run"),
            (
                "BUILDER_IMAGE",
                "builderregistry.io/builder:latest@sha256:42lkajdsf9q87234"
            ),
            ("BUILDER_NAME", "builder-name"),
            ("BUILDER_KIND", "ClusterBuilder"),
            ("DNS_PROBE_HOSTNAME", "index.docker.io"),
            ("BUILD_CHANGES", "some-changes"),
            ("INSECURE_SSH_TRUST_UNKNOWN_HOSTS", "false"),
        ]
    );
    // `spec.env` entries are copied whole, so valueFrom survives.
    let mut b = kpack_test_build();
    b.spec.env[0].value = None;
    b.spec.env[0].value_from = Some(Default::default());
    let pod = pod_of(&b, &kpack_test_context());
    let e = container(&pod, "prepare").env.as_ref().unwrap();
    assert!(e
        .iter()
        .any(|v| v.name == "PLATFORM_ENV_keyA" && v.value_from.is_some()));
}

#[test]
fn prepare_env_for_blob_and_registry_sources() {
    let mut b = kpack_test_build();
    b.spec.source.git = None;
    b.spec.source.blob = Some(BlobSource {
        url: "https://some-blobstore.example.com/some-blob".into(),
        auth: "helper".into(),
        strip_components: 1,
    });
    let pod = pod_of(&b, &kpack_test_context());
    assert_eq!(
        &envs(&pod, "prepare")[..3],
        [
            ("BLOB_URL", "https://some-blobstore.example.com/some-blob"),
            ("BLOB_STRIP_COMPONENTS", "1"),
            ("BLOB_AUTH", "true"),
        ]
    );
    b.spec.source.blob = None;
    b.spec.source.registry = Some(RegistrySource {
        image: "some-registry.io/some-image".into(),
        image_pull_secrets: vec![],
    });
    let pod = pod_of(&b, &kpack_test_context());
    assert_eq!(
        envs(&pod, "prepare")[0],
        ("REGISTRY_IMAGE", "some-registry.io/some-image")
    );
    let vol = |pod: &Pod| {
        spec(pod)
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "registry-source-pull-secrets-dir")
            .cloned()
            .unwrap()
    };
    assert!(vol(&pod).empty_dir.is_some());
    b.spec.source.registry.as_mut().unwrap().image_pull_secrets = vec![
        LocalObjectReference {
            name: "registry-secret".into(),
        },
        LocalObjectReference {
            name: "second-is-ignored".into(),
        },
    ];
    let pod = pod_of(&b, &kpack_test_context());
    assert_eq!(
        vol(&pod).secret.unwrap().secret_name.as_deref(),
        Some("registry-secret")
    );
    b.spec.source.registry = None;
    assert_eq!(
        err_of(&b, &kpack_test_context()),
        "build build-name has no source: set spec.source.git, blob or registry"
    );
}

#[test]
fn blob_secrets_only_with_secret_auth() {
    let mut ctx = kpack_test_context();
    ctx.secrets = vec![secret(
        "blob-secret",
        "Opaque",
        &[("kpack.io/blob", "blobstore.example.com")],
    )];
    let mut b = kpack_test_build();
    b.spec.source.git = None;
    b.spec.source.blob = Some(BlobSource {
        url: "https://blobstore.example.com/b.tgz".into(),
        auth: "secret".into(),
        strip_components: 0,
    });
    let pod = pod_of(&b, &ctx);
    assert_eq!(
        args(&pod, "prepare")[0],
        "-blob=blob-secret=blobstore.example.com"
    );
    assert_eq!(volume_names(&pod)[0], "secret-volume-0");
    b.spec.source.blob.as_mut().unwrap().auth = "helper".into();
    let pod = pod_of(&b, &ctx);
    assert!(!args(&pod, "prepare").iter().any(|a| a.starts_with("-blob")));
    assert_eq!(volume_names(&pod)[0], "pull-secret-volume-0");
}

#[test]
fn lifecycle_args_env_and_mounts() {
    let mut b = kpack_test_build();
    b.spec.default_process = "web".into();
    b.spec.creation_time = "1566172801".into();
    let pod = pod_of(&b, &kpack_test_context());
    assert_eq!(
        args(&pod, "analyze"),
        [
            "-layers=/layers",
            "-analyzed=/layers/analyzed.toml",
            "-run-image=builderregistry.io/run",
            "-tag=someimage/name:tag2",
            "-tag=someimage/name:tag3",
            "-previous-image=someimage/name@sha256:previous",
            "someimage/name",
        ]
    );
    assert_eq!(
        args(&pod, "detect"),
        [
            "-app=/workspace",
            "-group=/layers/group.toml",
            "-plan=/layers/plan.toml"
        ]
    );
    assert_eq!(
        args(&pod, "restore"),
        [
            "-group=/layers/group.toml",
            "-layers=/layers",
            "-cache-dir=/cache",
            "-analyzed=/layers/analyzed.toml"
        ]
    );
    assert_eq!(
        args(&pod, "build"),
        [
            "-layers=/layers",
            "-app=/workspace",
            "-group=/layers/group.toml",
            "-plan=/layers/plan.toml"
        ]
    );
    assert_eq!(
        args(&pod, "export"),
        [
            "-layers=/layers",
            "-app=/workspace",
            "-group=/layers/group.toml",
            "-analyzed=/layers/analyzed.toml",
            "-project-metadata=/layers/project-metadata.toml",
            "-cache-dir=/cache",
            "-process-type=web",
            "-report=/var/report/report.toml",
            "someimage/name",
            "someimage/name:tag2",
            "someimage/name:tag3",
        ]
    );
    assert_eq!(
        envs(&pod, "analyze"),
        [
            ("HOME", "/builder/home"),
            ("CNB_PLATFORM_API", "0.9"),
            ("SERVICE_BINDING_ROOT", "/platform/bindings")
        ]
    );
    assert_eq!(envs(&pod, "detect"), [("CNB_PLATFORM_API", "0.9")]);
    assert_eq!(
        envs(&pod, "restore"),
        [("HOME", "/builder/home"), ("CNB_PLATFORM_API", "0.9")]
    );
    assert_eq!(
        envs(&pod, "build"),
        [
            ("CNB_PLATFORM_API", "0.9"),
            ("SERVICE_BINDING_ROOT", "/platform/bindings")
        ]
    );
    assert_eq!(
        envs(&pod, "export"),
        [
            ("HOME", "/builder/home"),
            ("CNB_PLATFORM_API", "0.9"),
            ("SOURCE_DATE_EPOCH", "1566172801"),
            ("CNB_RUN_IMAGE", "builderregistry.io/run"),
        ]
    );
    assert_eq!(
        mounts(&pod, "analyze"),
        [
            "layers-dir:/layers",
            "workspace-dir:/workspace",
            "home-dir:/builder/home"
        ]
    );
    assert_eq!(
        mounts(&pod, "restore"),
        [
            "layers-dir:/layers",
            "home-dir:/builder/home",
            "cache-dir:/cache"
        ]
    );
    assert_eq!(
        mounts(&pod, "export"),
        [
            "layers-dir:/layers",
            "workspace-dir:/workspace",
            "home-dir:/builder/home",
            "report-dir:/var/report",
            "cache-dir:/cache"
        ]
    );
}

#[test]
fn creation_time_now_and_errors() {
    let mut b = kpack_test_build();
    b.spec.creation_time = "now".into();
    let pod = pod_of(&b, &kpack_test_context());
    assert!(envs(&pod, "export").contains(&("SOURCE_DATE_EPOCH", "1700000000")));
    b.spec.creation_time = "yesterday".into();
    assert_eq!(
        err_of(&b, &kpack_test_context()),
        r#"parsing creation time yesterday: parsing unix timestamp: strconv.ParseInt: parsing "yesterday": invalid syntax"#
    );
    b.spec.creation_time.clear();
    let pod = pod_of(&b, &kpack_test_context());
    assert!(!envs(&pod, "export")
        .iter()
        .any(|(k, _)| *k == "SOURCE_DATE_EPOCH"));
}

#[test]
fn run_image_override() {
    let mut b = kpack_test_build();
    b.spec.run_image = Some(BuildSpecImage {
        image: "override/run@sha256:1234".into(),
    });
    let pod = pod_of(&b, &kpack_test_context());
    assert!(args(&pod, "analyze").contains(&"-run-image=override/run@sha256:1234"));
    assert!(envs(&pod, "prepare").contains(&("RUN_IMAGE", "override/run@sha256:1234")));
    assert!(envs(&pod, "export").contains(&("CNB_RUN_IMAGE", "override/run@sha256:1234")));
}

fn registry_cache(tag: &str, last_cache: Option<&str>) -> Build {
    let mut b = kpack_test_build();
    b.spec.cache = Some(build::BuildCacheConfig {
        volume: None,
        registry: Some(build::RegistryCache { tag: tag.into() }),
    });
    if let Some(c) = last_cache {
        b.spec.last_build.as_mut().unwrap().cache.image = c.into();
    }
    b
}

#[test]
fn cache_variants() {
    let ctx = kpack_test_context();
    let cache_args = |pod: &Pod, name| -> Vec<String> {
        args(pod, name)
            .into_iter()
            .filter(|a| a.starts_with("-cache"))
            .map(String::from)
            .collect()
    };
    let cache_tag = |pod: &Pod| {
        envs(pod, "completion")
            .into_iter()
            .find(|(k, _)| *k == "CACHE_TAG")
            .unwrap()
            .1
            .to_string()
    };
    // Registry, first build: every phase uses the tag.
    let pod = pod_of(&registry_cache("test-cache-image", None), &ctx);
    for name in ["analyze", "restore", "export"] {
        assert_eq!(
            cache_args(&pod, name),
            ["-cache-image=test-cache-image"],
            "{name}"
        );
    }
    assert_eq!(cache_tag(&pod), "test-cache-image");
    assert!(!volume_names(&pod).contains(&"cache-dir"));
    assert!(!mounts(&pod, "restore")
        .iter()
        .any(|m| m.starts_with("cache-dir")));
    // Registry, second build: analyze and restore read the previous cache's digest.
    let pod = pod_of(
        &registry_cache("test-cache-image", Some("test-cache-image@sha256:c")),
        &ctx,
    );
    assert_eq!(
        cache_args(&pod, "analyze"),
        ["-cache-image=test-cache-image@sha256:c"]
    );
    assert_eq!(
        cache_args(&pod, "restore"),
        ["-cache-image=test-cache-image@sha256:c"]
    );
    assert_eq!(
        cache_args(&pod, "export"),
        ["-cache-image=test-cache-image"]
    );
    // Empty tag, empty claim, no cache: nothing.
    let mut empty_claim = kpack_test_build();
    empty_claim.spec.cache = Some(build::BuildCacheConfig {
        volume: Some(build::VolumeCache {
            persistent_volume_claim_name: String::new(),
        }),
        registry: None,
    });
    let mut none = kpack_test_build();
    none.spec.cache = None;
    for b in [registry_cache("", None), empty_claim, none] {
        let pod = pod_of(&b, &ctx);
        for name in ["analyze", "restore", "export"] {
            assert_eq!(cache_args(&pod, name), Vec::<String>::new());
        }
        assert!(!volume_names(&pod).contains(&"cache-dir"));
        assert_eq!(cache_tag(&pod), "");
    }
    // Volume: restore and export only, with the PVC.
    let pod = kpack_pod();
    assert_eq!(cache_args(&pod, "analyze"), Vec::<String>::new());
    assert_eq!(cache_args(&pod, "restore"), ["-cache-dir=/cache"]);
    let v = spec(&pod).volumes.as_ref().unwrap();
    let cache = v.iter().find(|v| v.name == "cache-dir").unwrap();
    assert_eq!(
        cache.persistent_volume_claim.as_ref().unwrap().claim_name,
        "some-cache-name"
    );
}

#[test]
fn platform_api_selection_and_errors() {
    let b = kpack_test_build();
    let mut ctx = kpack_test_context();
    let api = |pod: &Pod| {
        envs(pod, "build")
            .into_iter()
            .find(|(k, _)| *k == "CNB_PLATFORM_API")
            .unwrap()
            .1
            .to_string()
    };
    ctx.builder.platform_apis = vec!["0.7".into(), "0.8".into()];
    assert_eq!(api(&pod_of(&b, &ctx)), "0.8");
    ctx.builder.platform_apis = vec!["0.7".into(), "0.8".into(), "0.9".into(), "0.10".into()];
    assert_eq!(api(&pod_of(&b, &ctx)), "0.9");
    ctx.max_platform_api = Some(crate::lifecycle::api::ApiVersion::new(0, 8));
    assert_eq!(api(&pod_of(&b, &ctx)), "0.8");
    ctx.max_platform_api = None;
    // Only these five steps carry it.
    let pod = pod_of(&b, &ctx);
    for name in ["prepare", "completion"] {
        assert!(!envs(&pod, name)
            .iter()
            .any(|(k, _)| *k == "CNB_PLATFORM_API"));
    }
    ctx.builder.platform_apis = vec!["0.2".into(), "0.999".into()];
    assert_eq!(
        err_of(&b, &ctx),
        "unsupported builder platform API versions: 0.2,0.999"
    );
    ctx.builder.platform_apis = vec!["bad".into()];
    assert_eq!(
        err_of(&b, &ctx),
        "unexpected platform version bad: Invalid Semantic Version"
    );
    // Checked before the rebase decision: a rebase needs one too.
    let mut rebase = kpack_test_build();
    rebase
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("image.kpack.io/reason".into(), "STACK".into());
    ctx.builder.platform_apis = vec!["0.2".into(), "0.999".into()];
    assert_eq!(
        err_of(&rebase, &ctx),
        "unsupported builder platform API versions: 0.2,0.999"
    );
}

fn rebase_build() -> Build {
    let mut b = kpack_test_build();
    let a = b.metadata.annotations.get_or_insert_with(Default::default);
    a.insert("image.kpack.io/reason".into(), "STACK".into());
    a.insert(
        "image.kpack.io/buildChanges".into(),
        "some-stack-change".into(),
    );
    b
}

// §1.11, and the golden of the whole rebase pod.
#[test]
fn rebase_pod() {
    let pod = pod_of(&rebase_build(), &kpack_test_context());
    golden("kpack-rebase", &pod);
    assert_eq!(names(&pod), ["rebase"]);
    assert_eq!(
        args(&pod, "rebase"),
        [
            "--run-image",
            "builderregistry.io/run",
            "--last-built-image",
            PREV,
            "--report",
            "/var/report/report.toml",
            "-basic-docker=docker-secret-1=acr.io",
            "-dockerconfig=docker-secret-2",
            "-dockercfg=docker-secret-3",
            "-dockerconfig=secret.with.dots",
            "-imagepull=image-pull-1",
            "-imagepull=image-pull-2",
            "-imagepull=builder-pull-secret",
            "someimage/name",
            "someimage/name:tag2",
            "someimage/name:tag3",
        ]
    );
    let s = spec(&pod);
    assert_eq!(s.active_deadline_seconds, None);
    assert_eq!(s.image_pull_secrets, None);
    let sc = s.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.run_as_user, sc.fs_group, sc.run_as_non_root),
        (None, None, Some(true))
    );
    assert_eq!(
        envs(&pod, "completion"),
        [
            ("CACHE_TAG", ""),
            ("TERMINATION_MESSAGE_PATH", "/tmp/termination-log")
        ]
    );
    assert_eq!(
        envs(&pod, "rebase"),
        [("BUILD_CHANGES", "some-stack-change")]
    );
    assert_eq!(check_restricted(&pod), vec![]);
}

#[test]
fn rebase_only_for_stack_reason_and_same_stack() {
    let ctx = kpack_test_context();
    let mut b = rebase_build();
    b.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("image.kpack.io/reason".into(), "STACK,CONFIG".into());
    assert_eq!(names(&pod_of(&b, &ctx))[0], "prepare");
    let mut b = rebase_build();
    b.spec.last_build.as_mut().unwrap().stack_id = "other.stack".into();
    assert_eq!(names(&pod_of(&b, &ctx))[0], "prepare");
    let mut b = rebase_build();
    b.spec.last_build = None;
    assert_eq!(names(&pod_of(&b, &ctx))[0], "prepare");
}

fn cosign_context() -> BuildContext {
    let mut ctx = kpack_test_context();
    let opaque = "Opaque";
    ctx.secrets = vec![
        with_data(
            with_data(
                secret("cosign-secret-1", opaque, &[]),
                "cosign.key",
                "fake-key",
            ),
            "cosign.password",
            "fake-password",
        ),
        with_data(
            secret(
                "cosign-secret-no-password-1",
                opaque,
                &[
                    (
                        "kpack.io/cosign.repository",
                        "testRepository.com/fake-project-1",
                    ),
                    ("kpack.io/cosign.docker-media-types", "1"),
                ],
            ),
            "cosign.key",
            "fake-key",
        ),
        with_data(
            secret("invalid-cosign-secret", opaque, &[]),
            "cosign.password",
            "p",
        ),
        with_data(
            secret("invalid-empty-cosign-secret", opaque, &[]),
            "cosign.key",
            "",
        ),
    ];
    ctx
}

#[test]
fn cosign_and_notary_completion_args() {
    let mut b = kpack_test_build();
    b.spec.cosign = Some(build::CosignConfig {
        annotations: vec![CosignAnnotation {
            name: "annotationName".into(),
            value: "annotationValue".into(),
        }],
    });
    b.spec.notary = Some(build::NotaryConfig {
        v1: Some(build::NotaryV1Config {
            url: "some-notary-url".into(),
            secret_ref: build::NotarySecretRef {
                name: "some-notary-secret".into(),
            },
        }),
    });
    let pod = pod_of(&b, &cosign_context());
    assert_eq!(
        args(&pod, "completion"),
        [
            "-notary-v1-url=some-notary-url",
            "-cosign-annotations=buildTimestamp=19440606.133000",
            "-cosign-annotations=buildNumber=12",
            "-cosign-annotations=annotationName=annotationValue",
            "-cosign-repositories=cosign-secret-no-password-1=testRepository.com/fake-project-1",
            "-cosign-docker-media-types=cosign-secret-no-password-1=1",
        ]
    );
    assert_eq!(
        mounts(&pod, "completion"),
        [
            "secret-volume-0:/var/build-secrets/cosign/cosign-secret-1",
            "secret-volume-1:/var/build-secrets/cosign/cosign-secret-no-password-1",
            "home-dir:/builder/home",
            "report-dir:/var/report",
            "notary-dir:/var/notary/v1:ro",
        ]
    );
    let v = spec(&pod).volumes.as_ref().unwrap();
    let notary = v.iter().find(|v| v.name == "notary-dir").unwrap();
    assert_eq!(
        notary.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("some-notary-secret")
    );
    // Cosign secrets are not the other steps' business.
    assert!(!mounts(&pod, "prepare").iter().any(|m| m.contains("cosign")));
    // The rebase pod's completion gets them too.
    let mut r = rebase_build();
    r.spec.cosign = b.spec.cosign.clone();
    let pod = pod_of(&r, &cosign_context());
    assert_eq!(
        mounts(&pod, "completion"),
        [
            "report-dir:/var/report",
            "notary-dir:/var/notary/v1:ro",
            "secret-volume-0:/var/build-secrets/cosign/cosign-secret-1",
            "secret-volume-1:/var/build-secrets/cosign/cosign-secret-no-password-1",
        ]
    );
}

#[test]
fn completion_container() {
    let pod = kpack_pod();
    let c = container(&pod, "completion");
    assert_eq!(c.image.as_deref(), Some("completion/image:image"));
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/tmp/termination-log")
    );
    assert_eq!(
        c.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    assert_eq!(
        envs(&pod, "completion"),
        [
            ("HOME", "/builder/home"),
            ("CACHE_TAG", ""),
            ("TERMINATION_MESSAGE_PATH", "/tmp/termination-log")
        ]
    );
    // completion gets the git flags too (and must accept them).
    assert_eq!(
        &args(&pod, "completion")[..2],
        [
            "-basic-git=git-secret-1=https://github.com",
            "-ssh-git=git-secret-2=https://bitbucket.com"
        ]
    );
    // kpack sets no termination message policy on init containers.
    for c in init(&pod) {
        assert_eq!(c.termination_message_policy, None, "{}", c.name);
    }
}

#[test]
fn resources_on_every_container() {
    let pod = kpack_pod();
    let want = kpack_test_build().spec.resources;
    for c in init(&pod).iter().chain(&spec(&pod).containers) {
        assert_eq!(c.resources.as_ref(), Some(&want), "{}", c.name);
    }
    let mut b = kpack_test_build();
    b.spec.resources = Default::default();
    let pod = pod_of(&b, &kpack_test_context());
    assert!(init(&pod).iter().all(|c| c.resources.is_none()));
}

// §1.12: every step a regular container chained by build-waiter.
#[test]
fn injected_sidecar_mode() {
    let mut ctx = kpack_test_context();
    ctx.injected_sidecar_support = true;
    let pod = pod_of(&kpack_test_build(), &ctx);
    golden("kpack-sidecar", &pod);
    assert_eq!(names(&pod), ["pre-start"]);
    let pre = container(&pod, "pre-start");
    assert_eq!(pre.image.as_deref(), Some("build/waiter:image"));
    assert_eq!(pre.command, None);
    assert_eq!(
        args(&pod, "pre-start"),
        ["-mode=copy", "-to=/buildWait/build-waiter"]
    );
    assert_eq!(pre.security_context, None);
    let regular: Vec<_> = spec(&pod)
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        regular,
        [
            "prepare",
            "analyze",
            "detect",
            "restore",
            "build",
            "export",
            "completion"
        ]
    );
    assert_eq!(
        args(&pod, "detect"),
        [
            "-mode=wait",
            "-done-file=/buildWait/detect",
            "-error-file=/buildWait/error",
            "-execute=/cnb/lifecycle/detector -app=/workspace -group=/layers/group.toml -plan=/layers/plan.toml",
            "-wait-file=/buildWait/analyze",
        ]
    );
    assert_eq!(
        args(&pod, "prepare").last(),
        Some(&"-wait-file=/downward/sidecars-ready")
    );
    assert_eq!(
        &mounts(&pod, "prepare")[mounts(&pod, "prepare").len() - 2..],
        ["downward-api-dir:/downward", "build-wait-dir:/buildWait"]
    );
    assert_eq!(
        mounts(&pod, "detect").last().map(String::as_str),
        Some("build-wait-dir:/buildWait")
    );
    let vols = volume_names(&pod);
    assert_eq!(
        &vols[vols.len() - 2..],
        ["build-wait-dir", "downward-api-dir"]
    );
    assert!(!pod
        .metadata
        .annotations
        .as_ref()
        .unwrap()
        .contains_key("sidecar.istio.io/inject"));
    // kpack's pre-start has no security context: PodSecurity `restricted` refuses the pod.
    let v = check_restricted(&pod);
    assert!(
        v.iter().all(|v| v.detail.contains("\"pre-start\"")),
        "{v:?}"
    );
    assert!(!v.is_empty());
}

#[test]
fn no_tags_is_an_error() {
    let mut b = kpack_test_build();
    b.spec.tags.clear();
    assert_eq!(
        err_of(&b, &kpack_test_context()),
        "build build-name has no tags"
    );
}

#[test]
fn long_build_names_are_shortened() {
    let mut b = kpack_test_build();
    b.metadata.name = Some("a-very-long-build-name-that-goes-on-and-on-and-on-build-123".into());
    let pod = pod_of(&b, &kpack_test_context());
    let name = pod.metadata.name.unwrap();
    assert_eq!(name.len(), 63);
    assert!(name.starts_with("a-very-long-build-nam") && name.ends_with("-build-pod"));
}
