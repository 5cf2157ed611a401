//! Source archives: content sniffing as kpack does it (Go's `http.DetectContentType`), tar
//! header validation, and zip extraction with the same no-escape rules as `layer::extract`.
//!
//! kpack extracts zips with no guard against `..`, absolute names or symlink tricks; here every
//! path is resolved beneath the target with cap-std, `..` and absolute names are refused, and
//! zip symlinks are kept as symlinks (kpack drops them).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, OpenOptions};
use cap_std::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};

use super::SourceError;

/// What a blob's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Zip,
    Gzip,
    /// Binary data: a tar if its first header is valid.
    OctetStream,
    /// Text, HTML, images and everything else kpack rejects.
    Other,
}

/// kpack's error for anything that is not a zip, tar.gz or tar.
pub const UNEXPECTED_TYPE: &str =
    "unexpected blob file type, must be one of .zip, .tar.gz, .tar, .jar";

/// Classify the first (up to 512) bytes the way Go's `http.DetectContentType` does for the
/// types kpack cares about.
pub fn sniff(head: &[u8]) -> Sniffed {
    let head = &head[..head.len().min(512)];
    if head.starts_with(b"PK\x03\x04") {
        return Sniffed::Zip;
    }
    if head.starts_with(b"\x1f\x8b\x08") {
        return Sniffed::Gzip;
    }
    // Signatures Go recognises before its binary check; all of them are rejected by kpack.
    const OTHER: &[&[u8]] = &[
        b"%PDF-",
        b"%!PS-Adobe-",
        b"\x89PNG\r\n\x1a\n",
        b"GIF87a",
        b"GIF89a",
        b"\xff\xd8\xff",
        b"BM",
        b"Rar!\x1a\x07",
        b"\x00\x00\x01\x00",
        b"\x00\x00\x02\x00",
        b"OggS\x00",
        b"\x00asm",
        b"\x1a\x45\xdf\xa3",
        b"wOFF",
        b"wOF2",
    ];
    if OTHER.iter().any(|s| head.starts_with(s)) {
        return Sniffed::Other;
    }
    let trimmed: &[u8] = {
        let i = head
            .iter()
            .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
            .unwrap_or(head.len());
        &head[i..]
    };
    if trimmed.starts_with(b"<") {
        return Sniffed::Other;
    }
    let binary = head.iter().any(|&b| {
        b <= 0x08 || b == 0x0b || (0x0e..=0x1a).contains(&b) || (0x1c..=0x1f).contains(&b)
    });
    if binary {
        Sniffed::OctetStream
    } else {
        Sniffed::Other
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| *b != 0 && *b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

/// Whether `block` is a valid tar header (what Go's `tar.Reader.Next` needs to succeed).
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block[..512].iter().all(|b| *b == 0) {
        return false;
    }
    let Some(want) = octal(&block[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, b) in block[..512].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || i64::try_from(want).ok() == Some(signed)
}

/// The name in a tar header block (ustar prefix joined), for the strip-components rule.
pub fn tar_header_name(block: &[u8]) -> Vec<u8> {
    let field = |r: std::ops::Range<usize>| {
        let f = &block[r];
        f[..f.iter().position(|b| *b == 0).unwrap_or(f.len())].to_vec()
    };
    let name = field(0..100);
    if &block[257..262] == b"ustar" {
        let prefix = field(345..500);
        if !prefix.is_empty() {
            let mut p = prefix;
            p.push(b'/');
            p.extend(name);
            return p;
        }
    }
    name
}

/// The `strip_components` to pass to `layer::extract` so that it strips what kpack strips:
/// kpack counts a leading `./` as a component, `layer::extract` drops `.` before stripping.
/// Decided from the first entry (archives made with `tar -C dir .` name every entry `./...`).
pub fn effective_strip(first_header: &[u8], strip: usize) -> usize {
    if strip == 0 || first_header.len() < 512 {
        return strip;
    }
    let name = tar_header_name(first_header);
    if name == b"." || name.starts_with(b"./") {
        strip - 1
    } else {
        strip
    }
}

/// Split a zip entry name as kpack does (on `/`, dropping the first `strip` components, a
/// leading `.` included), refusing absolute names and `..`. `None`: skipped.
pub fn zip_entry_path(raw: &[u8], strip: usize) -> Result<Option<PathBuf>, SourceError> {
    let shown = String::from_utf8_lossy(raw);
    if raw.starts_with(b"/") {
        return Err(refuse(&shown, "absolute path"));
    }
    let parts: Vec<&[u8]> = raw.split(|b| *b == b'/').collect();
    if parts.len() <= strip {
        return Ok(None);
    }
    let mut p = PathBuf::new();
    for c in &parts[strip..] {
        match *c {
            b"" | b"." => {}
            b".." => return Err(refuse(&shown, "path contains '..'")),
            c if c.contains(&0) => return Err(refuse(&shown, "path contains NUL")),
            c => p.push(std::ffi::OsStr::from_bytes(c)),
        }
    }
    Ok(Some(p))
}

fn refuse(entry: &str, why: &str) -> SourceError {
    SourceError::new(format!("refusing archive entry {entry:?}: {why}"))
}

fn io_err(entry: &str, e: io::Error) -> SourceError {
    if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EXDEV) {
        // cap-std reports an escape attempt (through a symlink) as permission denied.
        return refuse(entry, &format!("leads outside the target ({e})"));
    }
    SourceError::new(format!("extract {entry:?}: {e}"))
}

fn remove_existing(root: &Dir, rel: &Path) -> io::Result<()> {
    match root.symlink_metadata(rel) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => root.remove_file(rel),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Extract a zip into `target`, stripping `strip` leading components. Returns the entry count.
pub fn extract_zip(file: File, target: &Path, strip: usize) -> Result<u64, SourceError> {
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| SourceError::new(format!("read zip archive: {e}")))?;
    std::fs::create_dir_all(target)
        .map_err(|e| SourceError::new(format!("create {}: {e}", target.display())))?;
    let root = Dir::open_ambient_dir(target, ambient_authority())
        .map_err(|e| SourceError::new(format!("open {}: {e}", target.display())))?;
    let mut count = 0;
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| SourceError::new(format!("read zip entry {i}: {e}")))?;
        let raw = f.name_raw().to_vec();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let Some(rel) = zip_entry_path(&raw, strip)? else {
            continue;
        };
        let system = f.system() as u8;
        // FAT/VFAT archives carry no unix modes; kpack gives their files 0777.
        let mode = if system == 0 || system == 14 {
            0o777
        } else {
            f.unix_mode().map_or(0o644, |m| m & 0o7777)
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        if f.is_dir() {
            let mut b = DirBuilder::new();
            b.recursive(true).mode(mode | 0o700);
            root.create_dir_with(&rel, &b)
                .map_err(|e| io_err(&shown, e))?;
            count += 1;
            continue;
        }
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Fails when a parent is a symlink leading out of the target (or not a directory).
            root.create_dir_all(parent).map_err(|e| {
                refuse(
                    &shown,
                    &format!("its parent leads outside the target or is not a directory ({e})"),
                )
            })?;
        }
        remove_existing(&root, &rel).map_err(|e| io_err(&shown, e))?;
        if f.is_symlink() {
            let mut target_bytes = Vec::new();
            (&mut f)
                .take(4096)
                .read_to_end(&mut target_bytes)
                .map_err(|e| io_err(&shown, e))?;
            // The link text is only data; later entries resolve through it beneath the root.
            root.symlink_contents(std::ffi::OsStr::from_bytes(&target_bytes), &rel)
                .map_err(|e| io_err(&shown, e))?;
        } else {
            // Created with the entry's mode so the umask applies, as with Go's os.OpenFile.
            let mut out = root
                .open_with(
                    &rel,
                    OpenOptions::new().write(true).create_new(true).mode(mode),
                )
                .map_err(|e| io_err(&shown, e))?;
            io::copy(&mut f, &mut out).map_err(|e| io_err(&shown, e))?;
            if mode & 0o7000 != 0 {
                let _ = out.set_permissions(cap_std::fs::Permissions::from_mode(mode & 0o0777));
            }
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_like_go() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Sniffed::Zip);
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), Sniffed::Gzip);
        assert_eq!(sniff(b"hello world\n"), Sniffed::Other);
        assert_eq!(sniff(b"  <html><body>"), Sniffed::Other);
        assert_eq!(sniff(b"%PDF-1.4"), Sniffed::Other);
        let mut tar = vec![0u8; 512];
        tar[..4].copy_from_slice(b"file");
        assert_eq!(sniff(&tar), Sniffed::OctetStream);
        assert!(!is_tar_header(&tar));
        assert!(!is_tar_header(&[0u8; 512]));
    }

    #[test]
    fn tar_headers_and_strip() {
        let mut h = tar::Header::new_ustar();
        // tar-rs normalises "./" away on set_path; write the raw name as `tar -C d .` does.
        h.as_mut_bytes()[..7].copy_from_slice(b"./app/x");
        h.set_size(0);
        h.set_cksum();
        let b = h.as_bytes().to_vec();
        assert!(is_tar_header(&b));
        assert_eq!(tar_header_name(&b), b"./app/x");
        assert_eq!(effective_strip(&b, 1), 0);
        assert_eq!(effective_strip(&b, 2), 1);
        assert_eq!(effective_strip(&b, 0), 0);
        let mut h = tar::Header::new_gnu();
        h.set_path("app/x").unwrap();
        h.set_cksum();
        assert_eq!(effective_strip(h.as_bytes(), 1), 1);
    }

    #[test]
    fn zip_paths_follow_kpack_and_refuse_escapes() {
        let p = |s: &str, n| zip_entry_path(s.as_bytes(), n);
        assert_eq!(p("a/b/c", 1).unwrap(), Some(PathBuf::from("b/c")));
        assert_eq!(p("./a/b", 1).unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(p("a", 1).unwrap(), None);
        assert!(p("../x", 0).is_err());
        assert!(p("a/../../x", 0).is_err());
        assert!(p("/etc/passwd", 0).is_err());
    }
}
