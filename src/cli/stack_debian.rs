//! `buildpod stack debian`: the debian stack's build and run images from cached root
//! filesystems (made by the rootfs script next to the definition, as root, when not cached).

use std::path::PathBuf;

use super::image::RegistryArgs;
use crate::builder::debian::{build_stack, ensure_rootfs, Definition, StackSpec};
use crate::layer::Compression;
use crate::oci::location::Location;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(clap::Args, Debug)]
pub struct DebianArgs {
    /// Where to write the build image: oci:DIR[:TAG], docker://REF or REF.
    pub build_dest: String,
    /// Where to write the run image.
    pub run_dest: String,
    /// The stack definition.
    #[arg(long, default_value = "images/stacks/debian/stack.toml")]
    pub definition: PathBuf,
    /// The script that makes the root filesystems (default: `rootfs` next to the definition).
    #[arg(long)]
    pub rootfs_script: Option<PathBuf>,
    /// Where the root filesystems are cached
    /// (default: ${BUILDPOD_CACHE:-$HOME/.cache/buildpod}/stacks/debian).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[arg(long, default_value = "amd64")]
    pub arch: String,
    /// none, gzip or zstd.
    #[arg(long, default_value = "gzip")]
    pub compression: Compression,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `${BUILDPOD_CACHE:-$HOME/.cache/buildpod}/stacks/debian`.
fn default_cache() -> Result<PathBuf> {
    let base = match std::env::var_os("BUILDPOD_CACHE").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache/buildpod"))
            .ok_or("neither BUILDPOD_CACHE nor HOME is set: pass --cache-dir")?,
    };
    Ok(base.join("stacks/debian"))
}

pub fn run(a: DebianArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.definition)
        .map_err(|e| format!("read {}: {e}", a.definition.display()))?;
    let definition = Definition::parse(&text, &a.definition.display().to_string())?;
    let script = match a.rootfs_script {
        Some(s) => s,
        None => a
            .definition
            .parent()
            .map(|p| p.join("rootfs"))
            .ok_or("the definition has no directory")?,
    };
    let cache = match a.cache_dir {
        Some(c) => c,
        None => default_cache()?,
    };
    // Destinations first: a bad reference fails before minutes of debootstrap.
    let client = a.registry.client()?;
    let (build_store, build_tags) = Location::parse(&a.build_dest)?.create(&client)?;
    let (run_store, run_tags) = Location::parse(&a.run_dest)?.create(&client)?;
    let rootfs = ensure_rootfs(&definition, &script, &cache)?;
    let spec = StackSpec {
        definition,
        rootfs,
        arch: a.arch,
        compression: a.compression,
    };
    let built = build_stack(&spec, &*build_store, &build_tags, &*run_store, &run_tags)?;
    for (name, l) in [("run", &built.run_layer), ("build", &built.build_layer)] {
        tracing::info!(layer = name, diff_id = %l.info.diff_id, size = l.info.size, uncompressed = l.info.uncompressed_size, "layer");
    }
    println!("build {}", built.build.digest);
    println!("run {}", built.run.digest);
    Ok(())
}
