//! The `tiny` stack: build and run images around a static busybox and a non-root CNB user,
//! written reproducibly (fixed entries, owners, mtimes and `created`), so the same busybox
//! always gives the same two digests. The images share their single layer.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use serde::Deserialize;
use tar::EntryType;

use super::Error;
use crate::layer::{CompressOptions, Compression, TarOptions, TarWriter, NORMALIZED_MTIME};
use crate::oci::assemble::{push_layer, write_image, StoredLayer};
use crate::oci::config::rfc3339;
use crate::oci::{media, BlobStore, ImageConfig, RawManifest};

pub const LABEL_STACK_ID: &str = "io.buildpacks.stack.id";
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `images/stacks/tiny/stack.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub id: String,
    pub description: String,
    pub maintainer: String,
    pub homepage: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub applets: Vec<String>,
}

impl Definition {
    pub fn parse(text: &str, what: &str) -> Result<Self, Error> {
        let d: Definition = toml::from_str(text)
            .map_err(|e| Error::resource("stack definition", what, e.to_string()))?;
        let bad = d
            .applets
            .iter()
            .find(|a| a.is_empty() || a.contains('/') || *a == "busybox");
        if let Some(a) = bad {
            return Err(Error::resource(
                "stack definition",
                what,
                format!("invalid applet name {a:?}"),
            ));
        }
        if d.uid == 0 || d.gid == 0 {
            return Err(Error::resource(
                "stack definition",
                what,
                "the CNB user must not be root",
            ));
        }
        Ok(d)
    }
}

/// What to build the stack from.
#[derive(Clone, Debug)]
pub struct StackSpec {
    pub definition: Definition,
    /// A static busybox binary.
    pub busybox: PathBuf,
    /// Its version (`io.buildpacks.base.distro.version`, `VERSION_ID`), see [`busybox_version`].
    pub busybox_version: String,
    pub arch: String,
    pub compression: Compression,
}

/// The two images written.
#[derive(Clone, Debug)]
pub struct BuiltStack {
    pub build: RawManifest,
    pub run: RawManifest,
    pub layer: StoredLayer,
}

/// The version in busybox's banner (`BusyBox v1.35.0 (Debian …) multi-call binary.`).
pub fn busybox_version(banner: &str) -> Option<String> {
    let rest = banner.split("BusyBox v").nth(1)?;
    let v: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    (!v.is_empty()).then_some(v)
}

/// Write the build image to `build_store` under `build_tags` and the run image likewise.
pub fn build_stack(
    spec: &StackSpec,
    build_store: &dyn BlobStore,
    build_tags: &[String],
    run_store: &dyn BlobStore,
    run_tags: &[String],
) -> Result<BuiltStack, Error> {
    let io_err = |e: io::Error| Error::resource("stack", &spec.definition.id, e.to_string());
    let meta = std::fs::metadata(&spec.busybox).map_err(io_err)?;
    if !meta.is_file() {
        return Err(Error::resource(
            "stack",
            &spec.definition.id,
            format!("busybox {} is not a file", spec.busybox.display()),
        ));
    }
    let tar = TarOptions::default();
    let compress = CompressOptions::new(spec.compression);
    let fill = |t: &mut TarWriter<&mut dyn io::Write>| rootfs(t, spec);
    let layer = push_layer(build_store, &tar, &compress, media::OCI_MANIFEST, &fill)?;
    let build = write_image(
        build_store,
        &mut config(spec, Stage::Build),
        std::slice::from_ref(&layer),
        media::OCI_MANIFEST,
        build_tags,
    )?;
    // The same bytes again: the run image may go to another store (registry or layout).
    let run_layer = push_layer(run_store, &tar, &compress, media::OCI_MANIFEST, &fill)?;
    let run = write_image(
        run_store,
        &mut config(spec, Stage::Run),
        &[run_layer],
        media::OCI_MANIFEST,
        run_tags,
    )?;
    Ok(BuiltStack { build, run, layer })
}

/// Which of a stack's two images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Build,
    Run,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::Run => "run",
        }
    }
}

/// Where every stack image's config starts: fixed `created`, PATH then `env` (in order), the
/// CNB user as the image user with its home as working dir, and on build images the CNB_* env.
pub(super) fn base_config(
    arch: &str,
    stack: (&str, &str, u32, u32),
    env: &[(&str, &str)],
    stage: Stage,
) -> ImageConfig {
    let (id, user, uid, gid) = stack;
    let mut cfg = ImageConfig::new("linux", arch);
    cfg.set_created(Some(&rfc3339(NORMALIZED_MTIME as i64)));
    cfg.set_env("PATH", PATH);
    for (k, v) in env {
        cfg.set_env(k, v);
    }
    cfg.set_user(Some(&format!("{uid}:{gid}")));
    cfg.set_working_dir(Some(&format!("/home/{user}")));
    if stage == Stage::Build {
        cfg.set_env("CNB_USER_ID", &uid.to_string());
        cfg.set_env("CNB_GROUP_ID", &gid.to_string());
        cfg.set_env("CNB_STACK_ID", id);
    }
    cfg
}

fn config(spec: &StackSpec, stage: Stage) -> ImageConfig {
    let d = &spec.definition;
    let mut cfg = base_config(&spec.arch, (&d.id, &d.user, d.uid, d.gid), &[], stage);
    let stage_name = stage.name();
    let labels = [
        (LABEL_STACK_ID, d.id.clone()),
        ("io.buildpacks.stack.mixins", "[]".to_string()),
        ("io.buildpacks.stack.maintainer", d.maintainer.clone()),
        ("io.buildpacks.stack.homepage", d.homepage.clone()),
        (
            "io.buildpacks.stack.description",
            format!("{} ({stage_name} image)", d.description),
        ),
        ("io.buildpacks.stack.distro.name", "busybox".to_string()),
        (
            "io.buildpacks.stack.distro.version",
            spec.busybox_version.clone(),
        ),
        ("io.buildpacks.base.maintainer", d.maintainer.clone()),
        ("io.buildpacks.base.homepage", d.homepage.clone()),
        (
            "io.buildpacks.base.description",
            format!("{} ({stage_name} image)", d.description),
        ),
        ("io.buildpacks.base.distro.name", "busybox".to_string()),
        (
            "io.buildpacks.base.distro.version",
            spec.busybox_version.clone(),
        ),
    ];
    for (k, v) in labels {
        cfg.set_label(k, &v);
    }
    cfg
}

/// Entries in byte order of their names, parents first.
fn rootfs(t: &mut TarWriter<&mut dyn io::Write>, spec: &StackSpec) -> io::Result<()> {
    let d = &spec.definition;
    let (uid, gid) = (u64::from(d.uid), u64::from(d.gid));
    t.dir_entry(b"bin", 0o755, 0, 0)?;
    let mut bin: Vec<&str> = d.applets.iter().map(String::as_str).collect();
    bin.push("busybox");
    bin.sort_unstable();
    bin.dedup();
    for name in bin {
        let path = format!("bin/{name}");
        if name == "busybox" {
            t.file_from(path.as_bytes(), 0o755, File::open(&spec.busybox)?)?;
        } else {
            t.link_entry(EntryType::Symlink, path.as_bytes(), b"busybox", 0o777)?;
        }
    }
    t.dir_entry(b"etc", 0o755, 0, 0)?;
    let group = format!("root:x:0:\n{}:x:{}:\n", d.user, d.gid);
    t.file_entry(b"etc/group", 0o644, group.as_bytes())?;
    // Platform API 0.12+ lifecycles read the distribution from os-release.
    let os_release = format!(
        "ID=busybox\nVERSION_ID={}\nNAME=\"BusyBox\"\nPRETTY_NAME=\"BusyBox {} ({})\"\n",
        spec.busybox_version, spec.busybox_version, d.id
    );
    t.file_entry(b"etc/os-release", 0o644, os_release.as_bytes())?;
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\n{u}:x:{}:{}:{u}:/home/{u}:/bin/sh\n",
        d.uid,
        d.gid,
        u = d.user
    );
    t.file_entry(b"etc/passwd", 0o644, passwd.as_bytes())?;
    t.dir_entry(b"home", 0o755, 0, 0)?;
    t.dir_entry(format!("home/{}", d.user).as_bytes(), 0o755, uid, gid)?;
    t.dir_entry(b"root", 0o700, 0, 0)?;
    t.dir_entry(b"tmp", 0o1777, 0, 0)?;
    t.dir_entry(b"usr", 0o755, 0, 0)?;
    t.dir_entry(b"usr/bin", 0o755, 0, 0)?;
    // `#!/usr/bin/env sh` is the usual shebang of buildpack scripts.
    t.link_entry(
        EntryType::Symlink,
        b"usr/bin/env",
        b"../../bin/busybox",
        0o777,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFINITION: &str = include_str!("../../images/stacks/tiny/stack.toml");

    #[test]
    fn version_from_the_banner() {
        let banner = "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\nBusyBox is copyrighted";
        assert_eq!(busybox_version(banner).as_deref(), Some("1.35.0"));
        assert_eq!(busybox_version("toybox 0.8.9"), None);
    }

    #[test]
    fn the_definition_parses_and_is_checked() {
        let d = Definition::parse(DEFINITION, "stack.toml").unwrap();
        assert_eq!(d.id, "io.buildpacks.stacks.tiny");
        assert_eq!((d.uid, d.gid), (1000, 1000));
        assert!(d.applets.iter().any(|a| a == "sh"));
        let root = DEFINITION.replace("uid = 1000", "uid = 0");
        assert_eq!(
            Definition::parse(&root, "x").unwrap_err().to_string(),
            "stack definition x: the CNB user must not be root"
        );
        let escape = DEFINITION.replace("\"sh\",", "\"../sh\",");
        assert_eq!(
            Definition::parse(&escape, "x").unwrap_err().to_string(),
            "stack definition x: invalid applet name \"../sh\""
        );
        let unknown = format!("{DEFINITION}\nextra = 1\n");
        assert!(Definition::parse(&unknown, "x").is_err());
    }
}
