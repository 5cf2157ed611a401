//! The Pod Security Standard `restricted` (which includes `baseline`), checked on a pod spec as
//! the PodSecurity admission controller does: kpack#972 asked for build pods that pass it. The
//! local runner refuses pods that would not.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, SecurityContext};

/// One failed check: which control, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The control's name in the standard (`allowPrivilegeEscalation`, `runAsNonRoot`, ...).
    pub check: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

/// All of `pod`'s violations of `restricted`; empty when it passes.
pub fn check_restricted(pod: &Pod) -> Vec<Violation> {
    let mut v = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return v;
    };
    let mut bad = |check: &'static str, detail: String| v.push(Violation { check, detail });
    pod_level(spec, &mut bad);
    let psc = spec.security_context.as_ref();
    let pod_non_root = psc.and_then(|s| s.run_as_non_root) == Some(true);
    let pod_seccomp = psc
        .and_then(|s| s.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    if let Some(t) = pod_seccomp {
        if !matches!(t, "RuntimeDefault" | "Localhost") {
            bad(
                "seccompProfile",
                format!("pod must not set seccompProfile.type={t}"),
            );
        }
    }
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| (c.name.as_str(), c.security_context.as_ref(), ports(c)));
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c.security_context.as_ref(), Vec::new()));
    for (name, sc, host_ports) in containers.chain(ephemeral) {
        container(name, sc, pod_non_root, pod_seccomp.is_some(), &mut bad);
        for p in host_ports {
            bad("hostPorts", format!("container {name:?} uses hostPort {p}"));
        }
    }
    v
}

fn ports(c: &Container) -> Vec<i32> {
    c.ports
        .iter()
        .flatten()
        .filter_map(|p| p.host_port)
        .filter(|p| *p != 0)
        .collect()
}

/// Volume types `restricted` allows.
const VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sysctls `baseline` allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

fn pod_level(spec: &PodSpec, bad: &mut impl FnMut(&'static str, String)) {
    for (set, what) in [
        (spec.host_network, "hostNetwork"),
        (spec.host_pid, "hostPID"),
        (spec.host_ipc, "hostIPC"),
    ] {
        if set == Some(true) {
            bad("hostNamespaces", format!("pod must not set {what}=true"));
        }
    }
    for vol in spec.volumes.iter().flatten() {
        // The volume's source is the one key besides `name` in its JSON form.
        let json = serde_json::to_value(vol).unwrap_or_default();
        let kinds: Vec<String> = json
            .as_object()
            .map(|o| o.keys().filter(|k| *k != "name").cloned().collect())
            .unwrap_or_default();
        for k in kinds {
            if !VOLUMES.contains(&k.as_str()) {
                let check = if k == "hostPath" {
                    "hostPathVolumes"
                } else {
                    "restrictedVolumes"
                };
                bad(check, format!("volume {:?} uses {k}", vol.name));
            }
        }
    }
    let Some(sc) = spec.security_context.as_ref() else {
        return;
    };
    if sc.run_as_user == Some(0) {
        bad("runAsUser", "pod must not set runAsUser=0".into());
    }
    if sc.windows_options.as_ref().and_then(|w| w.host_process) == Some(true) {
        bad("hostProcess", "pod must not set hostProcess=true".into());
    }
    if let Some(se) = &sc.se_linux_options {
        selinux("pod", se, bad);
    }
    if let Some(a) = &sc.app_armor_profile {
        if !matches!(a.type_.as_str(), "RuntimeDefault" | "Localhost") {
            bad(
                "appArmorProfile",
                format!("pod must not set type={}", a.type_),
            );
        }
    }
    for s in sc.sysctls.iter().flatten() {
        if !SAFE_SYSCTLS.contains(&s.name.as_str()) {
            bad("sysctls", format!("pod sets forbidden sysctl {}", s.name));
        }
    }
}

fn selinux(
    who: &str,
    se: &k8s_openapi::api::core::v1::SELinuxOptions,
    bad: &mut impl FnMut(&'static str, String),
) {
    let ty = se.type_.as_deref().unwrap_or("");
    let allowed_type = [
        "",
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
    ];
    if !allowed_type.contains(&ty)
        || se.user.as_deref().is_some_and(|u| !u.is_empty())
        || se.role.as_deref().is_some_and(|r| !r.is_empty())
    {
        bad(
            "seLinuxOptions",
            format!("{who} sets forbidden seLinuxOptions"),
        );
    }
}

fn container(
    name: &str,
    sc: Option<&SecurityContext>,
    pod_non_root: bool,
    pod_seccomp: bool,
    bad: &mut impl FnMut(&'static str, String),
) {
    let who = format!("container {name:?}");
    let Some(sc) = sc else {
        bad(
            "allowPrivilegeEscalation",
            format!("{who} must set securityContext.allowPrivilegeEscalation=false"),
        );
        bad(
            "capabilities",
            format!("{who} must set securityContext.capabilities.drop=[\"ALL\"]"),
        );
        if !pod_non_root {
            bad(
                "runAsNonRoot",
                format!("pod or {who} must set securityContext.runAsNonRoot=true"),
            );
        }
        if !pod_seccomp {
            bad("seccompProfile", format!("pod or {who} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""));
        }
        return;
    };
    if sc.privileged == Some(true) {
        bad(
            "privileged",
            format!("{who} must not set securityContext.privileged=true"),
        );
    }
    if sc.allow_privilege_escalation != Some(false) {
        bad(
            "allowPrivilegeEscalation",
            format!("{who} must set securityContext.allowPrivilegeEscalation=false"),
        );
    }
    let caps = sc.capabilities.as_ref();
    let drops_all = caps
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|x| x == "ALL"));
    if !drops_all {
        bad(
            "capabilities",
            format!("{who} must set securityContext.capabilities.drop=[\"ALL\"]"),
        );
    }
    for add in caps.and_then(|c| c.add.as_ref()).into_iter().flatten() {
        if add != "NET_BIND_SERVICE" {
            bad(
                "capabilities",
                format!("{who} must not add capability {add}"),
            );
        }
    }
    match sc.run_as_non_root {
        Some(false) => bad(
            "runAsNonRoot",
            format!("{who} must not set securityContext.runAsNonRoot=false"),
        ),
        None if !pod_non_root => bad(
            "runAsNonRoot",
            format!("pod or {who} must set securityContext.runAsNonRoot=true"),
        ),
        _ => {}
    }
    if sc.run_as_user == Some(0) {
        bad("runAsUser", format!("{who} must not set runAsUser=0"));
    }
    match sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) {
        Some("RuntimeDefault" | "Localhost") => {}
        Some(t) => bad("seccompProfile", format!("{who} must not set securityContext.seccompProfile.type={t}")),
        None if !pod_seccomp => bad("seccompProfile", format!("pod or {who} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"")),
        None => {}
    }
    if sc.windows_options.as_ref().and_then(|w| w.host_process) == Some(true) {
        bad(
            "hostProcess",
            format!("{who} must not set hostProcess=true"),
        );
    }
    if let Some(se) = &sc.se_linux_options {
        selinux(&who, se, bad);
    }
    if sc.proc_mount.as_deref().is_some_and(|p| p != "Default") {
        bad("procMount", format!("{who} must not set procMount"));
    }
    if let Some(a) = &sc.app_armor_profile {
        if !matches!(a.type_.as_str(), "RuntimeDefault" | "Localhost") {
            bad(
                "appArmorProfile",
                format!("{who} must not set type={}", a.type_),
            );
        }
    }
}
