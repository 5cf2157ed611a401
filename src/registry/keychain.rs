//! Registry credentials from docker `config.json` files, matched to registries as kpack does:
//! a key matches a registry only as `host`, `http(s)://host` or `http(s)://host/v1|v2/`, and
//! Docker Hub matches only the key `https://index.docker.io/v1/`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::RegistryError;

/// One registry's entry in a docker config (`auths.<key>`).
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identitytoken: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets, not even in debug logs.
        f.debug_struct("AuthEntry")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field(
                "identitytoken",
                &self.identitytoken.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "registrytoken",
                &self.registrytoken.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What to authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token, exchanged at the token endpoint.
    IdentityToken(String),
    /// A bearer token sent as is.
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credential::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

impl AuthEntry {
    pub fn basic(username: &str, password: &str) -> Self {
        AuthEntry {
            username: Some(username.to_string()),
            password: Some(password.to_string()),
            ..Default::default()
        }
    }

    /// The credential this entry stands for. `auth` (base64 `user:pass`) wins over
    /// username/password, as in docker's own client.
    pub fn credential(&self, key: &str) -> Result<Credential, RegistryError> {
        if let Some(t) = self.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Credential::RegistryToken(t.clone()));
        }
        if let Some(t) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Credential::IdentityToken(t.clone()));
        }
        if let Some(a) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || {
                RegistryError::Config(format!("auths.{key:?}.auth is not base64 of user:password"))
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| bad())?;
            let s = String::from_utf8(raw).map_err(|_| bad())?;
            let (u, p) = s.split_once(':').ok_or_else(bad)?;
            return Ok(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            });
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => Ok(Credential::Anonymous),
        }
    }

    /// The entry as kpack writes it: `auth` filled from username/password if unset.
    pub fn normalized(&self) -> Self {
        let mut e = self.clone();
        if e.auth.is_none() {
            if let (Some(u), Some(p)) = (&e.username, &e.password) {
                e.auth = Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
            }
        }
        e
    }
}

/// A set of docker credentials keyed as in `config.json` (`auths`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keychain {
    auths: BTreeMap<String, AuthEntry>,
    /// Where the entries came from, for error messages.
    source: Option<PathBuf>,
}

#[derive(Deserialize, Serialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

impl Keychain {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parse a docker `config.json` (`{"auths": {...}}`).
    pub fn from_config_json(bytes: &[u8], source: Option<&Path>) -> Result<Self, RegistryError> {
        let name = source.map_or("docker config".to_string(), |p| p.display().to_string());
        let cfg: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|e| RegistryError::Config(format!("{name}: {e}")))?;
        Ok(Self {
            auths: cfg.auths,
            source: source.map(Path::to_path_buf),
        })
    }

    /// Parse a legacy `.dockercfg` (a bare map of registry → entry).
    pub fn from_dockercfg(bytes: &[u8], source: Option<&Path>) -> Result<Self, RegistryError> {
        let name = source.map_or(".dockercfg".to_string(), |p| p.display().to_string());
        let auths: BTreeMap<String, AuthEntry> = serde_json::from_slice(bytes)
            .map_err(|e| RegistryError::Config(format!("{name}: {e}")))?;
        Ok(Self {
            auths,
            source: source.map(Path::to_path_buf),
        })
    }

    /// Read a `config.json` file; a missing file is an empty keychain.
    pub fn from_file(path: &Path) -> Result<Self, RegistryError> {
        match std::fs::read(path) {
            Ok(b) => Self::from_config_json(&b, Some(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(e) => Err(RegistryError::Config(format!(
                "read {}: {e}",
                path.display()
            ))),
        }
    }

    /// The docker client's default: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn from_environment() -> Result<Self, RegistryError> {
        let path = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(".docker/config.json"),
                None => return Ok(Self::empty()),
            },
        };
        Self::from_file(&path)
    }

    /// `CNB_REGISTRY_AUTH`: `{"<registry>": "<Authorization header value>"}` with `Basic …`,
    /// `Bearer …` or `X-Identity …` values (the CNB lifecycle's first credential source).
    pub fn from_cnb_registry_auth(json: &str) -> Result<Self, RegistryError> {
        let bad = |m: String| RegistryError::Config(format!("CNB_REGISTRY_AUTH: {m}"));
        let map: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| bad(format!("not a JSON object of strings: {e}")))?;
        let mut k = Self::empty();
        for (registry, header) in map {
            let (scheme, value) = header.split_once(' ').unwrap_or((header.as_str(), ""));
            let value = value.trim().to_string();
            let entry = match scheme {
                "Basic" => AuthEntry {
                    auth: Some(value),
                    ..Default::default()
                },
                "Bearer" => AuthEntry {
                    registrytoken: Some(value),
                    ..Default::default()
                },
                "X-Identity" => AuthEntry {
                    identitytoken: Some(value),
                    ..Default::default()
                },
                other => {
                    return Err(bad(format!(
                        "registry {registry:?}: unsupported authorization scheme {other:?} (want Basic, Bearer or X-Identity)"
                    )))
                }
            };
            k.insert(&registry, entry);
        }
        Ok(k)
    }

    pub fn insert(&mut self, key: &str, entry: AuthEntry) {
        self.auths.insert(key.to_string(), entry);
    }

    /// Merge `other` in; keys already present win (kpack's first-writer-wins `Append`).
    pub fn append(&mut self, other: Keychain) {
        for (k, v) in other.auths {
            self.auths.entry(k).or_insert(v);
        }
    }

    pub fn entries(&self) -> &BTreeMap<String, AuthEntry> {
        &self.auths
    }

    pub fn is_empty(&self) -> bool {
        self.auths.is_empty()
    }

    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// `{"auths": ...}` as kpack writes `/builder/home/.docker/config.json`.
    pub fn to_config_json(&self) -> Vec<u8> {
        let cfg = ConfigFile {
            auths: self
                .auths
                .iter()
                .map(|(k, v)| (k.clone(), v.normalized()))
                .collect(),
        };
        serde_json::to_vec(&cfg).unwrap_or_else(|_| b"{\"auths\":{}}".to_vec())
    }

    /// The key matching `registry` (a host with optional port), if any.
    pub fn matching_key(&self, registry: &str) -> Option<&str> {
        candidate_keys(registry)
            .into_iter()
            .find_map(|k| self.auths.get_key_value(&k).map(|(k, _)| k.as_str()))
    }

    /// The credential for `registry`: anonymous when no key matches.
    pub fn resolve(&self, registry: &str) -> Result<Credential, RegistryError> {
        match self.matching_key(registry) {
            Some(k) => self.auths[k].credential(k),
            None => Ok(Credential::Anonymous),
        }
    }
}

/// Docker Hub's registry names, all of which mean the same registry.
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// The config keys that match `registry`, in the order they are tried.
fn candidate_keys(registry: &str) -> Vec<String> {
    if is_docker_hub(registry) {
        return vec!["https://index.docker.io/v1/".to_string()];
    }
    let mut keys = vec![registry.to_string()];
    for scheme in ["https://", "http://"] {
        keys.push(format!("{scheme}{registry}"));
        keys.push(format!("{scheme}{registry}/v2/"));
        keys.push(format!("{scheme}{registry}/v1/"));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kc(keys: &[&str]) -> Keychain {
        let mut k = Keychain::empty();
        for key in keys {
            k.insert(key, AuthEntry::basic("u", key));
        }
        k
    }

    #[test]
    fn cnb_registry_auth_header_values() {
        let k = Keychain::from_cnb_registry_auth(
            r#"{"a.io": "Basic dTpw", "b.io": "Bearer tok", "c.io": "X-Identity id"}"#,
        )
        .unwrap();
        assert_eq!(
            k.resolve("a.io").unwrap(),
            Credential::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert_eq!(
            k.resolve("b.io").unwrap(),
            Credential::RegistryToken("tok".into())
        );
        assert_eq!(
            k.resolve("c.io").unwrap(),
            Credential::IdentityToken("id".into())
        );
        let e = Keychain::from_cnb_registry_auth(r#"{"a.io": "Digest x"}"#).unwrap_err();
        assert!(e.to_string().contains("CNB_REGISTRY_AUTH") && e.to_string().contains("a.io"));
        assert!(Keychain::from_cnb_registry_auth("[").is_err());
    }

    // Ported from kpack's dockercreds match_test: which config keys match which registries.
    #[test]
    fn matching_follows_kpack() {
        let cases: &[(&str, &str, bool)] = &[
            ("gcr.io", "gcr.io", true),
            ("https://gcr.io", "gcr.io", true),
            ("http://gcr.io", "gcr.io", true),
            ("https://gcr.io/v1/", "gcr.io", true),
            ("https://gcr.io/v2/", "gcr.io", true),
            ("http://gcr.io/v2/", "gcr.io", true),
            ("gcr.io/v2/", "gcr.io", false),
            ("gcr.io", "us.gcr.io", false),
            ("https://gcr.io/other/", "gcr.io", false),
            ("registry.io:5000", "registry.io:5000", true),
            ("registry.io", "registry.io:5000", false),
            ("https://index.docker.io/v1/", "index.docker.io", true),
            ("https://index.docker.io/v1/", "docker.io", true),
            ("index.docker.io", "index.docker.io", false),
            ("docker.io", "docker.io", false),
            ("https://index.docker.io/v2/", "index.docker.io", false),
        ];
        for (key, reg, want) in cases {
            assert_eq!(
                kc(&[key]).matching_key(reg).is_some(),
                *want,
                "key {key} registry {reg}"
            );
        }
    }

    #[test]
    fn auth_field_wins_and_tokens_are_used() {
        let k = Keychain::from_config_json(
            br#"{"auths":{
                "a.io":{"auth":"dXNlcjpwYXNzOndpdGg6Y29sb25z","username":"x","password":"y"},
                "b.io":{"username":"bob","password":"pw"},
                "c.io":{"identitytoken":"refresh"},
                "d.io":{"registrytoken":"bearer"},
                "e.io":{}}}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            k.resolve("a.io").unwrap(),
            Credential::Basic {
                username: "user".into(),
                password: "pass:with:colons".into()
            }
        );
        assert_eq!(
            k.resolve("b.io").unwrap(),
            Credential::Basic {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            k.resolve("c.io").unwrap(),
            Credential::IdentityToken("refresh".into())
        );
        assert_eq!(
            k.resolve("d.io").unwrap(),
            Credential::RegistryToken("bearer".into())
        );
        assert_eq!(k.resolve("e.io").unwrap(), Credential::Anonymous);
        assert_eq!(k.resolve("z.io").unwrap(), Credential::Anonymous);
        let err = Keychain::from_config_json(br#"{"auths":{"f.io":{"auth":"!!"}}}"#, None)
            .unwrap()
            .resolve("f.io")
            .unwrap_err();
        assert!(err.to_string().contains("f.io"), "{err}");
    }

    #[test]
    fn append_is_first_writer_wins_and_output_fills_auth() {
        let mut a = Keychain::empty();
        a.insert("r.io", AuthEntry::basic("first", "1"));
        let mut b = Keychain::empty();
        b.insert("r.io", AuthEntry::basic("second", "2"));
        b.insert("s.io", AuthEntry::basic("s", "3"));
        a.append(b);
        assert_eq!(
            a.resolve("r.io").unwrap(),
            Credential::Basic {
                username: "first".into(),
                password: "1".into()
            }
        );
        let json: serde_json::Value = serde_json::from_slice(&a.to_config_json()).unwrap();
        assert_eq!(json["auths"]["s.io"]["auth"], "czoz");
        assert_eq!(json["auths"]["s.io"]["username"], "s");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let e = AuthEntry::basic("me", "hunter2");
        assert!(!format!("{e:?}").contains("hunter2"));
        let c = e.credential("k").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
