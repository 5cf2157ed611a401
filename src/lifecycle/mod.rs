//! Our Cloud Native Buildpacks lifecycle: the `detector` and `builder` phases (Platform API
//! 0.7–0.14, Buildpack API 0.7–0.12). Pure logic (detection, plan resolution, env layering,
//! file formats) is kept apart from the edges (processes, filesystem, privileges).

pub mod analyzed;
pub mod analyzer;
pub mod api;
pub mod builder;
pub mod buildpack_toml;
pub mod cli;
pub mod creator;
pub mod detect;
pub mod detector;
pub mod dispatch;
pub mod env;
pub mod exec;
pub mod exitcode;
pub mod exporter;
pub mod image_access;
pub mod images;
pub mod launch;
pub mod log;
pub mod order;
pub mod output;
pub mod phase_error;
pub mod plan;
pub mod privs;
pub mod processes;
pub mod rebaser;
pub mod restore_layers;
pub mod restorer;
pub mod sbom;
pub mod store;
pub mod target;
pub mod tomlr;
pub mod tomlw;
pub mod user;

#[cfg(test)]
mod detect_tests;
