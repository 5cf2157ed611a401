//! `buildpod build` and `buildpod run`: local mode. A Build from flags becomes the same build
//! pod a cluster runs, executed here in the sandbox; `run` starts an image's default process.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, PodSpec, Secret};

use super::image::RegistryArgs;
use crate::local::build::{build, Output, Request, Source};
use crate::local::images::ImageCache;
use crate::local::runner::{PlainReporter, RunError};
use crate::pod::Mode;
use crate::sandbox::{Runtime, Sandbox};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Exit code of `buildpod build` when the build ran and failed (a step exited non-zero).
pub const EXIT_BUILD_FAILED: i32 = 3;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// App source directory.
    #[arg(long, conflicts_with_all = ["git", "blob", "registry_source"])]
    pub path: Option<PathBuf>,
    /// Git repository URL.
    #[arg(long, conflicts_with_all = ["blob", "registry_source"])]
    pub git: Option<String>,
    /// Git revision (branch, tag or commit).
    #[arg(long, default_value = "main", requires = "git")]
    pub revision: String,
    /// URL of a source archive (zip, tar, tar.gz).
    #[arg(long, conflicts_with = "registry_source")]
    pub blob: Option<String>,
    /// An image whose layers hold the source.
    #[arg(long = "registry-source")]
    pub registry_source: Option<String>,
    /// Builder image: REF, docker://REF or oci:DIR:TAG.
    #[arg(long)]
    pub builder: String,
    /// With --publish, the registry tag to push; otherwise the image's name in --output
    /// (default: the source directory's name, or "app").
    #[arg(long)]
    pub tag: Option<String>,
    /// Push the image to the registry named by --tag instead of writing --output.
    #[arg(long, requires = "tag")]
    pub publish: bool,
    /// OCI layout to write the image into (without --publish).
    #[arg(long, default_value = "out")]
    pub output: PathBuf,
    /// Run image (default: the builder's).
    #[arg(long)]
    pub run_image: Option<String>,
    /// Build-time environment, KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// Cache directory kept between builds (a volume cache).
    #[arg(long, conflicts_with = "cache_image")]
    pub cache_dir: Option<PathBuf>,
    /// Cache image tag (a registry cache).
    #[arg(long)]
    pub cache_image: Option<String>,
    /// A Kubernetes Secret manifest with kpack annotations (repeatable): registry, git or
    /// blob credentials, as the build's ServiceAccount secrets.
    #[arg(long = "secret")]
    pub secrets: Vec<PathBuf>,
    /// Where the build-init, completion, rebase and build-waiter images are: oci:DIR (tags
    /// named after them) or a registry prefix. Build them with images/build-pod/build.
    /// Default: $BUILDPOD_BUILD_POD_IMAGES, else oci:<cache>/images/build-pod.
    #[arg(long)]
    pub build_pod_images: Option<String>,
    /// Loopback port for the source and ./out servers; fixed so rebuilds of the same source
    /// give the same image (its source URL is recorded). Another is used if it is taken.
    #[arg(long, default_value_t = 5399)]
    pub local_port: u16,
    /// kpack's pod (Platform API ≤ 0.9, kpack's images) instead of ours.
    #[arg(long)]
    pub kpack_compatible: bool,
    /// Rebase the image named by --tag onto the current run image (the builder's, or
    /// --run-image) instead of building: kpack's rebuild for a stack update. No source needed.
    #[arg(long, conflicts_with_all = ["path", "git", "blob", "registry_source"], requires = "tag")]
    pub rebase: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(clap::Args, Debug)]
pub struct SandboxArgs {
    /// Bind this host's CA bundle (/etc/ssl/certs/ca-certificates.crt) over each image's: for
    /// proxies and registries signed by a private CA. Node needs NODE_EXTRA_CA_CERTS too.
    #[arg(long)]
    pub trust_host_certs: bool,
    /// embedded (namespaces, no runtime needed) or runc.
    #[arg(long, default_value = "embedded")]
    pub runtime: Runtime,
    /// Per-run directory (volumes, logs); default under the cache.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The image: REF, docker://REF or oci:DIR:TAG.
    pub image: String,
    /// Environment for the process, KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// Arguments replacing the image's command.
    #[arg(trailing_var_arg = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn parse_kv(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: want KEY=VALUE"))
}

/// `$BUILDPOD_CACHE`, else `~/.cache/buildpod`.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BUILDPOD_CACHE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/buildpod")
}

fn sandbox(args: &SandboxArgs) -> Result<Sandbox> {
    Ok(Sandbox {
        program: std::env::current_exe()?,
        runtime: args.runtime,
    })
}

fn read_secret(p: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let s: Secret = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    if s.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(format!("{}: the Secret has no metadata.name", p.display()).into());
    }
    Ok(s)
}

/// Runs the build; the exit code is 0, or [`EXIT_BUILD_FAILED`] when a step failed.
pub fn run_build(a: BuildArgs) -> Result<i32> {
    let source = match (&a.path, &a.git, &a.blob, &a.registry_source) {
        (Some(p), ..) => Source::Path(p.clone()),
        (_, Some(g), ..) => Source::Git {
            url: g.clone(),
            revision: a.revision.clone(),
        },
        (_, _, Some(b), _) => Source::Blob(b.clone()),
        (_, _, _, Some(r)) => Source::Registry(r.clone()),
        _ if a.rebase => Source::None,
        _ => return Err("no source: give --path, --git, --blob or --registry-source".into()),
    };
    let output = if a.publish {
        Output::Publish(a.tag.clone().unwrap_or_default())
    } else {
        let name = a.tag.clone().unwrap_or_else(|| {
            a.path
                .as_ref()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "app".to_string())
        });
        let dir = std::path::absolute(&a.output)?;
        Output::Layout { dir, name }
    };
    let cache = cache_root();
    let from_env = std::env::var("BUILDPOD_BUILD_POD_IMAGES")
        .ok()
        .filter(|v| !v.is_empty());
    let build_pod_images = match a.build_pod_images.clone().or(from_env) {
        Some(i) => i,
        None => {
            let dir = cache.join("images/build-pod");
            if !dir.join("index.json").exists() {
                return Err(format!(
                    "no build-pod images: run `images/build-pod/build oci:{}` or pass --build-pod-images",
                    dir.display()
                )
                .into());
            }
            format!("oci:{}", dir.display())
        }
    };
    let secrets = a
        .secrets
        .iter()
        .map(|p| read_secret(p))
        .collect::<Result<Vec<_>>>()?;
    let work_dir = match &a.sandbox.work_dir {
        Some(w) => w.clone(),
        None => cache.join("runs").join(std::process::id().to_string()),
    };
    let req = Request {
        source,
        builder: a.builder.clone(),
        output,
        run_image: a.run_image.clone(),
        env: a.env.clone(),
        cache_dir: a.cache_dir.as_ref().map(std::path::absolute).transpose()?,
        cache_image: a.cache_image.clone(),
        secrets,
        build_pod_images,
        insecure_registries: a.registry.insecure.clone(),
        work_dir: work_dir.clone(),
        local_port: a.local_port,
        host_certs: a.sandbox.trust_host_certs,
        rebase: a.rebase,
        mode: if a.kpack_compatible {
            Mode::Kpack
        } else {
            Mode::Ours
        },
    };
    let client = a.registry.client()?;
    let images = ImageCache::new(cache.join("images/unpacked"), client.clone())
        .with_progress(std::sync::Arc::new(super::progress::CliProgress::new()));
    crate::local::interrupt::install()?;
    let outcome = match build(
        &req,
        &client,
        &images,
        &sandbox(&a.sandbox)?,
        &PlainReporter,
    ) {
        Ok(o) => o,
        Err(crate::local::build::BuildError::Run(RunError::Interrupted { signal, step })) => {
            eprintln!(
                "===> interrupted by {signal} during {step}: stopped, nothing was tagged; step logs are in {}",
                work_dir.join("pod/logs").display()
            );
            return Ok(128 + signal as i32);
        }
        Err(e) => return Err(e.into()),
    };
    let timings: Vec<String> = outcome
        .run
        .timings
        .iter()
        .map(|(n, s)| format!("{n} {s:.2}s"))
        .collect();
    eprintln!("===> steps: {}", timings.join(", "));
    if !outcome.succeeded() {
        eprintln!(
            "ERROR: build failed; step logs are in {}",
            work_dir.join("pod/logs").display()
        );
        return Ok(EXIT_BUILD_FAILED);
    }
    if a.sandbox.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    if let Some(m) = &outcome.metadata {
        println!("{}", serde_json::to_string_pretty(m)?);
    }
    eprintln!("===> image: {}", outcome.image);
    eprintln!("run it with: buildpod run {}", outcome.image);
    Ok(0)
}

/// Run an image's default process (or `args`) in the sandbox, with the host's network.
pub fn run_image(a: RunArgs) -> Result<i32> {
    let cache = cache_root();
    let client = a.registry.client()?;
    let images = ImageCache::new(cache.join("images/unpacked"), client)
        .with_progress(std::sync::Arc::new(super::progress::CliProgress::new()));
    let image = images.get(&a.image)?;
    let work = match &a.sandbox.work_dir {
        Some(w) => w.clone(),
        None => cache
            .join("runs")
            .join(format!("run-{}", std::process::id())),
    };
    let scratch = work.join("scratch");
    std::fs::create_dir_all(&scratch)?;
    let term = work.join("termination-log");
    std::fs::write(&term, b"")?;
    let container = Container {
        name: "app".into(),
        image: Some(a.image.clone()),
        args: (!a.args.is_empty()).then(|| a.args.clone()),
        env: Some(
            a.env
                .iter()
                .map(|(k, v)| k8s_openapi::api::core::v1::EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    value_from: None,
                })
                .collect(),
        ),
        ..Default::default()
    };
    let volumes = Default::default();
    let at = crate::local::container::Placement {
        volumes: &volumes,
        layers: &image.layers,
        scratch,
        termination_file: &term,
        hostname: "app",
        host_files: &crate::local::container::host_network_files(a.sandbox.trust_host_certs),
    };
    let spec = crate::local::container::spec(&PodSpec::default(), &container, &image.config, &at)?;
    crate::local::interrupt::install()?;
    let mut child = sandbox(&a.sandbox)?.command(&spec)?.spawn()?;
    let forward = crate::local::interrupt::Child::watch(child.id());
    let status = child.wait()?;
    drop(forward);
    if a.sandbox.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(status.code().unwrap_or(128))
}
