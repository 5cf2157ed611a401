//! The launcher's walk of `<layers>`: for each buildpack of metadata.toml, in order, whose
//! `<layers>/<escaped id>` exists, every layer dir (sorted; the `launch` flag is not checked,
//! as in the reference) and what it holds for this process type.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::metadata::LaunchMetadata;
use crate::fsutil::{IoContext, PathError};
use crate::lifecycle::buildpack_toml::escape_id;
use crate::lifecycle::env::{read_env_dir, EnvFile};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerDir {
    pub path: PathBuf,
    /// Which of `bin` and `lib` exist.
    pub root_dirs: Vec<&'static str>,
    /// `env/`, `env.launch/`, then `env.launch/<type>/` (typed processes only).
    pub env_dirs: Vec<Vec<EnvFile>>,
    /// `exec.d/*`, then `exec.d/<type>/*`.
    pub execd: Vec<PathBuf>,
    /// `profile.d/*`, then `profile.d/<type>/*`.
    pub profiles: Vec<PathBuf>,
}

/// The layer dirs of the buildpacks that have a dir under `layers_dir`, buildpack by buildpack.
pub fn scan(
    layers_dir: &Path,
    md: &LaunchMetadata,
    process_type: &str,
) -> Result<Vec<Vec<LayerDir>>, PathError> {
    let mut out = Vec::new();
    for bp in &md.buildpacks {
        let dir = layers_dir.join(escape_id(&bp.id));
        match fs::metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            r => r.at("find buildpack directory", &dir)?,
        };
        let mut layers = Vec::new();
        for path in entries(&dir, true)? {
            layers.push(layer(path, process_type)?);
        }
        out.push(layers);
    }
    Ok(out)
}

fn layer(path: PathBuf, process_type: &str) -> Result<LayerDir, PathError> {
    // A dir named "" would be the base dir again, so an untyped process skips the typed ones.
    let typed = |base: &str| -> Vec<PathBuf> {
        let mut dirs = vec![path.join(base)];
        if !process_type.is_empty() {
            dirs.push(path.join(base).join(process_type));
        }
        dirs
    };
    let mut env_dirs = Vec::new();
    let mut env_paths = vec![path.join("env")];
    env_paths.extend(typed("env.launch"));
    for d in env_paths {
        env_dirs.push(read_env_dir(&d).at("read env dir", &d)?);
    }
    let files = |base: &str| -> Result<Vec<PathBuf>, PathError> {
        let mut all = Vec::new();
        for d in typed(base) {
            all.extend(entries(&d, false)?);
        }
        Ok(all)
    };
    Ok(LayerDir {
        root_dirs: ["bin", "lib"]
            .into_iter()
            .filter(|d| path.join(d).exists())
            .collect(),
        env_dirs,
        execd: files("exec.d")?,
        profiles: files("profile.d")?,
        path,
    })
}

/// Sorted entries of `dir` that are (`dirs`) or are not directories, by their own type (a
/// symlink is not followed). A missing dir has none.
fn entries(dir: &Path, dirs: bool) -> Result<Vec<PathBuf>, PathError> {
    let rd = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.at("list files in", dir)?,
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.at("list files in", dir)?;
        if e.file_type().at("stat", &e.path())?.is_dir() == dirs {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::metadata::Buildpack;
    use crate::lifecycle::api::ApiVersion;

    #[test]
    fn walks_buildpacks_in_order_and_layers_sorted() {
        let root = tempfile::tempdir().unwrap();
        let l = root.path();
        let mk = |rel: &str, body: Option<&str>| {
            let p = l.join(rel);
            match body {
                Some(b) => {
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(p, b).unwrap();
                }
                None => fs::create_dir_all(p).unwrap(),
            }
        };
        mk("b_two/z/bin", None);
        mk("b_two/a/lib", None);
        mk("b_two/a/env/X.append", Some("1"));
        mk("b_two/a/env.launch/X.append", Some("2"));
        mk("b_two/a/env.launch/web/X.append", Some("3"));
        mk("b_two/a/exec.d/2", Some(""));
        mk("b_two/a/exec.d/1", Some(""));
        mk("b_two/a/exec.d/web/0", Some(""));
        mk("b_two/a/exec.d/worker/9", Some(""));
        mk("b_two/a/profile.d/p", Some(""));
        mk("b_two/a/profile.d/web/q", Some(""));
        mk("b_two/a.toml", Some(""));
        mk("one/l/bin", None);
        let md = LaunchMetadata {
            buildpacks: ["one", "missing", "b/two"]
                .map(|id| Buildpack {
                    id: id.into(),
                    api: ApiVersion::new(0, 10),
                })
                .to_vec(),
            processes: Vec::new(),
        };
        let got = scan(l, &md, "web").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][0].path, l.join("one/l"));
        let (a, z) = (&got[1][0], &got[1][1]);
        assert_eq!(
            (a.path.clone(), z.path.clone()),
            (l.join("b_two/a"), l.join("b_two/z"))
        );
        assert_eq!(a.root_dirs, ["lib"]);
        assert_eq!(z.root_dirs, ["bin"]);
        let contents: Vec<_> = a.env_dirs.iter().map(|d| d[0].contents.clone()).collect();
        assert_eq!(contents, [b"1", b"2", b"3"]);
        let rel = |v: &[PathBuf]| -> Vec<String> {
            v.iter()
                .map(|p| {
                    p.strip_prefix(l.join("b_two/a"))
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(rel(&a.execd), ["exec.d/1", "exec.d/2", "exec.d/web/0"]);
        assert_eq!(rel(&a.profiles), ["profile.d/p", "profile.d/web/q"]);
        let untyped = scan(l, &md, "").unwrap();
        assert_eq!(untyped[1][0].env_dirs.len(), 2);
        assert_eq!(rel(&untyped[1][0].execd), ["exec.d/1", "exec.d/2"]);
    }
}
