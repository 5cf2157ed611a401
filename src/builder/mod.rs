//! Builders from kpack resources: parsing ClusterStack, ClusterBuildpack, Buildpack,
//! ClusterStore, Builder and ClusterBuilder YAML, resolving a builder's order to buildpacks
//! with kpack's rules, and the status kpack reports for a builder.
//!
//! Everything here is pure (no registry): resolution works on the resources' `status` data.

pub mod error;
pub mod resolve;
pub mod resources;
pub mod stack;
pub mod status;
pub mod tree;

#[cfg(test)]
mod resolve_tests;
#[cfg(test)]
mod status_tests;

pub use error::Error;
pub use resolve::{Resolution, Resolver, Selected};
pub use resources::{parse, Builder, BuilderKind, BuildpackSource, BuildpackStatus, Resources};
pub use status::{status, BuilderStatus};
