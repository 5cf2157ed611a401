//! Builder images from kpack resources (`buildpod builder create`) and buildpackages
//! (`buildpod buildpackage package`), against a real registry behind the counting proxy: the
//! tiny stack, two of our lifecycle images (stand-in binaries) and POSIX-sh buildpackages made
//! by our own commands; the builder's order.toml/stack.toml/run.toml bytes, labels and layer
//! list, skopeo and umoci reading it, the same digest twice, a changed buildpackage changing and
//! moving only its own layer, builder.toml giving the same builder, and errors that name the
//! resource, the order entry or the image.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::proxy::Proxy;
use support::registry::Registry;
use support::tools;

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/builder-create");
const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/images/stacks/tiny/stack.toml");
const TLS: &str = "--tls-verify=false";

fn buildpod(args: &[&str]) -> Output {
    Command::new(BUILDPOD)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// stdout of a command that must succeed.
fn ok(args: &[&str]) -> String {
    let out = buildpod(args);
    assert!(
        out.status.success(),
        "buildpod {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// stderr of a command that must fail with exit code 1.
fn fails(args: &[&str]) -> String {
    let out = buildpod(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "buildpod {} should fail; stdout:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A buildpackage as `buildpackage inspect` reports it: id@version → (diffID, digest, size).
type Package = BTreeMap<String, (String, String, u64)>;

struct World {
    _reg: Registry,
    proxy: Proxy,
    /// The proxy's `127.0.0.1:PORT`: every image is named through it, so it sees every request.
    host: String,
    tmp: tempfile::TempDir,
    packages: BTreeMap<String, Package>,
}

impl World {
    fn start() -> World {
        let reg = Registry::plain();
        let proxy = Proxy::start(reg.addr(), vec![]);
        let host = proxy.host();
        let tmp = tempfile::tempdir().unwrap();
        let mut w = World {
            _reg: reg,
            proxy,
            host,
            tmp,
            packages: BTreeMap::new(),
        };
        ok(&[
            "stack",
            "tiny",
            "--definition",
            TINY,
            "--busybox",
            "/bin/busybox",
            &w.img("stacks/tiny/build:1"),
            &w.img("stacks/tiny/run:1"),
        ]);
        let bins = w.tmp.path().join("bins");
        fs::create_dir_all(&bins).unwrap();
        for b in ["lifecycle", "launcher"] {
            let p = bins.join(b);
            fs::write(&p, format!("#!/bin/sh\necho {b}\n")).unwrap();
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        for v in ["0.1.0", "0.2.0"] {
            ok(&[
                "lifecycle",
                "image",
                &w.img(&format!("lifecycle:{v}")),
                "--lifecycle",
                bins.join("lifecycle").to_str().unwrap(),
                "--launcher",
                bins.join("launcher").to_str().unwrap(),
                "--lifecycle-version",
                v,
            ]);
        }
        for bp in ["go", "node", "python", "python-team", "procfile"] {
            w.package(bp, &fixture_bp(bp), &[]);
        }
        let go = w.img("buildpacks/go:1");
        w.package("meta", &fixture_bp("meta"), &[&go]);
        w
    }

    /// `HOST/<rest>`.
    fn img(&self, rest: &str) -> String {
        format!("{}/{rest}", self.host)
    }

    /// Package `dir` as `buildpacks/<name>:1` and record what it holds.
    fn package(&mut self, name: &str, dir: &Path, deps: &[&str]) -> String {
        let tag = self.img(&format!("buildpacks/{name}:1"));
        let mut args = vec![
            "buildpackage",
            "package",
            dir.to_str().unwrap(),
            "--tag",
            &tag,
        ];
        for d in deps {
            args.extend(["--dependency", d]);
        }
        let digest = ok(&args).trim().to_string();
        let inspected: Value =
            serde_json::from_str(&ok(&["buildpackage", "inspect", &tag])).unwrap();
        let mut p = Package::new();
        for b in inspected["buildpacks"].as_array().unwrap() {
            p.insert(
                format!("{}@{}", s(&b["id"]), s(&b["version"])),
                (
                    s(&b["diffId"]).to_string(),
                    s(&b["digest"]).to_string(),
                    b["size"].as_u64().unwrap(),
                ),
            );
        }
        self.packages.insert(name.to_string(), p);
        digest
    }

    /// The fixture resources with the registry filled in, written to a file.
    fn resources(&self, extra: &str) -> PathBuf {
        let text = fs::read_to_string(format!("{FIXTURES}/resources.yaml"))
            .unwrap()
            .replace("REGISTRY", &self.host)
            + extra;
        let p = self
            .tmp
            .path()
            .join(format!("resources-{}.yaml", extra.len()));
        fs::write(&p, text).unwrap();
        p
    }

    /// The layer of `key` in package `name`: (diffID, digest, size).
    fn layer(&self, name: &str, key: &str) -> (String, String, u64) {
        self.packages[name][key].clone()
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn fixture_bp(name: &str) -> PathBuf {
    PathBuf::from(format!("{FIXTURES}/buildpacks/{name}"))
}

/// Config and manifest of a registry image.
fn inspect(image: &str) -> (Value, Value) {
    let image = format!("docker://{image}");
    (
        tools::skopeo_inspect_config(&image, &[TLS]),
        tools::skopeo_inspect_raw(&image, &[TLS]),
    )
}

fn label(cfg: &Value, key: &str) -> Value {
    serde_json::from_str(s(&cfg["config"]["Labels"][key])).unwrap()
}

fn diff_ids(cfg: &Value) -> Vec<String> {
    cfg["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(d).to_string())
        .collect()
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| s(&l["digest"]).to_string())
        .collect()
}

/// `(latestImage, status)` of `builder create … --status-format json`.
fn create(args: &[&str], status_file: &Path) -> (String, Value) {
    let mut all = vec!["builder", "create"];
    all.extend_from_slice(args);
    all.extend([
        "--status-format",
        "json",
        "--status-output",
        status_file.to_str().unwrap(),
    ]);
    let latest = ok(&all).trim().to_string();
    let status: Value = serde_json::from_slice(&fs::read(status_file).unwrap()).unwrap();
    assert_eq!(status["latestImage"], latest.as_str());
    (latest, status)
}

fn digest_of(latest_image: &str) -> String {
    latest_image.rsplit_once('@').unwrap().1.to_string()
}

/// The lifecycle layer our lifecycle image names for linux.
fn lifecycle_layer(image: &str) -> String {
    let (cfg, _) = inspect(image);
    s(&cfg["config"]["Labels"]["linux"]).to_string()
}

const ORDER_TOML: &str = r#"[[order]]

  [[order.group]]
    id = "acme/meta"
    version = "2.0.0"

[[order]]

  [[order.group]]
    id = "acme/node"
    version = "1.0.0"

  [[order.group]]
    id = "acme/python"
    version = "0.9.0"
    optional = true

[[order]]

  [[order.group]]
    id = "acme/node"
    version = "1.0.0"

  [[order.group]]
    id = "acme/procfile"
    version = "0.3.0"
"#;

#[test]
fn builder_from_resources_is_kpacks_image_and_reproducible() {
    tools::require("skopeo");
    tools::require("umoci");
    let w = World::start();
    let res = w.resources("");
    let res = res.to_str().unwrap();
    let status_file = w.tmp.path().join("status.json");
    let (latest, status) = create(&["-f", res, "--builder", "team-a/app"], &status_file);
    let tag = w.img("builders/app:builder-team-a-app");
    assert!(
        latest.starts_with(&w.img("builders/app@sha256:")),
        "{latest}"
    );

    // The status kpack would report: pinned order (the namespaced Buildpack's acme/python
    // 0.9.0 shadows the ClusterBuildpack's 1.0.0), the stack, the lifecycle named.
    let order = json!([
        {"group": [{"id": "acme/meta", "version": "2.0.0"}]},
        {"group": [{"id": "acme/node", "version": "1.0.0"},
                   {"id": "acme/python", "version": "0.9.0", "optional": true}]},
        {"group": [{"id": "acme/node", "version": "1.0.0"},
                   {"id": "acme/procfile", "version": "0.3.0"}]},
    ]);
    assert_eq!(status["order"], order);
    assert_eq!(status["stack"]["id"], "io.buildpacks.stacks.tiny");
    assert_eq!(status["lifecycle"]["version"], "0.2.0");
    assert_eq!(status["os"], "linux");
    let (_, run_manifest) = inspect(&w.img("stacks/tiny/run:1"));
    let relocated = inspect(&w.img("builders/app:builder-team-a-app-run-image"));
    assert_eq!(
        relocated.1, run_manifest,
        "the run image is copied next to the builder"
    );
    let run_ref = s(&status["stack"]["runImage"]).to_string();
    assert!(
        run_ref.starts_with(&w.img("builders/app@sha256:")),
        "{run_ref}"
    );

    // Layers: the build image's, kpack's directories, the lifecycle, the buildpacks by
    // compressed size (descending; ties by id@version descending), stack.toml, order.toml.
    let (cfg, manifest) = inspect(&tag);
    let (stack_cfg, stack_manifest) = inspect(&w.img("stacks/tiny/build:1"));
    let ids = diff_ids(&cfg);
    let digests = layer_digests(&manifest);
    assert_eq!(ids.len(), 10, "{ids:#?}");
    assert_eq!(ids[0], diff_ids(&stack_cfg)[0]);
    assert_eq!(digests[0], layer_digests(&stack_manifest)[0]);
    assert_eq!(ids[2], lifecycle_layer(&w.img("lifecycle:0.2.0")));
    assert_ne!(ids[2], lifecycle_layer(&w.img("lifecycle:0.1.0")));
    let mut bps = [
        ("acme/meta@2.0.0", w.layer("meta", "acme/meta@2.0.0")),
        ("acme/go@1.2.0", w.layer("meta", "acme/go@1.2.0")),
        ("acme/node@1.0.0", w.layer("node", "acme/node@1.0.0")),
        (
            "acme/python@0.9.0",
            w.layer("python-team", "acme/python@0.9.0"),
        ),
        (
            "acme/procfile@0.3.0",
            w.layer("procfile", "acme/procfile@0.3.0"),
        ),
    ];
    bps.sort_by(|a, b| b.1 .2.cmp(&a.1 .2).then(b.0.cmp(a.0)));
    for (i, (key, (diff_id, digest, _))) in bps.iter().enumerate() {
        assert_eq!(&ids[3 + i], diff_id, "layer {} is {key}", 3 + i);
        assert_eq!(
            &digests[3 + i],
            digest,
            "{key}: the buildpackage's blob, byte for byte"
        );
    }
    // The composite's dependency is the same layer as in its own buildpackage.
    assert_eq!(
        w.layer("meta", "acme/go@1.2.0"),
        w.layer("go", "acme/go@1.2.0")
    );

    // Labels: kpack's, and the stack's copied from the build image.
    let labels = &cfg["config"]["Labels"];
    assert_eq!(label(&cfg, "io.buildpacks.buildpack.order"), order);
    let layers = label(&cfg, "io.buildpacks.buildpack.layers");
    let keys: BTreeSet<String> = layers
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(id, v)| {
            v.as_object()
                .unwrap()
                .keys()
                .map(move |ver| format!("{id}@{ver}"))
        })
        .collect();
    let want: BTreeSet<String> = bps.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(keys, want);
    assert_eq!(
        layers["acme/meta"]["2.0.0"],
        json!({"api": "0.10", "layerDiffID": w.layer("meta", "acme/meta@2.0.0").0,
               "order": [{"group": [{"id": "acme/go", "version": "1.2.0"}]}]})
    );
    assert_eq!(
        layers["acme/node"]["1.0.0"],
        json!({"api": "0.10", "layerDiffID": w.layer("node", "acme/node@1.0.0").0,
               "homepage": "https://example.com/node"})
    );
    assert_eq!(labels["io.buildpacks.lifecycle.version"], "0.2.0");
    let apis = label(&cfg, "io.buildpacks.lifecycle.apis");
    assert!(apis["platform"]["supported"]
        .as_array()
        .unwrap()
        .contains(&json!("0.8")));
    let md = label(&cfg, "io.buildpacks.builder.metadata");
    assert_eq!(md["description"], "Custom Builder built with kpack");
    assert_eq!(
        md["stack"]["runImage"],
        json!({"image": run_ref, "mirrors": null})
    );
    assert_eq!(md["lifecycle"]["version"], "0.2.0");
    assert_eq!(md["lifecycle"]["apis"], apis);
    assert_eq!(md["createdBy"]["name"], "kpack Builder");
    let md_ids: Vec<&str> = md["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| s(&b["id"]))
        .collect();
    let sorted_ids: Vec<&str> = bps
        .iter()
        .map(|(k, _)| k.split('@').next().unwrap())
        .collect();
    assert_eq!(md_ids, sorted_ids);
    assert_eq!(status["builderMetadata"], md["buildpacks"]);
    assert_eq!(
        labels["io.buildpacks.stack.id"],
        "io.buildpacks.stacks.tiny"
    );
    assert_eq!(labels["io.buildpacks.stack.mixins"], "[]");
    let env: Vec<&str> = cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert!(env.contains(&"CNB_USER_ID=1000"), "{env:?}");
    assert!(env.contains(&"CNB_GROUP_ID=1000"), "{env:?}");
    assert_eq!(cfg["config"]["WorkingDir"], "/layers");
    assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    // skopeo reads it whole (every blob), umoci unpacks it: the files the lifecycle reads.
    let layout = w.tmp.path().join("copied");
    tools::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{tag}"),
        &format!("oci:{}:b", layout.display()),
    ]);
    let bundle = w.tmp.path().join("bundle");
    tools::umoci_unpack(&layout, "b", &bundle);
    let root = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(root.join("cnb/order.toml")).unwrap(),
        ORDER_TOML
    );
    assert_eq!(
        fs::read_to_string(root.join("cnb/stack.toml")).unwrap(),
        format!("[run-image]\n  image = \"{run_ref}\"\n")
    );
    // Our lifecycle speaks Platform API 0.12+, which reads run.toml instead.
    assert_eq!(
        fs::read_to_string(root.join("cnb/run.toml")).unwrap(),
        format!("[[images]]\n  image = \"{run_ref}\"\n")
    );
    assert!(
        fs::read_to_string(root.join("cnb/lifecycle/lifecycle.toml"))
            .unwrap()
            .contains("0.2.0")
    );
    use std::os::unix::fs::MetadataExt;
    let detect = fs::metadata(root.join("cnb/buildpacks/acme_node/1.0.0/bin/detect")).unwrap();
    assert_eq!(detect.mode() & 0o7777, 0o755);
    let toml = fs::metadata(root.join("cnb/buildpacks/acme_node/1.0.0/buildpack.toml")).unwrap();
    assert_eq!(toml.mode() & 0o7777, 0o644);
    assert!(root
        .join("cnb/buildpacks/acme_go/1.2.0/bin/build")
        .is_file());
    assert!(root
        .join("cnb/buildpacks/acme_meta/2.0.0/buildpack.toml")
        .is_file());
    assert!(!root.join("cnb/buildpacks/acme_python/1.0.0").exists());
    let layers_dir = fs::metadata(root.join("layers")).unwrap();
    assert_eq!((layers_dir.uid(), layers_dir.gid()), (1000, 1000));
    assert!(root.join("platform/env").is_dir());

    // Created twice: the same digest, and nothing uploaded the second time.
    w.proxy.clear();
    let (again, _) = create(&["-f", res, "--builder", "team-a/app"], &status_file);
    assert_eq!(again, latest);
    assert_eq!(w.proxy.count("PUT", "/blobs/"), 0);
    assert_eq!(w.proxy.count("PATCH", "/blobs/"), 0);
    assert_eq!(w.proxy.count("POST", "/blobs/uploads/"), 0);

    // To an OCI layout: the same layers, but stack.toml names the stack's run image (nothing is
    // copied next to a layout); umoci unpacks the layout as written.
    let out = w.tmp.path().join("out");
    let out_ref = format!("oci:{}:app", out.display());
    let (in_layout, _) = create(
        &[
            "-f",
            res,
            "--builder",
            "Builder/team-a/app",
            "--tag",
            &out_ref,
        ],
        &status_file,
    );
    assert!(in_layout.starts_with(&format!("oci:{}@sha256:", out.display())));
    let layout_cfg = tools::skopeo_inspect_config(&out_ref, &[]);
    let layout_ids = diff_ids(&layout_cfg);
    assert_eq!(layout_ids[..8], ids[..8]);
    assert_eq!(layout_ids[9], ids[9]);
    assert_ne!(layout_ids[8], ids[8], "stack.toml names another run image");
    let bundle2 = w.tmp.path().join("bundle2");
    tools::umoci_unpack(&out, "app", &bundle2);
    let stack_toml = fs::read_to_string(bundle2.join("rootfs/cnb/stack.toml")).unwrap();
    assert!(
        stack_toml.contains(&w.img("stacks/tiny/run@sha256:")),
        "{stack_toml}"
    );

    // builder.toml: the ClusterBuilder `plain` again, the same digest.
    let (plain, plain_status) = create(&["-f", res, "--builder", "plain"], &status_file);
    assert!(
        plain.starts_with(&w.img("builders/plain@sha256:")),
        "{plain}"
    );
    assert_eq!(plain_status["lifecycle"]["version"], "0.1.0");
    assert_eq!(
        plain_status["order"],
        json!([{"group": [{"id": "acme/node", "version": "1.0.0"},
                          {"id": "acme/python", "version": "1.0.0", "optional": true}]}])
    );
    let config = w.tmp.path().join("builder.toml");
    fs::write(
        &config,
        fs::read_to_string(format!("{FIXTURES}/builder.toml"))
            .unwrap()
            .replace("REGISTRY", &w.host),
    )
    .unwrap();
    let toml_tag = w.img("builders/plain:toml");
    let (from_toml, toml_status) = create(
        &["--config", config.to_str().unwrap(), "--tag", &toml_tag],
        &status_file,
    );
    assert_eq!(digest_of(&from_toml), digest_of(&plain));
    assert_eq!(toml_status["order"], plain_status["order"]);
}

#[test]
fn a_changed_buildpackage_changes_and_moves_only_its_layer() {
    tools::require("skopeo");
    let mut w = World::start();
    let res = w.resources("");
    let res = res.to_str().unwrap();
    let status_file = w.tmp.path().join("status.json");
    let args = ["-f", res, "--builder", "team-a/app"];
    let (before, _) = create(&args, &status_file);
    let (cfg1, m1) = inspect(&before);

    // acme/node 1.1.0 replaces 1.0.0 behind the same ClusterBuildpack image tag.
    let dir = w.tmp.path().join("node-1.1.0");
    copy_dir(&fixture_bp("node"), &dir);
    let toml = dir.join("buildpack.toml");
    let text = fs::read_to_string(&toml).unwrap();
    fs::write(
        &toml,
        text.replace("version = \"1.0.0\"", "version = \"1.1.0\""),
    )
    .unwrap();
    fs::write(dir.join("lib/extra.txt"), "new in 1.1.0\n").unwrap();
    w.package("node", &dir, &[]);
    let (new_diff, new_digest, _) = w.layer("node", "acme/node@1.1.0");

    w.proxy.clear();
    let (after, status) = create(&args, &status_file);
    assert_ne!(after, before);
    assert_eq!(status["order"][1]["group"][0]["version"], "1.1.0");
    let (cfg2, m2) = inspect(&after);
    let (ids1, ids2) = (diff_ids(&cfg1), diff_ids(&cfg2));
    let (d1, d2) = (layer_digests(&m1), layer_digests(&m2));
    assert_eq!(ids1.len(), ids2.len());
    let changed: Vec<usize> = (0..ids1.len()).filter(|&i| ids1[i] != ids2[i]).collect();
    // acme/node is the largest buildpack (position 3 either way) and order.toml the last layer.
    assert_eq!(
        changed,
        vec![3, 9],
        "only acme/node's layer and order.toml change"
    );
    assert_eq!(ids2[3], new_diff);
    assert_eq!(d2[3], new_digest);
    for i in (0..ids1.len()).filter(|i| !changed.contains(i)) {
        assert_eq!(d1[i], d2[i], "layer {i} is the same blob");
    }

    // Blob traffic: the new buildpack layer is mounted from its buildpackage's repository, never
    // uploaded; the only uploads are the new order.toml layer and the config.
    let puts: BTreeSet<String> = w
        .proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
        .map(|r| {
            let q = r.path.split("digest=").nth(1).unwrap();
            q.split('&').next().unwrap().replace("%3A", ":")
        })
        .collect();
    let config_digest = s(&m2["config"]["digest"]).to_string();
    assert_eq!(puts, BTreeSet::from([d2[9].clone(), config_digest]));
    assert_eq!(w.proxy.count("PATCH", "/blobs/"), 0);
    assert_eq!(w.proxy.count("POST", &format!("mount={new_digest}")), 1);
    assert_eq!(w.proxy.count("POST", "mount="), 1);
}

#[test]
fn bad_input_fails_naming_the_resource_entry_or_image() {
    let w = World::start();
    let no_status = w.tmp.path().join("never.json");
    let out = w.tmp.path().join("out");
    let dest = format!("oci:{}:b", out.display());
    let err = |extra: &str, builder: &str| {
        let res = w.resources(extra);
        fails(&[
            "builder",
            "create",
            "-f",
            res.to_str().unwrap(),
            "--builder",
            builder,
            "--tag",
            &dest,
            "--status-output",
            no_status.to_str().unwrap(),
        ])
    };
    let builder = |name: &str, lifecycle: &str, group: &str| {
        format!(
            "\n---\napiVersion: kpack.io/v1alpha2\nkind: Builder\nmetadata: {{name: {name}, namespace: team-a}}\nspec:\n  tag: {}/builders/x\n  stack: {{name: tiny}}\n{lifecycle}  order:\n  - group: [{group}]\n",
            w.host
        )
    };
    let cluster_bp = |name: &str, image: &str| {
        format!("\n---\napiVersion: kpack.io/v1alpha2\nkind: ClusterBuildpack\nmetadata: {{name: {name}}}\nspec: {{image: {image}}}\n")
    };
    let lc = "  lifecycle: {name: lifecycle-new}\n";

    let e = err(&builder("unknown", lc, "{id: acme/nope}"), "unknown");
    assert!(
        e.contains("ERROR: Builder team-a/unknown: spec.order[0].group[0] {id: acme/nope}: could not find buildpack with id 'acme/nope'"),
        "{e}"
    );

    let gone = "127.0.0.1:9/buildpacks/gone:1";
    let e = err(
        &(builder("b", lc, "{id: acme/node}") + &cluster_bp("gone", gone)),
        "b",
    );
    assert!(
        e.contains(&format!("ERROR: ClusterBuildpack gone: image {gone}: ")),
        "{e}"
    );

    let not_a_package = w.img("stacks/tiny/run:1");
    let e = err(
        &(builder("b", lc, "{id: acme/node}") + &cluster_bp("plain-image", &not_a_package)),
        "b",
    );
    assert!(
        e.contains(&format!(
            "ERROR: ClusterBuildpack plain-image: image {not_a_package}: not a buildpackage: no label io.buildpacks.buildpack.layers"
        )),
        "{e}"
    );

    let e = err(&builder("nolc", "", "{id: acme/node}"), "nolc");
    assert!(
        e.contains("ERROR: Builder team-a/nolc: clusterlifecycle 'default-lifecycle' not found (kpack's default when spec.lifecycle names none"),
        "{e}"
    );
    assert!(e.contains("have: lifecycle-new, lifecycle-old"), "{e}");

    let e = err(
        &builder("wrongver", lc, "{id: acme/node, version: 9.9.9}"),
        "wrongver",
    );
    assert!(
        e.contains("spec.order[0].group[0] {id: acme/node, version: 9.9.9}: could not find buildpack with id 'acme/node' and version '9.9.9'"),
        "{e}"
    );
    let e = err("", "nobody");
    assert!(
        e.contains("no builder \"nobody\" (have: Builder team-a/app, ClusterBuilder plain)"),
        "{e}"
    );

    // Nothing was written.
    assert!(!no_status.exists());
    assert!(!out.join("index.json").exists());
}

#[test]
fn buildpackages_are_packs_layout_reproducible_and_reuse_dependencies() {
    let w = World::start();
    let node = fixture_bp("node");
    let node = node.to_str().unwrap();
    let a = w.tmp.path().join("a");
    let b = w.tmp.path().join("b");
    let da = ok(&[
        "buildpackage",
        "package",
        node,
        "--tag",
        &format!("oci:{}:node", a.display()),
    ]);
    let db = ok(&[
        "buildpackage",
        "package",
        node,
        "--tag",
        &format!("oci:{}:node", b.display()),
    ]);
    assert_eq!(da, db, "same directory, same digest");
    let in_registry = ok(&[
        "buildpackage",
        "package",
        node,
        "--tag",
        &w.img("buildpacks/node:1"),
    ]);
    assert_eq!(
        in_registry, da,
        "a layout and a registry get the same bytes"
    );

    let cfg = tools::skopeo_inspect_config(&format!("oci:{}:node", a.display()), &[]);
    let (diff_id, digest, _) = w.layer("node", "acme/node@1.0.0");
    assert_eq!(diff_ids(&cfg), vec![diff_id.clone()]);
    assert_eq!(
        s(&cfg["config"]["Labels"]["io.buildpacks.buildpackage.metadata"]),
        r#"{"id":"acme/node","version":"1.0.0","homepage":"https://example.com/node"}"#
    );
    assert_eq!(
        s(&cfg["config"]["Labels"]["io.buildpacks.buildpack.layers"]),
        format!(
            r#"{{"acme/node":{{"1.0.0":{{"api":"0.10","targets":[{{"os":"linux","arch":""}}],"layerDiffID":"{diff_id}","homepage":"https://example.com/node"}}}}}}"#
        )
    );
    assert_eq!(cfg["created"], "1980-01-01T00:00:01Z");

    // pack's layout: id and version directories, then the tree; root-owned, normalized times,
    // 0755 for directories and executables, 0644 for the rest.
    let blob = a
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(blob).unwrap()));
    let mut entries = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let row = format!(
            "{name} {:o} {}:{} {}",
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap()
        );
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).unwrap();
        entries.push(row);
    }
    assert_eq!(
        entries,
        [
            "/cnb/buildpacks/acme_node 755 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0 755 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0/bin 755 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0/bin/build 755 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0/bin/detect 755 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0/buildpack.toml 644 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0/lib 755 0:0 315532801",
            "/cnb/buildpacks/acme_node/1.0.0/lib/runtime.txt 644 0:0 315532801",
        ]
    );

    // A composite: its dependency's layer comes along byte for byte (mounted, not uploaded).
    let (go_diff, go_digest, _) = w.layer("go", "acme/go@1.2.0");
    let meta = w.img("buildpacks/meta:1");
    let (meta_cfg, meta_manifest) = inspect(&meta);
    assert_eq!(layer_digests(&meta_manifest)[0], go_digest);
    assert_eq!(diff_ids(&meta_cfg)[0], go_diff);
    assert_eq!(
        s(&meta_cfg["config"]["Labels"]["io.buildpacks.buildpackage.metadata"]),
        r#"{"id":"acme/meta","version":"2.0.0"}"#
    );
    let layers = label(&meta_cfg, "io.buildpacks.buildpack.layers");
    assert_eq!(
        layers["acme/meta"]["2.0.0"]["order"],
        json!([{"group": [{"id": "acme/go", "version": "1.2.0"}]}])
    );
    assert_eq!(layers["acme/go"]["1.2.0"]["layerDiffID"], go_diff.as_str());
    let meta_digest: Value = serde_json::from_str(&tools::skopeo(&[
        "inspect",
        TLS,
        &format!("docker://{meta}"),
    ]))
    .unwrap();
    w.proxy.clear();
    let meta_dir = fixture_bp("meta");
    let meta_dir = meta_dir.to_str().unwrap();
    let go = w.img("buildpacks/go:1");
    let again = ok(&[
        "buildpackage",
        "package",
        meta_dir,
        "--tag",
        &w.img("buildpacks/meta-copy:1"),
        "--dependency",
        &go,
    ]);
    assert_eq!(again.trim(), s(&meta_digest["Digest"]));
    assert_eq!(w.proxy.count("POST", &format!("mount={go_digest}")), 1);
    assert!(!w
        .proxy
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.path.contains(&go_digest)));

    // A composite needs its dependencies, and pack refuses unused ones.
    let e = fails(&[
        "buildpackage",
        "package",
        meta_dir,
        "--tag",
        &format!("oci:{}:meta", a.display()),
    ]);
    assert!(
        e.contains("order[0].group[0]: buildpack acme/go@1.2.0 is not in the dependencies (have: none: add --dependency buildpackages)"),
        "{e}"
    );
    let procfile = w.img("buildpacks/procfile:1");
    let e = fails(&[
        "buildpackage",
        "package",
        meta_dir,
        "--tag",
        &format!("oci:{}:meta", a.display()),
        "--dependency",
        &go,
        "--dependency",
        &procfile,
    ]);
    assert!(
        e.contains(&format!(
            "buildpack acme/procfile@0.3.0 (from dependency {procfile}) is not used by buildpack acme/meta@2.0.0"
        )),
        "{e}"
    );
    let e = fails(&[
        "buildpackage",
        "package",
        node,
        "--tag",
        &format!("oci:{}:x", a.display()),
        "--dependency",
        &go,
    ]);
    assert!(
        e.contains(
            "acme/node@1.0.0 has no [[order]]: dependencies are for composite buildpacks only"
        ),
        "{e}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &p);
        } else {
            fs::copy(e.path(), &p).unwrap();
        }
    }
}
