//! The volume cache: a directory with `committed/` (what the last build left) and `staging/`
//! (what this build writes), swapped on commit (`lc:cache/volume_cache.go`).

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{CacheError, CacheMetadata, CacheReader, CacheWriter, TarFill, METADATA_LABEL};
use crate::digest::{Digest, HashWriter, Hasher, VerifyingReader};
use crate::fsutil::{IoContext, PathError};

/// `<dir>/<diffID>.tar`.
fn layer_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join(format!("{d}.tar"))
}

/// A volume cache opened for reading. Opening changes nothing on disk.
pub struct VolumeCache {
    dir: PathBuf,
}

impl VolumeCache {
    pub fn open(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn committed(&self) -> PathBuf {
        self.dir.join("committed")
    }
}

impl CacheReader for VolumeCache {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn exists(&self) -> bool {
        self.committed().is_dir()
    }

    fn metadata(&self) -> Result<CacheMetadata, CacheError> {
        let p = self.committed().join(METADATA_LABEL);
        match fs::read_to_string(&p) {
            Ok(text) => Ok(CacheMetadata::decode(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CacheMetadata::default()),
            Err(e) => Err(PathError::new("read", p, e).into()),
        }
    }

    fn open_layer(&self, diff_id: &Digest) -> Result<Box<dyn Read + Send + '_>, CacheError> {
        let p = layer_path(&self.committed(), diff_id);
        let f = fs::File::open(&p).map_err(|e| {
            CacheError::Read(format!(
                "layer with SHA '{diff_id}' not found in cache: {e}"
            ))
        })?;
        Ok(Box::new(VerifyingReader::new(
            BufReader::with_capacity(256 * 1024, f),
            diff_id.clone(),
            None,
            format!("cached layer {}", p.display()),
        )))
    }
}

/// A new volume cache being written into `<dir>/staging`.
pub struct VolumeCacheWriter {
    dir: PathBuf,
    staging: PathBuf,
    committed: PathBuf,
    done: AtomicBool,
}

impl VolumeCacheWriter {
    /// Prepares `<dir>/staging` (emptied) and `<dir>/committed`; `<dir>` is created if missing.
    pub fn create(dir: &Path) -> Result<Self, CacheError> {
        let w = Self {
            dir: dir.to_path_buf(),
            staging: dir.join("staging"),
            committed: dir.join("committed"),
            done: AtomicBool::new(false),
        };
        remove_dir_if_exists(&w.staging)?;
        remove_dir_if_exists(&w.dir.join("committed-backup"))?;
        fs::create_dir_all(&w.staging).at("create directory", &w.staging)?;
        fs::create_dir_all(&w.committed).at("create directory", &w.committed)?;
        Ok(w)
    }

    fn check_open(&self) -> Result<(), CacheError> {
        if self.done.load(Ordering::SeqCst) {
            return Err(CacheError::Other(
                "cache cannot be modified after commit".into(),
            ));
        }
        Ok(())
    }
}

fn remove_dir_if_exists(p: &Path) -> Result<(), PathError> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(PathError::new("remove", p, e)),
        _ => Ok(()),
    }
}

/// sha256 of a file's contents.
fn hash_file(p: &Path) -> io::Result<Digest> {
    let mut f = fs::File::open(p)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish().0);
        }
        h.update(&buf[..n]);
    }
}

impl CacheWriter for VolumeCacheWriter {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn add_layer(&self, fill: &TarFill<'_>) -> Result<Digest, CacheError> {
        self.check_open()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".layer-")
            .tempfile_in(&self.staging)
            .at("create temp file in", &self.staging)?;
        let mut w = HashWriter::new(BufWriter::with_capacity(256 * 1024, tmp.as_file_mut()));
        fill(&mut w).at("write cache layer in", &self.staging)?;
        let (buf, d, _) = w.finish();
        buf.into_inner()
            .map_err(|e| e.into_error())
            .at("write cache layer in", &self.staging)?;
        let dest = layer_path(&self.staging, &d);
        if !dest.exists() {
            tmp.persist(&dest)
                .map_err(|e| PathError::new("rename into", &dest, e.error))?;
        }
        Ok(d)
    }

    fn reuse_layer(&self, diff_id: &Digest) -> Result<(), CacheError> {
        self.check_open()?;
        let src = layer_path(&self.committed, diff_id);
        // The previous tar is only kept if it still is what its name says.
        let actual = hash_file(&src).map_err(|e| {
            CacheError::Read(format!(
                "layer with SHA '{diff_id}' not found in cache: {e}"
            ))
        })?;
        if actual != *diff_id {
            return Err(CacheError::Read(format!(
                "cached layer {} is corrupt (its content has digest {actual})",
                src.display()
            )));
        }
        let dest = layer_path(&self.staging, diff_id);
        match fs::hard_link(&src, &dest) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                Err(PathError::new("link", &dest, e).into())
            }
            _ => Ok(()),
        }
    }

    fn commit(&self, metadata: &CacheMetadata, _layers: &[Digest]) -> Result<(), CacheError> {
        self.check_open()?;
        self.done.store(true, Ordering::SeqCst);
        let meta = self.staging.join(METADATA_LABEL);
        let mut f = fs::File::create(&meta).at("create", &meta)?;
        // json.Encoder: one line.
        writeln!(f, "{}", metadata.encode()).at("write", &meta)?;
        f.sync_all().at("sync", &meta)?;
        let backup = self.dir.join("committed-backup");
        fs::rename(&self.committed, &backup).at("back up cache", &self.committed)?;
        if let Err(e) = fs::rename(&self.staging, &self.committed) {
            fs::rename(&backup, &self.committed).at("roll back cache", &backup)?;
            return Err(PathError::new("commit cache", &self.staging, e).into());
        }
        remove_dir_if_exists(&backup)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(bytes: &'static [u8]) -> impl Fn(&mut dyn Write) -> io::Result<()> + Sync {
        move |w: &mut dyn Write| w.write_all(bytes)
    }

    #[test]
    fn add_reuse_commit_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let w = VolumeCacheWriter::create(&dir).unwrap();
        let a = w.add_layer(&fill(b"layer a")).unwrap();
        assert_eq!(a, Digest::of(b"layer a"));
        let mut meta = CacheMetadata::default();
        meta.sbom.sha = a.to_string();
        w.commit(&meta, std::slice::from_ref(&a)).unwrap();
        assert!(w.add_layer(&fill(b"late")).is_err());
        let names: Vec<String> = fs::read_dir(dir.join("committed"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(dir.join("committed").join(format!("{a}.tar")).is_file());
        assert!(!dir.join("staging").exists() && !dir.join("committed-backup").exists());

        let r = VolumeCache::open(&dir);
        assert!(r.exists());
        assert_eq!(r.metadata().unwrap(), meta);
        let mut s = String::new();
        r.open_layer(&a).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "layer a");
        assert!(r.open_layer(&Digest::of(b"x")).err().unwrap().is_read());

        // Second build: reuse hard-links the committed tar; a corrupt one is refused.
        let w = VolumeCacheWriter::create(&dir).unwrap();
        w.reuse_layer(&a).unwrap();
        w.commit(&CacheMetadata::default(), &[]).unwrap();
        fs::write(dir.join("committed").join(format!("{a}.tar")), b"tampered").unwrap();
        let mut s = String::new();
        let err = r
            .open_layer(&a)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let w = VolumeCacheWriter::create(&dir).unwrap();
        assert!(w.reuse_layer(&a).unwrap_err().is_read());
    }
}
