//! The image definition: TOML, with `include`s (merged in order, the including file last) and
//! `${var}` substitution (vars from included files, then the including file, then the caller).
//!
//! ```toml
//! include = ["common.toml"]          # relative to this file
//! [vars]
//! name = "completion"
//! [image]
//! entrypoint = ["/cnb/process/${name}"]
//! env = ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
//! user = "1002:1000"
//! labels = { "org.opencontainers.image.revision" = "${revision}" }
//! [[layers]]
//! name = "base"
//! entries = [
//!   { path = "/tmp", type = "dir", mode = 0o1777 },
//!   { path = "/etc/passwd", type = "text", text = "root:x:0:0:root:/root:/sbin/nologin\n" },
//!   { path = "/usr/local/bin/x", type = "file", source = "${binary}", mode = 0o755 },
//!   { path = "/cnb/process/x", type = "symlink", target = "../../usr/local/bin/x" },
//!   { path = "/opt/tool", type = "tree", source = "${staged}" },
//! ]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Error;
use crate::layer::NORMALIZED_MTIME;
use crate::oci::config::rfc3339;

/// Variables for `${name}` substitution.
pub type Vars = BTreeMap<String, String>;

/// Includes nest at most this deep (a cycle is reported before).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A resolved definition: variables substituted, includes merged, entries checked and sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    pub image: ImageConfigDef,
    pub layers: Vec<LayerDef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageConfigDef {
    pub os: String,
    pub architecture: String,
    pub created: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// In the order first defined; a later definition of a key replaces its value in place.
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDef {
    pub name: String,
    /// Sorted by path; missing parent directories added (0755, root).
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the image root, no leading `/` (empty: the root, for a tree).
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file copied from disk.
    File(PathBuf),
    /// A regular file with these contents.
    Text(String),
    Symlink(String),
    /// A directory from disk and everything below it (modes as on disk, owner root).
    Tree(PathBuf),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDef {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    vars: Vars,
    #[serde(default)]
    image: RawImage,
    #[serde(default)]
    layers: Vec<RawLayer>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImage {
    os: Option<String>,
    architecture: Option<String>,
    created: Option<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: String,
    #[serde(default)]
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    mode: Option<u32>,
    uid: Option<u64>,
    gid: Option<u64>,
    source: Option<String>,
    text: Option<String>,
    target: Option<String>,
}

/// One loaded file: its raw definition and the directory its relative paths start from.
struct Loaded {
    file: String,
    dir: PathBuf,
    raw: RawDef,
}

impl Definition {
    /// Load `path` and its includes; `vars` (the caller's) override the files' vars.
    pub fn load(path: &Path, vars: &Vars) -> Result<Self, Error> {
        let mut files = Vec::new();
        load_tree(path, &mut Vec::new(), &mut files)?;
        let mut all: Vars = Vars::new();
        for f in &files {
            all.extend(f.raw.vars.clone());
        }
        all.extend(vars.clone());
        resolve(&files, &all)
    }
}

/// Depth-first: includes before the file that names them.
fn load_tree(path: &Path, stack: &mut Vec<PathBuf>, out: &mut Vec<Loaded>) -> Result<(), Error> {
    let shown = path.display().to_string();
    let canonical = path
        .canonicalize()
        .map_err(|e| Error::definition(&shown, format!("read: {e}")))?;
    if stack.contains(&canonical) {
        return Err(Error::definition(&shown, "includes itself"));
    }
    if stack.len() >= MAX_INCLUDE_DEPTH {
        return Err(Error::definition(&shown, "includes nest too deep"));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::definition(&shown, format!("read: {e}")))?;
    let raw: RawDef = toml::from_str(&text).map_err(|e| Error::definition(&shown, e.message()))?;
    let dir = canonical
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    stack.push(canonical);
    for inc in &raw.include {
        load_tree(&dir.join(inc), stack, out)?;
    }
    stack.pop();
    out.push(Loaded {
        file: shown,
        dir,
        raw,
    });
    Ok(())
}

fn resolve(files: &[Loaded], vars: &Vars) -> Result<Definition, Error> {
    let mut image = ImageConfigDef {
        os: "linux".into(),
        architecture: "amd64".into(),
        created: rfc3339(NORMALIZED_MTIME as i64),
        entrypoint: None,
        cmd: None,
        user: None,
        working_dir: None,
        env: Vec::new(),
        labels: BTreeMap::new(),
    };
    let mut layers = Vec::new();
    for f in files {
        let s = |v: &str| substitute(v, vars).map_err(|m| Error::definition(&f.file, m));
        let opt = |v: &Option<String>| v.as_deref().map(s).transpose();
        let list = |v: &Option<Vec<String>>| {
            v.as_ref()
                .map(|l| l.iter().map(|x| s(x)).collect::<Result<Vec<_>, _>>())
                .transpose()
        };
        let r = &f.raw.image;
        if let Some(v) = opt(&r.os)? {
            image.os = v;
        }
        if let Some(v) = opt(&r.architecture)? {
            image.architecture = v;
        }
        if let Some(v) = opt(&r.created)? {
            image.created = v;
        }
        image.entrypoint = list(&r.entrypoint)?.or(image.entrypoint);
        image.cmd = list(&r.cmd)?.or(image.cmd);
        image.user = opt(&r.user)?.or(image.user);
        image.working_dir = opt(&r.working_dir)?.or(image.working_dir);
        for kv in &r.env {
            let kv = s(kv)?;
            let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(Error::definition(
                    &f.file,
                    format!("env entry {kv:?} is not KEY=VALUE"),
                ));
            };
            match image.env.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.to_string(),
                None => image.env.push((k.to_string(), v.to_string())),
            }
        }
        for (k, v) in &r.labels {
            image.labels.insert(s(k)?, s(v)?);
        }
        for l in &f.raw.layers {
            layers.push(resolve_layer(f, l, vars)?);
        }
    }
    if layers.is_empty() {
        return Err(Error::definition(
            files.last().map_or("", |f| f.file.as_str()),
            "no layers",
        ));
    }
    Ok(Definition { image, layers })
}

fn resolve_layer(f: &Loaded, l: &RawLayer, vars: &Vars) -> Result<LayerDef, Error> {
    let name = substitute(&l.name, vars).map_err(|m| Error::definition(&f.file, m))?;
    let err = |m: String| Error::definition(&f.file, format!("layer {name:?}: {m}"));
    let mut entries: Vec<Entry> = Vec::new();
    for raw in &l.entries {
        let e = resolve_entry(raw, vars, &f.dir).map_err(&err)?;
        if entries.iter().any(|x| x.path == e.path) {
            return Err(err(format!("{:?} is listed twice", e.path)));
        }
        entries.push(e);
    }
    // A tree owns everything below it.
    for t in entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Tree(_)))
    {
        let below = |p: &str| t.path.is_empty() || p.starts_with(&format!("{}/", t.path));
        if let Some(o) = entries.iter().find(|o| o.path != t.path && below(&o.path)) {
            return Err(err(format!(
                "{:?} is inside tree {:?}",
                o.path,
                if t.path.is_empty() { "/" } else { &t.path }
            )));
        }
    }
    // Missing parents, as plain root-owned directories.
    let mut parents = Vec::new();
    for e in &entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !entries.iter().any(|x| x.path == parent) && !parents.contains(&parent) {
                parents.push(parent);
            }
            p = parent;
        }
    }
    let parents: Vec<Entry> = parents
        .into_iter()
        .map(|p| Entry {
            path: p.to_string(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            kind: EntryKind::Dir,
        })
        .collect();
    entries.extend(parents);
    for e in &entries {
        if let Some((parent, _)) = e.path.rsplit_once('/') {
            if let Some(p) = entries.iter().find(|x| x.path == parent) {
                if p.kind != EntryKind::Dir {
                    return Err(err(format!("{:?} is a parent but not a directory", p.path)));
                }
            }
        }
    }
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(LayerDef { name, entries })
}

fn resolve_entry(raw: &RawEntry, vars: &Vars, dir: &Path) -> Result<Entry, String> {
    let s = |v: &str| substitute(v, vars);
    let path = normalize_path(&s(&raw.path)?)?;
    let shown = format!("entry {:?}", raw.path);
    let source = raw
        .source
        .as_deref()
        .map(s)
        .transpose()?
        .map(|p| dir.join(p));
    let text = raw.text.as_deref().map(s).transpose()?;
    let target = raw.target.as_deref().map(s).transpose()?;
    let extra = |allowed: &[&str]| -> Result<(), String> {
        for (field, set) in [
            ("source", source.is_some()),
            ("text", text.is_some()),
            ("target", target.is_some()),
        ] {
            if set && !allowed.contains(&field) {
                return Err(format!(
                    "{shown}: {field} is not used by type {:?}",
                    raw.kind
                ));
            }
        }
        Ok(())
    };
    fn need<T>(v: Option<T>, shown: &str, field: &str) -> Result<T, String> {
        v.ok_or_else(|| format!("{shown}: needs {field}"))
    }
    let (kind, default_mode) = match raw.kind.as_str() {
        "dir" => {
            extra(&[])?;
            (EntryKind::Dir, 0o755)
        }
        "file" => {
            extra(&["source"])?;
            let src = need(source, &shown, "source")?;
            let meta = std::fs::metadata(&src)
                .map_err(|e| format!("{shown}: source {}: {e}", src.display()))?;
            if !meta.is_file() {
                return Err(format!("{shown}: source {} is not a file", src.display()));
            }
            let exec = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
            (EntryKind::File(src), if exec { 0o755 } else { 0o644 })
        }
        "text" => {
            extra(&["text"])?;
            (EntryKind::Text(need(text, &shown, "text")?), 0o644)
        }
        "symlink" => {
            extra(&["target"])?;
            let t = need(target, &shown, "target")?;
            if t.is_empty() {
                return Err(format!("{shown}: empty symlink target"));
            }
            (EntryKind::Symlink(t), 0o777)
        }
        "tree" => {
            extra(&["source"])?;
            let src = need(source, &shown, "source")?;
            if !src.is_dir() {
                return Err(format!(
                    "{shown}: source {} is not a directory",
                    src.display()
                ));
            }
            (EntryKind::Tree(src), 0o755)
        }
        other => {
            return Err(format!(
                "{shown}: unknown type {other:?} (want dir, file, text, symlink or tree)"
            ))
        }
    };
    if path.is_empty() && !matches!(kind, EntryKind::Tree(_)) {
        return Err(format!("{shown}: only a tree may be the root"));
    }
    let owned = raw.uid.is_some() || raw.gid.is_some();
    if owned && kind != EntryKind::Dir {
        return Err(format!(
            "{shown}: uid/gid are supported on directories only"
        ));
    }
    if matches!(kind, EntryKind::Symlink(_) | EntryKind::Tree(_)) && raw.mode.is_some() {
        return Err(format!("{shown}: mode is not used by type {:?}", raw.kind));
    }
    let mode = raw.mode.unwrap_or(default_mode);
    if mode > 0o7777 {
        return Err(format!("{shown}: mode {mode:o} is not a permission mode"));
    }
    Ok(Entry {
        path,
        mode,
        uid: raw.uid.unwrap_or(0),
        gid: raw.gid.unwrap_or(0),
        kind,
    })
}

/// `/a/b` → `a/b`; `/` → ``; `.`/`..`/empty components are refused (no escaping the root).
fn normalize_path(p: &str) -> Result<String, String> {
    let rel = p.trim_start_matches('/');
    if rel.is_empty() {
        return Ok(String::new());
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(format!(
            "path {p:?}: empty, \".\" or \"..\" components are not allowed"
        ));
    }
    Ok(rel.to_string())
}

/// Replace `${name}` with its value; `$$` is a literal `$`. An undefined name is an error.
pub fn substitute(s: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let name = &r[..end];
            let v = vars
                .get(name)
                .ok_or_else(|| format!("undefined variable ${{{name}}} in {s:?}"))?;
            out.push_str(v);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[path = "definition_tests.rs"]
mod tests;
