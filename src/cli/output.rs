//! Rendering command results: stable JSON for scripts, aligned text for people.

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Renders `value`: as pretty JSON, or as `field  value` lines where a list of
/// objects becomes a table with one column per field.
pub fn render(value: &Value, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        OutputFormat::Table => {
            let mut out = String::new();
            render_table(value, &mut out);
            out.trim_end().to_owned()
        }
    }
}

/// The part of `value` at a dotted `path` (`keyId`, `keys.0.keyId`) as one line for a shell: a string raw, anything
/// else as compact JSON. A segment names an object field, or indexes an array when it is a number.
pub fn select(value: &Value, path: &str) -> Result<String, String> {
    let mut at = value;
    for (i, segment) in path.split('.').enumerate() {
        let here = || path.split('.').take(i).collect::<Vec<_>>().join(".");
        if segment.is_empty() {
            return Err(format!("--query {path:?}: empty path segment"));
        }
        let next = match at {
            Value::Object(fields) => fields.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|n| items.get(n)),
            _ => None,
        };
        at = next.ok_or_else(|| match at {
            Value::Array(items) => {
                format!("--query {path:?}: no item {segment:?} in the {} items of {:?}", items.len(), here())
            }
            Value::Object(fields) => format!(
                "--query {path:?}: no field {segment:?}{}; there are: {}",
                if i == 0 { String::new() } else { format!(" in {:?}", here()) },
                fields.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ),
            other => format!("--query {path:?}: {:?} is {other}, which has no field {segment:?}", here()),
        })?;
    }
    Ok(match at {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// One page of a listing: the `events`, and `nextPageToken` only when there is a next page, so a
/// table does not start with an empty token row and a script tests for the field's presence.
pub fn page(events: Vec<Value>, next_page_token: String) -> Value {
    let mut page = serde_json::Map::new();
    if !next_page_token.is_empty() {
        page.insert("nextPageToken".into(), Value::String(next_page_token));
    }
    page.insert("events".into(), Value::Array(events));
    Value::Object(page)
}

fn render_table(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let width = fields.keys().map(String::len).max().unwrap_or(0);
            let mut lists = Vec::new();
            for (name, field) in fields {
                if is_list_of_objects(field) {
                    lists.push(field);
                } else {
                    // An empty value leaves no trailing blanks.
                    out.push_str(format!("{name:<width$}  {}", scalar(field)).trim_end());
                    out.push('\n');
                }
            }
            for list in lists {
                // A blank line sets a table apart from what is above it, if anything is.
                if !out.is_empty() {
                    out.push('\n');
                }
                render_table(list, out);
            }
        }
        // Without rows there are no columns to head.
        Value::Array(items) if items.is_empty() => out.push_str("(none)\n"),
        Value::Array(items) if is_list_of_objects(value) => {
            let mut columns: Vec<&String> = Vec::new();
            for item in items {
                for name in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !columns.contains(&name) {
                        columns.push(name);
                    }
                }
            }
            let cells: Vec<Vec<String>> = items
                .iter()
                .map(|item| columns.iter().map(|c| item.get(c.as_str()).map(scalar).unwrap_or_default()).collect())
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| cells.iter().map(|row| row[i].len()).max().unwrap_or(0).max(c.len()))
                .collect();
            let line = |row: Vec<&str>| {
                row.iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            out.push_str(&line(columns.iter().map(|c| c.as_str()).collect()));
            out.push('\n');
            for row in &cells {
                out.push_str(&line(row.iter().map(String::as_str).collect()));
                out.push('\n');
            }
        }
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn is_list_of_objects(value: &Value) -> bool {
    matches!(value, Value::Array(items) if items.iter().all(Value::is_object))
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Prints a command's report: the field `query` names, raw; else the JSON, or
/// `table` of it. A bad path is the command's failure.
pub fn emit(report: &Value, format: OutputFormat, query: Option<&str>, table: impl Fn(&Value) -> String) -> ExitCode {
    let text = match (query, format) {
        (Some(path), _) => match select(report, path) {
            Ok(field) => field,
            Err(e) => {
                print_error(&e);
                return ExitCode::FAILURE;
            }
        },
        (None, OutputFormat::Json) => serde_json::to_string_pretty(report).unwrap_or_default(),
        (None, OutputFormat::Table) => table(report),
    };
    finish_with(print_line(&text))
}

/// What became of output written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    Written,
    /// Whoever read it has gone (`kmsim key list | head -1`): the rest is unwanted, and the command is done.
    Closed,
}

/// Writes `text` and a newline to stdout, at once (a stream's lines must not
/// wait in a buffer). `println!` would panic once the reader has gone; that
/// is [`Stdout::Closed`] here, and only other failures (a full disk) are errors.
pub fn print_line(text: &str) -> std::io::Result<Stdout> {
    let mut out = std::io::stdout().lock();
    let line = format!("{text}\n");
    stdout_result(out.write_all(line.as_bytes()).and_then(|()| out.flush()))
}

/// Writes raw bytes to stdout, as [`print_line`] writes a line.
pub fn print_bytes(bytes: &[u8]) -> std::io::Result<Stdout> {
    let mut out = std::io::stdout().lock();
    stdout_result(out.write_all(bytes).and_then(|()| out.flush()))
}

/// A write to stdout whose reader has gone is [`Stdout::Closed`], not an error.
pub fn stdout_result(written: std::io::Result<()>) -> std::io::Result<Stdout> {
    match written {
        Ok(()) => Ok(Stdout::Written),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(Stdout::Closed),
        Err(e) => Err(e),
    }
}

/// The exit code of a command whose last act was printing: a reader that left
/// early took what it wanted, so that is success too.
pub fn finish_with(printed: std::io::Result<Stdout>) -> ExitCode {
    match printed {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&format!("writing the output: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes `message` and a newline to stderr. `eprintln!` would panic if stderr
/// were closed; then there is nobody to tell, and the exit code says it.
pub fn print_error(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_render_as_fields_and_lists_as_tables() {
        let value = json!({"totalCount": 2, "keys": [{"keyId": "a", "arn": "x"}, {"keyId": "bb", "arn": "y"}]});
        let table = render(&value, OutputFormat::Table);
        assert_eq!(table, "totalCount  2\n\nkeyId  arn\na      x\nbb     y");
        assert!(render(&value, OutputFormat::Json).contains("\"totalCount\": 2"));
    }

    #[test]
    fn a_page_names_its_next_page_only_when_there_is_one() {
        let events = || vec![json!({"eventName": "Encrypt"})];
        assert_eq!(render(&page(events(), String::new()), OutputFormat::Table), "eventName\nEncrypt");
        assert_eq!(page(events(), String::new()), json!({"events": [{"eventName": "Encrypt"}]}));
        let more = page(events(), "t-1".into());
        assert_eq!(render(&more, OutputFormat::Table), "nextPageToken  t-1\n\neventName\nEncrypt");
    }

    #[test]
    fn queries_pick_one_field_for_a_shell() {
        let value = json!({
            "keyId": "k-1",
            "count": 2,
            "keys": [{"keyId": "a", "tags": {"env": "prod"}}, {"keyId": "b"}],
            "none": null,
        });
        assert_eq!(select(&value, "keyId"), Ok("k-1".into()));
        assert_eq!(select(&value, "count"), Ok("2".into()));
        assert_eq!(select(&value, "keys.1.keyId"), Ok("b".into()));
        assert_eq!(select(&value, "keys.0.tags"), Ok(r#"{"env":"prod"}"#.into()));
        assert_eq!(select(&value, "none"), Ok("null".into()));
        let missing = select(&value, "keyid").unwrap_err();
        assert!(missing.contains("no field \"keyid\"") && missing.contains("keyId, count, keys, none"), "{missing}");
        assert!(select(&value, "keys.2.keyId").unwrap_err().contains("no item \"2\" in the 2 items of \"keys\""));
        assert!(select(&value, "keyId.x").unwrap_err().contains("has no field \"x\""));
        assert!(select(&value, "keys.first").is_err());
        assert!(select(&value, "").is_err());
        assert!(select(&value, "keys..keyId").is_err());
    }
}
