use super::*;

fn vars(kv: &[(&str, &str)]) -> Vars {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Write `files` into a temp dir and load the first one.
fn load(files: &[(&str, &str)], set: &[(&str, &str)]) -> Result<Definition, String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("bin"), b"\x7fELF").unwrap();
    Definition::load(&dir.path().join(files[0].0), &vars(set)).map_err(|e| {
        // Temp paths differ per run: keep the message after the file name.
        let m = e.to_string();
        m.split_once(".toml: ")
            .map_or(m.clone(), |(_, r)| r.to_string())
    })
}

#[test]
fn substitution() {
    let v = vars(&[("name", "completion"), ("x", "")]);
    assert_eq!(
        substitute("/cnb/process/${name}", &v).unwrap(),
        "/cnb/process/completion"
    );
    assert_eq!(substitute("a$$b ${x}$ $z", &v).unwrap(), "a$b $ $z");
    assert_eq!(
        substitute("${nope}", &v).unwrap_err(),
        "undefined variable ${nope} in \"${nope}\""
    );
    assert_eq!(
        substitute("${name", &v).unwrap_err(),
        "unclosed ${ in \"${name\""
    );
}

const COMMON: &str = r#"
[image]
entrypoint = ["/cnb/process/${name}"]
env = ["PATH=/usr/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
user = "1002:1000"
labels = { title = "buildpod ${name}", revision = "${revision}" }
[[layers]]
name = "base"
entries = [
  { path = "/tmp", type = "dir", mode = 0o1777 },
  { path = "/home/cnb", type = "dir", uid = 1002, gid = 1000 },
  { path = "/etc/passwd", type = "text", text = "cnb:x:1002:1000::/home/cnb:/sbin/nologin\n" },
]
[[layers]]
name = "${name}"
entries = [
  { path = "/usr/local/bin/buildpod", type = "file", source = "bin", mode = 0o755 },
  { path = "/cnb/process/${name}", type = "symlink", target = "../../usr/local/bin/buildpod" },
]
"#;

#[test]
fn includes_vars_and_parents() {
    let one = r#"
include = ["common.toml"]
[vars]
name = "completion"
revision = "file"
[image]
env = ["PATH=/cnb/process:/usr/bin", "EXTRA=1"]
labels = { extra = "yes" }
"#;
    let d = load(
        &[("one.toml", one), ("common.toml", COMMON)],
        &[("revision", "abc")],
    )
    .unwrap();
    assert_eq!(
        d.image.entrypoint,
        Some(vec!["/cnb/process/completion".to_string()])
    );
    // The includer's value replaces the included one in place.
    assert_eq!(
        d.image.env,
        vec![
            ("PATH".to_string(), "/cnb/process:/usr/bin".to_string()),
            (
                "SSL_CERT_FILE".to_string(),
                "/etc/ssl/certs/ca-certificates.crt".to_string()
            ),
            ("EXTRA".to_string(), "1".to_string()),
        ]
    );
    // The caller's vars win over the files'.
    assert_eq!(d.image.labels["revision"], "abc");
    assert_eq!(d.image.labels["title"], "buildpod completion");
    assert_eq!(d.image.labels["extra"], "yes");
    assert_eq!(d.image.user.as_deref(), Some("1002:1000"));
    assert_eq!(d.image.created, "1980-01-01T00:00:01Z");
    let paths = |l: &LayerDef| l.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&d.layers[0]),
        ["etc", "etc/passwd", "home", "home/cnb", "tmp"]
    );
    assert_eq!(d.layers[0].entries[3].uid, 1002);
    assert_eq!(d.layers[0].entries[4].mode, 0o1777);
    assert_eq!(d.layers[1].name, "completion");
    assert_eq!(
        paths(&d.layers[1]),
        [
            "cnb",
            "cnb/process",
            "cnb/process/completion",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/buildpod"
        ]
    );
}

#[test]
fn invalid_definitions_say_what_is_wrong() {
    let layer = |entries: &str| format!("[[layers]]\nname = \"l\"\nentries = [{entries}]\n");
    let cases: &[(String, &str)] = &[
        (
            layer(r#"{ path = "/a/../b", type = "dir" }"#),
            r#"layer "l": path "/a/../b": empty, "." or ".." components are not allowed"#,
        ),
        (
            layer(r#"{ path = "/a", type = "dir" }, { path = "a", type = "dir" }"#),
            r#"layer "l": "a" is listed twice"#,
        ),
        (
            layer(r#"{ path = "/a", type = "text", text = "x" }, { path = "/a/b", type = "dir" }"#),
            r#"layer "l": "a" is a parent but not a directory"#,
        ),
        (
            layer(
                r#"{ path = "/t", type = "tree", source = "." }, { path = "/t/x", type = "dir" }"#,
            ),
            r#"layer "l": "t/x" is inside tree "t""#,
        ),
        (
            layer(r#"{ path = "/x", type = "text", text = "x", uid = 5 }"#),
            r#"layer "l": entry "/x": uid/gid are supported on directories only"#,
        ),
        (
            layer(r#"{ path = "/x", type = "symlink", target = "y", source = "z" }"#),
            r#"layer "l": entry "/x": source is not used by type "symlink""#,
        ),
        (
            layer(r#"{ path = "/x", type = "file" }"#),
            r#"layer "l": entry "/x": needs source"#,
        ),
        (
            layer(r#"{ path = "/x", type = "device" }"#),
            r#"layer "l": entry "/x": unknown type "device" (want dir, file, text, symlink or tree)"#,
        ),
        (
            layer(r#"{ path = "/", type = "dir" }"#),
            r#"layer "l": entry "/": only a tree may be the root"#,
        ),
        (
            layer(r#"{ path = "/x", type = "dir", mode = 0o17777 }"#),
            r#"layer "l": entry "/x": mode 17777 is not a permission mode"#,
        ),
        (
            layer(r#"{ path = "/${who}", type = "dir" }"#),
            r#"layer "l": undefined variable ${who} in "/${who}""#,
        ),
        ("[image]\nuser = \"x\"\n".to_string(), "no layers"),
        (
            "[image]\nenv = [\"NOEQUALS\"]\n".to_string(),
            r#"env entry "NOEQUALS" is not KEY=VALUE"#,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(load(&[("d.toml", text)], &[]).unwrap_err(), *want, "{text}");
    }
    let unknown = load(&[("d.toml", "colour = 1\n")], &[]).unwrap_err();
    assert!(unknown.contains("unknown field `colour`"), "{unknown}");
    let cycle = load(&[("d.toml", "include = [\"d.toml\"]\n")], &[]).unwrap_err();
    assert_eq!(cycle, "includes itself");
}
