//! `buildpod build`: a kpack Build made from command-line choices, turned into the very pod a
//! cluster would run (`crate::pod`), run here by [`super::runner`]. Local sources are served
//! to the pod as a blob over loopback, and without `--publish` the image lands in an OCI
//! layout through the loopback registry, so the pod never differs from a cluster's.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EnvVar, Pod, Secret};

use super::images::ImageCache;
use super::runner::{Reporter, RunResult, Runner};
use super::server::LocalServer;
use crate::kpack::metadata::{decompress, BuildMetadata};
use crate::oci::location::Location;
use crate::pod::{self, Build, BuildContext, BuildPodImages, Mode};
use crate::registry::Client;
use crate::sandbox::Sandbox;

/// The build pod's cache volume (kpack's name for it), mapped to `--cache-dir`.
const CACHE_VOLUME: &str = "cache-dir";

/// Where the app's source comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Path(PathBuf),
    Git {
        url: String,
        revision: String,
    },
    Blob(String),
    Registry(String),
    /// None: a rebase needs no source.
    None,
}

/// Where the image goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// Push to this registry reference.
    Publish(String),
    /// An OCI layout directory; the image is tagged `name` in it.
    Layout { dir: PathBuf, name: String },
}

pub struct Request {
    pub source: Source,
    pub builder: String,
    pub output: Output,
    pub run_image: Option<String>,
    pub env: Vec<(String, String)>,
    pub cache_dir: Option<PathBuf>,
    pub cache_image: Option<String>,
    /// kpack-annotated Secrets (the build ServiceAccount's secrets).
    pub secrets: Vec<Secret>,
    /// An OCI layout (`oci:DIR`) holding the `build-init`, `completion`, `rebase` and
    /// `build-waiter` images (`images/build-pod/build`), or a registry repository prefix.
    pub build_pod_images: String,
    pub insecure_registries: Vec<String>,
    /// Per-run files (volumes, logs, scratch). Kept for inspection.
    pub work_dir: PathBuf,
    pub mode: Mode,
    /// The loopback server's preferred port (see [`LocalServer::start`]).
    pub local_port: u16,
    /// Trust the host's CA certificates in every container.
    pub host_certs: bool,
    /// Rebase the image at the output tag onto the current run image (kpack's STACK rebuild).
    pub rebase: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("builder {builder}: {message}")]
    Builder { builder: String, message: String },
    #[error("source {}: {source}", path.display())]
    Source {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Pod(#[from] pod::PodError),
    #[error("the generated pod would not pass PodSecurity restricted: {0}")]
    Restricted(String),
    #[error("{0}")]
    Server(String),
    #[error("--rebase {image}: {message}")]
    Rebase { image: String, message: String },
    #[error(transparent)]
    Run(#[from] super::runner::RunError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a build produced.
pub struct Outcome {
    pub pod: Pod,
    pub run: RunResult,
    /// The completion step's termination message, decoded (success only).
    pub metadata: Option<BuildMetadata>,
    /// Where the image is, as users can name it (`oci:DIR:NAME` or the registry tag).
    pub image: String,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.run.status.phase.as_deref() == Some("Succeeded")
    }
}

pub fn build(
    req: &Request,
    client: &Arc<Client>,
    images: &ImageCache,
    sandbox: &Sandbox,
    reporter: &dyn Reporter,
) -> Result<Outcome, BuildError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    std::fs::create_dir_all(&req.work_dir).map_err(io(&req.work_dir))?;
    let mut sources = HashMap::new();
    if let Source::Path(dir) = &req.source {
        let tarball = req.work_dir.join("source.tar.gz");
        tar_source(dir, &tarball)?;
        sources.insert("source.tar.gz".to_string(), tarball);
    }
    let layout = match &req.output {
        Output::Layout { dir, .. } => Some(dir.as_path()),
        Output::Publish(_) => None,
    };
    let server = LocalServer::start(layout, &req.work_dir, sources, req.local_port)
        .map_err(BuildError::Server)?;
    let (tag, image) = match &req.output {
        Output::Publish(t) => (t.clone(), t.clone()),
        Output::Layout { dir, name } => (
            format!("{}/out:{name}", server.host()),
            format!("oci:{}:{name}", dir.display()),
        ),
    };
    let builder = builder_config(client, &req.builder)?;
    let mut build = kpack_build(req, &tag, &server);
    if req.rebase {
        build.spec.last_build = Some(last_build(client, &image, &tag, &builder.stack_id)?);
        build
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                pod::build::ANNOTATION_REASON.to_string(),
                pod::build::REASON_STACK.to_string(),
            );
    }
    let mut ctx = BuildContext::new(builder, req.mode);
    ctx.secrets = req.secrets.clone();
    ctx.insecure_registries = req.insecure_registries.clone();
    ctx.insecure_registries.push(server.host());
    ctx.now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let pod_images = build_pod_images(&req.build_pod_images);
    let pod = pod::build_pod(&build, &pod_images, &ctx)?;
    let violations = pod::check_restricted(&pod);
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        return Err(BuildError::Restricted(list.join("; ")));
    }
    let mut mapped = BTreeMap::new();
    if let Some(dir) = &req.cache_dir {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        mapped.insert(CACHE_VOLUME.to_string(), dir.clone());
    }
    let secrets = req
        .secrets
        .iter()
        .filter_map(|s| s.metadata.name.clone().map(|n| (n, s.clone())))
        .collect();
    let runner = Runner {
        sandbox,
        images,
        work: req.work_dir.join("pod"),
        secrets,
        mapped_volumes: mapped,
        reporter,
        host_certs: req.host_certs,
    };
    let run = runner.run(&pod)?;
    let metadata = run
        .status
        .container_statuses
        .iter()
        .flatten()
        .find(|s| s.name == pod::COMPLETION)
        .and_then(|s| s.state.as_ref()?.terminated.as_ref())
        .filter(|t| t.exit_code == 0)
        .and_then(|t| decompress(t.message.as_deref()?).ok());
    drop(server);
    Ok(Outcome {
        pod,
        run,
        metadata,
        image,
    })
}

fn build_pod_images(base: &str) -> BuildPodImages {
    let name = |n: &str| {
        if base.starts_with("oci:") {
            format!("{base}:{n}")
        } else {
            format!("{}/{n}", base.trim_end_matches('/'))
        }
    };
    BuildPodImages {
        build_init: name("build-init"),
        build_waiter: name("build-waiter"),
        completion: name("completion"),
        rebase: name("rebase"),
    }
}

/// kpack's builder config, read from the builder image's labels and env.
fn builder_config(client: &Arc<Client>, builder: &str) -> Result<pod::BuilderConfig, BuildError> {
    let err = |message: String| BuildError::Builder {
        builder: builder.to_string(),
        message,
    };
    let location = Location::parse(builder).map_err(|e| err(e.to_string()))?;
    crate::builder::pod_config::read(client, &location, builder).map_err(|e| err(e.to_string()))
}

/// The Build's `lastBuild` for a rebase: the image at `tag` (read through `image`, the name
/// users know it by) by digest, and its stack, which must be the builder's.
fn last_build(
    client: &Arc<Client>,
    image: &str,
    tag: &str,
    builder_stack: &str,
) -> Result<pod::build::LastBuild, BuildError> {
    let err = |message: String| BuildError::Rebase {
        image: image.to_string(),
        message,
    };
    let platform = crate::oci::PlatformSpec::new("linux", "amd64", None);
    let (_, view) = Location::parse(image)
        .and_then(|l| l.load(client, &platform))
        .map_err(|e| err(e.to_string()))?;
    let view = view.ok_or_else(|| err("no such image: build it first".into()))?;
    let stack = view
        .config
        .label(pod::context::LABEL_STACK_ID)
        .unwrap_or_else(|| builder_stack.to_string());
    if stack != builder_stack {
        return Err(err(format!(
            "built on stack {stack}, the builder's is {builder_stack}: build instead"
        )));
    }
    let pinned =
        crate::builder::fetch::identifier(&Location::Registry(tag.to_string()), view.digest())
            .map_err(|e| err(e.to_string()))?;
    Ok(pod::build::LastBuild {
        image: pinned,
        stack_id: stack,
        ..Default::default()
    })
}

fn kpack_build(req: &Request, tag: &str, server: &LocalServer) -> Build {
    let mut b = Build::default();
    let name = match &req.output {
        Output::Layout { name, .. } => name.clone(),
        Output::Publish(t) => t
            .rsplit('/')
            .next()
            .unwrap_or("app")
            .split([':', '@'])
            .next()
            .unwrap_or("app")
            .to_string(),
    };
    b.metadata.name = Some(format!("{name}-local"));
    b.metadata.namespace = Some("local".to_string());
    b.spec.tags = vec![tag.to_string()];
    b.spec.builder.image = req.builder.clone();
    b.spec.service_account_name = "default".to_string();
    match &req.source {
        Source::Path(_) => {
            b.spec.source.blob = Some(pod::build::BlobSource {
                url: server.source_url("source.tar.gz"),
                ..Default::default()
            })
        }
        Source::Git { url, revision } => {
            b.spec.source.git = Some(pod::build::GitSource {
                url: url.clone(),
                revision: revision.clone(),
                ..Default::default()
            })
        }
        Source::Blob(url) => {
            b.spec.source.blob = Some(pod::build::BlobSource {
                url: url.clone(),
                ..Default::default()
            })
        }
        Source::Registry(image) => {
            b.spec.source.registry = Some(pod::build::RegistrySource {
                image: image.clone(),
                ..Default::default()
            })
        }
        Source::None => {}
    }
    if req.cache_dir.is_some() {
        b.spec.cache = Some(pod::build::BuildCacheConfig {
            volume: Some(pod::build::VolumeCache {
                persistent_volume_claim_name: "buildpod-local-cache".to_string(),
            }),
            registry: None,
        });
    } else if let Some(tag) = &req.cache_image {
        b.spec.cache = Some(pod::build::BuildCacheConfig {
            volume: None,
            registry: Some(pod::build::RegistryCache { tag: tag.clone() }),
        });
    }
    b.spec.env = req
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            value_from: None,
        })
        .collect();
    if let Some(run) = &req.run_image {
        b.spec.run_image = Some(pod::build::BuildSpecImage { image: run.clone() });
    }
    b
}

/// The source directory as a gzip tarball (relative names, symlinks kept as symlinks).
fn tar_source(dir: &Path, out: &Path) -> Result<(), BuildError> {
    let err = |source| BuildError::Source {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.is_dir() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a directory",
        )));
    }
    crate::fsutil::write_atomic_with(out, |f| {
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        tar.append_dir_all(".", dir)?;
        let mut gz = tar.into_inner()?;
        gz.flush()?;
        gz.try_finish()
    })
    .map_err(|e| err(e.source))
}
