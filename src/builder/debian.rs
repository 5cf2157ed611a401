//! The `debian` stack: Debian build and run images made from two root filesystems that
//! `images/stacks/debian/rootfs` (debootstrap + apt, as root) produces and that are cached by
//! a key of what goes into them. The run image is one layer (minbase + the run packages); the
//! build image is that same layer plus the build packages, captured as an overlayfs upper
//! directory (whiteouts become `.wh.` entries). Every entry keeps its owner and mode, takes the
//! CNB mtime, and the configs a fixed `created`, so one cached tree always gives the same digests.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub use super::stack::Stage;
use super::stack::{base_config, LABEL_STACK_ID};
use super::Error;
use crate::layer::{CompressOptions, Compression, TarOptions, TarWriter};
use crate::oci::assemble::{push_layer, write_manifest, StoredLayer};
use crate::oci::copy::{copy_blobs, CopyOptions, CopyStats};
use crate::oci::{media, BlobStore, ImageConfig, RawManifest};

/// `images/stacks/debian/stack.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub id: String,
    pub description: String,
    pub maintainer: String,
    pub homepage: String,
    /// The Debian suite (`bookworm`).
    pub suite: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub run_packages: Vec<String>,
    pub build_packages: Vec<String>,
}

/// Debian package names (policy §5.6.1), and a user name that is safe in /etc/passwd.
fn valid_package(p: &str) -> bool {
    p.len() >= 2
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Definition {
    pub fn parse(text: &str, what: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::resource("stack definition", what, reason);
        let d: Definition = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if d.uid == 0 || d.gid == 0 {
            return Err(bad("the CNB user must not be root".into()));
        }
        if !valid_name(&d.user) {
            return Err(bad(format!("invalid user name {:?}", d.user)));
        }
        if !valid_name(&d.suite) {
            return Err(bad(format!("invalid suite {:?}", d.suite)));
        }
        if d.run_packages.is_empty() {
            return Err(bad("run_packages is empty".into()));
        }
        let all = d.run_packages.iter().chain(&d.build_packages);
        if let Some(p) = all.clone().find(|p| !valid_package(p)) {
            return Err(bad(format!("invalid package name {p:?}")));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(p) = all.clone().find(|p| !seen.insert(p.as_str())) {
            return Err(bad(format!("package {p:?} is listed twice")));
        }
        Ok(d)
    }

    /// The cache key of the root filesystems: everything the rootfs script is given, and the
    /// script itself (not the labels, which only go into the configs).
    pub fn rootfs_key(&self, script: &[u8]) -> String {
        let text = format!(
            "suite={}\nuser={}:{}:{}\nrun={}\nbuild={}\nscript={}\n",
            self.suite,
            self.user,
            self.uid,
            self.gid,
            self.run_packages.join(" "),
            self.build_packages.join(" "),
            hex::encode(Sha256::digest(script)),
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..12])
    }

    /// Mixins as Paketo's stacks declare them: the run packages on both images, the build
    /// packages as `build:<name>` on the build image.
    pub fn mixins(&self, stage: Stage) -> Vec<String> {
        let mut m: Vec<String> = self.run_packages.clone();
        if stage == Stage::Build {
            m.extend(self.build_packages.iter().map(|p| format!("build:{p}")));
        }
        m.sort();
        m
    }
}

/// The cached root filesystems: `run/` and the build stage's overlay upper `build/`.
#[derive(Clone, Debug)]
pub struct Rootfs {
    pub dir: PathBuf,
    /// False when this call found them in the cache.
    pub built: bool,
}

impl Rootfs {
    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    pub fn build(&self) -> PathBuf {
        self.dir.join("build")
    }
}

/// Marks a complete cache entry (written last, before the rename into place).
const COMPLETE: &str = "complete";

/// The root filesystems for `def` under `cache/<key>`: made by `script` (as root) unless there.
/// An exclusive lock on `cache/<key>.lock` makes parallel callers wait for one build; a build
/// that fails leaves nothing under `<key>`. Entries of other keys not in use are removed.
pub fn ensure_rootfs(def: &Definition, script: &Path, cache: &Path) -> Result<Rootfs, Error> {
    let err = |what: &str, e: io::Error| {
        Error::resource("stack", &def.id, format!("{what} {}: {e}", cache.display()))
    };
    let script_bytes = fs::read(script).map_err(|e| {
        Error::resource("stack", &def.id, format!("read {}: {e}", script.display()))
    })?;
    let key = def.rootfs_key(&script_bytes);
    fs::create_dir_all(cache).map_err(|e| err("create", e))?;
    let _lock = lock(&cache.join(format!("{key}.lock")), true).map_err(|e| err("lock in", e))?;
    let dir = cache.join(&key);
    if dir.join(COMPLETE).is_file() {
        tracing::info!(dir = %dir.display(), "root filesystems cached");
        return Ok(Rootfs { dir, built: false });
    }
    let tmp = cache.join(format!("{key}.tmp"));
    let log = cache.join(format!("{key}.log"));
    remove_tree(&tmp).map_err(|e| err("clean", e))?;
    remove_tree(&dir).map_err(|e| err("clean", e))?;
    tracing::info!(script = %script.display(), log = %log.display(), "making the root filesystems (debootstrap, apt)");
    let log_file = File::create(&log).map_err(|e| err("create log in", e))?;
    let log_err = log_file.try_clone().map_err(|e| err("log in", e))?;
    let status = Command::new(script)
        .arg(&tmp)
        .env("SUITE", &def.suite)
        .env("RUN_PACKAGES", def.run_packages.join(" "))
        .env("BUILD_PACKAGES", def.build_packages.join(" "))
        .env("CNB_USER", &def.user)
        .env("CNB_UID", def.uid.to_string())
        .env("CNB_GID", def.gid.to_string())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .status()
        .map_err(|e| Error::resource("stack", &def.id, format!("run {}: {e}", script.display())))?;
    if !status.success() {
        // Keep the log; drop the partial trees (debootstrap output is large).
        let _ = remove_tree(&tmp);
        return Err(Error::resource(
            "stack",
            &def.id,
            format!(
                "{} failed ({status}); its log {} ends with:\n{}",
                script.display(),
                log.display(),
                tail(&log, 20)
            ),
        ));
    }
    for d in ["run", "build"] {
        if !tmp.join(d).is_dir() {
            return Err(Error::resource(
                "stack",
                &def.id,
                format!("{} made no {d}/ in {}", script.display(), tmp.display()),
            ));
        }
    }
    fs::write(tmp.join(COMPLETE), format!("{key}\n")).map_err(|e| err("write in", e))?;
    fs::rename(&tmp, &dir).map_err(|e| err("rename in", e))?;
    prune(cache, &key);
    Ok(Rootfs { dir, built: true })
}

fn lock(path: &Path, wait: bool) -> io::Result<Flock<File>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let arg = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    Flock::lock(f, arg).map_err(|(_, e)| io::Error::from(e))
}

fn remove_tree(p: &Path) -> io::Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The last `n` lines of a file, for an error message.
fn tail(p: &Path, n: usize) -> String {
    let text = fs::read(p).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Remove the cache entries of other keys that no one holds locked (each is ~1.5 GB).
fn prune(cache: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_suffix(".lock") else {
            continue;
        };
        if key == keep {
            continue;
        }
        if let Ok(_held) = lock(&e.path(), false) {
            tracing::info!(key, "removing an unused cached root filesystem");
            let _ = remove_tree(&cache.join(key));
            let _ = remove_tree(&cache.join(format!("{key}.tmp")));
            let _ = fs::remove_file(cache.join(format!("{key}.log")));
            let _ = fs::remove_file(e.path());
        }
    }
}

/// What to build the images from.
#[derive(Clone, Debug)]
pub struct StackSpec {
    pub definition: Definition,
    pub rootfs: Rootfs,
    pub arch: String,
    pub compression: Compression,
}

/// The two images written.
#[derive(Clone, Debug)]
pub struct BuiltStack {
    pub build: RawManifest,
    pub run: RawManifest,
    /// The run image's layer, also the build image's first.
    pub run_layer: StoredLayer,
    pub build_layer: StoredLayer,
}

/// Write the run image to `run_store` under `run_tags`, the build image to `build_store`.
pub fn build_stack(
    spec: &StackSpec,
    build_store: &dyn BlobStore,
    build_tags: &[String],
    run_store: &dyn BlobStore,
    run_tags: &[String],
) -> Result<BuiltStack, Error> {
    let d = &spec.definition;
    let io_err = |e: io::Error| Error::resource("stack", &d.id, e.to_string());
    let (run_dir, build_dir) = (spec.rootfs.run(), spec.rootfs.build());
    let distro = os_release(&run_dir).map_err(io_err)?;
    let run_items = walk(&run_dir).map_err(io_err)?;
    let build_items = walk(&build_dir).map_err(io_err)?;
    let tar = TarOptions {
        owners_from_disk: true,
        ..Default::default()
    };
    let compress = CompressOptions::new(spec.compression);
    let run_layer = push_layer(run_store, &tar, &compress, media::OCI_MANIFEST, &|t| {
        write_items(t, &run_items)
    })?;
    // The same blob in the build image's store (skipped or mounted where possible).
    copy_blobs(
        run_store,
        build_store,
        &[run_layer.descriptor()],
        &CopyOptions::default(),
        &mut CopyStats::default(),
    )?;
    let build_layer = push_layer(build_store, &tar, &compress, media::OCI_MANIFEST, &|t| {
        write_items(t, &build_items)
    })?;
    let run_history = format!(
        "buildpod stack debian: {} minbase + {}",
        d.suite,
        d.run_packages.join(" ")
    );
    let build_history = format!("buildpod stack debian: + {}", d.build_packages.join(" "));

    let mut run_cfg = config(spec, &distro, Stage::Run);
    run_cfg.push_layer(&run_layer.info.diff_id, Some(&run_history));
    let run = write_manifest(
        run_store,
        &run_cfg,
        vec![run_layer.descriptor()],
        media::OCI_MANIFEST,
        run_tags,
    )?;
    let mut build_cfg = config(spec, &distro, Stage::Build);
    build_cfg.push_layer(&run_layer.info.diff_id, Some(&run_history));
    build_cfg.push_layer(&build_layer.info.diff_id, Some(&build_history));
    let build = write_manifest(
        build_store,
        &build_cfg,
        vec![run_layer.descriptor(), build_layer.descriptor()],
        media::OCI_MANIFEST,
        build_tags,
    )?;
    Ok(BuiltStack {
        build,
        run,
        run_layer,
        build_layer,
    })
}

/// `ID` and `VERSION_ID` of the tree's os-release (`usr/lib/os-release`, which Debian's
/// `/etc/os-release` links to).
fn os_release(root: &Path) -> io::Result<(String, String)> {
    let p = root.join("usr/lib/os-release");
    let text = fs::read_to_string(&p)
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", p.display())))?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    Ok((field("ID"), field("VERSION_ID")))
}

fn config(spec: &StackSpec, (distro, version): &(String, String), stage: Stage) -> ImageConfig {
    let d = &spec.definition;
    let stack = (d.id.as_str(), d.user.as_str(), d.uid, d.gid);
    let mut cfg = base_config(&spec.arch, stack, &[("LANG", "C.UTF-8")], stage);
    let stage_name = stage.name();
    let description = format!("{} ({stage_name} image)", d.description);
    let mixins = serde_json::Value::from(d.mixins(stage)).to_string();
    let labels = [
        (LABEL_STACK_ID, d.id.as_str()),
        ("io.buildpacks.stack.mixins", &mixins),
        ("io.buildpacks.stack.maintainer", &d.maintainer),
        ("io.buildpacks.stack.homepage", &d.homepage),
        ("io.buildpacks.stack.description", &description),
        ("io.buildpacks.stack.distro.name", distro),
        ("io.buildpacks.stack.distro.version", version),
        ("io.buildpacks.base.maintainer", &d.maintainer),
        ("io.buildpacks.base.homepage", &d.homepage),
        ("io.buildpacks.base.description", &description),
        ("io.buildpacks.base.distro.name", distro),
        ("io.buildpacks.base.distro.version", version),
    ];
    for (k, v) in labels {
        cfg.set_label(k, v);
    }
    cfg
}

/// One tar entry of a tree: a path on disk, or an overlayfs deletion as an OCI whiteout.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Path(PathBuf, Vec<u8>),
    Whiteout(Vec<u8>),
}

/// The entries below `root` in byte order of names, parents first; overlayfs whiteouts (0:0
/// character devices) become `.wh.<name>` and opaque directories get `.wh..wh..opq`.
fn walk(root: &Path) -> io::Result<Vec<Item>> {
    let mut out = Vec::new();
    walk_dir(root, b"", &mut out)?;
    Ok(out)
}

fn walk_dir(dir: &Path, name: &[u8], out: &mut Vec<Item>) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ctx = |op: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{op} {}: {e}", p.display()))
    };
    let mut children: Vec<OsString> = fs::read_dir(dir)
        .map_err(|e| ctx("read directory", dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| ctx("read directory", dir, e))?;
    children.sort();
    let join = |base: &[u8], child: &[u8]| {
        let mut n = base.to_vec();
        if !n.is_empty() {
            n.push(b'/');
        }
        n.extend_from_slice(child);
        n
    };
    for c in children {
        let src = dir.join(&c);
        let meta = fs::symlink_metadata(&src).map_err(|e| ctx("stat", &src, e))?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let mut wh = b".wh.".to_vec();
            wh.extend_from_slice(c.as_bytes());
            out.push(Item::Whiteout(join(name, &wh)));
            continue;
        }
        if ft.is_socket() || ft.is_block_device() || ft.is_char_device() || ft.is_fifo() {
            return Err(io::Error::other(format!(
                "{}: a device, socket or fifo has no place in a stack image",
                src.display()
            )));
        }
        let child = join(name, c.as_bytes());
        out.push(Item::Path(src.clone(), child.clone()));
        if ft.is_dir() {
            if opaque(&src).map_err(|e| ctx("read xattr of", &src, e))? {
                out.push(Item::Whiteout(join(&child, b".wh..wh..opq")));
            }
            walk_dir(&src, &child, out)?;
        }
    }
    Ok(())
}

/// overlayfs marks a directory that replaced a lower one with `trusted.overlay.opaque=y`.
fn opaque(dir: &Path) -> io::Result<bool> {
    let mut buf = [0u8; 8];
    match rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut buf[..]) {
        Ok(n) => Ok(buf[..n.min(buf.len())] == *b"y"),
        Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::NOTSUP => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn write_items(t: &mut TarWriter<&mut dyn Write>, items: &[Item]) -> io::Result<()> {
    let mut run: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for item in items {
        match item {
            Item::Path(src, name) => run.push((src.clone(), name.clone())),
            Item::Whiteout(name) => {
                t.append_entries(&run)?;
                run.clear();
                t.file_entry(name, 0o644, b"")?;
            }
        }
    }
    t.append_entries(&run)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFINITION: &str = include_str!("../../images/stacks/debian/stack.toml");

    #[test]
    fn the_definition_parses_and_is_checked() {
        let d = Definition::parse(DEFINITION, "stack.toml").unwrap();
        assert_eq!(d.id, "io.buildpacks.stacks.bookworm");
        assert_eq!((d.uid, d.gid, d.user.as_str()), (1000, 1000, "cnb"));
        assert!(d.run_packages.iter().any(|p| p == "python3"));
        assert!(d.build_packages.iter().any(|p| p == "golang-go"));
        let err = |text: &str| Definition::parse(text, "x").unwrap_err().to_string();
        assert_eq!(
            err(&DEFINITION.replace("uid = 1000", "uid = 0")),
            "stack definition x: the CNB user must not be root"
        );
        assert_eq!(
            err(&DEFINITION.replace("\"jq\",", "\"jq; rm -rf /\",")),
            "stack definition x: invalid package name \"jq; rm -rf /\""
        );
        assert_eq!(
            err(&DEFINITION.replace("\"jq\",", "\"nodejs\",")),
            "stack definition x: package \"nodejs\" is listed twice"
        );
        assert!(err(&format!("{DEFINITION}\nextra = 1\n")).contains("unknown field"));
    }

    #[test]
    fn the_rootfs_key_follows_packages_suite_user_and_script_not_labels() {
        let d = Definition::parse(DEFINITION, "x").unwrap();
        let key = d.rootfs_key(b"script");
        assert_eq!(key.len(), 24);
        assert_eq!(key, d.rootfs_key(b"script"));
        assert_ne!(key, d.rootfs_key(b"script 2"));
        let mut other = d.clone();
        other.description = "other".into();
        assert_eq!(key, other.rootfs_key(b"script"));
        for change in [
            |d: &mut Definition| d.suite = "trixie".into(),
            |d: &mut Definition| d.uid = 1001,
            |d: &mut Definition| d.run_packages.push("curl".into()),
            |d: &mut Definition| d.build_packages.pop().map(|_| ()).unwrap_or(()),
        ] {
            let mut o = d.clone();
            change(&mut o);
            assert_ne!(key, o.rootfs_key(b"script"));
        }
    }

    #[test]
    fn mixins_mark_build_only_packages() {
        let d = Definition::parse(DEFINITION, "x").unwrap();
        let run = d.mixins(Stage::Run);
        let build = d.mixins(Stage::Build);
        assert!(run.contains(&"nodejs".to_string()));
        assert!(!run.iter().any(|m| m.starts_with("build:")));
        assert!(build.contains(&"nodejs".to_string()));
        assert!(build.contains(&"build:golang-go".to_string()));
        assert!(!build.contains(&"golang-go".to_string()));
    }

    #[test]
    fn whiteouts_and_opaque_directories_become_oci_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("etc/apt")).unwrap();
        fs::write(root.join("etc/apt/x"), "x").unwrap();
        fs::write(root.join("b"), "b").unwrap();
        let is_root = nix::unistd::geteuid().is_root();
        if is_root {
            nix::sys::stat::mknod(
                &root.join("gone"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0),
                0,
            )
            .unwrap();
            rustix::fs::lsetxattr(
                root.join("etc/apt"),
                "trusted.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
        }
        let items = walk(root).unwrap();
        let names: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::Path(_, n) => String::from_utf8_lossy(n).into_owned(),
                Item::Whiteout(n) => format!("wh:{}", String::from_utf8_lossy(n)),
            })
            .collect();
        if is_root {
            assert_eq!(
                names,
                [
                    "b",
                    "etc",
                    "etc/apt",
                    "wh:etc/apt/.wh..wh..opq",
                    "etc/apt/x",
                    "wh:.wh.gone"
                ]
            );
        } else {
            assert_eq!(names, ["b", "etc", "etc/apt", "etc/apt/x"]);
        }
        let mut buf = Vec::new();
        {
            let w: &mut dyn Write = &mut buf;
            let mut tw = TarWriter::new(w, TarOptions::default());
            write_items(&mut tw, &items).unwrap();
            tw.finish().unwrap();
        }
        let mut a = tar::Archive::new(&buf[..]);
        let tarred: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect();
        let want: Vec<String> = names
            .iter()
            .map(|n| n.trim_start_matches("wh:").to_string())
            .collect();
        assert_eq!(tarred, want);
    }

    /// A stand-in for the rootfs script: counts its runs, makes tiny trees, fails while the cache
    /// directory holds a file `fail`.
    const FAKE_SCRIPT: &str = r#"#!/bin/sh
set -e
echo run >>"$(dirname "$1")/runs"
[ ! -e "$(dirname "$1")/fail" ] || { echo "apt exploded" >&2; exit 3; }
mkdir -p "$1/run/usr/lib" "$1/run/etc" "$1/build/usr/bin"
printf 'ID=debian\nVERSION_ID="12"\n' >"$1/run/usr/lib/os-release"
printf '%s\n' "$RUN_PACKAGES" >"$1/run/etc/packages"
echo tool >"$1/build/usr/bin/tool"
"#;

    fn fake(dir: &Path) -> (Definition, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("rootfs");
        fs::write(&script, FAKE_SCRIPT).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        (Definition::parse(DEFINITION, "x").unwrap(), script)
    }

    #[test]
    fn the_rootfs_is_made_once_under_the_lock_and_then_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let (def, script) = fake(tmp.path());
        let cache = tmp.path().join("cache");
        let made: Vec<Rootfs> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|_| s.spawn(|| ensure_rootfs(&def, &script, &cache).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(made.iter().filter(|r| r.built).count(), 1);
        assert_eq!(fs::read_to_string(cache.join("runs")).unwrap(), "run\n");
        let key = def.rootfs_key(FAKE_SCRIPT.as_bytes());
        assert_eq!(made[0].dir, cache.join(&key));
        assert_eq!(
            fs::read_to_string(made[0].run().join("etc/packages")).unwrap(),
            format!("{}\n", def.run_packages.join(" "))
        );
        assert!(!cache.join(format!("{key}.tmp")).exists());

        // Another package list: a new key, built once; the unused old entry is pruned.
        let mut other = def.clone();
        other.run_packages.push("curl".into());
        let r = ensure_rootfs(&other, &script, &cache).unwrap();
        assert!(r.built);
        assert!(!cache.join(&key).exists(), "the old entry is pruned");
        assert!(!cache.join(format!("{key}.lock")).exists());
        assert_eq!(
            fs::read_to_string(cache.join("runs")).unwrap(),
            "run\nrun\n"
        );
    }

    #[test]
    fn a_failed_rootfs_build_leaves_no_entry_and_says_why() {
        let tmp = tempfile::tempdir().unwrap();
        let (def, script) = fake(tmp.path());
        let cache = tmp.path().join("cache");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("fail"), "").unwrap();
        let err = ensure_rootfs(&def, &script, &cache)
            .unwrap_err()
            .to_string();
        fs::remove_file(cache.join("fail")).unwrap();
        assert!(err.contains("failed (exit status: 3)"), "{err}");
        assert!(err.ends_with("apt exploded"), "{err}");
        let key = def.rootfs_key(FAKE_SCRIPT.as_bytes());
        assert!(!cache.join(&key).exists());
        assert!(!cache.join(format!("{key}.tmp")).exists());
        // The next call builds it.
        assert!(ensure_rootfs(&def, &script, &cache).unwrap().built);
    }

    #[test]
    fn images_from_one_rootfs_have_the_same_digests_and_share_the_run_layer() {
        use crate::oci::layout::Layout;
        let tmp = tempfile::tempdir().unwrap();
        let (def, script) = fake(tmp.path());
        let rootfs = ensure_rootfs(&def, &script, &tmp.path().join("cache")).unwrap();
        let spec = StackSpec {
            definition: def,
            rootfs,
            arch: "amd64".into(),
            compression: Compression::Gzip,
        };
        let build = |dir: &str| {
            let b = Layout::create(&tmp.path().join(dir).join("b")).unwrap();
            let r = Layout::create(&tmp.path().join(dir).join("r")).unwrap();
            build_stack(&spec, &b, &["build".into()], &r, &["run".into()]).unwrap()
        };
        let (one, two) = (build("one"), build("two"));
        assert_eq!(one.build.digest, two.build.digest);
        assert_eq!(one.run.digest, two.run.digest);
        let b = Layout::open(&tmp.path().join("one/b")).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&one.build.bytes).unwrap();
        let config_digest: crate::digest::Digest =
            m["config"]["digest"].as_str().unwrap().parse().unwrap();
        let cfg =
            ImageConfig::from_json(&b.read_blob(&config_digest, None).unwrap(), "config").unwrap();
        assert_eq!(
            cfg.diff_ids().unwrap(),
            [
                one.run_layer.info.diff_id.clone(),
                one.build_layer.info.diff_id.clone()
            ]
        );
        assert_eq!(
            cfg.label("io.buildpacks.stack.distro.version").as_deref(),
            Some("12")
        );
        assert_eq!(cfg.env_var("CNB_USER_ID").as_deref(), Some("1000"));
        // The run layer's blob is in the build image's store too.
        assert!(b.blob_size(&one.run_layer.info.digest).unwrap().is_some());
    }
}
