//! Selecting one OS's lifecycle out of lifecycle images in a real registry and in OCI layouts:
//! by OS label, by index platform, by last layer; the failures users see; malicious layers.

mod clusterlifecycle_util;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use buildpod::clusterlifecycle::source::Outcome;
use buildpod::clusterlifecycle::{install, Method, Source};
use buildpod::oci::layout::Layout;
use buildpod::oci::location::Location;
use buildpod::oci::PlatformSpec;
use buildpod::registry::{Client, ClientOptions, Repo};
use clusterlifecycle_util::{self as u, listing, E};
use support::registry::Registry;

const PHASES: &[&str] = &[
    "analyzer", "builder", "creator", "detector", "exporter", "rebaser", "restorer",
];

fn client() -> Arc<Client> {
    Client::new(ClientOptions::default()).unwrap()
}

fn platform(s: &str) -> PlatformSpec {
    PlatformSpec::parse(s).unwrap()
}

fn select(image: &str, want: &str, target: &Path) -> Result<Outcome, String> {
    let src = Source::Image(Location::parse(image).unwrap());
    install(Some(&client()), &src, &platform(want), target).map_err(|e| e.to_string())
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn linux_and_windows_layers_are_selected_by_their_labels() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::new(client(), &reg.host(), "lifecycle/ours");
    let built = u::ours(&repo, &tmp.path().join("bin"), "0.1.0", true, "both");
    let image = format!("{}/lifecycle/ours:both", reg.host());
    let cfg = support::tools::skopeo_inspect_config(
        &format!("docker://{image}"),
        &["--tls-verify=false"],
    );
    let labels = &cfg["config"]["Labels"];
    assert_eq!(labels["linux"], built.linux.info.diff_id.to_string());
    assert_eq!(
        labels["windows"],
        built.windows.as_ref().unwrap().info.diff_id.to_string()
    );

    let linux = tmp.path().join("linux");
    let out = select(&image, "linux/amd64", &linux).unwrap();
    let sel = out.selection.unwrap();
    assert_eq!(sel.method, Method::Label);
    assert_eq!(sel.diff_id, built.linux.info.diff_id);
    let mut want: Vec<String> = PHASES.iter().map(|s| s.to_string()).collect();
    want.extend(["launcher", "lifecycle", "lifecycle.toml"].map(String::from));
    want.sort();
    assert_eq!(listing(&linux), want);
    assert_eq!(
        fs::read_to_string(linux.join("lifecycle")).unwrap(),
        "#!/bin/sh\necho linux-lifecycle\n"
    );
    assert_eq!(mode(&linux.join("lifecycle")), 0o755);
    assert_eq!(mode(&linux.join("launcher")), 0o755);
    assert_eq!(mode(&linux.join("lifecycle.toml")), 0o644);
    for p in PHASES {
        assert_eq!(
            fs::read_link(linux.join(p)).unwrap(),
            Path::new("lifecycle")
        );
    }
    // The phase symlinks run: the stand-in prints which binary it is.
    let run = std::process::Command::new(linux.join("detector"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "linux-lifecycle\n");
    assert_eq!(out.installed.descriptor.version, "0.1.0");

    let windows = tmp.path().join("windows");
    let out = select(&image, "windows/amd64", &windows).unwrap();
    assert_eq!(out.selection.unwrap().method, Method::Label);
    let mut want: Vec<String> = PHASES.iter().map(|p| format!("{p}.exe")).collect();
    want.extend(["launcher.exe", "lifecycle.exe", "lifecycle.toml"].map(String::from));
    want.sort();
    assert_eq!(listing(&windows), want);
    assert_eq!(
        fs::read_to_string(windows.join("analyzer.exe")).unwrap(),
        "#!/bin/sh\necho windows-lifecycle\n"
    );
    assert_eq!(
        fs::read_to_string(windows.join("launcher.exe")).unwrap(),
        "#!/bin/sh\necho windows-launcher\n"
    );
}

#[test]
fn label_naming_a_layer_the_image_lacks_is_refused() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::new(client(), &reg.host(), "lifecycle/bad-label");
    let l = u::upstream_layer(&repo, "0.20.0", "x");
    let missing = format!("sha256:{}", "ab".repeat(32));
    u::image(
        &repo,
        "linux/amd64",
        &[("linux", missing.clone())],
        std::slice::from_ref(&l),
        "v1",
    );
    let target = tmp.path().join("t");
    let err = select(
        &format!("{}/lifecycle/bad-label:v1", reg.host()),
        "linux/amd64",
        &target,
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "lifecycle image {}/lifecycle/bad-label:v1: label \"linux\" names layer {missing}, which is not in the image (its diffIDs: {})",
            reg.host(),
            l.info.diff_id
        )
    );
    assert!(listing(&target).is_empty(), "{:?}", listing(&target));
    // A label that is not a digest at all.
    u::image(
        &repo,
        "linux/amd64",
        &[("linux", "latest".into())],
        &[l],
        "v2",
    );
    let err = select(
        &format!("{}/lifecycle/bad-label:v2", reg.host()),
        "linux/amd64",
        &target,
    )
    .unwrap_err();
    assert!(
        err.ends_with("label \"linux\" is \"latest\", not a layer diffID"),
        "{err}"
    );
}

#[test]
fn os_without_label_or_platform_and_arch_mismatch_are_refused() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    let repo = Repo::new(client(), &host, "lifecycle/linux-only");
    u::ours(&repo, &tmp.path().join("bin"), "0.1.0", false, "v1");
    let target = tmp.path().join("t");
    let err = select(
        &format!("{host}/lifecycle/linux-only:v1"),
        "windows/amd64",
        &target,
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!("lifecycle image {host}/lifecycle/linux-only:v1: no \"windows\" label and the image is for linux/amd64, not windows/amd64")
    );

    // An index without the platform lists what it offers.
    let repo = Repo::new(client(), &host, "lifecycle/upstream");
    let base = u::base_layer(&repo);
    let amd = u::image(
        &repo,
        "linux/amd64",
        &u::upstream_labels("0.20.0", &["0.7"], &["0.7"]),
        &[base.clone(), u::upstream_layer(&repo, "0.20.0", "amd64")],
        "",
    );
    let arm = u::image(
        &repo,
        "linux/arm64/v8",
        &u::upstream_labels("0.20.0", &["0.7"], &["0.7"]),
        &[base, u::upstream_layer(&repo, "0.20.0", "arm64")],
        "arm64",
    );
    u::index(
        &repo,
        &[(&amd, "linux/amd64"), (&arm, "linux/arm64/v8")],
        "0.20.0",
    );
    let err = select(
        &format!("{host}/lifecycle/upstream:0.20.0"),
        "windows/amd64",
        &target,
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!("lifecycle image {host}/lifecycle/upstream:0.20.0: no manifest for platform windows/amd64 in index (offers: linux/amd64, linux/arm64/v8)")
    );

    // A single-platform image for another architecture.
    let err = select(
        &format!("{host}/lifecycle/upstream:arm64"),
        "linux/amd64",
        &target,
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!("lifecycle image {host}/lifecycle/upstream:arm64: architecture mismatch: the image is for linux/arm64/v8, want linux/amd64")
    );
    // Also when the OS label exists.
    let err = select(
        &format!("{host}/lifecycle/linux-only:v1"),
        "linux/arm64",
        &target,
    )
    .unwrap_err();
    assert!(
        err.ends_with("architecture mismatch: the image is for linux/amd64, want linux/arm64"),
        "{err}"
    );
    assert!(listing(&target).is_empty());
}

#[test]
fn upstream_index_and_single_platform_image_use_the_platform_last_layer() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    let repo = Repo::new(client(), &host, "buildpacksio/lifecycle");
    let labels = u::upstream_labels("0.20.0", &["0.7", "0.14"], &["0.7", "0.11"]);
    let base = u::base_layer(&repo);
    let amd = u::image(
        &repo,
        "linux/amd64",
        &labels,
        &[base.clone(), u::upstream_layer(&repo, "0.20.0", "amd64")],
        "0.20.0-amd64",
    );
    let arm = u::image(
        &repo,
        "linux/arm64/v8",
        &labels,
        &[base, u::upstream_layer(&repo, "0.20.0", "arm64")],
        "",
    );
    u::index(
        &repo,
        &[(&amd, "linux/amd64"), (&arm, "linux/arm64/v8")],
        "0.20.0",
    );

    for (want, text) in [
        ("linux/amd64", "amd64"),
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
    ] {
        let target = tmp.path().join(want.replace('/', "-"));
        let out = select(
            &format!("{host}/buildpacksio/lifecycle:0.20.0"),
            want,
            &target,
        )
        .unwrap();
        let sel = out.selection.unwrap();
        assert_eq!(sel.method, Method::Index, "{want}");
        assert_eq!(
            fs::read_to_string(target.join("lifecycle")).unwrap(),
            format!("#!/bin/sh\necho {text}\n")
        );
        // Only the lifecycle: nothing of the base layer; the descriptor beside the directory
        // in the image lands inside it.
        assert!(!target.join("etc").exists());
        assert!(listing(&target).contains(&"extender".to_string()));
        assert_eq!(out.installed.descriptor.version, "0.20.0");
        assert_eq!(
            out.installed
                .descriptor
                .apis
                .platform
                .supported
                .last()
                .unwrap(),
            "0.15"
        );
    }

    let target = tmp.path().join("single");
    let out = select(
        &format!("{host}/buildpacksio/lifecycle:0.20.0-amd64"),
        "linux/amd64",
        &target,
    )
    .unwrap();
    assert_eq!(out.selection.unwrap().method, Method::LastLayer);
    assert_eq!(
        fs::read_to_string(target.join("launcher")).unwrap(),
        "#!/bin/sh\necho amd64\n"
    );
    // Selecting again replaces the previous lifecycle.
    let out = select(
        &format!("{host}/buildpacksio/lifecycle:0.20.0"),
        "linux/arm64",
        &target,
    )
    .unwrap();
    assert_eq!(out.selection.unwrap().method, Method::Index);
    assert_eq!(
        fs::read_to_string(target.join("launcher")).unwrap(),
        "#!/bin/sh\necho arm64\n"
    );
    assert!(!listing(&target)
        .iter()
        .any(|n| n.starts_with(".lifecycle-")));
}

struct Sandbox {
    tmp: tempfile::TempDir,
    layout: Layout,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("outside")).unwrap();
        fs::write(tmp.path().join("outside/secret"), "keep").unwrap();
        fs::create_dir_all(tmp.path().join("target")).unwrap();
        fs::write(tmp.path().join("target/previous"), "old").unwrap();
        let layout = Layout::create(&tmp.path().join("layout")).unwrap();
        Sandbox { tmp, layout }
    }

    fn target(&self) -> std::path::PathBuf {
        self.tmp.path().join("target")
    }

    /// Select from an image of one lifecycle layer holding `entries`; return the error.
    fn refuse(&self, tag: &str, entries: &[E]) -> String {
        let l = u::layer(&self.layout, entries);
        u::image(&self.layout, "linux/amd64", &[], &[l], tag);
        let image = format!("oci:{}:{tag}", self.tmp.path().join("layout").display());
        let err = select(&image, "linux/amd64", &self.target()).unwrap_err();
        // Nothing outside changed, the target holds what it held, no staging is left.
        assert_eq!(listing(&self.tmp.path().join("outside")), vec!["secret"]);
        assert_eq!(
            fs::read_to_string(self.tmp.path().join("outside/secret")).unwrap(),
            "keep"
        );
        assert_eq!(listing(&self.target()), vec!["previous"], "{tag}");
        assert_eq!(
            listing(self.tmp.path()),
            vec!["layout", "outside", "target"]
        );
        err
    }
}

fn valid_entries<'a>(toml: &'a str) -> Vec<E<'a>> {
    let mut v = vec![
        E::Dir("cnb"),
        E::Dir("cnb/lifecycle"),
        E::File("cnb/lifecycle/lifecycle", "#!/bin/sh\n", 0o755),
        E::File("cnb/lifecycle/launcher", "#!/bin/sh\n", 0o755),
        E::File("cnb/lifecycle/lifecycle.toml", toml, 0o644),
    ];
    for p in PHASES {
        v.push(E::Sym(
            Box::leak(format!("cnb/lifecycle/{p}").into_boxed_str()),
            "lifecycle",
        ));
    }
    v
}

#[test]
fn malicious_lifecycle_layers_are_refused_and_nothing_is_written_outside() {
    let s = Sandbox::new();
    let toml = u::lifecycle_toml("0.1.0", &["0.12"], &["0.10"]);
    let with = |extra: E<'static>| {
        let mut v = valid_entries(&toml);
        v.push(extra);
        v
    };
    let err = s.refuse(
        "dotdot",
        &with(E::File(
            "cnb/lifecycle/../../outside/secret",
            "pwned",
            0o644,
        )),
    );
    assert!(
        err.contains(
            "refusing archive entry \"cnb/lifecycle/../../outside/secret\": path contains '..'"
        ),
        "{err}"
    );
    let err = s.refuse("abs-symlink", &with(E::Sym("cnb/lifecycle/evil", "/etc")));
    assert!(err.contains("refusing archive entry \"cnb/lifecycle/evil\": symlink to \"/etc\" may lead outside the target"), "{err}");
    let err = s.refuse(
        "up-symlink",
        &with(E::Sym("cnb/lifecycle/up", "../../outside")),
    );
    assert!(
        err.contains("symlink to \"../../outside\" may lead outside the target"),
        "{err}"
    );
    // A symlink in place of the directory is not extracted, so nothing is written through it.
    let err = s.refuse(
        "through-symlink",
        &[
            E::Dir("cnb"),
            E::Sym("cnb/lifecycle", "/tmp"),
            E::File("cnb/lifecycle/x", "x", 0o644),
        ],
    );
    assert!(err.contains("lifecycle image oci:"), "{err}");
    let err = s.refuse(
        "hardlink-out",
        &with(E::Hard("cnb/lifecycle/passwd", "etc/passwd")),
    );
    assert!(
        err.contains("hardlink to \"etc/passwd\", which is not extracted"),
        "{err}"
    );
    // Not a lifecycle: descriptor or binaries missing, descriptor unparsable.
    let err = s.refuse("empty", &[E::Dir("cnb"), E::Dir("cnb/lifecycle")]);
    assert!(
        err.ends_with("the lifecycle layer has no lifecycle.toml (in /cnb/lifecycle/ or /cnb/)"),
        "{err}"
    );
    let err = s.refuse(
        "no-binaries",
        &[
            E::Dir("cnb/lifecycle"),
            E::File("cnb/lifecycle/lifecycle.toml", &toml, 0o644),
        ],
    );
    assert!(err.ends_with("the lifecycle layer lacks analyzer, builder, detector, exporter, launcher, restorer in /cnb/lifecycle"), "{err}");
    let err = s.refuse(
        "bad-toml",
        &[
            E::Dir("cnb/lifecycle"),
            E::File(
                "cnb/lifecycle/lifecycle.toml",
                "[apis.platform]\nsupported = [\"x\"]\n",
                0o644,
            ),
        ],
    );
    assert!(err.contains("invalid lifecycle.toml of oci:"), "{err}");
}

#[test]
fn a_corrupt_layer_blob_is_caught_before_anything_is_moved_into_place() {
    let s = Sandbox::new();
    let toml = u::lifecycle_toml("0.1.0", &["0.12"], &["0.10"]);
    let l = u::layer(&s.layout, &valid_entries(&toml));
    u::image(
        &s.layout,
        "linux/amd64",
        &[],
        std::slice::from_ref(&l),
        "v1",
    );
    // Change the gzip header's MTIME (ignored by decoders): the layer still extracts in full,
    // only the digest tells.
    let blob = s.layout.blob_path(&l.info.digest);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[4] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let image = format!("oci:{}:v1", s.tmp.path().join("layout").display());
    let err = select(&image, "linux/amd64", &s.target()).unwrap_err();
    assert!(
        err.contains("read archive: digest mismatch for blob"),
        "{err}"
    );
    assert_eq!(listing(&s.target()), vec!["previous"]);
}

#[test]
fn mounted_layout_and_mounted_root_filesystem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mounted-layout");
    let layout = Layout::create(&dir).unwrap();
    u::ours(&layout, &tmp.path().join("bin"), "0.1.0", true, "lc");
    let target = tmp.path().join("from-layout");
    let out = install(
        None,
        &Source::Mounted(dir),
        &platform("windows/amd64"),
        &target,
    )
    .unwrap();
    assert_eq!(out.selection.unwrap().method, Method::Label);
    assert!(target.join("lifecycle.exe").is_file());

    // A root filesystem (e.g. an image volume): cnb/lifecycle as is, same checks.
    let root = tmp.path().join("rootfs");
    fs::create_dir_all(root.join("cnb/lifecycle")).unwrap();
    fs::write(
        root.join("cnb/lifecycle.toml"),
        u::lifecycle_toml("0.20.1", &["0.13"], &["0.10"]),
    )
    .unwrap();
    for b in ["lifecycle", "launcher"] {
        u::fake_binary(&root.join("cnb/lifecycle"), b, b);
    }
    for p in PHASES {
        std::os::unix::fs::symlink("lifecycle", root.join("cnb/lifecycle").join(p)).unwrap();
    }
    let target = tmp.path().join("from-rootfs");
    let out = install(
        None,
        &Source::Mounted(root.clone()),
        &platform("linux/amd64"),
        &target,
    )
    .unwrap();
    assert!(out.selection.is_none());
    assert_eq!(out.installed.descriptor.version, "0.20.1");
    assert_eq!(mode(&target.join("launcher")), 0o755);
    assert_eq!(
        fs::read_link(target.join("exporter")).unwrap(),
        Path::new("lifecycle")
    );

    // The same safety applies to a mounted tree.
    std::os::unix::fs::symlink("/etc", root.join("cnb/lifecycle/evil")).unwrap();
    let target = tmp.path().join("from-bad-rootfs");
    let err = install(
        None,
        &Source::Mounted(root),
        &platform("linux/amd64"),
        &target,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("symlink to \"/etc\" may lead outside the target"),
        "{err}"
    );
    assert!(listing(&target).is_empty());

    let err = install(
        None,
        &Source::Mounted(tmp.path().join("bin")),
        &platform("linux/amd64"),
        &target,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with(
            "neither an OCI layout (no oci-layout file) nor a root filesystem with /cnb/lifecycle/"
        ),
        "{err}"
    );
}
