//! Malformed inputs: every error names the file and the field, exits with the spec's code, and
//! leaves no new or half-written output behind.

mod lifecycle_util;

use lifecycle_util::{assert_code, World};

const OLD_GROUP: &str = "# from an earlier run\n";

/// The layers dir holds no temp files and the old group.toml is untouched.
fn assert_outputs_untouched(w: &World) {
    assert_eq!(w.read("layers/group.toml"), OLD_GROUP);
    assert!(!w.exists("layers/plan.toml"));
    let stray: Vec<_> = std::fs::read_dir(w.path("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn malformed_buildpack_toml() {
    let w = World::new();
    w.write("layers/group.toml", OLD_GROUP);
    w.bp_plan("A", "1", "");
    w.write(
        "buildpacks/A/1/buildpack.toml",
        "api = \"0.10\"\n[buildpack]\nid = \"A\"\nversion = 1\n",
    );
    w.order(&[&["A@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 1);
    let file = w.path("buildpacks/A/1/buildpack.toml");
    assert!(
        r.out.contains(&format!(
            "{}: field `buildpack.version`: expected a string, found an integer",
            file.display()
        )),
        "{}",
        r.out
    );
    assert_outputs_untouched(&w);

    // Inside a composite (found during detection): a detect error, exit 22.
    w.composite("M", "1", &lifecycle_util::order_toml("order", &[&["A@1"]]));
    w.order(&[&["M@1"]]);
    let r = w.detector(&[]);
    assert_code(&r, 22);
    assert!(r.out.contains("field `buildpack.version`"), "{}", r.out);
    assert_outputs_untouched(&w);

    // In the builder: a build error, exit 52, no metadata.toml.
    w.write(
        "layers/group.toml",
        "[[group]]\nid = \"A\"\nversion = \"1\"\napi = \"0.10\"\n",
    );
    w.write("layers/plan.toml", "");
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(r.out.contains("field `buildpack.version`"), "{}", r.out);
    assert!(!w.exists("layers/config/metadata.toml"));
}

#[test]
fn malformed_order_toml() {
    let w = World::new();
    w.write("layers/group.toml", OLD_GROUP);
    w.bp_plan("A", "1", "");
    w.write(
        "order.toml",
        "[[order]]\n[[order.group]]\nid = \"A\"\nversion = \"1\"\noptional = \"yes\"\n",
    );
    let r = w.detector(&[]);
    assert_code(&r, 1);
    assert!(
        r.out.contains(&format!(
            "{}: field `order[0].group[0].optional`: expected a boolean, found a string",
            w.path("order.toml").display()
        )),
        "{}",
        r.out
    );
    assert_outputs_untouched(&w);

    w.write("order.toml", "[[order]\n");
    let r = w.detector(&[]);
    assert_code(&r, 1);
    assert!(
        r.out
            .contains(&format!("parse {}", w.path("order.toml").display())),
        "{}",
        r.out
    );
    assert_outputs_untouched(&w);
}

#[test]
fn malformed_launch_toml() {
    let w = World::new();
    // Buildpack API 0.10 wants an array command.
    w.bp(
        "A",
        "1",
        "0.10",
        "",
        "printf '[[processes]]\\ntype = \"web\"\\ncommand = \"run\"\\n' > \"$1/launch.toml\"",
    );
    w.group(&[("A", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(
        r.out.contains(&format!(
            "{}: field `processes[0].command`: must be an array of strings",
            w.path("layers/A/launch.toml").display()
        )),
        "{}",
        r.out
    );
    assert!(!w.exists("layers/config/metadata.toml"));

    w.bp(
        "A",
        "1",
        "0.10",
        "",
        "printf '[[processes]]\\ntype = \"bad/type\"\\ncommand = [\"x\"]\\n' > \"$1/launch.toml\"",
    );
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(r.out.contains("field `processes[0].type`"), "{}", r.out);
}

#[test]
fn malformed_layer_toml() {
    let w = World::new();
    w.bp(
        "A",
        "1",
        "0.10",
        "",
        "mkdir \"$1/node\"; printf 'launch = true\\n' > \"$1/node.toml\"",
    );
    w.group(&[("A", "1", "0.10")]);
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(
        r.out.contains(&format!(
            "{}: field `launch`: must be set in [types]",
            w.path("layers/A/node.toml").display()
        )),
        "{}",
        r.out
    );
    assert!(!w.exists("layers/config/metadata.toml"));

    w.bp(
        "A",
        "1",
        "0.10",
        "",
        "printf '[types]\\nbuild = \"yes\"\\n' > \"$1/node.toml\"",
    );
    let r = w.builder(&[]);
    assert_code(&r, 52);
    assert!(
        r.out
            .contains("node.toml: field `types.build`: expected a boolean"),
        "{}",
        r.out
    );
}

#[test]
fn malformed_group_and_unsupported_group_api() {
    let w = World::new();
    w.write(
        "layers/group.toml",
        "[[group]]\nid = \"A\"\napi = \"0.10\"\n",
    );
    w.write("layers/plan.toml", "");
    let r = w.builder(&[]);
    assert_code(&r, 1);
    assert!(
        r.out
            .contains("group.toml: field `group[0].version`: is required"),
        "{}",
        r.out
    );
    w.write(
        "layers/group.toml",
        "[[group]]\nid = \"A\"\nversion = \"1\"\napi = \"0.2\"\n",
    );
    let r = w.builder(&[]);
    assert_code(&r, 12);
    assert!(r.out.contains("field `group[0].api`"), "{}", r.out);
}
