//! `buildpod image …` and `buildpod layer …`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::layer::{write_layer, CompressOptions, Compression, TarOptions, TarWriter};
use crate::oci::copy::{copy_image, CopyOptions};
use crate::oci::location::Location;
use crate::oci::{Manifest, PlatformSpec};
use crate::registry::{Client, ClientOptions, Keychain};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registries that may use plain HTTP or unverified TLS (repeatable).
    #[arg(long = "insecure-registry")]
    pub insecure: Vec<String>,
    /// Extra CA certificate (PEM) to trust (repeatable).
    #[arg(long = "ca-cert")]
    pub ca_certs: Vec<PathBuf>,
    /// Docker config.json with credentials (default: $DOCKER_CONFIG or ~/.docker).
    #[arg(long)]
    pub docker_config: Option<PathBuf>,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
}

impl RegistryArgs {
    pub fn client(&self) -> Result<Arc<Client>> {
        let keychain = match &self.docker_config {
            Some(p) => Keychain::from_file(p)?,
            None => Keychain::from_environment()?,
        };
        Ok(Client::new(ClientOptions {
            keychain,
            insecure: self.insecure.clone(),
            ca_files: self.ca_certs.clone(),
            parallel: self.parallel,
            ..Default::default()
        })?)
    }
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build an image from a definition file (TOML); prints its digest.
    Build(super::image_build::BuildArgs),
    /// Copy an image (oci:DIR[:TAG], docker://REF or REF) to another location.
    Copy {
        src: String,
        dst: String,
        /// Copy only this platform (os/arch[/variant]) out of an index.
        #[arg(long)]
        platform: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Print an image's manifest (or its config with --config) as JSON.
    Inspect {
        image: String,
        #[arg(long)]
        config: bool,
        #[arg(long)]
        platform: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum LayerCommand {
    /// Write a deterministic layer from a directory and print its diffID and digest.
    Create {
        dir: PathBuf,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// none, gzip or zstd.
        #[arg(long, default_value = "gzip")]
        compression: Compression,
        #[arg(long)]
        level: Option<u32>,
        /// Name of the directory in the layer (default: its contents at the root).
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value_t = 0)]
        uid: u64,
        #[arg(long, default_value_t = 0)]
        gid: u64,
    },
}

pub fn run_image(c: ImageCommand) -> Result<()> {
    match c {
        ImageCommand::Build(a) => super::image_build::run(a),
        ImageCommand::Copy {
            src,
            dst,
            platform,
            registry,
        } => {
            let client = registry.client()?;
            let (src_store, src_ref) = Location::parse(&src)?.open(&client)?;
            let (dst_store, tags) = Location::parse(&dst)?.create(&client)?;
            let opts = CopyOptions {
                parallel: registry.parallel,
                platform: platform.as_deref().map(PlatformSpec::parse).transpose()?,
            };
            let (m, stats) = copy_image(&*src_store, &src_ref, &*dst_store, &tags, &opts)?;
            tracing::info!(
                uploaded = stats.uploaded,
                skipped = stats.skipped,
                mounted = stats.mounted,
                bytes = stats.bytes,
                "copied"
            );
            println!("{}", m.digest);
            Ok(())
        }
        ImageCommand::Inspect {
            image,
            config,
            platform,
            registry,
        } => {
            let client = registry.client()?;
            let (store, reference) = Location::parse(&image)?.open(&client)?;
            let mut m = store.get_manifest(&reference)?;
            if let (Manifest::Index(idx), Some(p)) = (m.parse()?, platform.as_deref()) {
                let d = crate::oci::manifest::select_platform(&idx, &PlatformSpec::parse(p)?)?;
                m = store.get_manifest(d.digest().as_ref())?;
            }
            let out = match (config, m.parse()?) {
                (true, Manifest::Image(im)) => {
                    let d = crate::oci::manifest::descriptor_digest(im.config())?;
                    store.read_blob(&d, Some(im.config().size()))?
                }
                (true, Manifest::Index(_)) => {
                    return Err("image is an index: pass --platform os/arch".into())
                }
                (false, _) => m.bytes,
            };
            let v: serde_json::Value = serde_json::from_slice(&out)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
    }
}

pub fn run_layer(c: LayerCommand) -> Result<()> {
    match c {
        LayerCommand::Create {
            dir,
            output,
            compression,
            level,
            name,
            uid,
            gid,
        } => {
            let mut opts = CompressOptions::new(compression);
            opts.level = level;
            let tar = TarOptions {
                uid,
                gid,
                ..Default::default()
            };
            let fill = |w: &mut dyn Write| -> std::io::Result<()> {
                let mut t = TarWriter::new(w, tar.clone());
                if name.is_empty() {
                    for entry in sorted_children(&dir)? {
                        let child = entry
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        t.append_tree(&entry, &child)?;
                    }
                } else {
                    t.append_parents(&name, false)?;
                    t.append_tree(&dir, &name)?;
                }
                t.finish()?;
                Ok(())
            };
            let info = match &output {
                Some(p) => {
                    let mut f =
                        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(p)?);
                    let info = write_layer(&opts, &mut f, fill)?;
                    f.flush()?;
                    info
                }
                None => {
                    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
                    let info = write_layer(&opts, &mut out, fill)?;
                    out.flush()?;
                    info
                }
            };
            eprintln!(
                "diffID {}\ndigest {}\nsize {}",
                info.diff_id, info.digest, info.size
            );
            Ok(())
        }
    }
}

fn sorted_children(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}
