//! Registry (OCI image) sources: the image's layers, or the single archive file inside its one
//! layer when the `source.contenttype.kpack.io` label says zip/jar/war/tar/tar.gz.

use std::io::{self, Read, Seek};
use std::sync::Arc;

use super::metadata::ProjectSource;
use super::SourceError;
use crate::layer::extract::{apply_layer, AbsolutePaths, ExtractOptions};
use crate::oci::manifest::{descriptor_digest, select_platform};
use crate::oci::{BlobStore, ImageConfig, Manifest, PlatformSpec};
use crate::registry::{keychain::is_docker_hub, parse_reference, Client, Repo};

pub const CONTENT_TYPE_LABEL: &str = "source.contenttype.kpack.io";

/// `registry/repository` as go-containerregistry names it (Docker Hub is `index.docker.io`).
pub fn fully_qualified_repo(registry: &str, repository: &str) -> String {
    let reg = if is_docker_hub(registry) {
        "index.docker.io"
    } else {
        registry
    };
    format!("{reg}/{repository}")
}

fn untrusted() -> ExtractOptions {
    ExtractOptions {
        absolute: AbsolutePaths::Refuse,
        whiteouts: crate::layer::extract::Whiteouts::Keep,
        same_owner: false,
        strip_components: 0,
    }
}

fn e(x: impl std::fmt::Display) -> SourceError {
    SourceError::new(x.to_string())
}

/// Copy the only regular file of a layer to a temp file.
fn single_file(layer: impl Read) -> Result<std::fs::File, SourceError> {
    let mut ar = tar::Archive::new(layer);
    let mut out: Option<std::fs::File> = None;
    for entry in ar.entries().map_err(e)? {
        let mut entry = entry.map_err(e)?;
        if entry.header().entry_type().is_dir() {
            continue;
        }
        if out.is_some() || !entry.header().entry_type().is_file() {
            return Err(SourceError::new("expected layer to have exactly one file"));
        }
        let mut f = tempfile::tempfile().map_err(e)?;
        io::copy(&mut entry, &mut f).map_err(e)?;
        f.rewind().map_err(e)?;
        out = Some(f);
    }
    out.ok_or_else(|| SourceError::new("expected layer to have exactly one file"))
}

/// kpack's registry `Fetcher.Fetch`: pull `image` into `workspace`.
pub fn fetch(
    client: &Arc<Client>,
    image: &str,
    workspace: &std::path::Path,
    workspace_shown: &str,
    metadata_dir: &std::path::Path,
    log: &dyn Fn(&str),
) -> Result<(), SourceError> {
    log(&format!("Pulling {image}..."));
    let r = parse_reference(image).map_err(e)?;
    let repo = Repo::for_reference(Arc::clone(client), &r);
    let what = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    let mut m = repo.get_manifest(&what).map_err(e)?;
    let im = loop {
        match m.parse().map_err(e)? {
            Manifest::Image(im) => break im,
            Manifest::Index(idx) => {
                let d =
                    select_platform(&idx, &PlatformSpec::new("linux", "amd64", None)).map_err(e)?;
                m = repo
                    .get_manifest(&descriptor_digest(d).map_err(e)?.to_string())
                    .map_err(e)?;
            }
        }
    };
    let cfg_d = descriptor_digest(im.config()).map_err(e)?;
    let cfg = ImageConfig::from_json(
        &repo
            .read_blob(&cfg_d, Some(im.config().size()))
            .map_err(e)?,
        "image config",
    )
    .map_err(e)?;
    let content_type = cfg.label(CONTENT_TYPE_LABEL).unwrap_or_default();
    let open = |d: &crate::oci::Descriptor| -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let dg = descriptor_digest(d).map_err(e)?;
        repo.open_blob(&dg, Some(d.size())).map_err(e)
    };
    let decompressed =
        |d: &crate::oci::Descriptor| -> Result<Box<dyn Read + Send + '_>, SourceError> {
            let raw = open(d)?;
            let mut br = io::BufReader::new(raw);
            let head = io::BufRead::fill_buf(&mut br).map_err(e)?;
            if head.starts_with(&[0x1f, 0x8b]) {
                Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                Ok(Box::new(
                    zstd::stream::read::Decoder::with_buffer(br).map_err(e)?,
                ))
            } else {
                Ok(Box::new(br))
            }
        };
    match content_type.as_str() {
        "zip" | "jar" | "war" | "tar" | "tar.gz" => {
            if im.layers().len() != 1 {
                return Err(SourceError::new("expected image to have exactly one layer"));
            }
            let mut f = single_file(decompressed(&im.layers()[0])?)?;
            let mut head = [0u8; 512];
            let n = f.read(&mut head).map_err(e)?;
            f.rewind().map_err(e)?;
            let tmp_name = "<layer file>";
            match content_type.as_str() {
                "tar" | "tar.gz" => {
                    let is_gz = head[..n].starts_with(&[0x1f, 0x8b]);
                    if content_type == "tar" && !super::archive::is_tar_header(&head[..n]) {
                        return Err(SourceError::new(format!(
                            "expected file '{tmp_name}' to be a tar archive"
                        )));
                    }
                    let r: Box<dyn Read> = if is_gz {
                        Box::new(flate2::read::MultiGzDecoder::new(f))
                    } else {
                        Box::new(f)
                    };
                    crate::layer::extract::apply_tar(r, workspace, &untrusted()).map_err(e)?;
                }
                _ => {
                    if !head[..n].starts_with(b"PK") {
                        return Err(SourceError::new(format!(
                            "expected file '{tmp_name}' to be a zip archive"
                        )));
                    }
                    super::archive::extract_zip(f, workspace, 0)?;
                }
            }
        }
        _ => {
            for l in im.layers() {
                apply_layer(decompressed(l)?, workspace, &untrusted()).map_err(e)?;
            }
        }
    }
    ProjectSource::Image {
        image: fully_qualified_repo(r.registry(), r.repository()),
        digest: m.digest.to_string(),
    }
    .write(metadata_dir)
    .map_err(e)?;
    log(&format!(
        "Successfully pulled {image} in path \"{workspace_shown}\""
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_ggcr() {
        assert_eq!(
            fully_qualified_repo("docker.io", "library/x"),
            "index.docker.io/library/x"
        );
        assert_eq!(
            fully_qualified_repo("127.0.0.1:5000", "a/b"),
            "127.0.0.1:5000/a/b"
        );
    }
}
