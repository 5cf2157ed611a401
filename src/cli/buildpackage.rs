//! `buildpod buildpackage …`: package buildpack directories, read buildpackages.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::image::RegistryArgs;
use crate::builder::buildpackage::read;
use crate::builder::fetch::open_image;
use crate::builder::package::{package, PackageSpec};
use crate::layer::Compression;
use crate::oci::location::Location;
use crate::oci::PlatformSpec;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Subcommand, Debug)]
pub enum BuildpackageCommand {
    /// Package a buildpack directory (buildpack.toml; a composite takes its [[order]] from
    /// --dependency buildpackages) into a buildpackage image, reproducibly; prints its digest.
    Package {
        /// The buildpack directory.
        dir: PathBuf,
        /// Where to write it: REF, docker://REF or oci:DIR[:TAG].
        #[arg(long)]
        tag: String,
        /// A buildpackage image whose buildpacks a composite's order uses (repeatable).
        #[arg(long = "dependency")]
        dependencies: Vec<String>,
        #[arg(long, default_value = "linux")]
        os: String,
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// none, gzip or zstd.
        #[arg(long, default_value = "gzip")]
        compression: Compression,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Print the buildpacks of a buildpackage image (JSON, as kpack's status.buildpacks).
    Inspect {
        /// REF, docker://REF or oci:DIR[:TAG].
        image: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub fn run(c: BuildpackageCommand) -> Result<()> {
    match c {
        BuildpackageCommand::Package {
            dir,
            tag,
            dependencies,
            os,
            arch,
            compression,
            registry,
        } => {
            let client = registry.client()?;
            let platform = PlatformSpec::new(&os, &arch, None);
            let mut deps = Vec::new();
            for d in &dependencies {
                let image = open_image(&client, d, &platform)
                    .map_err(|e| format!("dependency {d}: {e}"))?;
                let pkg = read(&image).map_err(|e| format!("dependency {d}: {e}"))?;
                deps.push((Arc::new(image), pkg));
            }
            let (store, tags) = Location::parse(&tag)?.create(&client)?;
            let spec = PackageSpec {
                dir,
                dependencies: deps,
                os,
                arch,
                compression,
            };
            let p = package(&*store, &tags, &spec)?;
            for (key, diff_id) in &p.buildpacks {
                tracing::info!(buildpack = %key, diff_id = %diff_id, "layer");
            }
            tracing::info!(
                uploaded = p.reused.uploaded,
                mounted = p.reused.mounted,
                skipped = p.reused.skipped,
                "dependency layers"
            );
            println!("{}", p.manifest.digest);
            Ok(())
        }
        BuildpackageCommand::Inspect { image, registry } => {
            let client = registry.client()?;
            let platform = PlatformSpec::new("linux", &PlatformSpec::host().arch, None);
            let img =
                open_image(&client, &image, &platform).map_err(|e| format!("{image}: {e}"))?;
            let pkg = read(&img).map_err(|e| format!("{image}: {e}"))?;
            let out = serde_json::json!({
                "image": img.latest_image,
                "metadata": pkg.metadata,
                "buildpacks": pkg.buildpacks,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}
