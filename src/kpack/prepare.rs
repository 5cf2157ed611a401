//! `prepare` (kpack's `build-init`): load secrets, check registry access, fetch the source into
//! `/workspace`, apply project.toml and platform env, and save the registry credentials the
//! lifecycle phases use.
//!
//! Like kpack, every line goes to stdout without a prefix, every failure is printed there and
//! exits 1, and usage errors exit 2.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use super::flags::{self, flag, Kind, Parsed};
use super::paths::Paths;
use super::{buildchange, mounts};
use crate::creds::{access, blob as blob_creds, docker, git::GitKeychain};
use crate::project_toml::{self, platform_env, DescriptorPaths};
use crate::registry::{Client, ClientOptions, Keychain};
use crate::source::{blob, git, registry};

pub const SPECS: &[flags::Spec] = &[
    flag("imageTag", Kind::Str, Some("IMAGE_TAG")),
    flag("runImage", Kind::Str, Some("RUN_IMAGE")),
    flag("git-url", Kind::Str, Some("GIT_URL")),
    flag("git-revision", Kind::Str, Some("GIT_REVISION")),
    flag(
        "git-initialize-submodules",
        Kind::Bool,
        Some("GIT_INITIALIZE_SUBMODULES"),
    ),
    flag("blob-url", Kind::Str, Some("BLOB_URL")),
    flag("blob-auth", Kind::Bool, Some("BLOB_AUTH")),
    flag("strip-components", Kind::Int, Some("BLOB_STRIP_COMPONENTS")),
    flag("registry-image", Kind::Str, Some("REGISTRY_IMAGE")),
    flag("source-sub-path", Kind::Str, Some("SOURCE_SUB_PATH")),
    flag("build-changes", Kind::Str, Some("BUILD_CHANGES")),
    flag(
        "project-descriptor-path",
        Kind::Str,
        Some("PROJECT_DESCRIPTOR_PATH"),
    ),
    flag("builder-image", Kind::Str, Some("BUILDER_IMAGE")),
    flag("builder-name", Kind::Str, Some("BUILDER_NAME")),
    flag("builder-kind", Kind::Str, Some("BUILDER_KIND")),
    flag(
        "insecure-ssh-trust-unknown-hosts",
        Kind::Bool,
        Some("INSECURE_SSH_TRUST_UNKNOWN_HOSTS"),
    ),
    flag("basic-git", Kind::Multi, None),
    flag("ssh-git", Kind::Multi, None),
    flag("blob", Kind::Multi, None),
    flag("basic-docker", Kind::Multi, None),
    flag("dockercfg", Kind::Multi, None),
    flag("dockerconfig", Kind::Multi, None),
    flag("imagepull", Kind::Multi, None),
];

/// Settings after kpack's defaulting rules.
#[derive(Debug, Clone)]
pub struct Config {
    pub image_tag: String,
    pub run_image: String,
    pub git_url: String,
    pub git_revision: String,
    pub git_submodules: bool,
    pub blob_url: String,
    pub blob_auth: bool,
    pub strip_components: usize,
    pub registry_image: String,
    pub source_sub_path: String,
    pub build_changes: String,
    pub descriptor_path: String,
    pub builder_image: String,
    pub builder_name: String,
    pub builder_kind: String,
    pub trust_unknown_hosts: bool,
    pub basic_git: Vec<String>,
    pub ssh_git: Vec<String>,
    pub blob: Vec<String>,
    pub basic_docker: Vec<String>,
    pub dockercfg: Vec<String>,
    pub dockerconfig: Vec<String>,
    pub imagepull: Vec<String>,
}

impl Config {
    /// Apply kpack's conversions: invalid or empty bools are false except the ssh trust flag
    /// (true), and an invalid strip count is 0.
    pub fn from_parsed(p: &Parsed) -> Self {
        let b = |n: &str, default: bool| flags::parse_bool(&p.str(n)).unwrap_or(default);
        Self {
            image_tag: p.str("imageTag"),
            run_image: p.str("runImage"),
            git_url: p.str("git-url"),
            git_revision: p.str("git-revision"),
            git_submodules: b("git-initialize-submodules", false),
            blob_url: p.str("blob-url"),
            blob_auth: b("blob-auth", false),
            strip_components: flags::parse_int(&p.str("strip-components"))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            registry_image: p.str("registry-image"),
            source_sub_path: p.str("source-sub-path"),
            build_changes: p.str("build-changes"),
            descriptor_path: p.str("project-descriptor-path"),
            builder_image: p.str("builder-image"),
            builder_name: p.str("builder-name"),
            builder_kind: p.str("builder-kind"),
            trust_unknown_hosts: b("insecure-ssh-trust-unknown-hosts", true),
            basic_git: p.multi("basic-git"),
            ssh_git: p.multi("ssh-git"),
            blob: p.multi("blob"),
            basic_docker: p.multi("basic-docker"),
            dockercfg: p.multi("dockercfg"),
            dockerconfig: p.multi("dockerconfig"),
            imagepull: p.multi("imagepull"),
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Entry point: returns the exit code.
pub fn main(argv: &[String]) -> i32 {
    let parsed = flags::parse_or_exit("build-init", SPECS, argv);
    let cfg = Config::from_parsed(&parsed);
    let paths = Paths::from_env();
    match run(&cfg, &paths, &say) {
        Ok(()) => 0,
        Err(msg) => {
            say(&msg);
            1
        }
    }
}

/// The node's own docker config (k8schain's file part; cloud helpers are not supported).
fn node_keychain() -> Keychain {
    Keychain::from_environment().unwrap_or_default()
}

fn client(kc: Keychain) -> Result<Arc<Client>, String> {
    Client::new(ClientOptions {
        keychain: kc,
        ..Default::default()
    })
    .map_err(|e| e.to_string())
}

/// `creds` first, then the node keychain (kpack's `MultiKeychain(creds, k8sNode)`).
fn merged(creds: &docker::RegistryCreds, node: &Keychain) -> Keychain {
    let mut k = creds.keychain.clone();
    k.append(node.clone());
    k
}

pub fn run(cfg: &Config, paths: &Paths, log: &dyn Fn(&str)) -> Result<(), String> {
    let workspace = paths.workspace();
    if paths.is_kpack() {
        mounts::check(
            &[
                (&workspace, "workspace-dir"),
                (&paths.project_metadata_dir(), "layers-dir"),
            ],
            mounts::in_pod(),
        )?;
    }
    for l in buildchange::lines(&cfg.build_changes) {
        log(&l);
    }
    log("Loading registry credentials from service account secrets");
    let mut creds = docker::parse_basic_auth(paths, &cfg.basic_docker, log)?;
    let mut cfg_names = cfg.dockercfg.clone();
    cfg_names.extend(cfg.dockerconfig.iter().cloned());
    creds.append(docker::parse_docker_config_secrets(
        paths,
        &cfg_names,
        Some(log),
    )?);
    if creds.is_empty() {
        log("No registry credentials were loaded from service account secrets");
    }
    log("Loading cluster credential helpers");
    let node = node_keychain();

    access::verify_write(&client(merged(&creds, &node))?, &creds, &cfg.image_tag)?;

    creds.append(docker::parse_docker_config_secrets(
        paths,
        &cfg.imagepull,
        None,
    )?);
    access::verify_read(&client(merged(&creds, &node))?, &creds, &cfg.run_image)?;

    fetch_source(cfg, paths, &creds, &node, log)?;

    let app_dir = workspace.join(&cfg.source_sub_path);
    let shown = |p: &Path| paths.shown(p);
    project_toml::process(
        &DescriptorPaths {
            app_dir: &app_dir,
            descriptor_path: &cfg.descriptor_path,
            platform_dir: &paths.platform(),
            shown: &shown,
        },
        log,
    )
    .map_err(|e| format!("error while processing the project descriptor: {e}"))?;

    if !cfg.builder_image.is_empty() && !cfg.builder_name.is_empty() && !cfg.builder_kind.is_empty()
    {
        log(&format!(
            "Builder:\n Image: {} \n Name: {} \n Kind: {} ",
            cfg.builder_image, cfg.builder_name, cfg.builder_kind
        ));
    }

    platform_env::setup_platform_env(&paths.platform(), std::env::vars())
        .map_err(|e| format!("error setting up platform env vars {e}"))?;

    creds
        .save(&paths.docker_config())
        .map_err(|e| format!("error writing docker creds {e}"))?;
    Ok(())
}

fn fetch_source(
    cfg: &Config,
    paths: &Paths,
    creds: &docker::RegistryCreds,
    node: &Keychain,
    log: &dyn Fn(&str),
) -> Result<(), String> {
    let workspace = paths.workspace();
    let ws_shown = paths.shown(&workspace);
    let meta_dir = paths.project_metadata_dir();
    if !cfg.git_url.is_empty() {
        let kc = GitKeychain::new(paths, &cfg.basic_git, &cfg.ssh_git)?;
        return git::fetch(
            &git::GitRequest {
                url: &cfg.git_url,
                revision: &cfg.git_revision,
                submodules: cfg.git_submodules,
                trust_unknown_hosts: cfg.trust_unknown_hosts,
                workspace: &workspace,
                workspace_shown: &ws_shown,
                metadata_dir: &meta_dir,
                metadata_dir_shown: &paths.shown(&meta_dir),
            },
            &kc,
            log,
        )
        .map_err(|e| e.to_string());
    }
    if !cfg.blob_url.is_empty() {
        let auth = if cfg.blob_auth {
            Some(blob_auth(cfg, paths, log)?)
        } else {
            None
        };
        return blob::fetch(
            &blob::BlobRequest {
                url: &cfg.blob_url,
                authorization: auth.as_deref(),
                strip_components: cfg.strip_components,
                workspace: &workspace,
                workspace_shown: &ws_shown,
                metadata_dir: &meta_dir,
            },
            log,
        )
        .map_err(|e| e.to_string());
    }
    if !cfg.registry_image.is_empty() {
        // The source's own pull secret comes first (kpack's MultiKeychain order).
        let pull = docker::parse_docker_config_dir(
            &paths.registry_source_pull_secrets(),
            "registrySourcePullSecrets",
        )?;
        let mut kc = pull.keychain;
        kc.append(merged(creds, node));
        return registry::fetch(
            &client(kc)?,
            &cfg.registry_image,
            &workspace,
            &ws_shown,
            &meta_dir,
            log,
        )
        .map_err(|e| e.to_string());
    }
    Err("no git url, blob url, or registry image provided".to_string())
}

fn blob_auth(cfg: &Config, paths: &Paths, log: &dyn Fn(&str)) -> Result<String, String> {
    if cfg.blob.is_empty() {
        log("Loading blob credentials from helpers");
        // kpack's helpers are Azure and GCP workload identity; neither is available here.
        return Err(format!(
            "failed to resolve creds: no keychain matched for '{}' (cloud blob credential helpers are not supported yet; use a blob secret)",
            cfg.blob_url
        ));
    }
    log("Loading blob credentials from service account secrets");
    for a in &cfg.blob {
        if let Some((name, domain)) = crate::creds::split_secret_arg(a) {
            log(&format!(
                "Loading secrets for \"{domain}\" from secret \"{name}\""
            ));
        }
    }
    blob_creds::resolve(paths, &cfg.blob, &cfg.blob_url)
        .map(|a| a.header)
        .map_err(|e| format!("failed to resolve creds: {e}"))
}
