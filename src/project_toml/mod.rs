//! project.toml (v1 `[build]` and v2 `[_] schema-version = "0.2"` / `[io.buildpacks]`) as kpack's
//! prepare step applies it: include/exclude delete non-matching files from the app directory,
//! build env goes to `/platform/env`, and `PLATFORM_ENV_*` variables are written after it.

pub mod gitignore;
pub mod platform_env;

use std::path::{Path, PathBuf};

use toml::Value;

use gitignore::GitIgnore;

/// Why the project descriptor could not be applied; the message is kpack's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DescriptorError(pub String);

fn err(msg: impl Into<String>) -> DescriptorError {
    DescriptorError(msg.into())
}

/// The parts of a descriptor kpack acts on, normalised from v1 or v2.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BuildSection {
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub has_buildpacks: bool,
    pub builder: String,
    pub env: Vec<(String, String)>,
}

/// What parsing found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Build(BuildSection),
    /// A schema version kpack does not know: warn and ignore the file.
    Unsupported(String),
}

fn string_list(v: Option<&Value>, key: &str) -> Result<Option<Vec<String>>, DescriptorError> {
    match v {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("{key} must be a list of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(err(format!("{key} must be a list of strings"))),
    }
}

/// `[{name, value}, ...]` with kpack's error texts.
fn env_list(v: &Value) -> Result<Vec<(String, String)>, DescriptorError> {
    let shape = || err("environment variables in project descriptor could not be parsed");
    let arr = v.as_array().ok_or_else(shape)?;
    let mut out = Vec::new();
    for e in arr {
        let t = e.as_table().ok_or_else(shape)?;
        let name = match t.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(err("environment variable 'name' is not a string")),
            None => String::new(),
        };
        let value = match t.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(err(format!(
                    "environment variable '{name}' is not a string value"
                )))
            }
            None => String::new(),
        };
        out.push((name, value));
    }
    Ok(out)
}

fn section(t: &toml::Table, v2: bool) -> Result<BuildSection, DescriptorError> {
    let get = |k: &str| t.get(k);
    let mut s = BuildSection {
        include: string_list(get("include"), "include")?,
        exclude: string_list(get("exclude"), "exclude")?,
        has_buildpacks: get(if v2 { "group" } else { "buildpacks" }).is_some(),
        builder: get("builder")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        env: Vec::new(),
    };
    if v2 {
        // The current form wins outright over the deprecated ones, even when empty.
        let current = t
            .get("build")
            .and_then(Value::as_table)
            .and_then(|b| b.get("env"));
        s.env = match (current, t.get("env")) {
            (Some(e), _) => env_list(e)?,
            (None, Some(Value::Table(old))) => match old.get("build") {
                Some(b) => env_list(b)?,
                None => Vec::new(),
            },
            (None, Some(old @ Value::Array(_))) => env_list(old)?,
            (None, Some(_)) => {
                return Err(err(
                    "environment variables in project descriptor could not be parsed",
                ))
            }
            (None, None) => Vec::new(),
        };
    } else if let Some(e) = t.get("env") {
        s.env = env_list(e)?;
    }
    Ok(s)
}

/// Parse a descriptor's text.
pub fn parse(text: &str) -> Result<Parsed, DescriptorError> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string().trim_end().to_string()))?;
    let version = doc
        .get("_")
        .and_then(Value::as_table)
        .and_then(|t| t.get("schema-version"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match version {
        "0.2" => {
            let empty = toml::Table::new();
            let t = doc
                .get("io")
                .and_then(Value::as_table)
                .and_then(|io| io.get("buildpacks"))
                .and_then(Value::as_table)
                .unwrap_or(&empty);
            section(t, true).map(Parsed::Build)
        }
        "" => {
            let empty = toml::Table::new();
            let t = doc.get("build").and_then(Value::as_table).unwrap_or(&empty);
            section(t, false).map(Parsed::Build)
        }
        other => Ok(Parsed::Unsupported(other.to_string())),
    }
}

/// Where things are, and how to show them in messages.
pub struct DescriptorPaths<'a> {
    /// `/workspace/<SOURCE_SUB_PATH>`.
    pub app_dir: &'a Path,
    /// `PROJECT_DESCRIPTOR_PATH` (relative to `app_dir`), or "".
    pub descriptor_path: &'a str,
    pub platform_dir: &'a Path,
    /// Maps a real path to what the logs should say (kpack's fixed paths).
    pub shown: &'a dyn Fn(&Path) -> String,
}

/// kpack's `ProcessProjectDescriptor`.
pub fn process(p: &DescriptorPaths<'_>, log: &dyn Fn(&str)) -> Result<(), DescriptorError> {
    let file: PathBuf = if p.descriptor_path.is_empty() {
        p.app_dir.join("project.toml")
    } else {
        p.app_dir.join(p.descriptor_path)
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if p.descriptor_path.is_empty() {
                return Ok(());
            }
            return Err(err(format!(
                "project descriptor path set but no file found: {}",
                (p.shown)(&file)
            )));
        }
        Err(e) => {
            return Err(err(format!(
                "unable to determine if project descriptor file exists: {}",
                crate::creds::go_io_error("stat", Path::new(&(p.shown)(&file)), &e)
            )))
        }
    };
    let d = match parse(&text)? {
        Parsed::Build(d) => d,
        Parsed::Unsupported(v) => {
            log(&format!(
                "warning: project descriptor version {v} is unsupported and {} will be ignored",
                (p.shown)(&file)
            ));
            return Ok(());
        }
    };
    if d.has_buildpacks {
        log("info: buildpacks provided in project descriptor file will be ignored");
    }
    if !d.builder.is_empty() {
        log("info: builder provided in project descriptor file will be ignored");
    }
    filter_files(p.app_dir, &d)?;
    for (name, value) in &d.env {
        platform_env::write_env(p.platform_dir, name, value).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Delete every non-directory whose path fails the include/exclude filter.
fn filter_files(app_dir: &Path, d: &BuildSection) -> Result<(), DescriptorError> {
    if d.include.is_some() && d.exclude.is_some() {
        return Err(err(
            "project descriptor cannot have both include and exclude defined",
        ));
    }
    let keep: Box<dyn Fn(&str) -> bool> = match (&d.include, &d.exclude) {
        (_, Some(ex)) if !ex.is_empty() => {
            let g = GitIgnore::new(ex);
            Box::new(move |p| !g.matches(p))
        }
        (Some(inc), _) if !inc.is_empty() => {
            let g = GitIgnore::new(inc);
            Box::new(move |p| g.matches(p))
        }
        _ => return Ok(()),
    };
    walk_remove(app_dir, app_dir, &*keep)
}

fn walk_remove(
    root: &Path,
    dir: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(), DescriptorError> {
    let io = |e: std::io::Error, p: &Path| err(format!("{}: {e}", p.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(e, dir))?
        .collect::<Result<_, _>>()
        .map_err(|e| io(e, dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        // Never follow symlinks: a link is a file here, as with Go's filepath.Walk.
        let ft = e.file_type().map_err(|x| io(x, &path))?;
        let rel = path
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        if ft.is_dir() {
            walk_remove(root, &path, keep)?;
        } else if !keep(&rel) {
            std::fs::remove_file(&path).map_err(|x| io(x, &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
