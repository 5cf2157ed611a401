//! One repository of a registry as a [`BlobStore`].

use std::io::{self, Read};
use std::sync::Arc;
use std::thread;

use super::client::{status_error, Client, ReqBody};
use super::pipe::pipe;
use super::RegistryError;
use crate::digest::{Digest, HashWriter, VerifyingReader};
use crate::oci::media::MANIFEST_ACCEPT;
use crate::oci::store::{Opener, Producer};
use crate::oci::{BlobStore, Error, RawManifest};

/// Largest manifest we accept (the distribution default limit is 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

#[derive(Clone)]
pub struct Repo {
    client: Arc<Client>,
    registry: String,
    repository: String,
}

impl Repo {
    pub fn new(client: Arc<Client>, registry: &str, repository: &str) -> Self {
        Self {
            client,
            registry: registry.to_string(),
            repository: repository.to_string(),
        }
    }

    /// The repository of an image reference.
    pub fn for_reference(client: Arc<Client>, r: &oci_spec::distribution::Reference) -> Self {
        Self::new(client, r.registry(), r.repository())
    }

    /// The error for a GET of `path` that the registry answered with 404.
    fn not_found_on_get(&self, what: String, path: &str) -> RegistryError {
        RegistryError::NotFound {
            registry: self.registry.clone(),
            what,
            method: "GET".into(),
            url: path.to_string(),
            detail: String::new(),
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }

    fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.repository)
    }

    /// Send a request to this repository with pull (or pull+push) scope.
    fn send(
        &self,
        push: bool,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        let scope = if push {
            self.push_scope()
        } else {
            self.pull_scope()
        };
        self.client
            .send(&self.registry, &scope, method, path, headers, body)
    }

    fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.repository)
    }

    fn err(&self, e: RegistryError) -> Error {
        Error::from(e)
    }

    /// POST an upload session; returns its absolute location.
    fn start_upload(&self, query: &str) -> Result<(u16, String), RegistryError> {
        let path = self.path(&format!("blobs/uploads/{query}"));
        let resp = self.send(
            true,
            "POST",
            &path,
            &[("Content-Length", "0")],
            ReqBody::Empty,
        )?;
        let status = resp.status().as_u16();
        if status != 202 && status != 201 {
            return Err(status_error(&self.registry, "POST", &path, status, resp));
        }
        let loc = location(&resp).ok_or_else(|| {
            RegistryError::protocol(
                &self.registry,
                format!("POST {path}: {status} without Location"),
            )
        })?;
        Ok((status, self.absolute(&loc)?))
    }

    fn absolute(&self, loc: &str) -> Result<String, RegistryError> {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            Ok(loc.to_string())
        } else {
            Ok(format!("{}{loc}", self.client.base_url(&self.registry)?))
        }
    }

    /// Check that we may push to this repository: start an upload session and cancel it
    /// (what kpack's write check does).
    pub fn check_push(&self) -> Result<(), RegistryError> {
        let (_, loc) = self.start_upload("")?;
        let _ = self.send(true, "DELETE", &loc, &[], ReqBody::Empty);
        Ok(())
    }

    /// The digest, media type and size of a manifest, without downloading it.
    pub fn head_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<(Digest, String, u64)>, RegistryError> {
        let path = self.path(&format!("manifests/{reference}"));
        self.client.retry(&self.registry, "HEAD manifest", || {
            let resp = self.send(
                false,
                "HEAD",
                &path,
                &[("Accept", MANIFEST_ACCEPT)],
                ReqBody::Empty,
            )?;
            match resp.status().as_u16() {
                200 => {
                    let h = resp.headers();
                    let d = header(h, "docker-content-digest")
                        .and_then(|d| d.parse().ok())
                        .ok_or_else(|| {
                            RegistryError::protocol(
                                &self.registry,
                                format!("HEAD {path}: no Docker-Content-Digest"),
                            )
                        })?;
                    let mt = header(h, "content-type").unwrap_or_default();
                    let size = header(h, "content-length")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    Ok(Some((d, mt, size)))
                }
                404 => Ok(None),
                s => Err(status_error(&self.registry, "HEAD", &path, s, resp)),
            }
        })
    }

    fn upload_once(&self, d: &Digest, size: u64, open: &Opener<'_>) -> Result<(), Error> {
        let (_, loc) = self.start_upload("")?;
        let url = with_digest(&loc, d);
        let reader = open()?;
        let resp = self.send(
            true,
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            ReqBody::Reader(reader, Some(size)),
        )?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            s => Err(status_error(&self.registry, "PUT", &url, s, resp).into()),
        }
    }

    fn stream_once(&self, produce: &Producer<'_>) -> Result<(Digest, u64), Error> {
        let (_, loc) = self.start_upload("")?;
        let (w, r) = pipe(4);
        let (sent, produced) = thread::scope(|s| {
            let producer = s.spawn(move || -> io::Result<(Digest, u64)> {
                let mut hw = HashWriter::new(w);
                produce(&mut hw)?;
                let (w, d, n) = hw.finish();
                w.finish()?;
                Ok((d, n))
            });
            let sent = self.send(
                true,
                "PATCH",
                &loc,
                &[("Content-Type", "application/octet-stream")],
                ReqBody::Reader(Box::new(r), None),
            );
            let produced = producer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("blob producer panicked")));
            (sent, produced)
        });
        let (d, n) = match produced {
            Ok(v) => v,
            // A producer failure not caused by the upload stopping is final: report it.
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(Error::io(
                    format!("produce blob for {}", self.location()),
                    e,
                ))
            }
            Err(e) => {
                return Err(sent
                    .err()
                    .map_or_else(|| Error::io("produce blob", e), Error::from))
            }
        };
        let resp = sent?;
        let status = resp.status().as_u16();
        if status != 202 && status != 204 && status != 201 {
            return Err(status_error(&self.registry, "PATCH", &loc, status, resp).into());
        }
        let next = match location(&resp) {
            Some(l) => self.absolute(&l)?,
            None => loc,
        };
        drop(resp);
        let url = with_digest(&next, &d);
        let resp = self.send(
            true,
            "PUT",
            &url,
            &[("Content-Length", "0")],
            ReqBody::Empty,
        )?;
        match resp.status().as_u16() {
            201 | 204 => Ok((d, n)),
            s => Err(status_error(&self.registry, "PUT", &url, s, resp).into()),
        }
    }
}

impl BlobStore for Repo {
    fn location(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    fn registry_repo(&self) -> Option<(String, String)> {
        Some((self.registry.clone(), self.repository.clone()))
    }

    fn blob_size(&self, d: &Digest) -> Result<Option<u64>, Error> {
        let path = self.path(&format!("blobs/{d}"));
        self.client
            .retry(&self.registry, "HEAD blob", || {
                let resp = self.send(false, "HEAD", &path, &[], ReqBody::Empty)?;
                match resp.status().as_u16() {
                    200 => Ok(Some(
                        header(resp.headers(), "content-length")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                    )),
                    404 => Ok(None),
                    s => Err(status_error(&self.registry, "HEAD", &path, s, resp)),
                }
            })
            .map_err(|e| self.err(e))
    }

    fn open_blob(&self, d: &Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>, Error> {
        let path = self.path(&format!("blobs/{d}"));
        let resp = self.client.retry(&self.registry, "GET blob", || {
            let resp = self.send(false, "GET", &path, &[], ReqBody::Empty)?;
            match resp.status().as_u16() {
                200 => Ok(resp),
                404 => {
                    Err(self.not_found_on_get(format!("blob {d} in {}", self.repository), &path))
                }
                s => Err(status_error(&self.registry, "GET", &path, s, resp)),
            }
        })?;
        let reader = resp.into_body().into_reader();
        Ok(Box::new(VerifyingReader::new(
            reader,
            d.clone(),
            size,
            format!("blob {d} from {}", self.location()),
        )))
    }

    fn put_blob(&self, d: &Digest, size: u64, open: &Opener<'_>) -> Result<(), Error> {
        if self.blob_size(d)?.is_some() {
            return Ok(());
        }
        self.retry_upload(&format!("upload blob {d}"), || {
            self.upload_once(d, size, open)
        })
    }

    fn put_blob_stream(&self, produce: &Producer<'_>) -> Result<(Digest, u64), Error> {
        self.retry_upload("upload blob", || self.stream_once(produce))
    }

    fn mount_blob(&self, d: &Digest, from_repo: &str) -> Result<bool, Error> {
        if from_repo == self.repository {
            return Ok(false);
        }
        let query = format!("?mount={d}&from={from_repo}");
        let (status, loc) = self.start_upload(&query)?;
        if status == 201 {
            return Ok(true);
        }
        // 202: the registry opened an upload instead; cancel it, the caller uploads.
        let _ = self.send(true, "DELETE", &loc, &[], ReqBody::Empty);
        Ok(false)
    }

    fn get_manifest(&self, reference: &str) -> Result<RawManifest, Error> {
        let path = self.path(&format!("manifests/{reference}"));
        let (bytes, ct) = self.client.retry(&self.registry, "GET manifest", || {
            let resp = self.send(
                false,
                "GET",
                &path,
                &[("Accept", MANIFEST_ACCEPT)],
                ReqBody::Empty,
            )?;
            match resp.status().as_u16() {
                200 => {
                    let ct = header(resp.headers(), "content-type");
                    let bytes = resp
                        .into_body()
                        .with_config()
                        .limit(MAX_MANIFEST)
                        .read_to_vec()
                        .map_err(|e| {
                            super::client::transport_error(
                                &self.registry,
                                &format!("read manifest {path}"),
                                &e,
                            )
                        })?;
                    Ok((bytes, ct))
                }
                404 => Err(self
                    .not_found_on_get(format!("manifest {}:{reference}", self.repository), &path)),
                s => Err(status_error(&self.registry, "GET", &path, s, resp)),
            }
        })?;
        let m = RawManifest::from_bytes(bytes, ct.as_deref())?;
        if let Ok(want) = reference.parse::<Digest>() {
            want.verify(
                &m.digest,
                format!("manifest {}@{reference}", self.location()),
            )?;
        }
        Ok(m)
    }

    fn put_manifest(&self, m: &RawManifest, tags: &[String]) -> Result<(), Error> {
        let refs: Vec<String> = if tags.is_empty() {
            vec![m.digest.to_string()]
        } else {
            tags.to_vec()
        };
        for r in refs {
            let path = self.path(&format!("manifests/{r}"));
            self.client.retry(&self.registry, "PUT manifest", || {
                let resp = self.send(
                    true,
                    "PUT",
                    &path,
                    &[("Content-Type", m.media_type.as_str())],
                    ReqBody::Bytes(&m.bytes),
                )?;
                match resp.status().as_u16() {
                    201 | 200 | 204 => {
                        if let Some(d) = header(resp.headers(), "docker-content-digest") {
                            if d != m.digest.to_string() {
                                return Err(RegistryError::protocol(
                                    &self.registry,
                                    format!(
                                        "PUT {path}: registry stored digest {d}, expected {}",
                                        m.digest
                                    ),
                                ));
                            }
                        }
                        Ok(())
                    }
                    s => Err(status_error(&self.registry, "PUT", &path, s, resp)),
                }
            })?;
        }
        Ok(())
    }
}

fn exhausted(registry: &str, op: &str, retries: u32, last: Option<RegistryError>) -> Error {
    let last = last.unwrap_or_else(|| RegistryError::protocol(registry, "no attempt made"));
    Error::from(RegistryError::RetriesExhausted {
        registry: registry.to_string(),
        op: op.to_string(),
        attempts: retries + 1,
        last: Box::new(last),
    })
}

impl Repo {
    /// Run a whole upload session again (new POST, body produced again) on transient failures;
    /// upload sessions cannot be resumed portably.
    fn retry_upload<T>(
        &self,
        op: &str,
        mut once: impl FnMut() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut last = None;
        let mut delay = self.client.options().backoff;
        for attempt in 0..=self.client.options().retries {
            match once() {
                Ok(v) => return Ok(v),
                Err(Error::Registry(e)) if e.is_transient() => {
                    tracing::warn!(repo = %self.location(), op, attempt, error = %e, "upload failed, retrying");
                    last = Some(*e);
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                }
                Err(e) => return Err(e),
            }
        }
        Err(exhausted(
            &self.registry,
            op,
            self.client.options().retries,
            last,
        ))
    }
}

fn header(h: &ureq::http::HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn location(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    header(resp.headers(), "location")
}

fn with_digest(loc: &str, d: &Digest) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={d}")
}
