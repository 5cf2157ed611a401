//! Unit tests of the detection algorithm with an in-memory store and scripted detect results.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::api::ApiVersion;
use super::buildpack_toml::{BuildpackDescriptor, LookupError};
use super::detect::*;
use super::order::OrderEntry;
use super::plan::Contribution;

#[derive(Default)]
struct Store(HashMap<String, Arc<BuildpackDescriptor>>);

impl Store {
    fn bp(&mut self, id: &str, version: &str) {
        self.composite(id, version, vec![]);
    }
    fn composite(&mut self, id: &str, version: &str, order: Vec<Vec<OrderEntry>>) {
        self.0.insert(
            format!("{id}@{version}"),
            Arc::new(BuildpackDescriptor {
                dir: PathBuf::from(format!("/bp/{id}/{version}")),
                api: ApiVersion::new(0, 10),
                api_str: "0.10".into(),
                id: id.into(),
                version: version.into(),
                name: String::new(),
                homepage: String::new(),
                clear_env: false,
                sbom_formats: vec![],
                exec_env: vec![],
                order,
                targets: vec![],
            }),
        );
    }
}

impl BuildpackStore for Store {
    fn lookup(&mut self, id: &str, version: &str) -> Result<Arc<BuildpackDescriptor>, LookupError> {
        self.0
            .get(&format!("{id}@{version}"))
            .cloned()
            .ok_or_else(|| LookupError::NotFound {
                id: id.into(),
                version: version.into(),
                path: PathBuf::from("/nowhere"),
            })
    }
}

/// Detect results by key; records every group it was asked to run.
#[derive(Default)]
struct Runner {
    results: HashMap<String, (i32, &'static str)>,
    calls: RefCell<Vec<String>>,
}

impl DetectRunner for Runner {
    fn run(&self, bps: &[Arc<BuildpackDescriptor>]) -> Vec<DetectRun> {
        bps.iter()
            .map(|bp| {
                self.calls.borrow_mut().push(bp.key());
                let (code, plan) = self.results.get(&bp.key()).copied().unwrap_or((0, ""));
                DetectRun {
                    code,
                    plan: Contribution::parse(Path::new("plan.toml"), plan).unwrap(),
                    ..DetectRun::default()
                }
            })
            .collect()
    }
}

fn e(id: &str, version: &str) -> OrderEntry {
    OrderEntry {
        id: id.into(),
        version: version.into(),
        optional: false,
    }
}

fn opt(id: &str, version: &str) -> OrderEntry {
    OrderEntry {
        optional: true,
        ..e(id, version)
    }
}

fn ids(d: &Detected) -> Vec<String> {
    d.group
        .iter()
        .map(|g| format!("{}@{}", g.id, g.version))
        .collect()
}

/// The reference lifecycle's "expands order-containing buildpack IDs" example: groups are
/// tried depth-first, duplicates by id skipped, the optional composite dropped when failing.
#[test]
fn group_sequence_matches_reference() {
    let mut s = Store::default();
    for id in ["A", "B", "C", "D"] {
        s.bp(id, "v1");
        s.bp(id, "v2");
    }
    s.composite(
        "G",
        "v1",
        vec![
            vec![e("A", "v2"), e("B", "v2")],
            vec![e("C", "v2"), e("D", "v2")],
        ],
    );
    s.composite(
        "F",
        "v1",
        vec![vec![e("C", "v1")], vec![opt("G", "v1")], vec![e("D", "v1")]],
    );
    s.composite(
        "E",
        "v1",
        vec![vec![e("A", "v1"), e("F", "v1"), e("B", "v1")]],
    );
    // Every group fails until [A, D, B]: some detects fail, and B needs what only D@v1 gives.
    let mut r = Runner::default();
    for k in ["C@v1", "B@v2", "C@v2"] {
        r.results.insert(k.into(), (100, ""));
    }
    r.results
        .insert("B@v1".into(), (0, "[[requires]]\nname = \"d\"\n"));
    r.results
        .insert("D@v1".into(), (0, "[[provides]]\nname = \"d\"\n"));
    let mut det = Detector::new(&mut s, &r, None);
    let got = det.detect(&[vec![e("E", "v1")]]).unwrap();
    assert_eq!(ids(&got), ["A@v1", "D@v1", "B@v1"]);
    let groups: Vec<String> = det
        .report
        .iter()
        .filter(|l| l.starts_with("pass:") || l.starts_with("fail:") || l.starts_with("skip:"))
        .cloned()
        .collect();
    // Groups tried: [A,C,B] [A,B@v2] [A,C@v2,D@v2,B] [A,B] [A,D,B]
    let want = [
        "pass: A@v1",
        "fail: C@v1",
        "pass: B@v1",
        "pass: A@v1",
        "fail: B@v2",
        "pass: A@v1",
        "fail: C@v2",
        "pass: D@v2",
        "pass: B@v1",
        "pass: A@v1",
        "pass: B@v1",
        "pass: A@v1",
        "pass: D@v1",
        "pass: B@v1",
    ];
    assert_eq!(groups, want);
    // Each detect ran once: A C B B@v2 C@v2 D@v2 D.
    assert_eq!(r.calls.borrow().len(), 7);
    assert_eq!(det.runs(), 7);
}

#[test]
fn falls_back_through_or_alternatives() {
    let mut s = Store::default();
    s.bp("A", "v1");
    s.bp("B", "v1");
    let mut r = Runner::default();
    r.results.insert(
        "A@v1".into(),
        (
            0,
            "[[requires]]\nname = \"x\"\n[[or]]\n[[or.provides]]\nname = \"y\"\n",
        ),
    );
    r.results.insert(
        "B@v1".into(),
        (0, "[[provides]]\nname = \"z\"\n[[or]]\n[[or.requires]]\nname = \"y\"\n[or.requires.metadata]\nv = \"1\"\n"),
    );
    let mut det = Detector::new(&mut s, &r, None);
    let got = det.detect(&[vec![e("A", "v1"), e("B", "v1")]]).unwrap();
    assert_eq!(ids(&got), ["A@v1", "B@v1"]);
    assert_eq!(
        got.plan.render(),
        "[[entries]]\n\n  [[entries.providers]]\n    id = \"A\"\n    version = \"v1\"\n\n  [[entries.requires]]\n    name = \"y\"\n    [entries.requires.metadata]\n      v = \"1\"\n"
    );
}

#[test]
fn optional_unmet_is_dropped_required_unmet_fails() {
    let mut s = Store::default();
    s.bp("A", "v1");
    s.bp("B", "v1");
    let mut r = Runner::default();
    r.results
        .insert("B@v1".into(), (0, "[[requires]]\nname = \"nope\"\n"));
    let mut det = Detector::new(&mut s, &r, None);
    let got = det.detect(&[vec![e("A", "v1"), opt("B", "v1")]]).unwrap();
    assert_eq!(ids(&got), ["A@v1"]);
    assert_eq!(got.considered, 2);
    let mut det = Detector::new(&mut s, &r, None);
    let err = det.detect(&[vec![e("A", "v1"), e("B", "v1")]]).unwrap_err();
    assert!(matches!(err, DetectError::NoGroupPassed { errored: false }));
    assert!(
        det.report
            .iter()
            .any(|l| l.contains("fail: B@v1 requires nope")),
        "{:?}",
        det.report
    );
}

#[test]
fn errors_are_reported_with_exit_code_choice() {
    let mut s = Store::default();
    s.bp("A", "v1");
    s.bp("B", "v1");
    let mut r = Runner::default();
    r.results.insert("A@v1".into(), (3, ""));
    r.results.insert("B@v1".into(), (100, ""));
    let mut det = Detector::new(&mut s, &r, None);
    let err = det
        .detect(&[vec![e("A", "v1")], vec![e("B", "v1")]])
        .unwrap_err();
    assert!(matches!(err, DetectError::NoGroupPassed { errored: true }));
    let mut det = Detector::new(&mut s, &r, None);
    let err = det.detect(&[vec![e("B", "v1")]]).unwrap_err();
    assert!(matches!(err, DetectError::NoGroupPassed { errored: false }));
    let mut det = Detector::new(&mut s, &r, None);
    let err = det.detect(&[vec![e("Z", "v1")]]).unwrap_err();
    assert!(matches!(err, DetectError::Lookup(_)));
}

#[test]
fn provides_unused_by_optional_is_dropped() {
    let mut s = Store::default();
    s.bp("A", "v1");
    s.bp("B", "v1");
    let mut r = Runner::default();
    r.results
        .insert("B@v1".into(), (0, "[[provides]]\nname = \"p\"\n"));
    let mut det = Detector::new(&mut s, &r, None);
    let got = det.detect(&[vec![opt("B", "v1"), e("A", "v1")]]).unwrap();
    assert_eq!(ids(&got), ["A@v1"]);
    assert!(got.plan.entries.is_empty());
}
