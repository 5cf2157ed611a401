//! The same [`Spec`] as an OCI runtime bundle for `runc`: the `sandbox-init` process mounts the
//! overlay in a private mount namespace (so it vanishes with the run), writes `config.json`
//! with `oci-spec`, and runs `runc run`, killing and deleting the container on SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    get_default_mounts, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, SpecBuilder, UserBuilder,
};

use super::spec::{resolve_program, Spec, NOFILE};

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// The runtime config for `spec`, rooted at its merged overlay.
pub fn config(spec: &Spec) -> Result<oci_spec::runtime::Spec, String> {
    let keep = spec
        .capabilities
        .iter()
        .map(|c| {
            let name = c.strip_prefix("CAP_").unwrap_or(c);
            Capability::from_str(name).map_err(|_| format!("unknown capability {c:?}"))
        })
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(keep.clone())
        .effective(keep.clone())
        .permitted(keep.clone())
        .inheritable(keep)
        .ambient(std::collections::HashSet::new())
        .build()
        .map_err(|e| err("capabilities", e))?;
    // runc resolves a bare program name with the host's PATH rules inside the rootfs; resolve it
    // here against the mounted image so both runtimes run the same file.
    let mut args = spec.args.clone();
    if let Some(first) = args.first_mut() {
        if let Some(p) = resolve_program(&spec.merged(), first, spec.path_var()) {
            *first = p;
        }
    }
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(args)
        .env(spec.env.clone())
        .cwd(PathBuf::from(&spec.cwd))
        .user(
            UserBuilder::default()
                .uid(spec.user.uid)
                .gid(spec.user.gid)
                .additional_gids(spec.user.additional_gids.clone())
                .build()
                .map_err(|e| err("user", e))?,
        )
        .capabilities(caps)
        .no_new_privileges(spec.no_new_privileges)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(NOFILE)
            .soft(NOFILE)
            .build()
            .map_err(|e| err("rlimit", e))?])
        .build()
        .map_err(|e| err("process", e))?;
    // The embedded sandbox's file systems: no cgroup or mqueue mounts, /sys read-only.
    let mut mounts: Vec<_> = get_default_mounts()
        .into_iter()
        .filter(|m| {
            let d = m.destination();
            d != Path::new("/sys/fs/cgroup") && d != Path::new("/dev/mqueue")
        })
        .collect();
    for m in &spec.mounts {
        let rw = if m.read_only { "ro" } else { "rw" };
        mounts.push(
            MountBuilder::default()
                .destination(PathBuf::from(&m.destination))
                .typ("bind")
                .source(m.source.clone())
                .options(vec!["rbind".to_string(), rw.to_string()])
                .build()
                .map_err(|e| err("mount", e))?,
        );
    }
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| err("namespaces", e))?;
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .build()
        .map_err(|e| err("linux", e))?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(spec.merged())
                .readonly(false)
                .build()
                .map_err(|e| err("root", e))?,
        )
        .hostname(spec.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(|e| err("runtime spec", e))
}
