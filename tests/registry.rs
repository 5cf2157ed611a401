//! The registry client against a real docker-registry: round trips with skopeo, auth, TLS,
//! blob dedup and mounts, retries and fault handling.

#[path = "common_image.rs"]
mod common;
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use buildpod::layer::Compression;
use buildpod::oci::copy::{copy_image, CopyOptions};
use buildpod::oci::layout::Layout;
use buildpod::oci::{BlobStore, ImageConfig, Manifest, PlatformSpec};
use buildpod::registry::{AuthEntry, Client, ClientOptions, Keychain, Repo};
use support::proxy::{Fault, Proxy};
use support::registry::Registry;
use support::{tools, tree};

fn client(keychain: Keychain) -> Arc<Client> {
    Client::new(ClientOptions {
        keychain,
        backoff: std::time::Duration::from_millis(20),
        ..Default::default()
    })
    .unwrap()
}

fn client_with(opts: ClientOptions) -> Arc<Client> {
    Client::new(opts).unwrap()
}

/// A layout holding a sample-tree image tagged "app".
fn sample_layout(tmp: &std::path::Path) -> (Layout, std::path::PathBuf) {
    let src = tmp.join("src");
    tree::make_sample_tree(&src);
    let layout = Layout::create(&tmp.join("layout")).unwrap();
    common::dir_image(&layout, &src, Compression::Gzip, "amd64", "app");
    (layout, src)
}

fn push(layout: &Layout, repo: &Repo, tag: &str) -> buildpod::oci::RawManifest {
    copy_image(
        layout,
        "app",
        repo,
        &[tag.to_string()],
        &CopyOptions::default(),
    )
    .unwrap()
    .0
}

#[test]
fn pushed_image_is_copied_back_by_skopeo_byte_identically() {
    tools::require("skopeo");
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());
    let c = client(Keychain::empty());
    let repo = Repo::new(c, &reg.host(), "test/app");
    let m = push(&layout, &repo, "v1");

    let back = tmp.path().join("back");
    tools::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/test/app:v1", reg.host()),
        &format!("oci:{}:v1", back.display()),
    ]);
    let back = Layout::open(&back).unwrap();
    let bm = back.get_manifest("v1").unwrap();
    assert_eq!(bm.bytes, m.bytes, "manifest bytes differ");
    let Manifest::Image(im) = bm.parse().unwrap() else {
        panic!()
    };
    for d in std::iter::once(im.config()).chain(im.layers().iter()) {
        let d = buildpod::oci::manifest::descriptor_digest(d).unwrap();
        assert_eq!(
            std::fs::read(back.blob_path(&d)).unwrap(),
            std::fs::read(layout.blob_path(&d)).unwrap(),
            "blob {d}"
        );
    }
}

#[test]
fn images_pushed_by_skopeo_are_read_oci_v2s2_and_index() {
    tools::require("skopeo");
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree::make_sample_tree(&src);
    let lay_dir = tmp.path().join("layout");
    let layout = Layout::create(&lay_dir).unwrap();
    let amd = common::dir_image(&layout, &src, Compression::Gzip, "amd64", "amd");
    let small = tmp.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("arch"), "arm64\n").unwrap();
    let arm = common::dir_image(&layout, &small, Compression::Gzip, "arm64", "arm");
    // A two-platform index in the layout, pushed with `skopeo copy --all`.
    let mut descs = Vec::new();
    for (m, arch) in [(&amd, "amd64"), (&arm, "arm64")] {
        let mut d = m.descriptor();
        d.set_platform(Some(
            oci_spec::image::PlatformBuilder::default()
                .os(oci_spec::image::Os::Linux)
                .architecture(oci_spec::image::Arch::from(arch))
                .build()
                .unwrap(),
        ));
        descs.push(d);
    }
    let idx = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(oci_spec::image::MediaType::ImageIndex)
        .manifests(descs)
        .build()
        .unwrap();
    let raw_idx = buildpod::oci::RawManifest::index(&idx).unwrap();
    layout
        .put_manifest(&raw_idx, &["multi".to_string()])
        .unwrap();

    let host = reg.host();
    let push = |tag: &str, to: &str, extra: &[&str]| {
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        args.extend_from_slice(extra);
        let src = format!("oci:{}:{tag}", lay_dir.display());
        let dst = format!("docker://{host}/{to}");
        args.push(&src);
        args.push(&dst);
        tools::skopeo(&args);
    };
    push("amd", "sk/oci:1", &[]);
    push("amd", "sk/v2s2:1", &["--format", "v2s2"]);
    push("multi", "sk/multi:1", &["--all"]);

    let c = client(Keychain::empty());
    let read = |repo: &str, tag: &str, platform: Option<&str>| {
        let r = Repo::new(c.clone(), &host, repo);
        let mut m = r.get_manifest(tag).unwrap();
        if let Manifest::Index(idx) = m.parse().unwrap() {
            let p = PlatformSpec::parse(platform.unwrap()).unwrap();
            let d = buildpod::oci::manifest::select_platform(&idx, &p).unwrap();
            m = r.get_manifest(d.digest().as_ref()).unwrap();
        }
        let Manifest::Image(im) = m.parse().unwrap() else {
            panic!()
        };
        let cd = buildpod::oci::manifest::descriptor_digest(im.config()).unwrap();
        let cfg = ImageConfig::from_json(
            &r.read_blob(&cd, Some(im.config().size())).unwrap(),
            "config",
        )
        .unwrap();
        let out = tmp.path().join(
            format!("out-{}-{}", repo.replace('/', "_"), platform.unwrap_or("")).replace('/', "_"),
        );
        for l in im.layers() {
            let ld = buildpod::oci::manifest::descriptor_digest(l).unwrap();
            buildpod::layer::apply_layer(
                r.open_blob(&ld, Some(l.size())).unwrap(),
                &out,
                &Default::default(),
            )
            .unwrap();
        }
        (m.media_type.clone(), cfg, out)
    };
    let (mt, cfg, out) = read("sk/oci", "1", None);
    assert_eq!(mt, buildpod::oci::media::OCI_MANIFEST);
    assert_eq!(cfg.label("org.example.name").as_deref(), Some("amd"));
    tree::snapshot(&src).assert_same(&tree::snapshot(&out));

    let (mt, cfg, out) = read("sk/v2s2", "1", None);
    assert_eq!(mt, buildpod::oci::media::DOCKER_MANIFEST);
    assert_eq!(cfg.env_var("PATH").as_deref(), Some("/usr/bin:/bin"));
    tree::snapshot(&src).assert_same(&tree::snapshot(&out));

    let (_, cfg, out) = read("sk/multi", "1", Some("linux/arm64"));
    assert_eq!(cfg.architecture(), "arm64");
    assert_eq!(
        std::fs::read_to_string(out.join("arch")).unwrap(),
        "arm64\n"
    );
    let (_, cfg, _) = read("sk/multi", "1", Some("linux/amd64"));
    assert_eq!(cfg.architecture(), "amd64");
}

#[test]
fn htpasswd_auth_from_keychain_and_docker_config_and_wrong_password() {
    tools::require("skopeo");
    let reg = Registry::with_auth("builder", "s3cret");
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());

    // Credentials given directly.
    let mut kc = Keychain::empty();
    kc.insert(&host, AuthEntry::basic("builder", "s3cret"));
    push(&layout, &Repo::new(client(kc), &host, "auth/app"), "v1");

    // Credentials from a docker config.json (auth field, http:// key form).
    let cfg_path = tmp.path().join("config.json");
    std::fs::write(
        &cfg_path,
        format!(r#"{{"auths":{{"http://{host}/v2/":{{"auth":"YnVpbGRlcjpzM2NyZXQ="}}}}}}"#),
    )
    .unwrap();
    let kc = Keychain::from_file(&cfg_path).unwrap();
    let r = Repo::new(client(kc), &host, "auth/app");
    let m = r.get_manifest("v1").unwrap();
    let inspect: serde_json::Value = serde_json::from_str(&tools::skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "builder:s3cret",
        &format!("docker://{host}/auth/app:v1"),
    ]))
    .unwrap();
    assert_eq!(inspect["Digest"], m.digest.to_string());

    // A wrong password names the registry and the status; the secret is not printed.
    let mut kc = Keychain::empty();
    kc.insert(&host, AuthEntry::basic("builder", "wrong-password"));
    let err = Repo::new(client(kc), &host, "auth/app")
        .get_manifest("v1")
        .unwrap_err()
        .to_string();
    assert!(err.contains(&host) && err.contains("401"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
    // Anonymous access is refused with the same clarity.
    let err = Repo::new(client(Keychain::empty()), &host, "auth/app")
        .get_manifest("v1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&host) && err.contains("401") && err.contains("no credentials"),
        "{err}"
    );
}

#[test]
fn tls_registry_with_custom_ca_and_untrusted_certificate() {
    let reg = Registry::tls();
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());
    let trusted = client_with(ClientOptions {
        ca_files: vec![reg.ca_cert().unwrap()],
        ..Default::default()
    });
    let repo = Repo::new(trusted.clone(), &host, "tls/app");
    let m = push(&layout, &repo, "v1");
    assert!(trusted.base_url(&host).unwrap().starts_with("https://"));
    assert_eq!(repo.get_manifest("v1").unwrap().digest, m.digest);
    tools::skopeo(&[
        "inspect",
        "--cert-dir",
        reg.cert_dir().unwrap().to_str().unwrap(),
        &format!("docker://{host}/tls/app:v1"),
    ]);

    let untrusted = client(Keychain::empty());
    let err = Repo::new(untrusted, &host, "tls/app")
        .get_manifest("v1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&host) && err.contains("certificate not trusted"),
        "{err}"
    );
}

#[test]
fn existing_blobs_are_not_uploaded_again_and_other_repo_blobs_are_mounted() {
    let reg = Registry::plain();
    let proxy = Proxy::start(reg.addr(), vec![]);
    let host = proxy.host();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());
    let c = client(Keychain::empty());

    push(&layout, &Repo::new(c.clone(), &host, "dedup/a"), "v1");
    assert_eq!(
        proxy.count("PUT", "/blobs/uploads/"),
        2,
        "config + layer uploaded once"
    );

    proxy.clear();
    push(&layout, &Repo::new(c.clone(), &host, "dedup/a"), "v2");
    assert_eq!(
        proxy.count("PUT", "/blobs/uploads/"),
        0,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("POST", "/blobs/uploads/"), 0);
    assert_eq!(proxy.count("HEAD", "/blobs/sha256:"), 2);

    // Registry → registry copy into another repository: blobs are mounted, not uploaded.
    proxy.clear();
    let src = Repo::new(c.clone(), &host, "dedup/a");
    let dst = Repo::new(c, &host, "dedup/b");
    let (_, stats) = copy_image(
        &src,
        "v1",
        &dst,
        &["v1".to_string()],
        &CopyOptions::default(),
    )
    .unwrap();
    assert_eq!(stats.mounted, 2, "{stats:?}");
    assert_eq!(
        proxy.count("POST", "mount=sha256:"),
        2,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("PUT", "/blobs/uploads/"), 0);
    assert_eq!(proxy.count("GET", "/blobs/"), 0, "no blob was downloaded");
    assert!(dst.get_manifest("v1").is_ok());
}

#[test]
fn one_off_503_and_dropped_upload_are_retried() {
    let reg = Registry::plain();
    let proxy = Proxy::start(
        reg.addr(),
        vec![
            Fault::Status {
                method: "POST",
                path_contains: "/blobs/uploads/",
                status: 503,
                times: 1,
            },
            Fault::DropRequestBody {
                method: "PUT",
                path_contains: "/blobs/uploads/",
                after_bytes: 4096,
                times: 1,
            },
            Fault::Status {
                method: "PUT",
                path_contains: "/manifests/",
                status: 503,
                times: 1,
            },
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());
    let c = client(Keychain::empty());
    let repo = Repo::new(c, &proxy.host(), "retry/app");
    let m = push(&layout, &repo, "v1");
    assert_eq!(repo.get_manifest("v1").unwrap().digest, m.digest);
    assert!(proxy.count("PUT", "/manifests/v1") >= 2);
}

#[test]
fn streamed_upload_survives_a_dropped_connection() {
    let reg = Registry::plain();
    let proxy = Proxy::start(
        reg.addr(),
        vec![Fault::DropRequestBody {
            method: "PATCH",
            path_contains: "/blobs/uploads/",
            after_bytes: 100_000,
            times: 1,
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tree::make_sample_tree(&src);
    let repo = Repo::new(client(Keychain::empty()), &proxy.host(), "stream/app");
    let m = common::dir_image(&repo, &src, Compression::Gzip, "amd64", "v1");
    assert_eq!(
        proxy.count("PATCH", "/blobs/uploads/"),
        2,
        "{:?}",
        proxy.requests()
    );
    // The result is byte-identical to the same image written to a layout.
    let layout = Layout::create(&tmp.path().join("l")).unwrap();
    let lm = common::dir_image(&layout, &src, Compression::Gzip, "amd64", "v1");
    assert_eq!(m.digest, lm.digest);
    assert_eq!(repo.get_manifest("v1").unwrap().digest, m.digest);
}

#[test]
fn persistent_failure_is_a_clear_error_and_no_manifest_is_written() {
    let reg = Registry::plain();
    let proxy = Proxy::start(
        reg.addr(),
        vec![Fault::Status {
            method: "PUT",
            path_contains: "/blobs/uploads/",
            status: 503,
            times: 100,
        }],
    );
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());
    let repo = Repo::new(client(Keychain::empty()), &proxy.host(), "fail/app");
    let err = copy_image(
        &layout,
        "app",
        &repo,
        &["v1".to_string()],
        &CopyOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("503") && err.contains("attempts") && err.contains(&proxy.host()),
        "{err}"
    );
    assert_eq!(proxy.count("PUT", "/manifests/"), 0);
    let direct = Repo::new(client(Keychain::empty()), &reg.host(), "fail/app");
    assert!(direct.get_manifest("v1").unwrap_err().is_not_found());
}

#[test]
fn bounded_parallel_transfer_copies_many_layers() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(&tmp.path().join("l")).unwrap();
    let mut layers = Vec::new();
    for i in 0..12 {
        let d = tmp.path().join(format!("d{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), format!("layer {i}\n").repeat(1000)).unwrap();
        layers.push(common::dir_layer(&layout, &d, Compression::Gzip, 1));
    }
    let mut cfg = ImageConfig::new("linux", "amd64");
    buildpod::oci::assemble::write_image(
        &layout,
        &mut cfg,
        &layers,
        buildpod::oci::media::OCI_MANIFEST,
        &["many".into()],
    )
    .unwrap();
    let repo = Repo::new(client(Keychain::empty()), &reg.host(), "many/app");
    let (_, stats) = copy_image(
        &layout,
        "many",
        &repo,
        &["v1".into()],
        &CopyOptions {
            parallel: 3,
            platform: None,
        },
    )
    .unwrap();
    assert_eq!(stats.uploaded, 13);
    let got: HashMap<_, _> = repo
        .get_manifest("v1")
        .map(|m| (m.digest.clone(), m))
        .into_iter()
        .collect();
    assert_eq!(got.len(), 1);
}

#[test]
fn bearer_token_auth_against_distribution_token_server() {
    use support::registry::RegistryOpts;
    use support::token::TokenServer;
    let tokens = TokenServer::start("robot", "t0ken-pass");
    let reg = Registry::start(RegistryOpts {
        token: Some(tokens.auth()),
        ..Default::default()
    });
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = sample_layout(tmp.path());

    let mut kc = Keychain::empty();
    kc.insert(&host, AuthEntry::basic("robot", "t0ken-pass"));
    let c = client(kc);
    let m = push(&layout, &Repo::new(c.clone(), &host, "bearer/app"), "v1");
    assert_eq!(
        Repo::new(c, &host, "bearer/app")
            .get_manifest("v1")
            .unwrap()
            .digest,
        m.digest
    );
    let asked = tokens.requests();
    assert!(
        asked
            .iter()
            .any(|q| q.contains("service=buildpod-test-registry") && q.contains("push")),
        "{asked:?}"
    );

    // Wrong password: the token server refuses, and the error names the registry and status.
    let mut kc = Keychain::empty();
    kc.insert(&host, AuthEntry::basic("robot", "nope"));
    let err = Repo::new(client(kc), &host, "bearer/app")
        .get_manifest("v1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&host) && err.contains("401") && err.contains("/token"),
        "{err}"
    );
}
