//! Write a [`Definition`]'s layers and config into a store.

use std::fs::File;
use std::io;

use tar::EntryType;

use super::definition::{Definition, Entry, EntryKind, LayerDef};
use super::Error;
use crate::layer::{CompressOptions, TarOptions, TarWriter};
use crate::oci::assemble::{push_layer, write_manifest, StoredLayer};
use crate::oci::{media, BlobStore, ImageConfig, RawManifest};

/// What [`build_image`] wrote.
#[derive(Clone, Debug)]
pub struct Built {
    pub manifest: RawManifest,
    /// In the definition's order.
    pub layers: Vec<StoredLayer>,
}

/// Write the image `def` describes into `store` under `tags` (an OCI manifest).
pub fn build_image(
    store: &dyn BlobStore,
    def: &Definition,
    compress: &CompressOptions,
    tags: &[String],
) -> Result<Built, Error> {
    let tar = TarOptions::default();
    let mut layers = Vec::with_capacity(def.layers.len());
    for l in &def.layers {
        let stored = push_layer(store, &tar, compress, media::OCI_MANIFEST, &|t| {
            write_layer(t, l)
        })
        .map_err(|source| Error::Layer {
            layer: l.name.clone(),
            source,
        })?;
        layers.push(stored);
    }
    let mut cfg = config(def);
    // History says which definition layer each one is (`docker history`, dive).
    for (l, s) in def.layers.iter().zip(&layers) {
        cfg.push_layer(
            &s.info.diff_id,
            Some(&format!("buildpod image build: {}", l.name)),
        );
    }
    let manifest = write_manifest(
        store,
        &cfg,
        layers.iter().map(StoredLayer::descriptor).collect(),
        media::OCI_MANIFEST,
        tags,
    )?;
    Ok(Built { manifest, layers })
}

fn config(def: &Definition) -> ImageConfig {
    let d = &def.image;
    let mut cfg = ImageConfig::new(&d.os, &d.architecture);
    cfg.set_created(Some(&d.created));
    for (k, v) in &d.env {
        cfg.set_env(k, v);
    }
    cfg.set_entrypoint(d.entrypoint.clone());
    cfg.set_cmd(d.cmd.clone());
    cfg.set_user(d.user.as_deref());
    cfg.set_working_dir(d.working_dir.as_deref());
    for (k, v) in &d.labels {
        cfg.set_label(k, v);
    }
    cfg
}

/// Entries are already sorted with their parents (see `Definition::load`).
fn write_layer(t: &mut TarWriter<&mut dyn io::Write>, l: &LayerDef) -> io::Result<()> {
    for Entry {
        path,
        mode,
        uid,
        gid,
        kind,
    } in &l.entries
    {
        let name = path.as_bytes();
        match kind {
            EntryKind::Dir => t.dir_entry(name, *mode, *uid, *gid)?,
            EntryKind::File(src) => {
                let f = File::open(src).map_err(|e| {
                    io::Error::new(e.kind(), format!("open {}: {e}", src.display()))
                })?;
                t.file_from(name, *mode, f)?;
            }
            EntryKind::Text(text) => t.file_entry(name, *mode, text.as_bytes())?,
            EntryKind::Symlink(target) => {
                t.link_entry(EntryType::Symlink, name, target.as_bytes(), 0o777)?
            }
            EntryKind::Tree(src) if path.is_empty() => {
                let mut children: Vec<_> = std::fs::read_dir(src)?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<_>>()?;
                children.sort();
                for c in children {
                    let child = src.join(&c);
                    let name = c.to_str().ok_or_else(|| {
                        io::Error::other(format!("{}: name is not UTF-8", child.display()))
                    })?;
                    t.append_tree(&child, name)?;
                }
            }
            EntryKind::Tree(src) => t.append_tree(src, path)?,
        }
    }
    Ok(())
}
