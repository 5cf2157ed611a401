//! The full-build pod (§1.4–1.10): prepare, the five lifecycle phases and completion.

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, ResourceRequirements,
    SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::build::{self, Build};
use super::context::{Binding, BuildContext, BuildPodImages, Mode};
use super::platform::{self, PlatformApi};
use super::secrets::{self, Filter};
use super::{rebase, sidecar, PodError};
use super::{
    ANALYZE, BUILD, BUILDPOD_COMMAND, COMPLETION, COMPLETION_COMMAND, DETECT, EXPORT, LIFECYCLE,
    LIFECYCLE_DIR, PREPARE, PREPARE_COMMAND, RESTORE, TERMINATION_MESSAGE_PATH,
};
use crate::clusterlifecycle::phases::{self, BuildParams, Cache, Phase};
use crate::registry::parse_reference;
use crate::source::registry::fully_qualified_repo;

/// Volume names and mount paths (§1.5).
pub(super) const WORKSPACE: (&str, &str) = ("workspace-dir", "/workspace");
pub(super) const HOME: (&str, &str) = ("home-dir", "/builder/home");
pub(super) const PLATFORM: (&str, &str) = ("platform-dir", "/platform");
pub(super) const CACHE: (&str, &str) = ("cache-dir", "/cache");
pub(super) const LAYERS: (&str, &str) = ("layers-dir", "/layers");
pub(super) const PROJECT_METADATA: (&str, &str) = ("layers-dir", "/projectMetadata");
pub(super) const REPORT: (&str, &str) = ("report-dir", "/var/report");
pub(super) const NOTARY: (&str, &str) = ("notary-dir", "/var/notary/v1");
pub(super) const REGISTRY_PULL: (&str, &str) = (
    "registry-source-pull-secrets-dir",
    "/registrySourcePullSecrets",
);
pub(super) const LIFECYCLE_VOLUME: &str = "lifecycle-dir";
const NETWORK_WAIT: &str = "network-wait-launcher-dir";
const BINDINGS_ROOT: &str = "/platform/bindings";

/// Generate the pod for `b`: the rebase pod when kpack would rebase, else the full build.
pub fn build_pod(b: &Build, images: &BuildPodImages, ctx: &BuildContext) -> Result<Pod, PodError> {
    if b.spec.tags.is_empty() {
        return Err(PodError::NoTags(b.name().to_string()));
    }
    // Before the rebase check, as kpack: a rebase also needs a supported Platform API.
    let api = platform::select(ctx)?;
    let mut pod = if rebasable(b, &ctx.builder.stack_id) {
        rebase::pod(b, images, ctx)
    } else {
        full(b, images, ctx, &api)?
    };
    if ctx.injected_sidecar_support {
        sidecar::standard_containers(&mut pod, images, ctx.mode);
    }
    Ok(pod)
}

/// kpack's `rebasable`: the last build exists, the reason is exactly `STACK`, and the stack
/// is the builder's.
pub fn rebasable(b: &Build, stack_id: &str) -> bool {
    b.spec
        .last_build
        .as_ref()
        .is_some_and(|l| l.stack_id == stack_id)
        && b.annotation(build::ANNOTATION_REASON) == build::REASON_STACK
}

/// `spec.runImage.image`, else the builder's run image.
pub(super) fn run_image<'a>(b: &'a Build, ctx: &'a BuildContext) -> &'a str {
    match b.spec.run_image.as_ref().map(|r| r.image.as_str()) {
        Some(i) if !i.is_empty() => i,
        _ => &ctx.builder.run_image,
    }
}

fn full(
    b: &Build,
    images: &BuildPodImages,
    ctx: &BuildContext,
    api: &PlatformApi,
) -> Result<Pod, PodError> {
    let ours = ctx.mode == Mode::Ours;
    let spec = &b.spec;
    let run_image = run_image(b, ctx);
    let blob_secrets = spec
        .source
        .blob
        .as_ref()
        .is_some_and(|x| x.auth == "secret");
    let secret = secrets::secrets(&ctx.secrets, Filter::Build { blob_secrets });
    let cosign = secrets::cosign(&ctx.secrets);
    let pulls = secrets::image_pull(&ctx.image_pull_secrets, &spec.builder.image_pull_secrets);
    let claim = spec
        .cache
        .as_ref()
        .and_then(|c| c.volume.as_ref())
        .map(|v| v.persistent_volume_claim_name.as_str())
        .filter(|c| !c.is_empty());
    let registry_cache = registry_cache(b);
    let (binding_volumes, binding_mounts) = bindings(&ctx.bindings);

    let mut params = BuildParams::kpack(spec.tags.clone(), run_image);
    params.previous_image = spec.last_build.as_ref().map(|l| l.image.clone());
    params.cache = match (claim, registry_cache) {
        (Some(_), _) => Cache::Dir(CACHE.1.into()),
        (None, Some(tag)) => Cache::Image {
            tag: tag.to_string(),
            previous: spec.last_build.as_ref().map(|l| l.cache.image.clone()),
        },
        (None, None) => Cache::None,
    };
    params.process_type = Some(spec.default_process.clone());
    params.source_date_epoch = creation_time(&spec.creation_time, ctx.now)?;
    if ours {
        params.insecure_registries = ctx.insecure_registries.clone();
    }
    let invocations = phases::plan(api.version, &params)?;

    let step = |name: &str, image: &str, command: &str| step(b, ctx, name, image, command);
    let workspace = || VolumeMount {
        sub_path: Some(spec.source.sub_path.clone()).filter(|s| !s.is_empty()),
        ..mount(WORKSPACE.0, WORKSPACE.1, false)
    };
    let m = |(v, p): (&str, &str)| mount(v, p, false);

    let mut init = Vec::new();
    let mut prepare = step(PREPARE, &images.build_init, PREPARE_COMMAND);
    prepare.working_dir = Some(WORKSPACE.1.into());
    prepare.args = Some([secret.args.clone(), pulls.args.clone()].concat());
    prepare.env = Some(prepare_env(b, ctx, run_image)?);
    let mut mounts = [secret.mounts.clone(), pulls.mounts.clone()].concat();
    mounts.extend([
        mount(REGISTRY_PULL.0, REGISTRY_PULL.1, true),
        m(PLATFORM),
        m(WORKSPACE),
        m(HOME),
        m(PROJECT_METADATA),
    ]);
    prepare.volume_mounts = Some(mounts);
    init.push(prepare);

    let lifecycle = ctx.lifecycle.as_ref().filter(|_| ours);
    if let Some(l) = lifecycle {
        let mut c = step(LIFECYCLE, &images.build_init, BUILDPOD_COMMAND);
        let mut args: Vec<String> = ["lifecycle", "select", "--image", &l.image, "--os", "linux"]
            .map(String::from)
            .into();
        if !ctx.builder.arch.is_empty() {
            args.extend(["--arch".into(), ctx.builder.arch.clone()]);
        }
        for r in &ctx.insecure_registries {
            args.extend(["--insecure-registry".into(), r.clone()]);
        }
        args.extend(["--target".into(), LIFECYCLE_DIR.into()]);
        c.args = Some(args);
        // prepare wrote the registry credentials to $HOME/.docker/config.json.
        c.env = Some(vec![env("HOME", HOME.1)]);
        c.volume_mounts = Some(vec![mount(LIFECYCLE_VOLUME, LIFECYCLE_DIR, false), m(HOME)]);
        init.push(c);
    }

    for inv in &invocations {
        let name = inv.phase.name();
        let mut c = step(
            name,
            &ctx.builder.resolved_image,
            &inv.command.display().to_string(),
        );
        c.args = Some(inv.args.clone());
        c.env = Some(
            inv.env
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "CNB_PLATFORM_API" => env(k, &api.spelled),
                    _ => env(k, v),
                })
                .collect(),
        );
        let mut mounts = match inv.phase {
            Phase::Analyze => vec![m(LAYERS), workspace(), m(HOME)],
            Phase::Detect | Phase::Build => {
                let mut v = vec![m(LAYERS), m(PLATFORM), workspace()];
                v.extend(binding_mounts.iter().cloned());
                v
            }
            Phase::Restore => vec![m(LAYERS), m(HOME)],
            Phase::Export => vec![m(LAYERS), workspace(), m(HOME), m(REPORT)],
        };
        if claim.is_some() && matches!(inv.phase, Phase::Restore | Phase::Export) {
            mounts.push(m(CACHE));
        }
        if lifecycle.is_some() {
            mounts.push(mount(LIFECYCLE_VOLUME, LIFECYCLE_DIR, true));
        }
        c.volume_mounts = Some(mounts);
        debug_assert!([ANALYZE, DETECT, RESTORE, BUILD, EXPORT].contains(&name));
        init.push(c);
    }

    let mut completion = step(COMPLETION, &images.completion, COMPLETION_COMMAND);
    completion.args = Some(completion_args(b, &secret.args, &cosign.args));
    completion.env = Some(vec![
        env("HOME", HOME.1),
        env("CACHE_TAG", registry_cache.unwrap_or("")),
        env("TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH),
    ]);
    let mut mounts = [secret.mounts.clone(), cosign.mounts.clone()].concat();
    mounts.extend([m(HOME), m(REPORT), mount(NOTARY.0, NOTARY.1, true)]);
    completion.volume_mounts = Some(mounts);
    completion.termination_message_path = Some(TERMINATION_MESSAGE_PATH.into());
    completion.termination_message_policy = Some("FallbackToLogsOnError".into());

    let mut volumes = [secret.volumes, cosign.volumes, pulls.volumes].concat();
    if let Some(claim) = claim {
        volumes.push(Volume {
            name: CACHE.0.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    for v in [LAYERS.0, HOME.0, WORKSPACE.0, PLATFORM.0, REPORT.0] {
        volumes.push(empty_dir(v));
    }
    if !ours {
        // Vestigial (the Windows network-wait launcher); kpack still declares it.
        volumes.push(empty_dir(NETWORK_WAIT));
    }
    volumes.push(registry_source_pull_volume(b));
    volumes.push(notary_volume(b));
    volumes.extend(binding_volumes);
    if lifecycle.is_some() {
        volumes.push(empty_dir(LIFECYCLE_VOLUME));
    }

    let mut pod = pod_shell(b);
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    pod_spec.active_deadline_seconds = spec.active_deadline_seconds;
    pod_spec.image_pull_secrets = non_empty(spec.builder.image_pull_secrets.clone());
    pod_spec.security_context = Some(PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default()),
        run_as_user: Some(ctx.builder.uid),
        run_as_group: Some(ctx.builder.gid),
        fs_group: Some(ctx.builder.gid),
        ..Default::default()
    });
    pod_spec.init_containers = Some(init);
    pod_spec.containers = vec![completion];
    pod_spec.volumes = Some(volumes);
    Ok(pod)
}

/// A step's container: image, command, pull policy, security context, resources; ours keeps
/// the log tail of a failed step as its termination message.
pub(super) fn step(
    b: &Build,
    ctx: &BuildContext,
    name: &str,
    image: &str,
    command: &str,
) -> Container {
    Container {
        name: name.to_string(),
        image: Some(image.to_string()),
        command: Some(vec![command.to_string()]),
        image_pull_policy: Some("IfNotPresent".into()),
        security_context: Some(container_security_context()),
        resources: resources(b, ctx),
        termination_message_policy: (ctx.mode == Mode::Ours)
            .then(|| "FallbackToLogsOnError".to_string()),
        ..Default::default()
    }
}

/// Metadata and the pod-level fields both pods share (§1.4, §1.11).
pub(super) fn pod_shell(b: &Build) -> Pod {
    let mut labels = b.metadata.labels.clone().unwrap_or_default();
    labels.insert("kpack.io/build".into(), b.name().to_string());
    let mut annotations = b.metadata.annotations.clone().unwrap_or_default();
    annotations.insert("sidecar.istio.io/inject".into(), "false".into());
    let spec = &b.spec;
    Pod {
        metadata: ObjectMeta {
            name: Some(b.pod_name()),
            namespace: b.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(b)]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            service_account_name: Some(b.service_account().to_string()),
            node_selector: Some(spec.node_selector.clone()).filter(|m| !m.is_empty()),
            tolerations: non_empty(spec.tolerations.clone()),
            affinity: spec.affinity.clone(),
            runtime_class_name: spec.runtime_class_name.clone(),
            scheduler_name: Some(spec.scheduler_name.clone()).filter(|s| !s.is_empty()),
            priority_class_name: Some(spec.priority_class_name.clone()).filter(|s| !s.is_empty()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The Build as the pod's controlling owner (`kmeta.NewControllerRef`).
pub fn owner_reference(b: &Build) -> OwnerReference {
    OwnerReference {
        api_version: build::API_VERSION.into(),
        kind: build::KIND.into(),
        name: b.name().to_string(),
        uid: b.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn prepare_env(b: &Build, ctx: &BuildContext, run_image: &str) -> Result<Vec<EnvVar>, PodError> {
    let spec = &b.spec;
    let src = &spec.source;
    let mut e = if let Some(g) = &src.git {
        vec![
            env("GIT_URL", &g.url),
            env("GIT_REVISION", &g.revision),
            env(
                "GIT_INITIALIZE_SUBMODULES",
                bool_str(g.initialize_submodules),
            ),
        ]
    } else if let Some(bl) = &src.blob {
        vec![
            env("BLOB_URL", &bl.url),
            env("BLOB_STRIP_COMPONENTS", &bl.strip_components.to_string()),
            env("BLOB_AUTH", bool_str(!bl.auth.is_empty())),
        ]
    } else if let Some(r) = &src.registry {
        vec![env("REGISTRY_IMAGE", &r.image)]
    } else {
        return Err(PodError::NoSource(b.name().to_string()));
    };
    for v in &spec.env {
        e.push(EnvVar {
            name: format!("PLATFORM_ENV_{}", v.name),
            ..v.clone()
        });
    }
    let tag = &spec.tags[0];
    e.extend([
        env("SOURCE_SUB_PATH", &src.sub_path),
        env("PROJECT_DESCRIPTOR_PATH", &spec.project_descriptor_path),
        env("IMAGE_TAG", tag),
        env("RUN_IMAGE", run_image),
        env("BUILDER_IMAGE", &spec.builder.image),
        env("BUILDER_NAME", b.annotation(build::ANNOTATION_BUILDER_NAME)),
        env("BUILDER_KIND", b.annotation(build::ANNOTATION_BUILDER_KIND)),
    ]);
    if ctx.mode == Mode::Kpack {
        // Unused since kpack dropped Windows; kept for an identical pod.
        // ggcr's `RegistryStr`: Docker Hub is index.docker.io.
        let registry = parse_reference(tag)
            .map(|r| fully_qualified_repo(r.registry(), ""))
            .map(|s| s.trim_end_matches('/').to_string())
            .unwrap_or_default();
        e.push(env("DNS_PROBE_HOSTNAME", &registry));
    }
    e.extend([
        env(
            "BUILD_CHANGES",
            b.annotation(build::ANNOTATION_BUILD_CHANGES),
        ),
        env(
            "INSECURE_SSH_TRUST_UNKNOWN_HOSTS",
            bool_str(ctx.ssh_trust_unknown_host),
        ),
    ]);
    Ok(e)
}

pub(super) fn completion_args(
    b: &Build,
    secret_args: &[String],
    cosign_args: &[String],
) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(v1) = b.spec.notary.as_ref().and_then(|n| n.v1.as_ref()) {
        a.push(format!("-notary-v1-url={}", v1.url));
    }
    a.extend(secret_args.iter().cloned());
    let created = b
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .map(go_build_timestamp)
        .unwrap_or_else(|| "00010101.000000".to_string());
    a.push(format!("-cosign-annotations=buildTimestamp={created}"));
    a.push(format!(
        "-cosign-annotations=buildNumber={}",
        b.label(build::LABEL_BUILD_NUMBER)
    ));
    for an in b.spec.cosign.iter().flat_map(|c| &c.annotations) {
        a.push(format!("-cosign-annotations={}={}", an.name, an.value));
    }
    a.extend(cosign_args.iter().cloned());
    a
}

/// Go's `20060102.150405` layout, UTC.
fn go_build_timestamp(secs: i64) -> String {
    let t = crate::oci::config::rfc3339(secs);
    format!(
        "{}.{}",
        t[..10].replace('-', ""),
        t[11..19].replace(':', "")
    )
}

/// `spec.creationTime`: `""` none, `"now"` the controller's clock, else unix seconds.
fn creation_time(v: &str, now: i64) -> Result<Option<i64>, PodError> {
    match v {
        "" => Ok(None),
        "now" => Ok(Some(now)),
        s => s.parse().map(Some).map_err(|_| PodError::CreationTime {
            value: s.to_string(),
        }),
    }
}

fn bindings(all: &[Binding]) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for b in all {
        match b {
            Binding::Service {
                name,
                secret: Some(secret),
            } => {
                let v = format!("binding-{name}");
                mounts.push(mount(&v, &format!("{BINDINGS_ROOT}/{name}"), true));
                volumes.push(secret_volume(&v, secret));
            }
            Binding::Service { secret: None, .. } => {}
            Binding::Cnb {
                name,
                metadata,
                secret,
            } => {
                let v = format!("binding-metadata-{name}");
                mounts.push(mount(&v, &format!("{BINDINGS_ROOT}/{name}/metadata"), true));
                volumes.push(Volume {
                    name: v,
                    config_map: Some(ConfigMapVolumeSource {
                        name: metadata.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                if let Some(secret) = secret {
                    let v = format!("binding-secret-{name}");
                    mounts.push(mount(&v, &format!("{BINDINGS_ROOT}/{name}/secret"), true));
                    volumes.push(secret_volume(&v, secret));
                }
            }
        }
    }
    (volumes, mounts)
}

/// The registry cache tag, if the Build has one.
pub(super) fn registry_cache(b: &Build) -> Option<&str> {
    b.spec
        .cache
        .as_ref()
        .and_then(|c| c.registry.as_ref())
        .map(|r| r.tag.as_str())
        .filter(|t| !t.is_empty())
}

/// The first pull secret of a registry source, else an emptyDir.
fn registry_source_pull_volume(b: &Build) -> Volume {
    let first = b
        .spec
        .source
        .registry
        .as_ref()
        .and_then(|r| r.image_pull_secrets.first());
    match first {
        Some(s) => secret_volume(REGISTRY_PULL.0, &s.name),
        None => empty_dir(REGISTRY_PULL.0),
    }
}

pub(super) fn notary_volume(b: &Build) -> Volume {
    match b.spec.notary.as_ref().and_then(|n| n.v1.as_ref()) {
        Some(v1) => secret_volume(NOTARY.0, &v1.secret_ref.name),
        None => empty_dir(NOTARY.0),
    }
}

/// `spec.resources`; ours falls back to the context's defaults.
pub(super) fn resources(b: &Build, ctx: &BuildContext) -> Option<ResourceRequirements> {
    let set = |r: &ResourceRequirements| *r != ResourceRequirements::default();
    if set(&b.spec.resources) {
        Some(b.spec.resources.clone())
    } else if ctx.mode == Mode::Ours && set(&ctx.default_resources) {
        Some(ctx.default_resources.clone())
    } else {
        None
    }
}

pub(super) fn container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        seccomp_profile: Some(runtime_default()),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..Default::default()
    }
}

pub(super) fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

pub(super) fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

pub(super) fn secret_volume(volume: &str, secret: &str) -> Volume {
    Volume {
        name: volume.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn empty_dir(volume: &str) -> Volume {
    Volume {
        name: volume.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// An env entry; an empty value is left out of the JSON as Go's `omitempty` does.
pub(super) fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()).filter(|v| !v.is_empty()),
        value_from: None,
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

pub(super) fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    Some(v).filter(|v| !v.is_empty())
}
