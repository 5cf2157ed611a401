//! A minimal app-image rootfs for running the launcher for real: busybox (static) for the
//! shell tools, bash for shell processes, the launcher at `/cnb/lifecycle/launcher` with
//! `/cnb/process/<type>` symlinks, `/layers` and `/workspace`. Runs it under `chroot` and
//! under `runc`.
//!
//! bash and the test build of the launcher are dynamically linked, so each is copied in with
//! exactly the libraries `ldd` names. A static release build of the launcher inside the test
//! would take minutes; the copied libraries make the rootfs self-contained all the same, and
//! the same rootfs then works for chroot and runc alike.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub struct Rootfs {
    dir: tempfile::TempDir,
}

/// What the launcher (or the process it became) did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Rootfs {
    pub fn new() -> Self {
        let r = Rootfs {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for d in [
            "bin",
            "proc",
            "dev",
            "sys",
            "tmp",
            "home/app",
            "cnb/process",
            "cnb/lifecycle",
        ] {
            fs::create_dir_all(r.path(d)).unwrap();
        }
        // exec.d programs get /dev/null as stdin; runc makes its own /dev, chroot needs this.
        nix::sys::stat::mknod(
            &r.path("dev/null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod /dev/null (needs root)");
        fs::copy("/bin/busybox", r.path("bin/busybox"))
            .expect("busybox-static is installed by ci/test");
        for applet in ["sh", "echo", "printf", "pwd", "cat", "env", "ls", "true"] {
            symlink("busybox", r.path("bin").join(applet)).unwrap();
        }
        r.copy_binary(Path::new("/bin/bash"), "bin/bash");
        r.copy_binary(
            Path::new(env!("CARGO_BIN_EXE_launcher")),
            "cnb/lifecycle/launcher",
        );
        r
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the rootfs, `rel` relative to its `/`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    pub fn write(&self, rel: &str, body: &str) {
        self.write_mode(rel, body, 0o644);
    }

    pub fn write_exec(&self, rel: &str, body: &str) {
        self.write_mode(rel, body, 0o755);
    }

    fn write_mode(&self, rel: &str, body: &str, mode: u32) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.path(rel)).unwrap();
    }

    /// `/cnb/process/<t>` → `/cnb/lifecycle/launcher`, as the exporter lays them out.
    pub fn process_link(&self, t: &str) {
        symlink("/cnb/lifecycle/launcher", self.path("cnb/process").join(t)).unwrap();
    }

    /// Copies `host` to `rel` and every library `ldd` lists to its own path in the rootfs.
    fn copy_binary(&self, host: &Path, rel: &str) {
        let dst = self.path(rel);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(host, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", host.display()));
        copy_libraries(host, self.root());
    }

    /// Runs `argv` (an absolute path in the rootfs first) under `chroot` with exactly `env`.
    pub fn chroot(&self, argv: &[&str], env: &[(&str, &str)]) -> Run {
        // A binary copied in moments ago can still be open for writing in a child another test
        // thread forked meanwhile (until that child execs): ETXTBSY. Retry briefly.
        for _ in 0..20 {
            // The child's env is cleared, so chroot is found with ours.
            let out = Command::new(host_tool("chroot"))
                .arg(self.root())
                .args(argv)
                .env_clear()
                .envs(env.iter().copied())
                .current_dir("/")
                .output()
                .expect("run chroot");
            let run = Run::from(out);
            if !run.err.contains("Text file busy") {
                return run;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("chroot {argv:?}: still 'Text file busy' after retries");
    }

    /// Runs `argv` as the process of a runc container on this rootfs (pid, mount, ipc and uts
    /// namespaces; no terminal; rlimits within the host's) and returns its result.
    pub fn runc(&self, id: &str, argv: &[&str], env: &[(&str, &str)]) -> Run {
        let bundle = tempfile::tempdir().unwrap();
        let state = bundle.path().join("state");
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": argv,
                "env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"],
                    "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"],
                    "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": self.root(), "readonly": false},
            "hostname": "launcher-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        fs::write(
            bundle.path().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let id = format!("{id}-{}", std::process::id());
        let out = Command::new(host_tool("runc"))
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run runc");
        // `runc run` deletes the container when its process exits; this is only a safety net.
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(["delete", "-f", &id])
            .output();
        Run::from(out)
    }
}

/// Copies every library `ldd` lists for `binary` to its own path under `root` (a static
/// binary makes ldd fail with "not a dynamic executable": nothing to copy).
pub fn copy_libraries(binary: &Path, root: &Path) {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let lib = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(lib) = lib.filter(|l| l.starts_with('/')) {
            let to = root.join(lib.trim_start_matches('/'));
            if !to.exists() {
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::copy(lib, &to).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
            }
        }
    }
}

/// `tool` on this host's PATH (sbin dirs included, where chroot and runc live).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

fn host_tool(tool: &str) -> PathBuf {
    find_tool(tool).unwrap_or_else(|| panic!("{tool} is not installed (ci/test installs it)"))
}

pub fn have(tool: &str) -> bool {
    find_tool(tool).is_some()
}
