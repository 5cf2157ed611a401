//! Crafted malicious layers are refused and nothing appears outside the target; whiteouts and
//! replacements behave as in container runtimes.

use std::fs;
use std::path::Path;

use buildpod::layer::extract::{apply_tar, AbsolutePaths, ExtractOptions};
use tar::{EntryType, Header};

type Entry<'a> = (EntryType, &'a str, &'a str, &'a [u8]);

/// Build a tar from (type, raw name, link target, data) with names written verbatim.
fn tar_of(entries: &[(EntryType, &str, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link, data) in entries {
        let mut h = Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

struct Sandbox {
    _tmp: tempfile::TempDir,
    target: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// `<tmp>/target` to extract into and `<tmp>/outside` that must stay untouched.
fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&target).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "keep").unwrap();
    Sandbox {
        target,
        outside,
        _tmp: tmp,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn untouched(s: &Sandbox) {
    assert_eq!(listing(&s.outside), vec!["secret"]);
    assert_eq!(
        fs::read_to_string(s.outside.join("secret")).unwrap(),
        "keep"
    );
}

fn refuse(opts: &ExtractOptions) -> ExtractOptions {
    ExtractOptions {
        absolute: AbsolutePaths::Refuse,
        ..opts.clone()
    }
}

#[test]
fn dot_dot_is_refused() {
    let s = sandbox();
    let t = tar_of(&[(EntryType::Regular, "../outside/x", "", b"pwned")]);
    let err = apply_tar(&t[..], &s.target, &ExtractOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("../outside/x") && err.contains(".."), "{err}");
    let t = tar_of(&[(EntryType::Regular, "a/../../outside/x", "", b"pwned")]);
    assert!(apply_tar(&t[..], &s.target, &ExtractOptions::default()).is_err());
    untouched(&s);
}

#[test]
fn absolute_path_is_refused_or_rerooted_never_written_outside() {
    let s = sandbox();
    let abs = format!("{}/x", s.outside.display());
    let t = tar_of(&[(EntryType::Regular, &abs, "", b"pwned")]);
    let err = apply_tar(&t[..], &s.target, &refuse(&ExtractOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absolute path"), "{err}");
    untouched(&s);
    // Image-layer mode: `/a/b` means `<target>/a/b`.
    apply_tar(&t[..], &s.target, &ExtractOptions::default()).unwrap();
    assert_eq!(
        fs::read(s.target.join(abs.trim_start_matches('/'))).unwrap(),
        b"pwned"
    );
    untouched(&s);
}

#[test]
fn writing_through_a_symlink_to_outside_is_refused() {
    for link in ["../outside", "/", "../../../../../../.."] {
        let s = sandbox();
        let target_link = if link == "../outside" {
            link.to_string()
        } else {
            s.outside.display().to_string()
        };
        let t = tar_of(&[
            (EntryType::Symlink, "escape", &target_link, b""),
            (EntryType::Regular, "escape/pwned", "", b"pwned"),
        ]);
        let err = apply_tar(&t[..], &s.target, &ExtractOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("escape/pwned"), "{err}");
        untouched(&s);
        // The symlink itself is kept as data.
        assert_eq!(
            fs::read_link(s.target.join("escape"))
                .unwrap()
                .to_string_lossy(),
            target_link
        );
    }
}

#[test]
fn hardlink_to_outside_is_refused() {
    let s = sandbox();
    let outside_secret = format!("{}/secret", s.outside.display());
    let cases: Vec<Vec<Entry>> = vec![
        vec![(EntryType::Link, "h", "../outside/secret", b"")],
        vec![(EntryType::Link, "h", &outside_secret, b"")],
        vec![
            (EntryType::Symlink, "s", "/", b""),
            (EntryType::Link, "h", "s/../outside/secret", b""),
        ],
        vec![
            (EntryType::Symlink, "s", "../outside", b""),
            (EntryType::Link, "h", "s/secret", b""),
        ],
    ];
    for entries in cases {
        let t = tar_of(&entries);
        let r = apply_tar(&t[..], &s.target, &ExtractOptions::default());
        assert!(r.is_err(), "{entries:?} was accepted");
        assert!(!s.target.join("h").exists(), "{entries:?}");
        // The outside file did not gain a link.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(s.outside.join("secret")).unwrap().nlink(), 1);
        untouched(&s);
    }
}

#[test]
fn a_symlink_is_replaced_not_followed() {
    let s = sandbox();
    let lower = tar_of(&[(
        EntryType::Symlink,
        "evil",
        &format!("{}/secret", s.outside.display()),
        b"",
    )]);
    apply_tar(&lower[..], &s.target, &ExtractOptions::default()).unwrap();
    let upper = tar_of(&[(EntryType::Regular, "evil", "", b"replaced")]);
    apply_tar(&upper[..], &s.target, &ExtractOptions::default()).unwrap();
    assert_eq!(fs::read(s.target.join("evil")).unwrap(), b"replaced");
    assert!(!fs::symlink_metadata(s.target.join("evil"))
        .unwrap()
        .file_type()
        .is_symlink());
    untouched(&s);
}

#[test]
fn whiteouts_and_opaque_directories() {
    let s = sandbox();
    let lower = tar_of(&[
        (EntryType::Regular, "a", "", b"a"),
        (EntryType::Directory, "d", "", b""),
        (EntryType::Regular, "d/x", "", b"x"),
        (EntryType::Directory, "d/sub", "", b""),
        (EntryType::Regular, "keep", "", b"k"),
    ]);
    apply_tar(&lower[..], &s.target, &ExtractOptions::default()).unwrap();
    let upper = tar_of(&[
        (EntryType::Regular, ".wh.a", "", b""),
        (EntryType::Directory, "d", "", b""),
        (EntryType::Regular, "d/.wh..wh..opq", "", b""),
        (EntryType::Regular, "d/z", "", b"z"),
        (EntryType::Regular, ".wh.missing", "", b""),
    ]);
    let stats = apply_tar(&upper[..], &s.target, &ExtractOptions::default()).unwrap();
    assert_eq!(stats.whiteouts, 3);
    assert_eq!(listing(&s.target), vec!["d", "keep"]);
    assert_eq!(listing(&s.target.join("d")), vec!["z"]);
    // With whiteouts off (source archives), `.wh.` files are ordinary files.
    let plain = ExtractOptions {
        whiteouts: buildpod::layer::extract::Whiteouts::Keep,
        ..Default::default()
    };
    apply_tar(&upper[..], &s.target, &plain).unwrap();
    assert!(s.target.join(".wh.a").exists());
}

#[test]
fn strip_components_and_modes() {
    let s = sandbox();
    let t = tar_of(&[
        (EntryType::Directory, "top", "", b""),
        (EntryType::Regular, "top/f", "", b"f"),
        (EntryType::Regular, "./top/g", "", b"g"),
    ]);
    let opts = ExtractOptions {
        strip_components: 1,
        ..Default::default()
    };
    apply_tar(&t[..], &s.target, &opts).unwrap();
    assert_eq!(listing(&s.target), vec!["f", "g"]);
}
