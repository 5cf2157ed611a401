//! Ctrl-C and SIGTERM for the local CLI: the signal is forwarded to the running step's
//! `sandbox-init` (which kills the container's whole process tree) and no further step starts,
//! so an interrupted build stops where it was: an export cut short tags nothing (the manifest
//! is pushed last) and the cache volume keeps the previous build's cache.
//! Without [`install`] (library use, tests) nothing here ever fires.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{kill, SaFlags, Signal};
use nix::unistd::Pid;

/// The signal received, 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The running step's sandbox-init, 0 for none.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: i32) {
    RECEIVED.store(sig, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // kill(2) is async-signal-safe.
        // SAFETY: a plain syscall on a pid we spawned.
        unsafe { libc::kill(child, sig) };
    }
}

/// Handle SIGINT, SIGTERM and SIGHUP for the rest of the process.
pub fn install() -> Result<(), nix::Error> {
    crate::sandbox::init::catch_stop_signals(on_signal, SaFlags::SA_RESTART)
}

/// The signal that interrupted this process, if any.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Forward signals to `pid` until [`Child::drop`]. A signal that arrived before is passed on
/// at once.
pub struct Child(());

impl Child {
    pub fn watch(pid: u32) -> Child {
        let pid = i32::try_from(pid).unwrap_or(0);
        CHILD.store(pid, Ordering::SeqCst);
        if let Some(sig) = received() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
        Child(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        CHILD.store(0, Ordering::SeqCst);
    }
}
