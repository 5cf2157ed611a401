//! Builder acceptance tests: env layering, clear-env, processes in both API dialects, labels,
//! slices, SBOM placement, store.toml and failing buildpacks, through the real binary.

mod lifecycle_util;

use buildpod::lifecycle::launch::StoreToml;
use lifecycle_util::{assert_code, World};

/// Writes `<layer>.toml` with types, inside a bash build script.
fn layer(name: &str, types: &str) -> String {
    format!("mkdir -p \"$1/{name}\"\nprintf '[types]\\n{types}\\n' > \"$1/{name}.toml\"\n")
}

#[test]
fn build_env_layering() {
    let w = World::new();
    let a_build = [
        layer("a1", "build = true"),
        "mkdir -p \"$1/a1/bin\" \"$1/a1/lib\" \"$1/a1/env\"\n".into(),
        "cd \"$1/a1/env\"\nprintf base > V_APPEND.override; printf base > V_DELIM; printf base > V_PREPEND\nprintf keep > V_DEFAULT\nprintf 'line\\n' > V_RAW\n".into(),
        layer("a2", "build = true"),
        "mkdir -p \"$1/a2/bin\" \"$1/a2/env\" \"$1/a2/env.build\" \"$1/a2/env.launch\"\n".into(),
        "cd \"$1/a2/env\"\nprintf X > V_APPEND.append; printf X > V_DELIM.append; printf , > V_DELIM.delim\nprintf P > V_PREPEND.prepend; printf nope > V_DEFAULT.default; printf new > V_NEW.default\nprintf o > V_OVERRIDE.override; printf ignored > V_ODD.foo\n".into(),
        "printf b > ../env.build/BUILD_ONLY; printf l > ../env.launch/LAUNCH_ONLY\n".into(),
        layer("launchonly", "launch = true"),
        "mkdir -p \"$1/launchonly/env\"; printf l > \"$1/launchonly/env/FROM_LAUNCH_LAYER\"\n".into(),
    ]
    .concat();
    w.bp("A", "1", "0.10", "", &a_build);
    let dump = "for v in V_APPEND V_DELIM V_PREPEND V_DEFAULT V_NEW V_OVERRIDE V_ODD V_RAW BUILD_ONLY LAUNCH_ONLY FROM_LAUNCH_LAYER PATH LD_LIBRARY_PATH LIBRARY_PATH; do printf '%s=[%s]\\n' $v \"${!v}\"; done";
    w.bp("B", "1", "0.10", "", dump);
    w.group(&[("A", "1", "0.10"), ("B", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    let a = w.path("layers/A");
    let a = a.display();
    for want in [
        "V_APPEND=[baseX]".to_string(),
        "V_DELIM=[base,X]".into(),
        "V_PREPEND=[Pbase]".into(),
        "V_DEFAULT=[keep]".into(),
        "V_NEW=[new]".into(),
        "V_OVERRIDE=[o]".into(),
        "V_ODD=[]".into(),
        "V_RAW=[line\n]".into(),
        "BUILD_ONLY=[b]".into(),
        "LAUNCH_ONLY=[]".into(),
        "FROM_LAUNCH_LAYER=[]".into(),
        format!("PATH=[{a}/a2/bin:{a}/a1/bin:"),
        format!("LD_LIBRARY_PATH=[{a}/a1/lib]"),
        format!("LIBRARY_PATH=[{a}/a1/lib]"),
    ] {
        assert!(r.out.contains(&want), "missing {want:?} in:\n{}", r.out);
    }
}

#[test]
fn platform_env_and_clear_env() {
    let w = World::new();
    w.write("platform/env/USER_VAR", "u");
    w.write("platform/env/PATH", "/platform/bin");
    w.write("build-config/env/OP_VAR", "op");
    w.write("build-config/env/USER_VAR", "operator-default");
    let dump = "printf 'USER_VAR=[%s] OP_VAR=[%s] LANG=[%s] PATH=[%s]\\n' \"$USER_VAR\" \"$OP_VAR\" \"$LANG\" \"$PATH\"";
    w.bp("U", "1", "0.10", "", dump);
    w.bp_full("C", "1", "0.10", "clear-env = true", "", "", dump);
    w.group(&[("U", "1", "0.10"), ("C", "1", "0.10")]);
    let bc = w.path("build-config");
    let mut c = w.cmd("builder", &["-build-config", bc.to_str().unwrap()]);
    c.env("LANG", "C.UTF-8").env("PATH", "/usr/bin:/bin");
    let r = World::run_cmd(c);
    assert_code(&r, 0);
    assert!(
        r.out
            .contains("USER_VAR=[u] OP_VAR=[op] LANG=[] PATH=[/platform/bin:/usr/bin:/bin]"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("USER_VAR=[operator-default] OP_VAR=[op] LANG=[] PATH=[/usr/bin:/bin]"),
        "clear-env skips <platform>/env but not build-config: {}",
        r.out
    );
}

#[test]
fn build_invocation_per_api() {
    let w = World::new();
    let dump =
        "echo \"args=$#\"; echo \"1=$1\"; echo \"3=$3\"; env | grep ^CNB_ | sort; cat \"$3\"";
    w.bp("NEW", "1", "0.12", "", dump);
    w.bp("OLD", "1", "0.7", "", dump);
    w.write(
        "layers/plan.toml",
        "[[entries]]\n[[entries.providers]]\nid = \"NEW\"\nversion = \"1\"\n[[entries.requires]]\nname = \"dep\"\nversion = \"2\"\n",
    );
    w.write(
        "layers/analyzed.toml",
        "[run-image.target]\nos = \"linux\"\narch = \"arm64\"\n[run-image.target.distro]\nname = \"ubuntu\"\nversion = \"24.04\"\n",
    );
    w.group(&[("NEW", "1", "0.12"), ("OLD", "1", "0.7")]);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    let new_layers = w.path("layers/NEW");
    assert!(
        r.out.contains(&format!("1={}", new_layers.display())),
        "{}",
        r.out
    );
    for want in [
        format!("CNB_LAYERS_DIR={}", new_layers.display()),
        format!("CNB_PLATFORM_DIR={}", w.path("platform").display()),
        "CNB_BP_PLAN_PATH=".into(),
        "CNB_TARGET_ARCH=arm64".into(),
        "CNB_TARGET_DISTRO_NAME=ubuntu".into(),
        "CNB_TARGET_DISTRO_VERSION=24.04".into(),
        "CNB_TARGET_OS=linux".into(),
        "CNB_EXEC_ENV=production".into(),
        // The buildpack plan, legacy top-level version moved into metadata.
        "[[entries]]\n  name = \"dep\"\n  [entries.metadata]\n    version = \"2\"\n".into(),
    ] {
        assert!(r.out.contains(&want), "missing {want:?}:\n{}", r.out);
    }
    let old = &r.out[r.out.rfind("args=").unwrap()..];
    assert!(old.starts_with("args=3"), "{old}");
    assert!(
        !old.contains("CNB_LAYERS_DIR") && !old.contains("CNB_TARGET_OS"),
        "{old}"
    );
    assert!(old.contains("CNB_BUILDPACK_DIR="), "{old}");
}

const LAUNCH_OLD7: &str = "[[processes]]\ntype = \"legacy\"\ncommand = \"x\"\nworking-dir = \"/ignored\"\n[[labels]]\nkey = \"org.example.a\"\nvalue = \"1\"\n";
const LAUNCH_OLD: &str = "[[processes]]\ntype = \"worker\"\ncommand = \"run-worker\"\nargs = [\"a\"]\ndirect = false\nworking-dir = \"/w\"\n[[slices]]\npaths = [\"static/*\"]\n";
const LAUNCH_NEW: &str = "[[processes]]\ntype = \"web\"\ncommand = [\"java\", \"-jar\"]\nargs = [\"app.jar\"]\ndefault = true\n[[labels]]\nkey = \"org.example.b\"\nvalue = \"2\"\n";

fn launch_bps(w: &World) {
    for (id, api, launch) in [
        ("old7", "0.7", LAUNCH_OLD7),
        ("old", "0.8", LAUNCH_OLD),
        ("new", "0.10", LAUNCH_NEW),
    ] {
        w.bp(
            id,
            "1",
            api,
            "",
            &format!("cat > \"$1/launch.toml\" <<'EOF'\n{launch}EOF"),
        );
    }
    w.group(&[
        ("old7", "1", "0.7"),
        ("old", "1", "0.8"),
        ("new", "1", "0.10"),
    ]);
}

const BUILDPACKS_META: &str = "[[buildpacks]]\n  id = \"old7\"\n  version = \"1\"\n  api = \"0.7\"\n\n[[buildpacks]]\n  id = \"old\"\n  version = \"1\"\n  api = \"0.8\"\n\n[[buildpacks]]\n  id = \"new\"\n  version = \"1\"\n  api = \"0.10\"\n\n[[labels]]\n  key = \"org.example.a\"\n  value = \"1\"\n\n[[labels]]\n  key = \"org.example.b\"\n  value = \"2\"\n\n";

#[test]
fn processes_labels_slices_in_metadata() {
    let w = World::new();
    launch_bps(&w);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    assert!(
        r.out.contains("working-dir needs buildpack api 0.8"),
        "{}",
        r.out
    );
    let want = format!(
        "buildpack-default-process-type = \"web\"\n\n{BUILDPACKS_META}[[processes]]\n  type = \"legacy\"\n  command = [\"x\"]\n  direct = false\n  buildpack-id = \"old7\"\n\n[[processes]]\n  type = \"web\"\n  command = [\"java\", \"-jar\"]\n  args = [\"app.jar\"]\n  direct = true\n  buildpack-id = \"new\"\n\n[[processes]]\n  type = \"worker\"\n  command = [\"run-worker\"]\n  args = [\"a\"]\n  direct = false\n  buildpack-id = \"old\"\n  working-dir = \"/w\"\n\n[[slices]]\n  paths = [\"static/*\"]\n"
    );
    assert_eq!(w.read("layers/config/metadata.toml"), want);
}

#[test]
fn processes_for_platform_before_0_10_use_string_command() {
    let mut w = World::new();
    w.platform_api = "0.9".into();
    launch_bps(&w);
    assert_code(&w.builder(&[]), 0);
    let meta = w.read("layers/config/metadata.toml");
    assert!(
        meta.contains("  type = \"web\"\n  command = \"java\"\n  args = [\"-jar\", \"app.jar\"]\n  direct = true\n"),
        "{meta}"
    );
    assert!(
        meta.contains("  type = \"worker\"\n  command = \"run-worker\"\n  args = [\"a\"]\n"),
        "{meta}"
    );
}

#[test]
fn sbom_placement_and_validation() {
    let w = World::new();
    let build = [
        layer("l1", "launch = true\\ncache = true"),
        layer("l2", "build = true"),
        "cd \"$1\"; echo '{\"l\":1}' > launch.sbom.cdx.json; echo '{\"b\":1}' > build.sbom.spdx.json\n".into(),
        "echo '{\"l1\":1}' > l1.sbom.cdx.json; echo '{\"l2\":1}' > l2.sbom.cdx.json; echo '{}' > nolayer.sbom.cdx.json\n".into(),
    ]
    .concat();
    w.bp_full(
        "org/sb",
        "1",
        "0.10",
        "sbom-formats = [\"application/vnd.cyclonedx+json\", \"application/spdx+json\"]",
        "",
        "",
        &build,
    );
    w.group(&[("org/sb", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    assert_eq!(
        w.read("layers/sbom/launch/org_sb/sbom.cdx.json"),
        "{\"l\":1}\n"
    );
    assert_eq!(
        w.read("layers/sbom/build/org_sb/sbom.spdx.json"),
        "{\"b\":1}\n"
    );
    assert_eq!(
        w.read("layers/sbom/launch/org_sb/l1/sbom.cdx.json"),
        "{\"l1\":1}\n"
    );
    assert_eq!(
        w.read("layers/sbom/cache/org_sb/l1/sbom.cdx.json"),
        "{\"l1\":1}\n"
    );
    assert_eq!(
        w.read("layers/sbom/build/org_sb/l2/sbom.cdx.json"),
        "{\"l2\":1}\n"
    );
    assert!(
        !w.exists("layers/sbom/launch/org_sb/nolayer")
            && !w.exists("layers/sbom/build/org_sb/nolayer")
    );
    assert_eq!(w.read("layers/sbom/launch/sbom.legacy.json"), "null");

    // An undeclared format fails the build with exit 52 and no metadata.toml.
    let w = World::new();
    w.bp(
        "undeclared",
        "1",
        "0.10",
        "",
        "echo '{}' > \"$1/launch.sbom.syft.json\"",
    );
    w.group(&[("undeclared", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(r.out.contains("application/vnd.syft+json is not declared in buildpack.toml field `buildpack.sbom-formats`"), "{}", r.out);
    assert!(!w.exists("layers/config/metadata.toml"));
}

#[test]
fn store_toml_round_trip() {
    let w = World::new();
    // As the restorer leaves it from the previous image.
    w.write("layers/st/store.toml", "[metadata]\nruns = 1\n");
    let build = "old=$(grep -o '[0-9]*' \"$1/store.toml\")\nprintf '[metadata]\\nruns = %d\\n[metadata.nested]\\nk = \"v\"\\n' $((old + 1)) > \"$1/store.toml\"";
    w.bp("st", "1", "0.10", "", build);
    w.group(&[("st", "1", "0.10")]);
    assert_code(&w.builder(&[]), 0);
    let store = StoreToml::read(&w.path("layers/st/store.toml")).unwrap();
    assert_eq!(store.metadata["runs"].as_integer(), Some(2));
    assert_eq!(store.metadata["nested"]["k"].as_str(), Some("v"));
    let rendered = store.render();
    assert_eq!(
        rendered,
        "[metadata]\n  runs = 2\n  [metadata.nested]\n    k = \"v\"\n"
    );
    let again = w.write("again.toml", &rendered);
    assert_eq!(StoreToml::read(&again).unwrap(), store);
}

#[test]
fn failing_buildpack_stops_the_build_with_its_output() {
    let w = World::new();
    w.bp("ok", "1", "0.10", "", "echo 'ok ran'");
    w.bp(
        "bad",
        "1",
        "0.10",
        "",
        "echo 'compiling...'; echo 'error: boom' >&2; exit 7",
    );
    w.bp("after", "1", "0.10", "", "echo 'after ran'");
    w.group(&[
        ("ok", "1", "0.10"),
        ("bad", "1", "0.10"),
        ("after", "1", "0.10"),
    ]);
    let r = w.builder(&[]);
    assert_code(&r, 51);
    assert!(
        r.out.contains("ok ran\ncompiling...\nerror: boom\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains(
            "ERROR: failed to build: buildpack bad@1 failed: bin/build exited with code 7"
        ),
        "{}",
        r.out
    );
    assert!(!r.out.contains("after ran"));
    assert!(!w.exists("layers/config/metadata.toml"));
}

#[test]
fn layer_types_unmet_and_plan_filtering() {
    let w = World::new();
    let a = [
        layer("kept", "cache = true"),
        "mkdir -p \"$1/untyped\"; printf '[metadata]\\nv = 1\\n' > \"$1/untyped.toml\"\n".into(),
        "printf '[[unmet]]\\nname = \"later\"\\n' > \"$1/build.toml\"\n".into(),
    ]
    .concat();
    w.bp("A", "1", "0.10", "", &a);
    w.bp(
        "B",
        "1",
        "0.10",
        "",
        "echo B-plan; cat \"$CNB_BP_PLAN_PATH\"",
    );
    w.write(
        "layers/plan.toml",
        "[[entries]]\n[[entries.providers]]\nid = \"A\"\nversion = \"1\"\n[[entries.providers]]\nid = \"B\"\nversion = \"1\"\n[[entries.requires]]\nname = \"later\"\n\n[[entries]]\n[[entries.providers]]\nid = \"A\"\nversion = \"1\"\n[[entries.providers]]\nid = \"B\"\nversion = \"1\"\n[[entries.requires]]\nname = \"met\"\n",
    );
    w.group(&[("A", "1", "0.10"), ("B", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    assert!(
        w.exists("layers/A/kept")
            && w.exists("layers/A/untyped.ignore")
            && !w.exists("layers/A/untyped")
    );
    let b_plan = &r.out[r.out.find("B-plan").unwrap()..];
    assert!(
        b_plan.contains("name = \"later\"") && !b_plan.contains("name = \"met\""),
        "{b_plan}"
    );

    // An unmet name that is not in the plan is an error.
    w.bp(
        "A",
        "1",
        "0.10",
        "",
        "printf '[[unmet]]\\nname = \"nope\"\\n' > \"$1/build.toml\"",
    );
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(
        r.out.contains("build.toml: field `unmet[0].name`"),
        "{}",
        r.out
    );
}

#[test]
fn execd_programs_stay_in_launch_layers() {
    let w = World::new();
    let build = [
        layer("helper", "launch = true"),
        "mkdir -p \"$1/helper/exec.d/web\"\n".into(),
        "printf '#!/bin/sh\\necho A=1 >&3\\n' > \"$1/helper/exec.d/env\"; chmod +x \"$1/helper/exec.d/env\"\n".into(),
        "printf 'x' > \"$1/helper/exec.d/web/not-exec\"\n".into(),
    ]
    .concat();
    w.bp("X", "1", "0.10", "", &build);
    w.group(&[("X", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 0);
    assert!(w.exists("layers/X/helper/exec.d/env"));
    let bad = w.path("layers/X/helper/exec.d/web/not-exec");
    assert!(
        r.out.contains(&format!(
            "Warning: exec.d file {} is not executable",
            bad.display()
        )),
        "{}",
        r.out
    );
    assert!(!r.out.contains("exec.d/env is not"), "{}", r.out);
}
