//! `order.toml` (platform → detector) and `group.toml` (detector → builder).

use std::path::Path;

use super::tomlr::{self, Fields, TomlError};
use super::tomlw::Tbl;

/// One `[[order.group]]` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEntry {
    pub id: String,
    pub version: String,
    pub optional: bool,
}

pub type Order = Vec<Vec<OrderEntry>>;

/// Reads `[[<key>]]` / `[[<key>.group]]` (the same shape in order.toml and a composite's
/// buildpack.toml).
pub fn read_order_groups(root: &Fields<'_>, key: &str) -> Result<Order, TomlError> {
    let mut order = Vec::new();
    for (i, o) in root.tables(key)?.into_iter().enumerate() {
        order.push(root.child(&format!("{key}[{i}]"), o, |f| {
            let mut group = Vec::new();
            for (j, g) in f.tables("group")?.into_iter().enumerate() {
                group.push(f.child(&format!("group[{j}]"), g, |e| {
                    Ok(OrderEntry {
                        id: e.req_str("id")?,
                        // No version resolution exists: lookup is <buildpacks>/<id>/<version>.
                        version: e.req_str("version")?,
                        optional: e.bool("optional")?,
                    })
                })?);
            }
            Ok(group)
        })?);
    }
    Ok(order)
}

/// Reads order.toml. Image extensions are not implemented, so an `[[order-extensions]]` table
/// is refused instead of silently ignored.
pub fn read_order(path: &Path) -> Result<Order, TomlError> {
    let table = tomlr::read(path)?;
    let root = Fields::root(path, &table);
    if !root.tables("order-extensions")?.is_empty() {
        return Err(root.err("order-extensions", "image extensions are not supported yet"));
    }
    read_order_groups(&root, "order")
}

/// One `[[group]]` element of group.toml: `optional` is stripped, `api` and `homepage` kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub id: String,
    pub version: String,
    pub api: String,
    pub homepage: String,
}

impl GroupEntry {
    pub fn to_tbl(&self) -> Tbl {
        Tbl::new()
            .str("id", &self.id)
            .str("version", &self.version)
            .str("api", &self.api)
            .str_opt("homepage", &self.homepage)
    }
}

pub fn render_group(group: &[GroupEntry]) -> String {
    Tbl::new()
        .tables("group", group.iter().map(GroupEntry::to_tbl).collect())
        .render()
}

/// Every group element must use a Buildpack API we support (the image phases exit 12 otherwise);
/// the message names the file, the buildpack and both version lists.
pub fn check_group_apis(path: &Path, group: &[GroupEntry]) -> Result<(), String> {
    match group
        .iter()
        .find(|g| super::api::find_supported(super::api::BUILDPACK_APIS, &g.api).is_none())
    {
        None => Ok(()),
        Some(g) => Err(format!(
            "{}: buildpack {}@{} has api {:?}, which is not supported; supported versions are {}",
            path.display(),
            g.id,
            g.version,
            g.api,
            super::api::list(super::api::BUILDPACK_APIS)
        )),
    }
}

pub fn read_group(path: &Path) -> Result<Vec<GroupEntry>, TomlError> {
    let table = tomlr::read(path)?;
    let root = Fields::root(path, &table);
    if !root.tables("group-extensions")?.is_empty() {
        return Err(root.err("group-extensions", "image extensions are not supported yet"));
    }
    let mut out = Vec::new();
    for (i, g) in root.tables("group")?.into_iter().enumerate() {
        out.push(root.child(&format!("group[{i}]"), g, |f| {
            Ok(GroupEntry {
                id: f.req_str("id")?,
                version: f.req_str("version")?,
                api: f.req_str("api")?,
                homepage: f.str_or_empty("homepage")?,
            })
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_round_trips_in_go_layout() {
        let g = vec![
            GroupEntry {
                id: "a".into(),
                version: "1".into(),
                api: "0.10".into(),
                homepage: String::new(),
            },
            GroupEntry {
                id: "b".into(),
                version: "2".into(),
                api: "0.7".into(),
                homepage: "https://b".into(),
            },
        ];
        let text = render_group(&g);
        assert_eq!(
            text,
            "[[group]]\n  id = \"a\"\n  version = \"1\"\n  api = \"0.10\"\n\n[[group]]\n  id = \"b\"\n  version = \"2\"\n  api = \"0.7\"\n  homepage = \"https://b\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("group.toml");
        std::fs::write(&p, text).unwrap();
        assert_eq!(read_group(&p).unwrap(), g);
    }

    #[test]
    fn order_errors_name_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("order.toml");
        std::fs::write(&p, "[[order]]\n[[order.group]]\nid = \"a\"\n").unwrap();
        let e = read_order(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("order.toml: field `order[0].group[0].version`: is required"),
            "{e}"
        );
    }
}
