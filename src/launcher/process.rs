//! Which process to start and how (`cnb-lifecycle.md` §9.2, `lc:launch/process.go`). Pure.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use super::metadata::LaunchMetadata;
use crate::lifecycle::api::ApiVersion;

/// A process ready to start: `command` then `args`, directly or through bash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The process type; empty for a command given by the user.
    pub r#type: String,
    pub command: Vec<OsString>,
    pub args: Vec<OsString>,
    pub direct: bool,
    /// As written in metadata.toml; empty means the app dir, relative means inside it.
    pub working_dir: String,
    pub buildpack_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("when there is no default process a command is required")]
    NoCommand,
    #[error("process type {0} was not found")]
    NotFound(String),
    #[error("failed to find buildpack for process {process} with buildpack ID {id}")]
    UnknownBuildpack { process: String, id: String },
}

/// The process type named by `basename(argv[0])` (`/cnb/process/<type>` is a symlink to the
/// launcher), if metadata.toml has a process of that type. Linux executables have no suffix.
pub fn type_from_argv0(argv0: &OsStr, md: &LaunchMetadata) -> Option<String> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    md.process(name).map(|p| p.r#type.clone())
}

/// Resolves the process of `process_type` (from argv[0]) with the user's `args`, or a
/// command the user gave: `-- cmd args…` runs `cmd` directly, `cmd args…` through bash.
pub fn resolve(
    platform: ApiVersion,
    md: &LaunchMetadata,
    process_type: Option<&str>,
    args: &[OsString],
) -> Result<Resolved, ResolveError> {
    let Some(t) = process_type else {
        return user_process(args);
    };
    let p = md
        .process(t)
        .ok_or_else(|| ResolveError::NotFound(t.to_string()))?;
    let os = |v: &[String]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let mut proc = Resolved {
        r#type: p.r#type.clone(),
        command: os(&p.command),
        args: os(&p.args),
        direct: p.direct,
        working_dir: p.working_dir.clone(),
        buildpack_id: p.buildpack_id.clone(),
    };
    if !platform.at_least(0, 10) {
        proc.args.extend(args.iter().cloned());
    } else if proc.command.len() > 1 {
        // Extra command words are always passed; the user's args replace the process args.
        let always = proc.command.split_off(1);
        let overridable = if args.is_empty() {
            std::mem::take(&mut proc.args)
        } else {
            args.to_vec()
        };
        proc.args = always.into_iter().chain(overridable).collect();
    } else if !args.is_empty() {
        let bp = md
            .buildpack(&p.buildpack_id)
            .ok_or_else(|| ResolveError::UnknownBuildpack {
                process: p.r#type.clone(),
                id: p.buildpack_id.clone(),
            })?;
        if bp.api.at_least(0, 9) {
            proc.args = args.to_vec();
        } else {
            proc.args.extend(args.iter().cloned());
        }
    }
    Ok(proc)
}

fn user_process(args: &[OsString]) -> Result<Resolved, ResolveError> {
    let (direct, words) = match args {
        [] => return Err(ResolveError::NoCommand),
        [dash, rest @ ..] if dash == "--" && !rest.is_empty() => (true, rest),
        _ => (false, args),
    };
    Ok(Resolved {
        r#type: String::new(),
        command: words[..1].to_vec(),
        args: words[1..].to_vec(),
        direct,
        working_dir: String::new(),
        buildpack_id: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::metadata::Buildpack;
    use crate::lifecycle::launch::Process;

    fn md() -> LaunchMetadata {
        let bp = |id: &str, minor| Buildpack {
            id: id.into(),
            api: ApiVersion::new(0, minor),
        };
        let p = |t: &str, cmd: &[&str], args: &[&str], bp: &str| Process {
            r#type: t.into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            direct: true,
            buildpack_id: bp.into(),
            working_dir: "sub".into(),
            ..Process::default()
        };
        LaunchMetadata {
            buildpacks: vec![bp("old", 8), bp("new", 9)],
            processes: vec![
                p("multi", &["bash", "-c"], &["default arg"], "new"),
                p("single-old", &["run"], &["a"], "old"),
                p("single-new", &["run"], &["a"], "new"),
                p("orphan", &["run"], &["a"], "gone"),
            ],
        }
    }

    fn v(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    /// (platform minor, process type, user args) → (command, args, direct)
    type Case<'a> = (
        u32,
        Option<&'a str>,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
        bool,
    );

    #[test]
    fn resolution_table() {
        let cases: &[Case] = &[
            // No process type: a user command.
            (10, None, &["--", "ls", "-l"], &["ls"], &["-l"], true),
            (10, None, &["ls", "-l"], &["ls"], &["-l"], false),
            (10, None, &["echo $HOME"], &["echo $HOME"], &[], false),
            // A lone `--` is a command word, not the direct marker.
            (10, None, &["--"], &["--"], &[], false),
            (9, None, &["--", "ls"], &["ls"], &[], true),
            // len(command) > 1: command[1:] always, then user args or else process args.
            (
                10,
                Some("multi"),
                &[],
                &["bash"],
                &["-c", "default arg"],
                true,
            ),
            (
                10,
                Some("multi"),
                &["x", "y"],
                &["bash"],
                &["-c", "x", "y"],
                true,
            ),
            // len(command) == 1: no user args keeps the process args.
            (10, Some("single-new"), &[], &["run"], &["a"], true),
            (10, Some("single-old"), &[], &["run"], &["a"], true),
            // ...user args replace them for buildpack api >= 0.9, are appended below.
            (10, Some("single-new"), &["b"], &["run"], &["b"], true),
            (10, Some("single-old"), &["b"], &["run"], &["a", "b"], true),
            // `--` after a process type is just an argument.
            (
                10,
                Some("single-new"),
                &["--", "b"],
                &["run"],
                &["--", "b"],
                true,
            ),
            // Platform < 0.10: user args are always appended, command left as is.
            (9, Some("single-new"), &["b"], &["run"], &["a", "b"], true),
            (
                9,
                Some("multi"),
                &["x"],
                &["bash", "-c"],
                &["default arg", "x"],
                true,
            ),
        ];
        let md = md();
        for &(minor, t, user, cmd, args, direct) in cases {
            let r = resolve(ApiVersion::new(0, minor), &md, t, &v(user))
                .unwrap_or_else(|e| panic!("{t:?} {user:?}: {e}"));
            let ctx = format!("platform 0.{minor} {t:?} {user:?}");
            assert_eq!(r.command, v(cmd), "{ctx}");
            assert_eq!(r.args, v(args), "{ctx}");
            assert_eq!(r.direct, direct, "{ctx}");
            let wd = if t.is_some() { "sub" } else { "" };
            assert_eq!(r.working_dir, wd, "{ctx}");
            assert_eq!(r.r#type, t.unwrap_or(""), "{ctx}");
        }
    }

    #[test]
    fn errors() {
        let md = md();
        let p10 = ApiVersion::new(0, 10);
        let e = resolve(p10, &md, None, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "when there is no default process a command is required"
        );
        let e = resolve(p10, &md, Some("nope"), &[]).unwrap_err();
        assert_eq!(e.to_string(), "process type nope was not found");
        assert!(resolve(p10, &md, Some("orphan"), &[]).is_ok());
        let e = resolve(p10, &md, Some("orphan"), &v(&["x"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to find buildpack for process orphan with buildpack ID gone"
        );
    }

    #[test]
    fn process_type_from_argv0_basename() {
        let md = md();
        let t = |a: &str| type_from_argv0(OsStr::new(a), &md);
        assert_eq!(t("/cnb/process/multi").as_deref(), Some("multi"));
        assert_eq!(t("single-new").as_deref(), Some("single-new"));
        assert_eq!(t("/cnb/lifecycle/launcher"), None);
        assert_eq!(t("/cnb/process/web"), None);
    }
}
