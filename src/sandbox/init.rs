//! `buildpod sandbox-init embedded|runc SPEC`: the process between the caller and the
//! container. It unshares, forks the container side and waits, turning SIGINT/SIGTERM/SIGHUP
//! into a kill of the whole container.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::spec::Spec;
use super::{embedded, runc, Runtime};

static SIGNALLED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: i32) {
    SIGNALLED.store(sig, Ordering::SeqCst);
}

/// The exit code for `args` (`[runtime, spec path]`). Errors are printed with the container id.
pub fn main(args: &[String]) -> i32 {
    // If the caller dies (even by SIGKILL), take the container down with us: no orphaned
    // container keeps building, serving or pushing.
    let parent = nix::unistd::getppid();
    if let Err(e) = install_handlers().and_then(|()| {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| format!("pdeathsig: {e}"))
    }) {
        eprintln!("sandbox: {e}");
        return 2;
    }
    if nix::unistd::getppid() != parent {
        return 128 + Signal::SIGTERM as i32;
    }
    let [runtime, path] = args else {
        eprintln!("usage: sandbox-init embedded|runc SPEC");
        return 2;
    };
    let result = runtime
        .parse::<Runtime>()
        .and_then(|rt| load(Path::new(path)).map(|s| (rt, s)));
    let (runtime, spec) = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("sandbox: {e}");
            return 2;
        }
    };
    match run(runtime, &spec) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sandbox: container {}: {e}", spec.id);
            // Like a runtime that could not start the container (kubelet's 128).
            128
        }
    }
}

fn load(path: &Path) -> Result<Spec, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(runtime: Runtime, spec: &Spec) -> Result<i32, String> {
    match runtime {
        Runtime::Embedded => {
            let flags = CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS;
            unshare(flags).map_err(|e| format!("unshare: {e}"))?;
            // SAFETY: this process is single-threaded (a fresh exec that has started no
            // threads), so the child may run arbitrary code until exec.
            match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
                ForkResult::Child => {
                    let e = match embedded::enter(spec) {
                        Ok(never) => match never {},
                        Err(e) => e,
                    };
                    eprintln!("sandbox: container {}: {e}", spec.id);
                    std::process::exit(128);
                }
                ForkResult::Parent { child } => wait(child, |pid| {
                    let _ = kill(pid, Signal::SIGKILL);
                }),
            }
        }
        Runtime::Runc => run_runc(spec),
    }
}

fn install_handlers() -> Result<(), String> {
    catch_stop_signals(on_signal, SaFlags::empty()).map_err(|e| format!("sigaction: {e}"))
}

/// Handle SIGINT, SIGTERM and SIGHUP with `handler`, which must be async-signal-safe (store
/// to an atomic, kill(2)). Without SA_RESTART, a blocking wait returns EINTR to look at it.
pub fn catch_stop_signals(handler: extern "C" fn(i32), flags: SaFlags) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::Handler(handler), flags, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the caller's handler is async-signal-safe (see above).
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Wait for `child`; on a signal, `stop` it (once) and keep waiting.
fn wait(child: Pid, stop: impl Fn(Pid)) -> Result<i32, String> {
    install_handlers()?;
    let mut stopped = false;
    loop {
        if SIGNALLED.load(Ordering::SeqCst) != 0 && !stopped {
            stop(child);
            stopped = true;
        }
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

fn run_runc(spec: &Spec) -> Result<i32, String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
    embedded::private_overlay(spec)?;
    let bundle = spec.scratch.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let config = runc::config(spec)?;
    let json = serde_json::to_vec_pretty(&config).map_err(|e| format!("config.json: {e}"))?;
    crate::fsutil::write_atomic(&bundle.join("config.json"), &json)
        .map_err(|e| format!("{}/config.json: {e}", bundle.display()))?;
    let state = spec.scratch.join("runc-state");
    let id = format!("buildpod-{}-{}", std::process::id(), sanitize(&spec.id));
    let runc = |args: &[&str]| {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&state).args(args);
        c
    };
    let mut child = runc(&["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .spawn()
        .map_err(|e| format!("start runc: {e} (is runc installed?)"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let code = wait(pid, |_| {
        let _ = runc(&["kill", &id, "KILL"]).status();
    });
    let _ = child.try_wait();
    let _ = runc(&["delete", "-f", &id]).output();
    code
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
