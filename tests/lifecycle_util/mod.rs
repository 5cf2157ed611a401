//! Shared helpers for the lifecycle tests: a scratch "container" layout (app, layers, platform,
//! buildpacks) and bash buildpacks generated on the fly, run through the real binary.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct World {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub platform_api: String,
}

pub struct Run {
    pub code: i32,
    pub out: String,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        // Traversable by a dropped build user in the root tests.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["app", "layers", "platform", "buildpacks"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        Self {
            _dir: dir,
            root,
            platform_api: "0.12".into(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        let p = self.path(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    fn script(&self, rel: &str, body: &str) {
        let p = self.write(
            rel,
            &format!("#!/usr/bin/env bash\nset -eo pipefail\n{body}\n"),
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[allow(clippy::too_many_arguments)]
    /// A component buildpack: `extra` is appended to `[buildpack]` (e.g. `clear-env = true`)
    /// and `tail` after it (e.g. `[[targets]]`).
    pub fn bp_full(
        &self,
        id: &str,
        version: &str,
        api: &str,
        extra: &str,
        tail: &str,
        detect: &str,
        build: &str,
    ) -> PathBuf {
        let dir = format!("buildpacks/{}/{version}", id.replace('/', "_"));
        self.write(
            &format!("{dir}/buildpack.toml"),
            &format!("api = \"{api}\"\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\n{extra}\n{tail}\n"),
        );
        self.script(&format!("{dir}/bin/detect"), detect);
        self.script(&format!("{dir}/bin/build"), build);
        self.path(&dir)
    }

    pub fn bp(&self, id: &str, version: &str, api: &str, detect: &str, build: &str) -> PathBuf {
        self.bp_full(id, version, api, "", "", detect, build)
    }

    /// A buildpack that passes detect with `plan` as its build plan and builds nothing.
    pub fn bp_plan(&self, id: &str, version: &str, plan: &str) {
        let detect = if plan.is_empty() {
            String::new()
        } else {
            format!("cat > \"$CNB_BUILD_PLAN_PATH\" <<'PLAN'\n{plan}\nPLAN")
        };
        self.bp(id, version, "0.10", &detect, "");
    }

    pub fn composite(&self, id: &str, version: &str, order: &str) {
        self.write(
            &format!(
                "buildpacks/{}/{version}/buildpack.toml",
                id.replace('/', "_")
            ),
            &format!(
                "api = \"0.10\"\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\n\n{order}\n"
            ),
        );
    }

    /// order.toml from groups of `id@version` (a `?` suffix marks optional).
    pub fn order(&self, groups: &[&[&str]]) {
        self.write("order.toml", &order_toml("order", groups));
    }

    pub fn cmd(&self, phase: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifecycle"));
        c.arg(phase)
            .arg("-app")
            .arg(self.path("app"))
            .arg("-layers")
            .arg(self.path("layers"))
            .arg("-buildpacks")
            .arg(self.path("buildpacks"))
            .arg("-platform")
            .arg(self.path("platform"))
            .args(args)
            .env("CNB_PLATFORM_API", &self.platform_api)
            .env_remove("CNB_USER_ID")
            .env_remove("CNB_GROUP_ID")
            .env_remove("CNB_LOG_LEVEL")
            // cargo sets these for the test process; buildpacks would inherit them.
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LIBRARY_PATH");
        if phase == "detector" {
            c.arg("-order").arg(self.path("order.toml"));
        }
        c
    }

    pub fn run_cmd(mut c: Command) -> Run {
        let o = c.output().unwrap();
        let out =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        Run {
            code: o.status.code().unwrap_or(-1),
            out,
        }
    }

    pub fn detector(&self, args: &[&str]) -> Run {
        Self::run_cmd(self.cmd("detector", args))
    }

    pub fn builder(&self, args: &[&str]) -> Run {
        Self::run_cmd(self.cmd("builder", args))
    }

    /// Writes group.toml and plan.toml directly, skipping detection.
    pub fn group(&self, entries: &[(&str, &str, &str)]) {
        let mut s = String::new();
        for (id, version, api) in entries {
            s += &format!("[[group]]\nid = \"{id}\"\nversion = \"{version}\"\napi = \"{api}\"\n\n");
        }
        self.write("layers/group.toml", &s);
        if !self.exists("layers/plan.toml") {
            self.write("layers/plan.toml", "");
        }
    }
}

pub fn order_toml(key: &str, groups: &[&[&str]]) -> String {
    let mut s = String::new();
    for g in groups {
        s += &format!("[[{key}]]\n");
        for e in *g {
            let (e, optional) = match e.strip_suffix('?') {
                Some(e) => (e, true),
                None => (*e, false),
            };
            let (id, version) = e.split_once('@').unwrap();
            s += &format!("  [[{key}.group]]\n    id = \"{id}\"\n    version = \"{version}\"\n");
            if optional {
                s += "    optional = true\n";
            }
        }
    }
    s
}

pub fn assert_code(r: &Run, code: i32) {
    assert_eq!(r.code, code, "exit code; output:\n{}", r.out);
}

/// Parses TOML for order-insensitive comparisons.
pub fn toml_value(s: &str) -> toml::Table {
    s.parse().unwrap()
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

pub fn _unused(_: &Path) {}
