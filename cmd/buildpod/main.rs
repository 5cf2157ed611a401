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
    if matches!(
        argv0.as_str(),
        "build-init" | "prepare" | "completion" | "rebase" | "build-waiter"
    ) {
        eprintln!("ERROR: {argv0}: not supported yet (kpack build-pod steps arrive with the build-pod issue)");
        std::process::exit(1);
    }
    std::process::exit(buildpod::cli::run(buildpod::cli::Cli::parse()));
}
