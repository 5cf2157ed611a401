//! What one container run needs, independent of how it is isolated: the embedded sandbox and
//! the runc bundle are both generated from a [`Spec`], so the two runtimes cannot drift apart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The PATH a container gets when neither the image nor the container sets one (as containerd).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Open files allowed in the container: this machine's root lacks CAP_SYS_RESOURCE, so no
/// limit above the host's hard limit can be set; 1024 is what runc and umoci use.
pub const NOFILE: u64 = 1024;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
}

/// A host path bound into the container.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    /// Absolute path inside the container; resolved inside the container's root.
    pub destination: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Spec {
    /// The container's name, for messages and the runc container id.
    pub id: String,
    /// The image's unpacked layers, lowest first (one directory for a flat root): the read-only
    /// lower layers of the container's root. Never written.
    pub layers: Vec<PathBuf>,
    /// An empty directory owned by the caller for the writable upper layer and bookkeeping.
    pub scratch: PathBuf,
    /// argv; a first element without `/` is looked up in the container's PATH.
    pub args: Vec<String>,
    /// `KEY=VALUE`, exactly what the process gets.
    pub env: Vec<String>,
    /// Working directory (created when missing, as container runtimes do).
    pub cwd: String,
    pub user: User,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    /// Capabilities kept (e.g. `CAP_CHOWN`); everything else is dropped, bounding set included.
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
}

impl Spec {
    /// The PATH the process resolves `args[0]` with.
    pub fn path_var(&self) -> &str {
        self.env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
    }

    pub fn upper(&self) -> PathBuf {
        self.scratch.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.scratch.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.scratch.join("merged")
    }

    /// Short names for the layers (`<scratch>/l/<n>` symlinks, as Docker's overlay2 does):
    /// the mount options must fit in one page, and a builder can have a hundred layers.
    pub fn layer_links(&self) -> PathBuf {
        self.scratch.join("l")
    }

    /// The overlayfs mount options, with lower directories named relative to
    /// [`Spec::layer_links`] (the mount runs there); paths with `,` or `:` cannot be expressed.
    pub fn overlay_options(&self) -> Result<String, String> {
        let check = |p: &Path| -> Result<String, String> {
            let s = p
                .to_str()
                .ok_or_else(|| format!("{}: not UTF-8", p.display()))?;
            if s.contains([',', ':']) {
                return Err(format!(
                    "{s}: overlayfs cannot use a path containing ',' or ':'"
                ));
            }
            Ok(s.to_string())
        };
        if self.layers.is_empty() {
            return Err("the image has no layer directory".into());
        }
        // overlayfs lists the topmost lower directory first.
        let lower: Vec<String> = (0..self.layers.len())
            .rev()
            .map(|i| i.to_string())
            .collect();
        Ok(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            check(&self.upper())?,
            check(&self.work())?
        ))
    }
}

/// Where `args[0]` is, resolved like execvp against `path` under `root`.
pub fn resolve_program(root: &Path, program: &str, path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Some(program.to_string());
    }
    path.split(':').filter(|d| !d.is_empty()).find_map(|dir| {
        let candidate = format!("{}/{program}", dir.trim_end_matches('/'));
        let on_disk = root.join(candidate.trim_start_matches('/'));
        let meta = std::fs::metadata(on_disk).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}
