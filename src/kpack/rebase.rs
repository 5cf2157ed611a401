//! `rebase`: kpack's rebase step. Flags, tags check, credential loading and exit codes follow
//! kpack (lifecycle's `cmd.Exit`: `ERROR: ` on stdout, 3 for invalid arguments, else 1). The
//! layer swap itself needs the lifecycle rebaser, which this tree does not have yet.

use super::buildchange;
use super::flags::{self, flag, Kind};
use super::paths::Paths;
use crate::creds::docker;

pub const SPECS: &[flags::Spec] = &[
    flag("run-image", Kind::Str, Some("RUN_IMAGE")),
    flag("last-built-image", Kind::Str, Some("LAST_BUILT_IMAGE")),
    flag("build-changes", Kind::Str, Some("BUILD_CHANGES")),
    flag("report", Kind::Str, Some("REPORT_FILE_PATH")),
    flag("basic-docker", Kind::Multi, None),
    flag("dockercfg", Kind::Multi, None),
    flag("dockerconfig", Kind::Multi, None),
    flag("imagepull", Kind::Multi, None),
];

/// Lifecycle's exit code for invalid arguments.
pub const CODE_INVALID_ARGS: i32 = 3;

pub fn main(argv: &[String]) -> i32 {
    let p = flags::parse_or_exit("rebase", SPECS, argv);
    let paths = Paths::from_env();
    let say = |l: &str| println!("{l}");
    for l in buildchange::lines(&p.str("build-changes")) {
        say(&l);
    }
    if p.args.is_empty() {
        say("ERROR: failed to must provide one or more image tags");
        return CODE_INVALID_ARGS;
    }
    say("Loading cluster credential helpers");
    let mut creds = match docker::parse_basic_auth(&paths, &p.multi("basic-docker"), &say) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("ERROR: failed to : {e}"));
            return CODE_INVALID_ARGS;
        }
    };
    let mut names = p.multi("dockercfg");
    names.extend(p.multi("dockerconfig"));
    names.extend(p.multi("imagepull"));
    match docker::parse_docker_config_secrets(&paths, &names, Some(&say)) {
        Ok(c) => creds.append(c),
        Err(e) => {
            say(&format!("ERROR: {e}"));
            return 1;
        }
    }
    say(&format!(
        "ERROR: failed to rebase {} onto {}: not supported yet (the layer swap needs the lifecycle rebaser)",
        p.args[0],
        p.str("run-image")
    ));
    1
}
