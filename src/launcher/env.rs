//! The process environment (`cnb-lifecycle.md` §9.3, `lc:env/launch.go`), pure over what
//! [`super::layers::scan`] found: the launcher's own environment minus its `CNB_*` inputs,
//! then per buildpack all layer root dirs first and then all env files.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::layers::LayerDir;
use crate::lifecycle::env::{Action, Env, LAUNCH_ROOT_DIRS};

/// Launcher inputs that never reach the app.
pub const EXCLUDED: &[&str] = &[
    "CNB_LAYERS_DIR",
    "CNB_APP_DIR",
    "CNB_PROCESS_TYPE",
    "CNB_PLATFORM_API",
    "CNB_DEPRECATION_MODE",
];

pub const PROCESS_DIR: &str = "/cnb/process";
pub const LIFECYCLE_DIR: &str = "/cnb/lifecycle";

/// The base environment. `/cnb/process` and `/cnb/lifecycle` are dropped from anywhere in
/// `PATH` (the exporter puts them there so the entrypoint resolves).
pub fn base(environ: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
    let mut env = Env::default();
    for (k, v) in environ {
        // Non-UTF-8 names cannot be looked up by anyone here; they are dropped.
        let Ok(k) = k.into_string() else { continue };
        if EXCLUDED.contains(&k.as_str()) {
            continue;
        }
        let v = if k == "PATH" { strip_path(v) } else { v };
        env.set(&k, v);
    }
    env
}

fn strip_path(path: OsString) -> OsString {
    let kept: Vec<&[u8]> = path
        .as_bytes()
        .split(|&b| b == b':')
        .filter(|p| *p != PROCESS_DIR.as_bytes() && *p != LIFECYCLE_DIR.as_bytes())
        .collect();
    OsString::from_vec(kept.join(&b':'))
}

/// Applies each buildpack's layers: every layer's `bin`/`lib` first, then every layer's env
/// dirs. Unsuffixed env files override.
pub fn apply_layers(env: &mut Env, buildpacks: &[Vec<LayerDir>]) {
    for layers in buildpacks {
        for l in layers {
            env.add_root_dir_with(&l.path, &l.root_dirs, LAUNCH_ROOT_DIRS);
        }
        for l in layers {
            for files in &l.env_dirs {
                env.apply_dir(files, Action::Override);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::env::EnvFile;
    use std::path::PathBuf;

    #[test]
    fn base_drops_launcher_inputs_and_cnb_path_entries() {
        let env = base([
            (
                "PATH".into(),
                "/cnb/process:/bin:/cnb/lifecycle:/usr/bin:/cnb/process".into(),
            ),
            ("CNB_PLATFORM_API".into(), "0.12".into()),
            ("CNB_LAYERS_DIR".into(), "/layers".into()),
            ("CNB_APP_DIR".into(), "/workspace".into()),
            ("CNB_PROCESS_TYPE".into(), "web".into()),
            ("CNB_DEPRECATION_MODE".into(), "quiet".into()),
            ("CNB_USER_ID".into(), "1000".into()),
            ("EMPTY".into(), "".into()),
        ]);
        assert_eq!(env.get("PATH"), "/bin:/usr/bin");
        let keys: Vec<_> = env.vars().keys().cloned().collect();
        assert_eq!(keys, ["CNB_USER_ID", "EMPTY", "PATH"]);
    }

    #[test]
    fn root_dirs_of_a_buildpack_come_before_its_env_files() {
        let layer = |name: &str, roots: Vec<&'static str>, env: Vec<EnvFile>| LayerDir {
            path: PathBuf::from(format!("/l/bp/{name}")),
            root_dirs: roots,
            env_dirs: vec![env],
            ..LayerDir::default()
        };
        let mut env = base([("PATH".into(), "/bin".into())]);
        apply_layers(
            &mut env,
            &[
                vec![
                    // An env file of the first layer sees the second layer's bin already.
                    layer("a", vec!["bin", "lib"], vec![EnvFile::new("SEEN", "x")]),
                    layer(
                        "b",
                        vec!["bin"],
                        vec![EnvFile::new("PATH.prepend", "/first:")],
                    ),
                ],
                vec![layer("c", vec![], vec![EnvFile::new("SEEN.override", "y")])],
            ],
        );
        assert_eq!(env.get("PATH"), "/first:/l/bp/b/bin:/l/bp/a/bin:/bin");
        assert_eq!(env.get("LD_LIBRARY_PATH"), "/l/bp/a/lib");
        assert_eq!(env.get("LIBRARY_PATH"), "", "launch knows only bin and lib");
        assert_eq!(env.get("SEEN"), "y");
    }
}
