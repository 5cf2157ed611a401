//! Pod → Build status (pure; kpack's build reconciler, §7.3): step states, completed steps,
//! the Succeeded condition, and on success the build metadata that `completion` left as its
//! termination message. A failure names the failed step, its exit code and its last log lines
//! (kpack#253, #1255, #1470: users saw only "exit status 1" or nothing).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod};

use super::build::{Build, BuildStack, BuildStatus, Condition, CONDITION_SUCCEEDED};
use super::{COMPLETION, STEPS};
use crate::kpack::metadata;

/// How many log lines a failure message quotes, and how long it may get.
pub const LOG_LINES: usize = 10;
const MAX_LOG_CHARS: usize = 2000;

/// The last log lines of each container (optional; the controller or the local runner reads
/// them). Without them a failure quotes the step's termination message, which is the log
/// tail when the step runs with `FallbackToLogsOnError`.
pub type StepLogs = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("failed to get build metadata from build pod: {0}")]
    Metadata(String),
}

/// The Build's status for `pod` at time `now` (RFC 3339; a condition keeps its transition
/// time while its status does not change).
pub fn build_status(
    build: &Build,
    pod: &Pod,
    logs: &StepLogs,
    now: &str,
) -> Result<BuildStatus, StatusError> {
    let previous = build.status.clone().unwrap_or_default();
    let st = pod.status.clone().unwrap_or_default();
    let statuses: Vec<&ContainerStatus> = st
        .init_container_statuses
        .iter()
        .flatten()
        .chain(st.container_statuses.iter().flatten())
        .filter(|s| STEPS.contains(&s.name.as_str()))
        .collect();
    let mut status = BuildStatus {
        observed_generation: build
            .metadata
            .generation
            .unwrap_or(previous.observed_generation),
        pod_name: pod.metadata.name.clone().unwrap_or_default(),
        step_states: statuses.iter().map(|s| step_state(s)).collect(),
        steps_completed: statuses
            .iter()
            .filter(|s| exit_code(s) == Some(0))
            .map(|s| s.name.clone())
            .collect(),
        ..previous.clone()
    };
    let phase = st.phase.as_deref().unwrap_or("");
    let reason = st.reason.as_deref().unwrap_or("");
    let completed = status.steps_completed.iter().any(|s| s == COMPLETION);
    let succeeded =
        phase == "Succeeded" || (phase == "Failed" && reason == "DeadlineExceeded" && completed);
    let cond = if succeeded {
        let already = build.succeeded().is_some_and(|c| c.status == "True");
        if !already {
            metadata_into(&mut status, &statuses)?;
        }
        condition("True", "Completed", "")
    } else if phase == "Failed" {
        failed_condition(build, pod, &statuses, logs)
    } else if phase == "Pending" {
        // kpack: the first init container that waits gives the reason (PodInitializing,
        // ImagePullBackOff, ...).
        let waiting = st
            .init_container_statuses
            .iter()
            .flatten()
            .find_map(|s| s.state.as_ref()?.waiting.as_ref());
        match waiting {
            Some(w) => condition(
                "Unknown",
                w.reason.as_deref().unwrap_or(""),
                w.message.as_deref().unwrap_or(""),
            ),
            None => condition("Unknown", "", ""),
        }
    } else {
        condition("Unknown", "", "")
    };
    status.conditions = vec![with_time(cond, previous.succeeded_condition(), now)];
    Ok(status)
}

/// A Build that failed before it had a pod (pod generation, an invalid pod): kpack's
/// permanent error, `Succeeded=False` with the error as the message.
pub fn failed_status(build: &Build, message: &str, now: &str) -> BuildStatus {
    let previous = build.status.clone().unwrap_or_default();
    BuildStatus {
        observed_generation: build
            .metadata
            .generation
            .unwrap_or(previous.observed_generation),
        conditions: vec![with_time(
            condition("False", "", message),
            previous.succeeded_condition(),
            now,
        )],
        ..previous
    }
}

impl BuildStatus {
    fn succeeded_condition(&self) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|c| c.type_ == CONDITION_SUCCEEDED)
    }
}

fn condition(status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: CONDITION_SUCCEEDED.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        ..Default::default()
    }
}

fn with_time(mut c: Condition, previous: Option<&Condition>, now: &str) -> Condition {
    c.last_transition_time = match previous {
        Some(p) if p.status == c.status && p.last_transition_time.is_some() => {
            p.last_transition_time.clone()
        }
        _ => Some(now.to_string()),
    };
    c
}

fn exit_code(s: &ContainerStatus) -> Option<i32> {
    Some(s.state.as_ref()?.terminated.as_ref()?.exit_code)
}

/// kpack fills empty messages so that `kubectl get build -o yaml` says what happened.
fn step_state(s: &ContainerStatus) -> ContainerState {
    let mut state = s.state.clone().unwrap_or_default();
    if let Some(t) = state.terminated.as_mut() {
        if t.message.as_deref().unwrap_or("").is_empty() {
            let how = if t.exit_code == 0 {
                "terminated successfully"
            } else {
                "terminated with error"
            };
            t.message = Some(format!("Container {} {how}", s.name));
        }
    }
    if let Some(w) = state.waiting.as_mut() {
        if w.message.as_deref().unwrap_or("").is_empty() {
            w.message = Some(format!("Container {} waiting", s.name));
        }
    }
    state
}

/// Decode completion's termination message into the status (`Build.MetadataReady`).
fn metadata_into(
    status: &mut BuildStatus,
    statuses: &[&ContainerStatus],
) -> Result<(), StatusError> {
    let message = statuses
        .iter()
        .find(|s| s.name == COMPLETION)
        .and_then(|s| s.state.as_ref()?.terminated.as_ref()?.message.clone())
        .unwrap_or_default();
    let m = metadata::decompress(&message).map_err(StatusError::Metadata)?;
    status.build_metadata = m.buildpack_metadata;
    status.latest_image = m.latest_image;
    status.latest_cache_image = m.latest_cache_image;
    status.stack = BuildStack {
        run_image: m.stack_run_image,
        id: m.stack_id,
    };
    status.lifecycle_version = m.lifecycle_version;
    Ok(())
}

fn failed_condition(
    build: &Build,
    pod: &Pod,
    statuses: &[&ContainerStatus],
    logs: &StepLogs,
) -> Condition {
    let st = pod.status.as_ref();
    let pod_message = st.and_then(|s| s.message.as_deref()).unwrap_or("");
    let failed = statuses.iter().find_map(|s| {
        Some((*s, s.state.as_ref()?.terminated.as_ref()?)).filter(|(_, t)| t.exit_code != 0)
    });
    let Some((s, t)) = failed else {
        // Nothing exited non-zero: the pod itself failed (deadline, eviction, ...).
        let reason = st.and_then(|s| s.reason.as_deref()).unwrap_or("");
        let message = if pod_message.is_empty() {
            format!(
                "build pod failed{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            )
        } else {
            pod_message.to_string()
        };
        return condition("False", "Failed", &message);
    };
    let mut message = format!("step {:?} failed with exit code {}", s.name, t.exit_code);
    match t.reason.as_deref() {
        Some(r) if !r.is_empty() && r != "Error" => message.push_str(&format!(" ({r})")),
        _ => {}
    }
    if !pod_message.is_empty() {
        message.push_str(&format!(": {pod_message}"));
    }
    let lines = match logs.get(&s.name) {
        Some(l) if !l.is_empty() => tail(l.iter().map(String::as_str)),
        _ => tail(t.message.as_deref().unwrap_or("").lines()),
    };
    if !lines.is_empty() {
        message.push_str(&format!("; last log lines:\n{lines}"));
    }
    message.push_str(&format!(
        "\nfor more info use `kubectl logs -n {} {} -c {}`",
        build.namespace(),
        pod.metadata.name.as_deref().unwrap_or(""),
        s.name
    ));
    condition("False", "Failed", &message)
}

/// The last [`LOG_LINES`] non-empty lines, ANSI escapes removed, at most
/// [`MAX_LOG_CHARS`] (the end kept).
fn tail<'a>(lines: impl DoubleEndedIterator<Item = &'a str>) -> String {
    let mut kept: Vec<String> = lines
        .rev()
        .map(strip_ansi)
        .filter(|l| !l.trim().is_empty())
        .take(LOG_LINES)
        .collect();
    kept.reverse();
    let s = kept.join("\n");
    if s.len() <= MAX_LOG_CHARS {
        return s;
    }
    let mut start = s.len() - MAX_LOG_CHARS;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

/// Remove CSI escape sequences (colours) and other control characters but tab.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        if c.is_control() && c != '\t' {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}
