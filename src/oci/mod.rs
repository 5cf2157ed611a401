//! OCI and Docker image model: media types, manifests and indexes, image config, layouts.
//!
//! Manifests are kept as raw bytes with their digest (we never re-serialise what we read), and
//! everything we write is serialised canonically (sorted keys) so the same content always gets
//! the same digest.

pub mod assemble;
pub mod config;
pub mod copy;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod store;
pub mod view;

use serde::Serialize;

pub use config::ImageConfig;
pub use manifest::{Descriptor, Manifest, PlatformSpec, RawManifest};
pub use store::{BlobStore, Error};

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// Accept header for manifest requests. Registry 2.8 answers 404 for an OCI manifest when the
    /// OCI type is missing from Accept, so every type we understand is always listed.
    pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
         application/vnd.oci.image.index.v1+json, \
         application/vnd.docker.distribution.manifest.v2+json, \
         application/vnd.docker.distribution.manifest.list.v2+json";

    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_LIST
    }

    pub fn is_image_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }

    /// The layer media type in the manifest family of `manifest_type` for a compression.
    pub fn layer_type(manifest_type: &str, compression: crate::layer::Compression) -> &'static str {
        use crate::layer::Compression;
        match (manifest_type == DOCKER_MANIFEST, compression) {
            (true, Compression::Gzip) => DOCKER_LAYER_GZIP,
            (true, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
            (_, Compression::Gzip) => OCI_LAYER_GZIP,
            (_, Compression::Zstd) => OCI_LAYER_ZSTD,
            (_, Compression::None) => OCI_LAYER,
        }
    }
}

/// Serialise canonically: object keys sorted (serde_json's `Value` map is a BTreeMap), no
/// whitespace. oci-spec keeps labels and annotations in `HashMap`s, whose order would
/// otherwise change between runs and with it every digest.
pub fn canonical_json<T: Serialize>(v: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&serde_json::to_value(v)?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn canonical_json_sorts_keys() {
        let m: HashMap<String, u32> = (0..50).map(|i| (format!("k{i:02}"), i)).collect();
        let s = String::from_utf8(super::canonical_json(&m).unwrap()).unwrap();
        assert!(s.starts_with(r#"{"k00":0,"k01":1,"#), "{s}");
    }
}
