//! Go `flag`-package compatible argument parsing, so kpack's pod specs (which pass `-name=value`,
//! `-name value`, `--run-image value` and repeatable secret flags) work unchanged.
//!
//! Rules kept from Go: parsing stops at the first non-flag argument or after `--`; `-x` and `--x`
//! are the same; a non-bool flag without `=` takes the next argument; a bool flag only takes
//! `=value`; an unknown flag prints usage and exits 2; `-h`/`-help` prints usage and exits 0.

use std::collections::BTreeMap;

use crate::goflag::{scan, FlagType, ScanError, Scanned};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    /// Repeatable; every occurrence is kept in order.
    Multi,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    /// Environment variable supplying the default, if any.
    pub env: Option<&'static str>,
    pub help: &'static str,
}

pub const fn flag(name: &'static str, kind: Kind, env: Option<&'static str>) -> Spec {
    Spec {
        name,
        kind,
        env,
        help: "",
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum FlagError {
    /// `-h`/`-help`: usage was asked for.
    Help,
    /// A usage error (Go prints the message, then the usage, and exits 2).
    Usage(String),
}

/// Parsed flags: values as given (or from the environment), plus positional arguments.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    values: BTreeMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value given for a string flag, or its env default, or "".
    pub fn str(&self, name: &str) -> String {
        self.values
            .get(name)
            .and_then(|v| v.last().cloned())
            .unwrap_or_default()
    }

    pub fn multi(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// Whether the flag was set on the command line or by its env var.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

pub use crate::goflag::parse_bool;

/// Go's `strconv.Atoi` for the values kpack passes (decimal, optional sign).
pub fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// Parse `argv` (without argv[0]) against `specs`; `env` supplies defaults.
pub fn parse(
    specs: &[Spec],
    argv: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, FlagError> {
    let mut p = Parsed::default();
    for s in specs {
        if let Some(v) = s.env.and_then(env) {
            if s.kind != Kind::Multi {
                p.values.insert(s.name, vec![v]);
            }
        }
    }
    let kind = |name: &str| {
        specs.iter().find(|s| s.name == name).map(|s| match s.kind {
            Kind::Bool => FlagType::Bool,
            _ => FlagType::Value,
        })
    };
    let Scanned {
        flags: found,
        positional: i,
    } = scan(argv, kind).map_err(|e| match e {
        ScanError::Help => FlagError::Help,
        ScanError::Usage(m) => FlagError::Usage(m),
    })?;
    let mut seen_cli: Vec<&'static str> = Vec::new();
    for (name, value) in found {
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            continue;
        };
        if spec.kind == Kind::Int && parse_int(&value).is_none() {
            return Err(FlagError::Usage(format!(
                "invalid value {value:?} for flag -{name}: parse error"
            )));
        }
        // A command-line value replaces the env default; repeatable flags accumulate.
        if !seen_cli.contains(&spec.name) {
            seen_cli.push(spec.name);
            p.values.remove(spec.name);
        }
        p.values.entry(spec.name).or_default().push(value);
    }
    p.args = argv[i..].to_vec();
    Ok(p)
}

/// Go-style usage text for `specs`.
pub fn usage(program: &str, specs: &[Spec]) -> String {
    let mut s = format!("Usage of {program}:\n");
    for f in specs {
        let ty = match f.kind {
            Kind::Bool => "",
            Kind::Int => " int",
            Kind::Str | Kind::Multi => " value",
        };
        s.push_str(&format!("  -{}{ty}\n", f.name));
        if let Some(e) = f.env {
            s.push_str(&format!("    \t(default from ${e})\n"));
        } else if !f.help.is_empty() {
            s.push_str(&format!("    \t{}\n", f.help));
        }
    }
    s
}

/// Parse or exit as Go's `flag.ExitOnError` does: usage errors exit 2, `-help` exits 0.
pub fn parse_or_exit(program: &str, specs: &[Spec], argv: &[String]) -> Parsed {
    match parse(specs, argv, &|k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(FlagError::Help) => {
            eprint!("{}", usage(program, specs));
            std::process::exit(0)
        }
        Err(FlagError::Usage(m)) => {
            eprintln!("{m}");
            eprint!("{}", usage(program, specs));
            std::process::exit(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[
        flag("imageTag", Kind::Str, Some("IMAGE_TAG")),
        flag("blob-auth", Kind::Bool, Some("BLOB_AUTH")),
        flag("strip-components", Kind::Int, None),
        flag("basic-git", Kind::Multi, None),
        flag("run-image", Kind::Str, None),
    ];

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn env(k: &str) -> Option<String> {
        (k == "IMAGE_TAG").then(|| "from-env".to_string())
    }

    #[test]
    fn go_flag_forms() {
        let p = parse(
            SPECS,
            &argv(&[
                "-basic-git=a=https://x",
                "--basic-git",
                "b=y",
                "-blob-auth",
                "--run-image",
                "run:1",
                "tag1",
                "-notaflag",
            ]),
            &env,
        )
        .unwrap();
        assert_eq!(p.str("imageTag"), "from-env");
        assert_eq!(p.multi("basic-git"), vec!["a=https://x", "b=y"]);
        assert_eq!(p.str("blob-auth"), "true");
        assert_eq!(p.str("run-image"), "run:1");
        assert_eq!(p.args, vec!["tag1", "-notaflag"]);
        let p = parse(SPECS, &argv(&["-imageTag=cli", "--", "-x"]), &env).unwrap();
        assert_eq!(p.str("imageTag"), "cli");
        assert_eq!(p.args, vec!["-x"]);
    }

    #[test]
    fn go_flag_errors() {
        let e = |a: &[&str]| parse(SPECS, &argv(a), &env).unwrap_err();
        assert_eq!(
            e(&["-nope"]),
            FlagError::Usage("flag provided but not defined: -nope".into())
        );
        assert_eq!(
            e(&["-run-image"]),
            FlagError::Usage("flag needs an argument: -run-image".into())
        );
        assert!(matches!(e(&["-blob-auth=maybe"]), FlagError::Usage(_)));
        assert!(matches!(e(&["-strip-components=x"]), FlagError::Usage(_)));
        assert_eq!(e(&["-help"]), FlagError::Help);
    }

    #[test]
    fn bools_follow_strconv() {
        assert_eq!(parse_bool("T"), Some(true));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }
}
