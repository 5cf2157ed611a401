//! Blob sources: download a zip, tar or tar.gz over HTTP(S), sniff its type from content, and
//! unpack it into the workspace. Tar and tar.gz are streamed straight from the network into the
//! extractor (hashing on the way); only zips, which need random access, go to a temp file.

use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::archive::{self, Sniffed, UNEXPECTED_TYPE};
use super::metadata::ProjectSource;
use super::SourceError;
use crate::layer::extract::{apply_tar, AbsolutePaths, ExtractOptions};

/// What to fetch and where to put it.
pub struct BlobRequest<'a> {
    pub url: &'a str,
    /// `Authorization` header value, if blob auth applies.
    pub authorization: Option<&'a str>,
    pub strip_components: usize,
    pub workspace: &'a Path,
    /// How the workspace is named in log lines (`/workspace`).
    pub workspace_shown: &'a str,
    /// Where `project-metadata.toml` goes.
    pub metadata_dir: &'a Path,
}

/// A reader that hashes everything read through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// `<host><path>` as kpack logs it.
pub fn host_and_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{host}{path}")
}

/// Read up to `n` bytes (fewer only at EOF).
fn read_head(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.by_ref().take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn untrusted(strip: usize) -> ExtractOptions {
    ExtractOptions {
        absolute: AbsolutePaths::Refuse,
        whiteouts: crate::layer::extract::Whiteouts::Keep,
        same_owner: false,
        strip_components: strip,
    }
}

/// Extract a tar stream whose first 512 bytes were already read into `head`.
fn extract_tar(
    head: Vec<u8>,
    rest: impl Read,
    target: &Path,
    strip: usize,
) -> Result<(), SourceError> {
    let strip = archive::effective_strip(&head, strip);
    apply_tar(io::Cursor::new(head).chain(rest), target, &untrusted(strip))
        .map(|_| ())
        .map_err(|e| SourceError::new(e.to_string()))
}

/// Unpack an archive from `r` (any of zip, tar.gz, tar) into `target`. Returns the sha256 of
/// every byte of `r`.
pub fn unpack(r: impl Read, target: &Path, strip: usize) -> Result<String, SourceError> {
    let mut src = Hashing {
        inner: r,
        hash: Sha256::new(),
    };
    let read_err = |e: io::Error| SourceError::new(format!("read blob: {e}"));
    let head = read_head(&mut src, 512).map_err(read_err)?;
    match archive::sniff(&head) {
        Sniffed::Zip => {
            let mut tmp = tempfile::tempfile()
                .map_err(|e| SourceError::new(format!("create temp file: {e}")))?;
            tmp.write_all(&head).map_err(read_err)?;
            io::copy(&mut src, &mut tmp).map_err(read_err)?;
            archive::extract_zip(tmp, target, strip)?;
        }
        Sniffed::Gzip => {
            let mut gz = flate2::read::MultiGzDecoder::new(io::Cursor::new(head).chain(&mut src));
            let tar_head = read_head(&mut gz, 512).map_err(read_err)?;
            extract_tar(tar_head, gz, target, strip)?;
        }
        Sniffed::OctetStream if archive::is_tar_header(&head) => {
            extract_tar(head, &mut src, target, strip)?;
        }
        _ => return Err(SourceError::new(UNEXPECTED_TYPE)),
    }
    // Whatever follows the archive's end still counts toward the file's checksum.
    io::copy(&mut src, &mut io::sink()).map_err(read_err)?;
    Ok(hex::encode(src.hash.finalize()))
}

/// kpack's `blob.Fetcher.Fetch`.
pub fn fetch(req: &BlobRequest<'_>, log: &dyn Fn(&str)) -> Result<(), SourceError> {
    let shown = host_and_path(req.url);
    log(&format!("Downloading {shown}..."));
    let roots =
        crate::registry::transport::root_certs(&[]).map_err(|e| SourceError::new(e.to_string()))?;
    let agent = crate::registry::transport::agent(roots, true, std::time::Duration::from_secs(30));
    let mut call = agent.get(req.url);
    if let Some(a) = req.authorization {
        call = call.header("Authorization", a);
    }
    let resp = call
        .call()
        .map_err(|e| SourceError::new(format!("failed to get blob {}: {e}", req.url)))?;
    let status = resp.status();
    if status.as_u16() != 200 {
        let body = resp
            .into_body()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        return Err(SourceError::new(format!(
            "failed to get blob {}: {} {}: {body}",
            req.url,
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )));
    }
    let body = resp.into_body().into_reader();
    let sha = unpack(body, req.workspace, req.strip_components)?;
    ProjectSource::Blob {
        url: req.url.to_string(),
        sha256: sha,
    }
    .write(req.metadata_dir)
    .map_err(|e| SourceError::new(e.to_string()))?;
    log(&format!(
        "Successfully downloaded {shown} in path \"{}\"",
        req.workspace_shown
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_host_and_path() {
        assert_eq!(
            host_and_path("http://127.0.0.1:8080/a/b.tgz?sig=x"),
            "127.0.0.1:8080/a/b.tgz"
        );
        assert_eq!(host_and_path("https://u:p@h/x"), "h/x");
    }

    #[test]
    fn text_is_rejected() {
        let t = tempfile::tempdir().unwrap();
        let e = unpack(&b"just some text"[..], t.path(), 0).unwrap_err();
        assert_eq!(e.to_string(), UNEXPECTED_TYPE);
    }
}
