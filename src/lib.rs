//! buildpod: kpack's build-pod containers and a CNB lifecycle, as one library.
//!
//! Modules are split by domain; data types are kept apart from I/O so that the logic
//! can be tested without root or network.

pub mod builder;
pub mod cache;
pub mod cli;
pub mod clusterlifecycle;
#[cfg(feature = "controller")]
pub mod controller;
pub mod creds;
pub mod digest;
pub mod export;
pub mod fsutil;
pub mod goflag;
pub mod imagebuild;
pub mod k8s_yaml;
pub mod kpack;
pub mod launcher;
pub mod layer;
pub mod lifecycle;
pub mod local;
pub mod oci;
pub mod pod;
pub mod project_toml;
pub mod registry;
pub mod sandbox;
pub mod source;
