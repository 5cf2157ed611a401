//! `build-waiter` (injected-sidecar mode): `-mode=copy` puts this binary into the shared
//! volume; `-mode=wait` waits for the previous step's file, runs the step, and marks it done.
//!
//! Unlike kpack, `-execute` is split with shell quoting rules, so quoted arguments containing
//! spaces survive (kpack splits on single spaces).

use std::path::Path;
use std::time::Duration;

use super::completion::fatal;
use super::flags::{self, flag, Kind};

pub const SPECS: &[flags::Spec] = &[
    flag("mode", Kind::Str, None),
    flag("to", Kind::Str, None),
    flag("wait-file", Kind::Str, None),
    flag("done-file", Kind::Str, None),
    flag("execute", Kind::Str, None),
    flag("error-file", Kind::Str, None),
];

const POLL: Duration = Duration::from_millis(250);

/// Split a command line with POSIX shell quoting (single and double quotes, backslashes).
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated quote in -execute {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated quote in -execute {s:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated quote in -execute {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

pub fn main(argv: &[String]) -> i32 {
    let p = flags::parse_or_exit("build-waiter", SPECS, argv);
    let mode = match p.str("mode") {
        m if m.is_empty() => "wait".to_string(),
        m => m,
    };
    let error_file = p.str("error-file");
    let result = match mode.as_str() {
        "copy" => copy(&p.str("to")),
        "wait" => wait(
            &p.str("execute"),
            &p.str("wait-file"),
            &p.str("done-file"),
            &error_file,
        ),
        other => Err(format!("unknown -mode {other:?} (want wait or copy)")),
    };
    match result {
        Ok(()) => 0,
        Err(m) => {
            if !error_file.is_empty() {
                // Our own error file must not look like another step's to the watcher.
                FAILING.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = std::fs::write(&error_file, &m);
            }
            fatal(&m);
            1
        }
    }
}

fn copy(to: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    if to.is_empty() {
        return Err("-to must be specified with -mode=copy".to_string());
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(to);
    std::fs::copy(&me, to).map_err(|e| format!("copy {} to {to}: {e}", me.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| format!("chmod {to}: {e}"))
}

/// Set once this step is failing by itself (see `wait`'s error-file watcher).
static FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn wait(execute: &str, wait_file: &str, done_file: &str, error_file: &str) -> Result<(), String> {
    if !error_file.is_empty() {
        let ef = error_file.to_string();
        // Another step failed: stop waiting and fail this one too.
        std::thread::spawn(move || loop {
            // Existence first: our own file is written only after FAILING is set.
            if Path::new(&ef).exists() && !FAILING.load(std::sync::atomic::Ordering::SeqCst) {
                fatal("another step has errored");
                std::process::exit(1);
            }
            std::thread::sleep(POLL);
        });
    }
    if execute.is_empty() {
        return Err("need -execute with -mode=wait".to_string());
    }
    if !done_file.is_empty() && Path::new(done_file).exists() {
        return Err("file specified for writing already exists".to_string());
    }
    if !wait_file.is_empty() {
        eprintln!(
            "{}waiting on {wait_file}",
            super::completion::go_log_prefix()
        );
        // The downward-API file exists but is empty until the controller sets the annotation.
        while std::fs::metadata(wait_file).map(|m| m.len()).unwrap_or(0) == 0 {
            std::thread::sleep(POLL);
        }
    }
    let argv = split_command(execute)?;
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| "need -execute with -mode=wait".to_string())?;
    let status = std::process::Command::new(prog)
        .args(args)
        .status()
        .map_err(|e| format!("error running command exec: {prog:?}: {e}"))?;
    if !status.success() {
        return Err(match status.code() {
            Some(c) => format!("error running command exit status {c}"),
            None => format!("error running command {status}"),
        });
    }
    if !done_file.is_empty() {
        std::fs::write(done_file, "done").map_err(|e| format!("write {done_file}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_quotes() {
        assert_eq!(
            split_command("/cnb/lifecycle/detector -app=/workspace -group=/layers/group.toml")
                .unwrap(),
            vec![
                "/cnb/lifecycle/detector",
                "-app=/workspace",
                "-group=/layers/group.toml"
            ]
        );
        assert_eq!(
            split_command(r#"sh -c 'echo "a b"'  x\ y "q\"z""#).unwrap(),
            vec!["sh", "-c", "echo \"a b\"", "x y", "q\"z"]
        );
        assert!(split_command("a 'b").is_err());
    }
}
