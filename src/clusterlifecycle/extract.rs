//! Extract the lifecycle (`/cnb/lifecycle/*`) of one layer into a directory of its own, safely:
//! only entries below `cnb/lifecycle/` (or `Files/cnb/lifecycle/` in Windows layers) are
//! written, nothing lands outside the target, symlinks must stay inside, exec bits are kept,
//! and `lifecycle.toml` must parse. The layer is streamed, never held in memory.
//!
//! The layer is decompressed on a thread of its own, ahead of the extraction (`pipeline`).
//! Work happens in a staging directory inside the target, moved into place only once the
//! layer was read to its end (so its digest verified) and checked; a failure leaves the target
//! as it was. Staging inside the target (not beside it) works when the target is a mount point.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::descriptor::LifecycleDescriptor;
use super::pipeline::with_decompressed;
use super::select::Selection;
use super::Error;
use crate::fsutil::IoContext;
use crate::layer::extract::{apply_tar_filtered, AbsolutePaths, ExtractStats, Filter};
use crate::layer::{ExtractError, ExtractOptions};
use crate::oci::BlobStore;

/// Binaries a lifecycle directory must hold (pack's rule; `rebaser` and `creator` are optional).
pub const REQUIRED: &[&str] = &[
    "analyzer", "builder", "detector", "exporter", "launcher", "restorer",
];

/// What was installed.
#[derive(Clone, Debug)]
pub struct Installed {
    pub descriptor: LifecycleDescriptor,
    pub stats: ExtractStats,
}

/// Where an entry of a lifecycle layer goes in the lifecycle directory, if it is part of it.
/// Upstream images keep the descriptor beside the directory (`/cnb/lifecycle.toml`).
pub fn lifecycle_entry(p: &Path) -> Option<PathBuf> {
    let p = p.strip_prefix("Files").unwrap_or(p);
    if p == Path::new("cnb/lifecycle.toml") {
        return Some(PathBuf::from("lifecycle.toml"));
    }
    p.strip_prefix("cnb/lifecycle")
        .ok()
        .filter(|rest| !rest.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Stream the selected layer out of `store` into `target`.
pub fn extract_selection(
    store: &dyn BlobStore,
    sel: &Selection,
    target: &Path,
) -> Result<Installed, Error> {
    let digest = crate::oci::manifest::descriptor_digest(&sel.layer)?;
    let blob = store.open_blob(&digest, Some(sel.layer.size()))?;
    extract_layer(blob, target, &sel.image)
}

/// Extract the lifecycle part of a layer stream (tar, gzip or zstd) into `target`.
/// `image` names the source in errors.
pub fn extract_layer(
    layer: impl Read + Send,
    target: &Path,
    image: &str,
) -> Result<Installed, Error> {
    fs::create_dir_all(target).at("create directory", target)?;
    let staging = tempfile::Builder::new()
        .prefix(".lifecycle-")
        .tempdir_in(target)
        .at("create staging directory in", target)?;
    let opts = ExtractOptions {
        absolute: AbsolutePaths::Reroot,
        whiteouts: crate::layer::extract::Whiteouts::Keep,
        ..ExtractOptions::default()
    };
    let filter = Filter {
        map: &lifecycle_entry,
        contained_symlinks: true,
    };
    let wrap = |source| Error::Extract {
        image: image.to_string(),
        source,
    };
    // The layer is read to its end even though the tar reader stops at the end-of-archive
    // blocks: a verifying reader checks the blob's digest before anything is moved into place.
    // Bad data explains any tar error it causes, so a read error is reported first.
    let (stats, read) = with_decompressed(layer, |tar| {
        apply_tar_filtered(tar, staging.path(), &opts, &filter)
    });
    read.map_err(|e| wrap(ExtractError::Read(e)))?;
    let stats = stats.map_err(wrap)?;
    let descriptor = check_dir(staging.path(), image)?;
    move_into(staging.path(), target)?;
    Ok(Installed { descriptor, stats })
}

/// Check a lifecycle directory: `lifecycle.toml` parses, the phase binaries are there.
pub fn check_dir(dir: &Path, image: &str) -> Result<LifecycleDescriptor, Error> {
    let toml = dir.join("lifecycle.toml");
    let text = match fs::read_to_string(&toml) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::select(
                image,
                "the lifecycle layer has no lifecycle.toml (in /cnb/lifecycle/ or /cnb/)",
            ))
        }
        Err(e) => return Err(crate::fsutil::PathError::new("read", &toml, e).into()),
    };
    let d = LifecycleDescriptor::parse_toml(&text, &format!("lifecycle.toml of {image}"))?;
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|b| !dir.join(b).exists() && !dir.join(format!("{b}.exe")).exists())
        .collect();
    if !missing.is_empty() {
        return Err(Error::select(
            image,
            format!(
                "the lifecycle layer lacks {} in /cnb/lifecycle",
                missing.join(", ")
            ),
        ));
    }
    Ok(d)
}

/// Move every entry of `staging` into `target`, replacing entries of the same name.
fn move_into(staging: &Path, target: &Path) -> Result<(), Error> {
    let mut names: Vec<_> = fs::read_dir(staging)
        .at("read directory", staging)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .at("read directory", staging)?;
    names.sort();
    for name in names {
        let dest = target.join(&name);
        match fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&dest).at("remove", &dest)?,
            Ok(_) => fs::remove_file(&dest).at("remove", &dest)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::fsutil::PathError::new("stat", &dest, e).into()),
        }
        fs::rename(staging.join(&name), &dest).at("move into place", &dest)?;
    }
    Ok(())
}
