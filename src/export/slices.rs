//! Application slices (`cnb-lifecycle.md` §7.3): the app directory split into one layer per
//! `[[slices]]` entry of `metadata.toml` plus a remainder layer, each listing its paths sorted
//! by full path string (not walk order: `a-c` sorts before `a/b`).
//!
//! Globs are matched against the walked tree (Go `filepath.Match` rules per path segment)
//! instead of the filesystem, so a symlinked directory in the app is never followed and a
//! pattern cannot reach outside the app directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One app layer: paths relative to the app dir (`""` is the app dir itself), sorted as the
/// exporter writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppSlice {
    pub paths: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("slice {slice}: path pattern {pattern:?}: {message}")]
pub struct SliceError {
    pub slice: usize,
    pub pattern: String,
    pub message: String,
}

/// The app tree: every path below the app dir (relative, `/`-separated) → is a real directory.
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, bool>,
}

impl Tree {
    /// Walk `app` without following symlinks.
    pub fn walk(app: &Path) -> io::Result<Tree> {
        let mut t = Tree::default();
        t.entries.insert(String::new(), true);
        let mut stack = vec![(app.to_path_buf(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = fs::read_dir(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", dir.display())))?;
            for e in rd {
                let e = e?;
                let name = e.file_name().into_string().map_err(|n| {
                    io::Error::other(format!("path is not UTF-8: {}", dir.join(n).display()))
                })?;
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let is_dir = e.file_type()?.is_dir();
                if is_dir {
                    stack.push((e.path(), child.clone()));
                }
                t.entries.insert(child, is_dir);
            }
        }
        Ok(t)
    }

    #[cfg(test)]
    fn from_paths(paths: &[&str]) -> Tree {
        let mut t = Tree::default();
        t.entries.insert(String::new(), true);
        for p in paths {
            let (p, dir) = match p.strip_suffix('/') {
                Some(d) => (d, true),
                None => (*p, false),
            };
            t.entries.insert(p.to_string(), dir);
        }
        t
    }

    /// Direct children of `dir`.
    fn children(&self, dir: &str) -> Vec<&String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k)
            .filter(|k| !k.is_empty() && !k[prefix.len()..].contains('/'))
            .collect()
    }

    /// Everything below `dir`.
    fn descendants(&self, dir: &str) -> Vec<&String> {
        let prefix = format!("{dir}/");
        self.entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k)
            .collect()
    }
}

/// Split the tree into `slices.len()` slice layers plus the remainder (always last).
pub fn split(tree: &Tree, slices: &[Vec<String>]) -> Result<Vec<AppSlice>, SliceError> {
    let mut consumed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(slices.len() + 1);
    for (i, patterns) in slices.iter().enumerate() {
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for pattern in patterns {
            let segs = pattern_segments(pattern).map_err(|message| SliceError {
                slice: i + 1,
                pattern: pattern.clone(),
                message,
            })?;
            let Some(segs) = segs else { continue };
            for (path, is_dir) in &tree.entries {
                if consumed.contains(path) || !matches(&segs, path) {
                    continue;
                }
                taken.insert(path.clone());
                if *is_dir {
                    taken.extend(
                        tree.descendants(path)
                            .into_iter()
                            .filter(|d| !consumed.contains(*d))
                            .cloned(),
                    );
                }
            }
        }
        if taken.is_empty() {
            out.push(AppSlice::default());
            continue;
        }
        consumed.extend(taken.iter().cloned());
        // Parents go into the slice; they count as consumed only once all children are.
        let mut with_parents = taken.clone();
        for p in &taken {
            let mut cur = p.as_str();
            while let Some((parent, _)) = cur.rsplit_once('/') {
                with_parents.insert(parent.to_string());
                cur = parent;
            }
            with_parents.insert(String::new());
        }
        let parents: Vec<&String> = with_parents.difference(&taken).collect();
        // Deepest first, so a parent sees its children's final state.
        let mut parents: Vec<&String> = parents.into_iter().collect();
        parents.sort_by_key(|p| std::cmp::Reverse(depth(p)));
        for p in parents {
            if tree.children(p).into_iter().all(|c| consumed.contains(c)) {
                consumed.insert(p.clone());
            }
        }
        out.push(sorted(with_parents));
    }
    let rest: BTreeSet<String> = tree
        .entries
        .keys()
        .filter(|p| !consumed.contains(*p))
        .cloned()
        .collect();
    out.push(sorted(rest));
    Ok(out)
}

fn depth(p: &str) -> usize {
    if p.is_empty() {
        0
    } else {
        p.matches('/').count() + 1
    }
}

/// Sort by the full path string the entries get in the tar (`<app>/<rel>`); the app dir
/// itself (`""`) sorts first because every other name extends it.
fn sorted(paths: BTreeSet<String>) -> AppSlice {
    let mut paths: Vec<String> = paths.into_iter().collect();
    paths.sort_by(|a, b| {
        let key = |p: &String| {
            if p.is_empty() {
                String::new()
            } else {
                format!("/{p}")
            }
        };
        key(a).cmp(&key(b))
    });
    AppSlice { paths }
}

/// A pattern as cleaned path segments; `None` when it can only match outside the app dir.
fn pattern_segments(pattern: &str) -> Result<Option<Vec<String>>, String> {
    let mut segs: Vec<String> = Vec::new();
    for s in pattern.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                if segs.pop().is_none() {
                    return Ok(None);
                }
            }
            s => {
                // Validate now so a bad pattern is an error even when nothing could match.
                glob_match(s, "")?;
                segs.push(s.to_string());
            }
        }
    }
    Ok(Some(segs))
}

fn matches(segs: &[String], path: &str) -> bool {
    if segs.is_empty() {
        return path.is_empty();
    }
    let parts: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    parts.len() == segs.len()
        && segs
            .iter()
            .zip(parts)
            .all(|(s, p)| glob_match(s, p).unwrap_or(false))
}

/// Go's `path.Match` for one segment: `*`, `?`, `[...]` with ranges and `^`, `\` escapes.
fn glob_match(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Check the whole pattern's syntax once, independent of the name.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '[' => i = class_end(&p, i)?,
            '\\' if i + 1 >= p.len() => return Err("trailing backslash".into()),
            '\\' => i += 2,
            _ => i += 1,
        }
    }
    Ok(match_from(&p, 0, &n, 0))
}

/// Index just past the `]` closing the class at `start`.
fn class_end(p: &[char], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut first = true;
    loop {
        match p.get(i) {
            None => return Err("unterminated character class".into()),
            Some(']') if !first => return Ok(i + 1),
            Some('\\') => i += 2,
            Some(']' | '-') => return Err("bad character range".into()),
            Some(_) => i += 1,
        }
        first = false;
        if p.get(i) == Some(&'-') {
            i += 1;
            match p.get(i) {
                None | Some(']' | '-') => return Err("bad character range".into()),
                Some('\\') => i += 2,
                Some(_) => i += 1,
            }
        }
    }
}

fn match_class(p: &[char], start: usize, c: char) -> bool {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        let lo = if p[i] == '\\' {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            i += 1;
            hi = if p[i] == '\\' {
                i += 1;
                p[i]
            } else {
                p[i]
            };
            i += 1;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
    }
    hit != negated
}

fn match_from(p: &[char], pi: usize, n: &[char], ni: usize) -> bool {
    if pi == p.len() {
        return ni == n.len();
    }
    match p[pi] {
        '*' => (ni..=n.len()).any(|k| match_from(p, pi + 1, n, k)),
        '?' => ni < n.len() && match_from(p, pi + 1, n, ni + 1),
        '[' => {
            let Ok(end) = class_end(p, pi) else {
                return false;
            };
            ni < n.len() && match_class(p, pi, n[ni]) && match_from(p, end, n, ni + 1)
        }
        '\\' => ni < n.len() && n[ni] == p[pi + 1] && match_from(p, pi + 2, n, ni + 1),
        c => ni < n.len() && n[ni] == c && match_from(p, pi + 1, n, ni + 1),
    }
}

/// The on-disk path of a slice entry.
pub fn disk_path(app: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        app.to_path_buf()
    } else {
        app.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(s: &AppSlice) -> Vec<&str> {
        s.paths.iter().map(String::as_str).collect()
    }

    #[test]
    fn go_match_rules() {
        assert_eq!(glob_match("*.js", "a.js"), Ok(true));
        assert_eq!(glob_match("*.js", ".js"), Ok(true));
        assert_eq!(glob_match("a?c", "abc"), Ok(true));
        assert_eq!(glob_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(glob_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(glob_match("\\*", "*"), Ok(true));
        assert_eq!(glob_match("\\*", "a"), Ok(false));
        assert!(glob_match("[a-", "a").is_err());
        assert!(glob_match("a\\", "a").is_err());
        assert!(
            glob_match("[]a]", "]").is_err(),
            "Go rejects an empty class start"
        );
    }

    #[test]
    fn slices_take_matches_and_children_parents_shared() {
        let t = Tree::from_paths(&[
            "a/",
            "a/b/",
            "a/b/x.js",
            "a/c.txt",
            "a-c",
            "static/",
            "static/i.png",
            "z",
        ]);
        let s = split(
            &t,
            &[
                vec!["a/b/*.js".into()],
                vec!["static".into(), "nothing*".into()],
                vec!["nope".into()],
            ],
        )
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(paths(&s[0]), ["", "a", "a/b", "a/b/x.js"]);
        assert_eq!(paths(&s[1]), ["", "static", "static/i.png"]);
        assert!(s[2].paths.is_empty(), "an empty slice is still a layer");
        // a/b is consumed (all children taken); a is not (a/c.txt left); the app root stays.
        assert_eq!(paths(&s[3]), ["", "a", "a-c", "a/c.txt", "z"]);
    }

    #[test]
    fn patterns_cannot_leave_the_app_dir() {
        let t = Tree::from_paths(&["x"]);
        let s = split(&t, &[vec!["../x".into(), "../../etc/*".into()]]).unwrap();
        assert!(s[0].paths.is_empty());
        let s = split(&t, &[vec!["d/../x".into()]]).unwrap();
        assert_eq!(paths(&s[0]), ["", "x"]);
        let e = split(&t, &[vec!["[".into()]]).unwrap_err();
        assert_eq!(e.slice, 1);
    }

    #[test]
    fn everything_sliced_leaves_an_empty_remainder() {
        let t = Tree::from_paths(&["a", "b/", "b/c"]);
        let s = split(&t, &[vec!["*".into()]]).unwrap();
        assert_eq!(paths(&s[0]), ["", "a", "b", "b/c"]);
        assert!(s[1].paths.is_empty());
    }
}
