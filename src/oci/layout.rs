//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::image::ImageIndex;

use super::manifest::descriptor_digest;
use super::store::{Opener, Producer};
use super::{canonical_json, media, BlobStore, Error, RawManifest};
use crate::digest::{Digest, HashWriter, VerifyingReader};
use crate::fsutil::{write_atomic, IoContext};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout on disk.
pub struct Layout {
    root: PathBuf,
    // Serialises read-modify-write of index.json within this process.
    index_lock: Mutex<()>,
}

impl Layout {
    /// Open an existing layout; fails unless `oci-layout` is present.
    pub fn open(root: &Path) -> Result<Self, Error> {
        let marker = root.join("oci-layout");
        let text = fs::read_to_string(&marker).at("read", &marker)?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::json(marker.display().to_string(), e))?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(Error::Layout(format!(
                "{}: unsupported imageLayoutVersion (want 1.0.0)",
                marker.display()
            )));
        }
        Ok(Self::at(root))
    }

    /// Open a layout, creating an empty one if the directory has none.
    pub fn create(root: &Path) -> Result<Self, Error> {
        let marker = root.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            write_atomic(
                &index,
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            )?;
        }
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).at("create directory", &blobs)?;
        Self::open(root)
    }

    fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            index_lock: Mutex::new(()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm()).join(d.hex())
    }

    pub fn index(&self) -> Result<ImageIndex, Error> {
        let p = self.root.join("index.json");
        let bytes = fs::read(&p).at("read", &p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(p.display().to_string(), e))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), Error> {
        let bytes = canonical_json(index).map_err(|e| Error::json("index.json", e))?;
        write_atomic(&self.root.join("index.json"), &bytes)?;
        Ok(())
    }

    /// Tags (`org.opencontainers.image.ref.name`) in index.json.
    pub fn tags(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME).cloned())
            .collect())
    }

    fn tmp_in_blobs(&self) -> Result<tempfile::NamedTempFile, Error> {
        let dir = self.root.join("blobs/sha256");
        fs::create_dir_all(&dir).at("create directory", &dir)?;
        Ok(tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&dir)
            .at("create temp file in", &dir)?)
    }

    fn commit_tmp(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> Result<(), Error> {
        let dest = self.blob_path(d);
        tmp.persist(&dest)
            .map_err(|e| crate::fsutil::PathError::new("rename into", &dest, e.error))?;
        Ok(())
    }
}

impl BlobStore for Layout {
    fn location(&self) -> String {
        format!("oci:{}", self.root.display())
    }

    fn blob_size(&self, d: &Digest) -> Result<Option<u64>, Error> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::fsutil::PathError::new("stat", &p, e).into()),
        }
    }

    fn open_blob(&self, d: &Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>, Error> {
        let p = self.blob_path(d);
        let f = match fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    what: format!("blob {d}"),
                    location: self.location(),
                })
            }
            Err(e) => return Err(crate::fsutil::PathError::new("open", &p, e).into()),
        };
        Ok(Box::new(VerifyingReader::new(
            BufReader::with_capacity(256 * 1024, f),
            d.clone(),
            size,
            format!("blob {d} in {}", self.location()),
        )))
    }

    fn put_blob(&self, d: &Digest, _size: u64, open: &Opener<'_>) -> Result<(), Error> {
        if self.blob_size(d)?.is_some() {
            return Ok(());
        }
        let mut tmp = self.tmp_in_blobs()?;
        let mut w = HashWriter::new(tmp.as_file_mut());
        io::copy(&mut open()?, &mut w).map_err(|e| Error::io(format!("write blob {d}"), e))?;
        let (_, actual, _) = w.finish();
        d.verify(&actual, format!("blob written to {}", self.location()))?;
        self.commit_tmp(tmp, d)
    }

    fn put_blob_stream(&self, produce: &Producer<'_>) -> Result<(Digest, u64), Error> {
        let mut tmp = self.tmp_in_blobs()?;
        let mut w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, tmp.as_file_mut()));
        produce(&mut w).map_err(|e| Error::io(format!("write blob to {}", self.location()), e))?;
        let (mut buf, d, n) = w.finish();
        io::Write::flush(&mut buf).map_err(|e| Error::io("flush blob", e))?;
        drop(buf);
        if self.blob_size(&d)?.is_none() {
            self.commit_tmp(tmp, &d)?;
        }
        Ok((d, n))
    }

    fn get_manifest(&self, reference: &str) -> Result<RawManifest, Error> {
        let desc = if let Ok(d) = reference.parse::<Digest>() {
            self.index()?
                .manifests()
                .iter()
                .find(|m| descriptor_digest(m).ok().as_ref() == Some(&d))
                .cloned()
                .unwrap_or_else(|| {
                    oci_spec::image::Descriptor::new(media::OCI_MANIFEST.into(), 0, &d)
                })
        } else {
            let index = self.index()?;
            let found: Vec<_> = index
                .manifests()
                .iter()
                .filter(|m| {
                    let name = m.annotations().as_ref().and_then(|a| a.get(REF_NAME));
                    if reference.is_empty() {
                        true
                    } else {
                        name.map(String::as_str) == Some(reference)
                    }
                })
                .collect();
            match found.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(Error::NotFound {
                        what: format!("tag {reference:?}"),
                        location: self.location(),
                    })
                }
                _ => {
                    return Err(Error::Layout(format!(
                        "{} holds several images: name one with {}:<tag>",
                        self.location(),
                        self.location()
                    )))
                }
            }
        };
        let d = descriptor_digest(&desc)?;
        let bytes = self.read_blob(&d, None)?;
        let mt = desc.media_type().to_string();
        RawManifest::from_bytes(bytes, Some(&mt))
    }

    fn put_manifest(&self, m: &RawManifest, tags: &[String]) -> Result<(), Error> {
        let bytes = m.bytes.clone();
        self.put_blob(&m.digest, bytes.len() as u64, &|| {
            Ok(Box::new(io::Cursor::new(bytes.clone())))
        })?;
        let _guard = self
            .index_lock
            .lock()
            .map_err(|_| Error::Layout("index lock poisoned".into()))?;
        let mut index = self.index()?;
        let mut manifests = index.manifests().clone();
        let listed = manifests
            .iter()
            .any(|d| descriptor_digest(d).ok().as_ref() == Some(&m.digest));
        if tags.is_empty() && !listed {
            manifests.push(m.descriptor());
        }
        for tag in tags {
            manifests
                .retain(|d| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)) != Some(tag));
            let mut d = m.descriptor();
            d.set_annotations(Some(HashMap::from([(REF_NAME.to_string(), tag.clone())])));
            manifests.push(d);
        }
        index.set_manifests(manifests);
        self.write_index(&index)
    }
}
