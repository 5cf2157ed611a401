//! ServiceAccount secrets → volumes, mounts and step flags (§1.6). Volume names use the index
//! into the context's secret list, so skipped secrets leave gaps (as kpack's do).

use k8s_openapi::api::core::v1::{LocalObjectReference, Secret, Volume, VolumeMount};

use super::generate::{mount, secret_volume};
use super::SECRETS_DIR;

const GIT: &str = "kpack.io/git";
const BLOB: &str = "kpack.io/blob";
const DOCKER: &str = "kpack.io/docker";
const COSIGN_REPOSITORY: &str = "kpack.io/cosign.repository";
const COSIGN_MEDIA_TYPES: &str = "kpack.io/cosign.docker-media-types";
const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
const DOCKERCFG: &str = "kubernetes.io/dockercfg";
const DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
const SSH_AUTH: &str = "kubernetes.io/ssh-auth";

/// Volumes, the mounts of those volumes, and the flags that name them.
#[derive(Default)]
pub(super) struct Setup {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub args: Vec<String>,
}

/// Which secrets a pod takes: the full build's (git, blob when `spec.source.blob.auth` is
/// `secret`, docker) or the rebase's (docker only).
#[derive(Clone, Copy)]
pub(super) enum Filter {
    Build { blob_secrets: bool },
    Docker,
}

fn annotation<'a>(s: &'a Secret, key: &str) -> &'a str {
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

fn name(s: &Secret) -> &str {
    s.metadata.name.as_deref().unwrap_or("")
}

fn is_docker(s: &Secret, ty: &str) -> bool {
    !annotation(s, DOCKER).is_empty() || ty == DOCKERCFG || ty == DOCKERCONFIGJSON
}

/// kpack's `setupSecretVolumesAndArgs`.
pub(super) fn secrets(all: &[Secret], filter: Filter) -> Setup {
    let mut out = Setup::default();
    for (i, s) in all.iter().enumerate() {
        let ty = s.type_.as_deref().unwrap_or("");
        let pass = match filter {
            Filter::Build { blob_secrets } => {
                !annotation(s, GIT).is_empty()
                    || (blob_secrets && !annotation(s, BLOB).is_empty())
                    || is_docker(s, ty)
            }
            Filter::Docker => is_docker(s, ty),
        };
        if !pass {
            continue;
        }
        let n = name(s);
        let arg = if ty == BASIC_AUTH && !annotation(s, DOCKER).is_empty() {
            format!("-basic-docker={n}={}", annotation(s, DOCKER))
        } else if ty == DOCKERCONFIGJSON {
            format!("-dockerconfig={n}")
        } else if ty == DOCKERCFG {
            format!("-dockercfg={n}")
        } else if ty == BASIC_AUTH && !annotation(s, GIT).is_empty() {
            format!("-basic-git={n}={}", annotation(s, GIT))
        } else if ty == SSH_AUTH {
            format!("-ssh-git={n}={}", annotation(s, GIT))
        } else if !annotation(s, BLOB).is_empty() {
            format!("-blob={n}={}", annotation(s, BLOB))
        } else {
            continue;
        };
        out.args.push(arg);
        let volume = format!("secret-volume-{i}");
        out.mounts
            .push(mount(&volume, &format!("{SECRETS_DIR}/{n}"), false));
        out.volumes.push(secret_volume(&volume, n));
    }
    out
}

/// kpack's `setupCosignVolumes` and `cosignSecretArgs`: every secret with a `cosign.key`.
pub(super) fn cosign(all: &[Secret]) -> Setup {
    let mut out = Setup::default();
    for (i, s) in all.iter().enumerate() {
        let has_key = s
            .data
            .as_ref()
            .and_then(|d| d.get("cosign.key"))
            .is_some_and(|k| !k.0.is_empty());
        if !has_key {
            continue;
        }
        let n = name(s);
        let volume = format!("secret-volume-{i}");
        out.mounts
            .push(mount(&volume, &format!("{SECRETS_DIR}/cosign/{n}"), false));
        out.volumes.push(secret_volume(&volume, n));
        for (flag, key) in [
            ("cosign-repositories", COSIGN_REPOSITORY),
            ("cosign-docker-media-types", COSIGN_MEDIA_TYPES),
        ] {
            let v = annotation(s, key);
            if !v.is_empty() {
                out.args.push(format!("-{flag}={n}={v}"));
            }
        }
    }
    out
}

/// kpack's `setupImagePullVolumes`: the ServiceAccount's pull secrets, then the builder's,
/// de-duplicated by name.
pub(super) fn image_pull(sa: &[LocalObjectReference], builder: &[LocalObjectReference]) -> Setup {
    let mut out = Setup::default();
    let mut seen = std::collections::BTreeSet::new();
    for r in sa.iter().chain(builder) {
        if !seen.insert(r.name.as_str()) {
            continue;
        }
        let volume = format!("pull-secret-volume-{}", out.volumes.len());
        out.args.push(format!("-imagepull={}", r.name));
        out.mounts
            .push(mount(&volume, &format!("{SECRETS_DIR}/{}", r.name), false));
        out.volumes.push(secret_volume(&volume, &r.name));
    }
    out
}
