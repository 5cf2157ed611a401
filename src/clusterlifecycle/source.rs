//! Where a lifecycle image comes from (registry, OCI layout, or a mounted directory) and
//! installing its lifecycle for one platform into a directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::extract::{extract_layer, extract_selection, Installed};
use super::select::{select_layer, Selection};
use super::Error;
use crate::layer::{TarOptions, TarWriter};
use crate::oci::layout::Layout;
use crate::oci::location::Location;
use crate::oci::PlatformSpec;
use crate::registry::Client;

/// A lifecycle image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `REF`, `docker://REF` or `oci:DIR[:TAG]`.
    Image(Location),
    /// A directory where the image is mounted: an OCI layout, or an image's root filesystem
    /// (then `cnb/lifecycle/` is taken as is: a mounted rootfs carries no labels or platform).
    Mounted(PathBuf),
}

/// The outcome of [`install`].
#[derive(Debug)]
pub struct Outcome {
    /// How the layer was chosen (`None` for a mounted root filesystem).
    pub selection: Option<Selection>,
    pub installed: Installed,
}

impl Source {
    /// Reading it needs a registry client (made only then: loading CA certificates costs
    /// more than extracting from a mounted layout).
    pub fn needs_client(&self) -> bool {
        matches!(self, Source::Image(Location::Registry(_)))
    }
}

/// Select the lifecycle for `want` from `source` and install it into `target`. `client` is
/// required when [`Source::needs_client`].
pub fn install(
    client: Option<&Arc<Client>>,
    source: &Source,
    want: &PlatformSpec,
    target: &Path,
) -> Result<Outcome, Error> {
    let (store, reference): (Box<dyn crate::oci::BlobStore>, String) = match source {
        Source::Image(Location::Layout { dir, tag }) => (Box::new(Layout::open(dir)?), tag.clone()),
        Source::Image(loc) => {
            let client = client
                .ok_or_else(|| Error::Usage(format!("reading {loc:?} needs a registry client")))?;
            loc.open(client)?
        }
        Source::Mounted(dir) if dir.join("oci-layout").exists() => {
            (Box::new(Layout::open(dir)?), String::new())
        }
        Source::Mounted(dir) => {
            return Ok(Outcome {
                selection: None,
                installed: install_rootfs(dir, target)?,
            })
        }
    };
    let sel = select_layer(&*store, &reference, want)?;
    let installed = extract_selection(&*store, &sel, target)?;
    Ok(Outcome {
        selection: Some(sel),
        installed,
    })
}

/// Install `cnb/lifecycle/` (and `cnb/lifecycle.toml`) of a mounted root filesystem by
/// streaming it as a tar through the same safe extraction as image layers.
fn install_rootfs(root: &Path, target: &Path) -> Result<Installed, Error> {
    let dir = root.join("cnb/lifecycle");
    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return Err(Error::select(
            root.display().to_string(),
            "neither an OCI layout (no oci-layout file) nor a root filesystem with /cnb/lifecycle/",
        ));
    }
    let (rx, tx) = nix::unistd::pipe().map_err(|e| Error::select("pipe", e.to_string()))?;
    let (rx, tx) = (fs::File::from(rx), fs::File::from(tx));
    let name = root.display().to_string();
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> io::Result<()> {
            let mut out = io::BufWriter::with_capacity(256 * 1024, tx);
            let mut t = TarWriter::new(&mut out, TarOptions::default());
            let toml = root.join("cnb/lifecycle.toml");
            if fs::symlink_metadata(&toml).is_ok_and(|m| m.is_file()) {
                t.append_tree(&toml, "cnb/lifecycle.toml")?;
            }
            t.append_tree(&dir, "cnb/lifecycle")?;
            t.finish()?;
            out.flush()
        });
        let result = extract_layer(rx, target, &name);
        let written = writer
            .join()
            .map_err(|_| Error::select(&name, "tar writer panicked"))?;
        // A reader error explains a writer's broken pipe, so it wins.
        let installed = result?;
        written.map_err(|e| Error::select(&name, format!("read mounted lifecycle: {e}")))?;
        Ok(installed)
    })
}
