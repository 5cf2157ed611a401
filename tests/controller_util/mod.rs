//! A fake Kubernetes API server for the controller tests: kube-rs's `Client` over a
//! `tower-test` mock service, answered from an in-memory object store. Every request is
//! recorded (method, path with query, body) for the assertions.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use buildpod::pod::{BuildPodImages, BuilderConfig};
use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

pub const BUILDER: &str = "registry.example.com/builder@sha256:4444444444444444444444444444444444444444444444444444444444444444";

/// What the fake builder reader answers: a jammy builder, user 1001:1000.
pub fn builder() -> BuilderConfig {
    BuilderConfig {
        stack_id: "io.buildpacks.stacks.jammy".into(),
        run_image: "registry.example.com/run@sha256:3333".into(),
        uid: 1001,
        gid: 1000,
        platform_apis: vec!["0.8".into(), "0.9".into(), "0.12".into()],
        resolved_image: BUILDER.into(),
        arch: "amd64".into(),
    }
}

pub fn images() -> BuildPodImages {
    let image = |n: &str, d: char| {
        format!(
            "registry.example.com/{n}@sha256:{}",
            d.to_string().repeat(64)
        )
    };
    BuildPodImages {
        build_init: image("build-init", '1'),
        completion: image("completion", '2'),
        rebase: image("rebase", '3'),
        build_waiter: String::new(),
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
pub struct State {
    /// Objects by API path (`/api/v1/namespaces/ns/pods/name`).
    pub objects: BTreeMap<String, Value>,
    /// Log text by pod path + container.
    pub logs: BTreeMap<(String, String), String>,
    pub requests: Vec<Recorded>,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    pub state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// A client whose requests this fake answers (on a task of the current runtime).
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let state = self.state.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let method = req.method().to_string();
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (status, out) = answer(&state, &method, &path, &body);
                let resp = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(out.into_bytes()))
                    .unwrap();
                send.send_response(resp);
            }
        });
        Client::new(service, "default")
    }

    pub fn put(&self, path: &str, object: Value) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(path.to_string(), object);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    pub fn set_log(&self, pod_path: &str, container: &str, text: &str) {
        self.state.lock().unwrap().logs.insert(
            (pod_path.to_string(), container.to_string()),
            text.to_string(),
        );
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// `METHOD path` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub fn bodies(&self, method: &str, path_prefix: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .map(|r| r.body)
            .collect()
    }
}

fn not_found(path: &str) -> (StatusCode, String) {
    let name = path.rsplit('/').next().unwrap_or("");
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{name:?} not found"), "reason": "NotFound", "code": 404})
        .to_string(),
    )
}

/// Deep merge (JSON merge patch, RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn answer(
    state: &Arc<Mutex<State>>,
    method: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, String) {
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.to_string(),
        path: path.to_string(),
        body: body.clone(),
    });
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match method {
        "GET" if path.ends_with("/log") => {
            let pod = path.trim_end_matches("/log");
            let container = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("container="))
                .unwrap_or("");
            match s.logs.get(&(pod.to_string(), container.to_string())) {
                Some(t) => (StatusCode::OK, t.clone()),
                None => not_found(path),
            }
        }
        "GET" => {
            if let Some(o) = s.objects.get(path) {
                return (StatusCode::OK, o.to_string());
            }
            // A collection: every object directly under the path.
            let collections = ["serviceaccounts", "pods", "secrets", "builds"];
            if !path
                .rsplit('/')
                .next()
                .is_some_and(|c| collections.contains(&c))
            {
                return not_found(path);
            }
            let prefix = format!("{path}/");
            let items: Vec<&Value> = s
                .objects
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                .map(|(_, v)| v)
                .collect();
            (
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
                    .to_string(),
            )
        }
        "POST" => {
            let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
            let key = format!("{path}/{name}");
            if s.objects.contains_key(&key) {
                return (StatusCode::CONFLICT, json!({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}).to_string());
            }
            let mut created = body.clone();
            created["metadata"]["uid"] = json!(format!("uid-{name}"));
            s.objects.insert(key, created.clone());
            (StatusCode::CREATED, created.to_string())
        }
        "PATCH" => {
            let key = path.trim_end_matches("/status");
            let Some(o) = s.objects.get_mut(key) else {
                return not_found(path);
            };
            merge(o, body);
            (StatusCode::OK, o.to_string())
        }
        _ => (StatusCode::METHOD_NOT_ALLOWED, "{}".into()),
    }
}
