//! Output formats: aligned plain-text tables and key/value blocks for humans, or exactly one JSON / YAML
//! document on stdout for machines.

use std::io::Write;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned columns / key-value lines for humans.
    #[default]
    Table,
    /// Pretty-printed JSON: exactly one document on stdout.
    Json,
    /// YAML: exactly one document on stdout.
    Yaml,
}

/// Renders `value` as a JSON (pretty) or YAML document, newline-terminated. `Table` falls back to JSON;
/// callers print their own tables.
pub fn render_doc<T: Serialize>(format: Format, value: &T) -> Result<String> {
    let mut text = match format {
        Format::Yaml => serde_saphyr::to_string(value).context("cannot render YAML")?,
        Format::Json | Format::Table => serde_json::to_string_pretty(value).context("cannot render JSON")?,
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Prints `value` as a JSON/YAML document on stdout.
pub fn print_doc<T: Serialize>(format: Format, value: &T) -> Result<()> {
    let text = render_doc(format, value)?;
    write_stdout(&text)
}

/// Writes text to stdout; a closed pipe (`maxcloud list | head -1`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Text for an absent optional value in tables.
pub const NONE: &str = "-";

pub fn opt(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => NONE.to_string(),
    }
}

/// Folds line breaks and runs of whitespace so a cell stays on one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A plain table: a header row and rows, columns separated by three spaces, the last column unpadded.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells.into_iter().map(|c| one_line(&c.into())).collect();
        cells.resize(self.headers.len().max(cells.len()), String::new());
        self.rows.push(cells);
        self
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).chain([self.headers.len()]).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("   ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Aligned `key:  value` lines.
#[derive(Debug, Clone, Default)]
pub struct KeyValues {
    pairs: Vec<(String, String)>,
}

impl KeyValues {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.pairs.push((key.into(), one_line(&value.into())));
        self
    }

    pub fn render(&self) -> String {
        let width = self.pairs.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.pairs {
            let label = format!("{key}:");
            let pad = width - label.chars().count();
            let line = format!("{label}{}  {value}", " ".repeat(pad));
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_leaves_last_unpadded() {
        let mut t = Table::new(["NAME", "STATUS", "URL"]);
        t.row(["shop", "ready", "https://shop.example"]);
        t.row(["a-much-longer-name", "pending", "-"]);
        assert_eq!(
            t.render(),
            "NAME                 STATUS    URL\n\
             shop                 ready     https://shop.example\n\
             a-much-longer-name   pending   -\n"
        );
    }

    #[test]
    fn table_cells_stay_on_one_line() {
        let mut t = Table::new(["A", "B"]);
        t.row(["x\ny", "multi\n  line"]);
        assert_eq!(t.render(), "A     B\nx y   multi line\n");
    }

    #[test]
    fn key_values_align() {
        let mut kv = KeyValues::new();
        kv.add("name", "shop").add("status", "ready").add("url", "");
        assert_eq!(kv.render(), "name:    shop\nstatus:  ready\nurl:\n");
    }

    #[test]
    fn json_and_yaml_documents() {
        let v = serde_json::json!({"a": 1, "b": ["x"]});
        assert_eq!(render_doc(Format::Json, &v).unwrap(), "{\n  \"a\": 1,\n  \"b\": [\n    \"x\"\n  ]\n}\n");
        let yaml = render_doc(Format::Yaml, &v).unwrap();
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, v);
    }
}
