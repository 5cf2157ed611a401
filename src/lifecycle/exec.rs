//! Starting buildpack processes: the environment each one gets, its user, and for `bin/detect`
//! the captured output and plan.

use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::buildpack_toml::BuildpackDescriptor;
use super::detect::{DetectRun, DetectRunner};
use super::env::{Action, Env, EnvFile};
use super::plan::Contribution;
use super::target::RunTarget;
use super::user::RunAs;

/// What every buildpack process of a phase shares.
pub struct Invocation {
    pub app: PathBuf,
    pub platform: PathBuf,
    /// `<platform>/env` (user variables).
    pub platform_env: Vec<EnvFile>,
    /// `<build-config>/env` (operator variables; Platform API >= 0.11).
    pub build_config_env: Vec<EnvFile>,
    pub target: RunTarget,
    pub exec_env: String,
    pub run_as: RunAs,
}

impl Invocation {
    /// `base` plus this invocation's overrides and the `CNB_*` variables of the buildpack's
    /// API. `plan_var` is `CNB_BUILD_PLAN_PATH` (detect) or `CNB_BP_PLAN_PATH` (build).
    pub fn env(
        &self,
        base: &Env,
        bp: &BuildpackDescriptor,
        plan_var: (&str, &Path),
        layers: Option<&Path>,
    ) -> Env {
        let mut env = base.clone();
        if !bp.clear_env {
            env.apply_platform(&self.platform_env);
        }
        env.apply_dir(&self.build_config_env, Action::Default);
        env.set("CNB_BUILDPACK_DIR", bp.dir.as_os_str());
        if bp.api.at_least(0, 8) {
            env.set("CNB_PLATFORM_DIR", self.platform.as_os_str());
            env.set(plan_var.0, plan_var.1.as_os_str());
            if let Some(l) = layers {
                env.set("CNB_LAYERS_DIR", l.as_os_str());
            }
        }
        if bp.api.at_least(0, 10) {
            for (k, v) in self.target.env() {
                env.set(&k, v);
            }
        }
        if bp.api.at_least(0, 12) {
            env.set("CNB_EXEC_ENV", self.exec_env.as_str());
        }
        env
    }

    /// `<bp>/bin/<name> args...` in the app dir with exactly `env`, as the build user.
    pub fn command(
        &self,
        bp: &BuildpackDescriptor,
        name: &str,
        args: &[&Path],
        env: &Env,
    ) -> Command {
        let mut cmd = Command::new(bp.dir.join("bin").join(name));
        cmd.args(args)
            .current_dir(&self.app)
            .env_clear()
            .envs(env.vars().iter().map(|(k, v)| (OsString::from(k), v)))
            .stdin(Stdio::null());
        self.run_as.configure(&mut cmd);
        cmd
    }
}

/// Runs `bin/detect` processes for real: a group's pending buildpacks are all started, then
/// awaited, so they run concurrently without a thread each. Output goes to a file per
/// buildpack (stdout and stderr share it, so their order is kept).
pub struct ProcessDetectRunner {
    pub inv: Arc<Invocation>,
    pub base: Env,
    /// One private scratch dir per detector run for plans and captured output.
    scratch: tempfile::TempDir,
    next: AtomicUsize,
}

struct Started {
    child: std::process::Child,
    plan: PathBuf,
    out: PathBuf,
}

impl DetectRunner for ProcessDetectRunner {
    fn run(&self, bps: &[Arc<BuildpackDescriptor>]) -> Vec<DetectRun> {
        let started: Vec<Result<Started, String>> = bps.iter().map(|bp| self.start(bp)).collect();
        started
            .into_iter()
            .zip(bps)
            .map(|(s, bp)| match s.and_then(|s| finish(bp, s)) {
                Ok(run) => run,
                Err(e) => DetectRun::error(e),
            })
            .collect()
    }
}

impl ProcessDetectRunner {
    pub fn new(inv: Arc<Invocation>, base: Env) -> std::io::Result<Self> {
        let scratch = tempfile::Builder::new().prefix("cnb-detect-").tempdir()?;
        inv.run_as.give(scratch.path())?;
        Ok(Self {
            inv,
            base,
            scratch,
            next: AtomicUsize::new(0),
        })
    }

    fn start(&self, bp: &BuildpackDescriptor) -> Result<Started, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let plan = self.scratch.path().join(format!("{n}-plan.toml"));
        let out = self.scratch.path().join(format!("{n}.out"));
        let create = |p: &Path| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| format!("create {}: {e}", p.display()))
                .and_then(|f| {
                    self.inv
                        .run_as
                        .give(p)
                        .map_err(|e| format!("chown {}: {e}", p.display()))?;
                    Ok(f)
                })
        };
        // A fresh, empty plan file per buildpack.
        create(&plan)?;
        let out_file = create(&out)?;
        let env = self
            .inv
            .env(&self.base, bp, ("CNB_BUILD_PLAN_PATH", &plan), None);
        let mut cmd = self.inv.command(
            bp,
            "detect",
            &[self.inv.platform.as_path(), plan.as_path()],
            &env,
        );
        let err_file = out_file
            .try_clone()
            .map_err(|e| format!("dup {}: {e}", out.display()))?;
        cmd.stdout(Stdio::from(out_file))
            .stderr(Stdio::from(err_file));
        let child = cmd
            .spawn()
            .map_err(|e| format!("run {}: {e}", bp.dir.join("bin").join("detect").display()))?;
        Ok(Started { child, plan, out })
    }
}

fn finish(bp: &BuildpackDescriptor, mut s: Started) -> Result<DetectRun, String> {
    let status = s
        .child
        .wait()
        .map_err(|e| format!("wait for {} detect: {e}", bp.key()))?;
    let output = std::fs::read(&s.out).map_err(|e| format!("read {}: {e}", s.out.display()))?;
    let mut run = DetectRun {
        code: status.code().unwrap_or(-1),
        output: String::from_utf8_lossy(&output).into_owned(),
        ..DetectRun::default()
    };
    if run.code == 0 {
        let text = std::fs::read_to_string(&s.plan)
            .map_err(|e| format!("read {}: {e}", s.plan.display()))?;
        match Contribution::parse(&s.plan, &text) {
            Ok(p) => run.plan = p,
            Err(e) => {
                run.code = -1;
                run.error = Some(format!("invalid build plan: {e}"));
            }
        }
    }
    Ok(run)
}
