//! `report.toml` (`cnb-lifecycle.md` §3.10), written by the exporter and the rebaser.

use std::path::Path;

use crate::fsutil::{write_atomic, PathError};
use crate::lifecycle::tomlw::quote;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Only the names that were saved.
    pub tags: Vec<String>,
    pub digest: String,
    pub manifest_size: u64,
}

impl Report {
    /// The lifecycle's layout: `[image]` with tags, digest and an integer manifest-size
    /// (omitted when 0).
    pub fn render(&self) -> String {
        let tags: Vec<String> = self.tags.iter().map(|t| quote(t)).collect();
        let mut s = format!("[image]\n  tags = [{}]\n", tags.join(", "));
        if !self.digest.is_empty() {
            s.push_str(&format!("  digest = {}\n", quote(&self.digest)));
        }
        if self.manifest_size > 0 {
            s.push_str(&format!("  manifest-size = {}\n", self.manifest_size));
        }
        s
    }

    pub fn write(&self, path: &Path) -> Result<(), PathError> {
        write_atomic(path, self.render().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_lifecycle_layout() {
        let r = Report {
            tags: vec!["reg/app:1".into(), "reg/app:latest".into()],
            digest: "sha256:ab".into(),
            manifest_size: 1234,
        };
        assert_eq!(
            r.render(),
            "[image]\n  tags = [\"reg/app:1\", \"reg/app:latest\"]\n  digest = \"sha256:ab\"\n  manifest-size = 1234\n"
        );
        let v: toml::Table = toml::from_str(&r.render()).unwrap();
        assert_eq!(v["image"]["manifest-size"].as_integer(), Some(1234));
    }
}
