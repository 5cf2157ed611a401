//! Merging buildpacks' processes into the image's process list (pure).

use std::collections::BTreeMap;

use super::launch::Process;

#[derive(Debug, Default)]
pub struct ProcessMap {
    by_type: BTreeMap<String, Process>,
    pub default_type: String,
}

impl ProcessMap {
    /// Adds one buildpack's processes: a later buildpack's type replaces an earlier one; a
    /// `default = true` process becomes the default; a later non-default redefinition of the
    /// default type clears it. Returns warnings.
    pub fn add(&mut self, procs: Vec<Process>) -> Vec<String> {
        let mut warnings = Vec::new();
        for p in procs {
            if p.default {
                self.default_type = p.r#type.clone();
            } else if p.r#type == self.default_type {
                warnings.push(format!(
                    "redefining the default process type {:?} without default = true; there is no default process now",
                    p.r#type
                ));
                self.default_type.clear();
            }
            self.by_type.insert(p.r#type.clone(), p);
        }
        warnings
    }

    /// Processes sorted by type.
    pub fn list(self) -> (Vec<Process>, String) {
        (self.by_type.into_values().collect(), self.default_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str, bp: &str, default: bool) -> Process {
        Process {
            r#type: t.into(),
            command: vec!["x".into()],
            buildpack_id: bp.into(),
            default,
            ..Process::default()
        }
    }

    #[test]
    fn later_replaces_and_clears_default() {
        let mut m = ProcessMap::default();
        m.add(vec![p("web", "a", true), p("worker", "a", false)]);
        assert_eq!(m.default_type, "web");
        let w = m.add(vec![p("web", "b", false)]);
        assert_eq!(w.len(), 1);
        let (list, def) = m.list();
        assert_eq!(def, "");
        assert_eq!(list[0].buildpack_id, "b");
        assert_eq!(list[1].r#type, "worker");
    }
}
