//! `buildpod`: the CLI. Also a multi-call binary: invoked as `build-init`/`prepare`,
//! `completion`, `rebase` or `build-waiter` it runs that kpack build-pod step.

use clap::Parser;

fn main() {
    let argv0 = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The container runner re-executes this binary; not a user command, so not in the CLI.
    if args.first().map(String::as_str) == Some(buildpod::sandbox::INIT_COMMAND) {
        std::process::exit(buildpod::sandbox::init::main(&args[1..]));
    }
    if let Some(code) = buildpod::kpack::dispatch(&argv0, &args) {
        std::process::exit(code);
    }
    std::process::exit(buildpod::cli::run(buildpod::cli::Cli::parse()));
}
