//! kpack's build-pod containers: `prepare` (build-init), `completion`, `rebase` and
//! `build-waiter`, as drop-in replacements with kpack's flags, env, paths, log lines, exit
//! codes and termination message.

pub mod flags;
pub mod paths;
