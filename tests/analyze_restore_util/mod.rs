//! Shared setup for the analyzer and restorer tests: a registry, a run image with target
//! labels, a build's layers dir, and running the `lifecycle` binary.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use buildpod::export::layers::{Planned, Source};
use buildpod::layer::{CompressOptions, Compression};
use buildpod::oci::assemble::{push_layer_with, write_image, StoredLayer};
use buildpod::oci::{media, ImageConfig, RawManifest};
use buildpod::registry::{Client, ClientOptions, Repo};

use crate::common;
use crate::support::registry::Registry;

pub fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

pub struct World {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub reg: Registry,
    pub client: Arc<Client>,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::create_dir_all(root.join("layers")).unwrap();
        World {
            _tmp: tmp,
            root,
            reg: Registry::plain(),
            client: Client::new(ClientOptions::default()).unwrap(),
        }
    }

    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn host(&self) -> String {
        self.reg.host()
    }

    pub fn repo(&self, name: &str) -> Repo {
        Repo::new(self.client.clone(), &self.host(), name)
    }

    /// `<registry>/stack/run:1`, linux/amd64 with distro and id labels.
    pub fn push_run_image(&self) -> RawManifest {
        let rootfs = self.root.join("rootfs");
        write(&rootfs.join("etc/os-release"), "ID=ubuntu\n");
        let repo = self.repo("stack/run");
        let layer = common::dir_layer(&repo, &rootfs, Compression::Gzip, 2);
        let mut cfg = ImageConfig::new("linux", "amd64");
        cfg.set_label("io.buildpacks.base.distro.name", "ubuntu");
        cfg.set_label("io.buildpacks.base.distro.version", "24.04");
        cfg.set_label("io.buildpacks.base.id", "acme.stack");
        write_image(
            &repo,
            &mut cfg,
            &[layer],
            media::OCI_MANIFEST,
            &["1".to_string()],
        )
        .unwrap()
    }

    /// A layer of `dir` as the exporter writes it (absolute names), pushed to `repo`.
    pub fn dir_layer(&self, repo: &Repo, dir: &Path) -> StoredLayer {
        let p = Planned {
            id: String::new(),
            created_by: String::new(),
            source: Source::Dir(dir.to_path_buf()),
            previous_shas: Vec::new(),
            uid: 0,
            gid: 0,
        };
        push_layer_with(
            repo,
            &CompressOptions::new(Compression::Gzip),
            media::OCI_MANIFEST,
            &|w| p.write(w).map(|_| ()),
        )
        .unwrap()
    }

    /// Runs `lifecycle <phase>` with `CNB_PLATFORM_API=api`; (exit code, stdout + stderr).
    pub fn lifecycle(&self, phase: &str, api: &str, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
            .arg(phase)
            .env("CNB_PLATFORM_API", api)
            .env("HOME", &self.root)
            .env_remove("DOCKER_CONFIG")
            .env_remove("CNB_REGISTRY_AUTH")
            .env_remove("CNB_USER_ID")
            .env_remove("CNB_GROUP_ID")
            .arg("-layers")
            .arg(self.layers())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}
