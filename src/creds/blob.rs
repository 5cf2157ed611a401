//! Blob credentials from `-blob name=domain` secrets: exactly one of `username`+`password`,
//! `bearer` or `authorization`, matched on the URL's exact hostname.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;

use super::{read_optional, split_secret_arg};
use crate::kpack::paths::Paths;

/// An `Authorization` header value and the secret it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct BlobAuth {
    pub secret: String,
    pub header: String,
}

impl fmt::Debug for BlobAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobAuth(secret={}, <redacted>)", self.secret)
    }
}

/// Hostname of a URL (no port, no user info).
pub fn url_hostname(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_string();
    }
    host.split(':').next().unwrap_or("").to_string()
}

/// Resolve the header for `url` from `-blob` args (kpack's secret keychain).
pub fn resolve(paths: &Paths, args: &[String], url: &str) -> Result<BlobAuth, String> {
    let host = url_hostname(url);
    for a in args {
        let (name, domain) = split_secret_arg(a)
            .ok_or_else(|| format!("could not parse blob secret argument {a}"))?;
        if domain != host {
            continue;
        }
        let dir = paths.build_secrets().join(name);
        let read = |f: &str| {
            let p = dir.join(f);
            read_optional(&p, &PathBuf::from(paths.shown(&p)))
        };
        let (user, pass) = (read("username")?, read("password")?);
        let (bearer, authz) = (read("bearer")?, read("authorization")?);
        let mut found = Vec::new();
        if user.is_some() || pass.is_some() {
            let b = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                user.unwrap_or_default(),
                pass.unwrap_or_default()
            ));
            found.push(format!("Basic {b}"));
        }
        if let Some(b) = bearer {
            found.push(format!("Bearer {b}"));
        }
        if let Some(a) = authz {
            found.push(a);
        }
        return match found.len() {
            0 => Err(format!("no auths found for '{name}'")),
            1 => Ok(BlobAuth {
                secret: name.to_string(),
                header: found.remove(0),
            }),
            _ => Err(format!(
                "multiple auths found for '{name}', only one of username/password, bearer, authorization is allowed"
            )),
        };
    }
    Err(format!("no secrets matched for '{host}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ported from kpack's blob file_keychain_test.
    #[test]
    fn resolves_like_kpack() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("var/build-secrets");
        for (n, files) in [
            ("up", vec![("username", "u"), ("password", "p")]),
            ("bear", vec![("bearer", "tok")]),
            ("raw", vec![("authorization", "Custom x")]),
            ("none", vec![]),
            ("two", vec![("bearer", "t"), ("authorization", "a")]),
        ] {
            std::fs::create_dir_all(s.join(n)).unwrap();
            for (f, c) in files {
                std::fs::write(s.join(n).join(f), c).unwrap();
            }
        }
        let p = Paths::under(t.path());
        let args: Vec<String> = ["up=a.io", "bear=b.io", "raw=c.io", "none=d.io", "two=e.io"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let h = |u: &str| resolve(&p, &args, u);
        assert_eq!(h("https://a.io:8443/x.tgz").unwrap().header, "Basic dTpw");
        assert_eq!(h("https://b.io/x").unwrap().header, "Bearer tok");
        assert_eq!(h("https://c.io/x").unwrap().header, "Custom x");
        assert_eq!(
            h("https://d.io/x").unwrap_err(),
            "no auths found for 'none'"
        );
        assert!(h("https://e.io/x")
            .unwrap_err()
            .starts_with("multiple auths found for 'two'"));
        assert_eq!(
            h("https://z.io/x").unwrap_err(),
            "no secrets matched for 'z.io'"
        );
        assert!(!format!("{:?}", h("https://a.io/").unwrap()).contains("dTpw"));
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            url_hostname("http://user:pw@127.0.0.1:8080/a?b"),
            "127.0.0.1"
        );
        assert_eq!(url_hostname("https://[::1]:80/x"), "::1");
    }
}
