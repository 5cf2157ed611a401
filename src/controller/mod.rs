//! The thin controller (`cmd/controller`): watches kpack `Build`s, creates each one's build pod
//! (`crate::pod`) with the Build as its controlling owner, and writes the pod's progress back to
//! the Build's status subresource (`crate::pod::status`). Builder images are read with
//! `crate::registry`; everything else is the Kubernetes API through kube-rs.

mod config;
mod reconcile;
mod registry;
mod resources;

pub use config::{Config, ConfigError};
pub use reconcile::{error_policy, reconcile, run, Context, Error};
pub use registry::{keychain_from_secrets, BuilderReader, RegistryBuilderReader};
pub use resources::guess_plural;
