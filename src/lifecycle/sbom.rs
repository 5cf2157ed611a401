//! SBOM files a buildpack leaves in its layers dir: recognition, `sbom-formats` validation and
//! where each goes under `<layers>/sbom/`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SbomError {
    #[error("sbom file {file}: unknown sbom extension {ext:?}; supported are cdx, spdx and syft")]
    UnknownExtension { file: String, ext: String },
    #[error(
        "sbom file {file}: media type {media_type} is not declared in buildpack.toml field `buildpack.sbom-formats`"
    )]
    Undeclared { file: String, media_type: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `launch.sbom.<ext>.json`: the buildpack's launch SBOM.
    Launch,
    /// `build.sbom.<ext>.json`.
    Build,
    /// `<layer>.sbom.<ext>.json`.
    Layer(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomFile {
    pub file_name: String,
    pub owner: Owner,
    /// `cdx`, `spdx` or `syft`.
    pub ext: String,
}

pub fn media_type(ext: &str) -> Option<&'static str> {
    match ext {
        "cdx" => Some("application/vnd.cyclonedx+json"),
        "spdx" => Some("application/spdx+json"),
        "syft" => Some("application/vnd.syft+json"),
        _ => None,
    }
}

/// `None` for files that are not `*.sbom.*.json`; an error for unknown extensions.
pub fn classify(file_name: &str) -> Option<Result<SbomFile, SbomError>> {
    let stem = file_name.strip_suffix(".json")?;
    let (head, ext) = stem.split_once(".sbom.")?;
    if head.is_empty() {
        return None;
    }
    if media_type(ext).is_none() {
        return Some(Err(SbomError::UnknownExtension {
            file: file_name.into(),
            ext: ext.into(),
        }));
    }
    let owner = match head {
        "launch" => Owner::Launch,
        "build" => Owner::Build,
        layer => Owner::Layer(layer.into()),
    };
    Some(Ok(SbomFile {
        file_name: file_name.into(),
        owner,
        ext: ext.into(),
    }))
}

/// Every found media type must be declared in `sbom-formats`.
pub fn validate(files: &[SbomFile], declared: &[String]) -> Result<(), SbomError> {
    for f in files {
        let mt = media_type(&f.ext).unwrap_or_default();
        if !declared.iter().any(|d| d == mt) {
            return Err(SbomError::Undeclared {
                file: f.file_name.clone(),
                media_type: mt.into(),
            });
        }
    }
    Ok(())
}

/// Destinations relative to `<layers>/sbom`. `layer_types` is `(launch, cache)` from the
/// layer's `.toml`; a layer SBOM without one is ignored.
pub fn destinations(
    f: &SbomFile,
    escaped_bp: &str,
    layer_types: Option<(bool, bool)>,
) -> Vec<PathBuf> {
    let name = format!("sbom.{}.json", f.ext);
    match &f.owner {
        Owner::Launch => vec![PathBuf::from("launch").join(escaped_bp).join(name)],
        Owner::Build => vec![PathBuf::from("build").join(escaped_bp).join(name)],
        Owner::Layer(layer) => {
            let Some((launch, cache)) = layer_types else {
                return Vec::new();
            };
            let base = if launch { "launch" } else { "build" };
            let mut out = vec![PathBuf::from(base).join(escaped_bp).join(layer).join(&name)];
            if cache {
                out.push(
                    PathBuf::from("cache")
                        .join(escaped_bp)
                        .join(layer)
                        .join(&name),
                );
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_routes() {
        assert_eq!(classify("launch.toml"), None);
        let f = classify("node.sbom.cdx.json").unwrap().unwrap();
        assert_eq!(f.owner, Owner::Layer("node".into()));
        assert_eq!(
            destinations(&f, "a_b", Some((true, true))),
            [
                PathBuf::from("launch/a_b/node/sbom.cdx.json"),
                PathBuf::from("cache/a_b/node/sbom.cdx.json")
            ]
        );
        assert_eq!(
            destinations(&f, "a_b", Some((false, false))),
            [PathBuf::from("build/a_b/node/sbom.cdx.json")]
        );
        assert!(destinations(&f, "a_b", None).is_empty());
        assert!(matches!(
            classify("x.sbom.foo.json"),
            Some(Err(SbomError::UnknownExtension { .. }))
        ));
        let l = classify("launch.sbom.spdx.json").unwrap().unwrap();
        assert_eq!(
            destinations(&l, "a", None),
            [PathBuf::from("launch/a/sbom.spdx.json")]
        );
        assert!(validate(std::slice::from_ref(&l), &["application/spdx+json".into()]).is_ok());
        assert!(validate(&[l], &[]).is_err());
    }
}
