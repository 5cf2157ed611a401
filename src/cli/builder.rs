//! `buildpod builder create`: builder images from kpack resources or a pack-style builder.toml.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::image::RegistryArgs;
use crate::builder::create::{create, CreateOptions};
use crate::builder::{builder_toml, Inputs};
use crate::fsutil::write_atomic;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum BuilderCommand {
    /// Create a builder image as kpack does (stack build image, lifecycle layer, one layer per
    /// buildpack, order and stack metadata) and print the status kpack would report.
    Create {
        /// kpack resources (multi-document YAML; repeatable): ClusterStack, ClusterBuildpack,
        /// Buildpack, ClusterStore, ClusterLifecycle, Builder, ClusterBuilder.
        #[arg(short = 'f', long = "filename", required_unless_present = "config")]
        files: Vec<PathBuf>,
        /// A pack-style builder.toml instead of resources.
        #[arg(long, conflicts_with_all = ["files", "builder"])]
        config: Option<PathBuf>,
        /// The Builder or ClusterBuilder to create: NAME, NAMESPACE/NAME, Builder/NS/NAME or
        /// ClusterBuilder/NAME (needed when the resources define several).
        #[arg(long)]
        builder: Option<String>,
        /// Where to write it: REF, docker://REF or oci:DIR[:TAG] (default: the builder's
        /// spec.tag; required with --config).
        #[arg(long)]
        tag: Option<String>,
        /// The builder's OS; the stack's build image must be for it.
        #[arg(long, default_value = "linux")]
        os: String,
        /// Write the status here (default: stdout).
        #[arg(long)]
        status_output: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "yaml")]
        status_format: Format,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub fn run(c: BuilderCommand) -> Result<()> {
    let BuilderCommand::Create {
        files,
        config,
        builder,
        tag,
        os,
        status_output,
        status_format,
        registry,
    } = c;
    let mut opts = CreateOptions {
        builder,
        tag,
        os,
        description: None,
    };
    let inputs = match &config {
        Some(p) => {
            if opts.tag.is_none() {
                return Err("--tag is required with --config".into());
            }
            let text =
                std::fs::read_to_string(p).map_err(|e| format!("read {}: {e}", p.display()))?;
            let (inputs, description) = builder_toml::parse(&text, &p.display().to_string())?;
            opts.description = description;
            inputs
        }
        None => {
            let mut yaml = String::new();
            for f in &files {
                let text =
                    std::fs::read_to_string(f).map_err(|e| format!("read {}: {e}", f.display()))?;
                yaml.push_str(&text);
                yaml.push_str("\n---\n");
            }
            Inputs::from_yaml(&yaml)?
        }
    };
    let client = registry.client()?;
    let created = create(&client, &inputs, &opts)?;
    let t = &created.written.transfer;
    tracing::info!(
        uploaded = t.buildpacks.uploaded,
        mounted = t.buildpacks.mounted,
        skipped = t.buildpacks.skipped,
        "buildpack layers"
    );
    tracing::info!(
        uploaded = t.other.uploaded,
        mounted = t.other.mounted,
        skipped = t.other.skipped,
        "other blobs"
    );
    tracing::info!(image = %created.reference, digest = %created.written.manifest.digest, "builder");
    let text = match status_format {
        Format::Yaml => serde_norway::to_string(&created.status)?,
        Format::Json => serde_json::to_string_pretty(&created.status)? + "\n",
    };
    match &status_output {
        Some(p) => {
            write_atomic(p, text.as_bytes())?;
            println!("{}", created.written.latest_image);
        }
        None => print!("{text}"),
    }
    Ok(())
}
