//! `controller`: turns kpack `Build`s into build pods and pod progress into Build status.
//! Configured like kpack's controller, by env (flags override: `--build-init-image` sets
//! `BUILD_INIT_IMAGE`, and so on; see `src/controller/config.rs`). Uses the in-cluster service
//! account, or `KUBECONFIG` outside a cluster. `LOG_LEVEL` (default info) sets the log level.

use std::sync::Arc;

use buildpod::controller::{run, Config, Context, RegistryBuilderReader};

const FLAGS: &[(&str, &str)] = &[
    ("--build-init-image", "BUILD_INIT_IMAGE"),
    ("--completion-image", "COMPLETION_IMAGE"),
    ("--rebase-image", "REBASE_IMAGE"),
    ("--build-waiter-image", "BUILD_WAITER_IMAGE"),
    (
        "--maximum-platform-api-version",
        "MAXIMUM_PLATFORM_API_VERSION",
    ),
    (
        "--insecure-ssh-trust-unknown-hosts",
        "INSECURE_SSH_TRUST_UNKNOWN_HOSTS",
    ),
    ("--pod-mode", "BUILDPOD_POD_MODE"),
    ("--insecure-registries", "BUILDPOD_INSECURE_REGISTRIES"),
];

fn usage() -> String {
    let mut s = String::from("usage: controller [--FLAG=VALUE]...\n");
    for (flag, env) in FLAGS {
        s.push_str(&format!("  {flag}=VALUE   (env {env})\n"));
    }
    s
}

fn main() {
    buildpod::cli::init_logging(&std::env::var("LOG_LEVEL").unwrap_or_default());
    let mut overrides = std::collections::BTreeMap::new();
    for arg in std::env::args().skip(1) {
        if arg == "-h" || arg == "--help" {
            print!("{}", usage());
            return;
        }
        let (flag, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        let Some((_, env)) = FLAGS.iter().find(|(f, _)| *f == flag) else {
            eprintln!("controller: unknown flag {flag}\n{}", usage());
            std::process::exit(2);
        };
        overrides.insert(*env, value.to_string());
    }
    let config = match Config::from_lookup(|k| {
        overrides.get(k).cloned().or_else(|| std::env::var(k).ok())
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("controller: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("controller: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("controller: kubernetes client: {e}");
                return 1;
            }
        };
        let reader = Arc::new(RegistryBuilderReader {
            insecure: config.insecure_registries.clone(),
        });
        tracing::info!(mode = ?config.mode, "watching builds");
        run(Arc::new(Context::new(client, config, reader))).await;
        0
    });
    std::process::exit(code);
}
