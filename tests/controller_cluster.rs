//! Against a real cluster, only when `KUBECONFIG` is set (otherwise it passes without doing
//! anything): in a fresh namespace that enforces PodSecurity `restricted`, the API server
//! accepts our build pods in both modes (server-side dry run, so admission runs and nothing is
//! scheduled), and, when the `builds.kpack.io` CRD is installed, one reconcile of a Build
//! creates its pod owned by it and patches its status. The namespace is deleted at the end.
#![cfg(feature = "controller")]

mod controller_util;

use std::sync::Arc;

use buildpod::controller::{reconcile, BuilderReader, Config, Context};
use buildpod::pod::{build_pod, Build, BuildContext, BuilderConfig, Mode};
use buildpod::registry::Keychain;
use controller_util::{builder, images, BUILDER};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

struct Reader;

impl BuilderReader for Reader {
    fn read(&self, _: &str, _: &Keychain) -> Result<BuilderConfig, String> {
        Ok(builder())
    }
}

fn build(ns: &str) -> Build {
    serde_json::from_value(json!({
        "apiVersion": "kpack.io/v1alpha2", "kind": "Build",
        "metadata": {"name": "app-build-1", "namespace": ns},
        "spec": {
            "tags": ["registry.example.com/apps/app"],
            "serviceAccountName": "builder-sa",
            "builder": {"image": BUILDER},
            "source": {"git": {"url": "https://github.com/example/app.git", "revision": "abc"}},
            "cache": {"volume": {"persistentVolumeClaimName": "app-cache"}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn against_a_real_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("KUBECONFIG is not set: skipping the real-cluster test");
        return;
    }
    let client = kube::Client::try_default()
        .await
        .expect("kubernetes client");
    let ns_name = format!("buildpod-test-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": ns_name,
                     "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let result = run(client.clone(), &ns_name).await;
    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
    result.unwrap();
}

async fn run(client: kube::Client, ns: &str) -> Result<(), String> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "builder-sa"}})).unwrap();
    sas.create(&PostParams::default(), &sa)
        .await
        .map_err(|e| format!("create service account: {e}"))?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    for mode in [Mode::Kpack, Mode::Ours] {
        let pod = build_pod(&build(ns), &images(), &BuildContext::new(builder(), mode))
            .map_err(|e| e.to_string())?;
        pods.create(&dry, &pod)
            .await
            .map_err(|e| format!("{mode:?} pod refused: {e}"))?;
    }

    // The controller, if the cluster knows Builds.
    let builds: Api<Build> = Api::namespaced(client.clone(), ns);
    let created = match builds.create(&PostParams::default(), &build(ns)).await {
        Ok(b) => b,
        Err(kube::Error::Api(e)) if e.code == 404 => {
            eprintln!("no builds.kpack.io CRD: skipping the reconcile");
            return Ok(());
        }
        Err(e) => return Err(format!("create build: {e}")),
    };
    let config = Config {
        images: images(),
        max_platform_api: None,
        ssh_trust_unknown_host: true,
        mode: Mode::Ours,
        insecure_registries: vec![],
    };
    let ctx = Arc::new(Context::new(client.clone(), config, Arc::new(Reader)));
    reconcile(Arc::new(created.clone()), ctx)
        .await
        .map_err(|e| format!("reconcile: {e}"))?;
    let pod = pods
        .get(&created.pod_name())
        .await
        .map_err(|e| format!("get pod: {e}"))?;
    let owner = &pod.metadata.owner_references.unwrap_or_default()[0];
    assert_eq!(owner.kind, "Build");
    assert_eq!(Some(&owner.uid), created.metadata.uid.as_ref());
    let b = builds
        .get(created.name())
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(b.status.unwrap().pod_name, created.pod_name());
    Ok(())
}
