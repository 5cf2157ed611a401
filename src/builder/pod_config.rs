//! kpack's `fetchBuilderConfig`: a builder image read (for linux/amd64, ggcr's default
//! platform in kpack) into what the build pod needs of it. Shared by the controller and the
//! local runner.

use std::sync::Arc;

use super::fetch::identifier;
use crate::oci::location::Location;
use crate::oci::PlatformSpec;
use crate::pod::{builder_config, BuilderConfig, PodError};
use crate::registry::Client;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The image could not be read (or is not there).
    #[error("{0}")]
    Fetch(String),
    /// The image is not a usable builder (labels, env, OS).
    #[error(transparent)]
    Config(#[from] PodError),
}

/// Read the builder at `location`. Registry builders resolve to `registry/repo@digest`, as kpack
/// pins them; a layout keeps `written` (what the user wrote), which names it for the pod.
pub fn read(
    client: &Arc<Client>,
    location: &Location,
    written: &str,
) -> Result<BuilderConfig, ReadError> {
    let fetch = |e: &dyn std::fmt::Display| ReadError::Fetch(e.to_string());
    let platform = PlatformSpec::new("linux", "amd64", None);
    let (_, view) = location.load(client, &platform).map_err(|e| fetch(&e))?;
    let view = view.ok_or_else(|| fetch(&"not found"))?;
    let resolved = match location {
        Location::Registry(_) => identifier(location, view.digest()).map_err(|e| fetch(&e))?,
        Location::Layout { .. } => written.to_string(),
    };
    let c = &view.config;
    Ok(builder_config(
        &c.labels(),
        &c.env(),
        &c.os(),
        &c.architecture(),
        &resolved,
    )?)
}
