//! The controller against a fake API server (kube-rs `Client` over a `tower-test` mock):
//! a new Build gets its pod with an owner reference; the pod's success and failure reach the
//! Build's status. The builder image is answered by a fake reader (no registry).
#![cfg(feature = "controller")]

mod controller_util;

use std::sync::Arc;

use buildpod::controller::{reconcile, BuilderReader, Config, Context};
use buildpod::kpack::metadata::{compress, BuildMetadata, BuildpackMetadata};
use buildpod::pod::{Build, BuilderConfig, Mode};
use buildpod::registry::Keychain;
use controller_util::{builder, images, FakeApi, BUILDER};
use serde_json::{json, Value};

const NS: &str = "apps";
const BUILDS: &str = "/apis/kpack.io/v1alpha2/namespaces/apps/builds";
const PODS: &str = "/api/v1/namespaces/apps/pods";
const POD: &str = "/api/v1/namespaces/apps/pods/app-build-1-build-pod";

struct FakeReader(Result<BuilderConfig, String>);

impl BuilderReader for FakeReader {
    fn read(&self, image: &str, keychain: &Keychain) -> Result<BuilderConfig, String> {
        assert_eq!(image, BUILDER);
        // The SA's dockerconfigjson secret reached the keychain.
        assert!(keychain.entries().contains_key("registry.example.com"));
        self.0.clone()
    }
}

fn config() -> Config {
    Config {
        images: images(),
        max_platform_api: None,
        ssh_trust_unknown_host: true,
        mode: Mode::Kpack,
        insecure_registries: vec![],
    }
}

fn build_json() -> Value {
    json!({
        "apiVersion": "kpack.io/v1alpha2", "kind": "Build",
        "metadata": {"name": "app-build-1", "namespace": NS, "uid": "build-uid-1", "generation": 1,
                      "creationTimestamp": "2025-01-01T12:00:00Z", "labels": {"image.kpack.io/buildNumber": "1"}},
        "spec": {
            "tags": ["registry.example.com/apps/app"],
            "serviceAccountName": "builder-sa",
            "builder": {"image": BUILDER},
            "source": {"git": {"url": "https://github.com/example/app.git", "revision": "abc"}}
        }
    })
}

/// The namespace's objects: the Build, its ServiceAccount and a registry secret.
fn fake() -> FakeApi {
    let api = FakeApi::default();
    api.put(&format!("{BUILDS}/app-build-1"), build_json());
    api.put(
        "/api/v1/namespaces/apps/serviceaccounts/builder-sa",
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "builder-sa", "namespace": NS},
               "secrets": [{"name": "registry-creds"}]}),
    );
    let config = r#"{"auths":{"registry.example.com":{"username":"u","password":"p"}}}"#;
    api.put(
        "/api/v1/namespaces/apps/secrets/registry-creds",
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
               "metadata": {"name": "registry-creds", "namespace": NS},
               "data": {".dockerconfigjson": base64(config)}}),
    );
    api
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn context(api: &FakeApi, reader: FakeReader) -> Arc<Context> {
    let mut ctx = Context::new(api.client(), config(), Arc::new(reader));
    ctx.now = Arc::new(|| 1_735_733_100);
    Arc::new(ctx)
}

/// The Build as stored now.
fn stored_build(api: &FakeApi) -> Arc<Build> {
    Arc::new(serde_json::from_value(api.get(&format!("{BUILDS}/app-build-1")).unwrap()).unwrap())
}

fn condition(api: &FakeApi) -> Value {
    api.get(&format!("{BUILDS}/app-build-1")).unwrap()["status"]["conditions"][0].clone()
}

/// Give the stored pod a status.
fn set_pod_status(api: &FakeApi, status: Value) {
    let mut pod = api.get(POD).unwrap();
    pod["status"] = status;
    api.put(POD, pod);
}

fn terminated(name: &str, code: i32, message: &str) -> Value {
    json!({"name": name, "ready": false, "restartCount": 0, "image": "i", "imageID": "",
           "state": {"terminated": {"exitCode": code, "message": message,
                                    "reason": if code == 0 { "Completed" } else { "Error" }}}})
}

fn init_statuses(failed_at: Option<(usize, i32)>) -> Vec<Value> {
    ["prepare", "analyze", "detect", "restore", "build", "export"]
        .iter()
        .enumerate()
        .map(|(i, n)| match failed_at {
            Some((at, code)) if i == at => terminated(n, code, ""),
            Some((at, _)) if i > at => {
                json!({"name": n, "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                                              "state": {"waiting": {"reason": "PodInitializing"}}})
            }
            _ => terminated(n, 0, ""),
        })
        .collect()
}

#[tokio::test]
async fn new_build_gets_a_pod_owned_by_it() {
    let api = fake();
    let ctx = context(&api, FakeReader(Ok(builder())));
    reconcile(stored_build(&api), ctx).await.unwrap();
    assert_eq!(
        api.calls(),
        [
            format!("GET {POD}"),
            "GET /api/v1/namespaces/apps/serviceaccounts/builder-sa".to_string(),
            "GET /api/v1/namespaces/apps/secrets/registry-creds".to_string(),
            format!("POST {PODS}?"),
            format!("PATCH {BUILDS}/app-build-1/status?"),
        ]
    );
    let pod = api.get(POD).expect("pod created");
    assert_eq!(
        pod["metadata"]["ownerReferences"],
        json!([{"apiVersion": "kpack.io/v1alpha2", "kind": "Build", "name": "app-build-1",
                "uid": "build-uid-1", "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(pod["metadata"]["labels"]["kpack.io/build"], "app-build-1");
    let init: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        init,
        ["prepare", "analyze", "detect", "restore", "build", "export"]
    );
    assert_eq!(
        pod["spec"]["initContainers"][0]["args"],
        json!(["-dockerconfig=registry-creds"])
    );
    assert_eq!(pod["spec"]["initContainers"][1]["image"], BUILDER);
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 1001);
    let b = api.get(&format!("{BUILDS}/app-build-1")).unwrap();
    assert_eq!(b["status"]["podName"], "app-build-1-build-pod");
    assert_eq!(
        b["status"]["conditions"],
        json!([{"type": "Succeeded", "status": "Unknown", "lastTransitionTime": "2025-01-01T12:05:00Z"}])
    );

    // The next reconcile finds the pod and changes nothing.
    let before = api.requests().len();
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    assert_eq!(api.calls()[before..], [format!("GET {POD}")]);
}

#[tokio::test]
async fn pod_success_is_decoded_into_the_status() {
    let api = fake();
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    let message = compress(&BuildMetadata {
        buildpack_metadata: vec![BuildpackMetadata {
            id: "paketo-buildpacks/node-engine".into(),
            version: "1.2.3".into(),
            homepage: String::new(),
        }],
        latest_cache_image: String::new(),
        latest_image: "registry.example.com/apps/app@sha256:aaaa".into(),
        stack_id: "io.buildpacks.stacks.jammy".into(),
        stack_run_image: "registry.example.com/run@sha256:3333".into(),
        lifecycle_version: "0.20.12".into(),
    })
    .unwrap();
    set_pod_status(
        &api,
        json!({"phase": "Succeeded", "initContainerStatuses": init_statuses(None),
               "containerStatuses": [terminated("completion", 0, &message)]}),
    );
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    let status = &api.get(&format!("{BUILDS}/app-build-1")).unwrap()["status"];
    assert_eq!(
        status["latestImage"],
        "registry.example.com/apps/app@sha256:aaaa"
    );
    assert_eq!(
        status["stack"],
        json!({"runImage": "registry.example.com/run@sha256:3333", "id": "io.buildpacks.stacks.jammy"})
    );
    assert_eq!(status["lifecycleVersion"], "0.20.12");
    assert_eq!(
        status["buildMetadata"],
        json!([{"id": "paketo-buildpacks/node-engine", "version": "1.2.3"}])
    );
    assert_eq!(
        status["stepsCompleted"],
        json!([
            "prepare",
            "analyze",
            "detect",
            "restore",
            "build",
            "export",
            "completion"
        ])
    );
    assert_eq!(condition(&api)["status"], "True");
    assert_eq!(condition(&api)["reason"], "Completed");
    // Finished: later reconciles touch nothing.
    let before = api.requests().len();
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    assert_eq!(api.requests().len(), before);
}

#[tokio::test]
async fn pod_failure_names_step_exit_code_and_log_lines() {
    let api = fake();
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    set_pod_status(
        &api,
        json!({"phase": "Failed", "initContainerStatuses": init_statuses(Some((4, 51))),
               "containerStatuses": [{"name": "completion", "ready": false, "restartCount": 0, "image": "i",
                                      "imageID": "", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    api.set_log(
        POD,
        "build",
        "Installing node 20\nnpm ERR! code ENOENT\nnpm ERR! missing script: build\n",
    );
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    // The failed step's log tail is read.
    assert!(
        api.calls()
            .iter()
            .any(|c| c.starts_with(&format!("GET {POD}/log?"))
                && c.contains("container=build")
                && c.contains("tailLines=10")),
        "{:?}",
        api.calls()
    );
    let c = condition(&api);
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "Failed");
    assert_eq!(
        c["message"],
        "step \"build\" failed with exit code 51; last log lines:\nInstalling node 20\nnpm ERR! code ENOENT\nnpm ERR! missing script: build\nfor more info use `kubectl logs -n apps app-build-1-build-pod -c build`"
    );
    let b = api.get(&format!("{BUILDS}/app-build-1")).unwrap();
    assert_eq!(
        b["status"]["stepsCompleted"],
        json!(["prepare", "analyze", "detect", "restore"])
    );
}

#[tokio::test]
async fn generation_errors_fail_the_build() {
    let api = fake();
    let ctx = context(&api, FakeReader(Err("ENV CNB_USER_ID not found".into())));
    reconcile(stored_build(&api), ctx).await.unwrap();
    assert!(api.get(POD).is_none());
    let c = condition(&api);
    assert_eq!(
        (c["status"].as_str(), c["message"].as_str()),
        (Some("False"), Some("ENV CNB_USER_ID not found"))
    );
    // A builder with no supported Platform API.
    let api = fake();
    let mut b = builder();
    b.platform_apis = vec!["0.2".into(), "0.999".into()];
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(b))))
        .await
        .unwrap();
    assert_eq!(
        condition(&api)["message"],
        "unsupported builder platform API versions: 0.2,0.999"
    );
    // A missing ServiceAccount.
    let api = fake();
    let mut bj = build_json();
    bj["spec"]["serviceAccountName"] = json!("nobody");
    api.put(&format!("{BUILDS}/app-build-1"), bj);
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    assert_eq!(
        condition(&api)["message"],
        "serviceaccounts \"nobody\" not found"
    );
}

#[tokio::test]
async fn cluster_builder_reference_is_resolved() {
    let api = fake();
    let mut bj = build_json();
    bj["spec"]["builder"] = json!({"ref": {"kind": "ClusterBuilder", "name": "default"}});
    api.put(&format!("{BUILDS}/app-build-1"), bj);
    api.put(
        "/apis/kpack.io/v1alpha2/clusterbuilders/default",
        json!({"apiVersion": "kpack.io/v1alpha2", "kind": "ClusterBuilder", "metadata": {"name": "default"},
               "status": {"latestImage": BUILDER}}),
    );
    reconcile(stored_build(&api), context(&api, FakeReader(Ok(builder()))))
        .await
        .unwrap();
    let pod = api.get(POD).expect("pod created");
    assert_eq!(pod["spec"]["initContainers"][1]["image"], BUILDER);
    // BUILDER_IMAGE is spec.builder.image, empty for a reference.
    let env = pod["spec"]["initContainers"][0]["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "BUILDER_IMAGE"})));
}
