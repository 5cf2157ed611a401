//! The rebase pod (§1.11): `rebase` swaps the run image layers of the last build, then
//! `completion` reports as after a full build.

use k8s_openapi::api::core::v1::{Pod, PodSecurityContext};

use super::build::Build;
use super::context::{BuildContext, BuildPodImages};
use super::generate::{
    completion_args, empty_dir, env, mount, notary_volume, pod_shell, registry_cache, run_image,
    runtime_default, step, NOTARY, REPORT, WORKSPACE,
};
use super::secrets::{self, Filter};
use super::TERMINATION_MESSAGE_PATH;
use super::{build, COMPLETION, COMPLETION_COMMAND, REBASE, REBASE_COMMAND, REPORT_PATH};

pub(super) fn pod(b: &Build, images: &BuildPodImages, ctx: &BuildContext) -> Pod {
    let spec = &b.spec;
    let secret = secrets::secrets(&ctx.secrets, Filter::Docker);
    let cosign = secrets::cosign(&ctx.secrets);
    let pulls = secrets::image_pull(&ctx.image_pull_secrets, &spec.builder.image_pull_secrets);
    let last = spec
        .last_build
        .as_ref()
        .map(|l| l.image.as_str())
        .unwrap_or("");

    let mut rebase = step(b, ctx, REBASE, &images.rebase, REBASE_COMMAND);
    // kpack sets it though the pod has no workspace volume.
    rebase.working_dir = Some(WORKSPACE.1.into());
    rebase.env = Some(vec![env(
        "BUILD_CHANGES",
        b.annotation(build::ANNOTATION_BUILD_CHANGES),
    )]);
    let mut args: Vec<String> = vec![
        "--run-image".into(),
        run_image(b, ctx).into(),
        "--last-built-image".into(),
        last.into(),
        "--report".into(),
        REPORT_PATH.into(),
    ];
    args.extend(secret.args.iter().cloned());
    args.extend(pulls.args.iter().cloned());
    args.extend(spec.tags.iter().cloned());
    rebase.args = Some(args);
    let mut mounts = [secret.mounts.clone(), pulls.mounts.clone()].concat();
    mounts.push(mount(REPORT.0, REPORT.1, false));
    rebase.volume_mounts = Some(mounts);

    let mut completion = step(b, ctx, COMPLETION, &images.completion, COMPLETION_COMMAND);
    completion.args = Some(completion_args(b, &secret.args, &cosign.args));
    completion.env = Some(vec![
        env("CACHE_TAG", registry_cache(b).unwrap_or("")),
        env("TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH),
    ]);
    let mut mounts = vec![
        mount(REPORT.0, REPORT.1, false),
        mount(NOTARY.0, NOTARY.1, true),
    ];
    mounts.extend(secret.mounts);
    mounts.extend(cosign.mounts);
    completion.volume_mounts = Some(mounts);
    completion.termination_message_path = Some(TERMINATION_MESSAGE_PATH.into());
    completion.termination_message_policy = Some("FallbackToLogsOnError".into());

    let mut volumes = [secret.volumes, cosign.volumes, pulls.volumes].concat();
    volumes.push(empty_dir(REPORT.0));
    volumes.push(notary_volume(b));

    let mut pod = pod_shell(b);
    let s = pod.spec.get_or_insert_with(Default::default);
    s.security_context = Some(PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    });
    s.init_containers = Some(vec![rebase]);
    s.containers = vec![completion];
    s.volumes = Some(volumes);
    pod
}
