//! Git sources (see `fetch`).

use std::path::Path;

use super::SourceError;
use crate::creds::git::GitKeychain;

/// What to clone.
pub struct GitRequest<'a> {
    pub url: &'a str,
    pub revision: &'a str,
    pub submodules: bool,
    pub trust_unknown_hosts: bool,
    pub workspace: &'a Path,
    pub workspace_shown: &'a str,
    pub metadata_dir: &'a Path,
    pub metadata_dir_shown: &'a str,
}

/// kpack's git `Fetcher.Fetch`.
pub fn fetch(
    _req: &GitRequest<'_>,
    _keychain: &GitKeychain,
    _log: &dyn Fn(&str),
) -> Result<(), SourceError> {
    Err(SourceError::new("git sources: not supported yet"))
}
