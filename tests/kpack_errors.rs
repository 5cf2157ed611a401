//! The remaining error paths of kpack-build-pod.md §2-§3 as real processes: each prints
//! kpack's text (prepare on stdout, completion on stderr with Go's log prefix) and exits 1,
//! and a bad build-changes string is printed and ignored.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use buildpod::layer::Compression;
use buildpod::registry::{Client, ClientOptions, Repo};
use kpack_util::{gzip, tar_of, HttpServer, Root};
use support::registry::Registry;

/// A plain registry holding `<host>/run:latest`.
fn registry() -> Registry {
    let reg = Registry::plain();
    let client = Client::new(ClientOptions::default()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("os-release"), "ID=run\n").unwrap();
    common::dir_image(
        &Repo::new(Arc::clone(&client), &reg.host(), "run"),
        src.path(),
        Compression::Gzip,
        "amd64",
        "latest",
    );
    reg
}

/// Run prepare with a blob source; returns the output.
fn prepare_blob(
    reg: &Registry,
    root: &Root,
    blob_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> kpack_util::Out {
    let tag = format!("{}/apps/app", reg.host());
    let run = format!("{}/run", reg.host());
    let mut e = vec![
        ("BLOB_URL", blob_url),
        ("IMAGE_TAG", tag.as_str()),
        ("RUN_IMAGE", run.as_str()),
    ];
    e.extend_from_slice(env);
    root.run("build-init", args, &e)
}

fn last_line(out: &kpack_util::Out) -> String {
    out.stdout().lines().last().unwrap_or("").to_string()
}

#[test]
fn prepare_error_paths() {
    let reg = registry();
    let mut files = HashMap::new();
    files.insert(
        "app.tgz".to_string(),
        gzip(&tar_of(&[("main.go", "package main\n")])),
    );
    let http = HttpServer::start(files, None);
    let url = http.url("app.tgz");

    // A bad BUILD_CHANGES is reported and the step goes on.
    let root = Root::new();
    let out = prepare_blob(&reg, &root, &url, &[], &[("BUILD_CHANGES", "nope")]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .starts_with("error parsing build changes JSON string 'nope': "),
        "{out:?}"
    );

    // An explicit project descriptor path that does not exist.
    let root = Root::new();
    let out = prepare_blob(
        &reg,
        &root,
        &url,
        &[],
        &[("PROJECT_DESCRIPTOR_PATH", "build/project.toml")],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(
        last_line(&out),
        "error while processing the project descriptor: project descriptor path set but no file found: /workspace/build/project.toml"
    );

    // Blob auth through helpers (no -blob secrets): kpack's cloud helpers are not available.
    let root = Root::new();
    let out = prepare_blob(&reg, &root, &url, &[], &[("BLOB_AUTH", "true")]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out
        .stdout()
        .contains("Loading blob credentials from helpers\n"));
    assert!(
        last_line(&out).starts_with(&format!(
            "failed to resolve creds: no keychain matched for '{url}'"
        )),
        "{out:?}"
    );
    assert!(last_line(&out).contains("not supported yet"), "{out:?}");

    // Blob secrets: more than one kind of auth, none at all, or none for this host.
    let root = Root::new();
    root.secret(
        "both",
        &[("username", "u"), ("password", "p"), ("bearer", "tok-123")],
    );
    root.secret("none", &[]);
    for (arg, want) in [
        (
            "-blob=both=127.0.0.1",
            "failed to resolve creds: multiple auths found for 'both', only one of username/password, bearer, authorization is allowed",
        ),
        (
            "-blob=none=127.0.0.1",
            "failed to resolve creds: no auths found for 'none'",
        ),
        (
            "-blob=both=blobs.example.com",
            "failed to resolve creds: no secrets matched for '127.0.0.1'",
        ),
    ] {
        let out = prepare_blob(&reg, &root, &url, &[arg], &[("BLOB_AUTH", "true")]);
        assert_eq!(out.code(), 1, "{arg}: {out:?}");
        assert_eq!(last_line(&out), want, "{arg}");
        assert!(!out.all().contains("tok-123"));
    }

    // A malformed git secret argument.
    let root = Root::new();
    let tag = format!("{}/apps/app", reg.host());
    let run = format!("{}/run", reg.host());
    let out = root.run(
        "build-init",
        &["-basic-git=no-domain"],
        &[
            ("GIT_URL", "https://git.example.com/app.git"),
            ("GIT_REVISION", "main"),
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &run),
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(
        last_line(&out),
        "could not parse git secret argument no-domain"
    );
}

#[test]
fn completion_cannot_fetch_the_app_image() {
    let reg = registry();
    let root = Root::new();
    let missing = format!("sha256:{}", "a".repeat(64));
    std::fs::write(
        root.path("var/report/report.toml"),
        format!(
            "[image]\n  tags = [\"{}/apps/app\"]\n  digest = \"{missing}\"\n",
            reg.host()
        ),
    )
    .unwrap();
    let term = root.path("tmp/termination-log");
    let out = root.run(
        "completion",
        &[],
        &[("TERMINATION_MESSAGE_PATH", term.to_str().unwrap())],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert_eq!(out.stdout(), "");
    let line = out.stderr().trim_end().to_string();
    // Go's log prefix: "2006/01/02 15:04:05 ".
    assert_eq!(&line[4..5], "/", "{line}");
    assert!(
        line[20..].starts_with("unable to fetch app image: "),
        "{line}"
    );
    assert!(line.contains(&missing), "{line}");
    assert!(!term.exists());
}
