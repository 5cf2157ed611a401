//! The `buildpod` command line (thin: parses flags and calls the library).

pub mod image;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "buildpod",
    version,
    about = "Build OCI images with Cloud Native Buildpacks, kpack-style"
)]
pub struct Cli {
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with images in registries and OCI layouts.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Work with layers.
    #[command(subcommand)]
    Layer(image::LayerCommand),
}

/// Set up logging on stderr at `level`.
pub fn init_logging(level: &str) {
    let level = level
        .parse::<tracing::Level>()
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    init_logging(&cli.log_level);
    let result = match cli.command {
        Command::Image(c) => image::run_image(c),
        Command::Layer(c) => image::run_layer(c),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ERROR: {e}");
            let mut src = std::error::Error::source(&*e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            1
        }
    }
}
