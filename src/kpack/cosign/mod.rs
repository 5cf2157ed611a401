//! Cosign signing of the built image with keys from `/var/build-secrets/cosign/<secret>`, as
//! kpack's completion does through cosign's `sign` command (key-based, no transparency log):
//! a simple-signing payload signed with each secret's key, pushed as a layer of
//! `<repo>:sha256-<hex>.sig` (or into `COSIGN_REPOSITORY`), OCI or Docker media types.
//!
//! Error texts follow kpack and cosign (`cosign sign: unable to sign image with <key>: ...`);
//! passwords and keys never reach a message.

pub mod key;
pub mod payload;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::paths::Paths;
use crate::digest::Digest;
use crate::oci::assemble::put_bytes;
use crate::oci::{BlobStore as _, RawManifest};
use crate::registry::{parse_reference, Client, Repo};
use crate::source::registry::fully_qualified_repo;
use payload::{SigImage, SigLayer};

/// The `-cosign-*` flags.
#[derive(Clone, Debug, Default)]
pub struct CosignArgs {
    pub annotations: Vec<String>,
    pub repositories: Vec<String>,
    pub docker_media_types: Vec<String>,
}

/// kpack's `mapKeyValueArgs`: `k=v` pairs (exactly one `=`), later keys win.
pub fn key_value_map(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for a in args {
        let (k, v) = crate::creds::split_secret_arg(a)
            .ok_or_else(|| format!("argument not formatted as -arg=key=value: {a}"))?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// Sign `tag@digest` with every key secret. The error is the whole message kpack prints.
pub fn sign(
    client: &Arc<Client>,
    paths: &Paths,
    tag: &str,
    digest: &str,
    args: &CosignArgs,
) -> Result<(), String> {
    let annotations = key_value_map(&args.annotations)?;
    let repositories = key_value_map(&args.repositories)?;
    let media_types = key_value_map(&args.docker_media_types)?;
    let wrap = |e: String| format!("cosign sign: {e}");
    let dir = paths.cosign_secrets();
    let mut secrets: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| {
            let e = crate::creds::go_io_error("open", std::path::Path::new(&paths.shown(&dir)), &e);
            wrap(format!("no keys found for cosign signing: {e}\n"))
        })?
        .filter_map(Result::ok)
        // Go's DirEntry.IsDir: a symlink is not a directory.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    secrets.sort();
    if secrets.is_empty() {
        return Err(wrap("no keys found for cosign signing".into()));
    }
    let reference = if digest.is_empty() {
        tag.to_string()
    } else {
        format!("{tag}@{digest}")
    };
    for s in &secrets {
        let key_file = dir.join(s).join("cosign.key");
        let job = Job {
            client,
            key_file: &key_file,
            key_shown: paths.shown(&key_file),
            password_file: dir.join(s).join("cosign.password"),
            reference: &reference,
            annotations: &annotations,
            repository: repositories.get(s).map(String::as_str),
            docker_media_types: media_types
                .get(s)
                .and_then(|v| super::flags::parse_bool(v))
                .unwrap_or(false),
        };
        job.run()
            .map_err(|e| wrap(format!("unable to sign image with {}: {e}", job.key_shown)))?;
    }
    Ok(())
}

/// One key's `cosign sign`.
struct Job<'a> {
    client: &'a Arc<Client>,
    key_file: &'a std::path::Path,
    key_shown: String,
    password_file: std::path::PathBuf,
    reference: &'a str,
    annotations: &'a BTreeMap<String, String>,
    /// `COSIGN_REPOSITORY` for this secret.
    repository: Option<&'a str>,
    /// `COSIGN_DOCKER_MEDIA_TYPES` for this secret.
    docker_media_types: bool,
}

impl Job<'_> {
    fn run(&self) -> Result<(), String> {
        let pem = std::fs::read(self.key_file).map_err(|e| {
            let e = crate::creds::go_io_error("open", std::path::Path::new(&self.key_shown), &e);
            format!("getting signer: reading key: {e}")
        })?;
        // kpack: a missing password file means an empty password.
        let password = std::fs::read(&self.password_file).unwrap_or_default();
        let signer =
            key::load(&pem, &password).map_err(|e| format!("getting signer: reading key: {e}"))?;

        let r = parse_reference(self.reference).map_err(|e| format!("parsing reference: {e}"))?;
        let image_repo = Repo::for_reference(Arc::clone(self.client), &r);
        let digest = match r.digest() {
            Some(d) => d.to_string(),
            None => {
                eprintln!(
                    "WARNING: Image reference {} uses a tag, not a digest, to identify the image to sign.",
                    self.reference
                );
                let t = r.tag().unwrap_or("latest");
                image_repo
                    .get_manifest(t)
                    .map_err(|e| format!("accessing entity: {e}"))?
                    .digest
                    .to_string()
            }
        };
        // cosign signs images it cannot see too ("signed unknown"), but not past other errors.
        if let Err(e) = image_repo.head_manifest(&digest) {
            if !e.is_not_found() {
                return Err(format!("accessing image: {e}"));
            }
        }
        let docker_reference = fully_qualified_repo(r.registry(), r.repository());
        let body = payload::simple_signing(&docker_reference, &digest, self.annotations);
        let signature = signer
            .sign(&body)
            .map_err(|e| format!("signing digest: {e}"))?;
        let layer = SigLayer {
            signature_b64: STANDARD.encode(&signature),
            payload: body,
        };

        let (target, shown) = match self.repository {
            Some(repo) if !repo.is_empty() => {
                let t = parse_reference(repo).map_err(|e| format!("parsing {repo}: {e}"))?;
                let shown = t.repository().to_string();
                (Repo::for_reference(Arc::clone(self.client), &t), shown)
            }
            _ => (image_repo.clone(), docker_reference),
        };
        let sig_tag = format!("{}.sig", digest.replace(':', "-"));
        eprintln!("Pushing signature to: {shown}");
        self.push(&target, &sig_tag, &layer, &signer)
            .map_err(|e| format!("signing digest: {e}"))
    }

    /// Append `layer` to the signature image at `tag` (created if missing), unless this key
    /// already signed the same payload there (cosign's duplicate detector).
    fn push(
        &self,
        target: &Repo,
        tag: &str,
        layer: &SigLayer,
        signer: &key::Signer,
    ) -> Result<(), String> {
        let mut img = match target.get_manifest(tag) {
            Ok(m) => existing(target, &m)?,
            Err(e) if e.is_not_found() => {
                SigImage::new(self.docker_media_types, &crate::oci::config::rfc3339(now()))
            }
            Err(e) => return Err(e.to_string()),
        };
        let digest = layer.digest().to_string();
        let duplicate = img.layers().iter().any(|(d, mt, sig)| {
            *d == digest
                && mt == payload::SIMPLE_SIGNING_MEDIA_TYPE
                && STANDARD
                    .decode(sig)
                    .is_ok_and(|s| signer.verify(&layer.payload, &s))
        });
        if duplicate {
            return Ok(());
        }
        img.append(layer);
        let (config, manifest, media_type) = img.finish();
        let e = |e: crate::oci::Error| e.to_string();
        put_bytes(target, &layer.digest(), &layer.payload).map_err(e)?;
        put_bytes(target, &Digest::of(&config), &config).map_err(e)?;
        let raw = RawManifest::from_bytes(manifest, Some(&media_type)).map_err(e)?;
        target.put_manifest(&raw, &[tag.to_string()]).map_err(e)
    }
}

fn existing(repo: &Repo, m: &RawManifest) -> Result<SigImage, String> {
    let v: serde_json::Value =
        serde_json::from_slice(&m.bytes).map_err(|e| format!("signature manifest: {e}"))?;
    let cd: Digest = v["config"]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or("signature manifest has no config digest")?;
    let config = repo.read_blob(&cd, None).map_err(|e| e.to_string())?;
    SigImage::parse(&m.bytes, &config)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_args_like_kpack() {
        let m = key_value_map(&["a=1".into(), "b=2".into(), "a=3".into()]).unwrap();
        assert_eq!(m["a"], "3");
        assert_eq!(
            key_value_map(&["x=y=z".into()]).unwrap_err(),
            "argument not formatted as -arg=key=value: x=y=z"
        );
        assert_eq!(
            key_value_map(&["novalue".into()]).unwrap_err(),
            "argument not formatted as -arg=key=value: novalue"
        );
    }
}
