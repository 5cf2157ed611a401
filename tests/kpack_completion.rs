//! `completion` as a real process, after a real `prepare`, against a real registry: the
//! termination message decodes to kpack's JSON, and every error path gives kpack's text.

mod kpack_util;
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use buildpod::kpack::metadata::{decompress, BuildMetadata, BuildpackMetadata};
use buildpod::layer::{CompressOptions, Compression, TarOptions};
use buildpod::oci::assemble::{push_layer, write_image};
use buildpod::oci::{media, ImageConfig};
use buildpod::registry::{AuthEntry, Client, ClientOptions, Keychain, Repo};
use kpack_util::{gzip, read, tar_of, HttpServer, Root};
use support::registry::Registry;

const USER: &str = "builder";
const PASS: &str = "completion-Secret-42";
const RUN_DIGEST: &str = "sha256:0fd6395e4fe38a0c089665cbe10f52fb26fc64b4b15e672ada412bd7ab5499a0";

fn client(reg: &Registry) -> Arc<Client> {
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

/// Push `repo:tag` with `labels`; returns the manifest digest.
fn push(reg: &Registry, repo: &str, tag: &str, labels: &[(&str, String)]) -> String {
    let store = Repo::new(client(reg), &reg.host(), repo);
    let layer = push_layer(
        &store,
        &TarOptions::default(),
        &CompressOptions::new(Compression::Gzip),
        media::OCI_MANIFEST,
        &|t| t.file_entry(b"app/hello", 0o644, tag.as_bytes()),
    )
    .unwrap();
    let mut cfg = ImageConfig::new("linux", "amd64");
    cfg.set_created(Some("1980-01-01T00:00:01Z"));
    for (k, v) in labels {
        cfg.set_label(k, v);
    }
    write_image(
        &store,
        &mut cfg,
        &[layer],
        media::OCI_MANIFEST,
        &[tag.to_string()],
    )
    .unwrap()
    .digest
    .to_string()
}

fn cnb_labels(run_repo: &str) -> Vec<(&'static str, String)> {
    vec![
        ("io.buildpacks.stack.id", "io.buildpacks.stacks.jammy".into()),
        (
            "io.buildpacks.build.metadata",
            r#"{"buildpacks":[{"id":"paketo/go","version":"4.1.0","homepage":"https://paketo.io"},{"id":"paketo/procfile","version":"5.0.0"}],"launcher":{"version":"0.20.12"}}"#.into(),
        ),
        (
            "io.buildpacks.lifecycle.metadata",
            format!(
                r#"{{"runImage":{{"topLayer":"sha256:71","reference":"{run_repo}@{RUN_DIGEST}"}},"stack":{{"runImage":{{"image":"{run_repo}:latest"}}}}}}"#
            ),
        ),
    ]
}

fn report(root: &Root, tags: &[String], digest: &str) {
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    std::fs::write(
        root.path("var/report/report.toml"),
        format!(
            "[image]\n  tags = [{}]\n  digest = \"{digest}\"\n  manifest-size = 100\n",
            tags.join(", ")
        ),
    )
    .unwrap();
}

fn completion(root: &Root, args: &[&str], cache_tag: &str) -> kpack_util::Out {
    let home = root.path("builder/home");
    let term = root.path("tmp/termination-log");
    root.run(
        "completion",
        args,
        &[
            ("HOME", home.to_str().unwrap()),
            ("CACHE_TAG", cache_tag),
            ("TERMINATION_MESSAGE_PATH", term.to_str().unwrap()),
        ],
    )
}

fn message(root: &Root) -> BuildMetadata {
    decompress(&read(&root.path("tmp/termination-log"))).unwrap()
}

fn has_go_log_prefix(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20 && b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':' && b[19] == b' '
}

#[test]
fn prepare_then_completion_reports_kpack_metadata() {
    let reg = Registry::with_auth(USER, PASS);
    let host = reg.host();
    push(&reg, "run", "latest", &[]);
    let root = Root::new();
    root.secret(
        "registry-creds",
        &[(
            ".dockerconfigjson",
            &format!(r#"{{"auths":{{"{host}":{{"username":"{USER}","password":"{PASS}"}}}}}}"#),
        )],
    );
    let mut files = HashMap::new();
    files.insert(
        "app.tgz".to_string(),
        gzip(&tar_of(&[("main.go", "package main\n")])),
    );
    let http = HttpServer::start(files, None);
    let tag = format!("{host}/apps/app");
    let out = root.run(
        "build-init",
        &["-dockerconfig=registry-creds"],
        &[
            ("BLOB_URL", &http.url("app.tgz")),
            ("IMAGE_TAG", &tag),
            ("RUN_IMAGE", &format!("{host}/run:latest")),
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");

    // What the exporter would have done.
    let digest = push(
        &reg,
        "apps/app",
        "latest",
        &cnb_labels(&format!("{host}/run")),
    );
    let cache_digest = push(&reg, "apps/app-cache", "latest", &[]);
    report(
        &root,
        &[tag.clone(), format!("{tag}:b1.20260101.120000")],
        &digest,
    );

    // Completion authenticates with the config.json prepare wrote (HOME=/builder/home).
    let out = completion(
        &root,
        &[
            "-dockerconfig=registry-creds",
            "-basic-git=git-creds=https://github.com",
            "-cosign-annotations=buildNumber=3",
        ],
        &format!("{host}/apps/app-cache"),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "Build successful\n");
    let m = message(&root);
    assert_eq!(
        m,
        BuildMetadata {
            buildpack_metadata: vec![
                BuildpackMetadata {
                    id: "paketo/go".into(),
                    version: "4.1.0".into(),
                    homepage: "https://paketo.io".into()
                },
                BuildpackMetadata {
                    id: "paketo/procfile".into(),
                    version: "5.0.0".into(),
                    homepage: String::new()
                },
            ],
            latest_cache_image: format!("{host}/apps/app-cache@{cache_digest}"),
            latest_image: format!("{host}/apps/app@{digest}"),
            stack_id: "io.buildpacks.stacks.jammy".into(),
            stack_run_image: format!("{host}/run@{RUN_DIGEST}"),
            lifecycle_version: "0.20.12".into(),
        }
    );
    assert!(read(&root.path("tmp/termination-log")).len() <= 4096);
    assert!(!out.all().contains(PASS));

    // A cache tag that cannot be resolved is ignored.
    let out = completion(&root, &[], &format!("{host}/apps/no-such-cache"));
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(message(&root).latest_cache_image, "");
}

#[test]
fn missing_stack_id_gives_empty_metadata_like_kpack() {
    let reg = Registry::plain();
    let host = reg.host();
    let digest = push(&reg, "app", "latest", &[]);
    let root = Root::new();
    report(&root, &[format!("{host}/app")], &digest);
    let out = completion(&root, &[], "");
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(message(&root), BuildMetadata::default());
    assert!(
        out.stderr().contains("has no io.buildpacks.stack.id label"),
        "{out:?}"
    );
}

#[test]
fn oversize_message_fails() {
    let reg = Registry::plain();
    let host = reg.host();
    let mut labels = cnb_labels(&format!("{host}/run"));
    // Hundreds of buildpacks with incompressible ids.
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let bps: Vec<String> = (0..400)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!(r#"{{"id":"bp-{x:016x}","version":"{}"}}"#, x % 1000)
        })
        .collect();
    labels[1].1 = format!(r#"{{"buildpacks":[{}]}}"#, bps.join(","));
    let digest = push(&reg, "app", "latest", &labels);
    let root = Root::new();
    report(&root, &[format!("{host}/app")], &digest);
    let out = completion(&root, &[], "");
    assert_eq!(out.code(), 1, "{out:?}");
    let line = out.stderr().lines().last().unwrap().to_string();
    assert!(has_go_log_prefix(&line), "{line}");
    assert!(
        line.ends_with(" compressed metadata size too large"),
        "{line}"
    );
    assert!(!root.path("tmp/termination-log").exists());
}

#[test]
fn report_errors_match_kpack() {
    let root = Root::new();
    let out = completion(&root, &[], "");
    assert_eq!(out.code(), 1, "{out:?}");
    // Go's log.Fatal(err, "...") joins the two with no separator.
    let line = out.stderr().trim_end().to_string();
    assert!(has_go_log_prefix(&line), "{line}");
    assert!(
        line.ends_with(
            " open /var/report/report.toml: no such file or directoryerror decoding report toml file"
        ),
        "{out:?}"
    );
    std::fs::write(
        root.path("var/report/report.toml"),
        "[image]\ndigest = \"sha256:00\"\n",
    )
    .unwrap();
    let out = completion(&root, &[], "");
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .trim_end()
            .ends_with(" no image found in report"),
        "{out:?}"
    );
    assert_eq!(out.stdout(), "");
}

#[test]
fn notary_is_refused_clearly() {
    let reg = Registry::plain();
    let host = reg.host();
    let digest = push(&reg, "app", "latest", &[]);
    let root = Root::new();
    report(&root, &[format!("{host}/app")], &digest);
    let out = completion(&root, &["-notary-v1-url=https://notary.example"], "");
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr().contains("notary v1 signing"), "{out:?}");
    assert!(out.stderr().contains("not supported"), "{out:?}");
}
