//! Every app in `test-apps/` built for real: our `lifecycle creator` runs in a chroot of the
//! debian stack's build image (as a builder image would hold it: the sample buildpacks under
//! /cnb/buildpacks, the composite `buildpod/samples` as the order), as root dropping to the CNB
//! user, and exports onto the debian run image in a real registry. Each app image is then pulled,
//! unpacked with umoci, started in a chroot as the CNB user with `PORT` set, and must answer its
//! smoke check (`smoke.toml`) over HTTP. A second build of each restores the cache, reuses the
//! dependency layers (npm and pip do not run) and gives the same image digest.
//!
//! npm and PyPI are reached over the network (the Go, static and Procfile apps need none). The
//! platform trusts this machine's CAs (a TLS-intercepting proxy's): its CA bundle is mounted over
//! the image's, and `NODE_EXTRA_CA_CERTS` is set in the platform environment, as kpack's CA
//! injection would. Needs root; the debian stack's first build takes a few minutes.

mod samples_util;
mod support;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use samples_util::Smoke;
use support::registry::Registry;
use support::tools;

/// The build image unpacked, with the lifecycle and the sample buildpacks as a builder has them.
struct Builder {
    tmp: tempfile::TempDir,
    rootfs: PathBuf,
    reg: Registry,
}

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn write(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

impl Builder {
    fn new() -> Builder {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::plain();
        let lay = tmp.path().join("stack");
        let run_image = format!("{}/stacks/debian/run:1", reg.host());
        samples_util::build_debian_stack(&format!("oci:{}:build", lay.display()), &run_image, &[]);
        let bundle = tmp.path().join("builder");
        tools::umoci_unpack(&lay, "build", &bundle);
        fs::remove_dir_all(&lay).unwrap();
        let rootfs = bundle.join("rootfs");

        let cnb = rootfs.join("cnb");
        fs::create_dir_all(cnb.join("lifecycle")).unwrap();
        for (bin, name) in [
            (env!("CARGO_BIN_EXE_lifecycle"), "lifecycle"),
            (env!("CARGO_BIN_EXE_launcher"), "launcher"),
        ] {
            fs::copy(bin, cnb.join("lifecycle").join(name)).unwrap();
        }
        for bp in samples_util::BUILDPACKS.iter().chain(&["samples"]) {
            let dir = cnb.join(format!("buildpacks/buildpod_{bp}"));
            fs::create_dir_all(&dir).unwrap();
            samples_util::copy_tree(&samples_util::buildpack_dir(bp), &dir.join("0.1.0"));
        }
        write(
            &cnb.join("order.toml"),
            "[[order]]\n[[order.group]]\nid = \"buildpod/samples\"\nversion = \"0.1.0\"\n",
        );
        write(
            &cnb.join("run.toml"),
            &format!("[[images]]\nimage = \"{run_image}\"\n"),
        );
        // Mount points for the build's own directories and this machine's name service.
        for d in ["layers", "platform", "cache"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        write(&rootfs.join("etc/resolv.conf"), "");
        Builder { tmp, rootfs, reg }
    }

    fn image(&self, app: &str) -> String {
        format!("{}/apps/{app}:1", self.reg.host())
    }

    /// `lifecycle creator` for `app` (a fresh copy of it, fresh layers, the app's cache kept):
    /// (exit code, output).
    fn create(&self, app: &str, src: &Path) -> (i32, String) {
        let w = self.tmp.path().join("builds").join(app);
        for d in ["workspace", "layers", "platform"] {
            let _ = fs::remove_dir_all(w.join(d));
        }
        fs::create_dir_all(w.join("cache")).unwrap();
        fs::create_dir_all(&w).unwrap();
        samples_util::copy_tree(src, &w.join("workspace"));
        fs::create_dir_all(w.join("layers")).unwrap();
        write(
            &w.join("platform/env/NODE_EXTRA_CA_CERTS"),
            "/etc/ssl/certs/ca-certificates.crt",
        );
        // As kpack's prepare step: the build's directories belong to the CNB user.
        let st = Command::new("chown")
            .args(["-R", "1000:1000"])
            .arg(&w)
            .status()
            .unwrap();
        assert!(st.success());
        let script = r#"set -e
R=$1 W=$2
for d in workspace layers platform cache; do mount --bind "$W/$d" "$R/$d"; done
mount --bind /etc/resolv.conf "$R/etc/resolv.conf"
mount --bind /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
shift 2
exec chroot "$R" /usr/bin/env -i "$@"
"#;
        let out = Command::new(samples_util::which("unshare").unwrap())
            .args(["--mount", "--propagation", "private", "--", "bash", "-c"])
            .arg(script)
            .arg("sh")
            .arg(&self.rootfs)
            .arg(&w)
            .args([
                &format!("PATH={PATH}"),
                "CNB_PLATFORM_API=0.13",
                "CNB_USER_ID=1000",
                "CNB_GROUP_ID=1000",
                "HOME=/root",
                "/cnb/lifecycle/lifecycle",
                "creator",
                "-app",
                "/workspace",
                "-layers",
                "/layers",
                "-platform",
                "/platform",
                "-buildpacks",
                "/cnb/buildpacks",
                "-order",
                "/cnb/order.toml",
                "-run",
                "/cnb/run.toml",
                "-launcher",
                "/cnb/lifecycle/launcher",
                "-cache-dir",
                "/cache",
                &self.image(app),
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Pull and unpack the app image, start its process in a chroot as the CNB user and check
    /// `smoke`; Err with the app's output when it fails.
    fn run(&self, app: &str, smoke: &Smoke) -> Result<(), String> {
        let dir = self.tmp.path().join("run").join(app);
        fs::create_dir_all(&dir).unwrap();
        let lay = dir.join("oci");
        tools::skopeo(&[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{}", self.image(app)),
            &format!("oci:{}:app", lay.display()),
        ]);
        let bundle = dir.join("bundle");
        tools::umoci_unpack(&lay, "app", &bundle);
        let cfg = tools::skopeo_inspect_config(&format!("oci:{}:app", lay.display()), &[]);
        let env: Vec<String> = cfg["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let entrypoint = match &smoke.process {
            Some(p) => format!("/cnb/process/{p}"),
            None => cfg["config"]["Entrypoint"][0].as_str().unwrap().to_string(),
        };
        let port = samples_util::free_port();
        let log = dir.join("app.log");
        let script = r#"set -e
R=$1
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
shift
exec chroot --userspec=1000:1000 "$R" /usr/bin/env -i "$@"
"#;
        let mut child = Command::new(samples_util::which("unshare").unwrap())
            .args(["--mount", "--propagation", "private", "--", "bash", "-c"])
            .arg(script)
            .arg("sh")
            .arg(bundle.join("rootfs"))
            .args(&env)
            .arg(format!("PORT={port}"))
            .arg(&entrypoint)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.join("app.err")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        let got = samples_util::wait_smoke(port, smoke, || child.try_wait().unwrap().is_none());
        // The app and whatever it forked (gunicorn workers, CGI scripts): one process group.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        let output = || {
            format!(
                "{}{}",
                fs::read_to_string(&log).unwrap_or_default(),
                fs::read_to_string(dir.join("app.err")).unwrap_or_default()
            )
        };
        match got {
            Ok((status, body)) if status == smoke.status && body.contains(&smoke.body_contains) => {
                Ok(())
            }
            other => Err(format!(
                "GET {} on port {port}: {other:?}; the app said:\n{}",
                smoke.path,
                output()
            )),
        }
    }
}

/// What each app's first and second builds must print (beyond the buildpack's banner).
fn expectations(app: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match app {
        "nodejs-npm" => (
            &[
                "npm ci --omit=dev",
                "web: node server.js (the start script)",
            ],
            &["reusing node_modules (package-lock.json unchanged)"],
        ),
        "python-pip" => (
            &["Successfully installed", "web: gunicorn app:app"],
            &["reusing the virtualenv (requirements.txt unchanged)"],
        ),
        "go" => (
            &["go build . -> go-app"],
            &["Restoring data for \"buildpod/go:go-cache\" from cache"],
        ),
        "static" => (&["serving ./ with busybox httpd"], &[]),
        "procfile" => (&["web: exec busybox httpd"], &[]),
        other => panic!("no expectations for test-apps/{other}"),
    }
}

/// Build, rebuild and run one app; Err describes the first thing that went wrong.
fn check(b: &Builder, app: &str, src: &Path, smoke: &Smoke) -> Result<(), String> {
    let (first, again) = expectations(app);
    let (code, out) = b.create(app, src);
    if code != 0 {
        return Err(format!("creator exited {code}:\n{out}"));
    }
    let bp = &smoke.buildpack;
    let expect = |out: &str, wants: &[&str]| -> Result<(), String> {
        for w in wants {
            if !out.contains(w) {
                return Err(format!("{w:?} not in the creator's output:\n{out}"));
            }
        }
        Ok(())
    };
    expect(&out, &[&format!("{bp} 0.1.0"), "===> EXPORTING"])?;
    expect(&out, first)?;
    let digest = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("*** Images ("))
            .map(|r| r.trim_end_matches("):").to_string())
    };
    let d1 = digest(&out).ok_or(format!("no image digest in:\n{out}"))?;

    let (code, out2) = b.create(app, src);
    if code != 0 {
        return Err(format!("second creator exited {code}:\n{out2}"));
    }
    expect(&out2, again)?;
    let d2 = digest(&out2).ok_or(format!("no image digest in:\n{out2}"))?;
    if d1 != d2 {
        return Err(format!(
            "the rebuild gave another image: {d1} then {d2}\n{out}\n---\n{out2}"
        ));
    }
    b.run(app, smoke)
}

#[test]
fn every_sample_app_builds_on_the_debian_stack_and_answers_its_smoke_check() {
    if let Some(why) = samples_util::debian_stack_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let b = Builder::new();
    let apps = samples_util::apps();
    // Two at a time: a network-bound install overlaps another app's compile.
    let failures: Vec<String> = std::thread::scope(|s| {
        let mut results = Vec::new();
        for pair in apps.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|(app, src, smoke)| {
                    let b = &b;
                    (app, s.spawn(move || check(b, app, src, smoke)))
                })
                .collect();
            for (app, h) in handles {
                if let Err(e) = h.join().unwrap() {
                    results.push(format!("test-apps/{app}: {e}"));
                }
            }
        }
        results
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
