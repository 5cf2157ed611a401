//! The local runner: a pod's init containers and containers run in order in the sandbox, from
//! images unpacked once into the cache, with emptyDir/secret/downwardAPI volumes, the security
//! context's user, per-step logs, termination messages, and the pod status a kubelet would
//! report — the same under the embedded sandbox and runc.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use buildpod::local::images::ImageCache;
use buildpod::local::runner::{Reporter, Runner};
use buildpod::registry::{Client, ClientOptions};
use buildpod::sandbox::{Runtime, Sandbox};
use k8s_openapi::api::core::v1::{Pod, Secret};

const BUILDPOD: &str = env!("CARGO_BIN_EXE_buildpod");

fn tiny(dir: &Path) -> String {
    let out = Command::new(BUILDPOD)
        .args(["stack", "tiny", "--busybox", "/bin/busybox", "--definition"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/images/stacks/tiny/stack.toml"
        ))
        .arg(format!("oci:{}:build", dir.display()))
        .arg(format!("oci:{}:run", dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("oci:{}:run", dir.display())
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn step_started(&self, name: &str, _image: &str) {
        self.0.lock().unwrap().push(format!("start {name}"));
    }
    fn line(&self, name: &str, line: &str) {
        self.0.lock().unwrap().push(format!("{name}: {line}"));
    }
    fn step_finished(&self, name: &str, exit_code: i32, _seconds: f64) {
        self.0
            .lock()
            .unwrap()
            .push(format!("end {name} {exit_code}"));
    }
}

fn pod(image: &str, second_step: &str) -> Pod {
    let yaml = format!(
        r#"
metadata:
  name: app-build-1-build-pod
  namespace: dev
  labels: {{ kpack.io/build: app-build-1 }}
spec:
  securityContext: {{ runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 }}
  volumes:
  - {{ name: workspace, emptyDir: {{}} }}
  - {{ name: secret-volume-git, secret: {{ secretName: git-creds, defaultMode: 256 }} }}
  - name: podinfo
    downwardAPI:
      items: [ {{ path: labels, fieldRef: {{ fieldPath: metadata.labels }} }} ]
  initContainers:
  - name: prepare
    image: {image}
    command: [sh, -c]
    args:
    - 'id; cat /var/build-secrets/git/username; echo; cat /etc/podinfo/labels; echo; echo app > /workspace/app.txt; hostname'
    env: [ {{ name: HOME, value: /home/x }}, {{ name: WHERE, value: "$(HOME)/w" }} ]
    volumeMounts:
    - {{ name: workspace, mountPath: /workspace }}
    - {{ name: secret-volume-git, mountPath: /var/build-secrets/git, readOnly: true }}
    - {{ name: podinfo, mountPath: /etc/podinfo }}
  - name: build
    image: {image}
    command: [sh, -c, '{second_step}']
    env: [ {{ name: HOME, value: /home/x }}, {{ name: WHERE, value: "$(HOME)/w" }} ]
    volumeMounts: [ {{ name: workspace, mountPath: /workspace }} ]
  - name: export
    image: {image}
    command: [sh, -c, 'echo exported']
  containers:
  - name: completion
    image: {image}
    command: [sh, -c, 'printf done > /dev/termination-log']
"#
    );
    serde_norway::from_str(&yaml).unwrap()
}

fn secrets() -> BTreeMap<String, Secret> {
    let s: Secret = serde_norway::from_str(
        "metadata: { name: git-creds }\nstringData: { username: alice, password: s3cret }\n",
    )
    .unwrap();
    BTreeMap::from([("git-creds".to_string(), s)])
}

fn runner<'a>(
    sandbox: &'a Sandbox,
    images: &'a ImageCache,
    work: PathBuf,
    rec: &'a Recorder,
) -> Runner<'a> {
    Runner {
        sandbox,
        images,
        work,
        secrets: secrets(),
        mapped_volumes: BTreeMap::new(),
        reporter: rec,
        host_certs: false,
    }
}

fn skip() -> bool {
    let skip = !nix::unistd::geteuid().is_root() || support::tools::which("runc").is_none();
    if skip {
        eprintln!("skipped: needs root and runc");
    }
    skip
}

#[test]
fn a_pod_runs_in_order_with_volumes_users_logs_and_status() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = tiny(&tmp.path().join("stack"));
    let client = Client::new(ClientOptions::default()).unwrap();
    let images = ImageCache::new(tmp.path().join("cache"), client);
    let mut outputs = Vec::new();
    for rt in [Runtime::Embedded, Runtime::Runc] {
        let sandbox = Sandbox {
            program: PathBuf::from(BUILDPOD),
            runtime: rt,
        };
        let rec = Recorder::default();
        let work = tmp.path().join(format!("run-{rt:?}"));
        let step = "cat /workspace/app.txt; echo $WHERE; ls -ln /workspace";
        let result = runner(&sandbox, &images, work.clone(), &rec)
            .run(&pod(&image, step))
            .unwrap();
        let status = &result.status;
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        let inits = status.init_container_statuses.as_ref().unwrap();
        assert_eq!(
            inits.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["prepare", "build", "export"]
        );
        let done = &status.container_statuses.as_ref().unwrap()[0];
        let term = done.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((term.exit_code, term.message.as_deref()), (0, Some("done")));
        assert!(done.image_id.starts_with("sha256:"));
        let log = std::fs::read_to_string(work.join("logs/build.log")).unwrap();
        assert!(log.starts_with("app\n/home/x/w\n"), "{log}");
        let events = rec.0.into_inner().unwrap();
        outputs.push(events);
    }
    // Same lines, same order, under both runtimes.
    assert_eq!(outputs[0], outputs[1]);
    let ev = &outputs[0];
    assert_eq!(ev[0], "start prepare");
    assert_eq!(
        ev[1],
        "prepare: uid=1000(cnb) gid=1000(cnb) groups=1000(cnb)"
    );
    assert_eq!(ev[2], "prepare: alice");
    assert_eq!(ev[3], "prepare: kpack.io/build=\"app-build-1\"");
    assert!(
        ev.contains(&"prepare: app-build-1-build-pod".to_string()),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|l| l.contains("1000     1000") && l.ends_with("app.txt")),
        "{ev:?}"
    );
    assert_eq!(ev.last().unwrap(), "end completion 0");
    // Each layer unpacked once for all containers and both runs.
    let layers = images.get(&image).unwrap().layers;
    assert_eq!(
        std::fs::read_dir(tmp.path().join("cache/layers"))
            .unwrap()
            .count(),
        layers.len()
    );
}

#[test]
fn a_failing_step_stops_the_pod_and_its_last_lines_are_kept() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = tiny(&tmp.path().join("stack"));
    let client = Client::new(ClientOptions::default()).unwrap();
    let images = ImageCache::new(tmp.path().join("cache"), client);
    let sandbox = Sandbox {
        program: PathBuf::from(BUILDPOD),
        runtime: Runtime::Embedded,
    };
    let rec = Recorder::default();
    let step = "for i in $(seq 1 30); do echo line $i; done; echo boom; exit 51";
    let result = runner(&sandbox, &images, tmp.path().join("run"), &rec)
        .run(&pod(&image, step))
        .unwrap();
    assert_eq!(result.status.phase.as_deref(), Some("Failed"));
    let inits = result.status.init_container_statuses.unwrap();
    let build = inits[1]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(build.exit_code, 51);
    let export = inits[2].state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(export.reason.as_deref(), Some("PodInitializing"));
    let completion = &result.status.container_statuses.unwrap()[0];
    assert!(completion.state.as_ref().unwrap().waiting.is_some());
    let tail = &result.tails["build"];
    assert_eq!(tail.len(), 20);
    assert_eq!(tail.last().unwrap(), "boom");
    assert_eq!(tail[0], "line 12");
    // (stdout and stderr are read by two threads: one stream keeps the order testable)
    assert!(!result.tails.contains_key("export"));
}

#[test]
fn unknown_images_and_missing_secrets_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let client = Client::new(ClientOptions::default()).unwrap();
    let images = ImageCache::new(tmp.path().join("cache"), client);
    let sandbox = Sandbox {
        program: PathBuf::from(BUILDPOD),
        runtime: Runtime::Embedded,
    };
    let rec = Recorder::default();
    let missing = format!("oci:{}:nope", tmp.path().join("none").display());
    let mut r = runner(&sandbox, &images, tmp.path().join("run"), &rec);
    let err = r.run(&pod(&missing, "true")).unwrap_err().to_string();
    assert!(err.starts_with(&format!("image {missing}: ")), "{err}");
    r.secrets.clear();
    let err = r.run(&pod(&missing, "true")).unwrap_err().to_string();
    assert_eq!(
        err,
        "volume secret-volume-git: secret \"git-creds\" not found in the local secrets"
    );
}
