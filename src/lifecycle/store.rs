//! The buildpacks dir (`<buildpacks>/<escaped-id>/<version>/buildpack.toml`), read once per id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::buildpack_toml::{escape_id, BuildpackDescriptor, LookupError};
use super::detect::BuildpackStore;

pub struct DirStore {
    root: PathBuf,
    cache: HashMap<(String, String), Arc<BuildpackDescriptor>>,
}

impl DirStore {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            cache: HashMap::new(),
        }
    }
}

impl BuildpackStore for DirStore {
    fn lookup(&mut self, id: &str, version: &str) -> Result<Arc<BuildpackDescriptor>, LookupError> {
        let key = (id.to_string(), version.to_string());
        if let Some(d) = self.cache.get(&key) {
            return Ok(d.clone());
        }
        let dir = self.root.join(escape_id(id)).join(version);
        if !dir.join("buildpack.toml").exists() {
            return Err(LookupError::NotFound {
                id: id.into(),
                version: version.into(),
                path: dir.join("buildpack.toml"),
            });
        }
        let d = Arc::new(BuildpackDescriptor::read(&dir)?);
        self.cache.insert(key, d.clone());
        Ok(d)
    }
}
