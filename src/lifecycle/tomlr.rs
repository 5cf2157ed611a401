//! Reading TOML files with errors that name the file and the field at fault.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum TomlError {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {}: {}", path.display(), message.trim_end())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: field `{field}`: {reason}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

impl TomlError {
    pub fn path(&self) -> &Path {
        match self {
            TomlError::Read { path, .. }
            | TomlError::Syntax { path, .. }
            | TomlError::Field { path, .. } => path,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, TomlError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads and parses `path` into a table.
pub fn read(path: &Path) -> Result<Table, TomlError> {
    let text = std::fs::read_to_string(path).map_err(|source| TomlError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Table, TomlError> {
    text.parse::<Table>().map_err(|e| TomlError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A table being read, with the path of keys that led to it (for error messages).
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    pub file: &'a Path,
    prefix: &'a str,
    pub table: &'a Table,
}

/// A key path like `processes[1]`, built lazily only when needed.
struct KeyPath<'a>(&'a str, &'a str);

impl fmt::Display for KeyPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(self.1)
        } else {
            write!(f, "{}.{}", self.0, self.1)
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'a> Fields<'a> {
    pub fn root(file: &'a Path, table: &'a Table) -> Self {
        Self {
            file,
            prefix: "",
            table,
        }
    }

    /// An error about `key` in this table.
    pub fn err(&self, key: &str, reason: impl Into<String>) -> TomlError {
        TomlError::Field {
            path: self.file.to_path_buf(),
            field: KeyPath(self.prefix, key).to_string(),
            reason: reason.into(),
        }
    }

    fn wrong(&self, key: &str, want: &str, got: &Value) -> TomlError {
        self.err(key, format!("expected {want}, found {}", kind(got)))
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key)
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, TomlError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    /// A string that must be present and non-empty.
    pub fn req_str(&self, key: &str) -> Result<String, TomlError> {
        match self.str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.err(key, "must not be empty")),
            None => Err(self.err(key, "is required")),
        }
    }

    pub fn str_or_empty(&self, key: &str) -> Result<String, TomlError> {
        Ok(self.str(key)?.unwrap_or_default())
    }

    pub fn bool(&self, key: &str) -> Result<bool, TomlError> {
        match self.table.get(key) {
            None => Ok(false),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.wrong(key, "a boolean", v)),
        }
    }

    pub fn str_array(&self, key: &str) -> Result<Vec<String>, TomlError> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected a string, found {}", kind(other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "an array of strings", v)),
        }
    }

    /// A sub-table, or `None` when absent; read it with [`Fields::child`].
    pub fn table(&self, key: &str) -> Result<Option<&'a Table>, TomlError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(v) => Err(self.wrong(key, "a table", v)),
        }
    }

    /// An array of tables (`[[key]]`); absent means empty.
    pub fn tables(&self, key: &str) -> Result<Vec<&'a Table>, TomlError> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Table(t) => Ok(t),
                    other => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected a table, found {}", kind(other)),
                    )),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "an array of tables", v)),
        }
    }

    /// Reads a child table with `name` as the key path prefix, e.g. `processes[0]`.
    pub fn child<T>(
        &self,
        name: &str,
        table: &Table,
        f: impl FnOnce(Fields<'_>) -> Result<T, TomlError>,
    ) -> Result<T, TomlError> {
        let prefix = KeyPath(self.prefix, name).to_string();
        f(Fields {
            file: self.file,
            prefix: &prefix,
            table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_and_nested_field() {
        let p = Path::new("/x/launch.toml");
        let t = parse(p, "[[processes]]\ntype = 1\n").unwrap();
        let root = Fields::root(p, &t);
        let procs = root.tables("processes").unwrap();
        let err = root
            .child("processes[0]", procs[0], |f| f.req_str("type"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/x/launch.toml: field `processes[0].type`: expected a string, found an integer"
        );
        let err = parse(p, "a = ").unwrap_err();
        assert!(
            err.to_string().starts_with("parse /x/launch.toml: "),
            "{err}"
        );
    }
}
