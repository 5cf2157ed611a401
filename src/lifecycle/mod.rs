//! Our Cloud Native Buildpacks lifecycle: the `detector` and `builder` phases (Platform API
//! 0.7–0.14, Buildpack API 0.7–0.12). Pure logic (detection, plan resolution, env layering,
//! file formats) is kept apart from the edges (processes, filesystem, privileges).

pub mod api;
pub mod buildpack_toml;
pub mod detect;
pub mod exitcode;
pub mod order;
pub mod plan;
pub mod target;
pub mod tomlr;
pub mod tomlw;

#[cfg(test)]
mod detect_tests;
