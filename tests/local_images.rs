//! The local image cache: each layer unpacked once into a directory of its own (whiteouts and
//! opaque directories in overlayfs's form) and stacked as overlay lower directories, so images
//! sharing a base share its unpacked layers. What a container sees must be what the merged
//! image means: deleted files gone, opaque directories hiding the base, directories a layer
//! implies keeping the base's owner and mode, a path through a base symlink landing where the
//! link points — under the embedded sandbox and runc, whatever the caller's umask.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use buildpod::layer::{CompressOptions, Compression};
use buildpod::local::images::{CachedImage, ImageCache};
use buildpod::oci::assemble::{push_layer_with, write_image, StoredLayer};
use buildpod::oci::layout::Layout;
use buildpod::oci::{media, ImageConfig};
use buildpod::registry::{Client, ClientOptions};
use buildpod::sandbox::{Runtime, Sandbox, Spec, User};

enum E<'a> {
    Dir(&'a str, u32, u64, u64),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
}

fn tar_bytes(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1);
        match e {
            E::Dir(name, mode, uid, gid) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
            E::File(name, body) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(body.len() as u64);
                b.append_data(&mut h, name, body.as_bytes()).unwrap();
            }
            E::Link(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn layer(store: &Layout, entries: &[E<'_>]) -> StoredLayer {
    let bytes = tar_bytes(entries);
    push_layer_with(
        store,
        &CompressOptions::new(Compression::Gzip),
        media::OCI_MANIFEST,
        &|w| w.write_all(&bytes),
    )
    .unwrap()
}

fn image(store: &Layout, layers: &[StoredLayer], tag: &str) {
    let mut cfg = ImageConfig::new("linux", "amd64");
    cfg.set_created(Some("1980-01-01T00:00:01Z"));
    write_image(
        store,
        &mut cfg,
        layers,
        media::OCI_MANIFEST,
        &[tag.to_string()],
    )
    .unwrap();
}

/// The base layer: busybox, a few files, a user-owned /workspace, and merged-usr's /lib link.
fn base() -> Vec<E<'static>> {
    let mut v = vec![
        E::Dir("bin", 0o755, 0, 0),
        E::Dir("etc", 0o755, 0, 0),
        E::File("etc/a", "a\n"),
        E::File("etc/b", "b\n"),
        E::Dir("data", 0o755, 0, 0),
        E::File("data/x", "x\n"),
        E::File("data/y", "y\n"),
        E::Dir("workspace", 0o750, 1000, 1000),
        E::Dir("usr", 0o755, 0, 0),
        E::Dir("usr/lib", 0o755, 0, 0),
        E::Link("lib", "usr/lib"),
        E::Dir("tmp", 0o1777, 0, 0),
    ];
    for a in ["bin/sh", "bin/ls", "bin/cat", "bin/stat"] {
        v.push(E::Link(a, "busybox"));
    }
    v
}

fn run(rt: Runtime, dir: &Path, img: &CachedImage, name: &str, script: &str) -> Output {
    let scratch = dir.join(format!("scratch-{name}"));
    std::fs::create_dir_all(&scratch).unwrap();
    let spec = Spec {
        id: name.to_string(),
        layers: img.layers.clone(),
        scratch,
        args: vec!["sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: User {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![],
        },
        hostname: "x".into(),
        mounts: vec![],
        capabilities: vec![],
        no_new_privileges: true,
    };
    let sandbox = Sandbox {
        program: PathBuf::from(env!("CARGO_BIN_EXE_buildpod")),
        runtime: rt,
    };
    let mut cmd = sandbox.command(&spec).unwrap();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn stacked_layers_show_the_merged_image_and_share_the_base() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (overlay whiteouts, mounts)");
        return;
    }
    // The only test in this binary: the umask is process-wide.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let tmp = tempfile::tempdir().unwrap();
    let store = Layout::create(&tmp.path().join("layout")).unwrap();
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let mut base_tar = tar::Builder::new(Vec::new());
    {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        h.set_size(busybox.len() as u64);
        h.set_mtime(1);
        base_tar
            .append_data(&mut h, "bin/busybox", &busybox[..])
            .unwrap();
    }
    let bb_layer = {
        let bytes = base_tar.into_inner().unwrap();
        push_layer_with(
            &store,
            &CompressOptions::new(Compression::Gzip),
            media::OCI_MANIFEST,
            &|w| w.write_all(&bytes),
        )
        .unwrap()
    };
    let base_layer = layer(&store, &base());
    let change = layer(
        &store,
        &[
            E::File("etc/.wh.a", ""),
            E::File("data/.wh..wh..opq", ""),
            E::File("data/z", "z\n"),
            // `workspace` and `new/sub` are implied, not listed.
            E::File("workspace/app.txt", "app\n"),
            E::File("new/sub/file", "new\n"),
        ],
    );
    let through_link = layer(&store, &[E::File("lib/extra.txt", "extra\n")]);
    image(
        &store,
        &[bb_layer.clone(), base_layer.clone(), change],
        "changed",
    );
    let other = layer(&store, &[E::File("etc/c", "c\n")]);
    image(
        &store,
        &[bb_layer.clone(), base_layer.clone(), other],
        "other",
    );
    image(&store, &[bb_layer, base_layer, through_link], "linked");

    let client = Client::new(ClientOptions::default()).unwrap();
    let cache = ImageCache::new(tmp.path().join("cache"), client);
    let layout = tmp.path().join("layout");
    let changed = cache
        .get(&format!("oci:{}:changed", layout.display()))
        .unwrap();
    let other = cache
        .get(&format!("oci:{}:other", layout.display()))
        .unwrap();
    let linked = cache
        .get(&format!("oci:{}:linked", layout.display()))
        .unwrap();
    assert_eq!(changed.layers.len(), 3, "{:?}", changed.layers);
    assert_eq!(
        changed.layers[..2],
        other.layers[..2],
        "the base layers are shared"
    );
    // The image whose layer writes through the base's /lib link is unpacked merged instead.
    assert_eq!(linked.layers.len(), 1, "{:?}", linked.layers);
    let unpacked = std::fs::read_dir(tmp.path().join("cache/layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .count();
    assert_eq!(unpacked, 4, "one directory per distinct stacked layer");

    let mut runtimes = vec![Runtime::Embedded];
    if support::tools::which("runc").is_some() {
        runtimes.push(Runtime::Runc);
    }
    for rt in runtimes {
        let out = run(
            rt,
            tmp.path(),
            &changed,
            &format!("changed-{rt:?}"),
            "ls /etc; ls /data; stat -c '%u:%g %a' /workspace /new /new/sub; \
             cat /workspace/app.txt /new/sub/file",
        );
        assert_eq!(
            text(&out.stdout),
            "b\nz\n1000:1000 750\n0:0 755\n0:0 755\napp\nnew\n",
            "{rt:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0));

        let out = run(
            rt,
            tmp.path(),
            &linked,
            &format!("linked-{rt:?}"),
            "cat /usr/lib/extra.txt; stat -c %F /lib",
        );
        assert_eq!(
            text(&out.stdout),
            "extra\nsymbolic link\n",
            "{rt:?}: {}",
            text(&out.stderr)
        );
    }
}
