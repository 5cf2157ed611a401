//! `project-metadata.toml`, in the exact layout kpack writes (BurntSushi TOML, two-space
//! indents), so the exporter's `io.buildpacks.project.metadata` label is byte-identical.

use std::path::Path;

use crate::fsutil::{write_atomic, PathError};
use crate::lifecycle::tomlw::quote;

/// The three source kinds kpack reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectSource {
    Git {
        repository: String,
        revision: String,
        commit: String,
    },
    Blob {
        url: String,
        sha256: String,
    },
    Image {
        image: String,
        digest: String,
    },
}

/// `key = value` pairs of one table.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

impl ProjectSource {
    pub fn to_toml(&self) -> String {
        let (ty, meta, version): (&str, Pairs<'_>, Pairs<'_>) = match self {
            ProjectSource::Git {
                repository,
                revision,
                commit,
            } => (
                "git",
                vec![("repository", repository), ("revision", revision)],
                vec![("commit", commit)],
            ),
            ProjectSource::Blob { url, sha256 } => {
                ("blob", vec![("url", url)], vec![("sha256sum", sha256)])
            }
            ProjectSource::Image { image, digest } => {
                ("image", vec![("image", image)], vec![("digest", digest)])
            }
        };
        let mut s = format!("[source]\n  type = {}\n  [source.metadata]\n", quote(ty));
        for (k, v) in meta {
            s.push_str(&format!("    {k} = {}\n", quote(v)));
        }
        s.push_str("  [source.version]\n");
        for (k, v) in version {
            s.push_str(&format!("    {k} = {}\n", quote(v)));
        }
        s
    }

    /// Write `<dir>/project-metadata.toml`.
    pub fn write(&self, dir: &Path) -> Result<(), PathError> {
        write_atomic(
            &dir.join("project-metadata.toml"),
            self.to_toml().as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_metadata_text_matches_kpack() {
        let s = ProjectSource::Git {
            repository: "https://github.com/git-fixtures/basic".into(),
            revision: "b029517f6300c2da0f4b651b8642506cd6aaf45d".into(),
            commit: "b029517f6300c2da0f4b651b8642506cd6aaf45d".into(),
        };
        assert_eq!(
            s.to_toml(),
            "[source]\n  type = \"git\"\n  [source.metadata]\n    repository = \"https://github.com/git-fixtures/basic\"\n    revision = \"b029517f6300c2da0f4b651b8642506cd6aaf45d\"\n  [source.version]\n    commit = \"b029517f6300c2da0f4b651b8642506cd6aaf45d\"\n"
        );
        let v: toml::Value = toml::from_str(&s.to_toml()).unwrap();
        assert_eq!(v["source"]["version"]["commit"].as_str().unwrap().len(), 40);
    }

    #[test]
    fn blob_and_image_metadata() {
        let b = ProjectSource::Blob {
            url: "http://h/a \"b\".tgz".into(),
            sha256: "ab".into(),
        }
        .to_toml();
        let v: toml::Value = toml::from_str(&b).unwrap();
        assert_eq!(
            v["source"]["metadata"]["url"].as_str(),
            Some("http://h/a \"b\".tgz")
        );
        assert_eq!(v["source"]["version"]["sha256sum"].as_str(), Some("ab"));
        let i = ProjectSource::Image {
            image: "index.docker.io/library/x".into(),
            digest: "sha256:00".into(),
        }
        .to_toml();
        assert!(i.contains("  type = \"image\"\n"), "{i}");
        assert!(i.contains("    digest = \"sha256:00\"\n"), "{i}");
    }
}
