//! Targets: what a buildpack supports, what the run image is, matching, and `CNB_TARGET_*`.

use std::path::Path;

use super::tomlr::{self, Fields, TomlError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distro {
    pub name: String,
    pub version: String,
}

/// A buildpack's declared target; empty fields are wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub os: String,
    pub arch: String,
    pub arch_variant: String,
    pub distros: Vec<Distro>,
}

/// The target being built for (run image), as in analyzed.toml `[run-image.target]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTarget {
    pub id: String,
    pub os: String,
    pub arch: String,
    pub arch_variant: String,
    pub distro: Option<Distro>,
}

fn field_matches(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a == b
}

impl Target {
    /// Empty on either side is a wildcard; a buildpack listing distros needs one to match.
    pub fn satisfied_by(&self, run: &RunTarget) -> bool {
        if !(field_matches(&self.os, &run.os)
            && field_matches(&self.arch, &run.arch)
            && field_matches(&self.arch_variant, &run.arch_variant))
        {
            return false;
        }
        if self.distros.is_empty() {
            return true;
        }
        let Some(rd) = &run.distro else {
            return false;
        };
        self.distros
            .iter()
            .any(|d| field_matches(&d.name, &rd.name) && field_matches(&d.version, &rd.version))
    }
}

/// A buildpack with no targets supports everything; otherwise one must match.
pub fn any_satisfied(targets: &[Target], run: &RunTarget) -> bool {
    targets.is_empty() || targets.iter().any(|t| t.satisfied_by(run))
}

/// Go's GOARCH name for the architecture we run on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `ID` and `VERSION_ID` from an os-release file's contents.
pub fn parse_os_release(text: &str) -> Option<Distro> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => name = Some(v),
            "VERSION_ID" => version = Some(v),
            _ => {}
        }
    }
    Some(Distro {
        name: name?,
        version: version.unwrap_or_default(),
    })
}

impl RunTarget {
    /// Fills what the platform did not tell us from the build container, like the reference
    /// lifecycle: os defaults to linux, arch to ours, distro from `os_release` contents.
    pub fn filled(mut self, os_release: Option<&str>) -> Self {
        if self.os.is_empty() {
            self.os = "linux".into();
        }
        if self.arch.is_empty() {
            self.arch = host_arch().into();
        }
        if self.distro.is_none() {
            self.distro = os_release.and_then(parse_os_release);
        }
        self
    }

    /// The `CNB_TARGET_*` variables (Buildpack API >= 0.10). libcnb.rs insists on the distro
    /// variables too, so they are set (possibly empty) whenever the os is.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("CNB_TARGET_OS".to_string(), self.os.clone()),
            ("CNB_TARGET_ARCH".to_string(), self.arch.clone()),
        ];
        if !self.arch_variant.is_empty() {
            v.push(("CNB_TARGET_ARCH_VARIANT".into(), self.arch_variant.clone()));
        }
        let d = self.distro.clone().unwrap_or_default();
        v.push(("CNB_TARGET_DISTRO_NAME".into(), d.name));
        v.push(("CNB_TARGET_DISTRO_VERSION".into(), d.version));
        v
    }
}

/// Reads `[run-image.target]` from analyzed.toml. A missing file is `Ok(None)`.
pub fn read_analyzed_target(path: &Path) -> Result<Option<RunTarget>, TomlError> {
    let table = match tomlr::read(path) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let root = Fields::root(path, &table);
    let Some(ri) = root.table("run-image")? else {
        return Ok(None);
    };
    root.child("run-image", ri, |f| {
        let Some(t) = f.table("target")? else {
            return Ok(None);
        };
        f.child("target", t, |g| {
            let distro = match g.table("distro")? {
                Some(d) => Some(g.child("distro", d, |h| {
                    Ok(Distro {
                        name: h.str_or_empty("name")?,
                        version: h.str_or_empty("version")?,
                    })
                })?),
                None => None,
            };
            Ok(Some(RunTarget {
                id: g.str_or_empty("id")?,
                os: g.str_or_empty("os")?,
                arch: g.str_or_empty("arch")?,
                arch_variant: g.str_or_empty("arch-variant")?,
                distro,
            }))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(os: &str, arch: &str, distro: Option<(&str, &str)>) -> RunTarget {
        RunTarget {
            os: os.into(),
            arch: arch.into(),
            distro: distro.map(|(n, v)| Distro {
                name: n.into(),
                version: v.into(),
            }),
            ..RunTarget::default()
        }
    }

    #[test]
    fn matching_uses_wildcards() {
        let t = Target {
            os: "linux".into(),
            arch: "amd64".into(),
            ..Target::default()
        };
        assert!(t.satisfied_by(&run("linux", "amd64", None)));
        assert!(!t.satisfied_by(&run("linux", "arm64", None)));
        assert!(t.satisfied_by(&run("linux", "", None)));
        let with_distro = Target {
            distros: vec![Distro {
                name: "ubuntu".into(),
                version: String::new(),
            }],
            ..t
        };
        assert!(with_distro.satisfied_by(&run("linux", "amd64", Some(("ubuntu", "24.04")))));
        assert!(!with_distro.satisfied_by(&run("linux", "amd64", Some(("debian", "12")))));
        assert!(!with_distro.satisfied_by(&run("linux", "amd64", None)));
        assert!(any_satisfied(&[], &run("windows", "", None)));
    }

    #[test]
    fn fills_from_os_release() {
        let r =
            RunTarget::default().filled(Some("NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n"));
        assert_eq!(r.os, "linux");
        assert_eq!(r.distro.unwrap().version, "12");
    }
}
