//! Cases ported from kpack's `cnb/project_descriptor_test.go`, with our own fixtures.

use std::cell::RefCell;
use std::fs;
use std::path::Path;

use super::*;

struct Fx {
    _t: tempfile::TempDir,
    app: PathBuf,
    platform: PathBuf,
}

fn fx(files: &[(&str, &str)]) -> Fx {
    let t = tempfile::tempdir().unwrap();
    let app = t.path().join("workspace");
    let platform = t.path().join("platform");
    for (p, c) in files {
        let f = app.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, c).unwrap();
    }
    fs::create_dir_all(&app).unwrap();
    Fx {
        _t: t,
        app,
        platform,
    }
}

fn run(f: &Fx, descriptor_path: &str) -> (Result<(), DescriptorError>, Vec<String>) {
    let lines = RefCell::new(Vec::new());
    let shown = |p: &Path| format!("/workspace/{}", p.strip_prefix(&f.app).unwrap().display());
    let r = process(
        &DescriptorPaths {
            app_dir: &f.app,
            descriptor_path,
            platform_dir: &f.platform,
            shown: &shown,
        },
        &|l| lines.borrow_mut().push(l.to_string()),
    );
    (r, lines.into_inner())
}

fn env(f: &Fx, name: &str) -> Option<String> {
    fs::read_to_string(f.platform.join("env").join(name)).ok()
}

fn exists(f: &Fx, p: &str) -> bool {
    f.app.join(p).symlink_metadata().is_ok()
}

#[test]
fn no_descriptor_is_fine_unless_a_path_was_given() {
    let f = fx(&[("a.txt", "x")]);
    assert!(run(&f, "").0.is_ok());
    let e = run(&f, "sub/project.toml").0.unwrap_err();
    assert_eq!(
        e.to_string(),
        "project descriptor path set but no file found: /workspace/sub/project.toml"
    );
}

#[test]
fn explicit_descriptor_path_is_used() {
    let f = fx(&[(
        "cfg/custom.toml",
        "[[build.env]]\nname = \"A\"\nvalue = \"1\"\n",
    )]);
    run(&f, "cfg/custom.toml").0.unwrap();
    assert_eq!(env(&f, "A").as_deref(), Some("1"));
}

#[test]
fn v1_env_and_ignored_fields() {
    let f = fx(&[(
        "project.toml",
        "[build]\nbuilder = \"b\"\n[[build.buildpacks]]\nid = \"x\"\n[[build.env]]\nname = \"K1\"\nvalue = \"v1\"\n[[build.env]]\nname = \"K1\"\nvalue = \"v2\"\n",
    )]);
    let (r, lines) = run(&f, "");
    r.unwrap();
    assert_eq!(env(&f, "K1").as_deref(), Some("v2"), "later duplicates win");
    assert_eq!(
        lines,
        vec![
            "info: buildpacks provided in project descriptor file will be ignored",
            "info: builder provided in project descriptor file will be ignored"
        ]
    );
}

#[test]
fn v2_env_forms_and_precedence() {
    let new_and_old = "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.build.env]]\nname = \"NEW\"\nvalue = \"n\"\n[[io.buildpacks.env.build]]\nname = \"OLD\"\nvalue = \"o\"\n";
    let f = fx(&[("project.toml", new_and_old)]);
    run(&f, "").0.unwrap();
    assert_eq!(env(&f, "NEW").as_deref(), Some("n"));
    assert_eq!(env(&f, "OLD"), None, "new form has higher precedence");

    let old_build = "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.env.build]]\nname = \"OLD\"\nvalue = \"o\"\n";
    let f = fx(&[("project.toml", old_build)]);
    run(&f, "").0.unwrap();
    assert_eq!(env(&f, "OLD").as_deref(), Some("o"));

    let old_flat =
        "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.env]]\nname = \"FLAT\"\nvalue = \"f\"\n";
    let f = fx(&[("project.toml", old_flat)]);
    run(&f, "").0.unwrap();
    assert_eq!(env(&f, "FLAT").as_deref(), Some("f"));

    let group = "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nbuilder = \"x\"\n[[io.buildpacks.group]]\nid = \"bp\"\n";
    let f = fx(&[("project.toml", group)]);
    let (r, lines) = run(&f, "");
    r.unwrap();
    assert_eq!(lines.len(), 2);
}

#[test]
fn env_errors() {
    let cases = [
        (
            "[[build.env]]\nname = \"A\"\nvalue = 1\n",
            "environment variable 'A' is not a string value",
        ),
        (
            "[[build.env]]\nname = 1\nvalue = \"x\"\n",
            "environment variable 'name' is not a string",
        ),
        (
            "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nenv = \"x\"\n",
            "environment variables in project descriptor could not be parsed",
        ),
    ];
    for (text, want) in cases {
        let f = fx(&[("project.toml", text)]);
        assert_eq!(run(&f, "").0.unwrap_err().to_string(), want, "{text}");
    }
}

#[test]
fn unsupported_version_is_ignored_with_a_warning() {
    let f = fx(&[(
        "project.toml",
        "[_]\nschema-version = \"0.3\"\n[io.buildpacks]\nexclude = [\"*\"]\n",
    )]);
    let (r, lines) = run(&f, "");
    r.unwrap();
    assert_eq!(
        lines,
        vec!["warning: project descriptor version 0.3 is unsupported and /workspace/project.toml will be ignored"]
    );
    assert!(exists(&f, "project.toml"));
}

#[test]
fn include_and_exclude_together_fail() {
    let f = fx(&[(
        "project.toml",
        "[build]\ninclude = [\"a\"]\nexclude = [\"b\"]\n",
    )]);
    assert_eq!(
        run(&f, "").0.unwrap_err().to_string(),
        "project descriptor cannot have both include and exclude defined"
    );
}

#[test]
fn exclude_deletes_matching_files_only() {
    let f = fx(&[
        (
            "project.toml",
            "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [\"*.log\", \"secrets/\"]\n",
        ),
        ("app.go", "x"),
        ("debug.log", "x"),
        ("sub/trace.log", "x"),
        ("secrets/key", "x"),
    ]);
    run(&f, "").0.unwrap();
    assert!(exists(&f, "app.go") && exists(&f, "project.toml"));
    assert!(!exists(&f, "debug.log") && !exists(&f, "sub/trace.log"));
    assert!(!exists(&f, "secrets/key"));
    assert!(exists(&f, "secrets"), "directories are never deleted");
}

#[test]
fn include_deletes_everything_else_even_project_toml_and_git() {
    let f = fx(&[
        ("project.toml", "[build]\ninclude = [\"src/\", \"*.jar\"]\n"),
        ("src/main.java", "x"),
        ("target/app.jar", "x"),
        ("README.md", "x"),
        (".git/HEAD", "x"),
    ]);
    run(&f, "").0.unwrap();
    assert!(exists(&f, "src/main.java") && exists(&f, "target/app.jar"));
    assert!(!exists(&f, "README.md"));
    assert!(!exists(&f, "project.toml"));
    assert!(!exists(&f, ".git/HEAD"));
}

#[test]
fn symlinks_are_judged_as_files_and_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("precious"), "x").unwrap();
    let f = fx(&[("project.toml", "[build]\nexclude = [\"link/\"]\n")]);
    std::os::unix::fs::symlink(outside.path(), f.app.join("link")).unwrap();
    run(&f, "").0.unwrap();
    assert!(outside.path().join("precious").exists());
}

#[test]
fn env_names_cannot_escape_platform_env() {
    let f = fx(&[(
        "project.toml",
        "[[build.env]]\nname = \"../../workspace/pwn\"\nvalue = \"x\"\n",
    )]);
    let e = run(&f, "").0.unwrap_err().to_string();
    assert!(e.contains("invalid environment variable name"), "{e}");
    assert!(!f.app.join("pwn").exists());
}

#[test]
fn invalid_toml_is_an_error() {
    let f = fx(&[("project.toml", "[build\n")]);
    assert!(run(&f, "").0.is_err());
}
