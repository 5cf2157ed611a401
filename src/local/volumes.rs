//! The pod's volumes as host directories under the run's work dir, filled as kubelet would:
//! emptyDir (mode 0777), secret and configMap items (defaultMode, group fsGroup), downwardAPI
//! metadata fields; PVCs and hostPaths only where the caller maps them to host paths.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{KeyToPath, Pod, Secret, Volume};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume}: secret {secret:?} not found in the local secrets")]
    MissingSecret { volume: String, secret: String },
    #[error("volume {volume}: {what} is not supported in local mode yet")]
    Unsupported { volume: String, what: String },
    #[error("volume {volume}: {} needs a host path (persistentVolumeClaim and hostPath volumes are mapped by the caller)", kind)]
    Unmapped { volume: String, kind: String },
    #[error("volume {volume}: item path {path:?} leaves the volume")]
    BadItem { volume: String, path: String },
    #[error("volume {volume}: {}: {source}", path.display())]
    Io {
        volume: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Lay out every volume of `pod` under `dir`; `mapped` gives host paths for PVCs/hostPaths.
pub fn prepare(
    pod: &Pod,
    dir: &Path,
    secrets: &BTreeMap<String, Secret>,
    mapped: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let mut out = BTreeMap::new();
    let spec = pod.spec.as_ref();
    let fs_group = spec
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.fs_group)
        .map(|g| g as u32);
    for v in spec.and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        let path = match mapped.get(&v.name) {
            Some(p) => {
                if let Some(g) = fs_group.filter(|_| v.persistent_volume_claim.is_some()) {
                    give_to_group(v, p, g)?;
                }
                p.clone()
            }
            None => one(pod, v, &dir.join(&v.name), secrets, fs_group)?,
        };
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

fn one(
    pod: &Pod,
    v: &Volume,
    path: &Path,
    secrets: &BTreeMap<String, Secret>,
    fs_group: Option<u32>,
) -> Result<PathBuf, VolumeError> {
    let io = |p: &Path| {
        let (volume, path) = (v.name.clone(), p.to_path_buf());
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    std::fs::create_dir_all(path).map_err(io(path))?;
    if v.empty_dir.is_some() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(io(path))?;
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let secret = secrets.get(&name);
        if secret.is_none() && s.optional != Some(true) {
            return Err(VolumeError::MissingSecret {
                volume: v.name.clone(),
                secret: name,
            });
        }
        let data = secret.map(secret_data).unwrap_or_default();
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        write_items(v, path, &data, s.items.as_deref(), mode, fs_group)?;
    } else if let Some(c) = &v.config_map {
        return Err(VolumeError::Unsupported {
            volume: v.name.clone(),
            what: format!("configMap {:?}", c.name.as_str()),
        });
    } else if let Some(d) = &v.downward_api {
        let meta = &pod.metadata;
        let mut data = BTreeMap::new();
        for item in d.items.iter().flatten() {
            let field = item.field_ref.as_ref().map(|f| f.field_path.as_str());
            let value = match field {
                Some("metadata.name") => meta.name.clone().unwrap_or_default(),
                Some("metadata.namespace") => meta.namespace.clone().unwrap_or_default(),
                Some("metadata.labels") => kv_lines(meta.labels.as_ref()),
                Some("metadata.annotations") => kv_lines(meta.annotations.as_ref()),
                other => {
                    return Err(VolumeError::Unsupported {
                        volume: v.name.clone(),
                        what: format!("downwardAPI field {other:?}"),
                    })
                }
            };
            data.insert(item.path.clone(), value.into_bytes());
        }
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        write_items(v, path, &data, None, mode, fs_group)?;
    } else {
        let kind = if v.persistent_volume_claim.is_some() {
            "persistentVolumeClaim"
        } else if v.host_path.is_some() {
            "hostPath"
        } else {
            return Err(VolumeError::Unsupported {
                volume: v.name.clone(),
                what: "this volume type".to_string(),
            });
        };
        return Err(VolumeError::Unmapped {
            volume: v.name.clone(),
            kind: kind.to_string(),
        });
    }
    Ok(path.to_path_buf())
}

/// kubelet's fsGroup ownership for a claim: the group owns the volume's root, may write it, and
/// files made there inherit the group (setgid). Only the root: what the build writes inside is
/// already the build user's.
fn give_to_group(v: &Volume, dir: &Path, gid: u32) -> Result<(), VolumeError> {
    let io = |source| VolumeError::Io {
        volume: v.name.clone(),
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::os::unix::fs::chown(dir, None, Some(gid)).map_err(io)?;
    let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode() & 0o7777;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o2070)).map_err(io)
}

/// Kubernetes' `key="value"` lines (values JSON-quoted), sorted.
fn kv_lines(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

fn write_items(
    v: &Volume,
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    fs_group: Option<u32>,
) -> Result<(), VolumeError> {
    let chosen: Vec<(String, String, u32)> = match items {
        Some(items) => items
            .iter()
            .filter(|i| data.contains_key(&i.key))
            .map(|i| {
                (
                    i.key.clone(),
                    i.path.clone(),
                    i.mode.map_or(default_mode, |m| m as u32),
                )
            })
            .collect(),
        None => data
            .keys()
            .map(|k| (k.clone(), k.clone(), default_mode))
            .collect(),
    };
    for (key, rel, mode) in chosen {
        let p = Path::new(&rel);
        if p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(VolumeError::BadItem {
                volume: v.name.clone(),
                path: rel,
            });
        }
        let file = dir.join(p);
        let io = |source| VolumeError::Io {
            volume: v.name.clone(),
            path: file.clone(),
            source,
        };
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let bytes = data.get(&key).map(Vec::as_slice).unwrap_or_default();
        crate::fsutil::write_atomic(&file, bytes).map_err(|e| io(e.source))?;
        // kubelet: group fsGroup, and the group may read what the owner may.
        let mode = match fs_group {
            Some(g) => {
                std::os::unix::fs::chown(&file, None, Some(g)).map_err(io)?;
                mode | ((mode & 0o400) >> 3)
            }
            None => mode,
        };
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    Ok(())
}
