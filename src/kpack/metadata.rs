//! The build metadata completion reports: read from the exported image's labels, encoded as
//! kpack's termination message (base64 of gzip of JSON, at most 4096 bytes). The controller
//! decodes it into the Build's status, so field names and values must match kpack exactly.

use std::collections::HashMap;
use std::io::{Read, Write};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::registry::parse_reference;
use crate::source::registry::fully_qualified_repo;

pub const STACK_ID_LABEL: &str = "io.buildpacks.stack.id";
pub const BUILD_METADATA_LABEL: &str = "io.buildpacks.build.metadata";
pub const LIFECYCLE_METADATA_LABEL: &str = "io.buildpacks.lifecycle.metadata";
/// Kubernetes' limit on a termination message.
pub const MAX_TERMINATION_MESSAGE: usize = 4096;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackMetadata {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub homepage: String,
}

/// kpack's `cnb.BuildMetadata`, fields in kpack's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildMetadata {
    #[serde(rename = "buildpackMetadata")]
    pub buildpack_metadata: Vec<BuildpackMetadata>,
    #[serde(rename = "latestCacheImage")]
    pub latest_cache_image: String,
    #[serde(rename = "latestImage")]
    pub latest_image: String,
    #[serde(rename = "stackID")]
    pub stack_id: String,
    #[serde(rename = "stackRunImage")]
    pub stack_run_image: String,
    #[serde(rename = "lifecycleVersion")]
    pub lifecycle_version: String,
}

#[derive(Deserialize, Default)]
struct BuildLabel {
    #[serde(default)]
    buildpacks: Vec<BuildpackMetadata>,
    #[serde(default)]
    launcher: Launcher,
}

#[derive(Deserialize, Default)]
struct Launcher {
    #[serde(default)]
    version: String,
}

#[derive(Deserialize, Default)]
struct LifecycleLabel {
    #[serde(default, rename = "runImage")]
    run_image: RunImage,
    #[serde(default)]
    stack: Stack,
}

#[derive(Deserialize, Default)]
struct RunImage {
    #[serde(default)]
    reference: String,
    /// Newer lifecycles (platform 0.12+) name the run image here instead of under `stack`.
    #[serde(default)]
    image: String,
}

#[derive(Deserialize, Default)]
struct Stack {
    #[serde(default, rename = "runImage")]
    run_image: StackRunImage,
}

#[derive(Deserialize, Default)]
struct StackRunImage {
    #[serde(default)]
    image: String,
}

fn label<'a, T: Deserialize<'a>>(
    labels: &'a HashMap<String, String>,
    key: &str,
) -> Result<T, String> {
    let v = labels
        .get(key)
        .ok_or_else(|| format!("could not find label {key}"))?;
    serde_json::from_str(v).map_err(|e| format!("label {key}: {e}"))
}

/// What the labels of the image `latest_image` (`repo@digest`) say. `Ok(None)`: the image has
/// no `io.buildpacks.stack.id`, for which kpack reports empty metadata without an error.
pub fn from_labels(
    labels: &HashMap<String, String>,
    latest_image: &str,
) -> Result<Option<BuildMetadata>, String> {
    let Some(stack_id) = labels.get(STACK_ID_LABEL) else {
        return Ok(None);
    };
    let build: BuildLabel = label(labels, BUILD_METADATA_LABEL)?;
    let lc: LifecycleLabel = label(labels, LIFECYCLE_METADATA_LABEL)?;
    let parse = |s: &str| parse_reference(s).map_err(|_| format!("could not parse reference: {s}"));
    let run_ref = parse(&lc.run_image.reference)?;
    let identifier = run_ref
        .digest()
        .or(run_ref.tag())
        .unwrap_or("latest")
        .to_string();
    let base = if lc.stack.run_image.image.is_empty() {
        &lc.run_image.image
    } else {
        &lc.stack.run_image.image
    };
    let base_ref = parse(base)?;
    Ok(Some(BuildMetadata {
        buildpack_metadata: build.buildpacks,
        latest_cache_image: String::new(),
        latest_image: latest_image.to_string(),
        stack_id: stack_id.clone(),
        stack_run_image: format!(
            "{}@{identifier}",
            fully_qualified_repo(base_ref.registry(), base_ref.repository())
        ),
        lifecycle_version: build.launcher.version,
    }))
}

/// kpack's `CompressBuildMetadata`.
pub fn compress(m: &BuildMetadata) -> Result<String, String> {
    let json = serde_json::to_vec(m).map_err(|e| e.to_string())?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).map_err(|e| e.to_string())?;
    let bytes = gz.finish().map_err(|e| e.to_string())?;
    if bytes.len().div_ceil(3) * 4 > MAX_TERMINATION_MESSAGE {
        return Err("compressed metadata size too large".to_string());
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// kpack's `DecompressBuildMetadata` (what the controller does with the message).
pub fn decompress(s: &str) -> Result<BuildMetadata, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| e.to_string())?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut json)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK_DIGEST: &str =
        "sha256:0fd6395e4fe38a0c089665cbe10f52fb26fc64b4b15e672ada412bd7ab5499a0";

    fn labels() -> HashMap<String, String> {
        let mut l = HashMap::new();
        l.insert(STACK_ID_LABEL.into(), "io.buildpacks.stack.bionic".into());
        l.insert(
            BUILD_METADATA_LABEL.into(),
            r#"{"buildpacks": [{"id": "test.id", "version": "1.2.3"}], "launcher": {"version": "0.20.12"}}"#.into(),
        );
        l.insert(
            LIFECYCLE_METADATA_LABEL.into(),
            format!(
                r#"{{"app": [{{"sha": "sha256:91"}}], "runImage": {{"topLayer": "sha256:71", "reference": "localhost:5000/node@{STACK_DIGEST}"}}, "stack": {{"runImage": {{"image": "gcr.io:443/run:full-cnb"}}}}}}"#
            ),
        );
        l
    }

    // Ported from kpack's build_metadata_test.
    #[test]
    fn metadata_from_labels() {
        let m = from_labels(&labels(), "reg.io/appimage/name@sha256:aa")
            .unwrap()
            .unwrap();
        assert_eq!(
            m.buildpack_metadata,
            vec![BuildpackMetadata {
                id: "test.id".into(),
                version: "1.2.3".into(),
                homepage: String::new()
            }]
        );
        assert_eq!(m.stack_run_image, format!("gcr.io:443/run@{STACK_DIGEST}"));
        assert_eq!(m.stack_id, "io.buildpacks.stack.bionic");
        assert_eq!(m.latest_image, "reg.io/appimage/name@sha256:aa");
        assert_eq!(m.lifecycle_version, "0.20.12");
        let mut l = labels();
        l.remove(STACK_ID_LABEL);
        assert_eq!(from_labels(&l, "x").unwrap(), None);
        let mut l = labels();
        l.insert(LIFECYCLE_METADATA_LABEL.into(), "{}".into());
        assert_eq!(
            from_labels(&l, "x").unwrap_err(),
            "could not parse reference: "
        );
    }

    #[test]
    fn compression_round_trip_and_limit() {
        let m = BuildMetadata {
            buildpack_metadata: vec![BuildpackMetadata {
                id: "some-id".into(),
                version: "some-version".into(),
                homepage: "some-homepage".into(),
            }],
            latest_image: "some-image".into(),
            stack_run_image: "some-run-image".into(),
            stack_id: "some-id".into(),
            ..Default::default()
        };
        let c = compress(&m).unwrap();
        assert_eq!(decompress(&c).unwrap(), m);
        let json = String::from_utf8(serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"buildpackMetadata":[{"id":"some-id","version":"some-version","homepage":"some-homepage"}],"latestCacheImage":"","latestImage":"some-image","stackID":"some-id","stackRunImage":"some-run-image","lifecycleVersion":""}"#
        );
        // Incompressible content: pseudo-random bytes as hex.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let big: String = (0..8000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 36) as u32, 36).unwrap()
            })
            .collect();
        let too_big = BuildMetadata {
            latest_image: big,
            ..m
        };
        assert_eq!(
            compress(&too_big).unwrap_err(),
            "compressed metadata size too large"
        );
    }
}
