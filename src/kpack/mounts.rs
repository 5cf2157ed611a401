//! Mount checks (kpack#390): inside a pod, `/workspace` and friends are volumes. If one is not
//! mounted, the step would quietly build (or report) an empty app; say so instead.

use std::path::Path;

/// Mount points listed in a `/proc/self/mountinfo` text (field 5, octal escapes decoded).
pub fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether we run in a Kubernetes pod (the kubelet always sets this).
pub fn in_pod() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// Check that each of `required` is a mount point. Only enforced in a pod on kpack's real paths;
/// `BUILDPOD_MOUNTINFO` names another mountinfo file (tests).
pub fn check(required: &[(&Path, &str)], enforce: bool) -> Result<(), String> {
    let file = std::env::var("BUILDPOD_MOUNTINFO").ok();
    if !enforce && file.is_none() {
        return Ok(());
    }
    let text = std::fs::read_to_string(file.as_deref().unwrap_or("/proc/self/mountinfo"))
        .map_err(|e| format!("read mountinfo: {e}"))?;
    let mounts = mount_points(&text);
    for (path, volume) in required {
        let p = path.to_string_lossy();
        if !mounts.iter().any(|m| *m == p) {
            return Err(format!(
                "{p} is not a mounted volume: kpack mounts the {volume} volume there, so this \
                 container is not running in a kpack build pod (or the pod spec lost the mount); \
                 refusing to continue with an empty {p}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo() {
        let t = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                 30 22 0:40 / /workspace rw,relatime - tmpfs tmpfs rw\n\
                 31 22 0:41 / /my\\040dir rw - tmpfs tmpfs rw\n";
        assert_eq!(mount_points(t), vec!["/", "/workspace", "/my dir"]);
    }
}
