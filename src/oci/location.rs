//! Image locations as users write them: `oci:DIR[:TAG]`, `docker://REF` or a bare `REF`.

use std::path::PathBuf;
use std::sync::Arc;

use super::layout::Layout;
use super::view::ImageView;
use super::{BlobStore, Error, PlatformSpec};
use crate::registry::{parse_reference, Client, Repo};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An OCI layout directory and a tag (empty: the only image in it).
    Layout { dir: PathBuf, tag: String },
    /// A registry image (`registry/repo:tag` or `@digest`).
    Registry(String),
}

impl Location {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Some(rest) = s.strip_prefix("oci:") {
            // `oci:DIR:TAG`; the tag is after the last ':' unless that would split nothing.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !d.is_empty() && !t.contains('/') => (d, t),
                _ => (rest, ""),
            };
            if dir.is_empty() {
                return Err(Error::Layout(format!(
                    "{s:?}: missing layout directory (want oci:DIR[:TAG])"
                )));
            }
            return Ok(Location::Layout {
                dir: PathBuf::from(dir),
                tag: tag.to_string(),
            });
        }
        let r = s.strip_prefix("docker://").unwrap_or(s);
        parse_reference(r)?;
        Ok(Location::Registry(r.to_string()))
    }

    /// Open as a source: the store and the reference to read in it.
    pub fn open(&self, client: &Arc<Client>) -> Result<(Box<dyn BlobStore>, String), Error> {
        match self {
            Location::Layout { dir, tag } => Ok((Box::new(Layout::open(dir)?), tag.clone())),
            Location::Registry(r) => {
                let reference = parse_reference(r)?;
                let what = reference
                    .digest()
                    .or(reference.tag())
                    .unwrap_or("latest")
                    .to_string();
                Ok((
                    Box::new(Repo::for_reference(Arc::clone(client), &reference)),
                    what,
                ))
            }
        }
    }

    /// The store here and the image in it for `platform` (an index resolves to it); `None`
    /// when there is no such image.
    pub fn load(
        &self,
        client: &Arc<Client>,
        platform: &PlatformSpec,
    ) -> Result<(Box<dyn BlobStore>, Option<ImageView>), Error> {
        let (store, what) = self.open(client)?;
        let view = ImageView::load(store.as_ref(), &what, platform)?;
        Ok((store, view))
    }

    /// Open as a destination (a layout is created if missing): the store and the tags to write.
    pub fn create(&self, client: &Arc<Client>) -> Result<(Box<dyn BlobStore>, Vec<String>), Error> {
        match self {
            Location::Layout { dir, tag } => {
                let tags = if tag.is_empty() {
                    vec!["latest".to_string()]
                } else {
                    vec![tag.clone()]
                };
                Ok((Box::new(Layout::create(dir)?), tags))
            }
            Location::Registry(r) => {
                let reference = parse_reference(r)?;
                let tags = reference
                    .tag()
                    .map(|t| vec![t.to_string()])
                    .unwrap_or_default();
                Ok((
                    Box::new(Repo::for_reference(Arc::clone(client), &reference)),
                    tags,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("oci:/tmp/x:app").unwrap(),
            Location::Layout {
                dir: "/tmp/x".into(),
                tag: "app".into()
            }
        );
        assert_eq!(
            Location::parse("oci:out").unwrap(),
            Location::Layout {
                dir: "out".into(),
                tag: "".into()
            }
        );
        assert_eq!(
            Location::parse("docker://127.0.0.1:5000/a/b:v1").unwrap(),
            Location::Registry("127.0.0.1:5000/a/b:v1".into())
        );
        assert!(Location::parse("oci:").is_err());
        assert!(Location::parse("UPPER/case").is_err());
        assert!(Location::parse("a b").is_err());
    }
}
