//! Run a pod's containers in order, as a kubelet would for a build pod: init containers one
//! after another (stop at the first failure), then the containers. Each runs in the sandbox
//! from its image in the cache; its output is shown under a step banner and kept in
//! `<work>/logs/<name>.log`. The result is the pod's status, so the same status mapping that
//! reads a cluster's pod reads a local run.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    Pod, PodStatus, Secret,
};

use super::container::{self, ContainerError, Placement};
use super::images::{ImageCache, ImageError};
use super::volumes::{self, VolumeError};
use crate::sandbox::{Sandbox, SandboxError};

/// Lines of each container's output kept for failure messages.
pub const TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("pod has no spec")]
    NoSpec,
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("interrupted by {signal} during step {step}")]
    Interrupted {
        signal: nix::sys::signal::Signal,
        step: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { path, source }
}

/// How a step is shown to the user.
pub trait Reporter: Send + Sync {
    fn step_started(&self, name: &str, image: &str);
    fn line(&self, name: &str, line: &str);
    fn step_finished(&self, name: &str, exit_code: i32, seconds: f64);
}

/// Plain lines on stderr: a banner per step, the step's output as it comes.
pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn step_started(&self, name: &str, image: &str) {
        eprintln!("===> {} ({image})", name.to_uppercase());
    }
    fn line(&self, _name: &str, line: &str) {
        // stderr: stdout carries the build's machine-readable result.
        let mut out = std::io::stderr().lock();
        let _ = writeln!(out, "{line}");
    }
    fn step_finished(&self, name: &str, exit_code: i32, seconds: f64) {
        if exit_code != 0 {
            eprintln!(
                "===> {} failed with exit code {exit_code} ({seconds:.2}s)",
                name.to_uppercase()
            );
        } else {
            tracing::debug!("{name} done in {seconds:.2}s");
        }
    }
}

pub struct Runner<'a> {
    pub sandbox: &'a Sandbox,
    pub images: &'a ImageCache,
    /// Per-run directory (volumes, scratch, logs). Containers reach volumes through bind
    /// mounts, so its parents need not be searchable by the containers' users.
    pub work: PathBuf,
    /// Secrets by name, for secret volumes.
    pub secrets: BTreeMap<String, Secret>,
    /// Volume name → host path, for PVCs and hostPaths.
    pub mapped_volumes: BTreeMap<String, PathBuf>,
    pub reporter: &'a dyn Reporter,
    /// Bind the host's CA bundle into every container ([`container::host_network_files`]).
    pub host_certs: bool,
}

/// What a run produced besides the status.
#[derive(Debug, Default)]
pub struct RunResult {
    pub status: PodStatus,
    /// The last [`TAIL_LINES`] lines of each container that ran.
    pub tails: BTreeMap<String, Vec<String>>,
    /// Seconds each container took (image preparation included), in run order.
    pub timings: Vec<(String, f64)>,
}

impl Runner<'_> {
    pub fn run(&self, pod: &Pod) -> Result<RunResult, RunError> {
        let spec = pod.spec.as_ref().ok_or(RunError::NoSpec)?;
        for d in ["volumes", "scratch", "logs", "termination"] {
            let p = self.work.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let vols = volumes::prepare(
            pod,
            &self.work.join("volumes"),
            &self.secrets,
            &self.mapped_volumes,
        )?;
        let hostname = pod.metadata.name.clone().unwrap_or_else(|| "pod".into());
        let hostname: String = hostname.chars().take(63).collect();
        let mut result = RunResult::default();
        let inits = spec.init_containers.clone().unwrap_or_default();
        let mut failed = false;
        let mut init_statuses = Vec::new();
        for c in &inits {
            if failed {
                init_statuses.push(waiting(c, "PodInitializing"));
                continue;
            }
            let st = self.one(spec, c, &vols, &hostname, &mut result)?;
            interrupted(c)?;
            failed = exit_code(&st) != Some(0);
            init_statuses.push(st);
        }
        let mut statuses = Vec::new();
        for c in &spec.containers {
            if failed {
                statuses.push(waiting(c, "PodInitializing"));
                continue;
            }
            let st = self.one(spec, c, &vols, &hostname, &mut result)?;
            interrupted(c)?;
            failed |= exit_code(&st) != Some(0);
            statuses.push(st);
        }
        result.status = PodStatus {
            phase: Some(if failed { "Failed" } else { "Succeeded" }.to_string()),
            init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
            container_statuses: Some(statuses),
            ..Default::default()
        };
        Ok(result)
    }

    fn one(
        &self,
        pod: &k8s_openapi::api::core::v1::PodSpec,
        c: &Container,
        vols: &BTreeMap<String, PathBuf>,
        hostname: &str,
        result: &mut RunResult,
    ) -> Result<ContainerStatus, RunError> {
        interrupted(c)?;
        let started = std::time::Instant::now();
        let image_ref = c.image.clone().unwrap_or_default();
        self.reporter.step_started(&c.name, &image_ref);
        let image = self.images.get(&image_ref)?;
        let scratch = self.work.join("scratch").join(&c.name);
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).map_err(io(&scratch))?;
        }
        std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
        let term = self.work.join("termination").join(&c.name);
        std::fs::write(&term, b"").map_err(io(&term))?;
        // The container's user writes its termination message.
        std::fs::set_permissions(&term, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(io(&term))?;
        let at = Placement {
            volumes: vols,
            layers: &image.layers,
            scratch: scratch.clone(),
            termination_file: &term,
            hostname,
            host_files: &container::host_network_files(self.host_certs),
        };
        let spec = container::spec(pod, c, &image.config, &at)?;
        let mut cmd = self.sandbox.command(&spec)?;
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            id: c.name.clone(),
            program: self.sandbox.program.clone(),
            source,
        })?;
        let _forward = super::interrupt::Child::watch(child.id());
        let log_path = self.work.join("logs").join(format!("{}.log", c.name));
        let log = Mutex::new(std::fs::File::create(&log_path).map_err(io(&log_path))?);
        let tail = Mutex::new(VecDeque::with_capacity(TAIL_LINES));
        let readers: Vec<Box<dyn std::io::Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        let status = std::thread::scope(|s| {
            for r in readers {
                let (log, tail, name) = (&log, &tail, c.name.as_str());
                let reporter = self.reporter;
                s.spawn(move || pump(r, log, tail, name, reporter));
            }
            child.wait()
        })
        .map_err(io(&log_path))?;
        let code = status.code().unwrap_or(128);
        let seconds = started.elapsed().as_secs_f64();
        self.reporter.step_finished(&c.name, code, seconds);
        result.timings.push((c.name.clone(), seconds));
        let tail_lines: Vec<String> = tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        result.tails.insert(c.name.clone(), tail_lines);
        let message = std::fs::read_to_string(&term).unwrap_or_default();
        Ok(ContainerStatus {
            name: c.name.clone(),
            image: image_ref,
            image_id: image.digest.to_string(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(if code == 0 { "Completed" } else { "Error" }.to_string()),
                    message: (!message.is_empty()).then_some(message),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

/// Stop before (or after) `c` when the user interrupted the run.
fn interrupted(c: &Container) -> Result<(), RunError> {
    match super::interrupt::received() {
        Some(signal) => Err(RunError::Interrupted {
            signal,
            step: c.name.clone(),
        }),
        None => Ok(()),
    }
}

fn pump(
    r: Box<dyn std::io::Read + Send>,
    log: &Mutex<std::fs::File>,
    tail: &Mutex<VecDeque<String>>,
    name: &str,
    reporter: &dyn Reporter,
) {
    let mut br = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match br.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Ok(mut f) = log.lock() {
            let _ = f.write_all(&buf);
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        reporter.line(name, line);
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.to_string());
        }
    }
}

fn exit_code(s: &ContainerStatus) -> Option<i32> {
    s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

fn waiting(c: &Container, reason: &str) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_string()),
                message: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
