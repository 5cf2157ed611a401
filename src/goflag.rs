//! Command lines read the way Go's `flag` package reads them, shared by the kpack steps and the
//! lifecycle phases (both are drop-ins for Go programs): `-flag v`, `-flag=v`, `--flag`, booleans
//! only as `-flag` or `-flag=<bool>`, and parsing stops at the first positional or after `--`.
//! Each caller applies its own precedence (flag, env, default) to the values found.

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// `-h` or `-help` (not defined as a flag).
    Help,
    /// Go's usage error text.
    Usage(String),
}

/// What the caller knows about a flag name: `None` when undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagType {
    Bool,
    Value,
}

/// The flags given (name, value), in order, and the index in `argv` of the first positional.
#[derive(Debug)]
pub struct Scanned<'a> {
    pub flags: Vec<(&'a str, String)>,
    pub positional: usize,
}

pub fn scan(
    argv: &[String],
    kind: impl Fn(&str) -> Option<FlagType>,
) -> Result<Scanned<'_>, ScanError> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ScanError::Usage(format!("bad flag syntax: {a}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(ty) = kind(name) else {
            if name == "h" || name == "help" {
                return Err(ScanError::Help);
            }
            return Err(ScanError::Usage(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let value = match (ty, inline) {
            (FlagType::Bool, None) => "true".to_string(),
            (FlagType::Bool, Some(v)) => {
                if parse_bool(&v).is_none() {
                    return Err(ScanError::Usage(format!(
                        "invalid boolean value {v:?} for -{name}: parse error"
                    )));
                }
                v
            }
            (FlagType::Value, Some(v)) => v,
            (FlagType::Value, None) => {
                i += 1;
                argv.get(i)
                    .cloned()
                    .ok_or_else(|| ScanError::Usage(format!("flag needs an argument: -{name}")))?
            }
        };
        found.push((name, value));
        i += 1;
    }
    Ok(Scanned {
        flags: found,
        positional: i,
    })
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn kind(n: &str) -> Option<FlagType> {
        match n {
            "b" => Some(FlagType::Bool),
            "v" => Some(FlagType::Value),
            _ => None,
        }
    }

    #[test]
    fn go_rules() {
        let a = args("-b --v=1 -v 2 -b=false pos -v 3");
        let Scanned {
            flags: f,
            positional: i,
        } = scan(&a, kind).unwrap();
        assert_eq!(
            f,
            [
                ("b", "true".to_string()),
                ("v", "1".into()),
                ("v", "2".into()),
                ("b", "false".into())
            ]
        );
        assert_eq!(&a[i..], ["pos", "-v", "3"]);
        let a = args("-- -b");
        assert_eq!(scan(&a, kind).unwrap().positional, 1);
        let err = |s: &str| scan(&args(s), kind).unwrap_err();
        assert_eq!(err("-h"), ScanError::Help);
        assert_eq!(
            err("---b"),
            ScanError::Usage("bad flag syntax: ---b".into())
        );
        assert_eq!(
            err("-x"),
            ScanError::Usage("flag provided but not defined: -x".into())
        );
        assert_eq!(
            err("-v"),
            ScanError::Usage("flag needs an argument: -v".into())
        );
        assert_eq!(
            err("-b=maybe"),
            ScanError::Usage("invalid boolean value \"maybe\" for -b: parse error".into())
        );
    }
}
