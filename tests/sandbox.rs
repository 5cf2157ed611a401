//! The container sandbox: the same Spec under the embedded sandbox and under runc gives the same
//! view (user, groups, hostname, capabilities, limits, mounts, exit code), never writes to the
//! image, keeps volume mounts inside the container whatever symlinks the image holds, and dies
//! with its process tree on SIGTERM.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use buildpod::sandbox::{Mount, Runtime, Sandbox, Spec, User};

fn sandbox(runtime: Runtime) -> Sandbox {
    Sandbox {
        program: PathBuf::from(env!("CARGO_BIN_EXE_buildpod")),
        runtime,
    }
}

/// A busybox root with a few applets; `extra` adds entries (e.g. hostile symlinks).
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in [
        "sh", "id", "ls", "cat", "echo", "hostname", "touch", "sleep", "grep",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    root
}

fn spec(dir: &Path, root: &Path, name: &str, script: &str, mounts: Vec<Mount>) -> Spec {
    let scratch = dir.join(format!("scratch-{name}"));
    std::fs::create_dir_all(&scratch).unwrap();
    Spec {
        id: name.to_string(),
        layers: vec![root.to_path_buf()],
        scratch,
        args: vec!["sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into(), "GREETING=hello".into()],
        cwd: "/work/dir".into(),
        user: User {
            uid: 1000,
            gid: 1001,
            additional_gids: vec![5],
        },
        hostname: "pod-x".into(),
        mounts,
        capabilities: vec![],
        no_new_privileges: true,
    }
}

fn run(rt: Runtime, spec: &Spec) -> Output {
    let mut cmd = sandbox(rt).command(spec).unwrap();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PROBE: &str = "id; hostname; pwd; echo $GREETING; ulimit -n; \
    grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; echo pid=$$; \
    cat /vol/in; echo written > /vol/out; touch /tmp/scratch-file; ls /; exit 7";

#[test]
fn embedded_and_runc_give_the_container_the_same_view() {
    if support::tools::which("runc").is_none() || !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root and runc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let mut outputs = Vec::new();
    for rt in [Runtime::Embedded, Runtime::Runc] {
        let vol = dir.path().join(format!("vol-{rt:?}"));
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("in"), "from the host\n").unwrap();
        nix::unistd::chown(&vol, Some(1000.into()), None).unwrap();
        let mounts = vec![Mount {
            source: vol.clone(),
            destination: "/vol".into(),
            read_only: false,
        }];
        let s = spec(dir.path(), &root, &format!("probe-{rt:?}"), PROBE, mounts);
        let out = run(rt, &s);
        assert_eq!(out.status.code(), Some(7), "{rt:?}: {}", text(&out.stderr));
        assert_eq!(
            std::fs::read_to_string(vol.join("out")).unwrap(),
            "written\n"
        );
        // Writes land in the scratch upper layer, never in the image.
        assert!(s.upper().join("tmp/scratch-file").exists());
        assert!(!root.join("tmp/scratch-file").exists());
        outputs.push(text(&out.stdout));
    }
    let expected = "uid=1000 gid=1001 groups=5\npod-x\n/work/dir\nhello\n1024\n\
        CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\npid=1\n\
        from the host\n";
    assert!(
        outputs[0].starts_with(expected),
        "embedded:\n{}",
        outputs[0]
    );
    assert_eq!(outputs[0], outputs[1], "embedded vs runc");
    // No mount of the run is left behind on the host.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.path().to_str().unwrap()), "{mounts}");
}

#[test]
fn a_volume_under_a_hostile_symlink_stays_inside_the_container() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    // The image points its mount point at a host directory, absolutely and via `..`.
    let target = dir.path().join("host-target");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, root.join("workspace")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../../../../..{}", target.display()),
        root.join("layers"),
    )
    .unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let mounts = ["/workspace", "/layers"]
        .into_iter()
        .map(|d| Mount {
            source: vol.clone(),
            destination: d.into(),
            read_only: false,
        })
        .collect();
    let mut s = spec(
        dir.path(),
        &root,
        "hostile",
        "echo in > /workspace/x",
        mounts,
    );
    s.user = User {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
    };
    let out = run(Runtime::Embedded, &s);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "host dir written"
    );
    assert_eq!(std::fs::read_to_string(vol.join("x")).unwrap(), "in\n");
}

#[test]
fn a_missing_program_and_a_bad_capability_are_clear_errors() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let mut s = spec(dir.path(), &root, "missing", "", vec![]);
    s.args = vec!["no-such-program".into()];
    let out = run(Runtime::Embedded, &s);
    assert_eq!(out.status.code(), Some(128));
    assert_eq!(
        text(&out.stderr),
        "sandbox: container missing: no-such-program: executable file not found in $PATH\n"
    );
    let mut s = spec(dir.path(), &root, "badcap", "true", vec![]);
    s.capabilities = vec!["CAP_NOPE".into()];
    let out = run(Runtime::Embedded, &s);
    assert_eq!(out.status.code(), Some(128));
    assert!(text(&out.stderr).contains("unknown capability \"CAP_NOPE\""));
}

#[test]
fn root_keeps_only_the_listed_capabilities() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let mut s = spec(
        dir.path(),
        &root,
        "caps",
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        vec![],
    );
    s.user = User {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
    };
    s.capabilities = vec!["CAP_CHOWN".into(), "CAP_SETUID".into()];
    let out = run(Runtime::Embedded, &s);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // CAP_CHOWN is bit 0, CAP_SETUID bit 7.
    assert_eq!(
        text(&out.stdout),
        "CapEff:\t0000000000000081\nCapBnd:\t0000000000000081\n"
    );
}

#[test]
fn sigterm_kills_the_whole_container() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = rootfs(dir.path());
    let vol = dir.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let mounts = vec![Mount {
        source: vol.clone(),
        destination: "/vol".into(),
        read_only: false,
    }];
    // The shell (PID 1) ignores TERM; a child sleeps. Both must go.
    let mut s = spec(
        dir.path(),
        &root,
        "sleeper",
        "trap '' TERM; sleep 300 & echo started > /vol/started; wait",
        mounts,
    );
    s.user = User {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
    };
    let mut child = sandbox(Runtime::Embedded)
        .command(&s)
        .unwrap()
        .spawn()
        .unwrap();
    while !vol.join("started").exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
}
