//! Registry credentials from `-basic-docker`, `-dockercfg`, `-dockerconfig` and `-imagepull`
//! secrets, merged first-writer-wins as kpack's `DockerCreds.Append` does.

use std::collections::BTreeMap;
use std::path::Path;

use super::{read_optional, read_secret_file, split_secret_arg};
use crate::kpack::paths::Paths;
use crate::registry::{AuthEntry, Keychain};

/// Docker credentials plus, for each config key, the secret it came from.
#[derive(Clone, Debug, Default)]
pub struct RegistryCreds {
    pub keychain: Keychain,
    origin: BTreeMap<String, String>,
}

impl RegistryCreds {
    pub fn is_empty(&self) -> bool {
        self.keychain.is_empty()
    }

    /// Merge `other` in; keys already present win.
    pub fn append(&mut self, other: RegistryCreds) {
        for (k, s) in other.origin {
            self.origin.entry(k).or_insert(s);
        }
        self.keychain.append(other.keychain);
    }

    fn insert(&mut self, key: &str, entry: AuthEntry, secret: &str) {
        if self.keychain.entries().contains_key(key) {
            return;
        }
        self.keychain.insert(key, entry);
        self.origin.insert(key.to_string(), secret.to_string());
    }

    /// The secret whose credentials apply to `registry`, if any.
    pub fn secret_for(&self, registry: &str) -> Option<&str> {
        let key = self.keychain.matching_key(registry)?;
        self.origin.get(key).map(String::as_str)
    }

    /// Save as kpack's `config.json` (`{"auths": ...}`), mode 0600 because it holds passwords.
    pub fn save(&self, path: &Path) -> Result<(), crate::fsutil::PathError> {
        use std::os::unix::fs::PermissionsExt as _;
        crate::fsutil::write_atomic_with(path, |f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            std::io::Write::write_all(f, &self.keychain.to_config_json())
        })
    }
}

/// `-basic-docker name=domain` secrets: `username` and `password` files. Logs one line per arg
/// before reading any file, as kpack does.
pub fn parse_basic_auth(
    paths: &Paths,
    args: &[String],
    log: &dyn Fn(&str),
) -> Result<RegistryCreds, String> {
    let mut pairs = Vec::new();
    for a in args {
        let (name, domain) = split_secret_arg(a)
            .ok_or_else(|| format!("could not parse docker secret argument {a}"))?;
        log(&format!(
            "Loading secrets for \"{domain}\" from secret \"{name}\""
        ));
        pairs.push((name, domain));
    }
    let mut creds = RegistryCreds::default();
    for (name, domain) in pairs {
        let dir = paths.build_secrets().join(name);
        let read = |f: &str| {
            let p = dir.join(f);
            read_secret_file(&p, Path::new(&paths.shown(&p)))
        };
        let (user, pass) = (read("username")?, read("password")?);
        // A later arg for the same domain replaces the earlier one (kpack builds a map).
        creds
            .keychain
            .insert(domain, AuthEntry::basic(&user, &pass));
        creds.origin.insert(domain.to_string(), name.to_string());
    }
    Ok(creds)
}

/// One docker config secret directory: `.dockercfg` then `.dockerconfigjson`, each optional,
/// first writer wins.
pub fn parse_docker_config_dir(dir: &Path, secret: &str) -> Result<RegistryCreds, String> {
    let mut creds = RegistryCreds::default();
    let cfg = dir.join(".dockercfg");
    if let Some(s) = read_optional(&cfg, &cfg)? {
        let k = Keychain::from_dockercfg(s.as_bytes(), Some(&cfg)).map_err(|e| e.to_string())?;
        for (key, e) in k.entries() {
            creds.insert(key, e.clone(), secret);
        }
    }
    let json = dir.join(".dockerconfigjson");
    if let Some(s) = read_optional(&json, &json)? {
        let k = Keychain::from_config_json(s.as_bytes(), Some(&json)).map_err(|e| e.to_string())?;
        for (key, e) in k.entries() {
            creds.insert(key, e.clone(), secret);
        }
    }
    Ok(creds)
}

/// `-dockercfg`/`-dockerconfig`/`-imagepull` secrets by name, logging each domain found when
/// `log` is given.
pub fn parse_docker_config_secrets(
    paths: &Paths,
    names: &[String],
    log: Option<&dyn Fn(&str)>,
) -> Result<RegistryCreds, String> {
    let mut all = RegistryCreds::default();
    for name in names {
        let dir = paths.build_secrets().join(name);
        let c = parse_docker_config_dir(&dir, name)?;
        if let Some(log) = log {
            for domain in c.keychain.entries().keys() {
                log(&format!(
                    "Loading secret for \"{domain}\" from secret \"{name}\" at location \"{}\"",
                    paths.shown(&dir)
                ));
            }
        }
        all.append(c);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn secret(root: &Path, name: &str, files: &[(&str, &str)]) {
        let d = root.join("var/build-secrets").join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (f, c) in files {
            std::fs::write(d.join(f), c).unwrap();
        }
    }

    // Ported from kpack's dockercreds parse_secrets/docker_creds tests.
    #[test]
    fn parses_all_secret_kinds_first_writer_wins() {
        let t = tempfile::tempdir().unwrap();
        let paths = Paths::under(t.path());
        secret(t.path(), "basic", &[("username", "bu"), ("password", "bp")]);
        secret(
            t.path(),
            "cfg",
            &[(
                ".dockercfg",
                r#"{"gcr.io":{"username":"cfg","password":"x"},"a.io":{"auth":"dTpw"}}"#,
            )],
        );
        secret(
            t.path(),
            "json",
            &[(
                ".dockerconfigjson",
                r#"{"auths":{"gcr.io":{"username":"json","password":"y"},"b.io":{"username":"b","password":"z"}}}"#,
            )],
        );
        let lines = RefCell::new(Vec::new());
        let log = |l: &str| lines.borrow_mut().push(l.to_string());
        let mut creds = parse_basic_auth(&paths, &["basic=acr.io".into()], &log).unwrap();
        let cfgs = parse_docker_config_secrets(&paths, &["cfg".into(), "json".into()], Some(&log))
            .unwrap();
        creds.append(cfgs);
        let json: serde_json::Value =
            serde_json::from_slice(&creds.keychain.to_config_json()).unwrap();
        assert_eq!(json["auths"]["gcr.io"]["username"], "cfg");
        assert_eq!(json["auths"]["acr.io"]["auth"], "YnU6YnA=");
        assert_eq!(json["auths"]["b.io"]["username"], "b");
        assert_eq!(creds.secret_for("gcr.io"), Some("cfg"));
        assert_eq!(creds.secret_for("acr.io"), Some("basic"));
        assert_eq!(creds.secret_for("b.io"), Some("json"));
        let lines = lines.into_inner();
        assert_eq!(
            lines[0],
            "Loading secrets for \"acr.io\" from secret \"basic\""
        );
        assert!(lines.contains(
            &"Loading secret for \"b.io\" from secret \"json\" at location \"/var/build-secrets/json\""
                .to_string()
        ));
    }

    #[test]
    fn errors_match_kpack() {
        let t = tempfile::tempdir().unwrap();
        let paths = Paths::under(t.path());
        let e = parse_basic_auth(&paths, &["nodomain".into()], &|_| {}).unwrap_err();
        assert_eq!(e, "could not parse docker secret argument nodomain");
        let e = parse_basic_auth(&paths, &["missing=x.io".into()], &|_| {}).unwrap_err();
        assert_eq!(
            e,
            "open /var/build-secrets/missing/username: no such file or directory"
        );
        // A secret directory with neither file is simply empty.
        let c = parse_docker_config_secrets(&paths, &["none".into()], None).unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn saved_config_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let t = tempfile::tempdir().unwrap();
        let mut c = RegistryCreds::default();
        c.insert("r.io", AuthEntry::basic("u", "p"), "s");
        let p = t.path().join("home/.docker/config.json");
        c.save(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            r#"{"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}}"#
        );
    }
}
