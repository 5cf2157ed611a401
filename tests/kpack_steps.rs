//! `rebase` and `build-waiter` as real processes: flags, exit codes and files.

mod kpack_util;

use kpack_util::Root;

#[test]
fn rebase_without_tags_exits_3() {
    let root = Root::new();
    let out = root.run(
        "rebase",
        &[
            "--run-image",
            "r/run",
            "--last-built-image",
            "r/app@sha256:00",
            "--report",
            "/var/report/report.toml",
        ],
        &[],
    );
    assert_eq!(out.code(), 3, "{out:?}");
    assert_eq!(
        out.stdout(),
        "ERROR: failed to must provide one or more image tags\n"
    );
    let out = root.run("rebase", &["-basic-docker=bad", "r/app"], &[]);
    assert_eq!(out.code(), 3, "{out:?}");
    assert!(out
        .stdout()
        .contains("ERROR: failed to : could not parse docker secret argument bad"));
}

#[test]
fn build_waiter_copy_and_wait() {
    let root = Root::new();
    let to = root.path("buildWait/build-waiter");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let out = root.run("build-waiter", &["-mode=copy"], &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .ends_with(" -to must be specified with -mode=copy\n"),
        "{out:?}"
    );
    let out = root.run(
        "build-waiter",
        &["-mode=copy", &format!("-to={}", to.display())],
        &[],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(to.exists());

    // The wait file already has content; the quoted argument keeps its space.
    let wait = root.path("buildWait/prepare");
    std::fs::write(&wait, "done").unwrap();
    let done = root.path("buildWait/analyze");
    let marker = root.path("marker");
    let exec = format!("sh -c 'printf \"%s\" \"a b\" > {}'", marker.display());
    let out = root.run(
        "build-waiter",
        &[
            "-mode=wait",
            &format!("-done-file={}", done.display()),
            &format!("-error-file={}", root.path("buildWait/error").display()),
            &format!("-execute={exec}"),
            &format!("-wait-file={}", wait.display()),
        ],
        &[],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "a b");
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "done");

    // The done file exists: refuse, and record the error for the other steps.
    let out = root.run(
        "build-waiter",
        &[
            &format!("-done-file={}", done.display()),
            &format!("-error-file={}", root.path("buildWait/error").display()),
            "-execute=true",
        ],
        &[],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .ends_with(" file specified for writing already exists\n"),
        "{:?}",
        out.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(root.path("buildWait/error")).unwrap(),
        "file specified for writing already exists"
    );
    // A failing command.
    let out = root.run("build-waiter", &["-execute=false"], &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .ends_with(" error running command exit status 1\n"),
        "{out:?}"
    );
    let out = root.run("build-waiter", &[], &[]);
    assert!(
        out.stderr().ends_with(" need -execute with -mode=wait\n"),
        "{out:?}"
    );
}
