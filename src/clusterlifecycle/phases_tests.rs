//! Table tests of the phase driver: kpack's exact pod arguments (0.7–0.9) and the flags each
//! later Platform API adds for optional parameters.

use std::path::PathBuf;

use super::phases::{plan, BuildParams, Cache, DriverError, Invocation, Phase};
use crate::lifecycle::api::{ApiVersion, PLATFORM_APIS};

const APP: &str = "registry.example.com/apps/app";
const TAG2: &str = "registry.example.com/apps/app:b3.20250101.120000";
const RUN: &str = "registry.example.com/builders/run@sha256:rrrr";
const PREV: &str = "registry.example.com/apps/app@sha256:pppp";

fn v(minor: u32) -> ApiVersion {
    ApiVersion::new(0, minor)
}

fn kpack_example() -> BuildParams {
    let mut p = BuildParams::kpack(vec![APP.into(), TAG2.into()], RUN);
    p.previous_image = Some(PREV.into());
    p.cache = Cache::Dir("/cache".into());
    p
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn phase(all: &[Invocation], p: Phase) -> &Invocation {
    all.iter().find(|i| i.phase == p).unwrap()
}

/// A phase's command, args and env.
type Want = (Phase, &'static str, Vec<String>, Vec<(String, String)>);

/// kpack-build-pod.md §1.15: the generated pod of a git build with a volume cache, Platform 0.9.
#[test]
fn kpack_pod_example_at_platform_0_9() {
    let all = plan(v(9), &kpack_example()).unwrap();
    assert_eq!(
        all.iter().map(|i| i.phase.name()).collect::<Vec<_>>(),
        ["analyze", "detect", "restore", "build", "export"]
    );
    let want: [Want; 5] = [
        (
            Phase::Analyze,
            "/cnb/lifecycle/analyzer",
            strs(&[
                "-layers=/layers",
                "-analyzed=/layers/analyzed.toml",
                &format!("-run-image={RUN}"),
                &format!("-tag={TAG2}"),
                &format!("-previous-image={PREV}"),
                APP,
            ]),
            env(&[
                ("HOME", "/builder/home"),
                ("CNB_PLATFORM_API", "0.9"),
                ("SERVICE_BINDING_ROOT", "/platform/bindings"),
            ]),
        ),
        (
            Phase::Detect,
            "/cnb/lifecycle/detector",
            strs(&[
                "-app=/workspace",
                "-group=/layers/group.toml",
                "-plan=/layers/plan.toml",
            ]),
            env(&[("CNB_PLATFORM_API", "0.9")]),
        ),
        (
            Phase::Restore,
            "/cnb/lifecycle/restorer",
            strs(&[
                "-group=/layers/group.toml",
                "-layers=/layers",
                "-cache-dir=/cache",
                "-analyzed=/layers/analyzed.toml",
            ]),
            env(&[("HOME", "/builder/home"), ("CNB_PLATFORM_API", "0.9")]),
        ),
        (
            Phase::Build,
            "/cnb/lifecycle/builder",
            strs(&[
                "-layers=/layers",
                "-app=/workspace",
                "-group=/layers/group.toml",
                "-plan=/layers/plan.toml",
            ]),
            env(&[
                ("CNB_PLATFORM_API", "0.9"),
                ("SERVICE_BINDING_ROOT", "/platform/bindings"),
            ]),
        ),
        (
            Phase::Export,
            "/cnb/lifecycle/exporter",
            strs(&[
                "-layers=/layers",
                "-app=/workspace",
                "-group=/layers/group.toml",
                "-analyzed=/layers/analyzed.toml",
                "-project-metadata=/layers/project-metadata.toml",
                "-cache-dir=/cache",
                "-report=/var/report/report.toml",
                APP,
                TAG2,
            ]),
            env(&[
                ("HOME", "/builder/home"),
                ("CNB_PLATFORM_API", "0.9"),
                ("CNB_RUN_IMAGE", RUN),
            ]),
        ),
    ];
    for (p, cmd, args, env) in want {
        let got = phase(&all, p);
        assert_eq!(got.command, PathBuf::from(cmd), "{p:?}");
        assert_eq!(got.args, args, "{p:?}");
        assert_eq!(got.env, env, "{p:?}");
    }
}

/// kpack passes the same arguments for every Platform API; only CNB_PLATFORM_API changes.
#[test]
fn kpack_parameters_give_the_same_args_for_every_api() {
    let p = kpack_example();
    let base = plan(v(7), &p).unwrap();
    for &api in PLATFORM_APIS {
        let all = plan(api, &p).unwrap();
        for (a, b) in all.iter().zip(&base) {
            assert_eq!(a.args, b.args, "{api} {:?}", a.phase);
            let platform: Vec<_> = a
                .env
                .iter()
                .filter(|(k, _)| k == "CNB_PLATFORM_API")
                .collect();
            assert_eq!(
                platform,
                [&("CNB_PLATFORM_API".to_string(), api.to_string())]
            );
        }
    }
}

/// kpack-build-pod.md §1.8: registry cache reads the last build's cache digest, writes the tag.
#[test]
fn cache_table() {
    let cases: [(Cache, [&[&str]; 3]); 4] = [
        (Cache::None, [&[], &[], &[]]),
        (
            Cache::Dir("/cache".into()),
            [&[], &["-cache-dir=/cache"], &["-cache-dir=/cache"]],
        ),
        (
            Cache::Image {
                tag: "r/c:cache".into(),
                previous: Some("r/c@sha256:prev".into()),
            },
            [
                &["-cache-image=r/c@sha256:prev"],
                &["-cache-image=r/c@sha256:prev"],
                &["-cache-image=r/c:cache"],
            ],
        ),
        (
            Cache::Image {
                tag: "r/c:cache".into(),
                previous: None,
            },
            [
                &["-cache-image=r/c:cache"],
                &["-cache-image=r/c:cache"],
                &["-cache-image=r/c:cache"],
            ],
        ),
    ];
    for (cache, [analyze, restore, export]) in cases {
        let mut p = BuildParams::kpack(vec![APP.into()], RUN);
        p.cache = cache.clone();
        let all = plan(v(9), &p).unwrap();
        let cache_of = |ph| -> Vec<String> {
            phase(&all, ph)
                .args
                .iter()
                .filter(|a| a.starts_with("-cache-"))
                .cloned()
                .collect()
        };
        assert_eq!(cache_of(Phase::Analyze), strs(analyze), "{cache:?}");
        assert_eq!(cache_of(Phase::Restore), strs(restore), "{cache:?}");
        assert_eq!(cache_of(Phase::Export), strs(export), "{cache:?}");
        assert!(cache_of(Phase::Detect).is_empty() && cache_of(Phase::Build).is_empty());
    }
}

/// A local run: every optional parameter set, so each API's flags show.
fn local() -> BuildParams {
    let mut p = BuildParams::kpack(vec!["r/app".into()], "r/run");
    p.lifecycle_dir = "/tmp/lc".into();
    p.layers_dir = "/tmp/layers".into();
    p.app_dir = "/tmp/app".into();
    p.platform_dir = "/tmp/platform".into();
    p.project_metadata = "/tmp/layers/project-metadata.toml".into();
    p.report = "/tmp/layers/report.toml".into();
    p.home = None;
    p.service_binding_root = None;
    p.uid = Some(1000);
    p.gid = Some(1001);
    p.run_toml = Some("/cnb/run.toml".into());
    p.stack_toml = Some("/cnb/stack.toml".into());
    p.order = Some("/cnb/order.toml".into());
    p.buildpacks_dir = Some("/cnb/buildpacks".into());
    p.launcher = Some("/tmp/lc/launcher".into());
    p.log_level = Some("debug".into());
    p.process_type = Some("web".into());
    p.source_date_epoch = Some(315_532_801);
    p
}

#[test]
fn optional_parameters_by_platform_api() {
    // (api, phase, args after kpack's own, before positional images)
    let l = "-log-level=debug";
    let ids: &[&str] = &["-uid=1000", "-gid=1001"];
    let det: &[&str] = &[
        "-log-level=debug",
        "-platform=/tmp/platform",
        "-buildpacks=/cnb/buildpacks",
        "-order=/cnb/order.toml",
    ];
    let bld: &[&str] = &[
        "-log-level=debug",
        "-platform=/tmp/platform",
        "-buildpacks=/cnb/buildpacks",
    ];
    let cat = |parts: &[&[&str]]| -> Vec<String> {
        parts.concat().iter().map(|s| s.to_string()).collect()
    };
    let cases: Vec<(u32, Phase, Vec<String>)> = vec![
        (
            9,
            Phase::Analyze,
            cat(&[&[l], ids, &["-stack=/cnb/stack.toml"]]),
        ),
        (9, Phase::Detect, cat(&[&["-layers=/tmp/layers"], det])),
        (9, Phase::Restore, cat(&[&[l], ids])),
        (9, Phase::Build, cat(&[bld])),
        (
            9,
            Phase::Export,
            cat(&[
                &[l],
                ids,
                &["-stack=/cnb/stack.toml", "-launcher=/tmp/lc/launcher"],
            ]),
        ),
        (
            11,
            Phase::Analyze,
            cat(&[&[l], ids, &["-stack=/cnb/stack.toml"]]),
        ),
        (
            12,
            Phase::Analyze,
            cat(&[&[l], ids, &["-run=/cnb/run.toml"]]),
        ),
        (
            12,
            Phase::Detect,
            cat(&[&["-layers=/tmp/layers"], det, &["-run=/cnb/run.toml"]]),
        ),
        (12, Phase::Restore, cat(&[&[l], ids])),
        (12, Phase::Build, cat(&[bld])),
        (
            12,
            Phase::Export,
            cat(&[
                &[l],
                ids,
                &["-run=/cnb/run.toml", "-launcher=/tmp/lc/launcher"],
            ]),
        ),
        (13, Phase::Restore, cat(&[&[l], ids])),
        (
            14,
            Phase::Restore,
            cat(&[&[l], ids, &["-run=/cnb/run.toml"]]),
        ),
        (
            14,
            Phase::Export,
            cat(&[
                &[l],
                ids,
                &["-run=/cnb/run.toml", "-launcher=/tmp/lc/launcher"],
            ]),
        ),
    ];
    let p = local();
    for (minor, ph, want) in cases {
        let all = plan(v(minor), &p).unwrap();
        let inv = phase(&all, ph);
        let kpack_len = match ph {
            Phase::Analyze => 3,
            Phase::Detect => 3,
            Phase::Restore => 3,
            Phase::Build => 4,
            Phase::Export => 7,
        };
        let positional = match ph {
            Phase::Analyze | Phase::Export => 1,
            _ => 0,
        };
        let extra = &inv.args[kpack_len..inv.args.len() - positional];
        assert_eq!(extra, want.as_slice(), "0.{minor} {ph:?}: {:?}", inv.args);
        assert_eq!(inv.command, PathBuf::from("/tmp/lc").join(ph.binary()));
    }
    // The export: process type before the report, the creation time in the env, no HOME.
    let all = plan(v(13), &p).unwrap();
    let export = phase(&all, Phase::Export);
    assert_eq!(
        export.args[..7],
        strs(&[
            "-layers=/tmp/layers",
            "-app=/tmp/app",
            "-group=/tmp/layers/group.toml",
            "-analyzed=/tmp/layers/analyzed.toml",
            "-project-metadata=/tmp/layers/project-metadata.toml",
            "-process-type=web",
            "-report=/tmp/layers/report.toml",
        ])
    );
    assert_eq!(export.args.last().unwrap(), "r/app");
    assert_eq!(
        export.env,
        env(&[
            ("CNB_PLATFORM_API", "0.13"),
            ("SOURCE_DATE_EPOCH", "315532801"),
            ("CNB_RUN_IMAGE", "r/run"),
        ])
    );
}

#[test]
fn layout_insecure_registries_and_build_config_from_their_apis() {
    let mut p = local();
    p.layout_dir = Some("/tmp/oci".into());
    p.insecure_registries = vec!["127.0.0.1:5000".into(), "reg.local".into()];
    p.build_config_dir = Some("/cnb/build-config".into());
    let all = plan(v(13), &p).unwrap();
    for ph in [Phase::Analyze, Phase::Restore, Phase::Export] {
        let a = &phase(&all, ph).args;
        let at = a.iter().position(|x| x == "-layout").unwrap();
        assert_eq!(
            a[at..at + 4],
            strs(&[
                "-layout",
                "-layout-dir=/tmp/oci",
                "-insecure-registry=127.0.0.1:5000",
                "-insecure-registry=reg.local"
            ]),
            "{ph:?}"
        );
    }
    for ph in [Phase::Detect, Phase::Build] {
        let a = &phase(&all, ph).args;
        assert!(a.contains(&"-build-config=/cnb/build-config".to_string()));
        assert!(!a
            .iter()
            .any(|x| x.starts_with("-layout") || x.starts_with("-insecure")));
    }
    let err = |minor, p: &BuildParams| plan(v(minor), p).unwrap_err().to_string();
    assert_eq!(
        err(12, &p),
        "insecure registries needs platform api 0.13 or newer, not 0.12"
    );
    p.insecure_registries.clear();
    assert_eq!(
        err(11, &p),
        "exporting to an oci layout needs platform api 0.12 or newer, not 0.11"
    );
    p.layout_dir = None;
    assert_eq!(
        err(10, &p),
        "a build config directory needs platform api 0.11 or newer, not 0.10"
    );
    assert!(plan(v(11), &p).is_ok());
}

#[test]
fn invalid_parameters_and_unsupported_apis() {
    let p = BuildParams::kpack(vec![], RUN);
    assert_eq!(
        plan(v(9), &p).unwrap_err(),
        DriverError::Invalid("an output image tag is required")
    );
    let p = BuildParams::kpack(vec![APP.into()], RUN);
    for bad in [v(6), v(15), ApiVersion::new(1, 0)] {
        assert_eq!(
            plan(bad, &p).unwrap_err().to_string(),
            format!("platform api {bad} is not supported by buildpod (supported: 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14)")
        );
    }
    // No run image: fine from 0.12 with run.toml (the analyzer reads it), an error before.
    let mut p = BuildParams::kpack(vec![APP.into()], "");
    p.run_toml = Some("/cnb/run.toml".into());
    let all = plan(v(12), &p).unwrap();
    assert!(!phase(&all, Phase::Analyze)
        .args
        .iter()
        .any(|a| a.starts_with("-run-image")));
    assert!(!phase(&all, Phase::Export)
        .env
        .iter()
        .any(|(k, _)| k == "CNB_RUN_IMAGE"));
    assert_eq!(
        plan(v(11), &p).unwrap_err().to_string(),
        "invalid build parameters: a run image is required (or run.toml from platform api 0.12)"
    );
}
