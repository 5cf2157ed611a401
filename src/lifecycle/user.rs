//! Running buildpacks as the build user. When the lifecycle starts as root, each buildpack
//! process switches to `CNB_USER_ID`/`CNB_GROUP_ID` between fork and exec and loses every
//! capability; started as that user, it runs buildpacks as is. The syscalls sit behind a trait
//! so the sequence is unit-tested without root.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid};

/// The privileged operations, in the order [`drop_privileges`] calls them.
pub trait Syscalls: Send + Sync {
    fn clear_ambient_caps(&self) -> io::Result<()>;
    fn drop_bounding_cap(&self, cap: Capability) -> io::Result<()>;
    fn setgroups(&self, gid: u32) -> io::Result<()>;
    fn setresgid(&self, gid: u32) -> io::Result<()>;
    fn setresuid(&self, uid: u32) -> io::Result<()>;
    /// Clears the permitted, effective and inheritable sets.
    fn clear_caps(&self) -> io::Result<()>;
    fn set_no_new_privs(&self) -> io::Result<()>;
}

/// Drops to `uid:gid` with no capabilities. Bounding and ambient sets first (that needs
/// CAP_SETPCAP, gone after setuid), groups and gid before uid (setgid needs root), then make
/// sure nothing is left and that exec cannot regain privileges (setuid binaries, file caps).
/// Runs in a forked child: must not allocate, so errors are raw OS errors.
pub fn drop_privileges(
    sys: &dyn Syscalls,
    uid: u32,
    gid: u32,
    bounding: &[Capability],
) -> io::Result<()> {
    sys.clear_ambient_caps()?;
    for cap in bounding {
        sys.drop_bounding_cap(*cap)?;
    }
    sys.setgroups(gid)?;
    sys.setresgid(gid)?;
    sys.setresuid(uid)?;
    sys.clear_caps()?;
    sys.set_no_new_privs()
}

fn os_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The real syscalls (nix and caps).
pub struct RealSyscalls;

impl Syscalls for RealSyscalls {
    fn clear_ambient_caps(&self) -> io::Result<()> {
        caps::clear(None, CapSet::Ambient).map_err(|_| io::Error::last_os_error())
    }
    fn drop_bounding_cap(&self, cap: Capability) -> io::Result<()> {
        caps::drop(None, CapSet::Bounding, cap).map_err(|_| io::Error::last_os_error())
    }
    fn setgroups(&self, gid: u32) -> io::Result<()> {
        nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(os_err)
    }
    fn setresgid(&self, gid: u32) -> io::Result<()> {
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(os_err)
    }
    fn setresuid(&self, uid: u32) -> io::Result<()> {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(os_err)
    }
    fn clear_caps(&self) -> io::Result<()> {
        caps::clear(None, CapSet::Inheritable).map_err(|_| io::Error::last_os_error())?;
        caps::clear(None, CapSet::Permitted).map_err(|_| io::Error::last_os_error())
    }
    fn set_no_new_privs(&self) -> io::Result<()> {
        nix::sys::prctl::set_no_new_privs().map_err(os_err)
    }
}

/// Who buildpacks run as.
#[derive(Clone)]
pub enum RunAs {
    /// Already the build user (or root with no build user configured): run as is.
    Current,
    /// Root dropping to a build user in each buildpack process.
    Drop {
        uid: u32,
        gid: u32,
        sys: Arc<dyn Syscalls>,
        /// Bounding-set capabilities to drop, listed before fork (no allocation after).
        bounding: Arc<Vec<Capability>>,
    },
}

impl RunAs {
    /// Decides from our effective uid and the configured build user.
    pub fn decide(euid: u32, uid: u32, gid: u32, sys: Arc<dyn Syscalls>) -> Self {
        if euid != 0 || uid == 0 {
            return RunAs::Current;
        }
        let bounding = caps::runtime::thread_all_supported()
            .into_iter()
            .filter(|c| caps::has_cap(None, CapSet::Bounding, *c).unwrap_or(false))
            .collect();
        RunAs::Drop {
            uid,
            gid,
            sys,
            bounding: Arc::new(bounding),
        }
    }

    pub fn from_env(uid: u32, gid: u32) -> Self {
        Self::decide(Uid::effective().as_raw(), uid, gid, Arc::new(RealSyscalls))
    }

    /// Makes `cmd` drop privileges in the child before exec.
    pub fn configure(&self, cmd: &mut Command) {
        if let RunAs::Drop {
            uid,
            gid,
            sys,
            bounding,
        } = self
        {
            let (uid, gid, sys, bounding) = (*uid, *gid, sys.clone(), bounding.clone());
            // SAFETY: the closure only makes syscalls and touches data allocated before fork.
            unsafe {
                cmd.pre_exec(move || drop_privileges(sys.as_ref(), uid, gid, &bounding));
            }
        }
    }

    /// Hands a path the lifecycle created to the build user, so buildpacks can write to it.
    pub fn give(&self, path: &Path) -> io::Result<()> {
        if let RunAs::Drop { uid, gid, .. } = self {
            std::os::unix::fs::lchown(path, Some(*uid), Some(*gid))?;
        }
        Ok(())
    }
}

/// The home dir of `uid` in passwd-format `text` (read by hand: no NSS in a static binary).
pub fn home_for(uid: u32, text: &str) -> Option<String> {
    passwd_entry(uid, text).map(|(_, home)| home)
}

/// The user name and home dir of `uid` in passwd-format `text`.
pub fn passwd_entry(uid: u32, text: &str) -> Option<(String, String)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

impl RunAs {
    /// Buildpacks dropped to the build user get that user's HOME, not root's (when known).
    pub fn adjust_env(&self, env: &mut super::env::Env) {
        if let RunAs::Drop { uid, .. } = self {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            if let Some(home) = home_for(*uid, &passwd) {
                env.set("HOME", home);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Record {
        fn push(&self, s: String) -> io::Result<()> {
            self.0.lock().unwrap().push(s);
            Ok(())
        }
    }

    impl Syscalls for Record {
        fn clear_ambient_caps(&self) -> io::Result<()> {
            self.push("ambient".into())
        }
        fn drop_bounding_cap(&self, cap: Capability) -> io::Result<()> {
            self.push(format!("bounding {cap}"))
        }
        fn setgroups(&self, gid: u32) -> io::Result<()> {
            self.push(format!("setgroups {gid}"))
        }
        fn setresgid(&self, gid: u32) -> io::Result<()> {
            self.push(format!("setresgid {gid}"))
        }
        fn setresuid(&self, uid: u32) -> io::Result<()> {
            self.push(format!("setresuid {uid}"))
        }
        fn clear_caps(&self) -> io::Result<()> {
            self.push("clear".into())
        }
        fn set_no_new_privs(&self) -> io::Result<()> {
            self.push("nnp".into())
        }
    }

    #[test]
    fn home_from_passwd() {
        let text = "root:x:0:0:root:/root:/bin/bash\ncnb:x:1000:1000::/home/cnb:/bin/sh\n";
        assert_eq!(home_for(1000, text).as_deref(), Some("/home/cnb"));
        assert_eq!(home_for(7, text), None);
    }

    #[test]
    fn drops_in_safe_order() {
        let r = Record::default();
        drop_privileges(&r, 1000, 1001, &[Capability::CAP_CHOWN]).unwrap();
        assert_eq!(
            *r.0.lock().unwrap(),
            [
                "ambient",
                "bounding CAP_CHOWN",
                "setgroups 1001",
                "setresgid 1001",
                "setresuid 1000",
                "clear",
                "nnp"
            ]
        );
    }

    #[test]
    fn runs_as_is_when_not_root_or_no_user() {
        let sys: Arc<dyn Syscalls> = Arc::new(Record::default());
        assert!(matches!(
            RunAs::decide(1000, 1000, 1000, sys.clone()),
            RunAs::Current
        ));
        assert!(matches!(
            RunAs::decide(0, 0, 0, sys.clone()),
            RunAs::Current
        ));
        assert!(matches!(
            RunAs::decide(0, 1000, 1000, sys),
            RunAs::Drop { uid: 1000, .. }
        ));
    }
}
