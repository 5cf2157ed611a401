//! Directory snapshots for equality checks across tools (ours, umoci, tar, runc).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::tools::sha256_file;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        sha256: String,
        size: u64,
    },
    Symlink {
        target: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Keyed by path relative to the root, `/`-separated; the root itself is not included.
    pub nodes: BTreeMap<String, Node>,
    /// Paths sharing an inode, groups of size ≥ 2.
    pub hardlink_groups: BTreeSet<BTreeSet<String>>,
}

impl Snapshot {
    /// Human-readable differences, empty when equal; use in assertion messages.
    pub fn diff(&self, other: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let keys: BTreeSet<&String> = self.nodes.keys().chain(other.nodes.keys()).collect();
        for k in keys {
            match (self.nodes.get(k), other.nodes.get(k)) {
                (Some(a), Some(b)) if a != b => out.push(format!("{k}: {a:?} != {b:?}")),
                (Some(_), None) => out.push(format!("{k}: only on the left")),
                (None, Some(_)) => out.push(format!("{k}: only on the right")),
                _ => {}
            }
        }
        if self.hardlink_groups != other.hardlink_groups {
            out.push(format!(
                "hardlinks: {:?} != {:?}",
                self.hardlink_groups, other.hardlink_groups
            ));
        }
        out
    }

    /// Panics listing the differences unless the snapshots are equal.
    pub fn assert_same(&self, other: &Snapshot) {
        let d = self.diff(other);
        assert!(d.is_empty(), "trees differ:\n  {}", d.join("\n  "));
    }
}

/// Snapshots `root` without following symlinks; modes are `st_mode & 0o7777`.
pub fn snapshot(root: &Path) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut inodes: BTreeMap<(u64, u64), BTreeSet<String>> = BTreeMap::new();
    walk(root, "", &mut snap.nodes, &mut inodes);
    snap.hardlink_groups = inodes.into_values().filter(|g| g.len() >= 2).collect();
    snap
}

fn walk(
    dir: &Path,
    rel: &str,
    nodes: &mut BTreeMap<String, Node>,
    inodes: &mut BTreeMap<(u64, u64), BTreeSet<String>>,
) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let md =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let mode = md.permissions().mode() & 0o7777;
        let ft = md.file_type();
        if ft.is_symlink() {
            let target =
                fs::read_link(&path).unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()));
            let target = target.to_string_lossy().into_owned();
            nodes.insert(key, Node::Symlink { target });
        } else if ft.is_dir() {
            nodes.insert(key.clone(), Node::Dir { mode });
            walk(&path, &key, nodes, inodes);
        } else if ft.is_file() {
            if md.nlink() > 1 {
                inodes
                    .entry((md.dev(), md.ino()))
                    .or_default()
                    .insert(key.clone());
            }
            let sha256 = sha256_file(&path);
            let size = md.len();
            nodes.insert(key, Node::File { mode, sha256, size });
        } else {
            panic!("unsupported file type at {}: {ft:?}", path.display());
        }
    }
}

/// Relative path of the >100-char file in [`make_sample_tree`].
pub fn sample_long_path() -> String {
    format!("long/{}/{}.txt", "d".repeat(60), "f".repeat(60))
}

/// Writes a tree exercising what tar/OCI layers must preserve: nested and empty dirs, modes
/// 0644/0755/0600 and a 0700 dir (no setuid), relative, dangling and >100-char symlinks, a
/// hardlink pair, a >100-char path, a unicode name, a zero-byte file and a 1 MiB file.
/// Modes are set explicitly, so the result does not depend on the umask.
pub fn make_sample_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    let file = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod file");
    };
    fs::create_dir_all(root).expect("create sample root");

    file("a/b/c/deep.txt", b"deep\n", 0o644);
    file("bin/run.sh", b"#!/bin/sh\necho hello\n", 0o755);
    file("etc/secret.conf", b"token=not-really\n", 0o600);
    file("private/inside.txt", b"private\n", 0o644);
    file("empty-file", b"", 0o644);
    file(&sample_long_path(), b"long path\n", 0o644);
    file(
        "unicode/h\u{e9}llo-w\u{f6}rld-\u{65e5}\u{672c}.txt",
        b"unicode\n",
        0o644,
    );
    file("hard/one", b"hardlinked content\n", 0o644);
    fs::hard_link(root.join("hard/one"), root.join("hard/two")).expect("hardlink");
    fs::create_dir_all(root.join("empty")).expect("create empty dir");

    // Deterministic, poorly compressible 1 MiB (xorshift), so compression paths get real work.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    file("big.bin", &big, 0o644);

    symlink("a/b/c/deep.txt", root.join("link-rel")).expect("symlink");
    symlink("../bin/run.sh", root.join("a/link-up")).expect("symlink");
    symlink("does/not/exist", root.join("dangling")).expect("symlink");
    symlink(sample_long_path(), root.join("long-link")).expect("symlink");

    for d in [
        "a", "a/b", "a/b/c", "bin", "etc", "empty", "long", "unicode", "hard",
    ] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    let long_dir = root.join("long").join("d".repeat(60));
    fs::set_permissions(long_dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700))
        .expect("chmod dir");
}
