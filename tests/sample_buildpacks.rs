//! Sample buildpacks in `images/buildpacks/`: detect passes on their app and fails on others,
//! build writes the layers and launch metadata they promise. Run under busybox `sh` (what the
//! tiny stack has), so the scripts stay POSIX.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

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
