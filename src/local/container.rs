//! One container of a pod as a sandbox [`Spec`], the way kubelet and containerd would start it:
//! command/args over the image's entrypoint/cmd, image env then container env, the security
//! context's user, groups and capabilities, volume mounts (subPath included) and the
//! termination-message file. Pure: volumes are already host directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::oci::ImageConfig;
use crate::sandbox::{Mount, Spec, User};

/// containerd's default capabilities (what a container gets unless its security context drops them).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerError {
    #[error("container {container}: volume mount {mount:?} names no volume of the pod")]
    UnknownVolume { container: String, mount: String },
    #[error("container {container}: {what} is not supported in local mode yet")]
    Unsupported { container: String, what: String },
    #[error("container {container}: image user {user:?} is not numeric (set runAsUser)")]
    User { container: String, user: String },
    #[error("container {container}: no command, and the image has no entrypoint or cmd")]
    NoCommand { container: String },
    #[error("container {container}: subPath {sub_path:?} leaves its volume")]
    SubPath { container: String, sub_path: String },
}

/// Everything about the run that is not in the pod: where things are on this machine.
pub struct Placement<'a> {
    /// Volume name → host directory (or file) holding its content.
    pub volumes: &'a BTreeMap<String, PathBuf>,
    /// The image's unpacked layers, lowest first.
    pub layers: &'a [PathBuf],
    pub scratch: PathBuf,
    /// The host file bound at the container's terminationMessagePath.
    pub termination_file: &'a Path,
    pub hostname: &'a str,
    /// Host files bound read-only as kubelet does for host-network pods (`/etc/resolv.conf`,
    /// `/etc/hosts`): host path and container path.
    pub host_files: &'a [(PathBuf, String)],
}

/// The host's CA bundle (Debian's path), for [`host_network_files`].
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The name-resolution files kubelet gives a host-network pod, where this host has them, and
/// with `host_certs` the host's CA bundle over the image's (a TLS-intercepting proxy's CA, a
/// private registry's: what a cluster would add through a CA-certificates binding).
pub fn host_network_files(host_certs: bool) -> Vec<(PathBuf, String)> {
    let certs = host_certs.then_some(HOST_CA_BUNDLE);
    ["/etc/resolv.conf", "/etc/hosts"]
        .into_iter()
        .chain(certs)
        .filter(|p| Path::new(p).is_file())
        .map(|p| (PathBuf::from(p), p.to_string()))
        .collect()
}

pub fn spec(
    pod: &PodSpec,
    c: &Container,
    image: &ImageConfig,
    at: &Placement<'_>,
) -> Result<Spec, ContainerError> {
    let name = c.name.clone();
    let unsupported = |what: &str| ContainerError::Unsupported {
        container: name.clone(),
        what: what.to_string(),
    };
    let args = command(c, image).ok_or_else(|| ContainerError::NoCommand {
        container: name.clone(),
    })?;
    let env = environment(c, image).map_err(|what| unsupported(&what))?;
    let psc = pod.security_context.as_ref();
    let csc = c.security_context.as_ref();
    if csc.and_then(|s| s.privileged) == Some(true) {
        return Err(unsupported("a privileged container"));
    }
    let (image_uid, image_gid) = image_user(&name, image.user())?;
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user))
        .map_or(image_uid, |u| u as u32);
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|s| s.run_as_group))
        .map_or(image_gid, |g| g as u32);
    let mut additional_gids: Vec<u32> = psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|g| g as u32)
        .collect();
    if let Some(fs_group) = psc.and_then(|s| s.fs_group) {
        additional_gids.push(fs_group as u32);
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let base = at
            .volumes
            .get(&m.name)
            .ok_or_else(|| ContainerError::UnknownVolume {
                container: name.clone(),
                mount: m.name.clone(),
            })?;
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let p = Path::new(sub);
                if p.is_absolute()
                    || p.components()
                        .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(ContainerError::SubPath {
                        container: name.clone(),
                        sub_path: sub.to_string(),
                    });
                }
                base.join(p)
            }
            None => base.clone(),
        };
        mounts.push(Mount {
            source,
            destination: m.mount_path.clone(),
            read_only: m.read_only == Some(true),
        });
    }
    for (host, inside) in at.host_files {
        if !mounts.iter().any(|m| m.destination == *inside) {
            mounts.push(Mount {
                source: host.clone(),
                destination: inside.clone(),
                read_only: true,
            });
        }
    }
    mounts.push(Mount {
        source: at.termination_file.to_path_buf(),
        destination: c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| DEFAULT_TERMINATION_PATH.to_string()),
        read_only: false,
    });
    let cwd = c
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| image.working_dir())
        .unwrap_or_else(|| "/".to_string());
    Ok(Spec {
        id: name,
        layers: at.layers.to_vec(),
        scratch: at.scratch.clone(),
        args,
        env,
        cwd,
        user: User {
            uid,
            gid,
            additional_gids,
        },
        hostname: at.hostname.to_string(),
        mounts,
        capabilities: capabilities(c),
        no_new_privileges: csc.and_then(|s| s.allow_privilege_escalation) == Some(false),
    })
}

/// Kubernetes' rule: `command` replaces the entrypoint (and drops the image cmd); `args`
/// replaces the cmd.
fn command(c: &Container, image: &ImageConfig) -> Option<Vec<String>> {
    let mut argv = match &c.command {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        _ => {
            let mut v = image.entrypoint().unwrap_or_default();
            if c.args.as_ref().is_none_or(|a| a.is_empty()) {
                v.extend(image.cmd().unwrap_or_default());
            }
            v
        }
    };
    argv.extend(c.args.clone().unwrap_or_default());
    (!argv.is_empty()).then_some(argv)
}

/// Image env, then the container's (later wins, order kept), HOSTNAME as kubelet sets it is
/// left out: programs in build pods don't rely on it.
fn environment(c: &Container, image: &ImageConfig) -> Result<Vec<String>, String> {
    let mut vars: Vec<(String, String)> = image
        .env()
        .into_iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    if c.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err("envFrom".to_string());
    }
    for e in c.env.iter().flatten() {
        if e.value_from.is_some() {
            return Err(format!("env {} with valueFrom", e.name));
        }
        let value = expand(e.value.as_deref().unwrap_or(""), &vars);
        match vars.iter_mut().find(|(k, _)| *k == e.name) {
            Some(slot) => slot.1 = value,
            None => vars.push((e.name.clone(), value)),
        }
    }
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.push(("PATH".into(), crate::sandbox::spec::DEFAULT_PATH.into()));
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// `$(VAR)` references to earlier variables, `$$(VAR)` escapes, as Kubernetes expands env values.
fn expand(value: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some((name, after)) = tail.strip_prefix("$(").and_then(|t| t.split_once(')'))
        {
            match vars.iter().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..name.len() + 3]),
            }
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn image_user(container: &str, user: Option<String>) -> Result<(u32, u32), ContainerError> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok((0, 0));
    };
    let bad = || ContainerError::User {
        container: container.to_string(),
        user: user.clone(),
    };
    let (u, g) = user.split_once(':').unwrap_or((&user, ""));
    let uid: u32 = u.parse().map_err(|_| bad())?;
    let gid: u32 = if g.is_empty() {
        0
    } else {
        g.parse().map_err(|_| bad())?
    };
    Ok((uid, gid))
}

fn capabilities(c: &Container) -> Vec<String> {
    let caps = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref());
    let norm = |s: &String| {
        let up = s.to_ascii_uppercase();
        if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let drop: Vec<String> = caps
        .and_then(|c| c.drop.as_ref())
        .map(|d| d.iter().map(norm).collect())
        .unwrap_or_default();
    let mut keep: Vec<String> = if drop.iter().any(|d| d == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    for a in caps.and_then(|c| c.add.as_ref()).into_iter().flatten() {
        let a = norm(a);
        if !keep.contains(&a) {
            keep.push(a);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_earlier_variables_like_kubernetes() {
        let vars = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)/b", &vars), "x/b");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("a$b", &vars), "a$b");
    }
}
