//! Privileges of the image phases (analyzer, restorer, exporter, rebaser): hand the dirs
//! they write to the build user, then become that user in-process (`cnb-lifecycle.md` §2.3).
//! Unlike buildpack processes, these phases keep supplementary groups, as the Go lifecycle does.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Gid, Uid};

/// `EnsureOwner`: for each existing path not already writable by `uid:gid`, chown it and
/// everything below it (symlinks themselves, never their targets).
pub fn ensure_owner(uid: u32, gid: u32, paths: &[&Path]) -> io::Result<()> {
    for p in paths {
        let Ok(meta) = fs::symlink_metadata(p) else {
            continue;
        };
        if writable_by(&meta, uid, gid) {
            continue;
        }
        chown_tree(p, uid, gid)?;
    }
    Ok(())
}

fn writable_by(meta: &fs::Metadata, uid: u32, gid: u32) -> bool {
    let mode = meta.mode();
    meta.uid() == uid || (meta.gid() == gid && mode & 0o020 != 0) || mode & 0o002 != 0
}

fn chown_tree(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .map_err(|e| io::Error::new(e.kind(), format!("chown {}: {e}", p.display())))?;
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        for e in fs::read_dir(p)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// `RunAs`: become `uid:gid` unless we already are (a no-op for uid 0, i.e. no build user).
pub fn run_as(uid: u32, gid: u32) -> io::Result<()> {
    if Uid::current().as_raw() == uid && Gid::current().as_raw() == gid {
        return Ok(());
    }
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g)
        .map_err(|e| io::Error::other(format!("set group id {gid}: {e}")))?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(|e| io::Error::other(format!("set user id {uid}: {e}")))
}
