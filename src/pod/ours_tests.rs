//! buildpod's own pod (`Mode::Ours`): negotiated Platform API, ClusterLifecycle binaries at
//! /cnb/lifecycle, resources and log tails on every step, PodSecurity `restricted`.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, HostPathVolumeSource, Pod, PodSecurityContext, PodSpec,
    SeccompProfile, SecurityContext, Volume,
};

use super::test_support::*;
use super::*;
use crate::clusterlifecycle::{ApiSet, Apis};
use crate::lifecycle::api::ApiVersion;

const LIFECYCLE_IMAGE: &str = "registry.example.com/lifecycle@sha256:8888888888888888888888888888888888888888888888888888888888888888";

fn lifecycle_apis(platform: &[&str]) -> Apis {
    Apis {
        buildpack: ApiSet::supporting(&[ApiVersion::new(0, 10)]),
        platform: ApiSet {
            deprecated: Vec::new(),
            supported: platform.iter().map(|s| s.to_string()).collect(),
        },
    }
}

fn ours_context() -> BuildContext {
    let mut ctx = context(Mode::Ours);
    ctx.secrets = example_secrets();
    ctx.lifecycle = Some(LifecycleMount {
        name: "buildpod-lifecycle".into(),
        image: LIFECYCLE_IMAGE.into(),
        apis: lifecycle_apis(&["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14"]),
    });
    ctx
}

fn ours_pod(ctx: &BuildContext) -> Pod {
    build_pod(&git_build(), &images(), ctx).unwrap()
}

fn platform_api(pod: &Pod) -> String {
    envs(pod, "analyze")
        .into_iter()
        .find(|(k, _)| *k == "CNB_PLATFORM_API")
        .unwrap()
        .1
        .to_string()
}

#[test]
fn cluster_lifecycle_mounted_at_cnb_lifecycle() {
    let pod = ours_pod(&ours_context());
    golden("ours-lifecycle", &pod);
    assert_eq!(
        names(&pod),
        [
            "prepare",
            "lifecycle",
            "analyze",
            "detect",
            "restore",
            "build",
            "export"
        ]
    );
    let l = container(&pod, "lifecycle");
    assert_eq!(l.image.as_deref(), Some(images().build_init.as_str()));
    assert_eq!(
        l.command.as_deref(),
        Some(&["/usr/local/bin/buildpod".to_string()][..])
    );
    assert_eq!(
        args(&pod, "lifecycle"),
        [
            "lifecycle",
            "select",
            "--image",
            LIFECYCLE_IMAGE,
            "--os",
            "linux",
            "--arch",
            "amd64",
            "--target",
            "/cnb/lifecycle"
        ]
    );
    // prepare's registry credentials reach it through $HOME.
    assert_eq!(envs(&pod, "lifecycle"), [("HOME", "/builder/home")]);
    assert_eq!(
        mounts(&pod, "lifecycle"),
        ["lifecycle-dir:/cnb/lifecycle", "home-dir:/builder/home"]
    );
    for name in ["analyze", "detect", "restore", "build", "export"] {
        assert_eq!(
            mounts(&pod, name).last().map(String::as_str),
            Some("lifecycle-dir:/cnb/lifecycle:ro"),
            "{name}"
        );
        assert!(container(&pod, name).command.as_ref().unwrap()[0].starts_with("/cnb/lifecycle/"));
    }
    assert_eq!(volume_names(&pod).last(), Some(&"lifecycle-dir"));
    assert_eq!(platform_api(&pod), "0.14");
    assert_eq!(check_restricted(&pod), vec![]);
}

#[test]
fn platform_api_negotiated_with_the_lifecycle_and_capped() {
    let mut ctx = ours_context();
    ctx.max_platform_api = Some(ApiVersion::new(0, 12));
    assert_eq!(platform_api(&ours_pod(&ctx)), "0.12");
    // Without a ClusterLifecycle: the builder's own lifecycle, still up to 0.14.
    let mut ctx = context(Mode::Ours);
    ctx.builder.platform_apis = vec!["0.9".into(), "0.10".into(), "0.13".into()];
    let pod = ours_pod(&ctx);
    assert_eq!(platform_api(&pod), "0.13");
    assert!(!names(&pod).contains(&"lifecycle"));
    assert!(!volume_names(&pod).contains(&"lifecycle-dir"));
    // No common version.
    let mut ctx = ours_context();
    ctx.lifecycle.as_mut().unwrap().apis = lifecycle_apis(&["0.3", "0.4"]);
    assert_eq!(
        build_pod(&git_build(), &images(), &ctx).unwrap_err().to_string(),
        "clusterlifecycle buildpod-lifecycle: no common platform api version: lifecycle supports 0.3, 0.4; buildpod supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14"
    );
    let mut ctx = context(Mode::Ours);
    ctx.builder.platform_apis = vec!["0.15".into()];
    ctx.max_platform_api = Some(ApiVersion::new(0, 13));
    assert_eq!(
        build_pod(&git_build(), &images(), &ctx).unwrap_err().to_string(),
        format!("builder {BUILDER}: no common platform api version: lifecycle supports 0.15; buildpod supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14 up to 0.13")
    );
}

#[test]
fn same_phase_args_as_kpack_at_0_9() {
    let kpack = {
        let mut c = context(Mode::Kpack);
        c.secrets = example_secrets();
        ours_pod(&c)
    };
    let mut ctx = ours_context();
    ctx.max_platform_api = Some(ApiVersion::new(0, 9));
    let ours = ours_pod(&ctx);
    for name in [
        "analyze",
        "detect",
        "restore",
        "build",
        "export",
        "completion",
    ] {
        assert_eq!(args(&kpack, name), args(&ours, name), "{name}");
        assert_eq!(envs(&kpack, name), envs(&ours, name), "{name}");
    }
}

#[test]
fn insecure_registries_need_platform_0_13() {
    let mut ctx = ours_context();
    ctx.insecure_registries = vec!["registry.local:5000".into()];
    let pod = ours_pod(&ctx);
    for name in ["analyze", "restore", "export"] {
        assert!(
            args(&pod, name).contains(&"-insecure-registry=registry.local:5000"),
            "{name}"
        );
    }
    assert!(args(&pod, "lifecycle")
        .windows(2)
        .any(|w| w == ["--insecure-registry", "registry.local:5000"]));
    ctx.max_platform_api = Some(ApiVersion::new(0, 12));
    assert_eq!(
        build_pod(&git_build(), &images(), &ctx)
            .unwrap_err()
            .to_string(),
        "phase arguments: insecure registries needs platform api 0.13 or newer, not 0.12"
    );
}

#[test]
fn resources_and_log_tails_on_every_step() {
    let pod = ours_pod(&ours_context());
    let want = context::default_resources();
    for c in init(&pod).iter().chain(&spec(&pod).containers) {
        assert_eq!(c.resources.as_ref(), Some(&want), "{}", c.name);
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError"),
            "{}",
            c.name
        );
    }
    // The Build's own resources win.
    let mut b = git_build();
    b.spec.resources = kpack_test_build().spec.resources;
    let pod = build_pod(&b, &images(), &ours_context()).unwrap();
    assert_eq!(init(&pod)[0].resources.as_ref(), Some(&b.spec.resources));
}

#[test]
fn no_windows_leftovers() {
    let pod = ours_pod(&ours_context());
    assert!(!volume_names(&pod).contains(&"network-wait-launcher-dir"));
    assert!(!envs(&pod, "prepare")
        .iter()
        .any(|(k, _)| *k == "DNS_PROBE_HOSTNAME"));
}

#[test]
fn sidecar_and_rebase_pods_pass_restricted() {
    let mut ctx = ours_context();
    ctx.injected_sidecar_support = true;
    let pod = ours_pod(&ctx);
    assert_eq!(check_restricted(&pod), vec![]);
    let mut b = git_build();
    b.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("image.kpack.io/reason".into(), "STACK".into());
    let pod = build_pod(&b, &images(), &ours_context()).unwrap();
    assert_eq!(names(&pod), ["rebase"]);
    assert_eq!(check_restricted(&pod), vec![]);
}

fn restricted_violations(spec: PodSpec) -> Vec<String> {
    check_restricted(&Pod {
        spec: Some(spec),
        ..Default::default()
    })
    .iter()
    .map(ToString::to_string)
    .collect()
}

#[test]
fn restricted_check_names_each_violation() {
    let hostile = PodSpec {
        host_network: Some(true),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(0),
            ..Default::default()
        }),
        volumes: Some(vec![Volume {
            name: "root".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/".into(),
                type_: None,
            }),
            ..Default::default()
        }]),
        containers: vec![
            Container {
                name: "bare".into(),
                ..Default::default()
            },
            Container {
                name: "priv".into(),
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    allow_privilege_escalation: Some(true),
                    run_as_non_root: Some(true),
                    capabilities: Some(Capabilities {
                        add: Some(vec!["SYS_ADMIN".into()]),
                        drop: Some(vec!["ALL".into()]),
                    }),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "Unconfined".into(),
                        localhost_profile: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        restricted_violations(hostile),
        [
            "hostNamespaces: pod must not set hostNetwork=true",
            "hostPathVolumes: volume \"root\" uses hostPath",
            "runAsUser: pod must not set runAsUser=0",
            "allowPrivilegeEscalation: container \"bare\" must set securityContext.allowPrivilegeEscalation=false",
            "capabilities: container \"bare\" must set securityContext.capabilities.drop=[\"ALL\"]",
            "runAsNonRoot: pod or container \"bare\" must set securityContext.runAsNonRoot=true",
            "seccompProfile: pod or container \"bare\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            "privileged: container \"priv\" must not set securityContext.privileged=true",
            "allowPrivilegeEscalation: container \"priv\" must set securityContext.allowPrivilegeEscalation=false",
            "capabilities: container \"priv\" must not add capability SYS_ADMIN",
            "seccompProfile: container \"priv\" must not set securityContext.seccompProfile.type=Unconfined",
        ]
    );
}
