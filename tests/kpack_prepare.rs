//! `prepare` (build-init) as a real process with kpack's paths redirected into a temp root,
//! against a real registry (htpasswd auth) and a local HTTP blob server.

#[path = "common_image.rs"]
mod common;
mod kpack_util;
mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use buildpod::layer::Compression;
use buildpod::registry::{AuthEntry, Client, ClientOptions, Keychain, Repo};
use kpack_util::{gzip, read, tar_of, HttpServer, Root};
use support::registry::Registry;

const USER: &str = "kpackuser";
const PASS: &str = "s3cr3t-Pa55word";

/// An auth registry holding a run image at `<host>/run:latest`.
fn registry_with_run_image() -> Registry {
    let reg = Registry::with_auth(USER, PASS);
    let mut kc = Keychain::empty();
    kc.insert(&reg.host(), AuthEntry::basic(USER, PASS));
    let client = Client::new(ClientOptions {
        keychain: kc,
        ..Default::default()
    })
    .unwrap();
    let store = Repo::new(Arc::clone(&client), &reg.host(), "run");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("os-release"), "ID=test\n").unwrap();
    common::dir_image(&store, src.path(), Compression::Gzip, "amd64", "latest");
    reg
}

fn docker_secret(root: &Root, name: &str, host: &str, user: &str, pass: &str) {
    let json = format!(r#"{{"auths":{{"{host}":{{"username":"{user}","password":"{pass}"}}}}}}"#);
    root.secret(name, &[(".dockerconfigjson", &json)]);
}

#[test]
fn blob_build_end_to_end() {
    let reg = registry_with_run_image();
    let host = reg.host();
    let root = Root::new();
    docker_secret(&root, "registry-creds", &host, USER, PASS);
    root.secret("blob-creds", &[("bearer", "blob-token-xyz")]);
    let tgz = gzip(&tar_of(&[
        ("app-1.0/", ""),
        ("app-1.0/main.sh", "#!/bin/sh\necho hi\n"),
        ("app-1.0/link", "-> main.sh"),
        (
            "app-1.0/project.toml",
            "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.build.env]]\nname = \"FROM_TOML\"\nvalue = \"t\"\n[[io.buildpacks.build.env]]\nname = \"BOTH\"\nvalue = \"toml\"\n",
        ),
    ]));
    let mut files = HashMap::new();
    files.insert("src/app.tgz".to_string(), tgz.clone());
    let http = HttpServer::start(files, Some("Bearer blob-token-xyz".into()));
    let blob_url = http.url("src/app.tgz");
    let tag = format!("{host}/apps/app");
    let run_image = format!("{host}/run:latest");
    let out = root.run(
        "build-init",
        &["-dockerconfig=registry-creds", "-blob=blob-creds=127.0.0.1"],
        &[
            ("BLOB_URL", &blob_url),
            ("BLOB_STRIP_COMPONENTS", "1"),
            ("BLOB_AUTH", "true"),
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &run_image),
            ("PLATFORM_ENV_BOTH", "spec"),
            ("PLATFORM_ENV_BP_JVM_VERSION", "17"),
            ("BUILDER_IMAGE", "b/img"),
            ("BUILDER_NAME", "my-builder"),
            ("BUILDER_KIND", "ClusterBuilder"),
            (
                "BUILD_CHANGES",
                r#"[{"reason":"COMMIT","old":"a","new":"b"}]"#,
            ),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let want_lines = [
        "Build reason(s): COMMIT".to_string(),
        "Loading registry credentials from service account secrets".to_string(),
        format!(
            "Loading secret for \"{host}\" from secret \"registry-creds\" at location \"/var/build-secrets/registry-creds\""
        ),
        "Loading cluster credential helpers".to_string(),
        "Loading blob credentials from service account secrets".to_string(),
        "Loading secrets for \"127.0.0.1\" from secret \"blob-creds\"".to_string(),
        format!("Downloading {}...", blob_url.trim_start_matches("http://")),
        format!(
            "Successfully downloaded {} in path \"/workspace\"",
            blob_url.trim_start_matches("http://")
        ),
        "Builder:".to_string(),
        " Image: b/img ".to_string(),
    ];
    let stdout = out.stdout();
    let mut pos = 0;
    for l in &want_lines {
        let i = stdout[pos..]
            .find(l.as_str())
            .unwrap_or_else(|| panic!("missing or out of order: {l:?}\n{out:?}"));
        pos += i + l.len();
    }
    // Source: stripped, exec bit kept, symlink kept as a symlink.
    let ws = root.path("workspace");
    assert!(read(&ws.join("main.sh")).contains("echo hi"));
    assert_eq!(
        std::fs::metadata(ws.join("main.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(ws.join("link")).unwrap().to_str(),
        Some("main.sh")
    );
    // Metadata with the sha256 of the downloaded file.
    let meta = read(&root.path("projectMetadata/project-metadata.toml"));
    let sha = support::tools::sha256_bytes(&tgz);
    let sha = sha.trim_start_matches("sha256:");
    assert_eq!(
        meta,
        format!("[source]\n  type = \"blob\"\n  [source.metadata]\n    url = \"{blob_url}\"\n  [source.version]\n    sha256sum = \"{sha}\"\n")
    );
    // Platform env: spec.env overrides project.toml.
    assert_eq!(read(&root.path("platform/env/FROM_TOML")), "t");
    assert_eq!(read(&root.path("platform/env/BOTH")), "spec");
    assert_eq!(read(&root.path("platform/env/BP_JVM_VERSION")), "17");
    // The lifecycle's docker config: kpack's format, private.
    let cfg_path = root.path("builder/home/.docker/config.json");
    assert_eq!(
        std::fs::metadata(&cfg_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cfg: serde_json::Value = serde_json::from_str(&read(&cfg_path)).unwrap();
    assert_eq!(cfg["auths"][&host]["username"], USER);
    assert!(cfg["auths"][&host]["auth"].is_string());
    // Secrets never reach the logs.
    for s in [PASS, "blob-token-xyz"] {
        assert!(!out.all().contains(s), "secret leaked: {out:?}");
    }
    assert_eq!(
        http.seen_auth.lock().unwrap().as_slice(),
        &[Some("Bearer blob-token-xyz".to_string())]
    );
}

#[test]
fn write_check_names_secret_and_registry() {
    let reg = registry_with_run_image();
    let host = reg.host();
    let root = Root::new();
    docker_secret(&root, "wrong-creds", &host, USER, "not-the-password");
    let tag = format!("{host}/apps/app");
    let out = root.run(
        "build-init",
        &["-dockerconfig=wrong-creds"],
        &[
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &format!("{host}/run:latest")),
            ("BLOB_URL", "http://127.0.0.1:1/x.tgz"),
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    let last = out.stdout().lines().last().unwrap_or("").to_string();
    assert_eq!(
        last,
        format!(
            "Error verifying write access to \"{tag}\": UNAUTHORIZED (registry \"{host}\", credentials from secret \"wrong-creds\")"
        ),
        "{out:?}"
    );
    assert!(!out.all().contains("not-the-password"));

    // No secret at all for the registry.
    let root = Root::new();
    let out = root.run(
        "build-init",
        &[],
        &[("IMAGE_TAG", &tag), ("RUN_IMAGE", "x")],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out
        .stdout()
        .contains("No registry credentials were loaded from service account secrets"));
    assert!(out.stdout().ends_with(&format!(
        "Error verifying write access to \"{tag}\": UNAUTHORIZED (registry \"{host}\", no secret provides credentials for it)\n"
    )), "{out:?}");
}

#[test]
fn read_check_uses_image_pull_secrets_and_reports_failures() {
    let reg = registry_with_run_image();
    let host = reg.host();
    let root = Root::new();
    root.secret("basic", &[("username", USER), ("password", PASS)]);
    let tag = format!("{host}/apps/app");
    // Write access from a basic-auth secret; the run image is missing.
    let out = root.run(
        "build-init",
        &[&format!("-basic-docker=basic={host}")],
        &[
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &format!("{host}/run:missing")),
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout().contains(&format!(
        "Loading secrets for \"{host}\" from secret \"basic\""
    )));
    let last = out.stdout().lines().last().unwrap().to_string();
    assert!(
        last.starts_with(&format!(
            "Error verifying read access to run image \"{host}/run:missing\": "
        )),
        "{out:?}"
    );
    assert!(last.contains("secret \"basic\""), "{last}");

    // All checks pass, but there is no source.
    let root = Root::new();
    docker_secret(&root, "pull", &host, USER, PASS);
    let out = root.run(
        "build-init",
        &[&format!("-basic-docker=basic={host}"), "-imagepull=pull"],
        &[
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &format!("{host}/run:latest")),
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout()
            .ends_with("open /var/build-secrets/basic/username: no such file or directory\n"),
        "{out:?}"
    );
    root.secret("basic", &[("username", USER), ("password", PASS)]);
    let out = root.run(
        "build-init",
        &[&format!("-basic-docker=basic={host}"), "-imagepull=pull"],
        &[
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &format!("{host}/run:latest")),
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout()
            .ends_with("no git url, blob url, or registry image provided\n"),
        "{out:?}"
    );
    // Like kpack, nothing is saved for the lifecycle when the step fails.
    assert!(!root.path("builder/home/.docker/config.json").exists());
}

#[test]
fn usage_errors_exit_2_and_bad_secret_args_exit_1() {
    let root = Root::new();
    let out = root.run("build-init", &["-no-such-flag"], &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out
        .stderr()
        .contains("flag provided but not defined: -no-such-flag"));
    let out = root.run("prepare", &["-basic-docker=oops"], &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out
        .stdout()
        .ends_with("could not parse docker secret argument oops\n"));
    // The subcommand form reaches the same step.
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_buildpod"));
    let o = c
        .args(["prepare", "-basic-docker=oops"])
        .env("BUILDPOD_ROOT", root.dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("could not parse docker secret argument oops")
    );
}

#[test]
fn mount_check_refuses_missing_workspace_volume() {
    // Only the real paths are checked; a fixture mountinfo stands in for /proc/self/mountinfo.
    let root = Root::new();
    let mi = root.path("mountinfo");
    std::fs::write(&mi, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_buildpod"))
        .args(["prepare"])
        .env_clear()
        .env("BUILDPOD_MOUNTINFO", &mi)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with(
            "/workspace is not a mounted volume: kpack mounts the workspace-dir volume there"
        ),
        "{stdout}"
    );
}
