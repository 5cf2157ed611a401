//! The launcher run for real in an app rootfs (busybox, bash, `/layers`, `/workspace`,
//! `/cnb/process/<type>` symlinks), under `chroot` and under `runc`. Needs root (CI runs as
//! root); each test says so and returns when it is not.

mod launcher_util;

use launcher_util::{have, is_root, Rootfs, Run};

const LAYERS: &str = "/layers/acme_direct/tools";
const HELLO: &str = "/layers/acme_direct/tools/bin/hello";

/// The image env the exporter writes (PATH includes /cnb/process and /cnb/lifecycle).
const ENV: &[(&str, &str)] = &[
    ("PATH", "/cnb/process:/cnb/lifecycle:/bin"),
    ("CNB_PLATFORM_API", "0.12"),
    ("CNB_LAYERS_DIR", "/layers"),
    ("CNB_APP_DIR", "/workspace"),
    ("HOME", "/home/app"),
];

const METADATA: &str = r#"buildpack-default-process-type = "web"

[[buildpacks]]
  id = "acme/shell"
  version = "1.0.0"
  api = "0.8"

[[buildpacks]]
  id = "acme/direct"
  version = "1.0.0"
  api = "0.10"

[[processes]]
  type = "badexecd"
  command = ["hello"]
  direct = true
  buildpack-id = "acme/direct"

[[processes]]
  type = "fail"
  command = ["sh", "-c", "exit 7"]
  direct = true
  buildpack-id = "acme/direct"

[[processes]]
  type = "greet"
  command = ["echo"]
  args = ["hi", "$PROFILE_D"]
  direct = false
  buildpack-id = "acme/shell"

[[processes]]
  type = "shell"
  command = ['echo "shell PROFILE_D=$PROFILE_D PROFILE_ARGV0=$PROFILE_ARGV0 PROFILE_TYPED=$PROFILE_TYPED APP_PROFILE=$APP_PROFILE EXECD_VAR=$EXECD_VAR SHELL_LAYER=$SHELL_LAYER pwd=$(pwd)"']
  direct = false
  buildpack-id = "acme/shell"
  working-dir = "sub"

[[processes]]
  type = "wd"
  command = ["pwd"]
  direct = true
  buildpack-id = "acme/direct"
  working-dir = "sub"

[[processes]]
  type = "web"
  command = ["hello"]
  args = ["default-arg"]
  direct = true
  buildpack-id = "acme/direct"

[[processes]]
  type = "worker"
  command = ["hello", "always"]
  args = ["overridable"]
  direct = true
  buildpack-id = "acme/direct"
"#;

const HELLO_SCRIPT: &str = r#"#!/bin/sh
printf '[%s]' "$0" "$@"; echo
echo "BASE_VAR=$BASE_VAR LAUNCH_VAR=$LAUNCH_VAR WEB_ONLY=$WEB_ONLY EXECD_VAR=$EXECD_VAR EXECD_WEB=$EXECD_WEB CNB_PLATFORM_API=$CNB_PLATFORM_API"
echo "PATH=$PATH"
"#;

/// Two buildpacks' layers, an app with `.profile`, and a process symlink per type.
fn app() -> Rootfs {
    let r = Rootfs::new();
    r.write("layers/config/metadata.toml", METADATA);
    // acme/shell (api 0.8): profile scripts and a launch env var, no bin.
    let sh = "layers/acme_shell/sh-layer";
    r.write(
        &format!("{sh}/profile.d/10-base.sh"),
        "export PROFILE_D=yes\nexport PROFILE_ARGV0=\"$0\"\n",
    );
    r.write(
        &format!("{sh}/profile.d/shell/20-typed.sh"),
        "export PROFILE_TYPED=yes\n",
    );
    r.write(&format!("{sh}/env.launch/SHELL_LAYER"), "set");
    r.write(
        "layers/acme_shell/sh-layer.toml",
        "[types]\nlaunch = true\n",
    );
    // acme/direct (api 0.10): a bin, env files (also per process) and exec.d helpers.
    let l = &LAYERS[1..];
    r.write_exec(&format!("{l}/bin/hello"), HELLO_SCRIPT);
    r.write(&format!("{l}/env/BASE_VAR"), "base");
    r.write(&format!("{l}/env.launch/LAUNCH_VAR.default"), "launch");
    r.write(&format!("{l}/env.launch/web/WEB_ONLY"), "web-only");
    r.write_exec(
        &format!("{l}/exec.d/10-execd"),
        "#!/bin/sh\nprintf 'EXECD_VAR = \"execd saw %s\"\\n' \"$BASE_VAR\" >&3\n",
    );
    r.write_exec(
        &format!("{l}/exec.d/web/20-web"),
        "#!/bin/sh\nprintf 'EXECD_WEB = \"after %s\"\\n' \"$EXECD_VAR\" >&3\n",
    );
    r.write_exec(
        &format!("{l}/exec.d/badexecd/fail"),
        "#!/bin/sh\necho helper complains >&2\nexit 3\n",
    );
    r.write("layers/acme_direct/tools.toml", "[types]\nlaunch = true\n");
    r.write("workspace/.profile", "export APP_PROFILE=yes\n");
    r.mkdir("workspace/sub");
    for t in [
        "web", "worker", "shell", "greet", "wd", "fail", "badexecd", "missing",
    ] {
        r.process_link(t);
    }
    r
}

fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        eprintln!("launcher::{test}: skipped, needs root for chroot/runc (CI runs as root)");
        return false;
    }
    true
}

fn run(r: &Rootfs, argv: &[&str]) -> Run {
    r.chroot(argv, ENV)
}

fn with_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = ENV
        .iter()
        .copied()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    env.extend(extra.iter().copied().filter(|(_, v)| !v.is_empty()));
    env
}

#[track_caller]
fn assert_run(r: &Run, code: i32, out: &str) {
    assert_eq!((r.code, r.out.as_str()), (code, out), "stderr:\n{}", r.err);
}

fn web_output(args: &str, web: bool) -> String {
    let (web_only, execd_web) = if web {
        ("web-only", "after execd saw base")
    } else {
        ("", "")
    };
    format!(
        "[{HELLO}]{args}\nBASE_VAR=base LAUNCH_VAR=launch WEB_ONLY={web_only} EXECD_VAR=execd saw base EXECD_WEB={execd_web} CNB_PLATFORM_API=\nPATH={LAYERS}/bin:/bin\n"
    )
}

#[test]
fn default_process_starts_with_layer_env_and_execd() {
    if !root_or_skip("default_process_starts_with_layer_env_and_execd") {
        return;
    }
    let r = app();
    // The image's ENTRYPOINT is the default process's symlink.
    assert_run(
        &run(&r, &["/cnb/process/web"]),
        0,
        &web_output("[default-arg]", true),
    );
}

#[test]
fn named_process_and_user_args() {
    if !root_or_skip("named_process_and_user_args") {
        return;
    }
    let r = app();
    // command[1:] always comes first; user args replace the process args.
    let w = run(&r, &["/cnb/process/worker"]);
    assert_run(&w, 0, &web_output("[always][overridable]", false));
    let w = run(&r, &["/cnb/process/worker", "x", "y z"]);
    assert_run(&w, 0, &web_output("[always][x][y z]", false));
    // Buildpack api 0.10, one command word: user args replace the process args.
    let w = run(&r, &["/cnb/process/web", "a", "b"]);
    assert_run(&w, 0, &web_output("[a][b]", true));
}

#[test]
fn bash_shell_process_sources_profiles() {
    if !root_or_skip("bash_shell_process_sources_profiles") {
        return;
    }
    let r = app();
    let s = run(&r, &["/cnb/process/shell"]);
    assert_run(
        &s,
        0,
        "shell PROFILE_D=yes PROFILE_ARGV0=/cnb/process/shell PROFILE_TYPED=yes APP_PROFILE=yes EXECD_VAR=execd saw base SHELL_LAYER=set pwd=/workspace/sub\n",
    );
    // Buildpack api 0.8: user args are appended, and every token is shell-expanded on its own.
    let g = run(&r, &["/cnb/process/greet", "$APP_PROFILE", "a b"]);
    assert_run(&g, 0, "hi yes yes a b\n");
}

#[test]
fn user_command_through_bash_or_direct_after_dashes() {
    if !root_or_skip("user_command_through_bash_or_direct_after_dashes") {
        return;
    }
    let r = app();
    let launcher = "/cnb/lifecycle/launcher";
    let d = run(&r, &[launcher, "--", "hello", "$HOME", "a b"]);
    assert_run(&d, 0, &web_output("[$HOME][a b]", false));
    let s = run(&r, &[launcher, "hello", "$HOME", "a b"]);
    assert_run(&s, 0, &web_output("[/home/app][a b]", false));
    // One word and no args: a bash script, after the untyped profiles only.
    let s = run(
        &r,
        &[
            launcher,
            "echo \"$PROFILE_D:$PROFILE_TYPED:$APP_PROFILE\"; exit 9",
        ],
    );
    assert_run(&s, 9, "yes::yes\n");
}

#[test]
fn working_dir_and_exit_code_pass_through() {
    if !root_or_skip("working_dir_and_exit_code_pass_through") {
        return;
    }
    let r = app();
    assert_run(&run(&r, &["/cnb/process/wd"]), 0, "/workspace/sub\n");
    assert_run(
        &run(&r, &["/cnb/lifecycle/launcher", "--", "pwd"]),
        0,
        "/workspace\n",
    );
    assert_run(&run(&r, &["/cnb/process/fail"]), 7, "");
}

#[test]
fn launch_errors_exit_82() {
    if !root_or_skip("launch_errors_exit_82") {
        return;
    }
    let r = app();
    let no_default = "ERROR: failed to launch: determine start command: when there is no default process a command is required\n";
    assert_run(&run(&r, &["/cnb/lifecycle/launcher"]), 82, no_default);
    // A symlink for a type metadata.toml does not have is no process type.
    assert_run(&run(&r, &["/cnb/process/missing"]), 82, no_default);
    assert_run(
        &run(&r, &["/cnb/lifecycle/launcher", "--", "nope"]),
        82,
        "ERROR: failed to launch: path lookup: exec: \"nope\": executable file not found in $PATH\n",
    );
    let e = run(&r, &["/cnb/process/badexecd"]);
    assert_run(
        &e,
        82,
        &format!("ERROR: failed to launch: exec.d: {LAYERS}/exec.d/badexecd/fail exited with exit status: 3\n"),
    );
    assert_eq!(
        e.err, "helper complains\n",
        "exec.d stderr is the launcher's"
    );
}

#[test]
fn platform_and_buildpack_api_and_metadata_errors() {
    if !root_or_skip("platform_and_buildpack_api_and_metadata_errors") {
        return;
    }
    let r = app();
    let web = ["/cnb/process/web"];
    let apis = "0.7, 0.8, 0.9, 0.10, 0.11, 0.12, 0.13, 0.14";
    assert_run(
        &r.chroot(&web, &with_env(&[("CNB_PLATFORM_API", "")])),
        11,
        &format!(
            "ERROR: please set 'CNB_PLATFORM_API'; supported platform api versions are {apis}\n"
        ),
    );
    assert_run(
        &r.chroot(&web, &with_env(&[("CNB_PLATFORM_API", "0.6")])),
        11,
        &format!("ERROR: platform api version \"0.6\" is incompatible with the lifecycle; supported platform api versions are {apis}\n"),
    );
    r.write(
        "layers-old/config/metadata.toml",
        "[[buildpacks]]\nid = \"acme/ancient\"\napi = \"0.6\"\n",
    );
    assert_run(
        &r.chroot(&web, &with_env(&[("CNB_LAYERS_DIR", "/layers-old")])),
        12,
        "ERROR: buildpack \"acme/ancient\": buildpack api version \"0.6\" is incompatible with the lifecycle; supported buildpack api versions are 0.7, 0.8, 0.9, 0.10, 0.11, 0.12\n",
    );
    assert_run(
        &r.chroot(&web, &with_env(&[("CNB_LAYERS_DIR", "/nowhere")])),
        1,
        "ERROR: failed to read metadata: read /nowhere/config/metadata.toml: No such file or directory (os error 2)\n",
    );
}

#[test]
fn platform_0_9_appends_user_args_and_process_type_env_only_warns() {
    if !root_or_skip("platform_0_9_appends_user_args_and_process_type_env_only_warns") {
        return;
    }
    let r = app();
    // Platform < 0.10 writes `command` as a string; user args are appended.
    r.write(
        "layers-p09/config/metadata.toml",
        &format!("[[buildpacks]]\nid = \"acme/direct\"\napi = \"0.10\"\n[[processes]]\ntype = \"web\"\ncommand = \"{HELLO}\"\nargs = [\"default-arg\"]\ndirect = true\nbuildpack-id = \"acme/direct\"\n"),
    );
    let env = with_env(&[
        ("CNB_PLATFORM_API", "0.9"),
        ("CNB_LAYERS_DIR", "/layers-p09"),
    ]);
    let o = r.chroot(&["/cnb/process/web", "x"], &env);
    assert_eq!(
        (o.code, o.out.lines().next()),
        (0, Some(format!("[{HELLO}][default-arg][x]").as_str())),
        "{o:?}"
    );
    let o = r.chroot(
        &["/cnb/process/web"],
        &with_env(&[("CNB_PROCESS_TYPE", "worker")]),
    );
    let warn = "Warning: CNB_PROCESS_TYPE is not supported in Platform API 0.12\nWarning: Run with ENTRYPOINT 'worker' to invoke the 'worker' process type\n";
    assert_run(
        &o,
        0,
        &format!("{warn}{}", web_output("[default-arg]", true)),
    );
}

#[test]
fn runs_under_runc() {
    if !root_or_skip("runs_under_runc") {
        return;
    }
    if !have("runc") {
        eprintln!(
            "launcher::runs_under_runc: skipped, runc is not installed (ci/test installs it)"
        );
        return;
    }
    let r = app();
    assert_run(
        &r.runc("launcher-web", &["/cnb/process/web"], ENV),
        0,
        &web_output("[default-arg]", true),
    );
    assert_run(
        &r.runc(
            "launcher-shell",
            &["/cnb/process/greet", "$APP_PROFILE"],
            ENV,
        ),
        0,
        "hi yes yes\n",
    );
    assert_run(&r.runc("launcher-fail", &["/cnb/process/fail"], ENV), 7, "");
}
