//! `launcher`: starts an app process of a CNB image (`/cnb/process/<type>` symlinks here, or
//! `/cnb/lifecycle/launcher [--] <cmd> [args…]`). On success it never returns: the process
//! replaces it, so the app's exit code is the container's.

fn main() {
    let code = buildpod::launcher::cli::main(
        std::env::args_os().collect(),
        std::env::vars_os().collect(),
        &mut buildpod::launcher::sys::OsSys,
    );
    std::process::exit(code);
}
