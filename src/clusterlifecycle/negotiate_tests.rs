//! Table tests of Platform API negotiation.

use super::descriptor::{ApiSet, Apis};
use super::negotiate::{negotiate, BuildpackApi, NegotiateError, Negotiated};
use crate::lifecycle::api::{ApiVersion, PLATFORM_APIS};

fn set(supported: &[&str], deprecated: &[&str]) -> ApiSet {
    ApiSet {
        supported: supported.iter().map(|s| s.to_string()).collect(),
        deprecated: deprecated.iter().map(|s| s.to_string()).collect(),
    }
}

fn v(s: &str) -> ApiVersion {
    ApiVersion::parse(s).unwrap()
}

fn bp(id: &str, api: &str) -> BuildpackApi {
    BuildpackApi {
        id: id.to_string(),
        version: "1.0.0".to_string(),
        api: api.to_string(),
    }
}

const UPSTREAM_0_21: &[&str] = &[
    "0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15",
];
const BP_0_21: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"];

const OURS_WITH_1X: &[ApiVersion] = &[
    ApiVersion::new(0, 14),
    ApiVersion::new(1, 0),
    ApiVersion::new(1, 1),
];

struct Case {
    name: &'static str,
    platform: ApiSet,
    buildpack: ApiSet,
    ours: &'static [ApiVersion],
    max: Option<&'static str>,
    buildpacks: Vec<BuildpackApi>,
    want: Result<(&'static str, bool), &'static str>,
}

#[test]
fn negotiation_table() {
    let cases = vec![
        Case {
            name: "upstream 0.21: highest common is our newest, 0.14",
            platform: set(UPSTREAM_0_21, &[]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![bp("a", "0.10"), bp("b", "0.7")],
            want: Ok(("0.14", false)),
        },
        Case {
            name: "maximum caps the choice (kpack MAXIMUM_PLATFORM_API_VERSION)",
            platform: set(UPSTREAM_0_21, &[]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: Some("0.9"),
            buildpacks: vec![],
            want: Ok(("0.9", false)),
        },
        Case {
            name: "upstream 0.17 lists 0.3-0.12: 0.12",
            platform: set(
                &["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.10", "0.11", "0.12"],
                &[],
            ),
            buildpack: set(&["0.7", "0.8", "0.9", "0.10"], &["0.2", "0.3"]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![bp("old", "0.2")],
            want: Ok(("0.12", false)),
        },
        Case {
            name: "a deprecated platform api still counts, and is flagged",
            platform: set(&["0.5", "0.6"], &["0.8"]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![],
            want: Ok(("0.8", true)),
        },
        Case {
            name: "1.x lifecycles accept lower minors of their major",
            platform: set(&["1.2"], &[]),
            buildpack: set(&["1.1"], &[]),
            ours: OURS_WITH_1X,
            max: None,
            buildpacks: vec![bp("x", "1.0")],
            want: Ok(("1.1", false)),
        },
        Case {
            name: "no common version",
            platform: set(&["0.3", "0.4", "0.5"], &["0.2"]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![],
            want: Err("no common platform api version: lifecycle supports 0.3, 0.4, 0.5 (deprecated: 0.2); buildpod supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14"),
        },
        Case {
            name: "common versions all above the maximum",
            platform: set(&["0.12", "0.13"], &[]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: Some("0.11"),
            buildpacks: vec![],
            want: Err("no common platform api version: lifecycle supports 0.12, 0.13; buildpod supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14 up to 0.11"),
        },
        Case {
            name: "a lifecycle with no platform apis",
            platform: set(&[], &[]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![],
            want: Err("no common platform api version: lifecycle supports none; buildpod supports 0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14"),
        },
        Case {
            name: "buildpacks whose api the lifecycle lacks are all named",
            platform: set(UPSTREAM_0_21, &[]),
            buildpack: set(&["0.9", "0.10"], &["0.8"]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![bp("ok", "0.10"), bp("old", "0.6"), bp("new", "0.12"), bp("dep", "0.8")],
            want: Err("lifecycle does not support the buildpack api of old@1.0.0 (api 0.6), new@1.0.0 (api 0.12); lifecycle supports buildpack apis 0.9, 0.10 (deprecated: 0.8)"),
        },
        Case {
            name: "an unparsable buildpack api",
            platform: set(UPSTREAM_0_21, &[]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![bp("weird", "zero")],
            want: Err("invalid buildpack api of weird@1.0.0 \"zero\": want <major>.<minor>"),
        },
        Case {
            name: "an unparsable lifecycle platform api",
            platform: set(&["0.x"], &[]),
            buildpack: set(BP_0_21, &[]),
            ours: PLATFORM_APIS,
            max: None,
            buildpacks: vec![],
            want: Err("invalid lifecycle platform api \"0.x\": want <major>.<minor>"),
        },
    ];
    for c in cases {
        let apis = Apis {
            platform: c.platform,
            buildpack: c.buildpack,
        };
        let got = negotiate(&apis, c.ours, c.max.map(v), &c.buildpacks);
        match (got, c.want) {
            (Ok(n), Ok((want, deprecated))) => assert_eq!(
                n,
                Negotiated {
                    platform: v(want),
                    deprecated
                },
                "{}",
                c.name
            ),
            (Err(e), Err(want)) => assert_eq!(e.to_string(), want, "{}", c.name),
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
        }
    }
}

#[test]
fn errors_are_typed() {
    let apis = Apis {
        platform: set(&["0.3"], &[]),
        buildpack: set(&["0.2"], &[]),
    };
    assert!(matches!(
        negotiate(&apis, PLATFORM_APIS, None, &[]),
        Err(NegotiateError::NoCommonPlatform { .. })
    ));
}
