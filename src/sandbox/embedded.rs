//! The embedded sandbox, run inside the `sandbox-init` process (a fresh, single-threaded
//! re-exec of this binary): new mount, pid, ipc and uts namespaces; the image as the lower
//! layer of an overlay; pivot_root into it; volumes bound in; the container's user and group;
//! every capability dropped but the listed ones; no_new_privs; RLIMIT_NOFILE 1024; exec.
//! The host network is shared, as in a build pod.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, execve, pivot_root, sethostname, Gid, Uid};

use super::spec::{resolve_program, Spec, NOFILE};

/// Where the old root waits while volumes are bound from it; removed before exec.
const OLD_ROOT: &str = ".buildpod-oldroot";

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

fn mnt(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(src, target, fstype, flags, data).map_err(|e| err(format!("mount {target}"), e))
}

/// In the current (new) mount namespace: stop mount propagation to the host, and mount the
/// container's root (the image under a writable upper layer in the scratch dir). Both runtimes
/// start from this; the mount disappears with the namespace.
pub fn private_overlay(spec: &Spec) -> Result<std::path::PathBuf, String> {
    mnt(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    let links = spec.layer_links();
    for d in [spec.upper(), spec.work(), spec.merged(), links.clone()] {
        fs::create_dir_all(&d).map_err(|e| err(d.display(), e))?;
    }
    // The upper dir's root is the container's `/`: give it the image's mode and owner, not
    // what the caller's umask made of it.
    if let Some(top) = spec.layers.last() {
        use std::os::unix::fs::MetadataExt;
        let upper = spec.upper();
        let meta = fs::metadata(top).map_err(|e| err(top.display(), e))?;
        std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| err(upper.display(), e))?;
        fs::set_permissions(&upper, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| err(upper.display(), e))?;
    }
    for (i, layer) in spec.layers.iter().enumerate() {
        let link = links.join(i.to_string());
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(layer, &link).map_err(|e| err(link.display(), e))?;
    }
    // Paths are absolute (`Sandbox::command`), so the chdir below changes no meaning.
    let merged = spec.merged();
    let options = spec.overlay_options()?;
    let back = std::env::current_dir().map_err(|e| err("current dir", e))?;
    chdir(&links).map_err(|e| err(links.display(), e))?;
    let mounted = mnt(
        Some("overlay"),
        &merged.to_string_lossy(),
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    );
    chdir(&back).map_err(|e| err(back.display(), e))?;
    mounted?;
    Ok(merged)
}

/// Set up the container and exec its process. Runs as PID 1 of the new pid namespace.
pub fn enter(spec: &Spec) -> Result<Infallible, String> {
    let merged = private_overlay(spec)?;
    chdir(&merged).map_err(|e| err(merged.display(), e))?;
    fs::create_dir(OLD_ROOT).map_err(|e| err(format!("/{OLD_ROOT} in the image"), e))?;
    pivot_root(".", OLD_ROOT).map_err(|e| err("pivot_root", e))?;
    chdir("/").map_err(|e| err("chdir /", e))?;

    special_filesystems()?;
    for m in &spec.mounts {
        bind(
            &format!("/{OLD_ROOT}{}", m.source.display()),
            &m.destination,
            m.read_only,
        )?;
    }
    umount2(&format!("/{OLD_ROOT}")[..], MntFlags::MNT_DETACH)
        .map_err(|e| err("detach the old root", e))?;
    fs::remove_dir(format!("/{OLD_ROOT}")).map_err(|e| err("remove the old root", e))?;

    sethostname(&spec.hostname).map_err(|e| err("sethostname", e))?;
    fs::create_dir_all(&spec.cwd).map_err(|e| err(format!("working dir {}", spec.cwd), e))?;
    chdir(spec.cwd.as_str()).map_err(|e| err(format!("working dir {}", spec.cwd), e))?;
    let program = spec
        .args
        .first()
        .ok_or_else(|| "the container has no command".to_string())?;
    let path = resolve_program(Path::new("/"), program, spec.path_var())
        .ok_or_else(|| format!("{program}: executable file not found in $PATH"))?;
    drop_privileges(spec)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?}: contains a NUL byte"));
    let argv = spec
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = spec
        .env
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    execve(&cstr(&path)?, &argv, &envp).map_err(|e| err(format!("exec {path}"), e))
}

/// /proc for the new pid namespace, a small /dev with the host's harmless devices, read-only /sys.
fn special_filesystems() -> Result<(), String> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdir("/proc")?;
    mnt(Some("proc"), "/proc", Some("proc"), nosuid, None)?;
    mkdir("/dev")?;
    mnt(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        bind(
            &format!("/{OLD_ROOT}/dev/{dev}"),
            &format!("/dev/{dev}"),
            false,
        )?;
    }
    for (link, to) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(to, link).map_err(|e| err(link, e))?;
    }
    mkdir("/dev/pts")?;
    mnt(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mkdir("/dev/shm")?;
    mnt(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        nosuid,
        Some("mode=1777,size=65536k"),
    )?;
    bind(&format!("/{OLD_ROOT}/sys"), "/sys", true)
}

/// `mkdir -p` that, like runc, follows a dangling symlink in the image and creates its target.
/// The pivot has happened: absolute and `..` targets stay inside the container's root.
fn mkdir(p: &str) -> Result<(), String> {
    let mut path = std::path::PathBuf::from(p);
    for _ in 0..40 {
        match fs::read_link(&path) {
            Ok(target) if fs::metadata(&path).is_err() => {
                let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
                path = parent.join(target);
            }
            _ => return fs::create_dir_all(&path).map_err(|e| err(p, e)),
        }
    }
    Err(format!("{p}: too many levels of symbolic links"))
}

/// Bind `source` (a directory or a file) at `dest`, creating the mount point. The pivot has
/// happened, so `dest` resolves inside the container whatever symlinks the image holds.
fn bind(source: &str, dest: &str, read_only: bool) -> Result<(), String> {
    let meta = fs::metadata(source).map_err(|e| err(source, e))?;
    if meta.is_dir() {
        mkdir(dest)?;
    } else {
        if let Some(parent) = Path::new(dest).parent() {
            fs::create_dir_all(parent).map_err(|e| err(parent.display(), e))?;
        }
        if fs::symlink_metadata(dest).is_err() {
            fs::write(dest, b"").map_err(|e| err(dest, e))?;
            let _ = fs::set_permissions(dest, fs::Permissions::from_mode(0o644));
        }
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mnt(Some(source), dest, None, flags, None)?;
    if read_only {
        mnt(
            None,
            dest,
            None,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn drop_privileges(spec: &Spec) -> Result<(), String> {
    let limit = libc::rlimit {
        rlim_cur: NOFILE,
        rlim_max: NOFILE,
    };
    // SAFETY: setrlimit reads a valid, initialised struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(err("setrlimit NOFILE", std::io::Error::last_os_error()));
    }
    let keep = spec
        .capabilities
        .iter()
        .map(|c| {
            c.parse::<caps::Capability>()
                .map_err(|_| format!("unknown capability {c:?}"))
        })
        .collect::<Result<caps::CapsHashSet, _>>()?;
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, caps::CapSet::Bounding, cap).map_err(|e| err("drop capability", e))?;
        }
    }
    let u = &spec.user;
    let groups: Vec<Gid> = u
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(|e| err("setgroups", e))?;
    let gid = Gid::from_raw(u.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| err("setgid", e))?;
    let uid = Uid::from_raw(u.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| err("setuid", e))?;
    // Root keeps only the listed capabilities (effective first: it must stay within permitted);
    // for other users setuid already emptied the effective and permitted sets.
    caps::clear(None, caps::CapSet::Ambient).map_err(|e| err("clear ambient capabilities", e))?;
    if u.uid == 0 {
        for set in [
            caps::CapSet::Effective,
            caps::CapSet::Permitted,
            caps::CapSet::Inheritable,
        ] {
            caps::set(None, set, &keep).map_err(|e| err("capabilities", e))?;
        }
    } else {
        caps::clear(None, caps::CapSet::Inheritable).map_err(|e| err("capabilities", e))?;
    }
    if spec.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| err("no_new_privs", e))?;
    }
    Ok(())
}
