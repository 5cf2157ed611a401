//! HTTP agents: TLS roots (system bundle, `SSL_CERT_FILE`, `SSL_CERT_DIR`, extra CA files),
//! and which registries may be reached over plain HTTP.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::RegistryError;

const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Certificates to trust: the system bundle (or `SSL_CERT_FILE`), every file in `SSL_CERT_DIR`,
/// and `extra` files. With none of those present (a scratch image), the bundled webpki roots.
pub fn root_certs(extra: &[PathBuf]) -> Result<RootCerts, RegistryError> {
    let mut certs: Vec<Certificate<'static>> = system_certs()?.to_vec();
    for f in extra {
        read_pem(f, true, &mut certs)?;
    }
    if certs.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The system part, read once per process: phases and kpack steps make several clients, and
/// reading a certificate directory costs tens of milliseconds.
fn system_certs() -> Result<&'static [Certificate<'static>], RegistryError> {
    static SYSTEM: OnceLock<Result<Vec<Certificate<'static>>, String>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let mut files: Vec<PathBuf> = Vec::new();
            match std::env::var_os("SSL_CERT_FILE") {
                Some(f) => files.push(PathBuf::from(f)),
                None => {
                    if let Some(b) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
                        files.push(b.to_path_buf());
                    }
                }
            }
            if let Some(dir) = std::env::var_os("SSL_CERT_DIR") {
                for d in std::env::split_paths(&dir) {
                    if let Ok(rd) = std::fs::read_dir(&d) {
                        let mut names: Vec<PathBuf> =
                            rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                        names.sort();
                        files.extend(names.into_iter().filter(|p| p.is_file()));
                    }
                }
            }
            let mut certs = Vec::new();
            for f in &files {
                read_pem(f, false, &mut certs).map_err(|e| e.to_string())?;
            }
            Ok(certs)
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(|e| RegistryError::Config(e.clone()))
}

/// Append the certificates of `f`. Only an explicitly named file must be valid PEM: a
/// hashed-name certificate dir may hold other files.
fn read_pem(
    f: &Path,
    explicit: bool,
    certs: &mut Vec<Certificate<'static>>,
) -> Result<(), RegistryError> {
    let pem = std::fs::read(f)
        .map_err(|e| RegistryError::Config(format!("read CA certificates {}: {e}", f.display())))?;
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c.to_owned()),
            Ok(_) => {}
            Err(e) if explicit => {
                return Err(RegistryError::Config(format!(
                    "{}: invalid PEM: {e}",
                    f.display()
                )))
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Build an agent. Status codes are returned, not raised, so the client can read error bodies.
pub fn agent(roots: RootCerts, verify: bool, timeout: Duration) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .disable_verification(!verify)
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .max_idle_connections_per_host(16)
        // Blob GETs may redirect to storage; auth is not forwarded across hosts by ureq.
        .max_redirects(10)
        .user_agent(concat!("buildpod/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Registries on loopback may speak plain HTTP, as in docker and go-containerregistry.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Whether a transport error message means the peer did not speak TLS at all (so plain HTTP
/// may be tried), as opposed to a TLS failure that must be reported.
pub fn is_not_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    !d.contains("certificate")
        && (d.contains("corrupt message")
            || d.contains("invalidcontenttype")
            || d.contains("invalid content type"))
}

/// Whether a transport error is a certificate verification failure.
pub fn is_cert_error(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate") || d.contains("unknownissuer") || d.contains("unknown issuer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for r in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "gcr.io",
            "10.0.0.1:5000",
            "example.com:443",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
