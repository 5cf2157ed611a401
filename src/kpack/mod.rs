//! kpack's build-pod containers: `prepare` (build-init), `completion`, `rebase` and
//! `build-waiter`, as drop-in replacements with kpack's flags, env, paths, log lines, exit
//! codes and termination message.

pub mod build_waiter;
pub mod buildchange;
pub mod completion;
pub mod cosign;
pub mod flags;
pub mod metadata;
pub mod mounts;
pub mod paths;
pub mod prepare;
pub mod rebase;
pub mod report;

/// Run the step named `name` (argv[0] or subcommand) with `args`; returns the exit code, or
/// `None` if `name` is not a kpack step.
pub fn dispatch(name: &str, args: &[String]) -> Option<i32> {
    // git runs this binary as its askpass helper during git sources (see source::git).
    if std::env::var_os(crate::source::git::ASKPASS_ENV).is_some() {
        return Some(crate::source::git::askpass(
            args.first().map_or("", String::as_str),
        ));
    }
    Some(match name {
        "build-init" | "prepare" => prepare::main(args),
        "completion" => completion::main(args),
        "build-waiter" => build_waiter::main(args),
        "rebase" => rebase::main(args),
        _ => return None,
    })
}
