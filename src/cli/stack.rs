//! `buildpod stack …`: build stack images.

use std::path::PathBuf;
use std::process::Command;

use clap::Subcommand;

use super::image::RegistryArgs;
use crate::builder::stack::{build_stack, busybox_version, Definition, StackSpec};
use crate::layer::Compression;
use crate::oci::location::Location;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Subcommand, Debug)]
pub enum StackCommand {
    /// Build the tiny stack's build and run images from a static busybox; prints both digests.
    Tiny {
        /// Where to write the build image: oci:DIR[:TAG], docker://REF or REF.
        build_dest: String,
        /// Where to write the run image.
        run_dest: String,
        /// The stack definition.
        #[arg(long, default_value = "images/stacks/tiny/stack.toml")]
        definition: PathBuf,
        /// A static busybox binary (Debian: busybox-static).
        #[arg(long, default_value = "/bin/busybox")]
        busybox: PathBuf,
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// none, gzip or zstd.
        #[arg(long, default_value = "gzip")]
        compression: Compression,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Build the debian stack's build and run images (Debian via debootstrap, as root; the
    /// root filesystems are cached); prints both digests.
    Debian(super::stack_debian::DebianArgs),
}

pub fn run(c: StackCommand) -> Result<()> {
    let (build_dest, run_dest, definition, busybox, arch, compression, registry) = match c {
        StackCommand::Tiny {
            build_dest,
            run_dest,
            definition,
            busybox,
            arch,
            compression,
            registry,
        } => (
            build_dest,
            run_dest,
            definition,
            busybox,
            arch,
            compression,
            registry,
        ),
        StackCommand::Debian(a) => return super::stack_debian::run(a),
    };
    let text = std::fs::read_to_string(&definition)
        .map_err(|e| format!("read {}: {e}", definition.display()))?;
    let definition = Definition::parse(&text, &definition.display().to_string())?;
    // busybox prints its banner (with the version) for --help, exit status 0.
    let out = Command::new(&busybox)
        .arg("--help")
        .output()
        .map_err(|e| format!("run {} --help: {e}", busybox.display()))?;
    let banner =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let busybox_version = busybox_version(&banner)
        .ok_or_else(|| format!("{}: no busybox version in its --help", busybox.display()))?;
    let client = registry.client()?;
    let (build_store, build_tags) = Location::parse(&build_dest)?.create(&client)?;
    let (run_store, run_tags) = Location::parse(&run_dest)?.create(&client)?;
    let spec = StackSpec {
        definition,
        busybox,
        busybox_version,
        arch,
        compression,
    };
    let built = build_stack(&spec, &*build_store, &build_tags, &*run_store, &run_tags)?;
    tracing::info!(diff_id = %built.layer.info.diff_id, size = built.layer.info.size, "layer");
    println!("build {}", built.build.digest);
    println!("run {}", built.run.digest);
    Ok(())
}
