//! The exporter's (or rebaser's) `report.toml`: only `[image] tags` and `digest` matter here.

use std::path::Path;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImageReport {
    pub tags: Vec<String>,
    pub digest: String,
}

/// Read a report; errors are worded as Go's (`open <path>: ...`), since kpack appends its own
/// text directly after them.
pub fn read(path: &Path, shown: &Path) -> Result<ImageReport, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| crate::creds::go_io_error("open", shown, &e))?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<ImageReport, String> {
    let v: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.to_string().trim_end().to_string())?;
    let img = v.get("image").and_then(toml::Value::as_table);
    let tags = img
        .and_then(|i| i.get("tags"))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let digest = img
        .and_then(|i| i.get("digest"))
        .and_then(toml::Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(ImageReport { tags, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lifecycle_report() {
        let r = parse(
            "[image]\ntags = [\"r/app\", \"r/app:b1\"]\ndigest = \"sha256:ab\"\nimage-id = \"x\"\nmanifest-size = 3\n[build]\n",
        )
        .unwrap();
        assert_eq!(r.tags, vec!["r/app", "r/app:b1"]);
        assert_eq!(r.digest, "sha256:ab");
        assert!(parse("[image").is_err());
        assert_eq!(parse("").unwrap(), ImageReport::default());
    }
}
