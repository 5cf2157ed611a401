//! Builder status, kpack's builder checks (`create_builder_test.go` validation cases), and the
//! builder and run image tags.

use super::resolve::{Resolution, Selected};
use super::resources::{
    BuilderKind, BuildpackSource, BuildpackStack, BuildpackStatus, SourceKind, StackStatus,
};
use super::status::{ready_stack, resolved_builder_ref, run_image_tag, status, validate, Written};
use super::{parse, Resolver};
use crate::clusterlifecycle::descriptor::{ApiSet, Apis, LegacyApi};
use crate::clusterlifecycle::resource::{ResolvedImage, Status};

const RULES: &str = include_str!("../../tests/fixtures/builder/rules.yaml");

fn apis(buildpack: &[&str], platform: &[&str]) -> Apis {
    let set = |v: &[&str]| ApiSet {
        deprecated: Vec::new(),
        supported: v.iter().map(|s| s.to_string()).collect(),
    };
    Apis {
        buildpack: set(buildpack),
        platform: set(platform),
    }
}

fn lifecycle() -> Status {
    Status {
        image: ResolvedImage {
            latest_image: "registry.local/lifecycle@sha256:3333333333333333333333333333333333333333333333333333333333333333".into(),
            image: "registry.local/lifecycle:0.1.0".into(),
        },
        version: "0.1.0".into(),
        api: LegacyApi {
            buildpack: "0.7".into(),
            platform: "0.7".into(),
        },
        apis: apis(&["0.7", "0.8", "0.9", "0.10", "0.11"], &["0.7", "0.8", "0.9", "0.10"]),
    }
}

#[test]
fn status_of_a_builder_from_resources() {
    let res = parse(RULES).unwrap();
    let b = res.builder(BuilderKind::Builder, "team-a", "app").unwrap();
    let resolution = Resolver::new(&res, b).unwrap().resolve_order().unwrap();
    let (_, stack) = ready_stack(&res.stacks, b).unwrap();
    let written = Written {
        latest_image: "registry.local/builders/app@sha256:4444444444444444444444444444444444444444444444444444444444444444",
        relocated_run_image: "registry.local/builders/app:builder-team-a-app-run-image@sha256:2222222222222222222222222222222222222222222222222222222222222222",
        os: "linux",
    };
    let got = status(b, &resolution, stack, &lifecycle(), &written).unwrap();
    let json = serde_json::to_value(&got).unwrap();
    let want = serde_json::json!({
        "latestImage": written.latest_image,
        // compressed size descending: go 500, nodejs 310, python 200, static 20, meta-all 1
        "builderMetadata": [
            {"id": "go", "version": "1.0.0"},
            {"id": "nodejs", "version": "1.10.0"},
            {"id": "python", "version": "2.0.0"},
            {"id": "static", "version": "0.2.0"},
            {"id": "meta-all", "version": "1.0.0"},
        ],
        "order": [
            {"group": [{"id": "python", "version": "2.0.0"}, {"id": "nodejs", "version": "1.10.0"}]},
            {"group": [{"id": "meta-all", "version": "1.0.0"}]},
            {"group": [{"id": "static", "version": "0.2.0"}, {"id": "go", "version": "1.0.0", "optional": true}]},
        ],
        "stack": {"runImage": written.relocated_run_image, "id": "io.buildpacks.stacks.tiny"},
        "lifecycle": {
            "version": "0.1.0",
            "api": {"buildpack": "0.7", "platform": "0.7"},
            "apis": {
                "buildpack": {"deprecated": [], "supported": ["0.7", "0.8", "0.9", "0.10", "0.11"]},
                "platform": {"deprecated": [], "supported": ["0.7", "0.8", "0.9", "0.10"]},
            },
        },
        "os": "linux",
    });
    assert_eq!(json, want);
}

fn source(buildpacks: Vec<BuildpackStatus>) -> BuildpackSource {
    BuildpackSource {
        kind: SourceKind::ClusterBuildpack,
        name: "src".into(),
        namespace: None,
        images: Vec::new(),
        service_account: None,
        buildpacks,
    }
}

fn bp(api: &str, stacks: &[(&str, &[&str])]) -> BuildpackStatus {
    BuildpackStatus {
        id: "bp".into(),
        version: "1.0.0".into(),
        api: api.into(),
        stacks: stacks
            .iter()
            .map(|(id, mixins)| BuildpackStack {
                id: (*id).into(),
                mixins: mixins.iter().map(|m| m.to_string()).collect(),
            })
            .collect(),
        ..Default::default()
    }
}

fn check(b: BuildpackStatus, mixins: &[&str], apis: &Apis) -> Result<(), String> {
    let src = source(vec![b]);
    let resolution = Resolution {
        order: Vec::new(),
        buildpacks: vec![Selected {
            buildpack: &src.buildpacks[0],
            source: &src,
        }],
    };
    let stack = StackStatus {
        id: "io.custom.stack".into(),
        mixins: mixins.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    validate(&resolution, &stack, apis)
}

/// What, buildpack, stack mixins, lifecycle APIs, expected.
type ValidationCase<'a> = (
    &'a str,
    BuildpackStatus,
    &'a [&'a str],
    &'a Apis,
    Result<(), &'a str>,
);

#[test]
fn validation_table() {
    let p07 = apis(&["0.2", "0.3", "0.4", "0.5"], &["0.7"]);
    let p06 = apis(&["0.2", "0.3", "0.4", "0.5"], &["0.6"]);
    let p09 = apis(&["0.2"], &["0.9", "0.10"]);
    let cases: Vec<ValidationCase> = vec![
        ("stack id matches", bp("0.2", &[("io.custom.stack", &[])]), &[], &p07, Ok(())),
        ("no stacks (Buildpack API 0.10+)", bp("0.5", &[]), &[], &p07, Ok(())),
        ("unsupported buildpack api", bp("0.1", &[("io.custom.stack", &[])]), &[], &p07,
            Err("validating buildpack bp@1.0.0: unsupported buildpack api: 0.1, expecting: 0.2, 0.3, 0.4, 0.5")),
        ("other stack", bp("0.2", &[("io.other.stack", &[])]), &[], &p07,
            Err("validating buildpack bp@1.0.0: stack io.custom.stack is not supported")),
        ("any stack needs api 0.5", bp("0.4", &[("*", &[])]), &[], &p07,
            Err("validating buildpack bp@1.0.0: stack io.custom.stack is not supported")),
        ("any stack with api 0.5", bp("0.5", &[("*", &[])]), &[], &p07, Ok(())),
        ("missing mixins", bp("0.2", &[("io.custom.stack", &["a", "b", "c"])]), &["b"], &p07,
            Err("validating buildpack bp@1.0.0: stack missing mixin(s): a, c")),
        ("relaxed: plain mixin meets a stage one", bp("0.2", &[("io.custom.stack", &["build:a", "run:a"])]), &["a"], &p07, Ok(())),
        ("relaxed: both stage mixins meet a plain one", bp("0.2", &[("io.custom.stack", &["a"])]), &["build:a", "run:a"], &p07, Ok(())),
        ("strict before platform 0.7", bp("0.2", &[("io.custom.stack", &["build:a"])]), &["a"], &p06,
            Err("validating buildpack bp@1.0.0: stack missing mixin(s): build:a")),
        ("lifecycle without a kpack platform api", bp("0.2", &[("io.custom.stack", &[])]), &[], &p09,
            Err("unsupported platform apis in kpack lifecycle: 0.9, 0.10, expecting one of: 0.3, 0.4, 0.5, 0.6, 0.7, 0.8")),
    ];
    for (what, b, mixins, apis, want) in cases {
        assert_eq!(
            check(b, mixins, apis),
            want.map_err(str::to_string),
            "{what}"
        );
    }
    let mut meta = bp("", &[("io.other.stack", &[])]);
    meta.order = vec![Default::default()];
    assert_eq!(
        check(meta, &[], &p07),
        Ok(()),
        "meta-buildpacks are not checked"
    );
}

#[test]
fn builder_and_run_image_tags() {
    let res = parse(RULES).unwrap();
    let mut app = res
        .builder(BuilderKind::Builder, "team-a", "app")
        .unwrap()
        .clone();
    let mut cluster = res
        .builder(BuilderKind::ClusterBuilder, "", "cluster")
        .unwrap()
        .clone();
    let cases: &[(&str, &str, &str)] = &[
        (
            "registry.local/builders/app",
            "registry.local/builders/app:builder-team-a-app",
            "registry.local/builders/app:clusterbuilder-cluster",
        ),
        (
            "registry.local/builders/app:latest",
            "registry.local/builders/app:builder-team-a-app",
            "registry.local/builders/app:clusterbuilder-cluster",
        ),
        (
            "registry.local/builders/app:v1",
            "registry.local/builders/app:v1",
            "registry.local/builders/app:v1",
        ),
        (
            "localhost:5000/app",
            "localhost:5000/app:builder-team-a-app",
            "localhost:5000/app:clusterbuilder-cluster",
        ),
    ];
    for (tag, want_app, want_cluster) in cases {
        app.tag = tag.to_string();
        cluster.tag = tag.to_string();
        assert_eq!(resolved_builder_ref(&app).unwrap(), *want_app, "{tag}");
        assert_eq!(
            resolved_builder_ref(&cluster).unwrap(),
            *want_cluster,
            "{tag}"
        );
    }
    app.tag = "registry.local/builders/app".into();
    assert_eq!(
        run_image_tag(&app).unwrap(),
        "registry.local/builders/app:builder-team-a-app-run-image"
    );
    app.tag = String::new();
    assert_eq!(
        resolved_builder_ref(&app).unwrap_err().to_string(),
        "Builder team-a/app: missing field(s): spec.tag"
    );
}

#[test]
fn stack_must_exist_and_be_ready() {
    let mut res = parse(RULES).unwrap();
    let mut b = res
        .builder(BuilderKind::Builder, "team-a", "app")
        .unwrap()
        .clone();
    b.stack.name = "nowhere".into();
    assert_eq!(
        ready_stack(&res.stacks, &b).unwrap_err().to_string(),
        "Builder team-a/app: clusterstack 'nowhere' not found"
    );
    b.stack.name = "tiny".into();
    res.stacks[0].status = None;
    assert_eq!(
        ready_stack(&res.stacks, &b).unwrap_err().to_string(),
        "Builder team-a/app: clusterstack 'tiny' is not ready"
    );
}
