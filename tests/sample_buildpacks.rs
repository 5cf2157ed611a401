//! Sample buildpacks in `images/buildpacks/`: detect passes on their app and fails on others,
//! build writes the layers and launch metadata they promise. `hello` runs under busybox `sh`
//! (what the tiny stack has), so it stays POSIX; the others are bash (the debian stack) and run
//! here with the host's bash, as the lifecycle runs them: the app as working directory, the CNB
//! variables and positional arguments set. Builds that need node, python or go run in the
//! debian build image in `tests/sample_apps.rs`.

mod samples_util;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::tools;

fn buildpack(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("images/buildpacks")
        .join(name)
}

/// Run `bin/<phase>` of `bp` in `app` with busybox sh; returns (exit code, stdout).
fn phase(
    bp: &Path,
    script: &str,
    app: &Path,
    env: &[(&str, &Path)],
    args: &[&Path],
) -> (i32, String) {
    let out = Command::new("/bin/busybox")
        .arg("sh")
        .arg(bp.join("bin").join(script))
        .args(args)
        .current_dir(app)
        .env_clear()
        .env("PATH", "/bin:/usr/bin")
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty() || out.status.code() == Some(0),
        "{script}: {stderr}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn hello_detects_its_app_only_and_builds_a_launch_layer() {
    tools::require("busybox");
    let bp = buildpack("hello");
    let toml: toml::Value =
        toml::from_str(&fs::read_to_string(bp.join("buildpack.toml")).unwrap()).unwrap();
    assert_eq!(toml["buildpack"]["id"].as_str(), Some("buildpod/hello"));
    assert_eq!(toml["api"].as_str(), Some("0.10"));

    let tmp = tempfile::tempdir().unwrap();
    let (app, other) = (tmp.path().join("app"), tmp.path().join("other"));
    fs::create_dir_all(&app).unwrap();
    fs::create_dir_all(&other).unwrap();
    fs::write(app.join("hello.txt"), "hello from the app\n").unwrap();
    fs::write(other.join("package.json"), "{}\n").unwrap();
    let (platform, plan, layers) = (
        tmp.path().join("platform"),
        tmp.path().join("plan.toml"),
        tmp.path().join("layers"),
    );
    fs::create_dir_all(&platform).unwrap();
    fs::create_dir_all(&layers).unwrap();

    let env = [
        ("CNB_PLATFORM_DIR", platform.as_path()),
        ("CNB_BUILD_PLAN_PATH", plan.as_path()),
    ];
    assert_eq!(
        phase(&bp, "detect", &other, &env, &[]).0,
        100,
        "detect on another app"
    );
    assert!(!plan.exists());
    assert_eq!(
        phase(&bp, "detect", &app, &env, &[]).0,
        0,
        "detect on its app"
    );
    let plan_text = fs::read_to_string(&plan).unwrap();
    let parsed: toml::Value = toml::from_str(&plan_text).unwrap();
    assert_eq!(parsed["requires"][0]["name"].as_str(), Some("hello"));

    let env = [
        ("CNB_LAYERS_DIR", layers.as_path()),
        ("CNB_PLATFORM_DIR", platform.as_path()),
    ];
    let (code, stdout) = phase(&bp, "build", &app, &env, &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("greeting: hello from the app"), "{stdout}");
    assert_eq!(
        fs::read_to_string(layers.join("hello.toml")).unwrap(),
        "[types]\nlaunch = true\n"
    );
    let launch: toml::Value =
        toml::from_str(&fs::read_to_string(layers.join("launch.toml")).unwrap()).unwrap();
    assert_eq!(launch["processes"][0]["type"].as_str(), Some("web"));
    assert_eq!(launch["processes"][0]["command"][0].as_str(), Some("hello"));
    // The process, as the launcher would start it: in the app directory, the layer's bin on PATH.
    let out = Command::new("/bin/busybox")
        .args(["sh", "-c", "hello"])
        .current_dir(&app)
        .env(
            "PATH",
            format!("{}:/bin", layers.join("hello/bin").display()),
        )
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the app\n");
}

/// Run `bin/<script>` of a sample buildpack with bash, as the lifecycle would for Buildpack API
/// 0.10: `args` positional, `env` plus PATH only. Returns (exit code, stdout, stderr).
fn bash_phase(
    bp: &str,
    script: &str,
    app: &Path,
    env: &[(&str, &Path)],
    args: &[&Path],
) -> (i32, String, String) {
    let dir = samples_util::buildpack_dir(bp);
    let out = Command::new("bash")
        .arg(dir.join("bin").join(script))
        .args(args)
        .current_dir(app)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("CNB_BUILDPACK_DIR", &dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Detect `bp` on `app` with a fresh platform dir and plan: (exit code, plan text if written).
fn detect(bp: &str, app: &Path) -> (i32, Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let (platform, plan) = (tmp.path().join("platform"), tmp.path().join("plan.toml"));
    fs::create_dir_all(platform.join("env")).unwrap();
    // The lifecycle creates the plan file empty before detect runs.
    fs::write(&plan, "").unwrap();
    let env = [
        ("CNB_PLATFORM_DIR", platform.as_path()),
        ("CNB_BUILD_PLAN_PATH", plan.as_path()),
    ];
    let (code, _, stderr) = bash_phase(bp, "detect", app, &env, &[&platform, &plan]);
    assert!(
        stderr.is_empty(),
        "{bp} detect on {}: {stderr}",
        app.display()
    );
    let text = fs::read_to_string(&plan).unwrap();
    (code, (!text.is_empty()).then_some(text))
}

#[test]
fn each_sample_buildpack_detects_its_own_app_and_no_other() {
    let apps = samples_util::apps();
    let names: Vec<&str> = apps.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["go", "nodejs-npm", "procfile", "python-pip", "static"]
    );
    for bp in samples_util::BUILDPACKS {
        let id = format!("buildpod/{bp}");
        for (name, dir, smoke) in &apps {
            let before = support::tree::snapshot(dir);
            let (code, plan) = detect(bp, dir);
            assert_eq!(
                support::tree::snapshot(dir),
                before,
                "{bp} detect changed {name}"
            );
            if smoke.buildpack != id {
                assert_eq!((code, &plan), (100, &None), "{bp} on {name}");
                continue;
            }
            assert_eq!(code, 0, "{bp} on its app {name}");
            // What each one provides and requires (procfile only adds processes).
            let want = match *bp {
                "nodejs" => Some("node_modules"),
                "python" => Some("site-packages"),
                "go" => Some("go-binary"),
                "static" => Some("static-site"),
                _ => None,
            };
            match want {
                None => assert_eq!(plan, None, "{bp}"),
                Some(dep) => {
                    let p: toml::Value = toml::from_str(plan.as_deref().unwrap()).unwrap();
                    assert_eq!(p["provides"][0]["name"].as_str(), Some(dep), "{bp}");
                    assert_eq!(p["requires"][0]["name"].as_str(), Some(dep), "{bp}");
                }
            }
        }
    }
    // Apps every app's buildpack turns down.
    let tmp = tempfile::tempdir().unwrap();
    let node_site = tmp.path().join("node-site");
    fs::create_dir_all(&node_site).unwrap();
    fs::write(node_site.join("package.json"), "{}").unwrap();
    fs::write(node_site.join("index.html"), "<p>hi</p>").unwrap();
    assert_eq!(
        detect("static", &node_site).0,
        100,
        "a Node.js app's index.html"
    );
    assert_eq!(detect("nodejs", &node_site).0, 0);
    let comments = tmp.path().join("comments");
    fs::create_dir_all(comments.join("public")).unwrap();
    fs::write(comments.join("Procfile"), "# web: nothing\n\n").unwrap();
    fs::write(comments.join("public/index.html"), "<p>hi</p>").unwrap();
    assert_eq!(
        detect("procfile", &comments).0,
        100,
        "a Procfile without processes"
    );
    assert_eq!(detect("static", &comments).0, 0, "public/index.html");
}

#[test]
fn buildpack_tomls_and_the_composite_order_pick_each_apps_buildpack() {
    let read = |name: &str| -> toml::Value {
        let p = samples_util::buildpack_dir(name).join("buildpack.toml");
        toml::from_str(&fs::read_to_string(&p).unwrap()).unwrap()
    };
    for bp in samples_util::BUILDPACKS {
        let t = read(bp);
        assert_eq!(t["api"].as_str(), Some("0.10"), "{bp}");
        assert_eq!(
            t["buildpack"]["id"].as_str(),
            Some(&*format!("buildpod/{bp}"))
        );
        assert_eq!(t["buildpack"]["version"].as_str(), Some("0.1.0"), "{bp}");
        assert_eq!(t["targets"][0]["os"].as_str(), Some("linux"), "{bp}");
        for script in ["detect", "build"] {
            let p = samples_util::buildpack_dir(bp).join("bin").join(script);
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{} is executable", p.display());
            let text = fs::read_to_string(&p).unwrap();
            assert!(text.starts_with("#!/usr/bin/env bash\n"), "{}", p.display());
        }
        assert!(
            samples_util::buildpack_dir(bp).join("README.md").is_file(),
            "{bp}"
        );
    }
    // The composite: every group entry is a sample buildpack at its version, and the first
    // group whose required buildpacks all pass (the lifecycle's rule) is the app's buildpack.
    let samples = read("samples");
    assert_eq!(
        samples["buildpack"]["id"].as_str(),
        Some("buildpod/samples")
    );
    assert!(!samples_util::buildpack_dir("samples").join("bin").exists());
    let groups: Vec<Vec<(String, bool)>> = samples["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o["group"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| {
                    let id = g["id"].as_str().unwrap().to_string();
                    let bp = id.strip_prefix("buildpod/").unwrap();
                    assert!(samples_util::BUILDPACKS.contains(&bp), "{id}");
                    assert_eq!(g["version"].as_str(), Some("0.1.0"), "{id}");
                    (
                        id,
                        g.get("optional").and_then(|v| v.as_bool()) == Some(true),
                    )
                })
                .collect()
        })
        .collect();
    for (name, dir, smoke) in samples_util::apps() {
        let passes = |id: &str| detect(id.strip_prefix("buildpod/").unwrap(), &dir).0 == 0;
        let chosen = groups
            .iter()
            .find(|g| g.iter().filter(|(_, opt)| !opt).all(|(id, _)| passes(id)))
            .unwrap_or_else(|| panic!("no group for {name}"));
        assert_eq!(chosen[0].0, smoke.buildpack, "{name}");
    }
}

/// Build with `bp` in a copy of `app`: (layers dir, app copy, stdout); keeps `tmp` alive.
fn build(bp: &str, app: &Path, tmp: &Path) -> (PathBuf, PathBuf, String) {
    let (layers, platform, plan) = (
        tmp.join("layers"),
        tmp.join("platform"),
        tmp.join("plan.toml"),
    );
    let copy = tmp.join("app");
    fs::create_dir_all(tmp).unwrap();
    samples_util::copy_tree(app, &copy);
    fs::create_dir_all(&layers).unwrap();
    fs::create_dir_all(&platform).unwrap();
    fs::write(&plan, "").unwrap();
    let env = [
        ("CNB_LAYERS_DIR", layers.as_path()),
        ("CNB_PLATFORM_DIR", platform.as_path()),
        ("CNB_BP_PLAN_PATH", plan.as_path()),
        ("HOME", tmp),
    ];
    let (code, stdout, stderr) = bash_phase(bp, "build", &copy, &env, &[&layers, &platform, &plan]);
    assert_eq!(code, 0, "{bp} build: {stdout}{stderr}");
    assert!(stderr.is_empty(), "{bp} build: {stderr}");
    (layers, copy, stdout)
}

fn launch(layers: &Path) -> toml::Value {
    toml::from_str(&fs::read_to_string(layers.join("launch.toml")).unwrap()).unwrap()
}

/// Start `command` (a launch.toml process) in `app` with PATH `path` and PORT; check `smoke`.
fn serve(command: &[String], app: &Path, path: &str, smoke: &samples_util::Smoke) {
    let port = samples_util::free_port();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .current_dir(app)
        .env("PATH", path)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let got = samples_util::wait_smoke(port, smoke, || child.try_wait().unwrap().is_none());
    // busybox httpd may fork (CGI): end the whole group.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    let (status, body) = got.unwrap();
    assert_eq!(status, smoke.status);
    assert!(body.contains(&smoke.body_contains), "{body}");
}

#[test]
fn static_build_serves_the_site_with_busybox_httpd() {
    tools::require("busybox");
    let (_, dir, smoke) = samples_util::apps()
        .into_iter()
        .find(|(n, _, _)| n == "static")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (layers, app, stdout) = build("static", &dir, tmp.path());
    assert!(stdout.contains("serving ./ with busybox httpd"), "{stdout}");
    assert_eq!(
        fs::read_to_string(layers.join("httpd.toml")).unwrap(),
        "[types]\nlaunch = true\n"
    );
    let l = launch(&layers);
    assert_eq!(l["processes"][0]["type"].as_str(), Some("web"));
    assert_eq!(
        l["processes"][0]["command"][0].as_str(),
        Some("static-httpd")
    );
    assert_eq!(l["processes"][0]["default"].as_bool(), Some(true));
    // As the launcher runs it: in the app directory, the layer's bin first on PATH.
    let bin = layers.join("httpd/bin");
    serve(
        &["static-httpd".to_string()],
        &app,
        &format!("{}:/usr/bin:/bin", bin.display()),
        &smoke,
    );

    // public/index.html wins over the app root.
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    fs::create_dir_all(site.join("public")).unwrap();
    fs::write(site.join("public/index.html"), "from public").unwrap();
    let (layers, _, stdout) = build("static", &site, &tmp.path().join("b"));
    assert!(stdout.contains("serving public/"), "{stdout}");
    let script = fs::read_to_string(layers.join("httpd/bin/static-httpd")).unwrap();
    assert!(script.contains("-h \"public\""), "{script}");
}

#[test]
fn procfile_build_makes_a_bash_process_per_line_and_the_app_serves() {
    tools::require("busybox");
    let (_, dir, smoke) = samples_util::apps()
        .into_iter()
        .find(|(n, _, _)| n == "procfile")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (layers, app, _) = build("procfile", &dir, tmp.path());
    let l = launch(&layers);
    let procs = l["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2);
    assert_eq!(procs[0]["type"].as_str(), Some("web"));
    assert_eq!(procs[0]["default"].as_bool(), Some(true));
    assert_eq!(procs[1]["type"].as_str(), Some("hello"));
    assert_eq!(procs[1].get("default"), None);
    let web: Vec<String> = procs[0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        web,
        [
            "bash",
            "-c",
            "exec busybox httpd -f -v -p \"${PORT:-8080}\" -h www"
        ]
    );
    serve(&web, &app, "/usr/bin:/bin", &smoke);

    // Quotes, backslashes, comments, CRLF, a repeated type; one process is the default.
    let odd = tmp.path().join("odd");
    fs::create_dir_all(&odd).unwrap();
    fs::write(
        odd.join("Procfile"),
        "# comment\r\nworker: echo \"a\\b\" 'c'  \r\n\nworker: other\nnot a process\n",
    )
    .unwrap();
    let (layers, _, stdout) = build("procfile", &odd, &tmp.path().join("odd-build"));
    assert!(
        stdout.contains("ignoring a second 'worker' process"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ignoring Procfile line: not a process"),
        "{stdout}"
    );
    let l = launch(&layers);
    let procs = l["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(procs[0]["type"].as_str(), Some("worker"));
    assert_eq!(procs[0]["command"][2].as_str(), Some("echo \"a\\b\" 'c'"));
    assert_eq!(procs[0]["default"].as_bool(), Some(true));
}

/// True when this machine can run `bin/build` of the Node.js or Python buildpack offline.
fn host_can(check: &str) -> bool {
    Command::new("bash")
        .args(["-c", check])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn nodejs_build_runs_the_build_script_keys_the_layer_and_reuses_it() {
    if !host_can("command -v node && command -v npm") {
        eprintln!(
            "skipping: no node and npm here (tests/sample_apps.rs builds in the debian stack)"
        );
        return;
    }
    // No dependencies: npm ci works offline.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("package.json"),
        r#"{"name":"x","version":"1.0.0","scripts":{"build":"mkdir -p dist && echo built >dist/out.txt","prestart":"echo pre","start":"node index.js"}}"#,
    )
    .unwrap();
    fs::write(
        src.join("package-lock.json"),
        r#"{"name":"x","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"x","version":"1.0.0"}}}"#,
    )
    .unwrap();
    fs::write(src.join("index.js"), "console.log('hi')\n").unwrap();
    let (layers, app, out) = build("nodejs", &src, &tmp.path().join("one"));
    assert!(
        out.contains("all dependencies") && out.contains("npm ci\n"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(app.join("dist/out.txt")).unwrap(),
        "built\n"
    );
    let l = launch(&layers);
    assert_eq!(
        l["processes"][0]["command"].as_array().unwrap()[2].as_str(),
        Some("echo pre && node index.js")
    );
    let meta: toml::Value =
        toml::from_str(&fs::read_to_string(layers.join("modules.toml")).unwrap()).unwrap();
    assert_eq!(meta["types"]["launch"].as_bool(), Some(true));
    assert_eq!(meta["types"]["cache"].as_bool(), Some(true));
    assert_eq!(
        meta["metadata"]["lockfile_sha256"].as_str().unwrap(),
        &tools::sha256_file(&src.join("package-lock.json"))["sha256:".len()..]
    );
    assert_eq!(meta["metadata"]["dependencies"].as_str(), Some("all"));
    assert_eq!(
        fs::read_link(app.join("node_modules")).unwrap(),
        layers.join("modules/node_modules")
    );
    // A rebuild into the same layers (as restored from the cache) skips npm.
    let again = tmp.path().join("again");
    samples_util::copy_tree(&src, &again);
    let env = [("CNB_LAYERS_DIR", layers.as_path()), ("HOME", tmp.path())];
    let (code, out, err) = bash_phase("nodejs", "build", &again, &env, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reusing node_modules"), "{out}");
    assert!(!out.contains("npm ci"), "{out}");
}

#[test]
fn python_build_makes_a_venv_keyed_by_requirements_and_picks_a_process() {
    if !host_can("command -v python3 && python3 -c 'import venv, ensurepip'") {
        eprintln!(
            "skipping: no python3 with venv here (tests/sample_apps.rs builds in the debian stack)"
        );
        return;
    }
    // No requirements: pip installs nothing, offline.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("requirements.txt"), "# stdlib only\n").unwrap();
    fs::write(src.join("main.py"), "print('hi')\n").unwrap();
    let (layers, _, out) = build("python", &src, &tmp.path().join("one"));
    assert!(out.contains("web: python main.py"), "{out}");
    let l = launch(&layers);
    assert_eq!(l["processes"][0]["command"][0].as_str(), Some("python"));
    assert!(layers.join("venv/bin/python").exists());
    assert_eq!(
        fs::read_to_string(layers.join("venv/env.launch/VIRTUAL_ENV.override")).unwrap(),
        layers.join("venv").to_str().unwrap()
    );
    let meta: toml::Value =
        toml::from_str(&fs::read_to_string(layers.join("venv.toml")).unwrap()).unwrap();
    assert_eq!(
        meta["metadata"]["requirements_sha256"].as_str().unwrap(),
        &tools::sha256_file(&src.join("requirements.txt"))["sha256:".len()..]
    );
    // Same requirements: reused; a Procfile's web line wins.
    let again = tmp.path().join("again");
    samples_util::copy_tree(&src, &again);
    fs::write(again.join("Procfile"), "web: python -m http.server $PORT\n").unwrap();
    let env = [("CNB_LAYERS_DIR", layers.as_path()), ("HOME", tmp.path())];
    let (code, out, err) = bash_phase("python", "build", &again, &env, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reusing the virtualenv"), "{out}");
    let l = launch(&layers);
    assert_eq!(
        l["processes"][0]["command"][2].as_str(),
        Some("python -m http.server $PORT")
    );
    // Changed requirements: a new venv.
    fs::write(again.join("requirements.txt"), "# still nothing\n").unwrap();
    let (code, out, err) = bash_phase("python", "build", &again, &env, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("python3 -m venv; pip install"), "{out}");
}
