//! Blob sources: zip, tar and tar.gz sniffed from content (not the name), strip components, auth
//! headers and kpack's errors; malicious archives are refused with nothing written outside the
//! workspace.

mod kpack_util;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use buildpod::source::blob::{fetch, unpack, BlobRequest};
use kpack_util::{gzip, tar_of, HttpServer};

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        if let Some(target) = content.strip_prefix("-> ") {
            w.add_symlink(*name, target, zip::write::SimpleFileOptions::default())
                .unwrap();
        } else if name.ends_with('/') {
            w.add_directory(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
        } else {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(if name.ends_with(".sh") { 0o755 } else { 0o644 });
            w.start_file(*name, opts).unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A workspace inside a parent directory, to check nothing lands next to it.
struct Sandbox {
    parent: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("workspace")).unwrap();
        std::fs::create_dir(parent.path().join("outside")).unwrap();
        Sandbox { parent }
    }
    fn ws(&self) -> std::path::PathBuf {
        self.parent.path().join("workspace")
    }
    fn outside_is_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, vec!["outside", "workspace"]);
        assert_eq!(
            std::fs::read_dir(self.parent.path().join("outside"))
                .unwrap()
                .count(),
            0
        );
    }
}

fn content(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn every_format_unpacks_the_same_tree_by_content() {
    let entries = [("testdir/", ""), ("testdir/testfile", "test file contents")];
    for (name, bytes) in [
        ("zip", zip_of(&entries)),
        ("tar", tar_of(&entries)),
        ("tar.gz", gzip(&tar_of(&entries))),
    ] {
        let sb = Sandbox::new();
        let sha = unpack(&bytes[..], &sb.ws(), 0).unwrap();
        assert_eq!(
            format!("sha256:{sha}"),
            buildpod::digest::Digest::of(&bytes).to_string(),
            "{name}"
        );
        assert_eq!(
            content(&sb.ws().join("testdir/testfile")),
            "test file contents"
        );
        sb.outside_is_untouched();
    }
}

#[test]
fn strip_components_counts_a_leading_dot_like_kpack() {
    let sb = Sandbox::new();
    unpack(
        &tar_of(&[("top/a/file", "x"), ("short", "y")])[..],
        &sb.ws(),
        1,
    )
    .unwrap();
    assert_eq!(content(&sb.ws().join("a/file")), "x");
    assert!(!sb.ws().join("short").exists());
    // `tar -C dir .` archives: "./top/a/file" with strip 2 keeps "a/file".
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o644);
    h.as_mut_bytes()[..12].copy_from_slice(b"./top/a/file");
    h.set_cksum();
    b.append(&h, &b"z"[..]).unwrap();
    let t = b.into_inner().unwrap();
    let sb = Sandbox::new();
    unpack(&t[..], &sb.ws(), 2).unwrap();
    assert_eq!(content(&sb.ws().join("a/file")), "z");
    let sb = Sandbox::new();
    unpack(&zip_of(&[("./top/a/file", "q")])[..], &sb.ws(), 2).unwrap();
    assert_eq!(content(&sb.ws().join("a/file")), "q");
}

#[test]
fn modes_and_symlinks_are_kept() {
    for bytes in [
        zip_of(&[("run.sh", "#!/bin/sh\n"), ("link", "-> run.sh")]),
        tar_of(&[("run.sh", "#!/bin/sh\n"), ("link", "-> run.sh")]),
    ] {
        let sb = Sandbox::new();
        unpack(&bytes[..], &sb.ws(), 0).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(sb.ws().join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(
            std::fs::read_link(sb.ws().join("link")).unwrap(),
            Path::new("run.sh")
        );
    }
}

#[test]
fn malicious_archives_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zip-slip", zip_of(&[("../outside/evil", "x")])),
        ("zip absolute", zip_of(&[("/tmp/evil-abs", "x")])),
        (
            "zip symlink then write",
            zip_of(&[("link", "-> ../outside"), ("link/evil", "x")]),
        ),
        (
            "zip absolute symlink then write",
            zip_of(&[("link", "-> /tmp"), ("link/evil-zip-abs", "x")]),
        ),
        ("tar dot-dot", raw_tar("../outside/evil", b'0', "")),
        ("tar absolute", raw_tar("/tmp/evil-tar-abs", b'0', "")),
        (
            "tar symlink then write",
            [
                raw_entry("link", b'2', "../outside"),
                raw_tar("link/evil", b'0', ""),
            ]
            .concat(),
        ),
        ("tar hardlink escape", raw_tar("hl", b'1', "../outside/x")),
        ("tar absolute hardlink", raw_tar("hl", b'1', "/etc/passwd")),
    ];
    for (what, bytes) in cases {
        let sb = Sandbox::new();
        let err = unpack(&bytes[..], &sb.ws(), 0);
        assert!(err.is_err(), "{what}: accepted");
        let msg = err.unwrap_err().to_string();
        // A symlinked-parent escape may also surface as "File exists" (an existing non-dir).
        assert!(
            msg.contains("refusing archive entry") || msg.contains("File exists"),
            "{what}: {msg}"
        );
        sb.outside_is_untouched();
    }
    assert!(!Path::new("/tmp/evil-abs").exists());
    assert!(!Path::new("/tmp/evil-tar-abs").exists());
    assert!(!Path::new("/tmp/evil-zip-abs").exists());
}

/// A tar of one raw entry (type `kind`, link `link`), names written verbatim.
fn raw_tar(name: &str, kind: u8, link: &str) -> Vec<u8> {
    let mut out = raw_entry(name, kind, link);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// One raw tar entry without the end-of-archive blocks.
fn raw_entry(name: &str, kind: u8, link: &str) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size = if kind == b'0' { 1 } else { 0 };
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    if size == 1 {
        let mut data = [0u8; 512];
        data[0] = b'x';
        out.extend_from_slice(&data);
    }
    out
}

#[test]
fn http_fetch_errors_and_auth_header() {
    let mut files = HashMap::new();
    files.insert(
        "a.jar".to_string(),
        zip_of(&[("META-INF/MANIFEST.MF", "v1")]),
    );
    files.insert("test.txt".to_string(), b"plain text".to_vec());
    files.insert(
        "test.html".to_string(),
        b"<html><body>hi</body></html>".to_vec(),
    );
    let http = HttpServer::start(files, Some("Basic dTpw".into()));
    let sb = Sandbox::new();
    let meta = sb.parent.path().join("outside");
    let req = |url: String, auth: Option<&'static str>| {
        let ws = sb.ws();
        let meta = meta.clone();
        move || {
            fetch(
                &BlobRequest {
                    url: &url,
                    authorization: auth,
                    strip_components: 0,
                    workspace: &ws,
                    workspace_shown: "/workspace",
                    metadata_dir: &meta,
                },
                &|_| {},
            )
        }
    };
    let url = http.url("missing.zip");
    let e = req(url.clone(), Some("Basic dTpw"))()
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("failed to get blob {url}: 404 Not Found: 404 page not found\n")
    );
    let url = http.url("a.jar");
    let e = req(url.clone(), None)().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("failed to get blob {url}: 401 Unauthorized")),
        "{e}"
    );
    for f in ["test.txt", "test.html"] {
        let e = req(http.url(f), Some("Basic dTpw"))()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unexpected blob file type, must be one of .zip, .tar.gz, .tar, .jar"
        );
    }
    req(url, Some("Basic dTpw"))().unwrap();
    assert_eq!(content(&sb.ws().join("META-INF/MANIFEST.MF")), "v1");
    assert!(content(&meta.join("project-metadata.toml")).contains("type = \"blob\""));
}

/// A zip whose entries say they were made on MS-DOS (FAT): "version made by" host 0 and no
/// unix mode in the external attributes.
fn fat_zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut z = zip_of(entries);
    let mut i = 0;
    while i + 46 <= z.len() {
        if z[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            z[i + 5] = 0; // version made by: host system MS-DOS
            z[i + 38..i + 42].copy_from_slice(&[0, 0, 0, 0]); // external attributes
            i += 46;
        } else {
            i += 1;
        }
    }
    z
}

// kpack's blob fetch_test: "unpacks files with mode 0777 when files are compressed in fat
// (MSDOS) format".
#[test]
fn fat_zip_files_get_mode_0777() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = Sandbox::new();
    unpack(
        &fat_zip(&[("dir/", ""), ("dir/file.txt", "fat")])[..],
        &sb.ws(),
        0,
    )
    .unwrap();
    assert_eq!(content(&sb.ws().join("dir/file.txt")), "fat");
    let mode = std::fs::metadata(sb.ws().join("dir/file.txt"))
        .unwrap()
        .permissions()
        .mode();
    // kpack's test clears the umask first; the mode is 0777 less the umask, as os.OpenFile does.
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(mode & 0o777, 0o777 & !umask);
    sb.outside_is_untouched();
}
