//! Root buildpacks of a resource (kpack's `NewTree`, `dependency_tree.go`).

use super::resources::BuildpackStatus;

/// The entries whose id no entry's `order[].group[]` refers to, in input order.
///
/// As in kpack, this works by id only: two versions of an unreferenced id are two roots.
pub fn roots(buildpacks: &[BuildpackStatus]) -> Vec<&BuildpackStatus> {
    let used: std::collections::HashSet<&str> = buildpacks
        .iter()
        .flat_map(|bp| bp.order.iter())
        .flat_map(|o| o.group.iter())
        .map(|r| r.id.as_str())
        .collect();
    buildpacks
        .iter()
        .filter(|bp| !used.contains(bp.id.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::resources::{BuildpackRef, OrderEntry};

    fn bp(id: &str, groups: &[&[&str]]) -> BuildpackStatus {
        BuildpackStatus {
            id: id.into(),
            order: groups
                .iter()
                .map(|g| OrderEntry {
                    group: g
                        .iter()
                        .map(|id| BuildpackRef {
                            id: (*id).into(),
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn ids<'a>(r: &[&'a BuildpackStatus]) -> Vec<&'a str> {
        r.iter().map(|b| b.id.as_str()).collect()
    }

    // dependency_tree_test.go: "there is 1 root tree / builds the tree".
    #[test]
    fn one_root_with_children_in_several_groups() {
        let bps = [
            bp(
                "parent-buildpack",
                &[
                    &["child-buildpack-1", "child-buildpack-2"],
                    &["child-buildpack-3"],
                ],
            ),
            bp("child-buildpack-1", &[]),
            bp("child-buildpack-2", &[]),
            bp("child-buildpack-3", &[]),
        ];
        assert_eq!(ids(&roots(&bps)), ["parent-buildpack"]);
    }

    // "handles nested children".
    #[test]
    fn nested_children_are_not_roots() {
        let bps = [
            bp("parent-buildpack", &[&["child-buildpack-1"]]),
            bp("child-buildpack-1", &[&["grandchild-buildpack-1"]]),
            bp("grandchild-buildpack-1", &[]),
        ];
        assert_eq!(ids(&roots(&bps)), ["parent-buildpack"]);
    }

    // "There is multiple root tree".
    #[test]
    fn several_roots() {
        let bps = [
            bp("parent-buildpack-1", &[&["child-buildpack-1"]]),
            bp("parent-buildpack-2", &[]),
            bp("child-buildpack-1", &[]),
        ];
        assert_eq!(
            ids(&roots(&bps)),
            ["parent-buildpack-1", "parent-buildpack-2"]
        );
    }

    #[test]
    fn two_versions_of_one_id_are_two_roots() {
        let mut v8 = bp("io.buildpack.multi", &[]);
        v8.version = "8.0.0".into();
        let mut v9 = v8.clone();
        v9.version = "9.0.0".into();
        assert_eq!(roots(&[v8, v9]).len(), 2);
    }
}
