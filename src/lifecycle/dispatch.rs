//! The multi-call entry point: the phase comes from `basename(argv[0])` (`detector`,
//! `builder`, ...) or from `lifecycle <phase> ...` / `lifecycle <verb> ...`.

use super::cli::{self, CliError, Parsed, Phase};
use super::log::{Level, Log};
use super::{analyzer, builder, creator, detector, exitcode, exporter, rebaser, restorer};

fn phase_for(name: &str) -> Option<&'static str> {
    Some(match name {
        "detector" | "detect" => "detector",
        "builder" | "build" => "builder",
        "analyzer" | "analyze" => "analyzer",
        "restorer" | "restore" => "restorer",
        "exporter" | "export" => "exporter",
        "creator" | "create" => "creator",
        "rebaser" | "rebase" => "rebaser",
        "extender" | "extend" => "extender",
        _ => return None,
    })
}

fn usage() -> String {
    "usage: lifecycle <analyzer|detector|restorer|builder|exporter|creator|rebaser> [flags] (or invoke through a phase symlink)"
        .to_string()
}

/// Runs the binary and returns its exit code. `env` reads the process environment.
pub fn main(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> i32 {
    let argv0 = args.first().map(String::as_str).unwrap_or("lifecycle");
    let base = std::path::Path::new(argv0)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("lifecycle");
    let (phase, rest) = match phase_for(base) {
        Some(p) => (p, &args[args.len().min(1)..]),
        None => match args.get(1).map(String::as_str) {
            Some("-version" | "--version" | "version") => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                return 0;
            }
            Some(sub) => match phase_for(sub) {
                Some(p) => (p, &args[2..]),
                None => {
                    println!("ERROR: unknown phase {sub:?}; {}", usage());
                    return exitcode::INVALID_ARGS;
                }
            },
            None => {
                println!("ERROR: {}", usage());
                return exitcode::INVALID_ARGS;
            }
        },
    };
    let phase = match phase {
        "analyzer" => Phase::Analyzer,
        "detector" => Phase::Detector,
        "restorer" => Phase::Restorer,
        "builder" => Phase::Builder,
        "exporter" => Phase::Exporter,
        "creator" => Phase::Creator,
        "rebaser" => Phase::Rebaser,
        other => {
            println!("ERROR: the {other} phase is not supported yet by this lifecycle");
            return exitcode::FAILED;
        }
    };
    run_phase(phase, rest, env)
}

fn run_phase(phase: Phase, args: &[String], env: &dyn Fn(&str) -> Option<String>) -> i32 {
    let fail = |e: CliError| {
        Log::new(Level::Info).error(&e.to_string());
        e.exit_code()
    };
    let api = match cli::platform_api(env("CNB_PLATFORM_API").as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let inputs = match cli::parse(phase, api, args, env) {
        Ok(Parsed::Run(i)) => i,
        Ok(Parsed::Version) => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return 0;
        }
        Err(e) => return fail(e),
    };
    let log = Log::new(inputs.log_level);
    let result = match phase {
        Phase::Detector => detector::run(&inputs, &log).map_err(|e| (e.to_string(), e.exit_code())),
        Phase::Builder => builder::run(&inputs, &log).map_err(|e| (e.to_string(), e.exit_code())),
        Phase::Analyzer => analyzer::run(&inputs, &log).map_err(|e| (e.message, e.code)),
        Phase::Restorer => restorer::run(&inputs, &log).map_err(|e| (e.message, e.code)),
        Phase::Exporter => exporter::run(&inputs, &log).map_err(|e| (e.message, e.code)),
        Phase::Rebaser => rebaser::run(&inputs, &log).map_err(|e| (e.message, e.code)),
        Phase::Creator => match creator::run(&inputs, &log) {
            Ok(()) => return 0,
            Err(e) => {
                log.error(&e.message);
                return e.code;
            }
        },
    };
    match result {
        Ok(()) => 0,
        Err((msg, code)) => {
            log.error(&format!("failed to {}: {msg}", phase_verb(phase)));
            code
        }
    }
}

fn phase_verb(p: Phase) -> &'static str {
    match p {
        Phase::Analyzer => "analyze",
        Phase::Detector => "detect",
        Phase::Restorer => "restore",
        Phase::Builder => "build",
        Phase::Exporter => "export",
        Phase::Creator => "create",
        Phase::Rebaser => "rebase",
    }
}
