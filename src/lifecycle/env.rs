//! Build-time environment: the scrubbed base, env-file suffix rules, layer root dirs and
//! user/operator overrides. The layering is pure; reading env dirs is the only I/O.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Variables a buildpack inherits from the lifecycle's own environment; everything else
/// (LANG, USER, CNB_PLATFORM_API, ...) is dropped.
pub const PASS_THROUGH: &[&str] = &[
    "CNB_STACK_ID",
    "HOSTNAME",
    "HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "PATH",
    "LD_LIBRARY_PATH",
    "LIBRARY_PATH",
    "CPATH",
    "PKG_CONFIG_PATH",
];

/// Path-list variables a user's `<platform>/env` file prepends to instead of replacing.
pub const POSIX_PATH_VARS: &[&str] = &[
    "PATH",
    "LD_LIBRARY_PATH",
    "LIBRARY_PATH",
    "CPATH",
    "PKG_CONFIG_PATH",
];

/// Layer subdirs and the path variables each one is prepended to.
pub type RootDirs = [(&'static str, &'static [&'static str])];

/// Build layers (`lc:env/build.go`).
pub const BUILD_ROOT_DIRS: &RootDirs = &[
    ("bin", &["PATH"]),
    ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"]),
    ("include", &["CPATH"]),
    ("pkgconfig", &["PKG_CONFIG_PATH"]),
];

/// At launch only `bin` and `lib` count (`lc:env/launch.go`).
pub const LAUNCH_ROOT_DIRS: &RootDirs = &[("bin", &["PATH"]), ("lib", &["LD_LIBRARY_PATH"])];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Override,
    Default,
    Append,
    Prepend,
}

/// One regular file of an env dir: its file name and exact contents (never trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub name: String,
    pub contents: Vec<u8>,
}

impl EnvFile {
    pub fn new(name: &str, contents: &str) -> Self {
        Self {
            name: name.into(),
            contents: contents.as_bytes().to_vec(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
}

impl Env {
    /// The scrubbed base from the lifecycle's environment.
    pub fn scrubbed(from: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let vars = from
            .into_iter()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                PASS_THROUGH.contains(&k.as_str()).then_some((k, v))
            })
            .collect();
        Self { vars }
    }

    pub fn get(&self, name: &str) -> &OsStr {
        self.vars
            .get(name)
            .map(OsString::as_os_str)
            .unwrap_or_default()
    }

    pub fn set(&mut self, name: &str, value: impl Into<OsString>) {
        self.vars.insert(name.to_string(), value.into());
    }

    pub fn vars(&self) -> &BTreeMap<String, OsString> {
        &self.vars
    }

    fn join(&mut self, name: &str, value: &[u8], delim: &[u8], prepend: bool) {
        let old = self.get(name).as_bytes();
        let new = if old.is_empty() {
            value.to_vec()
        } else if prepend {
            [value, delim, old].concat()
        } else {
            [old, delim, value].concat()
        };
        self.vars.insert(name.into(), OsString::from_vec(new));
    }

    /// Prepends `dir` to a `:`-separated path variable.
    pub fn prepend_path(&mut self, name: &str, dir: &Path) {
        self.join(name, dir.as_os_str().as_bytes(), b":", true);
    }

    /// Adds a build layer's `bin`, `lib`, `include` and `pkgconfig` dirs (those in `existing`).
    /// Every step prepends, so later layers end up first, as in the reference lifecycle.
    pub fn add_root_dir(&mut self, layer: &Path, existing: &[&str]) {
        self.add_root_dir_with(layer, existing, BUILD_ROOT_DIRS);
    }

    /// [`Env::add_root_dir`] with another map of layer subdirs to path variables.
    pub fn add_root_dir_with(&mut self, layer: &Path, existing: &[&str], map: &RootDirs) {
        for (sub, vars) in map {
            if existing.contains(sub) {
                for var in *vars {
                    self.prepend_path(var, &layer.join(sub));
                }
            }
        }
    }

    /// Applies an env dir with suffix rules: the variable is the file name up to the first
    /// `.`, the rest picks the action; `<NAME>.delim` supplies the join delimiter (none if
    /// absent); unknown suffixes are ignored.
    pub fn apply_dir(&mut self, files: &[EnvFile], default: Action) {
        for f in files {
            let (name, suffix) = match f.name.split_once('.') {
                Some((n, s)) => (n, Some(s)),
                None => (f.name.as_str(), None),
            };
            let action = match suffix {
                None => default,
                Some("override") => Action::Override,
                Some("default") => Action::Default,
                Some("append") => Action::Append,
                Some("prepend") => Action::Prepend,
                Some(_) => continue,
            };
            let delim = files
                .iter()
                .find(|d| d.name.strip_suffix(".delim") == Some(name))
                .map(|d| d.contents.as_slice())
                .unwrap_or_default();
            match action {
                Action::Override => self.set(name, OsString::from_vec(f.contents.clone())),
                Action::Default => {
                    if self.get(name).is_empty() {
                        self.set(name, OsString::from_vec(f.contents.clone()));
                    }
                }
                Action::Append => self.join(name, &f.contents, delim, false),
                Action::Prepend => self.join(name, &f.contents, delim, true),
            }
        }
    }

    /// `<platform>/env` user variables: the whole file name is the variable; path variables
    /// are prepended with `:`, anything else is replaced.
    pub fn apply_platform(&mut self, files: &[EnvFile]) {
        for f in files {
            if POSIX_PATH_VARS.contains(&f.name.as_str()) {
                self.join(&f.name, &f.contents, b":", true);
            } else {
                self.set(&f.name, OsString::from_vec(f.contents.clone()));
            }
        }
    }
}

/// Reads the regular files of an env dir (symlinks followed, subdirs skipped), sorted by name.
/// A missing dir is empty.
pub fn read_env_dir(dir: &Path) -> io::Result<Vec<EnvFile>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry?;
        let path = entry.path();
        if !std::fs::metadata(&path)?.is_file() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        out.push(EnvFile {
            name,
            contents: std::fs::read(&path)?,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut e = Env::default();
        for (k, v) in pairs {
            e.set(k, *v);
        }
        e
    }

    #[test]
    fn suffix_rules_match_reference() {
        let mut e = env(&[("A", "a"), ("P", "p"), ("O", "o"), ("D", "d"), ("AD", "x")]);
        e.apply_dir(
            &[
                EnvFile::new("A.append", "1"),
                EnvFile::new("AD.append", "y"),
                EnvFile::new("AD.delim", ":"),
                EnvFile::new("D.default", "no"),
                EnvFile::new("E.default", "yes"),
                EnvFile::new("N", "plain\n"),
                EnvFile::new("O.override", "new"),
                EnvFile::new("P.prepend", "0"),
                EnvFile::new("Q.foo.append", "ignored"),
                EnvFile::new("R.ignore", "ignored"),
            ],
            Action::Override,
        );
        assert_eq!(e.get("A"), "a1", "no .delim means no delimiter");
        assert_eq!(e.get("AD"), "x:y");
        assert_eq!(e.get("D"), "d");
        assert_eq!(e.get("E"), "yes");
        assert_eq!(e.get("N"), "plain\n", "contents are not trimmed");
        assert_eq!(e.get("O"), "new");
        assert_eq!(e.get("P"), "0p");
        assert_eq!(e.get("Q"), "");
        assert_eq!(e.get("R"), "");
    }

    #[test]
    fn build_config_unsuffixed_is_default() {
        let mut e = env(&[("X", "keep")]);
        e.apply_dir(
            &[EnvFile::new("X", "no"), EnvFile::new("Y", "yes")],
            Action::Default,
        );
        assert_eq!(e.get("X"), "keep");
        assert_eq!(e.get("Y"), "yes");
    }

    #[test]
    fn root_dirs_prepend_and_platform_env() {
        let mut e = env(&[("PATH", "/usr/bin")]);
        e.add_root_dir(Path::new("/l/a"), &["bin", "lib"]);
        e.add_root_dir(Path::new("/l/b"), &["bin"]);
        assert_eq!(e.get("PATH"), "/l/b/bin:/l/a/bin:/usr/bin");
        assert_eq!(e.get("LIBRARY_PATH"), "/l/a/lib");
        e.apply_platform(&[EnvFile::new("PATH", "/u"), EnvFile::new("X.append", "v")]);
        assert_eq!(e.get("PATH"), "/u:/l/b/bin:/l/a/bin:/usr/bin");
        assert_eq!(e.get("X.append"), "v");
    }

    #[test]
    fn scrub_keeps_only_allowed() {
        let e = Env::scrubbed([
            ("PATH".into(), "/bin".into()),
            ("LANG".into(), "C".into()),
            ("CNB_PLATFORM_API".into(), "0.12".into()),
        ]);
        assert_eq!(e.vars().len(), 1);
    }
}
