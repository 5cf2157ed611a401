//! Injected-sidecar mode (§1.12, `INJECTED_SIDECAR_SUPPORT`): every step becomes a regular
//! container that waits for the previous one through files written by `build-waiter`, which an
//! init container `pre-start` copies into a shared volume.

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource, ObjectFieldSelector, Pod,
};

use super::context::{BuildPodImages, Mode};
use super::generate::{container_security_context, empty_dir, mount, WORKSPACE};
use super::PRE_START;

const WAIT: (&str, &str) = ("build-wait-dir", "/buildWait");
const DOWNWARD: (&str, &str) = ("downward-api-dir", "/downward");
pub const READY_ANNOTATION: &str = "build.kpack.io/ready";

pub(super) fn standard_containers(pod: &mut Pod, images: &BuildPodImages, mode: Mode) {
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.remove("sidecar.istio.io/inject");
    }
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let mut steps: Vec<Container> = spec.init_containers.take().unwrap_or_default();
    steps.append(&mut spec.containers);
    let resources = steps.first().and_then(|c| c.resources.clone());
    let mut previous: Option<String> = None;
    for (i, c) in steps.iter_mut().enumerate() {
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        if i == 0 {
            mounts.push(mount(DOWNWARD.0, DOWNWARD.1, false));
        }
        mounts.push(mount(WAIT.0, WAIT.1, false));
        let mut execute = c.command.take().unwrap_or_default();
        execute.truncate(1);
        execute.extend(c.args.take().unwrap_or_default());
        let wait_file = match &previous {
            None => format!("-wait-file={}/sidecars-ready", DOWNWARD.1),
            Some(p) => format!("-wait-file={}/{p}", WAIT.1),
        };
        c.command = Some(vec![format!("{}/build-waiter", WAIT.1)]);
        c.args = Some(vec![
            "-mode=wait".into(),
            format!("-done-file={}/{}", WAIT.1, c.name),
            format!("-error-file={}/error", WAIT.1),
            format!("-execute={}", execute.join(" ")),
            wait_file,
        ]);
        previous = Some(c.name.clone());
    }
    spec.containers = steps;
    spec.init_containers = Some(vec![Container {
        name: PRE_START.into(),
        image: Some(images.build_waiter.clone()),
        args: Some(vec![
            "-mode=copy".into(),
            format!("-to={}/build-waiter", WAIT.1),
        ]),
        working_dir: Some(WORKSPACE.1.into()),
        volume_mounts: Some(vec![mount(WAIT.0, WAIT.1, false)]),
        resources,
        image_pull_policy: Some("IfNotPresent".into()),
        // kpack leaves pre-start without one, which PodSecurity `restricted` refuses.
        security_context: (mode == Mode::Ours).then(container_security_context),
        ..Default::default()
    }]);
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    volumes.push(empty_dir(WAIT.0));
    volumes.push(k8s_openapi::api::core::v1::Volume {
        name: DOWNWARD.0.into(),
        downward_api: Some(DownwardAPIVolumeSource {
            items: Some(vec![DownwardAPIVolumeFile {
                path: "sidecars-ready".into(),
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{READY_ANNOTATION}']"),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
}
