//! kpack's build-pod images (images/build-pod), built by `images/build-pod/build` from this
//! build's `buildpod` binary (the script's static release build takes minutes on CI's two cores;
//! the image logic is the same): the same digests twice and in a registry, valid for skopeo and
//! umoci, kpack's entry points and a non-root numeric user, CA certificates from the Debian
//! package, and, as root under runc, every image dispatching on argv[0] and build-init's
//! `prepare` cloning over the file transport and, as a uid the image does not list (kpack's
//! CNB_USER_ID), over ssh with a submodule. The dev binary is dynamic, so the run checks copy
//! its libraries into the unpacked rootfs first.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod source_git_util;
mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use kpack_util::Root;
use source_git_util::{git, keypair, registry_with_run_image, Sshd};
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

/// Share the host's network (the test's registry and sshd listen on its loopback), run as
/// `uid:gid` with `env` added, and bind-mount `binds` (host dir, container path).
fn configure(bundle: &Path, (uid, gid): (u32, u32), env: &[String], binds: &[(&Path, &str)]) {
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    config["process"]["user"] = serde_json::json!({ "uid": uid, "gid": gid });
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    set_env(bundle, env);
    for (host, at) in binds {
        bind(bundle, host, at);
    }
}

/// Set `vars` (NAME=VALUE) in the bundle's process environment, replacing same-named ones.
fn set_env(bundle: &Path, vars: &[String]) {
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    let env = config["process"]["env"].as_array_mut().unwrap();
    for v in vars {
        let name = v.split_once('=').unwrap().0;
        env.retain(|e| e.as_str().and_then(|e| e.split_once('=')).map(|(n, _)| n) != Some(name));
        env.push(v.as_str().into());
    }
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// build-init's git layer, through `prepare` as kpack runs it: as uid 1001 (a Paketo builder's
/// CNB_USER_ID, not in the image's /etc/passwd, so ssh runs under nss_wrapper), a clone over ssh
/// with key and known_hosts and a submodule over ssh (`git submodule--helper` from /bin/sh-run
/// ssh); a clone over the file transport (upload-pack through /bin/sh); and git-remote-https
/// loading its libraries.
fn git_in_build_init(tmp: &Path, bundle: &Path) {
    let src = tmp.join("src");
    let (private, public) = keypair(tmp, "client");
    let sshd = Sshd::start(&public);
    let reg = registry_with_run_image();
    let repos = tmp.join("repos");
    let ssh_url = |r: &str| {
        format!(
            "ssh://git@127.0.0.1:{}{}",
            sshd.port,
            repos.join(r).display()
        )
    };
    for r in ["sub", "main"] {
        fs::create_dir_all(src.join(r)).unwrap();
        git(&src.join(r), &["init", "-q", "-b", "main"]);
    }
    fs::write(src.join("sub/s.txt"), "from the submodule\n").unwrap();
    git(&src.join("sub"), &["add", "."]);
    git(&src.join("sub"), &["commit", "-qm", "s"]);
    git(tmp, &["clone", "-q", "--bare", "src/sub", "repos/sub"]);
    fs::write(src.join("main/m.txt"), "main\n").unwrap();
    let main = src.join("main");
    git(
        &main,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &repos.join("sub").to_string_lossy(),
            "sub",
        ],
    );
    git(
        &main,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.sub.url",
            &ssh_url("sub"),
        ],
    );
    git(&main, &["add", "."]);
    git(&main, &["commit", "-qm", "m"]);
    git(tmp, &["clone", "-q", "--bare", "src/main", "repos/main"]);
    let rootfs = bundle.join("rootfs");
    git(
        tmp,
        &[
            "clone",
            "-q",
            "--bare",
            "src/main",
            &rootfs.join("repos/main").to_string_lossy(),
        ],
    );

    // As the image user (1002, listed).
    let r = runc(bundle, "version", &[], &["/usr/bin/git", "--version"]);
    assert_eq!(r.out, "git version 2.39.5\n", "{r:?}");
    let r = runc(bundle, "ssh", &[], &["/usr/bin/ssh", "-V"]);
    assert!(r.err.starts_with("OpenSSH_"), "{r:?}");
    // Nothing listens on port 1: git-remote-https loaded its libraries and libcurl tried.
    let r = runc(
        bundle,
        "https",
        &[],
        &["/usr/bin/git", "ls-remote", "https://127.0.0.1:1/r"],
    );
    assert_eq!(r.code, 128, "{r:?}");
    assert!(
        r.err.contains("Failed to connect to 127.0.0.1 port 1"),
        "{r:?}"
    );

    let (ssh_root, file_root) = (Root::new(), Root::new());
    ssh_root.secret(
        "ssh-creds",
        &[
            ("ssh-privatekey", &private),
            ("known_hosts", &sshd.known_hosts()),
        ],
    );
    for d in [
        ssh_root.dir.path(),
        file_root.dir.path(),
        &rootfs.join("repos"),
    ] {
        tools::run("chown", &["-R", "1001:1000", &d.to_string_lossy()]);
    }
    configure(
        bundle,
        (1001, 1000),
        &[
            "HOME=/home/cnb".to_string(),
            format!("IMAGE_TAG={}/apps/app", reg.host()),
            format!("RUN_IMAGE={}/run", reg.host()),
            "GIT_REVISION=main".to_string(),
            "INSECURE_SSH_TRUST_UNKNOWN_HOSTS=false".to_string(),
        ],
        &[
            (ssh_root.dir.path(), "/kroot-ssh"),
            (file_root.dir.path(), "/kroot-file"),
        ],
    );
    // The image has no `env` program: each run's variables go into the bundle's config.
    let prepare = |id: &str, root: &str, url: &str, more_env: &[String], args: &[&str]| {
        let mut env = vec![format!("BUILDPOD_ROOT={root}"), format!("GIT_URL={url}")];
        env.extend(more_env.iter().cloned());
        set_env(bundle, &env);
        runc(bundle, id, args, &[])
    };
    let url = ssh_url("main");
    let r = prepare(
        "ssh",
        "/kroot-ssh",
        &url,
        &["GIT_INITIALIZE_SUBMODULES=true".to_string()],
        &[&format!("-ssh-git=ssh-creds=git@127.0.0.1:{}", sshd.port)],
    );
    assert_eq!(r.code, 0, "{r:?}\n{}", sshd.log());
    assert!(
        r.out.ends_with(&format!(
            "Cloning \"{url}\" @ \"main\"...\nUpdating submodule {}\n\
             Successfully cloned \"{url}\" @ \"main\" in path \"/workspace\"\n",
            ssh_url("sub")
        )),
        "{r:?}"
    );
    let ws = ssh_root.path("workspace");
    assert_eq!(fs::read_to_string(ws.join("m.txt")).unwrap(), "main\n");
    assert_eq!(
        fs::read_to_string(ws.join("sub/s.txt")).unwrap(),
        "from the submodule\n"
    );
    assert_eq!(fs::metadata(ws.join("sub/s.txt")).unwrap().uid(), 1001);

    let r = prepare(
        "file",
        "/kroot-file",
        "file:///repos/main",
        &["GIT_INITIALIZE_SUBMODULES=false".to_string()],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let ws = file_root.path("workspace");
    assert_eq!(fs::read_to_string(ws.join("m.txt")).unwrap(), "main\n");
    assert!(!ws.join("sub/s.txt").exists());

    // What prepare spares kpack users: ssh alone refuses a uid without a passwd entry.
    let r = runc(bundle, "ssh-1001", &[], &["/usr/bin/ssh", "-V"]);
    assert_eq!(
        (r.code, r.err.trim_end()),
        (255, "No user exists for uid 1001"),
        "{r:?}"
    );
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
