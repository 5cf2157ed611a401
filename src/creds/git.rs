//! Git credentials from `-basic-git name=domain` and `-ssh-git name=domain` secrets, chosen as
//! kpack does: secrets sorted by name, the first whose annotation matches the URL's host wins,
//! and the ssh user is always `git`.

use std::fmt;
use std::path::PathBuf;

use super::{read_optional, read_secret_file, split_secret_arg};
use crate::kpack::paths::Paths;

#[derive(Clone, PartialEq, Eq)]
pub enum GitAuth {
    Basic {
        secret: String,
        username: String,
        password: String,
    },
    Ssh {
        secret: String,
        private_key: String,
        /// `known_hosts` from the secret, if present.
        known_hosts: Option<String>,
    },
}

impl GitAuth {
    pub fn secret(&self) -> &str {
        match self {
            GitAuth::Basic { secret, .. } | GitAuth::Ssh { secret, .. } => secret,
        }
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitAuth::Basic {
                secret, username, ..
            } => write!(f, "Basic(secret={secret}, user={username}, <redacted>)"),
            GitAuth::Ssh { secret, .. } => write!(f, "Ssh(secret={secret}, <redacted>)"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Basic,
    Ssh,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    domain: String,
    kind: Kind,
}

/// The mounted git secrets.
#[derive(Clone, Debug)]
pub struct GitKeychain {
    dir: PathBuf,
    paths: Paths,
    entries: Vec<Entry>,
}

/// A parsed git URL: scheme (`https`, `http`, `ssh`, `git`, `file`) and host with port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitUrl {
    pub scheme: String,
    pub host: String,
}

/// Parse a git URL, including scp-like `user@host:path` (scheme `ssh`).
pub fn parse_git_url(url: &str) -> Option<GitUrl> {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        return Some(GitUrl {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_string(),
        });
    }
    // scp-like: [user@]host:path, where the host has no '/' before the ':'.
    let (before, _) = url.split_once(':')?;
    if before.contains('/') || before.is_empty() {
        return None;
    }
    let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
    Some(GitUrl {
        scheme: "ssh".into(),
        host: host.to_string(),
    })
}

fn host_matches(annotation: &str, host: &str) -> bool {
    annotation == host
        || annotation == format!("https://{host}")
        || annotation == format!("http://{host}")
        || annotation == format!("git@{host}")
}

impl GitKeychain {
    pub fn new(paths: &Paths, basic: &[String], ssh: &[String]) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (args, kind) in [(basic, Kind::Basic), (ssh, Kind::Ssh)] {
            for a in args {
                let (name, domain) = split_secret_arg(a)
                    .ok_or_else(|| format!("could not parse git secret argument {a}"))?;
                entries.push(Entry {
                    name: name.into(),
                    domain: domain.into(),
                    kind,
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            dir: paths.build_secrets(),
            paths: paths.clone(),
            entries,
        })
    }

    /// The credentials for `url`, read from the secret volume now; `None` means anonymous.
    pub fn resolve(&self, url: &str) -> Result<Option<GitAuth>, String> {
        let Some(u) = parse_git_url(url) else {
            return Ok(None);
        };
        let want = match u.scheme.as_str() {
            "http" | "https" => Kind::Basic,
            "ssh" => Kind::Ssh,
            _ => return Ok(None),
        };
        let Some(e) = self
            .entries
            .iter()
            .find(|e| e.kind == want && host_matches(&e.domain, &u.host))
        else {
            return Ok(None);
        };
        let dir = self.dir.join(&e.name);
        let shown = |f: &str| PathBuf::from(self.paths.shown(&dir.join(f)));
        Ok(Some(match e.kind {
            Kind::Basic => GitAuth::Basic {
                secret: e.name.clone(),
                username: read_secret_file(&dir.join("username"), &shown("username"))?,
                password: read_secret_file(&dir.join("password"), &shown("password"))?,
            },
            Kind::Ssh => GitAuth::Ssh {
                secret: e.name.clone(),
                private_key: read_secret_file(
                    &dir.join("ssh-privatekey"),
                    &shown("ssh-privatekey"),
                )?,
                known_hosts: read_optional(&dir.join("known_hosts"), &shown("known_hosts"))?,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, GitKeychain) {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("var/build-secrets");
        for (n, files) in [
            ("b-basic", vec![("username", "bu"), ("password", "bp")]),
            ("a-basic", vec![("username", "au"), ("password", "ap")]),
            (
                "c-ssh",
                vec![("ssh-privatekey", "KEY"), ("known_hosts", "KH")],
            ),
            ("d-ssh", vec![("ssh-privatekey", "KEY2")]),
        ] {
            std::fs::create_dir_all(s.join(n)).unwrap();
            for (f, c) in files {
                std::fs::write(s.join(n).join(f), c).unwrap();
            }
        }
        let k = GitKeychain::new(
            &Paths::under(t.path()),
            &[
                "b-basic=https://github.com".into(),
                "a-basic=github.com".into(),
                "x-basic=git@gitlab.com".into(),
            ],
            &[
                "d-ssh=git@bitbucket.org".into(),
                "c-ssh=github.com:2222".into(),
            ],
        )
        .unwrap();
        (t, k)
    }

    // Ported from kpack's git_keychain_test / url_parser_test.
    #[test]
    fn selection_follows_kpack() {
        let (_t, k) = setup();
        let r = |u: &str| k.resolve(u).unwrap().map(|a| a.secret().to_string());
        // Sorted by secret name: a-basic before b-basic.
        assert_eq!(r("https://github.com/org/repo").as_deref(), Some("a-basic"));
        assert_eq!(r("http://github.com/org/repo").as_deref(), Some("a-basic"));
        assert_eq!(r("https://github.com:443/org/repo"), None);
        assert_eq!(
            r("git@bitbucket.org:org/repo.git").as_deref(),
            Some("d-ssh")
        );
        assert_eq!(
            r("ssh://git@github.com:2222/org/repo").as_deref(),
            Some("c-ssh")
        );
        assert_eq!(r("git@github.com:org/repo"), None);
        assert_eq!(r("https://other.io/x"), None);
        match k.resolve("ssh://git@github.com:2222/r").unwrap().unwrap() {
            GitAuth::Ssh { known_hosts, .. } => assert_eq!(known_hosts.as_deref(), Some("KH")),
            other => panic!("{other:?}"),
        }
        // A missing secret file is reported when the secret is used.
        let e = k.resolve("https://gitlab.com/x").unwrap_err();
        assert!(
            e.ends_with("/var/build-secrets/x-basic/username: no such file or directory"),
            "{e}"
        );
        assert!(GitKeychain::new(&Paths::kpack(), &["bad".into()], &[])
            .unwrap_err()
            .contains("could not parse git secret argument bad"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_git_url("git@github.com:org/repo.git"),
            Some(GitUrl {
                scheme: "ssh".into(),
                host: "github.com".into()
            })
        );
        assert_eq!(
            parse_git_url("https://user@host:8443/x").unwrap().host,
            "host:8443"
        );
        assert_eq!(parse_git_url("/local/path"), None);
        assert_eq!(parse_git_url("file:///tmp/r").unwrap().scheme, "file");
    }

    #[test]
    fn debug_hides_secrets() {
        let a = GitAuth::Basic {
            secret: "s".into(),
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
