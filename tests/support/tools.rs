//! Independent validators: each runs the real tool and panics with its stderr on failure.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// Panics unless `tool` is an executable on `PATH`.
pub fn require(tool: &str) {
    if which(tool).is_none() {
        panic!("required tool {tool} not installed: run ci/test (installs Debian packages)");
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs `program args`; `Ok(stdout)` on exit 0, else `Err(stderr)` (with the exit status).
pub fn try_run(program: &str, args: &[&str]) -> Result<String, String> {
    require(program);
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim_end(),
            out.status
        ))
    }
}

/// Runs `program args` and returns stdout; panics with stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    try_run(program, args)
        .unwrap_or_else(|err| panic!("`{program} {}` failed:\n{err}", args.join(" ")))
}

pub fn skopeo(args: &[&str]) -> String {
    run("skopeo", args)
}

/// Like [`skopeo`] but returns stderr on failure instead of panicking (for expected failures).
pub fn try_skopeo(args: &[&str]) -> Result<String, String> {
    try_run("skopeo", args)
}

/// `skopeo inspect --raw EXTRA... IMAGE`: the manifest (or index) as stored.
pub fn skopeo_inspect_raw(image: &str, extra: &[&str]) -> serde_json::Value {
    inspect("--raw", image, extra)
}

/// The layer digests of `image` (a skopeo transport reference; plain-HTTP registries allowed).
pub fn layer_digests(image: &str) -> Vec<String> {
    skopeo_inspect_raw(image, &["--tls-verify=false"])["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("{image}: not an image manifest"))
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `skopeo inspect --config EXTRA... IMAGE`: the image config blob.
pub fn skopeo_inspect_config(image: &str, extra: &[&str]) -> serde_json::Value {
    inspect("--config", image, extra)
}

fn inspect(mode: &str, image: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["inspect", mode];
    args.extend_from_slice(extra);
    args.push(image);
    let out = skopeo(&args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("skopeo inspect {mode} {image}: bad JSON ({e}):\n{out}"))
}

pub fn umoci(args: &[&str]) -> String {
    run("umoci", args)
}

/// `umoci unpack --image DIR:TAG BUNDLE` (as root; the tree lands in `BUNDLE/rootfs`).
pub fn umoci_unpack(layout_dir: &Path, tag: &str, bundle: &Path) {
    let image = format!("{}:{tag}", layout_dir.display());
    umoci(&["unpack", "--image", &image, &bundle.to_string_lossy()]);
}

/// Builds (or adds `tag` to) an OCI layout whose single layer is the contents of `rootfs`,
/// with fixed timestamps so repeated builds give the same digest.
pub fn oci_layout_from_dir(layout_dir: &Path, tag: &str, rootfs: &Path) {
    let layout = layout_dir.to_string_lossy();
    if !layout_dir.join("index.json").exists() {
        umoci(&["init", "--layout", &layout]);
    }
    let image = format!("{layout}:{tag}");
    umoci(&["new", "--image", &image]);
    umoci(&[
        "insert",
        "--no-history",
        "--image",
        &image,
        &rootfs.to_string_lossy(),
        "/",
    ]);
    umoci(&[
        "config",
        "--no-history",
        "--created",
        "1970-01-01T00:00:00Z",
        "--image",
        &image,
    ]);
    umoci(&["gc", "--layout", &layout]);
}

/// `sha256:<hex>` of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// `sha256:<hex>` of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
