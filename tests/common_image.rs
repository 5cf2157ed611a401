//! Helpers shared by the image tests (included with `#[path]`).

use std::path::Path;

use buildpod::layer::{CompressOptions, Compression, TarOptions};
use buildpod::oci::assemble::{push_layer, write_image, StoredLayer};
use buildpod::oci::{media, BlobStore, ImageConfig, RawManifest};

/// A layer holding the contents of `dir` at the image root.
pub fn dir_layer(store: &dyn BlobStore, dir: &Path, c: Compression, threads: usize) -> StoredLayer {
    let mut opts = CompressOptions::new(c);
    opts.threads = threads;
    push_layer(
        store,
        &TarOptions::default(),
        &opts,
        media::OCI_MANIFEST,
        &|t| {
            let mut kids: Vec<_> = std::fs::read_dir(dir)?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            kids.sort();
            for k in kids {
                let name = k.file_name().unwrap().to_string_lossy().into_owned();
                t.append_tree(&k, &name)?;
            }
            Ok(())
        },
    )
    .unwrap()
}

/// An image of one layer made from `dir`, tagged `tag` in `store`.
pub fn dir_image(
    store: &dyn BlobStore,
    dir: &Path,
    c: Compression,
    arch: &str,
    tag: &str,
) -> RawManifest {
    let layer = dir_layer(store, dir, c, 2);
    let mut cfg = ImageConfig::new("linux", arch);
    cfg.set_created(Some("1980-01-01T00:00:01Z"));
    cfg.set_env("PATH", "/usr/bin:/bin");
    cfg.set_label("org.example.name", tag);
    cfg.set_entrypoint(Some(vec!["/bin/sh".into()]));
    write_image(
        store,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &[tag.to_string()],
    )
    .unwrap()
}
