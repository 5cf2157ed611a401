//! Resolving a builder's `spec.order` to buildpacks (kpack's `buildpack_resolver.go`), purely
//! over the resources' `status.buildpacks`.
//!
//! Sources are consulted in tiers: the builder namespace's Buildpacks, then ClusterBuildpacks,
//! then the builder's ClusterStore. The first tier that can satisfy a reference (its id, and its
//! version when one is given) is used, so a namespaced Buildpack shadows a ClusterBuildpack with
//! the same id. Within that tier, a missing version selects the highest semver. Where kpack
//! concatenates the tiers (and lets a later source win a version tie, §9.19 of the reference),
//! we keep the precedence the tiers promise, and make kpack's TODO an error: two resources of a
//! tier providing the selected id@version with different layers are ambiguous. Identical copies
//! (same diffId or digest) are one buildpack; the first resource is recorded.

use super::resources::{
    Builder, BuilderBuildpackRef, BuilderKind, BuildpackRef, BuildpackSource, BuildpackStatus,
    OrderEntry, Resources, SourceKind,
};
use super::tree::roots;
use super::Error;

/// A buildpack and the resource it comes from (whose credentials pull its layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected<'a> {
    pub buildpack: &'a BuildpackStatus,
    pub source: &'a BuildpackSource,
}

/// A builder's resolved order and every buildpack its image needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution<'a> {
    /// `spec.order` with pinned ids and versions (what `/cnb/order.toml` and the status carry).
    pub order: Vec<OrderEntry>,
    /// The selected buildpacks and, for meta-buildpacks, their children, each id@version once,
    /// in the order first met.
    pub buildpacks: Vec<Selected<'a>>,
}

type Tier<'a> = Vec<Selected<'a>>;

/// Resolves references for one builder.
#[derive(Debug)]
pub struct Resolver<'a> {
    builder: &'a Builder,
    /// Namespaced Buildpacks, ClusterBuildpacks, the ClusterStore.
    tiers: [Vec<&'a BuildpackSource>; 3],
    resources: &'a Resources,
}

impl<'a> Resolver<'a> {
    pub fn new(resources: &'a Resources, builder: &'a Builder) -> Result<Self, Error> {
        let of = |kind: SourceKind| -> Vec<&'a BuildpackSource> {
            resources
                .sources
                .iter()
                .filter(|s| s.kind == kind)
                .filter(|s| kind != SourceKind::Buildpack || s.namespace == builder.namespace)
                .collect()
        };
        let store = match &builder.store {
            None => Vec::new(),
            Some(r) => match resources.source(SourceKind::ClusterStore, None, &r.name) {
                Some(s) => vec![s],
                None => {
                    return Err(Error::Builder {
                        builder: builder.describe(),
                        reason: format!("clusterstore '{}' not found", r.name),
                    })
                }
            },
        };
        // A ClusterBuilder has no namespace, so namespaced Buildpacks are out of its reach.
        let namespaced = match builder.kind {
            BuilderKind::Builder => of(SourceKind::Buildpack),
            BuilderKind::ClusterBuilder => Vec::new(),
        };
        Ok(Resolver {
            builder,
            tiers: [namespaced, of(SourceKind::ClusterBuildpack), store],
            resources,
        })
    }

    /// Resolve one reference; the error is kpack's message, without the entry.
    pub fn resolve(&self, r: &BuilderBuildpackRef) -> Result<Selected<'a>, String> {
        if !r.image.is_empty() {
            return Err("image reference currently not supported".into());
        }
        if !r.kind.is_empty() || !r.name.is_empty() {
            return self.resolve_object(r);
        }
        if r.id.is_empty() {
            return Err("expected exactly one, got neither: image, id, name + kind".into());
        }
        let tiers: Vec<Tier<'a>> = self
            .tiers
            .iter()
            .map(|sources| matching(sources, &r.id))
            .collect();
        select(&tiers, &r.id, &r.version)
    }

    fn resolve_object(&self, r: &BuilderBuildpackRef) -> Result<Selected<'a>, String> {
        let kind = match r.kind.as_str() {
            "Buildpack" => SourceKind::Buildpack,
            "ClusterBuildpack" => SourceKind::ClusterBuildpack,
            _ => return Err("kind must be either Buildpack or ClusterBuildpack".into()),
        };
        if r.name.is_empty() {
            return Err("missing field(s): name".into());
        }
        if kind == SourceKind::Buildpack && self.builder.kind == BuilderKind::ClusterBuilder {
            return Err(format!(
                "not supported: a ClusterBuilder may only reference ClusterBuildpacks, not Buildpack '{}'",
                r.name
            ));
        }
        let namespace = match kind {
            SourceKind::Buildpack => self.builder.namespace.as_deref(),
            _ => None,
        };
        let found = self.resources.source(kind, namespace, &r.name);
        let what = match kind {
            SourceKind::Buildpack => "buildpack",
            _ => "cluster buildpack",
        };
        if !r.id.is_empty() {
            let source = found.ok_or_else(|| format!("{what} not found: {}", r.name))?;
            return select(&[matching(&[source], &r.id)], &r.id, &r.version);
        }
        let source = found.ok_or_else(|| format!("no {what} with name '{}'", r.name))?;
        let roots = roots(&source.buildpacks);
        let [root] = roots[..] else {
            return Err(format!(
                "unexpected number of root buildpacks: {}",
                roots.len()
            ));
        };
        if !r.version.is_empty() && r.version != root.version {
            return Err(not_found(&root.id, &r.version));
        }
        Ok(Selected {
            buildpack: root,
            source,
        })
    }

    /// A meta-buildpack's child: from the resource that ships the parent if it has it (a
    /// buildpackage carries its dependencies), else by the tiers, like kpack's fetcher.
    fn resolve_child(
        &self,
        parent: &Selected<'a>,
        child: &BuildpackRef,
    ) -> Result<Selected<'a>, String> {
        let own = matching(&[parent.source], &child.id);
        let has_own = own
            .iter()
            .any(|s| child.version.is_empty() || s.buildpack.version == child.version);
        if has_own {
            return select(&[own], &child.id, &child.version);
        }
        self.resolve(&BuilderBuildpackRef {
            id: child.id.clone(),
            version: child.version.clone(),
            ..Default::default()
        })
    }

    /// Resolve every entry of the builder's order, and the children of meta-buildpacks.
    pub fn resolve_order(&self) -> Result<Resolution<'a>, Error> {
        let mut res = Resolution {
            order: Vec::new(),
            buildpacks: Vec::new(),
        };
        for (i, entry) in self.builder.order.iter().enumerate() {
            let mut group: Vec<BuildpackRef> = Vec::new();
            for (j, r) in entry.group.iter().enumerate() {
                let err = |reason: String| Error::Entry {
                    builder: self.builder.describe(),
                    entry: format!("spec.order[{i}].group[{j}] {}", r.describe()),
                    reason,
                };
                let sel = self.resolve(r).map_err(err)?;
                if let Some(k) = group.iter().position(|g| g.id == sel.buildpack.id) {
                    return Err(err(format!(
                        "buildpack id '{}' is already in this group at group[{k}]",
                        sel.buildpack.id
                    )));
                }
                group.push(BuildpackRef {
                    id: sel.buildpack.id.clone(),
                    version: sel.buildpack.version.clone(),
                    optional: r.optional,
                });
                self.add(&mut res.buildpacks, sel, &mut Vec::new())
                    .map_err(err)?;
            }
            res.order.push(OrderEntry { group });
        }
        Ok(res)
    }

    /// Add `sel` and (depth first) its children; `path` detects cycles.
    fn add(
        &self,
        all: &mut Vec<Selected<'a>>,
        sel: Selected<'a>,
        path: &mut Vec<String>,
    ) -> Result<(), String> {
        let key = sel.buildpack.key();
        if path.contains(&key) {
            path.push(key);
            return Err(format!("meta-buildpack cycle: {}", path.join(" -> ")));
        }
        if let Some(have) = all.iter().find(|s| s.buildpack.key() == key) {
            if !have.buildpack.same_content(sel.buildpack) {
                return Err(conflict(&key, have, &sel));
            }
            return Ok(());
        }
        all.push(sel);
        path.push(key);
        for child in sel.buildpack.order.iter().flat_map(|o| o.group.iter()) {
            let c = self.resolve_child(&sel, child).map_err(|e| {
                format!(
                    "meta-buildpack {}: child {}: {e}",
                    sel.buildpack.key(),
                    child.id
                )
            })?;
            self.add(all, c, path)?;
        }
        path.pop();
        Ok(())
    }
}

/// Every entry with `id` in `sources`, source by source.
fn matching<'a>(sources: &[&'a BuildpackSource], id: &str) -> Tier<'a> {
    sources
        .iter()
        .flat_map(|s| {
            s.buildpacks
                .iter()
                .filter(move |bp| bp.id == id)
                .map(move |bp| Selected {
                    buildpack: bp,
                    source: s,
                })
        })
        .collect()
}

/// Pick from the first tier that satisfies `version` (any version when empty).
fn select<'a>(tiers: &[Tier<'a>], id: &str, version: &str) -> Result<Selected<'a>, String> {
    if tiers.iter().all(Vec::is_empty) {
        return Err(format!("could not find buildpack with id '{id}'"));
    }
    if !version.is_empty() {
        let tier = tiers
            .iter()
            .map(|t| -> Tier<'a> {
                t.iter()
                    .filter(|s| s.buildpack.version == version)
                    .copied()
                    .collect()
            })
            .find(|t| !t.is_empty())
            .ok_or_else(|| not_found(id, version))?;
        return unambiguous(&tier);
    }
    let Some(tier) = tiers.iter().find(|t| !t.is_empty()) else {
        return Err(format!("could not find buildpack with id '{id}'"));
    };
    let mut versions = Vec::with_capacity(tier.len());
    for s in tier {
        let v = semver_of(&s.buildpack.version).ok_or_else(|| {
            format!(
                "cannot find buildpack '{id}' with latest version due to invalid semver '{}'",
                s.buildpack.version
            )
        })?;
        versions.push(v);
    }
    let Some(max) = versions.iter().max() else {
        return Err(format!("could not find buildpack with id '{id}'"));
    };
    let best: Tier<'a> = tier
        .iter()
        .zip(&versions)
        .filter(|(_, v)| *v == max)
        .map(|(s, _)| *s)
        .collect();
    unambiguous(&best)
}

/// The first of `candidates` (all one id@version), unless another has a different layer.
fn unambiguous<'a>(candidates: &[Selected<'a>]) -> Result<Selected<'a>, String> {
    let (first, rest) = candidates
        .split_first()
        .ok_or_else(|| "no candidates".to_string())?;
    match rest
        .iter()
        .find(|s| !s.buildpack.same_content(first.buildpack))
    {
        Some(other) => Err(conflict(&first.buildpack.key(), first, other)),
        None => Ok(*first),
    }
}

fn conflict(key: &str, a: &Selected<'_>, b: &Selected<'_>) -> String {
    let layer = |s: &Selected<'_>| {
        let d = &s.buildpack.diff_id;
        if d.is_empty() {
            "no diffId".to_string()
        } else {
            d.clone()
        }
    };
    format!(
        "buildpack {key} is provided by both {} ({}) and {} ({}) with different layers",
        a.source.describe(),
        layer(a),
        b.source.describe(),
        layer(b)
    )
}

fn not_found(id: &str, version: &str) -> String {
    format!("could not find buildpack with id '{id}' and version '{version}'")
}

/// Masterminds-style lenient semver: an optional `v`, and missing minor/patch read as 0.
pub fn semver_of(v: &str) -> Option<semver::Version> {
    let s = v.strip_prefix('v').unwrap_or(v);
    if let Ok(parsed) = semver::Version::parse(s) {
        return Some(parsed);
    }
    let (core, rest) = match s.find(['-', '+']) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let parts = core.split('.').count();
    let padded = match parts {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}
