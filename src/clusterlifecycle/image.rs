//! Build our lifecycle image: a `linux` layer with `/cnb/lifecycle/{lifecycle, launcher,
//! lifecycle.toml}` and the phase names as symlinks to `lifecycle`, optionally a `windows` layer
//! (`Files/cnb/lifecycle/*.exe`, phase names as hard links), and the labels kpack and pack read.
//! Every entry has uid/gid 0 and the normalized mtime, and the config a fixed `created`, so the
//! same binaries always give the same digest.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use tar::EntryType;

use super::descriptor::LifecycleDescriptor;
use super::Error;
use crate::layer::{CompressOptions, Compression, TarOptions, TarWriter, NORMALIZED_MTIME};
use crate::oci::assemble::{push_layer, write_image, StoredLayer};
use crate::oci::config::rfc3339;
use crate::oci::{media, BlobStore, ImageConfig, RawManifest};

/// Phase names served by the multi-call `lifecycle` binary.
pub const PHASES: &[&str] = &[
    "analyzer", "builder", "creator", "detector", "exporter", "rebaser", "restorer",
];

/// The two binaries of one OS.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub lifecycle: PathBuf,
    pub launcher: PathBuf,
}

#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub descriptor: LifecycleDescriptor,
    pub linux: Binaries,
    /// Windows binaries (`.exe`), when we have them; we cannot build them here.
    pub windows: Option<Binaries>,
    /// The config's architecture.
    pub arch: String,
    pub compression: Compression,
}

/// What [`build_image`] wrote.
#[derive(Clone, Debug)]
pub struct Built {
    pub manifest: RawManifest,
    pub linux: StoredLayer,
    pub windows: Option<StoredLayer>,
}

/// Write the lifecycle image into `store` under `tags`.
pub fn build_image(
    store: &dyn BlobStore,
    spec: &ImageSpec,
    tags: &[String],
) -> Result<Built, Error> {
    for (what, p) in binaries(spec) {
        if !p.is_file() {
            return Err(Error::Usage(format!(
                "{what} binary {} is not a file",
                p.display()
            )));
        }
    }
    let toml = spec.descriptor.to_toml();
    let tar = TarOptions::default();
    let compress = CompressOptions::new(spec.compression);
    let linux = push_layer(store, &tar, &compress, media::OCI_MANIFEST, &|t| {
        linux_layer(t, &spec.linux, &toml)
    })?;
    let windows = match &spec.windows {
        Some(w) => Some(push_layer(
            store,
            &tar,
            &compress,
            media::OCI_MANIFEST,
            &|t| windows_layer(t, w, &toml),
        )?),
        None => None,
    };
    let mut cfg = ImageConfig::new("linux", &spec.arch);
    cfg.set_created(Some(&rfc3339(NORMALIZED_MTIME as i64)));
    cfg.set_working_dir(Some("/layers"));
    for (k, v) in spec.descriptor.labels()? {
        cfg.set_label(&k, &v);
    }
    cfg.set_label("linux", &linux.info.diff_id.to_string());
    let mut layers = vec![linux.clone()];
    if let Some(w) = &windows {
        cfg.set_label("windows", &w.info.diff_id.to_string());
        layers.push(w.clone());
    }
    let manifest = write_image(store, &mut cfg, &layers, media::OCI_MANIFEST, tags)?;
    Ok(Built {
        manifest,
        linux,
        windows,
    })
}

fn binaries(spec: &ImageSpec) -> Vec<(&'static str, &PathBuf)> {
    let mut v = vec![
        ("linux lifecycle", &spec.linux.lifecycle),
        ("linux launcher", &spec.linux.launcher),
    ];
    if let Some(w) = &spec.windows {
        v.push(("windows lifecycle", &w.lifecycle));
        v.push(("windows launcher", &w.launcher));
    }
    v
}

/// Entries in byte order of their names: `cnb/`, `cnb/lifecycle/`, then the directory.
fn linux_layer(t: &mut TarWriter<&mut dyn io::Write>, b: &Binaries, toml: &str) -> io::Result<()> {
    t.dir_entry(b"cnb", 0o755, 0, 0)?;
    t.dir_entry(b"cnb/lifecycle", 0o755, 0, 0)?;
    let mut names: Vec<&str> = PHASES.to_vec();
    names.extend(["launcher", "lifecycle", "lifecycle.toml"]);
    names.sort_unstable();
    for n in names {
        let name = format!("cnb/lifecycle/{n}");
        match n {
            "launcher" => t.file_from(name.as_bytes(), 0o755, File::open(&b.launcher)?)?,
            "lifecycle" => t.file_from(name.as_bytes(), 0o755, File::open(&b.lifecycle)?)?,
            "lifecycle.toml" => t.file_entry(name.as_bytes(), 0o644, toml.as_bytes())?,
            _ => t.link_entry(EntryType::Symlink, name.as_bytes(), b"lifecycle", 0o777)?,
        }
    }
    Ok(())
}

/// The Windows layer format: `Files/` holds the filesystem, `Hives/` the registry (empty).
/// Phase names are hard links to `lifecycle.exe` (so they must follow it). Windows security
/// descriptors (`MSWINDOWS.rawsd` PAX records) are not written: the defaults apply.
fn windows_layer(
    t: &mut TarWriter<&mut dyn io::Write>,
    b: &Binaries,
    toml: &str,
) -> io::Result<()> {
    for d in ["Files", "Files/cnb", "Files/cnb/lifecycle", "Hives"] {
        t.dir_entry(d.as_bytes(), 0o755, 0, 0)?;
    }
    let dir = "Files/cnb/lifecycle";
    t.file_from(
        format!("{dir}/launcher.exe").as_bytes(),
        0o755,
        File::open(&b.launcher)?,
    )?;
    let lifecycle = format!("{dir}/lifecycle.exe");
    t.file_from(lifecycle.as_bytes(), 0o755, File::open(&b.lifecycle)?)?;
    t.file_entry(
        format!("{dir}/lifecycle.toml").as_bytes(),
        0o644,
        toml.as_bytes(),
    )?;
    for p in PHASES {
        let name = format!("{dir}/{p}.exe");
        t.link_entry(
            EntryType::Link,
            name.as_bytes(),
            lifecycle.as_bytes(),
            0o755,
        )?;
    }
    Ok(())
}
