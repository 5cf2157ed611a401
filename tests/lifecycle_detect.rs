//! Detector acceptance tests: the real `lifecycle` binary over generated bash buildpacks,
//! asserting exact group.toml/plan.toml bytes and exit codes.

mod lifecycle_util;

use lifecycle_util::{assert_code, order_toml, World};

const GROUP_AB: &str = "[[group]]\n  id = \"A\"\n  version = \"1\"\n  api = \"0.10\"\n\n[[group]]\n  id = \"B\"\n  version = \"1\"\n  api = \"0.10\"\n";

#[test]
fn first_passing_group_wins() {
    let w = World::new();
    w.bp("X", "1", "0.10", "exit 100", "");
    w.bp_plan("A", "1", "[[provides]]\nname = \"dep\"");
    w.bp_plan(
        "B",
        "1",
        "[[requires]]\nname = \"dep\"\n[requires.metadata]\nversion = \"1.2.3\"",
    );
    w.bp_plan("C", "1", "");
    w.order(&[&["X@1"], &["A@1", "B@1"], &["C@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    assert_eq!(w.read("layers/group.toml"), GROUP_AB);
    assert_eq!(
        w.read("layers/plan.toml"),
        "[[entries]]\n\n  [[entries.providers]]\n    id = \"A\"\n    version = \"1\"\n\n  [[entries.requires]]\n    name = \"dep\"\n    [entries.requires.metadata]\n      version = \"1.2.3\"\n"
    );
    assert!(
        r.out
            .contains("2 of 2 buildpacks participating\nA 1\nB 1\n"),
        "{}",
        r.out
    );
    // C's group was never needed, so C never ran.
    assert!(!r.out.contains("C@1"), "{}", r.out);
}

#[test]
fn optional_buildpack_failing_is_left_out() {
    let w = World::new();
    w.bp_plan("A", "1", "");
    w.bp("O", "1", "0.10", "echo 'O does not apply'; exit 100", "");
    w.bp_plan("B", "1", "");
    w.order(&[&["A@1", "O@1?", "B@1"]]);
    let r = w.detector(&["-log-level", "debug"]);
    assert_code(&r, 0);
    assert_eq!(w.read("layers/group.toml"), GROUP_AB);
    assert_eq!(w.read("layers/plan.toml"), "");
    assert!(r.out.contains("skip: O@1"), "{}", r.out);
    assert!(
        r.out.contains("2 of 3 buildpacks participating"),
        "{}",
        r.out
    );
}

#[test]
fn composite_with_nested_optional_group() {
    let w = World::new();
    w.bp_plan("A", "1", "");
    w.bp_plan("B", "1", "");
    w.bp("N1", "1", "0.10", "exit 100", "");
    w.bp("N2", "1", "0.10", "exit 100", "");
    w.bp_plan("N3", "1", "");
    // Meta M has one group holding an optional composite Inner whose groups all fail.
    w.composite("Inner", "1", &order_toml("order", &[&["N1@1"], &["N2@1"]]));
    w.composite(
        "M",
        "1",
        &order_toml("order", &[&["A@1", "Inner@1?", "N3@1"]]),
    );
    w.order(&[&["M@1", "B@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    assert_eq!(
        w.read("layers/group.toml"),
        "[[group]]\n  id = \"A\"\n  version = \"1\"\n  api = \"0.10\"\n\n[[group]]\n  id = \"N3\"\n  version = \"1\"\n  api = \"0.10\"\n\n[[group]]\n  id = \"B\"\n  version = \"1\"\n  api = \"0.10\"\n"
    );
    // A required composite whose groups all fail fails the whole order.
    w.composite(
        "M",
        "1",
        &order_toml("order", &[&["A@1", "Inner@1", "N3@1"]]),
    );
    let r = w.detector(&[]);
    assert_code(&r, 20);
}

#[test]
fn or_alternatives_resolve() {
    let w = World::new();
    w.bp_plan(
        "A",
        "1",
        "[[provides]]\nname = \"jdk\"\n[[or]]\n[[or.provides]]\nname = \"jre\"",
    );
    w.bp_plan(
        "B",
        "1",
        "[[requires]]\nname = \"jdk11\"\n[[or]]\n[[or.requires]]\nname = \"jre\"\n[or.requires.metadata]\nlaunch = true",
    );
    w.order(&[&["A@1", "B@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    assert_eq!(w.read("layers/group.toml"), GROUP_AB);
    assert_eq!(
        w.read("layers/plan.toml"),
        "[[entries]]\n\n  [[entries.providers]]\n    id = \"A\"\n    version = \"1\"\n\n  [[entries.requires]]\n    name = \"jre\"\n    [entries.requires.metadata]\n      launch = true\n"
    );
}

#[test]
fn plan_with_several_entries_parses_equal() {
    let w = World::new();
    w.bp_plan(
        "A",
        "1",
        "[[provides]]\nname = \"x\"\n[[provides]]\nname = \"y\"",
    );
    w.bp_plan(
        "B",
        "1",
        "[[requires]]\nname = \"y\"\n[[requires]]\nname = \"x\"\n[requires.metadata]\nk = [1, 2]",
    );
    w.order(&[&["A@1", "B@1"]]);
    assert_code(&w.detector(&[]), 0);
    let got = lifecycle_util::toml_value(&w.read("layers/plan.toml"));
    let want = lifecycle_util::toml_value(
        "[[entries]]\nproviders = [{id = \"A\", version = \"1\"}]\nrequires = [{name = \"x\", metadata = {k = [1, 2]}}]\n[[entries]]\nproviders = [{id = \"A\", version = \"1\"}]\nrequires = [{name = \"y\"}]\n",
    );
    assert_eq!(got, want);
}

#[test]
fn unmet_requires_fail_the_group() {
    let w = World::new();
    w.bp_plan("A", "1", "[[requires]]\nname = \"missing\"");
    w.bp_plan("B", "1", "");
    w.order(&[&["A@1", "B@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 20);
    assert!(r.out.contains("fail: A@1 requires missing"), "{}", r.out);
    assert!(
        r.out
            .contains("ERROR: No buildpack groups passed detection."),
        "{}",
        r.out
    );
    assert!(!w.exists("layers/group.toml") && !w.exists("layers/plan.toml"));
    // Provided but never required fails too.
    w.bp_plan("A", "1", "[[provides]]\nname = \"unused\"");
    let r = w.detector(&[]);
    assert_code(&r, 20);
    assert!(
        r.out.contains("fail: A@1 provides unused unused"),
        "{}",
        r.out
    );
}

#[test]
fn duplicate_ids_first_occurrence_wins() {
    let w = World::new();
    w.bp_plan("A", "1", "");
    w.bp_plan("A", "2", "");
    w.bp_plan("B", "1", "");
    w.composite("M", "1", &order_toml("order", &[&["A@2", "B@1"]]));
    w.order(&[&["A@1", "M@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    assert_eq!(w.read("layers/group.toml"), GROUP_AB);
}

#[test]
fn detect_exit_codes_pass_fail_error() {
    let w = World::new();
    w.bp(
        "F",
        "1",
        "0.10",
        "echo 'F: no package.json here'; exit 100",
        "",
    );
    w.order(&[&["F@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 20);
    assert!(!w.exists("layers/group.toml") && !w.exists("layers/plan.toml"));
    // What each buildpack said is shown when nothing passes.
    assert!(
        r.out
            .contains("======== Output: F@1 ========\nF: no package.json here"),
        "{}",
        r.out
    );
    assert!(r.out.contains("fail: F@1"), "{}", r.out);

    w.bp("E", "1", "0.10", "echo 'E: broken' >&2; exit 3", "");
    w.order(&[&["E@1"], &["F@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 21);
    assert!(r.out.contains("E: broken"), "{}", r.out);
    assert!(r.out.contains("err:  E@1 (3)"), "{}", r.out);

    w.bp_plan("P", "1", "");
    w.order(&[&["E@1"], &["P@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    // A passing run keeps detect output to debug level.
    assert!(!r.out.contains("E: broken"), "{}", r.out);

    // An invalid plan is a buildpack error.
    w.bp_plan("V", "1", "[[requires]]\nname = \"x\"\nversion = \"1\"");
    w.order(&[&["V@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 21);
    assert!(r.out.contains("requires[0].version"), "{}", r.out);
}

#[test]
fn each_detect_runs_once_per_invocation() {
    let w = World::new();
    let counter = w.path("count");
    let body = format!("echo run >> {}; exit 100", counter.display());
    w.bp("A", "1", "0.10", &body, "");
    w.bp("B", "1", "0.10", "exit 100", "");
    w.order(&[&["A@1", "B@1"], &["B@1", "A@1"], &["A@1"]]);
    assert_code(&w.detector(&[]), 20);
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");
}

const TARGETS_ARM: &str = "[[targets]]\nos = \"linux\"\narch = \"arm64\"\n";

#[test]
fn target_mismatch() {
    let w = World::new();
    w.write(
        "layers/analyzed.toml",
        "[run-image]\n  reference = \"r\"\n  [run-image.target]\n    os = \"linux\"\n    arch = \"amd64\"\n    [run-image.target.distro]\n      name = \"ubuntu\"\n      version = \"24.04\"\n",
    );
    w.bp_full("ARM", "1", "0.10", "", TARGETS_ARM, "", "");
    w.bp_plan("A", "1", "");
    // Optional and mismatched: silently dropped.
    w.order(&[&["ARM@1?", "A@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 0);
    assert_eq!(
        w.read("layers/group.toml"),
        "[[group]]\n  id = \"A\"\n  version = \"1\"\n  api = \"0.10\"\n"
    );
    assert_eq!(w.read("layers/plan.toml"), "");
    std::fs::remove_file(w.path("layers/group.toml")).unwrap();
    // Required and mismatched: an error.
    w.order(&[&["ARM@1", "A@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 21);
    assert!(!w.exists("layers/group.toml"));
    assert!(
        r.out
            .contains("unable to satisfy target os/arch constraints"),
        "{}",
        r.out
    );
    // Distro constraints, and legacy [[stacks]] (Buildpack API 0.7): bionic means ubuntu 18.04.
    w.bp_full(
        "BIONIC",
        "1",
        "0.7",
        "",
        "[[stacks]]\nid = \"io.buildpacks.stacks.bionic\"\n",
        "",
        "",
    );
    w.order(&[&["BIONIC@1"]]);
    assert_code(&w.detector(&[]), 21);
    w.bp_full("ANY", "1", "0.7", "", "[[stacks]]\nid = \"*\"\n", "", "");
    w.order(&[&["ANY@1"]]);
    assert_code(&w.detector(&[]), 0);
    w.bp_full(
        "NOBLE",
        "1",
        "0.10",
        "",
        "[[targets]]\nos = \"linux\"\n[[targets.distros]]\nname = \"ubuntu\"\nversion = \"24.04\"\n",
        "",
        "",
    );
    w.order(&[&["NOBLE@1"]]);
    assert_code(&w.detector(&[]), 0);
}

#[test]
fn detect_environment_per_buildpack_api() {
    let w = World::new();
    let dump = "echo \"args=$# $1\"; env | grep -E '^(CNB_|LANG=|FROM_)' | sort; exit 100";
    w.bp("NEW", "1", "0.12", dump, "");
    w.bp("OLD", "1", "0.7", dump, "");
    w.bp_full("CLEAR", "1", "0.10", "clear-env = true", "", dump, "");
    w.write("platform/env/FROM_PLATFORM", "p");
    w.write(
        "layers/analyzed.toml",
        "[run-image.target]\nos = \"linux\"\narch = \"amd64\"\narch-variant = \"v3\"\n[run-image.target.distro]\nname = \"ubuntu\"\nversion = \"22.04\"\n",
    );
    w.order(&[&["NEW@1"], &["OLD@1"], &["CLEAR@1"]]);
    let mut c = w.cmd("detector", &[]);
    c.env("LANG", "C.UTF-8").env("CNB_EXEC_ENV", "test");
    let r = World::run_cmd(c);
    assert_code(&r, 20);
    let section = |id: &str| {
        let head = format!("Output: {id}@1 ========\n");
        let start = r.out.find(&head).unwrap() + head.len();
        r.out[start..].split("========").next().unwrap().to_string()
    };
    let platform = w.path("platform");
    let new = section("NEW");
    assert!(
        new.contains(&format!("args=2 {}", platform.display())),
        "{new}"
    );
    for want in [
        "CNB_BUILD_PLAN_PATH=",
        "CNB_EXEC_ENV=test",
        "CNB_TARGET_ARCH=amd64",
        "CNB_TARGET_ARCH_VARIANT=v3",
        "CNB_TARGET_DISTRO_NAME=ubuntu",
        "CNB_TARGET_DISTRO_VERSION=22.04",
        "CNB_TARGET_OS=linux",
        "FROM_PLATFORM=p",
    ] {
        assert!(new.contains(want), "missing {want} in {new}");
    }
    assert!(
        new.contains(&format!("CNB_PLATFORM_DIR={}", platform.display())),
        "{new}"
    );
    assert!(
        !new.contains("LANG=") && !new.contains("CNB_PLATFORM_API"),
        "scrubbed: {new}"
    );
    let old = section("OLD");
    assert!(
        old.contains("args=2") && old.contains("CNB_BUILDPACK_DIR="),
        "{old}"
    );
    assert!(
        !old.contains("CNB_PLATFORM_DIR") && !old.contains("CNB_TARGET_OS"),
        "{old}"
    );
    let clear = section("CLEAR");
    assert!(
        !clear.contains("FROM_PLATFORM") && !clear.contains("CNB_EXEC_ENV"),
        "{clear}"
    );
}

#[test]
fn platform_and_buildpack_api_checks() {
    let w = World::new();
    w.bp_plan("A", "1", "");
    w.order(&[&["A@1"]]);
    let mut c = w.cmd("detector", &[]);
    c.env_remove("CNB_PLATFORM_API");
    let r = World::run_cmd(c);
    assert_code(&r, 11);
    assert!(
        r.out.contains("please set 'CNB_PLATFORM_API'") && r.out.contains("0.7, 0.8"),
        "{}",
        r.out
    );
    let mut c = w.cmd("detector", &[]);
    c.env("CNB_PLATFORM_API", "0.6");
    let r = World::run_cmd(c);
    assert_code(&r, 11);
    assert!(r.out.contains("0.14"), "{}", r.out);

    w.bp("OLD", "1", "0.6", "", "");
    w.order(&[&["OLD@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 12);
    assert!(r.out.contains("buildpack.toml: field `api`"), "{}", r.out);

    // Missing buildpack of the order: exit 1, naming it.
    w.order(&[&["NOPE@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 1);
    assert!(r.out.contains("buildpack NOPE@1 not found"), "{}", r.out);
}

#[test]
fn multi_call_by_argv0_and_unknown_phases() {
    let w = World::new();
    w.bp_plan("A", "1", "");
    w.order(&[&["A@1"]]);
    let link = w.path("detector");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lifecycle"), &link).unwrap();
    let mut c = std::process::Command::new(&link);
    c.env("CNB_PLATFORM_API", "0.9")
        .arg("-app")
        .arg(w.path("app"))
        .arg("-layers")
        .arg(w.path("layers"))
        .arg("-buildpacks")
        .arg(w.path("buildpacks"))
        .arg("-order")
        .arg(w.path("order.toml"))
        .arg("-platform")
        .arg(w.path("platform"));
    assert_code(&World::run_cmd(c), 0);
    assert!(w.exists("layers/group.toml"));

    let r = World::run_cmd({
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle"));
        c.arg("extender").env("CNB_PLATFORM_API", "0.12");
        c
    });
    assert_code(&r, 1);
    assert!(
        r.out.contains("extender phase is not supported yet"),
        "{}",
        r.out
    );
    let r = w.detector(&["extra-arg"]);
    assert_code(&r, 3);
    let r = w.detector(&["-bogus"]);
    assert_code(&r, 2);
}

#[test]
fn every_supported_platform_api_detects_and_builds() {
    for minor in 7..=14 {
        let mut w = World::new();
        w.platform_api = format!("0.{minor}");
        w.bp(
            "A",
            "1",
            "0.10",
            "printf '[[provides]]\\nname = \"a\"\\n[[requires]]\\nname = \"a\"\\n' > \"$2\"",
            "printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"run\", \"x\"]\\ndefault = true\\n' > \"$1/launch.toml\"",
        );
        w.order(&[&["A@1"]]);
        let r = w.detector(&[]);
        assert_code(&r, 0);
        assert_eq!(
            w.read("layers/plan.toml").matches("name = \"a\"").count(),
            1
        );
        let r = w.builder(&[]);
        assert_code(&r, 0);
        let meta = w.read("layers/config/metadata.toml");
        let want = if minor >= 10 {
            "command = [\"run\", \"x\"]\n"
        } else {
            "command = \"run\"\n  args = [\"x\"]\n"
        };
        assert!(meta.contains(want), "platform 0.{minor}: {meta}");
        assert_eq!(
            w.exists("layers/sbom/launch/sbom.legacy.json"),
            minor >= 9,
            "platform 0.{minor}"
        );
    }
}
