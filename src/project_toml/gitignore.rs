//! Include/exclude patterns with the semantics of `sabhiram/go-gitignore`, which kpack uses:
//! each line becomes an anchored regular expression, the last matching line decides, and `!`
//! negates. Its quirks are kept on purpose (`?` matches only a literal `?`; `a/*.x` patterns are
//! anchored at the root) so the same project.toml removes the same files as kpack.

use regex_lite::Regex;

struct Pattern {
    re: Regex,
    negate: bool,
}

pub struct GitIgnore {
    patterns: Vec<Pattern>,
}

/// A placeholder for `*` that must survive the single-star rewrite.
const MAGIC: &str = "#$~";

fn compile_line(line: &str) -> Option<Pattern> {
    let mut line = line.trim_end_matches('\r').to_string();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    line = line.trim().to_string();
    if line.is_empty() {
        return None;
    }
    let mut negate = false;
    if let Some(rest) = line.strip_prefix('!') {
        negate = true;
        line = rest.to_string();
    }
    if line.starts_with("\\#") || line.starts_with("\\!") {
        line = line[1..].to_string();
    }
    // `dir/*.ext` in a sub-folder pattern is anchored to the root.
    let anchored_glob = Regex::new(r"([^/+])/.*\*\.").ok()?;
    if anchored_glob.is_match(&line) && !line.starts_with('/') {
        line = format!("/{line}");
    }
    line = line.replace('.', r"\.");
    if line.starts_with("/**/") {
        line = line[1..].to_string();
    }
    line = line.replace("/**/", "(/|/.+/)");
    line = line.replace("**/", &format!("(|.{MAGIC}/)"));
    line = line.replace("/**", &format!("(|/.{MAGIC})"));
    line = line.replace(r"\*", &format!(r"\{MAGIC}"));
    line = line.replace('*', "([^/]*)");
    line = line.replace('?', r"\?");
    line = line.replace(MAGIC, "*");
    let mut expr = if line.ends_with('/') {
        format!("{line}(|.*)$")
    } else {
        format!("{line}(|/.*)$")
    };
    expr = match expr.strip_prefix('/') {
        Some(rest) => format!("^(|/){rest}"),
        None => format!("^(|.*/){expr}"),
    };
    // An invalid expression is skipped, as go-gitignore does.
    Regex::new(&expr).ok().map(|re| Pattern { re, negate })
}

impl GitIgnore {
    pub fn new<S: AsRef<str>>(lines: &[S]) -> Self {
        Self {
            patterns: lines
                .iter()
                .filter_map(|l| compile_line(l.as_ref()))
                .collect(),
        }
    }

    /// Whether `path` (relative, `/`-separated) is matched; the last matching line decides.
    pub fn matches(&self, path: &str) -> bool {
        let mut m = false;
        for p in &self.patterns {
            if p.re.is_match(path) {
                m = !p.negate;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_semantics() {
        let g = GitIgnore::new(&["*.jar", "!keep.jar", "build/", "/root-only", "docs/**/*.md"]);
        assert!(g.matches("a.jar"));
        assert!(g.matches("lib/x/a.jar"));
        assert!(!g.matches("keep.jar"));
        assert!(g.matches("build/out.o"));
        assert!(!g.matches("build"));
        assert!(g.matches("root-only"));
        assert!(!g.matches("x/root-only"));
        assert!(g.matches("docs/a/b/c.md"));
        assert!(g.matches("docs/c.md"));
        assert!(!g.matches("src/main.go"));
        // A directory pattern matches everything below it.
        assert!(GitIgnore::new(&["my-dir"]).matches("my-dir/sub/file"));
        // go-gitignore's quirk: '?' is literal.
        assert!(!GitIgnore::new(&["a?c"]).matches("abc"));
        assert!(GitIgnore::new(&["# comment", ""]).patterns.is_empty());
    }
}
