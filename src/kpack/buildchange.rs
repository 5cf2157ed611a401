//! The build-changes log (`BUILD_CHANGES`): the reasons, then a coloured line diff of each
//! change's old and new values, as kpack prints it at the start of prepare and rebase.

use serde_json::Value;

#[derive(serde::Deserialize)]
struct Change {
    reason: String,
    old: Value,
    new: Value,
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const RESET: &str = "\x1b[0m";

/// A value as text: strings as they are, everything else as YAML (sorted keys).
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => {
            let mut out = String::new();
            yaml(other, 0, &mut out);
            out
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s)
            if s.is_empty()
                || s.contains([':', '#', '\n'])
                || s.trim() != s
                || s.parse::<f64>().is_ok()
                || matches!(s.as_str(), "true" | "false" | "null" | "yes" | "no" | "~") =>
        {
            serde_json::to_string(s).unwrap_or_default()
        }
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            for k in keys {
                match &m[k] {
                    Value::Object(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(&m[k], indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(&m[k], indent, out);
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{k}: []\n")),
                    s => out.push_str(&format!("{pad}{k}: {}\n", scalar(s))),
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        let mut inner = String::new();
                        yaml(item, indent + 2, &mut inner);
                        let trimmed = inner.trim_start().to_string();
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                    s => out.push_str(&format!("{pad}- {}\n", scalar(s))),
                }
            }
        }
        s => out.push_str(&format!("{pad}{}\n", scalar(s))),
    }
}

/// Line diff (longest common subsequence): `(-1|0|1, line)`.
fn diff<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(i8, &'a str)> {
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((0, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || l[i + 1][j] >= l[i][j + 1]) {
            out.push((-1, a[i]));
            i += 1;
        } else {
            out.push((1, b[j]));
            j += 1;
        }
    }
    out
}

/// The log lines for `build_changes` (empty input: none). A parse error is returned as the one
/// line kpack prints; it is never fatal.
pub fn lines(build_changes: &str) -> Vec<String> {
    if build_changes.is_empty() {
        return Vec::new();
    }
    let changes: Vec<Change> = match serde_json::from_str(build_changes) {
        Ok(c) => c,
        Err(e) => {
            return vec![format!(
                "error parsing build changes JSON string '{build_changes}': {e}"
            )]
        }
    };
    let reasons: Vec<&str> = changes.iter().map(|c| c.reason.as_str()).collect();
    let mut out = vec![format!("Build reason(s): {}", reasons.join(","))];
    for c in &changes {
        out.push(format!("{}:", c.reason));
        let (old, new) = (render(&c.old), render(&c.new));
        let (a, b): (Vec<&str>, Vec<&str>) = (
            old.lines().filter(|l| !l.is_empty()).collect(),
            new.lines().filter(|l| !l.is_empty()).collect(),
        );
        for (k, line) in diff(&a, &b) {
            out.push(match k {
                -1 => format!("\t{RED}-{RESET} {RED}{line}{RESET}"),
                1 => format!("\t{GREEN}+{RESET} {GREEN}{line}{RESET}"),
                _ => format!("\t  {line}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_change() {
        let l = lines(r#"[{"reason":"COMMIT","old":"old-sha","new":"new-sha"}]"#);
        assert_eq!(
            l,
            vec![
                "Build reason(s): COMMIT",
                "COMMIT:",
                "\t\x1b[31m-\x1b[0m \x1b[31mold-sha\x1b[0m",
                "\t\x1b[32m+\x1b[0m \x1b[32mnew-sha\x1b[0m",
            ]
        );
        assert!(lines("").is_empty());
        assert!(lines("nope")[0].starts_with("error parsing build changes JSON string 'nope': "));
    }

    #[test]
    fn structured_change_diffs_yaml_lines() {
        let l = lines(
            r#"[{"reason":"CONFIG","old":{"env":[{"name":"A","value":"1"}]},"new":{"env":[{"name":"A","value":"2"}]}},{"reason":"STACK","old":"a","new":"b"}]"#,
        );
        assert_eq!(l[0], "Build reason(s): CONFIG,STACK");
        assert!(l.contains(&"\t  env:".to_string()), "{l:?}");
        assert!(
            l.contains(&"\t\x1b[31m-\x1b[0m \x1b[31m  value: \"1\"\x1b[0m".to_string()),
            "{l:?}"
        );
    }
}
