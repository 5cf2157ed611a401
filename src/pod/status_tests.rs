//! Status mapping table tests (kpack's `build_test.go` states, §7.3): pending, each step
//! running or failed, success with the termination message decoded.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::build::{BuildStack, BuildpackMetadata, Condition};
use super::status::{build_status, failed_status, StatusError, StepLogs};
use super::test_support::git_build;
use crate::kpack::metadata::{compress, BuildMetadata};

const NOW: &str = "2025-01-01T12:05:00Z";
const STEPS: [&str; 6] = ["prepare", "analyze", "detect", "restore", "build", "export"];

#[derive(Clone, Copy)]
enum S<'a> {
    Waiting(&'a str),
    Running,
    Done(i32, &'a str),
    /// Terminated with a reason (OOMKilled...).
    Killed(i32, &'a str),
}

fn state(s: S) -> ContainerState {
    match s {
        S::Waiting(reason) => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..Default::default()
        },
        S::Running => ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        },
        S::Done(code, message) | S::Killed(code, message) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                message: Some(message.to_string()).filter(|m| !m.is_empty()),
                reason: match s {
                    S::Killed(..) => Some("OOMKilled".into()),
                    _ => Some(if code == 0 { "Completed" } else { "Error" }.into()),
                },
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn cs(name: &str, s: S) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: Some(state(s)),
        ..Default::default()
    }
}

/// A pod in `phase` whose six init steps are in `init` and completion in `completion`.
fn pod(phase: &str, init: [S; 6], completion: S) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("app-build-3-build-pod".into()),
            namespace: Some("apps".into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.into()),
            init_container_statuses: Some(STEPS.iter().zip(init).map(|(n, s)| cs(n, s)).collect()),
            container_statuses: Some(vec![cs("completion", completion)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const W: S = S::Waiting("PodInitializing");
const OK: S = S::Done(0, "");

fn metadata() -> BuildMetadata {
    BuildMetadata {
        buildpack_metadata: vec![BuildpackMetadata {
            id: "paketo-buildpacks/node-engine".into(),
            version: "1.2.3".into(),
            homepage: "https://github.com/paketo-buildpacks/node-engine".into(),
        }],
        latest_cache_image: "registry.example.com/apps/app-cache@sha256:cc".into(),
        latest_image: "registry.example.com/apps/app@sha256:aa".into(),
        stack_id: "io.buildpacks.stacks.jammy".into(),
        stack_run_image: "registry.example.com/builders/run@sha256:rr".into(),
        lifecycle_version: "0.20.12".into(),
    }
}

fn succeeded_condition(p: &Pod, logs: &StepLogs) -> Condition {
    let s = build_status(&git_build(), p, logs, NOW).unwrap();
    assert_eq!(s.conditions.len(), 1);
    s.conditions[0].clone()
}

fn cond(status: &str, reason: &str, message: &str) -> (String, String, String) {
    (status.into(), reason.into(), message.into())
}

fn triple(c: &Condition) -> (String, String, String) {
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[test]
fn pending_and_running_states() {
    let none = StepLogs::new();
    type Row<'a> = (&'a str, Pod, (String, String, String), Vec<&'a str>);
    let table: Vec<Row> = vec![
        (
            "scheduled, pulling prepare",
            pod(
                "Pending",
                [S::Waiting("ContainerCreating"), W, W, W, W, W],
                W,
            ),
            cond("Unknown", "ContainerCreating", ""),
            vec![],
        ),
        (
            "prepare image cannot be pulled",
            pod(
                "Pending",
                [S::Waiting("ImagePullBackOff"), W, W, W, W, W],
                W,
            ),
            cond("Unknown", "ImagePullBackOff", ""),
            vec![],
        ),
        (
            "prepare running",
            pod("Pending", [S::Running, W, W, W, W, W], W),
            cond("Unknown", "PodInitializing", ""),
            vec![],
        ),
        (
            "build running",
            pod("Pending", [OK, OK, OK, OK, S::Running, W], W),
            cond("Unknown", "PodInitializing", ""),
            vec!["prepare", "analyze", "detect", "restore"],
        ),
        (
            "completion running",
            pod("Running", [OK; 6], S::Running),
            cond("Unknown", "", ""),
            vec!["prepare", "analyze", "detect", "restore", "build", "export"],
        ),
    ];
    for (what, p, want, completed) in table {
        let s = build_status(&git_build(), &p, &none, NOW).unwrap();
        assert_eq!(triple(&s.conditions[0]), want, "{what}");
        assert_eq!(s.steps_completed, completed, "{what}");
        assert_eq!(s.pod_name, "app-build-3-build-pod");
        assert_eq!(s.step_states.len(), 7, "{what}");
        assert_eq!(s.latest_image, "", "{what}");
    }
}

#[test]
fn each_step_failing_names_step_exit_code_and_log_tail() {
    for (i, step) in STEPS.iter().enumerate() {
        let mut init = [W; 6];
        for s in init.iter_mut().take(i) {
            *s = OK;
        }
        init[i] = S::Done(51, "");
        let p = pod("Failed", init, W);
        let logs = StepLogs::from([(
            step.to_string(),
            vec![
                "\u{1b}[31;1mERROR: \u{1b}[0mfailed to build: exit status 1".into(),
                "".into(),
            ],
        )]);
        let c = succeeded_condition(&p, &logs);
        assert_eq!(
            triple(&c),
            cond(
                "False",
                "Failed",
                &format!(
                    "step \"{step}\" failed with exit code 51; last log lines:\nERROR: failed to build: exit status 1\nfor more info use `kubectl logs -n apps app-build-3-build-pod -c {step}`"
                )
            ),
            "{step}"
        );
    }
}

#[test]
fn failure_without_logs_quotes_the_termination_message() {
    // FallbackToLogsOnError: the kubelet keeps the log tail as the message.
    let tail: String = (1..=15).map(|i| format!("line {i}\n")).collect();
    let p = pod("Failed", [OK, OK, S::Done(20, &tail), W, W, W], W);
    let c = succeeded_condition(&p, &StepLogs::new());
    let want_lines: Vec<String> = (6..=15).map(|i| format!("line {i}")).collect();
    assert_eq!(
        c.message,
        format!(
            "step \"detect\" failed with exit code 20; last log lines:\n{}\nfor more info use `kubectl logs -n apps app-build-3-build-pod -c detect`",
            want_lines.join("\n")
        )
    );
    // No output at all, killed for memory.
    let p = pod("Failed", [OK, OK, OK, OK, S::Killed(137, ""), W], W);
    assert_eq!(
        succeeded_condition(&p, &StepLogs::new()).message,
        "step \"build\" failed with exit code 137 (OOMKilled)\nfor more info use `kubectl logs -n apps app-build-3-build-pod -c build`"
    );
    // Completion failing after every init step passed.
    let p = pod(
        "Failed",
        [OK; 6],
        S::Done(1, "2025/01/01 12:00:00 no image found in report"),
    );
    assert_eq!(
        succeeded_condition(&p, &StepLogs::new()).message,
        "step \"completion\" failed with exit code 1; last log lines:\n2025/01/01 12:00:00 no image found in report\nfor more info use `kubectl logs -n apps app-build-3-build-pod -c completion`"
    );
}

#[test]
fn pod_level_failures() {
    let mut p = pod("Failed", [OK, OK, OK, S::Running, W, W], W);
    let st = p.status.as_mut().unwrap();
    st.reason = Some("DeadlineExceeded".into());
    st.message = Some("Pod was active on the node longer than the specified deadline".into());
    assert_eq!(
        triple(&succeeded_condition(&p, &StepLogs::new())),
        cond(
            "False",
            "Failed",
            "Pod was active on the node longer than the specified deadline"
        )
    );
    let mut p = pod("Failed", [OK, S::Running, W, W, W, W], W);
    p.status.as_mut().unwrap().reason = Some("Evicted".into());
    assert_eq!(
        succeeded_condition(&p, &StepLogs::new()).message,
        "build pod failed: Evicted"
    );
}

#[test]
fn success_decodes_the_termination_message() {
    let msg = compress(&metadata()).unwrap();
    let p = pod("Succeeded", [OK; 6], S::Done(0, &msg));
    let s = build_status(&git_build(), &p, &StepLogs::new(), NOW).unwrap();
    assert_eq!(triple(&s.conditions[0]), cond("True", "Completed", ""));
    assert_eq!(s.conditions[0].last_transition_time.as_deref(), Some(NOW));
    assert_eq!(s.latest_image, "registry.example.com/apps/app@sha256:aa");
    assert_eq!(
        s.latest_cache_image,
        "registry.example.com/apps/app-cache@sha256:cc"
    );
    assert_eq!(
        s.stack,
        BuildStack {
            run_image: "registry.example.com/builders/run@sha256:rr".into(),
            id: "io.buildpacks.stacks.jammy".into()
        }
    );
    assert_eq!(s.lifecycle_version, "0.20.12");
    assert_eq!(s.build_metadata, metadata().buildpack_metadata);
    assert_eq!(s.steps_completed.len(), 7);
    // Step states keep real messages and fill empty ones.
    let t = |i: usize| {
        s.step_states[i]
            .terminated
            .as_ref()
            .unwrap()
            .message
            .clone()
    };
    assert_eq!(
        t(0).as_deref(),
        Some("Container prepare terminated successfully")
    );
    assert_eq!(t(6), Some(msg.clone()));
    // JSON as kpack writes it.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["stack"]["runImage"],
        "registry.example.com/builders/run@sha256:rr"
    );
    assert_eq!(
        json["buildMetadata"][0]["id"],
        "paketo-buildpacks/node-engine"
    );
    assert_eq!(json["stepsCompleted"][6], "completion");
    assert_eq!(json["conditions"][0]["type"], "Succeeded");

    // Sidecar mode: the deadline that stops the sidecars after completion is a success.
    let mut p = pod("Failed", [OK; 6], S::Done(0, &msg));
    p.status.as_mut().unwrap().reason = Some("DeadlineExceeded".into());
    let s = build_status(&git_build(), &p, &StepLogs::new(), NOW).unwrap();
    assert_eq!(triple(&s.conditions[0]), cond("True", "Completed", ""));
    assert_eq!(s.latest_image, "registry.example.com/apps/app@sha256:aa");
}

#[test]
fn undecodable_termination_message_is_an_error() {
    let p = pod("Succeeded", [OK; 6], S::Done(0, "not base64!"));
    let e = build_status(&git_build(), &p, &StepLogs::new(), NOW).unwrap_err();
    assert!(matches!(e, StatusError::Metadata(_)));
    assert!(e
        .to_string()
        .starts_with("failed to get build metadata from build pod: "));
}

#[test]
fn transition_time_kept_while_status_unchanged() {
    let mut b = git_build();
    let p = pod("Pending", [S::Running, W, W, W, W, W], W);
    b.status = Some(build_status(&b, &p, &StepLogs::new(), "t1").unwrap());
    let p = pod("Pending", [OK, S::Running, W, W, W, W], W);
    let s = build_status(&b, &p, &StepLogs::new(), "t2").unwrap();
    assert_eq!(s.conditions[0].last_transition_time.as_deref(), Some("t1"));
    let p = pod("Failed", [OK, S::Done(1, ""), W, W, W, W], W);
    let s = build_status(&b, &p, &StepLogs::new(), "t3").unwrap();
    assert_eq!(s.conditions[0].last_transition_time.as_deref(), Some("t3"));
}

#[test]
fn permanent_errors() {
    let s = failed_status(
        &git_build(),
        "unsupported builder platform API versions: 0.2",
        NOW,
    );
    assert_eq!(
        triple(&s.conditions[0]),
        cond(
            "False",
            "",
            "unsupported builder platform API versions: 0.2"
        )
    );
    assert!(git_build().status.is_none());
    let mut b = git_build();
    b.status = Some(s);
    assert!(b.is_finished());
}
