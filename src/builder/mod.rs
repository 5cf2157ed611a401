//! Builders from kpack resources: parsing ClusterStack, ClusterBuildpack, Buildpack,
//! ClusterStore, Builder and ClusterBuilder YAML, resolving a builder's order to buildpacks
//! with kpack's rules, the status kpack reports for a builder, and writing builder images and
//! buildpackages.
//!
//! Parsing, resolution and status are pure (they work on the resources' `status` data);
//! `reconcile` fills that data in from the images, `image` and `package` write images, and
//! `create` does it all for one builder.

pub mod builder_toml;
pub mod buildpack_toml;
pub mod buildpackage;
pub mod create;
pub mod debian;
pub mod error;
pub mod fetch;
pub mod image;
pub mod metadata;
pub mod package;
pub mod pod_config;
pub mod reconcile;
pub mod resolve;
pub mod resources;
pub mod stack;
pub mod status;
pub mod tree;

#[cfg(test)]
mod resolve_tests;
#[cfg(test)]
mod status_tests;

pub use create::{create, CreateOptions, Created};
pub use error::Error;
pub use reconcile::Inputs;
pub use resolve::{Resolution, Resolver, Selected};
pub use resources::{parse, Builder, BuilderKind, BuildpackSource, BuildpackStatus, Resources};
pub use status::{status, BuilderStatus};
