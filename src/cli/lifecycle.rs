//! `buildpod lifecycle …`: build our lifecycle image, select one OS's lifecycle out of an image.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::image::RegistryArgs;
use crate::clusterlifecycle::image::{build_image, Binaries, ImageSpec};
use crate::clusterlifecycle::{install, LifecycleDescriptor, Source};
use crate::layer::Compression;
use crate::oci::layout::Layout;
use crate::oci::location::Location;
use crate::oci::manifest::{descriptor_digest, select_platform};
use crate::oci::{ImageConfig, Manifest, PlatformSpec};
use crate::registry::Client;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Subcommand, Debug)]
pub enum LifecycleCommand {
    /// Build our lifecycle image from lifecycle and launcher binaries; prints its digest.
    Image {
        /// Where to write it: oci:DIR[:TAG], docker://REF or REF.
        dest: String,
        /// The multi-call lifecycle binary (static, linux).
        #[arg(long)]
        lifecycle: PathBuf,
        /// The launcher binary (static, linux).
        #[arg(long)]
        launcher: PathBuf,
        /// Windows lifecycle.exe: adds a `windows` layer and label (with --windows-launcher).
        #[arg(long, requires = "windows_launcher")]
        windows_lifecycle: Option<PathBuf>,
        #[arg(long, requires = "windows_lifecycle")]
        windows_launcher: Option<PathBuf>,
        /// Lifecycle version recorded in lifecycle.toml and the labels.
        #[arg(long = "lifecycle-version", default_value = env!("CARGO_PKG_VERSION"))]
        version: String,
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// none, gzip or zstd.
        #[arg(long, default_value = "gzip")]
        compression: Compression,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Extract one OS's /cnb/lifecycle from a lifecycle image into a directory (an init step).
    Select {
        /// The lifecycle image: REF, docker://REF or oci:DIR[:TAG].
        #[arg(long, conflicts_with = "mounted", required_unless_present = "mounted")]
        image: Option<String>,
        /// A directory where the image is mounted (an OCI layout or the image's root filesystem).
        #[arg(long)]
        mounted: Option<PathBuf>,
        /// Target OS (default: that of --platform-of, else linux).
        #[arg(long)]
        os: Option<String>,
        /// Target architecture (default: that of --platform-of, else this machine's).
        #[arg(long)]
        arch: Option<String>,
        #[arg(long)]
        variant: Option<String>,
        /// Take os/arch/variant from this image's config (the builder or stack build image).
        #[arg(long)]
        platform_of: Option<String>,
        /// Directory to extract the lifecycle into (it becomes /cnb/lifecycle).
        #[arg(long)]
        target: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub fn run(c: LifecycleCommand) -> Result<()> {
    match c {
        LifecycleCommand::Image {
            dest,
            lifecycle,
            launcher,
            windows_lifecycle,
            windows_launcher,
            version,
            arch,
            compression,
            registry,
        } => {
            let client = registry.client()?;
            let (store, tags) = Location::parse(&dest)?.create(&client)?;
            let spec = ImageSpec {
                descriptor: LifecycleDescriptor::ours(&version),
                linux: Binaries {
                    lifecycle,
                    launcher,
                },
                windows: windows_lifecycle
                    .zip(windows_launcher)
                    .map(|(lifecycle, launcher)| Binaries {
                        lifecycle,
                        launcher,
                    }),
                arch,
                compression,
            };
            let built = build_image(&*store, &spec, &tags)?;
            for (os, l) in std::iter::once(("linux", &built.linux))
                .chain(built.windows.as_ref().map(|w| ("windows", w)))
            {
                tracing::info!(os, diff_id = %l.info.diff_id, size = l.info.size, "layer");
            }
            println!("{}", built.manifest.digest);
            Ok(())
        }
        LifecycleCommand::Select {
            image,
            mounted,
            os,
            arch,
            variant,
            platform_of,
            target,
            registry,
        } => {
            let source = match (image, mounted) {
                (Some(i), _) => Source::Image(Location::parse(&i)?),
                (None, Some(m)) => Source::Mounted(m),
                (None, None) => return Err("pass --image or --mounted".into()),
            };
            let of = platform_of.as_deref().map(Location::parse).transpose()?;
            let needs_client = source.needs_client() || matches!(of, Some(Location::Registry(_)));
            let client = needs_client.then(|| registry.client()).transpose()?;
            let want = platform(client.as_ref(), of.as_ref(), os, arch, variant)?;
            let out = install(client.as_ref(), &source, &want, &target)?;
            let d = &out.installed.descriptor;
            match &out.selection {
                Some(s) => println!(
                    "selected {want} layer {} by {} from {}; lifecycle {} (platform apis {})",
                    s.diff_id,
                    s.method,
                    s.image,
                    d.version,
                    d.apis.platform.supported.join(", ")
                ),
                None => println!(
                    "copied mounted lifecycle {} (platform apis {})",
                    d.version,
                    d.apis.platform.supported.join(", ")
                ),
            }
            Ok(())
        }
    }
}

/// The wanted platform: explicit flags win over the config of `--platform-of`.
fn platform(
    client: Option<&Arc<Client>>,
    of: Option<&Location>,
    os: Option<String>,
    arch: Option<String>,
    variant: Option<String>,
) -> Result<PlatformSpec> {
    let host = PlatformSpec::host();
    let base = match of {
        None => PlatformSpec::new("linux", &host.arch, None),
        Some(image) => {
            let (store, reference): (Box<dyn crate::oci::BlobStore>, String) = match (image, client)
            {
                (Location::Layout { dir, tag }, _) => (Box::new(Layout::open(dir)?), tag.clone()),
                (_, Some(c)) => image.open(c)?,
                (_, None) => return Err("a registry client is needed for --platform-of".into()),
            };
            let mut m = store.get_manifest(&reference)?;
            if let Manifest::Index(idx) = m.parse()? {
                let want = PlatformSpec::new(
                    os.as_deref().unwrap_or("linux"),
                    arch.as_deref().unwrap_or(&host.arch),
                    variant.as_deref(),
                );
                m = store
                    .get_manifest(&descriptor_digest(select_platform(&idx, &want)?)?.to_string())?;
            }
            let Manifest::Image(im) = m.parse()? else {
                return Err(format!("{image:?}: nested index").into());
            };
            let d = descriptor_digest(im.config())?;
            let cfg = ImageConfig::from_json(&store.read_blob(&d, None)?, "--platform-of config")?;
            PlatformSpec::new(&cfg.os(), &cfg.architecture(), cfg.variant())
        }
    };
    Ok(PlatformSpec::new(
        os.as_deref().unwrap_or(&base.os),
        arch.as_deref().unwrap_or(&base.arch),
        variant.as_deref().or(base.variant.as_deref()),
    ))
}
