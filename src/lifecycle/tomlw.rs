//! Writing TOML the way the reference lifecycle does (Go BurntSushi/toml layout): plain keys
//! first, then sub-tables; nested tables indented two spaces per level; a blank line before each
//! `[[array]]` entry and each top-level table. Keeps our files byte-comparable with Go's.

use std::fmt::Write;

use toml::Value;

/// An ordered table: struct-like data keeps its declared key order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tbl(pub Vec<(String, Item)>);

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Any scalar or inline array.
    Value(Value),
    Table(Tbl),
    Tables(Vec<Tbl>),
}

impl Tbl {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn str(mut self, k: &str, v: impl Into<String>) -> Self {
        self.0
            .push((k.into(), Item::Value(Value::String(v.into()))));
        self
    }

    /// Adds a string only when non-empty (Go `omitempty`).
    pub fn str_opt(self, k: &str, v: &str) -> Self {
        if v.is_empty() {
            self
        } else {
            self.str(k, v)
        }
    }

    pub fn bool(mut self, k: &str, v: bool) -> Self {
        self.0.push((k.into(), Item::Value(Value::Boolean(v))));
        self
    }

    pub fn strs(mut self, k: &str, v: &[String]) -> Self {
        let arr = v.iter().cloned().map(Value::String).collect();
        self.0.push((k.into(), Item::Value(Value::Array(arr))));
        self
    }

    pub fn strs_opt(self, k: &str, v: &[String]) -> Self {
        if v.is_empty() {
            self
        } else {
            self.strs(k, v)
        }
    }

    pub fn table(mut self, k: &str, t: Tbl) -> Self {
        self.0.push((k.into(), Item::Table(t)));
        self
    }

    pub fn tables(mut self, k: &str, ts: Vec<Tbl>) -> Self {
        self.0.push((k.into(), Item::Tables(ts)));
        self
    }

    /// Adds `[[k]]` entries only when there are some.
    pub fn tables_opt(self, k: &str, ts: Vec<Tbl>) -> Self {
        if ts.is_empty() {
            self
        } else {
            self.tables(k, ts)
        }
    }

    /// Converts free-form TOML data; map keys are sorted, as Go sorts map keys.
    pub fn from_toml(t: &toml::Table) -> Tbl {
        let mut keys: Vec<&String> = t.keys().collect();
        keys.sort();
        Tbl(keys
            .into_iter()
            .map(|k| (k.clone(), Item::from_value(&t[k])))
            .collect())
    }

    /// Renders a whole document.
    pub fn render(&self) -> String {
        let mut w = Writer::default();
        w.body(&[], self);
        w.out
    }
}

impl Item {
    fn from_value(v: &Value) -> Item {
        match v {
            Value::Table(t) => Item::Table(Tbl::from_toml(t)),
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_table) => Item::Tables(
                a.iter()
                    .filter_map(Value::as_table)
                    .map(Tbl::from_toml)
                    .collect(),
            ),
            other => Item::Value(other.clone()),
        }
    }

    fn is_direct(&self) -> bool {
        matches!(self, Item::Value(_))
    }
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn body(&mut self, path: &[String], t: &Tbl) {
        let indent = "  ".repeat(path.len());
        for (k, v) in t.0.iter().filter(|(_, v)| v.is_direct()) {
            if let Item::Value(v) = v {
                let _ = writeln!(self.out, "{indent}{} = {}", key(k), value(v));
            }
        }
        for (k, v) in t.0.iter().filter(|(_, v)| !v.is_direct()) {
            let mut sub = path.to_vec();
            sub.push(k.clone());
            let head = "  ".repeat(path.len());
            let dotted = sub.iter().map(|s| key(s)).collect::<Vec<_>>().join(".");
            match v {
                Item::Table(t) => {
                    if sub.len() == 1 {
                        self.newline();
                    }
                    let _ = writeln!(self.out, "{head}[{dotted}]");
                    self.body(&sub, t);
                }
                Item::Tables(ts) => {
                    for t in ts {
                        self.newline();
                        let _ = writeln!(self.out, "{head}[[{dotted}]]");
                        self.body(&sub, t);
                    }
                }
                Item::Value(_) => {}
            }
        }
    }
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A TOML basic string, escaped as BurntSushi's encoder does.
pub fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Array(a) => {
            let inner: Vec<String> = a.iter().map(value).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Table(t) => {
            let mut keys: Vec<&String> = t.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{} = {}", key(k), value(&t[k])))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_layout_matches_go() {
        let meta: toml::Table = "version = \"1.2\"\n[x]\na = 1".parse().unwrap();
        let doc = Tbl::new().tables(
            "entries",
            vec![Tbl::new()
                .tables(
                    "providers",
                    vec![Tbl::new().str("id", "A").str("version", "v1")],
                )
                .tables(
                    "requires",
                    vec![Tbl::new()
                        .str("name", "dep")
                        .table("metadata", Tbl::from_toml(&meta))],
                )],
        );
        let want = "[[entries]]\n\n  [[entries.providers]]\n    id = \"A\"\n    version = \"v1\"\n\n  [[entries.requires]]\n    name = \"dep\"\n    [entries.requires.metadata]\n      version = \"1.2\"\n      [entries.requires.metadata.x]\n        a = 1\n";
        assert_eq!(doc.render(), want);
        let back: toml::Table = want.parse().unwrap();
        assert_eq!(
            back["entries"][0]["requires"][0]["metadata"]["x"]["a"].as_integer(),
            Some(1)
        );
    }

    #[test]
    fn top_level_scalars_then_blank_line_tables() {
        let doc = Tbl::new()
            .tables("group", vec![Tbl::new().str("id", "a\"b")])
            .str("k", "v");
        assert_eq!(doc.render(), "k = \"v\"\n\n[[group]]\n  id = \"a\\\"b\"\n");
    }
}
