//! Local mode: run a build pod's containers in order on this machine (no cluster, no Docker).

pub mod build;
pub mod container;
pub mod http;
pub mod images;
pub mod interrupt;
pub mod runner;
pub mod server;
pub mod volumes;
