//! As root, buildpacks run as CNB_USER_ID/CNB_GROUP_ID with no capabilities left and
//! no_new_privs set; outputs are handed to that user. (CI and the dev machines run as root.)

mod lifecycle_util;

use std::os::unix::fs::MetadataExt;

use lifecycle_util::{assert_code, is_root, World};

const PROBE: &str = "echo \"$PHASE uid=$(id -u) gid=$(id -g) groups=$(id -G)\"; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | sed \"s/^/$PHASE /\"";

#[test]
fn buildpacks_run_as_build_user_without_capabilities() {
    if !is_root() {
        eprintln!("lifecycle_root: not root; this test needs root (CI runs as root)");
        return;
    }
    let w = World::new();
    w.bp(
        "probe",
        "1",
        "0.10",
        &format!("PHASE=detect; {PROBE}; exit 0"),
        &format!("PHASE=build; {PROBE}; mkdir \"$1/l\" && touch \"$1/l/written-by-bp\""),
    );
    w.order(&[&["probe@1"]]);
    let run = |phase: &str| {
        let mut c = w.cmd(phase, &["-log-level", "debug"]);
        c.env("CNB_USER_ID", "4321").env("CNB_GROUP_ID", "4322");
        World::run_cmd(c)
    };
    let r = run("detector");
    assert_code(&r, 0);
    let r2 = run("builder");
    assert_code(&r2, 0);
    for (out, phase) in [(&r.out, "detect"), (&r2.out, "build")] {
        for want in [
            format!("{phase} uid=4321 gid=4322 groups=4322\n"),
            format!("{phase} CapEff:\t0000000000000000\n"),
            format!("{phase} CapPrm:\t0000000000000000\n"),
            format!("{phase} CapBnd:\t0000000000000000\n"),
            format!("{phase} CapAmb:\t0000000000000000\n"),
            format!("{phase} NoNewPrivs:\t1\n"),
        ] {
            assert!(out.contains(&want), "missing {want:?} in:\n{out}");
        }
    }
    let owner = |rel: &str| {
        let m = std::fs::metadata(w.path(rel)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("layers/group.toml"), (4321, 4322));
    assert_eq!(owner("layers/probe/l/written-by-bp"), (4321, 4322));
    assert_eq!(owner("layers/config/metadata.toml"), (4321, 4322));
}
