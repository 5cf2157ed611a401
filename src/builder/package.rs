//! `pack buildpack package`, reproducibly: a buildpack directory becomes one layer at
//! `/cnb/buildpacks/<escaped id>/<version>/` (pack's layout: the id and version directories,
//! then the tree with uid/gid 0, 1980-01-01T00:00:01Z, directories and executables 0755, other
//! files 0644), and a composite buildpack takes its `[[order]]` buildpacks from dependency
//! buildpackages whose layers are reused byte for byte (skipped or mounted where the target
//! already has them). The labels are the ones pack writes.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::Descriptor as OciDescriptor;
use tar::EntryType;

use super::buildpack_toml::{escape_id, Descriptor};
use super::buildpackage::{
    Buildpackage, LayerInfo, Layers, PackageMetadata, LABEL_LAYERS, LABEL_METADATA,
};
use super::fetch::Image;
use super::resolve::semver_of;
use super::resources::{BuildpackRef, BuildpackStack, OrderEntry};
use super::Error;
use crate::digest::Digest;
use crate::layer::{CompressOptions, Compression, TarOptions, TarWriter, NORMALIZED_MTIME};
use crate::oci::assemble::{push_layer, write_manifest, StoredLayer};
use crate::oci::config::rfc3339;
use crate::oci::copy::{copy_blobs, CopyOptions, CopyStats};
use crate::oci::{media, BlobStore, ImageConfig, RawManifest};

/// What to package.
#[derive(Clone, Debug)]
pub struct PackageSpec {
    /// The buildpack directory (with `buildpack.toml`).
    pub dir: PathBuf,
    /// Buildpackages a composite buildpack's order refers to.
    pub dependencies: Vec<(Arc<Image>, Buildpackage)>,
    pub os: String,
    pub arch: String,
    pub compression: Compression,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Packaged {
    pub manifest: RawManifest,
    pub descriptor: Descriptor,
    /// The packaged buildpack's own layer.
    pub layer: StoredLayer,
    /// `id@version` → diffID of every buildpack in the package, in layer order.
    pub buildpacks: Vec<(String, Digest)>,
    /// Blobs of dependency layers: uploaded, mounted or already there.
    pub reused: CopyStats,
}

/// A dependency buildpack and the image its layer is in.
struct Dep<'a> {
    key: String,
    id: &'a str,
    version: &'a str,
    info: &'a LayerInfo,
    image: &'a Image,
    diff_id: Digest,
}

/// Package `spec.dir` into `store` under `tags`.
pub fn package(
    store: &dyn BlobStore,
    tags: &[String],
    spec: &PackageSpec,
) -> Result<Packaged, Error> {
    let path = spec.dir.display().to_string();
    let err = |reason: String| Error::Buildpack {
        path: path.clone(),
        reason,
    };
    let toml_path = spec.dir.join("buildpack.toml");
    let text = fs::read_to_string(&toml_path)
        .map_err(|e| err(format!("read {}: {e}", toml_path.display())))?;
    let d = Descriptor::parse(&text).map_err(err)?;
    let deps = dependencies(spec).map_err(err)?;
    let order = pin_order(&d, &deps).map_err(err)?;
    check_used(&d, &order, &deps).map_err(err)?;

    // Dependency layers first (each once, in the order the dependencies list them), then ours.
    let mut seen = HashSet::new();
    let mut by_image: BTreeMap<String, (&Image, Vec<OciDescriptor>)> = BTreeMap::new();
    let mut layer_list: Vec<(String, Digest, OciDescriptor)> = Vec::new();
    for dep in &deps {
        if !seen.insert(dep.diff_id.clone()) {
            continue;
        }
        let desc = dep.image.view.layer(&dep.diff_id)?.ok_or_else(|| {
            err(format!(
                "{}: layer {} is missing",
                dep.image.name, dep.diff_id
            ))
        })?;
        by_image
            .entry(dep.image.name.clone())
            .or_insert_with(|| (dep.image, Vec::new()))
            .1
            .push(desc.clone());
        layer_list.push((dep.key.clone(), dep.diff_id.clone(), oci_layer(desc)));
    }
    let mut reused = CopyStats::default();
    for (image, descs) in by_image.values() {
        copy_blobs(
            &*image.store,
            store,
            descs,
            &CopyOptions::default(),
            &mut reused,
        )?;
    }
    let compress = CompressOptions::new(spec.compression);
    let layer = push_layer(
        store,
        &TarOptions::default(),
        &compress,
        media::OCI_MANIFEST,
        &|t| buildpack_layer(t, &spec.dir, &d),
    )
    .map_err(|e| err(e.to_string()))?;
    layer_list.push((d.key(), layer.info.diff_id.clone(), layer.descriptor()));

    let mut layers: Layers = Layers::new();
    for dep in &deps {
        layers
            .entry(dep.id.to_string())
            .or_default()
            .insert(dep.version.to_string(), dep.info.clone());
    }
    layers.entry(d.info.id.clone()).or_default().insert(
        d.info.version.clone(),
        LayerInfo {
            api: d.api.clone(),
            stacks: d.stacks.clone(),
            targets: d.targets.clone(),
            order,
            layer_diff_id: layer.info.diff_id.to_string(),
            homepage: d.info.homepage.clone(),
            name: d.info.name.clone(),
        },
    );
    let metadata = PackageMetadata {
        info: d.info.clone(),
        stacks: resolved_stacks(&d, &deps),
    };
    let json = |what: &str, v: serde_json::Result<String>| {
        v.map_err(|e| err(format!("serialise {what}: {e}")))
    };
    let mut cfg = ImageConfig::new(&spec.os, &spec.arch);
    cfg.set_created(Some(&rfc3339(NORMALIZED_MTIME as i64)));
    cfg.set_label(
        LABEL_METADATA,
        &json(LABEL_METADATA, serde_json::to_string(&metadata))?,
    );
    cfg.set_label(
        LABEL_LAYERS,
        &json(LABEL_LAYERS, serde_json::to_string(&layers))?,
    );
    for (_, diff_id, _) in &layer_list {
        cfg.push_layer(diff_id, None);
    }
    let manifest = write_manifest(
        store,
        &cfg,
        layer_list.iter().map(|(_, _, desc)| desc.clone()).collect(),
        media::OCI_MANIFEST,
        tags,
    )?;
    Ok(Packaged {
        manifest,
        descriptor: d,
        layer,
        buildpacks: layer_list.into_iter().map(|(k, d, _)| (k, d)).collect(),
        reused,
    })
}

/// Every buildpack of every dependency, each id@version once (the same layer twice is fine).
fn dependencies(spec: &PackageSpec) -> Result<Vec<Dep<'_>>, String> {
    let mut out: Vec<Dep<'_>> = Vec::new();
    for (image, pkg) in &spec.dependencies {
        // In the dependency's own layer order.
        let diff_ids = image.view.config.diff_ids().map_err(|e| e.to_string())?;
        let mut entries: Vec<Dep<'_>> = Vec::new();
        for (id, versions) in &pkg.layers {
            for (version, info) in versions {
                let key = format!("{id}@{version}");
                let diff_id: Digest = info.layer_diff_id.parse().map_err(|e| {
                    format!(
                        "dependency {}: buildpack {key}: invalid layerDiffID: {e}",
                        image.name
                    )
                })?;
                entries.push(Dep {
                    key,
                    id,
                    version,
                    info,
                    image,
                    diff_id,
                });
            }
        }
        entries.sort_by_key(|e| diff_ids.iter().position(|d| *d == e.diff_id));
        for e in entries {
            match out.iter().find(|o| o.key == e.key) {
                Some(o) if o.diff_id != e.diff_id => {
                    return Err(format!(
                        "buildpack {} is in dependencies {} ({}) and {} ({}) with different layers",
                        e.key, o.image.name, o.diff_id, e.image.name, e.diff_id
                    ))
                }
                Some(_) => {}
                None => out.push(e),
            }
        }
    }
    Ok(out)
}

/// The composite's order with every version pinned to a dependency buildpack.
fn pin_order(d: &Descriptor, deps: &[Dep<'_>]) -> Result<Vec<OrderEntry>, String> {
    if d.order.is_empty() {
        if !deps.is_empty() {
            return Err(format!(
                "{} has no [[order]]: dependencies are for composite buildpacks only",
                d.key()
            ));
        }
        return Ok(Vec::new());
    }
    let have = || {
        let v: Vec<&str> = deps.iter().map(|x| x.key.as_str()).collect();
        if v.is_empty() {
            "none: add --dependency buildpackages".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut order = Vec::new();
    for (i, o) in d.order.iter().enumerate() {
        let mut group = Vec::new();
        for (j, r) in o.group.iter().enumerate() {
            let candidates: Vec<&Dep<'_>> = deps.iter().filter(|x| x.id == r.id).collect();
            let pick = if r.version.is_empty() {
                candidates
                    .iter()
                    .max_by_key(|x| semver_of(x.version))
                    .copied()
            } else {
                candidates.iter().find(|x| x.version == r.version).copied()
            };
            let Some(pick) = pick else {
                let want = if r.version.is_empty() {
                    r.id.clone()
                } else {
                    format!("{}@{}", r.id, r.version)
                };
                return Err(format!(
                    "order[{i}].group[{j}]: buildpack {want} is not in the dependencies (have: {})",
                    have()
                ));
            };
            group.push(BuildpackRef {
                id: r.id.clone(),
                version: pick.version.to_string(),
                optional: r.optional,
            });
        }
        order.push(OrderEntry { group });
    }
    Ok(order)
}

/// pack refuses dependencies nothing refers to.
fn check_used(d: &Descriptor, order: &[OrderEntry], deps: &[Dep<'_>]) -> Result<(), String> {
    let refs = |o: &[OrderEntry]| -> Vec<String> {
        o.iter()
            .flat_map(|e| e.group.iter())
            .map(|r| format!("{}@{}", r.id, r.version))
            .collect()
    };
    let mut used: HashSet<String> = refs(order).into_iter().collect();
    for dep in deps {
        used.extend(refs(&dep.info.order));
    }
    match deps.iter().find(|x| !used.contains(&x.key)) {
        Some(x) => Err(format!(
            "buildpack {} (from dependency {}) is not used by buildpack {}",
            x.key,
            x.image.name,
            d.key()
        )),
        None => Ok(()),
    }
}

/// pack's `resolvedStacks`: our stacks, narrowed to those every component dependency supports.
fn resolved_stacks(d: &Descriptor, deps: &[Dep<'_>]) -> Vec<BuildpackStack> {
    let mut stacks = d.stacks.clone();
    for dep in deps {
        let theirs = &dep.info.stacks;
        if stacks.is_empty() {
            stacks = theirs.clone();
        } else if !theirs.is_empty() {
            stacks = merge_compatible(&stacks, theirs);
        }
    }
    stacks
}

/// Stacks in both lists (an `*` in one keeps the other's), with the mixins of both.
fn merge_compatible(a: &[BuildpackStack], b: &[BuildpackStack]) -> Vec<BuildpackStack> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let id = match (x.id.as_str(), y.id.as_str()) {
                ("*", other) | (other, "*") => other,
                (p, q) if p == q => p,
                _ => continue,
            };
            let mut mixins: Vec<String> = x.mixins.iter().chain(&y.mixins).cloned().collect();
            mixins.sort();
            mixins.dedup();
            out.push(BuildpackStack {
                id: id.to_string(),
                mixins,
            });
        }
    }
    out
}

/// Layers referenced from an OCI manifest need OCI media types (same bytes).
pub fn oci_layer(mut d: OciDescriptor) -> OciDescriptor {
    let mt = d.media_type().to_string();
    let oci = match mt.as_str() {
        media::DOCKER_LAYER_GZIP => Some(media::OCI_LAYER_GZIP),
        "application/vnd.docker.image.rootfs.diff.tar" => Some(media::OCI_LAYER),
        media::DOCKER_LAYER_FOREIGN => {
            Some("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
        }
        _ => None,
    };
    if let Some(t) = oci {
        d.set_media_type(t.into());
    }
    d
}

/// pack's `toDistTar`: `/cnb/buildpacks/<escaped id>` and `…/<version>`, then the tree.
fn buildpack_layer(
    t: &mut TarWriter<&mut dyn io::Write>,
    dir: &Path,
    d: &Descriptor,
) -> io::Result<()> {
    let id_dir = format!("/cnb/buildpacks/{}", escape_id(&d.info.id));
    let base = format!("{id_dir}/{}", d.info.version);
    t.dir_entry(id_dir.as_bytes(), 0o755, 0, 0)?;
    t.dir_entry(base.as_bytes(), 0o755, 0, 0)?;
    let mut entries = Vec::new();
    walk(dir, "", &mut entries)?;
    for (rel, src, meta) in entries {
        let name = format!("{base}/{rel}");
        let ft = meta.file_type();
        if ft.is_dir() {
            t.dir_entry(name.as_bytes(), 0o755, 0, 0)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src)?;
            t.link_entry(
                EntryType::Symlink,
                name.as_bytes(),
                target.as_os_str().as_bytes(),
                0o777,
            )?;
        } else if ft.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0
                || matches!(rel.as_str(), "bin/build" | "bin/detect" | "bin/generate");
            let mode = if exec { 0o755 } else { 0o644 };
            t.file_from(name.as_bytes(), mode, File::open(&src)?)?;
        } else {
            return Err(io::Error::other(format!(
                "not supported: {} is not a file, directory or symlink",
                src.display()
            )));
        }
    }
    Ok(())
}

/// Depth first, names in byte order, parents before children: (relative name, path, metadata).
fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf, fs::Metadata)>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", dir.display())))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        let name = n
            .to_str()
            .ok_or_else(|| io::Error::other(format!("not supported: non-UTF-8 name {n:?}")))?;
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let path = dir.join(&n);
        let meta = fs::symlink_metadata(&path)?;
        let is_dir = meta.is_dir();
        out.push((child_rel.clone(), path.clone(), meta));
        if is_dir {
            walk(&path, &child_rel, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(id: &str, mixins: &[&str]) -> BuildpackStack {
        BuildpackStack {
            id: id.into(),
            mixins: mixins.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn stacks_merge_like_pack() {
        let got = merge_compatible(
            &[stack("a", &["x"]), stack("b", &[])],
            &[stack("a", &["y"]), stack("c", &[])],
        );
        assert_eq!(got, vec![stack("a", &["x", "y"])]);
        assert_eq!(
            merge_compatible(&[stack("*", &[])], &[stack("s", &[])]),
            vec![stack("s", &[])]
        );
    }

    #[test]
    fn docker_layer_types_become_oci() {
        let d = OciDescriptor::new(media::DOCKER_LAYER_GZIP.into(), 3, &Digest::of(b"x"));
        assert_eq!(oci_layer(d).media_type().to_string(), media::OCI_LAYER_GZIP);
    }
}
