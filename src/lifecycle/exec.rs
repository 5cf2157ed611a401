//! Starting buildpack processes: the environment each one gets, its user, and for `bin/detect`
//! the captured output and plan.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Runs `bin/detect` processes for real, each group's pending ones concurrently.
pub struct ProcessDetectRunner {
    pub inv: Arc<Invocation>,
    pub base: Env,
}

impl DetectRunner for ProcessDetectRunner {
    fn run(&self, bps: &[Arc<BuildpackDescriptor>]) -> Vec<DetectRun> {
        if bps.len() == 1 {
            return vec![self.detect_one(&bps[0])];
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = bps
                .iter()
                .map(|bp| s.spawn(move || self.detect_one(bp)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| DetectRun::error("detect thread panicked"))
                })
                .collect()
        })
    }
}

impl ProcessDetectRunner {
    fn detect_one(&self, bp: &BuildpackDescriptor) -> DetectRun {
        match self.try_detect(bp) {
            Ok(run) => run,
            Err(e) => DetectRun::error(e),
        }
    }

    fn try_detect(&self, bp: &BuildpackDescriptor) -> Result<DetectRun, String> {
        // A fresh, private, empty plan file per buildpack.
        let tmp = tempfile::Builder::new()
            .prefix("cnb-detect-")
            .tempdir()
            .map_err(|e| format!("create temp dir for the build plan: {e}"))?;
        let plan_path = tmp.path().join("plan.toml");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&plan_path)
            .map_err(|e| format!("create {}: {e}", plan_path.display()))?;
        for p in [tmp.path(), plan_path.as_path()] {
            self.inv
                .run_as
                .give(p)
                .map_err(|e| format!("chown {}: {e}", p.display()))?;
        }
        let env = self
            .inv
            .env(&self.base, bp, ("CNB_BUILD_PLAN_PATH", &plan_path), None);
        let mut cmd = self.inv.command(
            bp,
            "detect",
            &[self.inv.platform.as_path(), plan_path.as_path()],
            &env,
        );
        let (output, status) = run_captured(&mut cmd)
            .map_err(|e| format!("run {}: {e}", bp.dir.join("bin").join("detect").display()))?;
        let code = status.unwrap_or(-1);
        let mut run = DetectRun {
            code,
            output,
            ..DetectRun::default()
        };
        if code == 0 {
            let text = std::fs::read_to_string(&plan_path)
                .map_err(|e| format!("read {}: {e}", plan_path.display()))?;
            match Contribution::parse(&plan_path, &text) {
                Ok(p) => run.plan = p,
                Err(e) => {
                    run.code = -1;
                    run.error = Some(format!("invalid build plan: {e}"));
                }
            }
        }
        Ok(run)
    }
}

/// Runs `cmd` with stdout and stderr captured together, in order, into one string.
fn run_captured(cmd: &mut Command) -> std::io::Result<(String, Option<i32>)> {
    let (r, w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let w2 = w.try_clone()?;
    cmd.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
    let mut child = cmd.spawn()?;
    // Drop the command's copies of the write end, or reading never sees EOF.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut buf = Vec::new();
    File::from(r).read_to_end(&mut buf)?;
    let status = child.wait()?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), status.code()))
}
