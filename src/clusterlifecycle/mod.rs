//! ClusterLifecycle: lifecycle images (ours and upstream), selecting one OS's lifecycle out of
//! them, negotiating the Platform API, resolving kpack `ClusterLifecycle` resources, and the
//! arguments each phase is run with.
//!
//! Pure parts (descriptor, negotiation, resource picking, phase driver) are kept apart from the
//! parts that read images and write files (selection, extraction, image building).

pub mod descriptor;
pub mod error;
pub mod extract;
pub mod image;
pub mod negotiate;
pub mod phases;
pub mod pipeline;
pub mod resource;
pub mod select;
pub mod source;

#[cfg(test)]
mod negotiate_tests;
#[cfg(test)]
mod phases_tests;

pub use descriptor::{ApiSet, Apis, LifecycleDescriptor};
pub use error::Error;
pub use negotiate::{negotiate, BuildpackApi, NegotiateError, Negotiated};
pub use select::{select_layer, Method, Selection};
pub use source::{install, Source};
