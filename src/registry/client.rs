//! The registry client.
//!
//! Hand-written on `ureq` rather than wrapping `oci-client`: that crate is async-only (reqwest +
//! tokio, far heavier in our static binaries), and lacks what this project needs most — docker
//! config keychains with kpack's matching rules, retries that re-produce a streamed body, and
//! one-pass uploads of blobs whose digest is only known once streaming ends.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ureq::http::{self, Response};
use ureq::{Body, SendBody};

use super::auth::{parse_challenge, Challenge, TokenResponse};
use super::keychain::{Credential, Keychain};
use super::transport::{self, is_cert_error, is_loopback, is_not_tls};
use super::RegistryError;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub keychain: Keychain,
    /// Registries that may use plain HTTP or unverified TLS (loopback ones always may use HTTP).
    pub insecure: Vec<String>,
    /// Extra PEM CA files to trust.
    pub ca_files: Vec<PathBuf>,
    /// Retries after the first attempt for transient failures.
    pub retries: u32,
    /// First backoff delay; doubled on each retry.
    pub backoff: Duration,
    /// Blobs transferred at once.
    pub parallel: usize,
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            keychain: Keychain::empty(),
            insecure: Vec::new(),
            ca_files: Vec::new(),
            retries: 4,
            backoff: Duration::from_millis(200),
            parallel: 4,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// What we learnt about a registry host.
#[derive(Clone, Debug)]
struct HostState {
    /// `https://host` or `http://host`.
    base: String,
    /// Unverified TLS (insecure registry).
    unverified: bool,
    challenge: Option<Challenge>,
}

/// A request body that can be sent again on retry.
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Streamed; length if known (else chunked). Not re-sendable: the caller retries.
    Reader(Box<dyn Read + Send + 'a>, Option<u64>),
}

pub struct Client {
    opts: ClientOptions,
    verified: ureq::Agent,
    unverified: ureq::Agent,
    hosts: Mutex<HashMap<String, HostState>>,
    /// Bearer tokens by (registry, scope).
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Arc<Self>, RegistryError> {
        let roots = transport::root_certs(&opts.ca_files)?;
        Ok(Arc::new(Self {
            verified: transport::agent(roots.clone(), true, opts.connect_timeout),
            unverified: transport::agent(roots, false, opts.connect_timeout),
            opts,
            hosts: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }))
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn is_insecure(&self, registry: &str) -> bool {
        self.opts.insecure.iter().any(|r| r == registry)
    }

    fn agent(&self, st: &HostState) -> &ureq::Agent {
        if st.unverified {
            &self.unverified
        } else {
            &self.verified
        }
    }

    /// Find out how to talk to `registry`: try HTTPS, and for loopback or insecure registries
    /// fall back to plain HTTP when the server does not speak TLS. Cached per host.
    fn host(&self, registry: &str) -> Result<HostState, RegistryError> {
        if let Some(st) = self
            .hosts
            .lock()
            .ok()
            .and_then(|h| h.get(registry).cloned())
        {
            return Ok(st);
        }
        let host = super::api_host(registry);
        let insecure = self.is_insecure(registry);
        let https = HostState {
            base: format!("https://{host}"),
            unverified: insecure,
            challenge: None,
        };
        let st = match self.ping(registry, https) {
            Ok(st) => st,
            Err(RegistryError::Transport { detail, .. })
                if (is_loopback(registry) || insecure) && is_not_tls(&detail) =>
            {
                let http = HostState {
                    base: format!("http://{host}"),
                    unverified: false,
                    challenge: None,
                };
                self.ping(registry, http)?
            }
            Err(e) => return Err(e),
        };
        if let Ok(mut h) = self.hosts.lock() {
            h.insert(registry.to_string(), st.clone());
        }
        Ok(st)
    }

    fn ping(&self, registry: &str, mut st: HostState) -> Result<HostState, RegistryError> {
        let url = format!("{}/v2/", st.base);
        let resp = self
            .agent(&st)
            .get(&url)
            .call()
            .map_err(|e| transport_error(registry, &format!("GET {url}"), &e))?;
        match resp.status().as_u16() {
            200 => {}
            401 => {
                st.challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
            }
            s => {
                return Err(status_error(registry, "GET", &url, s, resp));
            }
        }
        Ok(st)
    }

    fn credential(&self, registry: &str) -> Result<Credential, RegistryError> {
        self.opts.keychain.resolve(registry)
    }

    /// The Authorization header for `scope` under the host's challenge, fetching a token if
    /// needed (`refresh`: ignore a cached token).
    fn authorization(
        &self,
        registry: &str,
        st: &HostState,
        scope: &str,
        refresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        let cred = self.credential(registry)?;
        match &st.challenge {
            None => Ok(None),
            Some(Challenge::Basic) => match cred {
                Credential::Basic { username, password } => Ok(Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                ))),
                Credential::RegistryToken(t) => Ok(Some(format!("Bearer {t}"))),
                _ => Ok(None),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Credential::RegistryToken(t) = &cred {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let key = (registry.to_string(), scope.to_string());
                if !refresh {
                    if let Some(t) = self.tokens.lock().ok().and_then(|m| m.get(&key).cloned()) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let token =
                    self.fetch_token(registry, st, realm, service.as_deref(), scope, &cred)?;
                if let Ok(mut m) = self.tokens.lock() {
                    m.insert(key, token.clone());
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        registry: &str,
        st: &HostState,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        cred: &Credential,
    ) -> Result<String, RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            query.push(("scope", s));
        }
        let agent = self.agent(st);
        let resp = match cred {
            Credential::IdentityToken(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", "buildpod"),
                ];
                form.extend(query.iter().copied());
                agent.post(realm).send_form(form)
            }
            _ => {
                let mut req = agent.get(realm);
                for (k, v) in &query {
                    req = req.query(*k, *v);
                }
                if let Credential::Basic { username, password } = cred {
                    let b = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"));
                    req = req.header("Authorization", format!("Basic {b}"));
                }
                req.call()
            }
        }
        .map_err(|e| transport_error(registry, &format!("token request to {realm}"), &e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                method: "GET".into(),
                url: realm.to_string(),
                status,
                detail: credential_hint(&self.opts.keychain, registry),
            });
        }
        if status != 200 {
            return Err(status_error(registry, "GET", realm, status, resp));
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| transport_error(registry, "read token response", &e))?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::protocol(registry, format!("token response from {realm}: {e}"))
        })?;
        t.into_token().ok_or_else(|| {
            RegistryError::protocol(
                registry,
                format!("token response from {realm} has no token"),
            )
        })
    }

    /// Send one request to `registry`. `path` is a `/v2/...` path or an absolute URL (upload
    /// locations). Re-authenticates once on 401 when the body can be sent again.
    pub(crate) fn send(
        &self,
        registry: &str,
        scope: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody<'_>,
    ) -> Result<Response<Body>, RegistryError> {
        let mut st = self.host(registry)?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", st.base)
        };
        let mut body = Some(body);
        let mut refresh = false;
        loop {
            let auth = self.authorization(registry, &st, scope, refresh)?;
            let mut b = http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            if let Some(a) = &auth {
                b = b.header("Authorization", a);
            }
            let this_body = body.take().unwrap_or(ReqBody::Empty);
            let resendable = !matches!(this_body, ReqBody::Reader(..));
            let (mut reader, again): (Box<dyn Read + Send + '_>, _) = match this_body {
                ReqBody::Empty => (Box::new(std::io::empty()), Some(ReqBody::Empty)),
                ReqBody::Bytes(bytes) => {
                    b = b.header("Content-Length", bytes.len().to_string());
                    (Box::new(bytes), Some(ReqBody::Bytes(bytes)))
                }
                ReqBody::Reader(r, len) => {
                    if let Some(n) = len {
                        b = b.header("Content-Length", n.to_string());
                    }
                    (r, None)
                }
            };
            tracing::debug!(%method, %url, "registry request");
            let agent = self.agent(&st);
            let build_err = |e: http::Error| {
                RegistryError::protocol(registry, format!("build request {method} {url}: {e}"))
            };
            let result = if matches!(again, Some(ReqBody::Empty)) {
                agent.run(b.body(SendBody::none()).map_err(build_err)?)
            } else {
                agent.run(
                    b.body(SendBody::from_reader(&mut reader))
                        .map_err(build_err)?,
                )
            };
            let resp =
                result.map_err(|e| transport_error(registry, &format!("{method} {url}"), &e))?;
            if resp.status().as_u16() == 401 && !refresh && resendable {
                // The token may lack this scope, or the challenge changed: learn it and retry once.
                if let Some(c) = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge)
                {
                    st.challenge = Some(c);
                    if let Ok(mut h) = self.hosts.lock() {
                        h.insert(registry.to_string(), st.clone());
                    }
                }
                refresh = true;
                body = again;
                continue;
            }
            if resp.status().as_u16() == 401 {
                return Err(RegistryError::Unauthorized {
                    registry: registry.to_string(),
                    method: method.to_string(),
                    url,
                    status: 401,
                    detail: credential_hint(&self.opts.keychain, registry),
                });
            }
            return Ok(resp);
        }
    }

    /// Run `op` with retries and exponential backoff on transient failures.
    pub(crate) fn retry<T>(
        &self,
        registry: &str,
        what: &str,
        mut op: impl FnMut() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < self.opts.retries => {
                    attempt += 1;
                    tracing::warn!(registry, op = what, attempt, error = %e, "retrying");
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2).min(Duration::from_secs(10));
                }
                Err(e) if e.is_transient() && attempt > 0 => {
                    return Err(RegistryError::RetriesExhausted {
                        registry: registry.to_string(),
                        op: what.to_string(),
                        attempts: attempt + 1,
                        last: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The URL base (`scheme://host`) used for `registry`.
    pub fn base_url(&self, registry: &str) -> Result<String, RegistryError> {
        Ok(self.host(registry)?.base)
    }
}

/// Where the credentials for `registry` came from, for error messages (never the secret).
fn credential_hint(k: &Keychain, registry: &str) -> String {
    match (k.matching_key(registry), k.source()) {
        (Some(key), Some(src)) => format!(" (credentials from {:?} in {})", key, src.display()),
        (Some(key), None) => format!(" (credentials for {key:?})"),
        (None, _) => " (no credentials configured for this registry)".to_string(),
    }
}

pub(crate) fn transport_error(registry: &str, op: &str, e: &ureq::Error) -> RegistryError {
    let mut detail = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    if is_cert_error(&detail) {
        return RegistryError::UntrustedCertificate {
            registry: registry.to_string(),
            detail,
        };
    }
    RegistryError::Transport {
        registry: registry.to_string(),
        op: op.to_string(),
        detail,
    }
}

/// An error for an unexpected status, with the registry's own error codes and messages.
pub(crate) fn status_error(
    registry: &str,
    method: &str,
    url: &str,
    status: u16,
    resp: Response<Body>,
) -> RegistryError {
    let body = resp
        .into_body()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    let detail = registry_messages(&body);
    let (registry, method, url) = (registry.to_string(), method.to_string(), url.to_string());
    match status {
        401 => RegistryError::Unauthorized {
            registry,
            method,
            url,
            status,
            detail,
        },
        404 => RegistryError::NotFound {
            registry,
            what: "resource".into(),
            method,
            url,
            detail,
        },
        _ => RegistryError::Status {
            registry,
            method,
            url,
            status,
            detail,
        },
    }
}

/// `: CODE: message; CODE2: message2` from a distribution error body.
fn registry_messages(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Errs>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|x| {
                    format!(
                        "{}: {}",
                        x.code.as_deref().unwrap_or("?"),
                        x.message.as_deref().unwrap_or("")
                    )
                })
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_are_summarised() {
        assert_eq!(
            registry_messages(br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#),
            ": DENIED: requested access to the resource is denied"
        );
        assert_eq!(registry_messages(b"<html>"), "");
    }
}
