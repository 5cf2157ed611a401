//! Build plans: a buildpack's detect contribution, the resolved `plan.toml`, and the
//! per-buildpack plan handed to `bin/build`.

use std::path::Path;

use super::tomlr::{self, Fields, TomlError};
use super::tomlw::Tbl;

#[derive(Debug, Clone, PartialEq)]
pub struct Require {
    pub name: String,
    pub metadata: toml::Table,
}

impl Require {
    fn to_tbl(&self, always_metadata: bool) -> Tbl {
        let t = Tbl::new().str("name", &self.name);
        if always_metadata || !self.metadata.is_empty() {
            t.table("metadata", Tbl::from_toml(&self.metadata))
        } else {
            t
        }
    }
}

/// One `provides`/`requires` section: the top level of a contribution or one `[[or]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanSection {
    pub provides: Vec<String>,
    pub requires: Vec<Require>,
}

/// What `bin/detect` wrote to `$CNB_BUILD_PLAN_PATH`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contribution {
    pub main: PlanSection,
    pub or: Vec<PlanSection>,
}

fn read_section(f: &Fields<'_>) -> Result<PlanSection, TomlError> {
    let mut s = PlanSection::default();
    for (i, p) in f.tables("provides")?.into_iter().enumerate() {
        s.provides
            .push(f.child(&format!("provides[{i}]"), p, |g| g.req_str("name"))?);
    }
    for (i, r) in f.tables("requires")?.into_iter().enumerate() {
        s.requires.push(f.child(&format!("requires[{i}]"), r, |g| {
            // The spec moved version into metadata; a top-level version is an error.
            if g.has("version") {
                return Err(g.err("version", "must be in `metadata.version`"));
            }
            Ok(Require {
                name: g.req_str("name")?,
                metadata: g.table("metadata")?.cloned().unwrap_or_default(),
            })
        })?);
    }
    Ok(s)
}

impl Contribution {
    pub fn parse(path: &Path, text: &str) -> Result<Self, TomlError> {
        let table = tomlr::parse(path, text)?;
        let root = Fields::root(path, &table);
        let main = read_section(&root)?;
        let mut or = Vec::new();
        for (i, o) in root.tables("or")?.into_iter().enumerate() {
            or.push(root.child(&format!("or[{i}]"), o, |f| read_section(&f))?);
        }
        Ok(Self { main, or })
    }

    /// The options tried during resolution: the top level, then each `[[or]]`.
    pub fn options(&self) -> Vec<&PlanSection> {
        std::iter::once(&self.main).chain(self.or.iter()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub providers: Vec<Provider>,
    pub requires: Vec<Require>,
}

/// The resolved plan.toml.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    pub fn render(&self) -> String {
        let entries = self
            .entries
            .iter()
            .map(|e| {
                Tbl::new()
                    .tables(
                        "providers",
                        e.providers
                            .iter()
                            .map(|p| Tbl::new().str("id", &p.id).str("version", &p.version))
                            .collect(),
                    )
                    .tables(
                        "requires",
                        e.requires.iter().map(|r| r.to_tbl(false)).collect(),
                    )
            })
            .collect();
        Tbl::new().tables("entries", entries).render()
    }

    pub fn read(path: &Path) -> Result<Self, TomlError> {
        let table = tomlr::read(path)?;
        let root = Fields::root(path, &table);
        let mut entries = Vec::new();
        for (i, e) in root.tables("entries")?.into_iter().enumerate() {
            entries.push(root.child(&format!("entries[{i}]"), e, |f| {
                let mut providers = Vec::new();
                for (j, p) in f.tables("providers")?.into_iter().enumerate() {
                    providers.push(f.child(&format!("providers[{j}]"), p, |g| {
                        if g.bool("extension")? {
                            return Err(
                                g.err("extension", "image extensions are not supported yet")
                            );
                        }
                        Ok(Provider {
                            id: g.req_str("id")?,
                            version: g.str_or_empty("version")?,
                        })
                    })?);
                }
                let mut requires = Vec::new();
                for (j, r) in f.tables("requires")?.into_iter().enumerate() {
                    requires.push(f.child(&format!("requires[{j}]"), r, |g| {
                        let mut metadata = g.table("metadata")?.cloned().unwrap_or_default();
                        // Older writers put version at the top level; buildpacks read metadata.
                        if let Some(v) = g.str("version")? {
                            metadata
                                .entry("version")
                                .or_insert_with(|| toml::Value::String(v));
                        }
                        Ok(Require {
                            name: g.req_str("name")?,
                            metadata,
                        })
                    })?);
                }
                Ok(PlanEntry {
                    providers,
                    requires,
                })
            })?);
        }
        Ok(Plan { entries })
    }

    /// The requirements of every entry this buildpack provides: its Buildpack Plan.
    pub fn find(&self, id: &str) -> Vec<Require> {
        self.entries
            .iter()
            .filter(|e| e.providers.iter().any(|p| p.id == id))
            .flat_map(|e| e.requires.iter().cloned())
            .collect()
    }

    /// Drops every entry with a requirement named in `met`, so later buildpacks don't see it.
    pub fn filter(&mut self, met: &[String]) {
        self.entries
            .retain(|e| !e.requires.iter().any(|r| met.contains(&r.name)));
    }
}

/// The Buildpack Plan file handed to `bin/build` (`[entries.metadata]` always present).
pub fn render_buildpack_plan(reqs: &[Require]) -> String {
    Tbl::new()
        .tables("entries", reqs.iter().map(|r| r.to_tbl(true)).collect())
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contribution_rejects_top_level_version() {
        let p = Path::new("/tmp/plan.toml");
        let e =
            Contribution::parse(p, "[[requires]]\nname = \"x\"\nversion = \"1\"\n").unwrap_err();
        assert!(e.to_string().contains("`requires[0].version`"), "{e}");
        let c = Contribution::parse(
            p,
            "[[provides]]\nname = \"a\"\n[[or]]\n[[or.requires]]\nname = \"b\"\n[or.requires.metadata]\nv = 1\n",
        )
        .unwrap();
        assert_eq!(c.options().len(), 2);
        assert_eq!(c.or[0].requires[0].metadata["v"].as_integer(), Some(1));
    }

    #[test]
    fn buildpack_plan_always_has_metadata() {
        let r = Require {
            name: "n".into(),
            metadata: toml::Table::new(),
        };
        assert_eq!(
            render_buildpack_plan(&[r]),
            "[[entries]]\n  name = \"n\"\n  [entries.metadata]\n"
        );
    }
}
