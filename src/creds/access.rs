//! kpack's registry access checks: write access to the first tag (start an upload and cancel
//! it) and read access to the run image (fetch its manifest), with kpack's error texts followed
//! by which secret and registry were involved.

use std::sync::Arc;

use super::docker::RegistryCreds;
use crate::oci::BlobStore as _;
use crate::registry::{parse_reference, Client, RegistryError, Repo};

/// Why a check failed, worded as kpack's `<diag>`.
fn diag(e: &RegistryError) -> String {
    match e {
        RegistryError::RetriesExhausted { last, .. } => diag(last),
        RegistryError::Unauthorized { .. } => "UNAUTHORIZED".to_string(),
        RegistryError::Status {
            detail,
            status,
            method,
            url,
            ..
        } => registry_messages(detail).unwrap_or_else(|| {
            format!(
                "{method} {url}: unexpected status code {status} {}",
                status_text(*status)
            )
        }),
        RegistryError::NotFound {
            detail,
            method,
            url,
            ..
        } => registry_messages(detail)
            .unwrap_or_else(|| format!("{method} {url}: unexpected status code 404 Not Found")),
        other => other.to_string(),
    }
}

/// ggcr prints each registry error message followed by `". "`.
fn registry_messages(detail: &str) -> Option<String> {
    let d = detail.strip_prefix(": ")?;
    let msgs: Vec<String> = d
        .split("; ")
        .map(|part| match part.split_once(": ") {
            Some((_, m)) => format!("{m}. "),
            None => format!("{part}. "),
        })
        .collect();
    (!msgs.is_empty()).then(|| msgs.concat())
}

fn status_text(s: u16) -> &'static str {
    match s {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Which secret was used for `registry`, for the end of an error message.
pub fn secret_hint(creds: &RegistryCreds, registry: &str) -> String {
    match creds.secret_for(registry) {
        Some(s) => format!(" (registry {registry:?}, credentials from secret {s:?})"),
        None => format!(" (registry {registry:?}, no secret provides credentials for it)"),
    }
}

/// `Error verifying write access to "<tag>": <diag> (registry ..., secret ...)`.
pub fn verify_write(client: &Arc<Client>, creds: &RegistryCreds, tag: &str) -> Result<(), String> {
    let fail = |d: String, registry: &str| {
        format!(
            "Error verifying write access to \"{tag}\": {d}{}",
            secret_hint(creds, registry)
        )
    };
    let r = parse_reference(tag).map_err(|e| fail(e.to_string(), ""))?;
    Repo::for_reference(Arc::clone(client), &r)
        .check_push()
        .map_err(|e| fail(diag(&e), r.registry()))
}

/// `Error verifying read access to run image "<image>": <diag> (...)`.
pub fn verify_read(client: &Arc<Client>, creds: &RegistryCreds, image: &str) -> Result<(), String> {
    let fail = |d: String, registry: &str| {
        format!(
            "Error verifying read access to run image \"{image}\": {d}{}",
            secret_hint(creds, registry)
        )
    };
    let r = parse_reference(image).map_err(|e| fail(e.to_string(), ""))?;
    let what = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    Repo::for_reference(Arc::clone(client), &r)
        .get_manifest(&what)
        .map(|_| ())
        .map_err(|e| match e {
            crate::oci::Error::Registry(re) => fail(diag(&re), r.registry()),
            other => fail(other.to_string(), r.registry()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_follow_ggcr() {
        let unauth = RegistryError::Unauthorized {
            registry: "r".into(),
            method: "POST".into(),
            url: "u".into(),
            status: 401,
            detail: String::new(),
        };
        assert_eq!(diag(&unauth), "UNAUTHORIZED");
        let denied = RegistryError::Status {
            registry: "r".into(),
            method: "POST".into(),
            url: "https://r/v2/x/blobs/uploads/".into(),
            status: 403,
            detail: ": DENIED: requested access to the resource is denied".into(),
        };
        assert_eq!(
            diag(&denied),
            "requested access to the resource is denied. "
        );
        let bare = RegistryError::Status {
            registry: "r".into(),
            method: "POST".into(),
            url: "https://r/v2/some/image/blobs/uploads/".into(),
            status: 403,
            detail: String::new(),
        };
        assert_eq!(
            diag(&bare),
            "POST https://r/v2/some/image/blobs/uploads/: unexpected status code 403 Forbidden"
        );
    }
}
