//! The layers an export appends (`cnb-lifecycle.md` §7.2), in order, and how each one's tar is
//! written (§7.3): absolute names, parents with on-disk ownership, the rest owned by the CNB
//! user, fixed mtimes.

use std::io;
use std::path::{Path, PathBuf};

use crate::layer::{TarOptions, TarWriter};
use tar::EntryType;

/// Where a layer's content comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A directory and everything below it (buildpack layers, SBOM, config).
    Dir(PathBuf),
    /// A launch layer the buildpack kept only as metadata: reused from the previous image.
    MetadataOnly,
    /// Part of the application directory: paths relative to it, in tar order (see `slices`).
    /// Empty: a layer of just the end-of-archive blocks, as the CNB exporter writes.
    AppSlice { app: PathBuf, paths: Vec<String> },
    /// `/cnb/lifecycle/launcher` from this file.
    Launcher(PathBuf),
    /// `/cnb/process/<type>` symlinks to the launcher.
    ProcessTypes(Vec<String>),
}

/// One layer to append.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Identity for reuse and logs: `<bp-id>:<layer>`, `app`, `launcher`, `config`, ...
    pub id: String,
    pub created_by: String,
    pub source: Source,
    /// DiffIDs the previous image recorded for this layer (any of them is reused; app layers
    /// match any previous app slice).
    pub previous_shas: Vec<String>,
    /// Owner of the entries below the layer directory.
    pub uid: u64,
    pub gid: u64,
}

impl Planned {
    /// Write this layer's entries.
    pub fn write<W: io::Write>(&self, w: W) -> io::Result<W> {
        let opts = |uid, gid| TarOptions {
            uid,
            gid,
            // The CNB exporter writes hard links as independent files.
            keep_hardlinks: false,
            ..Default::default()
        };
        match &self.source {
            Source::AppSlice { app, paths } => {
                let mut t = TarWriter::new(w, opts(self.uid, self.gid));
                if paths.is_empty() {
                    return t.finish();
                }
                let name = abs_name(app)?;
                t.append_parents(&name, true)?;
                let entries: Vec<(PathBuf, Vec<u8>)> = paths
                    .iter()
                    .map(|rel| {
                        let entry = if rel.is_empty() {
                            name.clone()
                        } else {
                            format!("{name}/{rel}")
                        };
                        (super::slices::disk_path(app, rel), entry.into_bytes())
                    })
                    .collect();
                t.append_entries(&entries)?;
                t.finish()
            }
            Source::Dir(dir) => {
                let name = abs_name(dir)?;
                let mut t = TarWriter::new(w, opts(self.uid, self.gid));
                t.append_parents(&name, true)?;
                t.append_tree(dir, &name)?;
                t.finish()
            }
            Source::Launcher(path) => {
                let mut t = TarWriter::new(w, opts(0, 0));
                t.dir_entry(b"/cnb", 0o755, 0, 0)?;
                t.dir_entry(b"/cnb/lifecycle", 0o755, 0, 0)?;
                let data = std::fs::File::open(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("open launcher {}: {e}", path.display()))
                })?;
                t.file_from(b"/cnb/lifecycle/launcher", 0o755, data)?;
                t.finish()
            }
            Source::ProcessTypes(types) => {
                let mut t = TarWriter::new(w, opts(0, 0));
                t.dir_entry(b"/cnb", 0o755, 0, 0)?;
                t.dir_entry(b"/cnb/process", 0o755, 0, 0)?;
                for ty in types {
                    let name = format!("/cnb/process/{ty}");
                    t.link_entry(
                        EntryType::Symlink,
                        name.as_bytes(),
                        b"/cnb/lifecycle/launcher",
                        0o755,
                    )?;
                }
                t.finish()
            }
            Source::MetadataOnly => Err(io::Error::other(format!(
                "layer {} has no contents to write (metadata only)",
                self.id
            ))),
        }
    }
}

/// The absolute, `/`-separated name of a directory as it appears in the image.
fn abs_name(p: &Path) -> io::Result<String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    abs.to_str()
        .map(|s| s.trim_end_matches('/').to_string())
        .ok_or_else(|| io::Error::other(format!("path is not UTF-8: {}", abs.display())))
}
