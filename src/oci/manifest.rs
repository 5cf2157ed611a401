//! Manifests and indexes (OCI and Docker v2s2) and platform selection.

use oci_spec::image::{ImageIndex, ImageManifest};

use super::{canonical_json, media, Error};
use crate::digest::Digest;

pub use oci_spec::image::Descriptor;

/// A manifest exactly as stored: bytes, their digest and media type.
#[derive(Clone, Debug)]
pub struct RawManifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// A parsed manifest.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per image; boxing buys nothing
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

impl RawManifest {
    /// Wrap bytes read from somewhere; `media_type` is the transport's content type, if any.
    pub fn from_bytes(bytes: Vec<u8>, media_type: Option<&str>) -> Result<Self, Error> {
        let media_type =
            match media_type.filter(|m| media::is_index(m) || media::is_image_manifest(m)) {
                Some(m) => m.to_string(),
                None => sniff_media_type(&bytes)?,
            };
        let digest = Digest::of(&bytes);
        Ok(Self {
            media_type,
            bytes,
            digest,
        })
    }

    /// Serialise an image manifest canonically.
    pub fn image(m: &ImageManifest) -> Result<Self, Error> {
        let bytes = canonical_json(m).map_err(|e| Error::json("image manifest", e))?;
        let media_type = m
            .media_type()
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        Ok(Self {
            digest: Digest::of(&bytes),
            media_type,
            bytes,
        })
    }

    /// Serialise an index canonically.
    pub fn index(i: &ImageIndex) -> Result<Self, Error> {
        let bytes = canonical_json(i).map_err(|e| Error::json("image index", e))?;
        let media_type = i
            .media_type()
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| media::OCI_INDEX.to_string());
        Ok(Self {
            digest: Digest::of(&bytes),
            media_type,
            bytes,
        })
    }

    pub fn parse(&self) -> Result<Manifest, Error> {
        if media::is_index(&self.media_type) {
            serde_json::from_slice(&self.bytes)
                .map(Manifest::Index)
                .map_err(|e| Error::json(format!("index {}", self.digest), e))
        } else if media::is_image_manifest(&self.media_type) {
            serde_json::from_slice(&self.bytes)
                .map(Manifest::Image)
                .map_err(|e| Error::json(format!("manifest {}", self.digest), e))
        } else {
            Err(Error::Unsupported(format!(
                "manifest media type {:?} (want OCI or Docker v2s2 manifest or index)",
                self.media_type
            )))
        }
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.as_str().into(),
            self.bytes.len() as u64,
            &self.digest,
        )
    }
}

/// The media type of a manifest without a transport content type (OCI layouts, old registries).
fn sniff_media_type(bytes: &[u8]) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let p: Probe = serde_json::from_slice(bytes).map_err(|e| Error::json("manifest", e))?;
    if p.schema_version == Some(1) {
        return Err(Error::Unsupported(
            "Docker schema 1 manifests (push the image again with a current client)".into(),
        ));
    }
    Ok(match (p.media_type, p.manifests, p.layers) {
        (Some(m), _, _) => m,
        (None, Some(_), _) => media::OCI_INDEX.to_string(),
        (None, None, Some(_)) => media::OCI_MANIFEST.to_string(),
        _ => {
            return Err(Error::Unsupported(
                "manifest with no mediaType, manifests or layers".into(),
            ))
        }
    })
}

/// The platform an image is wanted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_string(),
            arch: normalize_arch(arch).to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform this binary runs on.
    pub fn host() -> Self {
        Self::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Self::new(os, arch, None)),
            [os, arch, variant] => Ok(Self::new(os, arch, Some(variant))),
            _ => Err(Error::Platform(format!(
                "invalid platform {s:?}: want os/arch[/variant]"
            ))),
        }
    }

    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.arch != normalize_arch(arch) {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have = variant.unwrap_or("");
                // arm64 images often omit the implied "v8".
                want == have || (self.arch == "arm64" && want == "v8" && have.is_empty())
            }
        }
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Pick the manifest for `want` from an index. Errors list what the index offers.
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    want: &PlatformSpec,
) -> Result<&'a Descriptor, Error> {
    let candidates = index
        .manifests()
        .iter()
        .filter(|d| media::is_image_manifest(d.media_type().as_ref()));
    let mut offered = Vec::new();
    for d in candidates {
        let Some(p) = d.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        if want.matches(&os, &arch, p.variant().as_deref()) {
            return Ok(d);
        }
        offered.push(match p.variant() {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
    }
    Err(Error::Platform(format!(
        "no manifest for platform {want} in index (offers: {})",
        if offered.is_empty() {
            "none".to_string()
        } else {
            offered.join(", ")
        }
    )))
}

/// The digest of a descriptor, checked to be a sha256 digest we can verify.
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, Error> {
    Digest::try_from(d.digest()).map_err(Error::Digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> ImageIndex {
        serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","platform":{"os":"windows","architecture":"amd64"}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn selects_by_os_arch_variant() {
        let i = index();
        let pick = |s: &str| {
            select_platform(&i, &PlatformSpec::parse(s).unwrap()).map(|d| d.digest().to_string())
        };
        assert!(pick("linux/amd64").unwrap().ends_with("1111"));
        assert!(pick("linux/x86_64").unwrap().ends_with("1111"));
        assert!(pick("linux/arm64").unwrap().ends_with("2222"));
        assert!(pick("linux/arm64/v8").unwrap().ends_with("2222"));
        assert!(pick("windows/amd64").unwrap().ends_with("3333"));
        let err = pick("linux/arm/v7").unwrap_err().to_string();
        assert!(
            err.contains("linux/arm/v7") && err.contains("linux/arm64/v8, windows/amd64"),
            "{err}"
        );
    }

    #[test]
    fn sniffs_media_types() {
        let m = RawManifest::from_bytes(
            br#"{"schemaVersion":2,"layers":[],"config":{}}"#.to_vec(),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type, media::OCI_MANIFEST);
        let m = RawManifest::from_bytes(
            br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
            Some("text/plain"),
        )
        .unwrap();
        assert_eq!(m.media_type, media::OCI_INDEX);
        let err = RawManifest::from_bytes(br#"{"schemaVersion":1}"#.to_vec(), None).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
    }
}
