//! `buildpod image build`: an image from a definition file (see `crate::imagebuild`).

use std::path::PathBuf;

use clap::Args;

use super::image::RegistryArgs;
use crate::imagebuild::{build_image, Definition, Vars};
use crate::layer::{CompressOptions, Compression};
use crate::oci::location::Location;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The image definition (TOML).
    pub definition: PathBuf,
    /// Where to write it: oci:DIR[:TAG], docker://REF or REF.
    pub dest: String,
    /// Set a definition variable, `${NAME}` in the definition (repeatable; overrides its vars).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// none, gzip or zstd.
    #[arg(long, default_value = "gzip")]
    pub compression: Compression,
    /// Compression level: gzip 1–9 (default 1), zstd 1–19 (default 3). Images built once and
    /// pulled often (the build-pod images) are worth a higher one.
    #[arg(long)]
    pub level: Option<u32>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Build the image and print its digest.
pub fn run(a: BuildArgs) -> Result<()> {
    let mut vars = Vars::new();
    for kv in &a.set {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("--set {kv:?}: want NAME=VALUE"))?;
        vars.insert(k.to_string(), v.to_string());
    }
    let def = Definition::load(&a.definition, &vars)?;
    let client = a.registry.client()?;
    let (store, tags) = Location::parse(&a.dest)?.create(&client)?;
    let mut compress = CompressOptions::new(a.compression);
    compress.level = a.level;
    let built = build_image(&*store, &def, &compress, &tags)?;
    for (l, s) in def.layers.iter().zip(&built.layers) {
        tracing::info!(layer = %l.name, digest = %s.info.digest, size = s.info.size, "layer");
    }
    println!("{}", built.manifest.digest);
    Ok(())
}
