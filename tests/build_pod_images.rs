//! kpack's build-pod images (images/build-pod), built by `images/build-pod/build` from this
//! build's `buildpod` binary (the script's static release build takes minutes on CI's two cores;
//! the image logic is the same): the same digests twice and in a registry, valid for skopeo and
//! umoci, kpack's entry points and a non-root numeric user, CA certificates from the Debian
//! package, and, as root under runc, every image dispatching on argv[0] and build-init's git
//! cloning with submodules. The dev binary is dynamic, so the run checks copy its libraries
//! into the unpacked rootfs first.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use support::registry::Registry;
use support::tools;

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");
const BUILD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/images/build-pod/build");
const NAMES: [&str; 4] = ["build-init", "completion", "rebase", "build-waiter"];
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// Run the build script; its stdout lines.
fn build(target: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(BUILD)
        .args(args)
        .env("BUILDPOD_BINARY", BUILDPOD)
        .env("BUILDPOD_REVISION", REVISION)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{BUILD} {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `(name, digest)` from the script's `NAME sha256:...` lines.
fn digests(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, d)| d.starts_with("sha256:"))
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn build_pod_images_are_reproducible_kpack_shaped_and_run() {
    tools::require("skopeo");
    tools::require("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let (l1, l2) = (tmp.path().join("one"), tmp.path().join("two"));
    let one = digests(&build(&target, &[&format!("oci:{}", l1.display())]));
    let two = digests(&build(&target, &[&format!("oci:{}", l2.display())]));
    assert_eq!(
        one.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        NAMES
    );
    assert_eq!(one, two, "two builds, two digests");
    // Nothing staged is left behind.
    let left: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let mut shared: Option<serde_json::Value> = None;
    for (name, digest) in &one {
        let image = format!("oci:{}:{name}", l1.display());
        let inspect: serde_json::Value =
            serde_json::from_str(&tools::skopeo(&["inspect", &image])).unwrap();
        assert_eq!(inspect["Digest"], *digest);
        let cfg = tools::skopeo_inspect_config(&image, &[]);
        let c = &cfg["config"];
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!([format!("/cnb/process/{name}")])
        );
        assert_eq!(c["User"], "1002:1000");
        assert_eq!(
            c["Env"],
            serde_json::json!([
                "PATH=/cnb/process:/usr/local/bin:/usr/bin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
            ])
        );
        assert_eq!(c["Labels"]["org.opencontainers.image.revision"], REVISION);
        assert_eq!(
            c["Labels"]["org.opencontainers.image.version"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");
        assert_eq!(
            (cfg["os"].as_str(), cfg["architecture"].as_str()),
            (Some("linux"), Some("amd64"))
        );
        let diff_ids = cfg["rootfs"]["diff_ids"].as_array().unwrap();
        let packages = c["Labels"]["io.buildpod.packages"].as_str();
        if *name == "build-init" {
            assert_eq!(diff_ids.len(), 4, "base, buildpod, process, git");
            let p = packages.unwrap();
            assert!(
                p.contains("git=1:") && p.contains(",openssh-client=1:"),
                "{p}"
            );
        } else {
            assert_eq!(diff_ids.len(), 3, "base, buildpod, process");
            assert_eq!(packages, None);
        }
        // The base and binary layers are the same blobs in all four images.
        let first_two = serde_json::json!(diff_ids[..2]);
        assert_eq!(*shared.get_or_insert(first_two.clone()), first_two);

        let bundle = tmp.path().join(format!("bundle-{name}"));
        tools::umoci_unpack(&l1, name, &bundle);
        check_rootfs(&bundle.join("rootfs"), name);
    }

    if !is_root() {
        eprintln!("build_pod_images: run checks skipped, runc needs root (CI runs as root)");
        return;
    }
    tools::require("runc");
    for name in NAMES {
        let bundle = tmp.path().join(format!("bundle-{name}"));
        add_dev_binary_libraries(&bundle.join("rootfs"));
        // kpack runs `/cnb/process/<name>` (build-waiter: the entrypoint) as a non-root user.
        let r = runc(&bundle, name, &["-h"], &[]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.err.starts_with(&format!("Usage of {name}:\n")),
            "{name}: {r:?}"
        );
    }
    // Sidecar mode: pre-start copies the binary into the shared emptyDir; the copy runs as
    // build-waiter by name in the other containers.
    let bw = tmp.path().join("bundle-build-waiter");
    let wait_dir = tmp.path().join("buildWait");
    fs::create_dir(&wait_dir).unwrap();
    fs::set_permissions(&wait_dir, fs::Permissions::from_mode(0o777)).unwrap();
    bind(&bw, &wait_dir, "/buildWait");
    let r = runc(
        &bw,
        "bw-copy",
        &["-mode=copy", "-to=/buildWait/build-waiter"],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        tools::sha256_file(&wait_dir.join("build-waiter")),
        tools::sha256_file(Path::new(BUILDPOD))
    );
    let r = runc(&bw, "bw-run", &["-h"], &["/buildWait/build-waiter"]);
    assert!(r.err.starts_with("Usage of build-waiter:\n"), "{r:?}");
    git_in_build_init(tmp.path(), &tmp.path().join("bundle-build-init"));
}

/// The unpacked tree of one image.
fn check_rootfs(rootfs: &Path, name: &str) {
    let mut top: Vec<String> = fs::read_dir(rootfs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    let mut want = vec!["cnb", "etc", "home", "root", "tmp", "usr"];
    if name == "build-init" {
        want.extend(["bin", "lib", "lib64"]);
        want.sort();
    }
    assert_eq!(top, want, "{name}");
    assert_eq!(
        fs::read_link(rootfs.join("cnb/process").join(name)).unwrap(),
        Path::new("../../usr/local/bin/buildpod")
    );
    assert_eq!(
        fs::read_dir(rootfs.join("cnb/process")).unwrap().count(),
        1,
        "{name}: one process"
    );
    let bin = rootfs.join("usr/local/bin/buildpod");
    assert_eq!(
        tools::sha256_file(&bin),
        tools::sha256_file(Path::new(BUILDPOD))
    );
    assert_eq!(
        fs::metadata(&bin).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        fs::metadata(rootfs.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("\ncnb:x:1002:1000::/home/cnb:/sbin/nologin\n"),
        "{passwd}"
    );
    let group = fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("\ncnb:x:1000:\n"), "{group}");
    if is_root() {
        let home = fs::metadata(rootfs.join("home/cnb")).unwrap();
        assert_eq!((home.uid(), home.gid()), (1002, 1000));
    }
    // Debian's CAs, one PEM per certificate the package ships, and no local additions.
    let bundle = fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let shipped = fs::read_dir("/usr/share/ca-certificates/mozilla")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".crt"))
        .count();
    assert!(
        shipped > 100,
        "{shipped} certificates in the ca-certificates package"
    );
    assert_eq!(
        bundle.matches("-----BEGIN CERTIFICATE-----").count(),
        shipped
    );
    assert_eq!(
        bundle.matches("-----END CERTIFICATE-----\n").count(),
        shipped
    );
}

/// The dev binary is dynamic: put the libraries it loads where its loader looks.
fn add_dev_binary_libraries(rootfs: &Path) {
    let ldd = tools::run("ldd", &[BUILDPOD]);
    for line in ldd.lines() {
        let path = match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "=>", p, ..] if p.starts_with('/') => p.to_string(),
            [p, ..] if p.starts_with('/') => p.to_string(),
            _ => continue,
        };
        let dest = rootfs.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&path, &dest).unwrap();
    }
}

/// Add a bind mount of `host` at `at` to the bundle's config (a pod's emptyDir).
fn bind(bundle: &Path, host: &Path, at: &str) {
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": at, "type": "bind", "source": host, "options": ["rbind", "rw"]
        }));
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

#[derive(Debug)]
struct Run {
    code: i32,
    out: String,
    err: String,
}

/// Run the unpacked image with runc as umoci configured it (its user, env and entrypoint), with
/// `args` appended, or `argv` in place of the entrypoint when not empty.
fn runc(bundle: &Path, id: &str, args: &[&str], argv: &[&str]) -> Run {
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    let p = &mut config["process"];
    p["terminal"] = false.into();
    // The entrypoint umoci took from the image, kept before the first run replaces the args.
    let saved = bundle.join("entrypoint.json");
    if !saved.exists() {
        fs::write(&saved, serde_json::to_vec(&p["args"]).unwrap()).unwrap();
    }
    let entrypoint: serde_json::Value = serde_json::from_slice(&fs::read(&saved).unwrap()).unwrap();
    let mut full: Vec<serde_json::Value> = if argv.is_empty() {
        entrypoint.as_array().unwrap().clone()
    } else {
        argv.iter().map(|a| (*a).into()).collect()
    };
    full.extend(args.iter().map(|a| (*a).into()));
    p["args"] = full.into();
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let state = bundle.with_extension("runc-state");
    let id = format!("bp-{id}-{}", std::process::id());
    let out = Command::new(tools::which("runc").unwrap())
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new(tools::which("runc").unwrap())
        .arg("--root")
        .arg(&state)
        .args(["delete", "-f", &id])
        .output();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// build-init's git layer: a shallow fetch over the file transport (upload-pack through
/// /bin/sh) and a submodule update (git's shell script), as the image user.
fn git_in_build_init(tmp: &Path, bundle: &Path) {
    let src = tmp.join("src");
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("/usr/bin/git")
            .current_dir(dir)
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(["-c", "protocol.file.allow=always"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for r in ["sub", "main"] {
        fs::create_dir_all(src.join(r)).unwrap();
        git(&src.join(r), &["init", "-q", "-b", "main"]);
    }
    fs::write(src.join("sub/s.txt"), "from the submodule\n").unwrap();
    git(&src.join("sub"), &["add", "."]);
    git(&src.join("sub"), &["commit", "-qm", "s"]);
    fs::write(src.join("main/m.txt"), "main\n").unwrap();
    git(
        &src.join("main"),
        &["submodule", "add", "-q", "../sub", "sub"],
    );
    git(&src.join("main"), &["add", "."]);
    git(&src.join("main"), &["commit", "-qm", "m"]);
    let rootfs = bundle.join("rootfs");
    fs::create_dir(rootfs.join("repos")).unwrap();
    for r in ["sub", "main"] {
        tools::run(
            "cp",
            &[
                "-a",
                &src.join(r).to_string_lossy(),
                &rootfs.join("repos").join(r).to_string_lossy(),
            ],
        );
    }
    fs::create_dir_all(rootfs.join("workspace")).unwrap();
    tools::run(
        "chown",
        &[
            "-R",
            "1002:1000",
            &rootfs.join("repos").to_string_lossy(),
            &rootfs.join("workspace").to_string_lossy(),
        ],
    );
    let script =
        "set -e; cd /workspace; export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null; \
        g() { git -c protocol.file.allow=always \"$@\"; }; \
        g init -q .; g remote add origin file:///repos/main; g fetch -q --depth 1 origin main; \
        g checkout -q FETCH_HEAD; g submodule update --init -q; cat m.txt sub/s.txt; \
        git --version; ssh -V";
    let r = runc(bundle, "git", &["-c", script], &["/bin/sh"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.out, "main\nfrom the submodule\ngit version 2.39.5\n",
        "{r:?}"
    );
    assert!(r.err.starts_with("OpenSSH_"), "{r:?}");
}

#[test]
fn build_pod_images_push_to_a_registry_with_the_same_digests() {
    tools::require("skopeo");
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let repo = format!("{}/buildpod", reg.host());
    let lines = build(
        &tmp.path().join("target"),
        &[
            "--push",
            &repo,
            &format!("oci:{}", layout.display()),
            "--insecure-registry",
            &reg.host(),
        ],
    );
    assert_eq!(lines.len(), 8, "{lines:?}");
    for (i, name) in NAMES.iter().enumerate() {
        let (n, digest) = lines[2 * i].split_once(' ').unwrap();
        assert_eq!(n, *name);
        // kpack's ConfigMaps take the digest reference this prints.
        let pushed = format!("{repo}/{name}@{digest}");
        assert_eq!(lines[2 * i + 1], format!("{name} {pushed}"));
        let remote: serde_json::Value = serde_json::from_str(&tools::skopeo(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{repo}/{name}:{}", env!("CARGO_PKG_VERSION")),
        ]))
        .unwrap();
        assert_eq!(remote["Digest"], digest);
        let cfg =
            tools::skopeo_inspect_config(&format!("docker://{pushed}"), &["--tls-verify=false"]);
        assert_eq!(
            cfg["config"]["Entrypoint"][0],
            format!("/cnb/process/{name}")
        );
    }
}

#[test]
fn image_build_reports_bad_definitions_and_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let def = tmp.path().join("d.toml");
    fs::write(
        &def,
        "[[layers]]\nname = \"l\"\nentries = [{ path = \"/${where}\", type = \"dir\" }]\n",
    )
    .unwrap();
    let dest = format!("oci:{}:x", tmp.path().join("out").display());
    let run = |args: &[&str]| {
        let out = Command::new(BUILDPOD)
            .args(["image", "build"])
            .arg(&def)
            .arg(&dest)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "ERROR: image definition {}: layer \"l\": undefined variable ${{where}} in \"/${{where}}\"\n",
            def.display()
        )
    );
    assert_eq!(
        run(&["--set", "where"]).1,
        "ERROR: --set \"where\": want NAME=VALUE\n"
    );
    let (code, _) = run(&["--set", "where=opt"]);
    assert_eq!(code, Some(0));
}
