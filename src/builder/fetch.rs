//! Reading the images builder resources name (stack, buildpackage and lifecycle images) from
//! registries or OCI layouts, once each, as kpack's reconcilers fetch them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::digest::Digest;
use crate::oci::location::Location;
use crate::oci::view::ImageView;
use crate::oci::{BlobStore, PlatformSpec};
use crate::registry::{parse_reference, Client};

/// One image read from its store: the single-platform manifest and config.
#[derive(Clone)]
pub struct Image {
    /// The reference as the resource wrote it (`REF`, `docker://REF` or `oci:DIR[:TAG]`).
    pub name: String,
    /// `<registry>/<repository>@<digest>` or `oci:<dir>@<digest>` (kpack's `latestImage`).
    pub latest_image: String,
    pub location: Location,
    pub store: Arc<dyn BlobStore>,
    pub view: ImageView,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("name", &self.name)
            .field("latest_image", &self.latest_image)
            .finish()
    }
}

impl Image {
    pub fn platform(&self) -> PlatformSpec {
        let c = &self.view.config;
        PlatformSpec::new(&c.os(), &c.architecture(), c.variant())
    }
}

/// The fully qualified, digest-pinned name of an image at `location` (what kpack records as
/// `latestImage`).
pub fn identifier(location: &Location, digest: &Digest) -> Result<String, crate::oci::Error> {
    Ok(match location {
        Location::Registry(r) => {
            let r = parse_reference(r)?;
            format!("{}/{}@{digest}", r.registry(), r.repository())
        }
        Location::Layout { dir, .. } => format!("oci:{}@{digest}", dir.display()),
    })
}

/// Read `name` (an index resolves to `platform`); the error is the reason only.
pub fn open_image(
    client: &Arc<Client>,
    name: &str,
    platform: &PlatformSpec,
) -> Result<Image, String> {
    let location = Location::parse(name).map_err(|e| e.to_string())?;
    let (store, view) = location.load(client, platform).map_err(|e| e.to_string())?;
    let view = view.ok_or_else(|| format!("not found in {}", store.location()))?;
    let store: Arc<dyn BlobStore> = Arc::from(store);
    let latest_image = identifier(&location, view.digest()).map_err(|e| e.to_string())?;
    Ok(Image {
        name: name.to_string(),
        latest_image,
        location,
        store,
        view,
    })
}

/// Read every image of `names` at once (loopback registries answer in about a millisecond, so
/// latency, not bandwidth, is what parallel reads save); each name is read once.
pub fn open_all(
    client: &Arc<Client>,
    names: &[String],
    platform: &PlatformSpec,
) -> BTreeMap<String, Result<Arc<Image>, String>> {
    let mut unique: Vec<&String> = names.iter().collect();
    unique.sort();
    unique.dedup();
    std::thread::scope(|s| {
        let handles: Vec<_> = unique
            .into_iter()
            .map(|n| {
                (
                    n,
                    s.spawn(move || open_image(client, n, platform).map(Arc::new)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err("reader thread panicked".to_string()));
                (n.clone(), r)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        let d = Digest::of(b"x");
        let reg = Location::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            identifier(&reg, &d).unwrap(),
            format!("127.0.0.1:5000/a/b@{d}")
        );
        let hub = Location::parse("busybox").unwrap();
        assert_eq!(
            identifier(&hub, &d).unwrap(),
            format!("docker.io/library/busybox@{d}")
        );
        let lay = Location::parse("oci:/tmp/l:t").unwrap();
        assert_eq!(identifier(&lay, &d).unwrap(), format!("oci:/tmp/l@{d}"));
    }
}
