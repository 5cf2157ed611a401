//! The `buildpod` command line (thin: parses flags and calls the library).

pub mod build;
pub mod builder;
pub mod buildpackage;
pub mod image;
pub mod image_build;
pub mod lifecycle;
pub mod progress;
pub mod stack;
pub mod stack_debian;

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
    /// Lifecycle images: build ours, select one OS's lifecycle out of one.
    #[command(subcommand)]
    Lifecycle(lifecycle::LifecycleCommand),
    /// Stack images: build the tiny and debian stacks.
    #[command(subcommand)]
    Stack(stack::StackCommand),
    /// Builder images from kpack resources or a builder.toml.
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
    /// Buildpackages: package buildpack directories, read buildpackage images.
    #[command(subcommand)]
    Buildpackage(buildpackage::BuildpackageCommand),
    /// Build an app locally: the build pod a cluster would run, run on this machine.
    Build(Box<build::BuildArgs>),
    /// Run an image's default process locally (host network).
    Run(build::RunArgs),
    /// kpack's build-init step (Go-style flags, as in kpack's pod specs).
    #[command(alias = "build-init", disable_help_flag = true)]
    Prepare(KpackStep),
    /// kpack's completion step.
    #[command(disable_help_flag = true)]
    Completion(KpackStep),
    /// kpack's rebase step.
    #[command(disable_help_flag = true)]
    Rebase(KpackStep),
    /// kpack's build-waiter (sidecar mode).
    #[command(disable_help_flag = true)]
    BuildWaiter(KpackStep),
}

/// The raw arguments of a kpack step, parsed by the step itself with Go's flag rules.
#[derive(clap::Args, Debug)]
pub struct KpackStep {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
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
    let step = match &cli.command {
        Command::Prepare(a) => Some(("prepare", a)),
        Command::Completion(a) => Some(("completion", a)),
        Command::Rebase(a) => Some(("rebase", a)),
        Command::BuildWaiter(a) => Some(("build-waiter", a)),
        _ => None,
    };
    if let Some((name, a)) = step {
        return crate::kpack::dispatch(name, &a.args).unwrap_or(1);
    }
    init_logging(&cli.log_level);
    match cli.command {
        // Local builds and runs report their own exit codes (a failed step, the app's exit).
        Command::Build(a) => build::run_build(*a).unwrap_or_else(|e| finish(Err(e))),
        Command::Run(a) => build::run_image(a).unwrap_or_else(|e| finish(Err(e))),
        c => finish(run_other(c)),
    }
}

fn run_other(
    command: Command,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match command {
        Command::Image(c) => image::run_image(c),
        Command::Layer(c) => image::run_layer(c),
        Command::Lifecycle(c) => lifecycle::run(c),
        Command::Stack(c) => stack::run(c),
        Command::Builder(c) => builder::run(c),
        Command::Buildpackage(c) => buildpackage::run(c),
        Command::Prepare(_)
        | Command::Completion(_)
        | Command::Rebase(_)
        | Command::BuildWaiter(_)
        | Command::Build(_)
        | Command::Run(_) => Ok(()),
    }
}

fn finish(result: std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>) -> i32 {
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
