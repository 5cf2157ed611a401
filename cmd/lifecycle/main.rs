//! `lifecycle`: the multi-call CNB lifecycle binary (`detector`, `builder`, ... by argv[0], or
//! `lifecycle <phase> [flags]`).

fn main() {
    // Arguments are paths and flags; non-UTF-8 ones are passed on lossily rather than panicking.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = buildpod::lifecycle::dispatch::main(&args, &|k| std::env::var(k).ok());
    std::process::exit(code);
}
