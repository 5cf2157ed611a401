//! Writing the builder image as kpack's `builder_builder.go` does: the stack's build image, then
//! a layer of default directories, the lifecycle layer, one layer per buildpack (compressed size
//! descending, ties by `id@version` descending), a `/cnb/stack.toml` layer (with `/cnb/run.toml`
//! when the lifecycle speaks Platform API 0.12 or newer) and a `/cnb/order.toml` layer; working
//! directory `/layers`, a fixed `created`, and kpack's labels. Layers taken from other images keep
//! their bytes (same digest and diffID) and are only skipped or mounted when the target already
//! has them or can borrow them from another repository of its registry.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Arc;

use super::fetch::identifier;
use super::metadata::{labels, order_toml};
use super::package::oci_layer;
use super::reconcile::Reconciled;
use super::resolve::{semver_of, Resolution};
use super::resources::BuilderKind;
use super::status::{layer_order, resolved_builder_ref};
use super::{Builder, Error};
use crate::digest::Digest;
use crate::layer::NORMALIZED_MTIME;
use crate::layer::{write_layer, CompressOptions, Compression, LayerInfo, TarOptions, TarWriter};
use crate::lifecycle::tomlw::quote;
use crate::oci::assemble::{put_bytes, write_manifest};
use crate::oci::config::rfc3339;
use crate::oci::copy::{copy_blobs, copy_image, CopyOptions, CopyStats};
use crate::oci::location::Location;
use crate::oci::{media, BlobStore, RawManifest};
use crate::registry::{parse_reference, Client};
use oci_spec::image::Descriptor;

/// Where a builder image goes.
pub struct Target {
    pub location: Location,
    pub store: Arc<dyn BlobStore>,
    /// The one tag written.
    pub tag: String,
    /// `registry/repo:tag` or `oci:dir:tag`.
    pub reference: String,
}

impl Target {
    /// `dest` as users write it (`REF`, `docker://REF`, `oci:DIR[:TAG]`); a missing or `latest`
    /// tag becomes kpack's `builder-<namespace>-<name>` (`clusterbuilder-<name>`).
    pub fn open(client: &Arc<Client>, dest: &str, builder: &Builder) -> Result<Self, Error> {
        let usage = |reason: String| Error::Usage(format!("builder tag {dest:?}: {reason}"));
        let mut b = builder.clone();
        match Location::parse(dest)? {
            Location::Registry(r) => {
                if parse_reference(&r)
                    .map_err(crate::oci::Error::from)?
                    .digest()
                    .is_some()
                {
                    return Err(usage("want a tag, not a digest".into()));
                }
                b.tag = r;
                let resolved = resolved_builder_ref(&b)?;
                let location = Location::parse(&resolved)?;
                let (store, tags) = location.create(client)?;
                let tag = tags.into_iter().next().unwrap_or_default();
                Ok(Self {
                    location,
                    store: Arc::from(store),
                    tag,
                    reference: resolved,
                })
            }
            Location::Layout { dir, tag } => {
                let tag = if tag.is_empty() || tag == "latest" {
                    match (&b.kind, &b.namespace) {
                        (BuilderKind::Builder, Some(ns)) => format!("builder-{ns}-{}", b.name),
                        _ => format!("clusterbuilder-{}", b.name),
                    }
                } else {
                    tag
                };
                let tag = tag.as_str();
                let location = Location::Layout {
                    dir: dir.clone(),
                    tag: tag.to_string(),
                };
                let (store, _) = location.create(client)?;
                Ok(Self {
                    reference: format!("oci:{}:{tag}", dir.display()),
                    tag: tag.to_string(),
                    location,
                    store: Arc::from(store),
                })
            }
        }
    }
}

/// Blobs to borrow from one source store, and whether they are buildpack layers.
type CopyGroup = (Arc<dyn BlobStore>, Vec<Descriptor>, bool);

/// Blob transfers: buildpack layers apart from everything else (base, lifecycle, ours, config).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    pub buildpacks: CopyStats,
    pub other: CopyStats,
}

/// What [`write_builder`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub manifest: RawManifest,
    /// `<registry>/<repository>@<digest>` or `oci:<dir>@<digest>`.
    pub latest_image: String,
    /// What stack.toml names: the run image copied next to the builder (registries), or the
    /// stack's run image as read (layouts).
    pub run_image: String,
    /// diffIDs of the image, in order.
    pub diff_ids: Vec<Digest>,
    pub transfer: Transfer,
}

/// Write `builder`'s image with its resolved order to `target`.
pub fn write_builder(
    target: &Target,
    rec: &Reconciled,
    builder: &Builder,
    resolution: &Resolution<'_>,
    description: Option<&str>,
) -> Result<Written, Error> {
    let mut transfer = Transfer::default();
    let run_image = relocate_run_image(target, rec, &mut transfer)?;
    let lc = &rec.lifecycle.resolved.status;
    let stack = &rec.stack;
    let new_run_toml = lc
        .apis
        .platform
        .deprecated
        .iter()
        .chain(&lc.apis.platform.supported)
        .any(|a| semver_of(a).is_some_and(|v| v >= semver::Version::new(0, 12, 0)));

    // The config and layer list grow together; borrowed blobs are grouped by source store.
    let mut cfg = rec.build.view.config.clone();
    cfg.set_created(Some(&rfc3339(NORMALIZED_MTIME as i64)));
    let mut descs: Vec<Descriptor> = rec
        .build
        .view
        .image
        .layers()
        .iter()
        .cloned()
        .map(oci_layer)
        .collect();
    let mut copies: BTreeMap<String, CopyGroup> = BTreeMap::new();
    let mut add_copy = |key: String, store: &Arc<dyn BlobStore>, d: &Descriptor, bp: bool| {
        copies
            .entry(key)
            .or_insert_with(|| (Arc::clone(store), Vec::new(), bp))
            .1
            .push(d.clone());
    };
    for d in rec.build.view.image.layers() {
        add_copy(
            format!("0 base {}", rec.build.name),
            &rec.build.store,
            d,
            false,
        );
    }
    let mut ours: Vec<(Vec<u8>, LayerInfo)> = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut append = |cfg: &mut crate::oci::ImageConfig,
                      descs: &mut Vec<Descriptor>,
                      diff_id: &Digest,
                      desc: Descriptor| {
        if seen.insert(diff_id.clone()) {
            cfg.push_layer(diff_id, None);
            descs.push(oci_layer(desc));
            true
        } else {
            false
        }
    };

    let dirs = small_layer(|t| {
        let (u, g) = (stack.user_id as u64, stack.group_id as u64);
        t.dir_entry(b"/workspace", 0o755, u, g)?;
        t.dir_entry(b"/layers", 0o755, u, g)?;
        for d in ["/cnb", "/cnb/buildpacks", "/platform", "/platform/env"] {
            t.dir_entry(d.as_bytes(), 0o755, 0, 0)?;
        }
        Ok(())
    })?;
    append(&mut cfg, &mut descs, &dirs.1.diff_id, gen_desc(&dirs.1));
    ours.push(dirs);

    let sel = &rec.lifecycle.selection;
    if append(&mut cfg, &mut descs, &sel.diff_id, sel.layer.clone()) {
        add_copy(
            "1 lifecycle".into(),
            &rec.lifecycle.store,
            &sel.layer,
            false,
        );
    }

    let ordered = layer_order(resolution);
    for s in &ordered {
        let bp = s.buildpack;
        let image = rec
            .images
            .get(&bp.store_image.image)
            .ok_or_else(|| Error::image(s.source.describe(), &bp.store_image.image, "not read"))?;
        let diff_id: Digest = bp.diff_id.parse().map_err(crate::oci::Error::from)?;
        let desc = image.view.layer(&diff_id)?.ok_or_else(|| {
            Error::image(
                s.source.describe(),
                &image.name,
                format!(
                    "buildpack {}: layer {diff_id} is not in the image",
                    bp.key()
                ),
            )
        })?;
        if append(&mut cfg, &mut descs, &diff_id, desc.clone()) {
            add_copy(format!("2 {}", image.name), &image.store, &desc, true);
        }
    }

    let stack_toml = format!("[run-image]\n  image = {}\n", quote(&run_image));
    let run_toml = format!("[[images]]\n  image = {}\n", quote(&run_image));
    let stack_layer = small_layer(|t| {
        if new_run_toml {
            t.file_entry(b"/cnb/run.toml", 0o644, run_toml.as_bytes())?;
        }
        t.file_entry(b"/cnb/stack.toml", 0o644, stack_toml.as_bytes())
    })?;
    append(
        &mut cfg,
        &mut descs,
        &stack_layer.1.diff_id,
        gen_desc(&stack_layer.1),
    );
    ours.push(stack_layer);
    let order_toml = order_toml(&resolution.order);
    let order_layer =
        small_layer(|t| t.file_entry(b"/cnb/order.toml", 0o644, order_toml.as_bytes()))?;
    append(
        &mut cfg,
        &mut descs,
        &order_layer.1.diff_id,
        gen_desc(&order_layer.1),
    );
    ours.push(order_layer);

    cfg.set_working_dir(Some("/layers"));
    cfg.set_env("CNB_USER_ID", &stack.user_id.to_string());
    cfg.set_env("CNB_GROUP_ID", &stack.group_id.to_string());
    for (k, v) in labels(rec, builder, resolution, &run_image, description)? {
        cfg.set_label(&k, &v);
    }

    // Borrowed blobs from every source at once, then ours, then config and manifest.
    let results: Vec<(bool, Result<CopyStats, crate::oci::Error>)> = std::thread::scope(|s| {
        let handles: Vec<_> = copies
            .values()
            .map(|(store, d, bp)| {
                let dst = &*target.store;
                (
                    *bp,
                    s.spawn(move || {
                        let mut st = CopyStats::default();
                        copy_blobs(&**store, dst, d, &CopyOptions::default(), &mut st).map(|_| st)
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(bp, h)| {
                (
                    bp,
                    h.join().unwrap_or_else(|_| {
                        Err(crate::oci::Error::Layout("copy thread panicked".into()))
                    }),
                )
            })
            .collect()
    });
    for (bp, r) in results {
        let st = r?;
        let into = if bp {
            &mut transfer.buildpacks
        } else {
            &mut transfer.other
        };
        add_stats(into, &st);
    }
    for (bytes, info) in &ours {
        put_small(&*target.store, &info.digest, bytes, &mut transfer.other)?;
    }
    let (cfg_bytes, cfg_digest) = cfg.to_json()?;
    put_small(&*target.store, &cfg_digest, &cfg_bytes, &mut transfer.other)?;
    let manifest = write_manifest(
        &*target.store,
        &cfg,
        descs,
        media::OCI_MANIFEST,
        std::slice::from_ref(&target.tag),
    )?;
    let latest_image = identifier(&target.location, &manifest.digest)?;
    Ok(Written {
        latest_image,
        run_image,
        diff_ids: cfg.diff_ids()?,
        manifest,
        transfer,
    })
}

/// kpack copies the run image to `<builder tag>-run-image` and names that copy; an OCI layout
/// target keeps the stack's run image reference instead.
fn relocate_run_image(
    target: &Target,
    rec: &Reconciled,
    transfer: &mut Transfer,
) -> Result<String, Error> {
    if !matches!(target.location, Location::Registry(_)) {
        return Ok(rec.run.latest_image.clone());
    }
    let tag = format!("{}-run-image", target.tag);
    let (m, st) = copy_image(
        &*rec.run.store,
        &rec.run.view.digest().to_string(),
        &*target.store,
        &[tag],
        &CopyOptions::default(),
    )?;
    add_stats(&mut transfer.other, &st);
    Ok(identifier(&target.location, &m.digest)?)
}

fn add_stats(into: &mut CopyStats, st: &CopyStats) {
    into.uploaded += st.uploaded;
    into.skipped += st.skipped;
    into.mounted += st.mounted;
    into.bytes += st.bytes;
}

/// Store a small blob unless the target has it.
fn put_small(
    store: &dyn BlobStore,
    d: &Digest,
    bytes: &[u8],
    stats: &mut CopyStats,
) -> Result<(), Error> {
    if store.blob_size(d)?.is_some() {
        stats.skipped += 1;
        return Ok(());
    }
    put_bytes(store, d, bytes)?;
    stats.uploaded += 1;
    stats.bytes += bytes.len() as u64;
    Ok(())
}

/// A small generated layer (a few directories or files), gzip, in memory.
fn small_layer(
    fill: impl Fn(&mut TarWriter<&mut dyn io::Write>) -> io::Result<()>,
) -> Result<(Vec<u8>, LayerInfo), Error> {
    let mut opts = CompressOptions::new(Compression::Gzip);
    opts.threads = 1;
    let mut buf: Vec<u8> = Vec::new();
    let info = write_layer(&opts, &mut buf, |w| {
        let mut t = TarWriter::new(w, TarOptions::default());
        fill(&mut t)?;
        t.finish()?;
        Ok(())
    })
    .map_err(|e| Error::Usage(format!("write builder layer: {e}")))?;
    Ok((buf, info))
}

fn gen_desc(info: &LayerInfo) -> Descriptor {
    Descriptor::new(media::OCI_LAYER_GZIP.into(), info.size, &info.digest)
}
