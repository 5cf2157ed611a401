//! One reconcile of a Build (kpack's `pkg/reconciler/build`): finished Builds are left alone;
//! otherwise the pod is read or created, and the Build's status is patched from it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::Client;

use super::registry::{keychain_from_secrets, BuilderReader};
use super::resources::{get_dynamic, status_str};
use super::Config;
use crate::clusterlifecycle::Apis;
use crate::oci::config::rfc3339;
use crate::pod::build::{self, Build, BuildStatus};
use crate::pod::status::LOG_LINES;
use crate::pod::{
    build_bindings, build_pod, build_secrets, build_status, failed_status, BuildContext,
    LifecycleMount, Mode, StatusError, StepLogs, STEPS,
};

/// What a reconcile needs.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub reader: Arc<dyn BuilderReader>,
    /// Unix seconds (a parameter so that tests are deterministic).
    pub now: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl Context {
    pub fn new(client: Client, config: Config, reader: Arc<dyn BuilderReader>) -> Self {
        Self {
            client,
            config,
            reader,
            now: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            }),
        }
    }
}

/// Errors that are retried; errors that fail the Build go to its status instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes api: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("reading the builder image: {0}")]
    Task(String),
}

/// Why no pod was generated: retry later, or fail the Build with a message.
enum Generate {
    Retry(Error),
    Fail(String),
}

impl From<kube::Error> for Generate {
    fn from(e: kube::Error) -> Self {
        Generate::Retry(Error::Kube(e))
    }
}

pub async fn reconcile(b: Arc<Build>, ctx: Arc<Context>) -> Result<Action, Error> {
    if b.is_finished() {
        return Ok(Action::await_change());
    }
    let ns = b.namespace();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let now = rfc3339((ctx.now)());
    let pod = match pods.get_opt(&b.pod_name()).await? {
        Some(p) => p,
        None => {
            let generated = match generate(&b, &ctx).await {
                Ok(p) => p,
                Err(Generate::Retry(e)) => return Err(e),
                Err(Generate::Fail(m)) => return fail(&ctx, &b, &m, &now).await,
            };
            match pods.create(&PostParams::default(), &generated).await {
                Ok(p) => {
                    tracing::info!(build = b.name(), namespace = ns, pod = ?p.metadata.name, "created build pod");
                    p
                }
                // The API server refused the pod itself: that will not get better.
                Err(kube::Error::Api(e)) if e.code == 422 => {
                    return fail(
                        &ctx,
                        &b,
                        &format!("build pod is invalid: {}", e.message),
                        &now,
                    )
                    .await
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let logs = failed_step_logs(&pods, &pod).await;
    let status = build_status(&b, &pod, &logs, &now)?;
    patch_status(&ctx, &b, status).await?;
    Ok(Action::await_change())
}

pub fn error_policy(b: Arc<Build>, e: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(build = b.name(), namespace = b.namespace(), error = %e, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

/// Watch every Build and the pods they own until SIGTERM or Ctrl-C.
pub async fn run(ctx: Arc<Context>) {
    let builds = Api::<Build>::all(ctx.client.clone());
    let pods = Api::<Pod>::all(ctx.client.clone());
    Controller::new(builds, watcher::Config::default())
        .owns(pods, watcher::Config::default().labels("kpack.io/build"))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        })
        .await;
}

async fn fail(ctx: &Context, b: &Build, message: &str, now: &str) -> Result<Action, Error> {
    tracing::info!(
        build = b.name(),
        namespace = b.namespace(),
        message,
        "build failed"
    );
    patch_status(ctx, b, failed_status(b, message, now)).await?;
    Ok(Action::await_change())
}

async fn patch_status(ctx: &Context, b: &Build, status: BuildStatus) -> Result<(), Error> {
    if b.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let builds: Api<Build> = Api::namespaced(ctx.client.clone(), b.namespace());
    let patch = serde_json::json!({ "status": status });
    builds
        .patch_status(b.name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The last log lines of the step that failed (none if it cannot be read: the status then
/// quotes its termination message).
async fn failed_step_logs(pods: &Api<Pod>, pod: &Pod) -> StepLogs {
    let mut logs = StepLogs::new();
    let Some(st) = pod.status.as_ref() else {
        return logs;
    };
    if st.phase.as_deref() != Some("Failed") {
        return logs;
    }
    let failed = st
        .init_container_statuses
        .iter()
        .flatten()
        .chain(st.container_statuses.iter().flatten())
        .filter(|c| STEPS.contains(&c.name.as_str()))
        .find(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0)
        });
    let (Some(c), Some(name)) = (failed, pod.metadata.name.as_deref()) else {
        return logs;
    };
    let params = LogParams {
        container: Some(c.name.clone()),
        tail_lines: Some(LOG_LINES as i64),
        ..Default::default()
    };
    match pods.logs(name, &params).await {
        Ok(text) => {
            logs.insert(c.name.clone(), text.lines().map(String::from).collect());
        }
        Err(e) => tracing::debug!(pod = name, container = %c.name, error = %e, "reading logs"),
    }
    logs
}

/// kpack's `Generator.Generate` and `BuildPod`: gather the context from the API and the
/// registry, then generate the pod.
async fn generate(b: &Build, ctx: &Context) -> Result<Pod, Generate> {
    let client = &ctx.client;
    let ns = b.namespace();
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa_name = b.service_account();
    let sa = sas
        .get_opt(sa_name)
        .await?
        .ok_or_else(|| Generate::Fail(format!("serviceaccounts {sa_name:?} not found")))?;

    let mut fetched = BTreeMap::new();
    for r in sa.secrets.iter().flatten() {
        let Some(name) = r.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        if !fetched.contains_key(name) {
            fetched.insert(name.to_string(), secrets_api.get_opt(name).await?);
        }
    }
    let (secrets, image_pull_secrets) = build_secrets(&sa, |name| {
        fetched
            .get(name)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("secrets {name:?} not found"))
    })
    .map_err(|e| Generate::Fail(e.to_string()))?;

    let bindings = bindings(b, client, &sas).await?;
    let lifecycle = lifecycle(b, ctx).await?;

    // Registry credentials: the docker secrets, then the pull secrets.
    let mut creds = secrets.clone();
    for r in image_pull_secrets
        .iter()
        .chain(&b.spec.builder.image_pull_secrets)
    {
        if let Some(s) = secrets_api.get_opt(&r.name).await? {
            creds.push(s);
        }
    }
    let keychain = keychain_from_secrets(&creds);
    let image = builder_image(b, client).await?;
    let reader = ctx.reader.clone();
    let builder = tokio::task::spawn_blocking(move || reader.read(&image, &keychain))
        .await
        .map_err(|e| Generate::Retry(Error::Task(e.to_string())))?
        .map_err(Generate::Fail)?;

    let mut bctx = BuildContext::new(builder, ctx.config.mode);
    bctx.secrets = secrets;
    bctx.image_pull_secrets = image_pull_secrets;
    bctx.bindings = bindings;
    bctx.max_platform_api = ctx.config.max_platform_api;
    bctx.ssh_trust_unknown_host = ctx.config.ssh_trust_unknown_host;
    bctx.lifecycle = lifecycle;
    bctx.now = (ctx.now)();
    if ctx.config.mode == Mode::Ours {
        bctx.insecure_registries = ctx.config.insecure_registries.clone();
    }
    build_pod(b, &ctx.config.images, &bctx).map_err(|e| Generate::Fail(e.to_string()))
}

/// kpack's `fetchServiceBindings` (the namespace's ServiceAccounts list the forbidden
/// secrets; provisioned services are read for `.status.binding.name`).
async fn bindings(
    b: &Build,
    client: &Client,
    sas: &Api<ServiceAccount>,
) -> Result<Vec<crate::pod::Binding>, Generate> {
    if b.spec.services.is_empty() && b.spec.cnb_bindings.is_empty() {
        return Ok(Vec::new());
    }
    let all = sas.list(&Default::default()).await?.items;
    let mut provisioned = BTreeMap::new();
    for s in b.spec.services.iter().filter(|s| s.kind != "Secret") {
        let o = get_dynamic(
            client,
            &s.api_version,
            &s.kind,
            Some(b.namespace()),
            &s.name,
        )
        .await?
        .ok_or_else(|| Generate::Fail(format!("{} {:?} not found", s.kind, s.name)))?;
        let secret = status_str(&o, &["binding", "name"]);
        provisioned.insert(s.name.clone(), Some(secret).filter(|x| !x.is_empty()));
    }
    build_bindings(b, &all, |s| {
        Ok::<_, String>(provisioned.get(&s.name).cloned().flatten())
    })
    .map_err(|e| Generate::Fail(e.to_string()))
}

/// kpack's `resolveBuilder`: a Builder's or ClusterBuilder's `status.latestImage`, else
/// `spec.builder.image`.
async fn builder_image(b: &Build, client: &Client) -> Result<String, Generate> {
    let Some(r) = b.spec.builder.reference.as_ref() else {
        return Ok(b.spec.builder.image.clone());
    };
    let namespace = match r.kind.as_str() {
        "ClusterBuilder" => None,
        "Builder" => Some(if r.namespace.is_empty() {
            b.namespace()
        } else {
            r.namespace.as_str()
        }),
        other => {
            return Err(Generate::Fail(format!(
                "unable to parse builder kind {other:?}"
            )))
        }
    };
    let o = get_dynamic(client, build::API_VERSION, &r.kind, namespace, &r.name)
        .await?
        .ok_or_else(|| Generate::Fail(format!("{} {:?} not found", r.kind, r.name)))?;
    let image = status_str(&o, &["latestImage"]);
    if image.is_empty() {
        return Err(Generate::Fail(format!(
            "{} {:?} is not ready: no status.latestImage",
            r.kind, r.name
        )));
    }
    Ok(image)
}

/// Ours: the ClusterLifecycle the Build names (`spec.lifecycle`), from its status.
async fn lifecycle(b: &Build, ctx: &Context) -> Result<Option<LifecycleMount>, Generate> {
    let Some(r) = b
        .spec
        .lifecycle
        .as_ref()
        .filter(|_| ctx.config.mode == Mode::Ours)
    else {
        return Ok(None);
    };
    let o = get_dynamic(
        &ctx.client,
        build::API_VERSION,
        "ClusterLifecycle",
        None,
        &r.name,
    )
    .await?
    .ok_or_else(|| Generate::Fail(format!("clusterlifecycle {:?} not found", r.name)))?;
    let image = status_str(&o, &["image", "latestImage"]);
    let apis: Option<Apis> = o
        .data
        .get("status")
        .and_then(|s| s.get("apis"))
        .and_then(|a| serde_json::from_value(a.clone()).ok());
    match apis {
        Some(apis) if !image.is_empty() => Ok(Some(LifecycleMount {
            name: r.name.clone(),
            image,
            apis,
        })),
        _ => Err(Generate::Fail(format!(
            "clusterlifecycle {:?} is not ready: no status.image.latestImage or status.apis",
            r.name
        ))),
    }
}
