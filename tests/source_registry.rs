//! Registry (OCI image) sources against a real registry: the cases of kpack's
//! `pkg/registry/fetch_test.go` with our own fixtures (archives inside one-file layers by the
//! `source.contenttype.kpack.io` label, plain multi-layer images, directories without headers,
//! file modes, errors), then `prepare` end to end with the source's pull secret taking
//! precedence over the service account's credentials.

#[path = "common_image.rs"]
#[allow(dead_code)]
mod common;
mod kpack_util;
mod support;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use buildpod::layer::{CompressOptions, Compression};
use buildpod::oci::assemble::{push_layer_with, write_image};
use buildpod::oci::{media, ImageConfig};
use buildpod::registry::{AuthEntry, Client, ClientOptions, Keychain, Repo};
use buildpod::source::registry::fetch;
use kpack_util::{gzip, read, Root};
use support::registry::Registry;

/// A tar of (path, contents, mode); a path ending in `/` is a directory.
fn tar_bytes(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_mtime(1_600_000_000);
        if p.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, p, std::io::empty()).unwrap();
        } else {
            h.set_size(c.len() as u64);
            b.append_data(&mut h, p, *c).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn zip_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
        } else {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn client_for(reg: &Registry) -> Arc<Client> {
    let mut kc = Keychain::empty();
    if let Some((u, p)) = reg.creds() {
        kc.insert(&reg.host(), AuthEntry::basic(&u, &p));
    }
    Client::new(ClientOptions {
        keychain: kc,
        ..Default::default()
    })
    .unwrap()
}

/// Push `repo:latest` whose layers are the given tars (gzipped), labelled with `content_type`.
/// Returns the manifest digest.
fn source_image(
    reg: &Registry,
    repo: &str,
    layers: &[Vec<u8>],
    content_type: Option<&str>,
) -> String {
    let store = Repo::new(client_for(reg), &reg.host(), repo);
    let stored: Vec<_> = layers
        .iter()
        .map(|tar| {
            push_layer_with(
                &store,
                &CompressOptions::new(Compression::Gzip),
                media::OCI_MANIFEST,
                &|w| w.write_all(tar),
            )
            .unwrap()
        })
        .collect();
    let mut cfg = ImageConfig::new("linux", "amd64");
    if let Some(ct) = content_type {
        cfg.set_label("source.contenttype.kpack.io", ct);
    }
    write_image(
        &store,
        &mut cfg,
        &stored,
        media::OCI_MANIFEST,
        &["latest".into()],
    )
    .unwrap()
    .digest
    .to_string()
}

/// Fetch `image` into a fresh workspace; returns (root, log lines, result).
fn pull(reg: &Registry, image: &str) -> (Root, Vec<String>, Result<(), String>) {
    let root = Root::new();
    let lines = std::cell::RefCell::new(Vec::new());
    let r = fetch(
        &client_for(reg),
        image,
        &root.path("workspace"),
        "/workspace",
        &root.path("projectMetadata"),
        &|l| lines.borrow_mut().push(l.to_string()),
    )
    .map_err(|e| e.to_string());
    (root, lines.into_inner(), r)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn inner_tree() -> Vec<u8> {
    tar_bytes(&[
        ("testdir/", b"", 0o755),
        ("testdir/testfile", b"test file contents", 0o644),
    ])
}

#[test]
fn unexploded_archives_by_content_type() {
    let reg = Registry::plain();
    let zip = zip_bytes(&[("testdir/", ""), ("testdir/testfile", "test file contents")]);
    for (ct, file, archive) in [
        ("zip", "app.zip", zip.clone()),
        ("jar", "app.jar", zip.clone()),
        ("war", "app.war", zip),
        ("tar", "app.tar", inner_tree()),
        ("tar.gz", "app.tgz", gzip(&inner_tree())),
    ] {
        let repo = format!("src/{}", ct.replace('.', "-"));
        let digest = source_image(
            &reg,
            &repo,
            &[tar_bytes(&[(file, &archive, 0o644)])],
            Some(ct),
        );
        let image = format!("{}/{repo}", reg.host());
        let (root, lines, r) = pull(&reg, &image);
        r.unwrap_or_else(|e| panic!("{ct}: {e}"));
        let ws = root.path("workspace");
        assert_eq!(names(&ws), vec!["testdir"], "{ct}");
        assert_eq!(names(&ws.join("testdir")), vec!["testfile"], "{ct}");
        assert_eq!(read(&ws.join("testdir/testfile")), "test file contents");
        assert_eq!(
            lines,
            vec![
                format!("Pulling {image}..."),
                format!("Successfully pulled {image} in path \"/workspace\""),
            ]
        );
        assert_eq!(
            read(&root.path("projectMetadata/project-metadata.toml")),
            format!(
                "[source]\n  type = \"image\"\n  [source.metadata]\n    image = \"{image}\"\n  [source.version]\n    digest = \"{digest}\"\n"
            )
        );
    }
}

#[test]
fn regular_images_unpack_every_layer_without_whiteouts() {
    let reg = Registry::plain();
    source_image(
        &reg,
        "src/plain",
        &[tar_bytes(&[("test.txt", b"test file contents\n", 0o644)])],
        None,
    );
    let (root, _, r) = pull(&reg, &format!("{}/src/plain", reg.host()));
    r.unwrap();
    assert_eq!(names(&root.path("workspace")), vec!["test.txt"]);
    assert_eq!(
        read(&root.path("workspace/test.txt")),
        "test file contents\n"
    );

    // Layers apply in order; like kpack, `.wh.` entries are ordinary files.
    source_image(
        &reg,
        "src/layers",
        &[
            tar_bytes(&[("a.txt", b"1", 0o644), ("b.txt", b"b", 0o644)]),
            tar_bytes(&[("a.txt", b"2", 0o644), (".wh.b.txt", b"", 0o644)]),
        ],
        Some("something-else"),
    );
    let (root, _, r) = pull(&reg, &format!("{}/src/layers", reg.host()));
    r.unwrap();
    assert_eq!(read(&root.path("workspace/a.txt")), "2");
    assert_eq!(read(&root.path("workspace/b.txt")), "b");

    // Files whose directories have no entries of their own.
    source_image(
        &reg,
        "src/noheaders",
        &[tar_bytes(&[(
            "vendor/cache/diff-lcs-1.4.2.gem",
            b"gem",
            0o644,
        )])],
        None,
    );
    let (root, _, r) = pull(&reg, &format!("{}/src/noheaders", reg.host()));
    r.unwrap();
    assert_eq!(
        read(&root.path("workspace/vendor/cache/diff-lcs-1.4.2.gem")),
        "gem"
    );
}

#[test]
fn file_modes_are_kept() {
    let reg = Registry::plain();
    let inner = tar_bytes(&[
        ("test-exe/", b"", 0o755),
        ("test-exe/runnable", b"#!/bin/sh\n", 0o755),
    ]);
    source_image(
        &reg,
        "src/exe",
        &[tar_bytes(&[("exe.tar", &inner, 0o644)])],
        Some("tar"),
    );
    let (root, _, r) = pull(&reg, &format!("{}/src/exe", reg.host()));
    r.unwrap();
    assert_eq!(names(&root.path("workspace")), vec!["test-exe"]);
    let mode = std::fs::metadata(root.path("workspace/test-exe/runnable"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn content_type_errors_match_kpack() {
    let reg = Registry::plain();
    let zip = zip_bytes(&[("f", "x")]);
    let one = tar_bytes(&[("a.zip", &zip, 0o644)]);
    let cases: Vec<(&str, Vec<Vec<u8>>, &str, String)> = vec![
        (
            "two-layers",
            vec![one.clone(), one.clone()],
            "zip",
            "expected image to have exactly one layer".into(),
        ),
        (
            "two-files",
            vec![tar_bytes(&[("a.zip", &zip, 0o644), ("b.zip", &zip, 0o644)])],
            "zip",
            "expected layer to have exactly one file".into(),
        ),
        (
            "not-zip",
            vec![tar_bytes(&[("a.zip", &inner_tree(), 0o644)])],
            "zip",
            "expected file '<layer file>' to be a zip archive".into(),
        ),
        (
            "not-tar",
            vec![one.clone()],
            "tar",
            "expected file '<layer file>' to be a tar archive".into(),
        ),
    ];
    for (repo, layers, ct, want) in cases {
        source_image(&reg, &format!("bad/{repo}"), &layers, Some(ct));
        let (root, _, r) = pull(&reg, &format!("{}/bad/{repo}", reg.host()));
        assert_eq!(r.unwrap_err(), want, "{repo}");
        assert!(
            !root.path("projectMetadata/project-metadata.toml").exists(),
            "{repo}"
        );
    }
    // Registry errors come through as they are.
    let (_, _, r) = pull(&reg, &format!("{}/bad/missing", reg.host()));
    let e = r.unwrap_err();
    assert!(e.contains("not found") && e.contains("bad/missing"), "{e}");
}

#[test]
fn prepare_uses_the_first_pull_secret_before_service_account_secrets() {
    const USER: &str = "srcuser";
    const PASS: &str = "source-Pull-secret-9";
    let src_reg = Registry::with_auth(USER, PASS);
    let app_reg = Registry::plain();
    let digest = source_image(
        &src_reg,
        "team/source",
        &[tar_bytes(&[(
            "app.zip",
            &zip_bytes(&[("main.go", "package main\n")]),
            0o644,
        )])],
        Some("zip"),
    );
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("os-release"), "ID=run\n").unwrap();
    common::dir_image(
        &Repo::new(client_for(&app_reg), &app_reg.host(), "run"),
        src.path(),
        Compression::Gzip,
        "amd64",
        "latest",
    );

    let root = Root::new();
    let cfg = |u: &str, p: &str| {
        format!(
            r#"{{"auths":{{"{}":{{"username":"{u}","password":"{p}"}}}}}}"#,
            src_reg.host()
        )
    };
    // The service account's secret for the source registry is wrong; the source's own pull
    // secret (mounted at /registrySourcePullSecrets) is right and wins.
    root.secret(
        "sa-creds",
        &[(".dockerconfigjson", &cfg(USER, "stale-password"))],
    );
    std::fs::write(
        root.path("registrySourcePullSecrets/.dockerconfigjson"),
        cfg(USER, PASS),
    )
    .unwrap();
    let image = format!("{}/team/source", src_reg.host());
    let out = root.run(
        "build-init",
        &["-dockerconfig=sa-creds"],
        &[
            ("REGISTRY_IMAGE", &image),
            ("IMAGE_TAG", &format!("{}/apps/app", app_reg.host())),
            ("RUN_IMAGE", &format!("{}/run", app_reg.host())),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        out.stdout(),
        format!(
            "Loading registry credentials from service account secrets\n\
             Loading secret for \"{h}\" from secret \"sa-creds\" at location \"/var/build-secrets/sa-creds\"\n\
             Loading cluster credential helpers\n\
             Pulling {image}...\n\
             Successfully pulled {image} in path \"/workspace\"\n",
            h = src_reg.host()
        )
    );
    assert_eq!(read(&root.path("workspace/main.go")), "package main\n");
    assert!(read(&root.path("projectMetadata/project-metadata.toml"))
        .contains(&format!("digest = \"{digest}\"")));
    // The pull secret is not handed on to the lifecycle (kpack saves only SA credentials).
    let saved = read(&root.path("builder/home/.docker/config.json"));
    assert!(!saved.contains(PASS), "{saved}");
    assert!(!out.all().contains(PASS));

    // Without the pull secret the stale SA credentials fail, naming nothing secret.
    std::fs::remove_file(root.path("registrySourcePullSecrets/.dockerconfigjson")).unwrap();
    std::fs::remove_dir_all(root.path("workspace")).unwrap();
    std::fs::create_dir_all(root.path("workspace")).unwrap();
    let out = root.run(
        "build-init",
        &["-dockerconfig=sa-creds"],
        &[
            ("REGISTRY_IMAGE", &image),
            ("IMAGE_TAG", &format!("{}/apps/app", app_reg.host())),
            ("RUN_IMAGE", &format!("{}/run", app_reg.host())),
        ],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout().ends_with(&format!(
            "Pulling {image}...\n{h}: authentication failed: HTTP 401 for GET http://{h}/v2/team/source/manifests/latest (credentials for \"{h}\")\n",
            h = src_reg.host()
        )),
        "{out:?}"
    );
    assert!(!out.all().contains("stale-password"));
}
