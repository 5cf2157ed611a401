//! Export orchestration.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::Descriptor;

use super::inputs::{buildpack_layers, Analyzed, ConfigMetadata, RunImageEntry, RunToml};
use super::labels::*;
use super::layers::{Planned, Source};
use super::slices::{split, Tree};
use super::ExportError;
use crate::digest::Digest;
use crate::layer::{write_layer, CompressOptions, Compression};
use crate::lifecycle::order::GroupEntry;
use crate::oci::assemble::{push_layer_with, write_manifest};
use crate::oci::config::rfc3339;
use crate::oci::copy::{copy_blobs, CopyOptions, CopyStats};
use crate::oci::manifest::descriptor_digest;
use crate::oci::view::ImageView;
use crate::oci::{BlobStore, ImageConfig, Manifest, PlatformSpec};

/// An image to read from: a store and a reference in it (tag or digest).
pub struct ImageSource<'a> {
    pub store: &'a dyn BlobStore,
    pub reference: String,
}

pub struct ExportOptions {
    pub layers_dir: PathBuf,
    pub app_dir: PathBuf,
    pub launcher: PathBuf,
    pub uid: u64,
    pub gid: u64,
    /// Platform API as `major.minor`.
    pub platform_api: (u32, u32),
    pub group: Vec<GroupEntry>,
    pub config: ConfigMetadata,
    pub analyzed: Analyzed,
    pub run: RunToml,
    /// `io.buildpacks.project.metadata` (`{}` when there is none).
    pub project_metadata: serde_json::Value,
    /// `-process-type`.
    pub process_type: Option<String>,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    pub compression: CompressOptions,
    /// Layers produced at once.
    pub parallel: usize,
    pub launcher_version: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub digest: Digest,
    pub manifest_size: u64,
    pub tags: Vec<String>,
    /// Layer ids reused from the previous image.
    pub reused: Vec<String>,
    /// Layer ids added (compressed and uploaded).
    pub added: Vec<String>,
    /// Every appended layer in image order, and whether it was reused.
    pub layers: Vec<(String, bool)>,
    pub base: CopyStats,
}

struct Done {
    desc: Descriptor,
    diff_id: Digest,
    reused: bool,
}

/// Export the image into `target` under `opts.tags`.
pub fn export(
    opts: &ExportOptions,
    run: &ImageSource<'_>,
    previous: Option<&ImageSource<'_>>,
    target: &dyn BlobStore,
) -> Result<ExportReport, ExportError> {
    // Base: the run image.
    let run_err = |message: String| ExportError::RunImage {
        reference: run.reference.clone(),
        message,
    };
    let run_m = run.store.get_manifest(&run.reference)?;
    let Manifest::Image(run_im) = run_m.parse()? else {
        return Err(run_err(
            "is an index; the analyzer must resolve it to one platform".into(),
        ));
    };
    let cfg_d = descriptor_digest(run_im.config())?;
    let mut config = ImageConfig::from_json(
        &run.store.read_blob(&cfg_d, Some(run_im.config().size()))?,
        "run image config",
    )?;
    let base_diff_ids = config.diff_ids()?;
    let top_layer = base_diff_ids
        .last()
        .cloned()
        .ok_or_else(|| run_err("image has no layers".into()))?;
    let manifest_type = run_m.media_type.clone();

    // Reusable layers of the previous image, by diffID.
    let prev_layers: HashMap<Digest, Descriptor> = match previous {
        Some(p) => previous_layers(p).unwrap_or_else(|e| {
            tracing::warn!(image = %p.reference, error = %e, "previous image unreadable; exporting as a first build");
            HashMap::new()
        }),
        None => HashMap::new(),
    };

    let plan = plan(opts)?;
    // Every layer may use every core: the app layer usually dwarfs the rest, and compressed
    // output does not depend on the thread count.
    let copts = opts.compression.clone();
    let parallel = opts.parallel.max(1);
    let results: Mutex<Vec<Option<Result<Done, ExportError>>>> =
        Mutex::new((0..plan.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..parallel.min(plan.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = plan.get(i) else { break };
                let r = produce(
                    p,
                    &prev_layers,
                    previous.map(|p| p.store),
                    target,
                    &copts,
                    &manifest_type,
                );
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| ExportError::Layer {
        layer: "?".into(),
        message: "worker panicked".into(),
    })?;

    // Make the base layers available in the target (mount or copy; skipped when present).
    let mut base = CopyStats::default();
    copy_blobs(
        run.store,
        target,
        run_im.layers(),
        &CopyOptions {
            parallel: 4,
            platform: None,
        },
        &mut base,
    )?;

    // Config and labels.
    let created = opts
        .source_date_epoch
        .map(rfc3339)
        .unwrap_or_else(|| rfc3339(crate::layer::NORMALIZED_MTIME as i64));
    config.set_created(Some(&created));
    let mut meta = LayersMetadata::default();
    let mut report = ExportReport {
        digest: Digest::of(b""),
        manifest_size: 0,
        tags: opts.tags.clone(),
        reused: Vec::new(),
        added: Vec::new(),
        layers: Vec::new(),
        base,
    };
    let mut descs: Vec<Descriptor> = run_im.layers().to_vec();
    // History: one entry per layer, all with the same created time.
    let mut history = base_history(&config, &created);
    for (p, r) in plan.iter().zip(results) {
        let done = r.unwrap_or_else(|| {
            Err(ExportError::Layer {
                layer: p.id.clone(),
                message: "not produced".into(),
            })
        })?;
        if done.reused {
            tracing::info!("Reusing layer '{}'", p.id);
            report.reused.push(p.id.clone());
        } else {
            tracing::info!("Adding layer '{}'", p.id);
            report.added.push(p.id.clone());
        }
        report.layers.push((p.id.clone(), done.reused));
        record_sha(&mut meta, opts, p, &done.diff_id);
        config
            .inner_mut()
            .rootfs_mut()
            .diff_ids_mut()
            .push(done.diff_id.to_string());
        let mut h = oci_spec::image::History::default();
        h.set_created(Some(created.clone()));
        h.set_created_by(Some(p.created_by.clone()));
        history.push(h);
        descs.push(done.desc);
    }
    config.inner_mut().set_history(Some(history));
    fill_buildpack_metadata(&mut meta, opts)?;
    meta.run_image = RunImageMetadata {
        top_layer: top_layer.to_string(),
        reference: opts
            .analyzed
            .run_image
            .as_ref()
            .map(|r| r.reference.clone())
            .unwrap_or_default(),
        image: String::new(),
        mirrors: Vec::new(),
    };
    let run_entry = run_image_for_export(opts);
    if opts.platform_api >= (0, 12) {
        meta.run_image.image = run_entry.image.clone();
        meta.run_image.mirrors = run_entry.mirrors.clone();
    }
    meta.stack.run_image = StackRunImage {
        image: run_entry.image,
        mirrors: run_entry.mirrors,
    };
    set_config(&mut config, opts, &meta)?;

    let m = write_manifest(target, &config, descs, &manifest_type, &opts.tags)?;
    report.manifest_size = m.bytes.len() as u64;
    report.digest = m.digest;
    Ok(report)
}

/// `runImage.image`/`mirrors`: the run.toml entry naming the analyzed run image (ignoring
/// digests), else the first entry (`lc:platform/run_image.go GetRunImageForExport`).
fn run_image_for_export(opts: &ExportOptions) -> RunImageEntry {
    let strip = |s: &str| s.split('@').next().unwrap_or(s).to_string();
    let analyzed = opts
        .analyzed
        .run_image
        .as_ref()
        .map(|r| {
            strip(if r.image.is_empty() {
                &r.reference
            } else {
                &r.image
            })
        })
        .unwrap_or_default();
    let named = |e: &&RunImageEntry| {
        !analyzed.is_empty()
            && (strip(&e.image) == analyzed || e.mirrors.iter().any(|m| strip(m) == analyzed))
    };
    opts.run
        .images
        .iter()
        .find(named)
        .or(opts.run.images.first())
        .cloned()
        .or_else(|| opts.run.run_image.clone())
        .unwrap_or_default()
}

fn previous_layers(p: &ImageSource<'_>) -> Result<HashMap<Digest, Descriptor>, crate::oci::Error> {
    let Some(view) = ImageView::load(p.store, &p.reference, &PlatformSpec::host())? else {
        return Ok(HashMap::new());
    };
    Ok(view
        .config
        .diff_ids()?
        .into_iter()
        .zip(view.image.layers().iter().cloned())
        .collect())
}

fn base_history(config: &ImageConfig, created: &str) -> Vec<oci_spec::image::History> {
    config
        .inner()
        .history()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|mut h| {
            h.set_created(Some(created.to_string()));
            h
        })
        .collect()
}

/// The layers to append, in the spec's order.
fn plan(opts: &ExportOptions) -> Result<Vec<Planned>, ExportError> {
    let prev = &opts.analyzed.metadata;
    let mut out = Vec::new();
    let planned =
        |id: String, created_by: String, source: Source, previous_shas: Vec<String>| Planned {
            id,
            created_by,
            source,
            previous_shas: previous_shas
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
            uid: opts.uid,
            gid: opts.gid,
        };
    for bp in &opts.group {
        let (layers, _) = buildpack_layers(&opts.layers_dir, bp)?;
        for l in layers.into_iter().filter(|l| l.toml.launch) {
            let id = format!("{}:{}", bp.id, l.name);
            let source = match l.dir {
                Some(d) => Source::Dir(d),
                None if l.toml.cache => {
                    return Err(ExportError::Layer {
                        layer: id,
                        message: "is cache=true but has no contents".into(),
                    })
                }
                None => Source::MetadataOnly,
            };
            let sha = prev.layer_sha(&bp.id, &l.name).map(str::to_string);
            let sha = sha.into_iter().collect();
            out.push(planned(
                id,
                format!(
                    "Layer: '{}', Created by buildpack: {}@{}",
                    l.name, bp.id, bp.version
                ),
                source,
                sha,
            ));
        }
    }
    let sbom = opts.layers_dir.join("sbom/launch");
    if sbom.is_dir() {
        let sha = prev.sbom.iter().map(|s| s.sha.clone()).collect();
        out.push(planned(
            "buildpacksio/lifecycle:launch.sbom".into(),
            "Software Bill-of-Materials".into(),
            Source::Dir(sbom),
            sha,
        ));
    }
    let globs: Vec<Vec<String>> = opts.config.slices.iter().map(|s| s.paths.clone()).collect();
    let tree = Tree::walk(&opts.app_dir).map_err(|e| ExportError::Input {
        path: opts.app_dir.clone(),
        message: e.to_string(),
    })?;
    let parts = split(&tree, &globs).map_err(|e| ExportError::Layer {
        layer: "app".into(),
        message: e.to_string(),
    })?;
    let app_shas: Vec<String> = prev.app.iter().map(|a| a.sha.clone()).collect();
    let n = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        let (id, created_by) = if n == 1 {
            ("app".to_string(), "Application Layer".to_string())
        } else {
            (
                format!("slice-{}", i + 1),
                format!("Application Slice: {}", i + 1),
            )
        };
        out.push(planned(
            id,
            created_by,
            Source::AppSlice {
                app: opts.app_dir.clone(),
                paths: part.paths,
            },
            app_shas.clone(),
        ));
    }
    out.push(planned(
        "buildpacksio/lifecycle:launcher".into(),
        "Buildpacks Application Launcher".into(),
        Source::Launcher(opts.launcher.clone()),
        vec![prev.launcher.sha.clone()],
    ));
    out.push(planned(
        "buildpacksio/lifecycle:config".into(),
        "Buildpacks Launcher Config".into(),
        Source::Dir(opts.layers_dir.join("config")),
        vec![prev.config.sha.clone()],
    ));
    let mut types: Vec<String> = opts
        .config
        .processes
        .iter()
        .map(|p| p.kind.clone())
        .collect();
    types.sort();
    if !types.is_empty() {
        out.push(planned(
            "buildpacksio/lifecycle:process-types".into(),
            "Buildpacks Process Types".into(),
            Source::ProcessTypes(types),
            vec![prev.process_types.sha.clone()],
        ));
    }
    Ok(out)
}

/// Produce one layer: reuse it from the previous image when its diffID is unchanged, else
/// stream it (tar → hash → compress → upload) in one pass.
fn produce(
    p: &Planned,
    prev_layers: &HashMap<Digest, Descriptor>,
    prev_store: Option<&dyn BlobStore>,
    target: &dyn BlobStore,
    copts: &CompressOptions,
    manifest_type: &str,
) -> Result<Done, ExportError> {
    let lerr = |message: String| ExportError::Layer {
        layer: p.id.clone(),
        message,
    };
    let reuse = |diff_id: Digest| -> Result<Option<Done>, ExportError> {
        let (Some(desc), Some(store)) = (prev_layers.get(&diff_id), prev_store) else {
            return Ok(None);
        };
        let mut stats = CopyStats::default();
        copy_blobs(
            store,
            target,
            std::slice::from_ref(desc),
            &CopyOptions::default(),
            &mut stats,
        )?;
        Ok(Some(Done {
            desc: desc.clone(),
            diff_id,
            reused: true,
        }))
    };
    if let Source::MetadataOnly = p.source {
        let sha = p
            .previous_shas
            .first()
            .ok_or_else(|| lerr("cannot reuse: previous image has no metadata for layer".into()))?;
        let d: Digest = sha
            .parse()
            .map_err(|e| lerr(format!("previous sha: {e}")))?;
        return reuse(d)?
            .ok_or_else(|| lerr(format!("cannot reuse: previous image has no layer {sha}")));
    }
    if !p.previous_shas.is_empty() && !prev_layers.is_empty() {
        // Hash only (no compression) to learn whether the layer changed.
        let none = CompressOptions {
            compression: Compression::None,
            ..copts.clone()
        };
        let info = write_layer(&none, &mut io::sink(), |w| p.write(w).map(|_| ()))
            .map_err(|e| lerr(e.to_string()))?;
        let diff_id = info.diff_id.to_string();
        if p.previous_shas.contains(&diff_id) {
            if let Some(done) = reuse(info.diff_id)? {
                return Ok(done);
            }
        }
    }
    let stored = push_layer_with(target, copts, manifest_type, &|w| p.write(w).map(|_| ()))?;
    Ok(Done {
        desc: stored.descriptor(),
        diff_id: stored.info.diff_id,
        reused: false,
    })
}

fn record_sha(meta: &mut LayersMetadata, opts: &ExportOptions, p: &Planned, diff_id: &Digest) {
    let sha = ShaRef::new(diff_id);
    match p.id.as_str() {
        "app" => meta.app.push(sha),
        id if id.starts_with("slice-") && !id.contains(':') => meta.app.push(sha),
        "buildpacksio/lifecycle:launcher" => meta.launcher = sha,
        "buildpacksio/lifecycle:config" => meta.config = sha,
        "buildpacksio/lifecycle:process-types" => meta.process_types = sha,
        "buildpacksio/lifecycle:launch.sbom" => meta.sbom = Some(sha),
        id => {
            if let Some((bp, layer)) = id.rsplit_once(':') {
                let version = opts
                    .group
                    .iter()
                    .find(|g| g.id == bp)
                    .map(|g| g.version.clone())
                    .unwrap_or_default();
                let entry = match meta.buildpacks.iter_mut().position(|b| b.key == bp) {
                    Some(i) => &mut meta.buildpacks[i],
                    None => {
                        meta.buildpacks.push(BuildpackLayers {
                            key: bp.to_string(),
                            version,
                            ..Default::default()
                        });
                        let last = meta.buildpacks.len() - 1;
                        &mut meta.buildpacks[last]
                    }
                };
                entry.layers.insert(
                    layer.to_string(),
                    LayerMetadata {
                        sha: diff_id.to_string(),
                        ..Default::default()
                    },
                );
            }
        }
    }
}

/// Every buildpack of the group gets an entry, with its launch layers' flags and metadata and
/// its store, in group order.
fn fill_buildpack_metadata(
    meta: &mut LayersMetadata,
    opts: &ExportOptions,
) -> Result<(), ExportError> {
    let mut ordered = Vec::new();
    for bp in &opts.group {
        let (layers, store) = buildpack_layers(&opts.layers_dir, bp)?;
        let mut entry = meta
            .buildpacks
            .iter()
            .find(|b| b.key == bp.id)
            .cloned()
            .unwrap_or_else(|| BuildpackLayers {
                key: bp.id.clone(),
                version: bp.version.clone(),
                ..Default::default()
            });
        for l in layers.into_iter().filter(|l| l.toml.launch) {
            if let Some(m) = entry.layers.get_mut(&l.name) {
                m.build = l.toml.build;
                m.launch = l.toml.launch;
                m.cache = l.toml.cache;
                m.data = toml_to_json(&toml::Value::Table(l.toml.metadata));
                if m.data.as_object().is_some_and(|o| o.is_empty()) {
                    m.data = serde_json::Value::Null;
                }
            }
        }
        entry.store = store.map(|s| StoreMetadata {
            metadata: toml_to_json(&toml::Value::Table(s.metadata)),
        });
        ordered.push(entry);
    }
    meta.buildpacks = ordered;
    Ok(())
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn set_config(
    config: &mut ImageConfig,
    opts: &ExportOptions,
    meta: &LayersMetadata,
) -> Result<(), ExportError> {
    let json = |v: &dyn erased::Ser| v.to_json();
    config.set_label(LIFECYCLE_METADATA, &json(meta));
    let processes = opts
        .config
        .processes
        .iter()
        .map(|p| ProcessLabel {
            kind: p.kind.clone(),
            command: toml_to_json(&p.command),
            args: p.args.clone(),
            direct: p.direct,
            buildpack_id: p.buildpack_id.clone(),
            working_dir: p.working_dir.clone(),
            exec_env: p.exec_env.clone(),
        })
        .collect();
    let build = BuildMetadataLabel {
        buildpacks: opts
            .group
            .iter()
            .map(|g| BuildpackRef {
                id: g.id.clone(),
                version: g.version.clone(),
                homepage: g.homepage.clone(),
            })
            .collect(),
        extensions: Vec::new(),
        launcher: LauncherMetadata {
            version: opts.launcher_version.clone(),
            source: LauncherSource {
                git: GitSource {
                    repository: "github.com/buildpod/buildpod".into(),
                    commit: String::new(),
                },
            },
        },
        processes,
        default_process_type: opts.config.default_process_type.clone(),
    };
    config.set_label(BUILD_METADATA, &json(&build));
    config.set_label(PROJECT_METADATA, &opts.project_metadata.to_string());
    for l in &opts.config.labels {
        config.set_label(&l.key, &l.value);
    }
    let abs = |p: &PathBuf| p.to_string_lossy().into_owned();
    config.set_env("CNB_LAYERS_DIR", &abs(&opts.layers_dir));
    config.set_env("CNB_APP_DIR", &abs(&opts.app_dir));
    config.set_env(
        "CNB_PLATFORM_API",
        &format!("{}.{}", opts.platform_api.0, opts.platform_api.1),
    );
    config.set_env("CNB_DEPRECATION_MODE", "quiet");
    let path = config.env_var("PATH").unwrap_or_default();
    let new_path = if path.is_empty() {
        "/cnb/process:/cnb/lifecycle".to_string()
    } else {
        format!("/cnb/process:/cnb/lifecycle:{path}")
    };
    config.set_env("PATH", &new_path);
    config.set_working_dir(Some(&abs(&opts.app_dir)));
    let default = opts
        .process_type
        .clone()
        .or_else(|| Some(opts.config.default_process_type.clone()).filter(|d| !d.is_empty()));
    let entrypoint = match default {
        Some(t) => {
            if !opts.config.processes.iter().any(|p| p.kind == t) {
                return Err(ExportError::Layer {
                    layer: "buildpacksio/lifecycle:process-types".into(),
                    message: format!("default process type {t:?} is not among the processes"),
                });
            }
            format!("/cnb/process/{t}")
        }
        None => "/cnb/lifecycle/launcher".to_string(),
    };
    config.set_entrypoint(Some(vec![entrypoint]));
    config.set_cmd(None);
    Ok(())
}

/// Serialise label values; a value that cannot be serialised is a programming error, so it
/// becomes an empty object rather than a panic.
mod erased {
    pub trait Ser {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
        }
    }
}
