//! Apply a layer (tar, optionally gzip or zstd) to a directory without ever writing outside it.
//!
//! Every path is resolved inside the target with cap-std (openat2/RESOLVE_BENEATH semantics):
//! `..` components, symlinked parents that lead out, and hardlinks to outside paths all fail.
//! Existing entries are unlinked before being replaced, so a symlink planted by an earlier entry
//! is never written through.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, Permissions};
use cap_std::fs::{OpenOptionsExt as _, PermissionsExt as _};
use tar::EntryType;

/// What to do with entries named by an absolute path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbsolutePaths {
    /// Treat `/a/b` as `a/b` inside the target: image layers written by the CNB lifecycle use
    /// absolute names.
    Reroot,
    /// Refuse the archive (untrusted source archives).
    Refuse,
}

/// What `.wh.` entries (OCI whiteouts and opaque markers) mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Plain files (source archives, layer contents restored as they are).
    Keep,
    /// Delete what they name from the target: layers applied one over the other into one tree.
    Apply,
    /// Write overlayfs's form (a 0/0 character device, `trusted.overlay.opaque=y`): a layer
    /// unpacked on its own to be stacked as an overlay lower directory. Needs root.
    Overlay,
}

#[derive(Clone, Debug)]
pub struct ExtractOptions {
    pub absolute: AbsolutePaths,
    pub whiteouts: Whiteouts,
    /// Apply uid/gid from the archive (needs root). Off: files belong to the caller.
    pub same_owner: bool,
    /// Drop this many leading path components (entries with fewer are skipped).
    pub strip_components: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            absolute: AbsolutePaths::Reroot,
            whiteouts: Whiteouts::Apply,
            same_owner: nix::unistd::geteuid().is_root(),
            strip_components: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("refusing archive entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    #[error("extract {entry:?} into {}: {source}", target.display())]
    Io {
        entry: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read archive: {0}")]
    Read(#[source] io::Error),
}

/// Counts of what was applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    /// Parent directories the archive implied without listing them (created 0755, owned by
    /// the caller), shallowest first.
    pub implied_dirs: Vec<PathBuf>,
}

/// Extract only part of an archive, renamed: e.g. `cnb/lifecycle/*` of an image layer into a
/// directory of its own.
pub struct Filter<'a> {
    /// Where an entry (its cleaned relative path) goes below the target; `None` skips it.
    /// Hardlink targets are mapped too, and a link to a skipped entry is refused.
    pub map: &'a dyn Fn(&Path) -> Option<PathBuf>,
    /// Refuse symlinks unless their target is relative and has no `..`: such links, and chains
    /// of them, can only resolve below the target, so the tree stays safe wherever it is used.
    pub contained_symlinks: bool,
}

impl Filter<'_> {
    /// Everything, unchanged.
    pub const ALL: Filter<'static> = Filter {
        map: &keep_all,
        contained_symlinks: false,
    };
}

fn keep_all(p: &Path) -> Option<PathBuf> {
    Some(p.to_path_buf())
}

/// Apply a possibly compressed layer (sniffed from its first bytes) to `target`.
pub fn apply_layer(
    r: impl Read,
    target: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats, ExtractError> {
    apply_layer_filtered(r, target, opts, &Filter::ALL)
}

/// [`apply_layer`] restricted by `filter`.
pub fn apply_layer_filtered(
    r: impl Read,
    target: &Path,
    opts: &ExtractOptions,
    filter: &Filter<'_>,
) -> Result<ExtractStats, ExtractError> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().map_err(ExtractError::Read)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // Large reads of the decoder output: inflate runs in long stretches, and file data is
        // written in as few syscalls.
        let dec = flate2::bufread::MultiGzDecoder::new(br);
        apply_tar_filtered(
            BufReader::with_capacity(COPY_BUF, dec),
            target,
            opts,
            filter,
        )
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = zstd::stream::read::Decoder::with_buffer(br).map_err(ExtractError::Read)?;
        apply_tar_filtered(
            BufReader::with_capacity(COPY_BUF, dec),
            target,
            opts,
            filter,
        )
    } else {
        apply_tar_filtered(br, target, opts, filter)
    }
}

/// Apply an uncompressed tar stream to `target` (created if missing).
pub fn apply_tar(
    r: impl Read,
    target: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats, ExtractError> {
    apply_tar_filtered(r, target, opts, &Filter::ALL)
}

/// [`apply_tar`] restricted by `filter`.
pub fn apply_tar_filtered(
    r: impl Read,
    target: &Path,
    opts: &ExtractOptions,
    filter: &Filter<'_>,
) -> Result<ExtractStats, ExtractError> {
    let io_err = |entry: &str, source: io::Error| {
        // Not an errno: cap-std refusing a path that resolves outside the target (through a
        // symlink an earlier entry planted).
        if source.kind() == io::ErrorKind::PermissionDenied && source.raw_os_error().is_none() {
            return unsafe_entry(entry, &format!("{source}"));
        }
        ExtractError::Io {
            entry: entry.to_string(),
            target: target.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(target).map_err(|e| io_err("", e))?;
    let root = Dir::open_ambient_dir(target, ambient_authority()).map_err(|e| io_err("", e))?;
    let mut archive = tar::Archive::new(r);
    let mut stats = ExtractStats::default();
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    let mut buf = vec![0u8; COPY_BUF];
    for entry in archive.entries().map_err(ExtractError::Read)? {
        let mut entry = entry.map_err(ExtractError::Read)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let Some(rel) = clean_path(&raw, opts, &shown)?
            .and_then(|p| (filter.map)(&p))
            .filter(|p| is_plain_relative(p))
        else {
            continue;
        };
        let kind = entry.header().entry_type();
        let name = rel
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        if opts.whiteouts != Whiteouts::Keep && name.starts_with(b".wh.") {
            let result = if opts.whiteouts == Whiteouts::Apply {
                apply_whiteout(&root, &rel, &name, &created)
            } else {
                overlay_whiteout(&root, &rel, &name, &created, &mut stats.implied_dirs)
            };
            result.map_err(|e| io_err(&shown, e))?;
            stats.whiteouts += 1;
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        create_parents(&root, parent, &mut stats.implied_dirs).map_err(|e| io_err(&shown, e))?;
        let h = entry.header();
        // Empty numeric fields read as 0, as Go's archive/tar does (some writers leave them blank).
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0), h.gid().unwrap_or(0));
        let mtime = h.mtime().unwrap_or(0);
        match kind {
            EntryType::Directory => {
                match root.symlink_metadata(&rel) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        root.remove_file(&rel).map_err(|e| io_err(&shown, e))?;
                        root.create_dir(&rel).map_err(|e| io_err(&shown, e))?;
                    }
                    Err(_) => root.create_dir(&rel).map_err(|e| io_err(&shown, e))?,
                }
                dir_times.push((rel.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&root, &rel).map_err(|e| io_err(&shown, e))?;
                let mut f = root
                    .open_with(
                        &rel,
                        OpenOptions::new().write(true).create_new(true).mode(0o600),
                    )
                    .map_err(|e| io_err(&shown, e))?;
                stats.bytes +=
                    copy_with(&mut entry, &mut f, &mut buf).map_err(|e| io_err(&shown, e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&shown, "symlink without target"))?
                    .into_owned();
                if filter.contained_symlinks && !is_contained_link(&target) {
                    let t = String::from_utf8_lossy(&target);
                    return Err(unsafe_entry(
                        &shown,
                        &format!("symlink to {t:?} may lead outside the target (only relative targets without '..' are allowed)"),
                    ));
                }
                remove_existing(&root, &rel).map_err(|e| io_err(&shown, e))?;
                // The target is only data; resolution of later paths through it stays sandboxed.
                root.symlink_contents(std::ffi::OsStr::from_bytes(&target), &rel)
                    .map_err(|e| io_err(&shown, e))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&shown, "hardlink without target"))?
                    .into_owned();
                let link_shown = String::from_utf8_lossy(&link).into_owned();
                let Some(src) = clean_path(&link, opts, &link_shown)? else {
                    return Err(unsafe_entry(&shown, "hardlink to a stripped path"));
                };
                let Some(src) = (filter.map)(&src).filter(|p| is_plain_relative(p)) else {
                    return Err(unsafe_entry(
                        &shown,
                        &format!("hardlink to {link_shown:?}, which is not extracted"),
                    ));
                };
                remove_existing(&root, &rel).map_err(|e| io_err(&shown, e))?;
                root.hard_link(&src, &root, &rel).map_err(|e| {
                    if e.kind() == io::ErrorKind::PermissionDenied
                        || e.raw_os_error() == Some(libc::EXDEV)
                    {
                        unsafe_entry(
                            &shown,
                            &format!("hardlink to {link_shown:?} leads outside the target"),
                        )
                    } else {
                        io_err(&shown, e)
                    }
                })?;
            }
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                remove_existing(&root, &rel).map_err(|e| io_err(&shown, e))?;
                if let Err(e) = make_node(&root, &rel, kind, mode, h) {
                    // Device nodes need privileges a build rarely has; runtimes provide /dev.
                    tracing::warn!(entry = %shown, error = %e, "skipping special file");
                    continue;
                }
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => continue,
            other => {
                tracing::warn!(entry = %shown, kind = ?other, "skipping unsupported tar entry type");
                continue;
            }
        }
        if kind != EntryType::Symlink && kind != EntryType::Link {
            if opts.same_owner {
                chown(&root, &rel, uid, gid).map_err(|e| io_err(&shown, e))?;
            }
            // After chown, which clears setuid/setgid.
            root.set_permissions(&rel, Permissions::from_mode(mode))
                .map_err(|e| io_err(&shown, e))?;
            if kind != EntryType::Directory {
                set_mtime(&root, &rel, mtime).map_err(|e| io_err(&shown, e))?;
            }
        } else if opts.same_owner && kind == EntryType::Symlink {
            chown(&root, &rel, uid, gid).map_err(|e| io_err(&shown, e))?;
        }
        created.insert(rel);
        stats.entries += 1;
    }
    stats.implied_dirs.retain(|d| !created.contains(d));
    // Directory mtimes last: creating children changes them.
    for (rel, mtime) in dir_times.iter().rev() {
        let _ = set_mtime(&root, rel, *mtime);
    }
    Ok(stats)
}

/// Bytes per read of decompressed data and per write of file data.
const COPY_BUF: usize = 256 * 1024;

/// `io::copy` through `buf` (its 8 KiB buffer makes a write syscall per 8 KiB of file data).
fn copy_with(r: &mut impl Read, w: &mut impl io::Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0;
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                w.write_all(&buf[..k])?;
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn unsafe_entry(entry: &str, reason: &str) -> ExtractError {
    ExtractError::Unsafe {
        entry: entry.to_string(),
        reason: reason.to_string(),
    }
}

/// Normalise an archive path to a relative path with no `.`/`..`; `None` if it is the root or
/// was stripped away.
fn clean_path(
    raw: &[u8],
    opts: &ExtractOptions,
    shown: &str,
) -> Result<Option<PathBuf>, ExtractError> {
    if raw.starts_with(b"/") && opts.absolute == AbsolutePaths::Refuse {
        return Err(unsafe_entry(shown, "absolute path"));
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(unsafe_entry(shown, "path contains '..'")),
            c if c.contains(&0) => return Err(unsafe_entry(shown, "path contains NUL")),
            c => parts.push(c),
        }
    }
    if parts.len() <= opts.strip_components {
        return Ok(None);
    }
    let mut p = PathBuf::new();
    for c in &parts[opts.strip_components..] {
        p.push(std::ffi::OsStr::from_bytes(c));
    }
    Ok(Some(p))
}

/// A non-empty path of normal components only (what a filter may map entries to).
fn is_plain_relative(p: &Path) -> bool {
    p.components().next().is_some()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// A symlink target that cannot resolve above the directory holding the link's tree.
fn is_contained_link(target: &[u8]) -> bool {
    !target.is_empty()
        && !target.starts_with(b"/")
        && target.split(|b| *b == b'/').all(|c| c != b"..")
}

fn remove_existing(root: &Dir, rel: &Path) -> io::Result<()> {
    match root.symlink_metadata(rel) {
        Ok(m) if m.is_dir() => root.remove_dir_all(rel),
        Ok(_) => root.remove_file(rel),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Directories an archive implies but does not list get 0755, as container runtimes give them,
/// whatever the caller's umask: a 0700 `/cnb` would hide the image from its user.
fn create_parents(root: &Dir, parent: &Path, implied: &mut Vec<PathBuf>) -> io::Result<()> {
    if parent.as_os_str().is_empty() || root.is_dir(parent) {
        return Ok(());
    }
    let mut at = PathBuf::new();
    for c in parent.components() {
        at.push(c);
        match root.create_dir(&at) {
            Ok(()) => {
                root.set_permissions(&at, Permissions::from_mode(0o755))?;
                implied.push(at.clone());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A whiteout in overlayfs's form, for a layer unpacked into a directory of its own.
/// `rel` (the root when empty) as a directory handle, never through a final symlink.
fn open_dir(root: &Dir, rel: &Path) -> io::Result<Dir> {
    if rel.as_os_str().is_empty() {
        root.try_clone()
    } else {
        cap_fs_ext::DirExt::open_dir_nofollow(root, rel)
    }
}

fn overlay_whiteout(
    root: &Dir,
    rel: &Path,
    name: &[u8],
    created: &HashSet<PathBuf>,
    implied: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    create_parents(root, parent, implied)?;
    if name == b".wh..wh..opq" {
        let dir = open_dir(root, parent)?;
        // The resolved handle may be O_PATH, which takes no xattrs: reopen it for reading.
        let fd = rustix::fs::openat(
            &dir,
            ".",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )?;
        return rustix::fs::fsetxattr(
            &fd,
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(io::Error::from);
    }
    let victim = parent.join(std::ffi::OsStr::from_bytes(&name[4..]));
    // A whiteout hides lower layers only: what this layer itself wrote stays.
    if created.contains(&victim) {
        return Ok(());
    }
    remove_existing(root, &victim)?;
    rustix::fs::mknodat(
        root,
        &victim,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .map_err(io::Error::from)
}

fn apply_whiteout(
    root: &Dir,
    rel: &Path,
    name: &[u8],
    created: &HashSet<PathBuf>,
) -> io::Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    if name == b".wh..wh..opq" {
        // Opaque: hide everything from lower layers in `parent`, keep what this layer added.
        let dir = match open_dir(root, parent) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for child in dir.entries()? {
            let child = child?;
            let path = parent.join(child.file_name());
            if created.contains(&path) {
                continue;
            }
            remove_existing(root, &path)?;
        }
        return Ok(());
    }
    let victim = parent.join(std::ffi::OsStr::from_bytes(&name[4..]));
    if created.contains(&victim) {
        return Ok(());
    }
    remove_existing(root, &victim)
}

fn chown(root: &Dir, rel: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let to_id =
        |v: u64| u32::try_from(v).map_err(|_| io::Error::other(format!("id {v} out of range")));
    rustix::fs::chownat(
        root,
        rel,
        Some(rustix::fs::Uid::from_raw(to_id(uid)?)),
        Some(rustix::fs::Gid::from_raw(to_id(gid)?)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

fn set_mtime(root: &Dir, rel: &Path, mtime: u64) -> io::Result<()> {
    let t = rustix::fs::Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(0),
        tv_nsec: 0,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(root, rel, &ts, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io::Error::from)
}

fn make_node(
    root: &Dir,
    rel: &Path,
    kind: EntryType,
    mode: u32,
    h: &tar::Header,
) -> io::Result<()> {
    use rustix::fs::FileType;
    let (ft, dev) = match kind {
        EntryType::Fifo => (FileType::Fifo, 0),
        other => {
            let major = h.device_major()?.unwrap_or(0);
            let minor = h.device_minor()?.unwrap_or(0);
            let ft = if other == EntryType::Char {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            (ft, rustix::fs::makedev(major, minor))
        }
    };
    rustix::fs::mknodat(root, rel, ft, rustix::fs::Mode::from_raw_mode(mode), dev)
        .map_err(io::Error::from)
}

/// Read the whole stream to check it is a readable archive, without extracting it.
pub fn drain(mut r: impl BufRead) -> io::Result<u64> {
    io::copy(&mut r, &mut io::sink())
}
