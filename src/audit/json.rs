//! JSON text written directly, byte for byte as `serde_json` writes it
//! (compact, its escapes, its number formats).
//!
//! Every audit record is encoded once for the store and the chain, and again
//! for each trail that mirrors it, so encoding is on the hot path of every
//! call. Written directly, a record takes about half serde's time (member
//! names are written as they are, without serde's per-field machinery or an
//! escape scan), and a rendering a quarter to two fifths of the time it takes
//! to build it as a `Value`. Almost no text in a record needs escaping, so
//! [`write_str`] checks sixteen bytes at a time, a loop the compiler can
//! vectorise. The output must stay identical to `serde_json`'s, because the
//! chain hashes the text and verifiers rebuild it with `serde_json`; tests
//! compare the two.

use std::fmt::Write as _;

use serde_json::Value;

/// Bytes checked together for characters that need escaping.
const CHUNK: usize = 16;

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte of `bytes` that needs escaping.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    let mut clean = 0;
    for chunk in bytes.chunks_exact(CHUNK) {
        // No early exit inside the chunk, so the compiler checks it as one vector.
        if chunk.iter().fold(false, |any, &byte| any | needs_escape(byte)) {
            break;
        }
        clean += CHUNK;
    }
    bytes[clean..].iter().position(|&byte| needs_escape(byte)).map(|at| clean + at)
}

/// Appends `s` as a JSON string.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while let Some(at) = first_to_escape(rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let byte = rest.as_bytes()[at];
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{byte:04x}");
            }
        }
        // The byte is ASCII, so the rest starts on a character boundary.
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Appends `value` as JSON text.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // Integers and floats print as serde_json prints them: it owns the float format.
            let text = serde_json::to_string(n).unwrap_or_else(|_| "null".to_owned());
            out.push_str(&text);
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (name, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, name);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Where a JSON document goes as it is described: written out as text
/// ([`Text`]) or built as a [`Value`] ([`Build`]). A rendering described once
/// against a sink gives both, and they cannot disagree.
pub trait Sink {
    fn begin_object(&mut self);
    fn end_object(&mut self);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    /// The name of the next member of the object being described. Names
    /// come from the code, never from data, so they are written without an
    /// escape scan.
    fn name(&mut self, name: &'static str);
    fn str(&mut self, value: &str);
    fn u64(&mut self, value: u64);
    fn i64(&mut self, value: i64);
    fn bool(&mut self, value: bool);
    fn null(&mut self);
    fn value(&mut self, value: &Value);

    fn str_member(&mut self, name: &'static str, value: &str) {
        self.name(name);
        self.str(value);
    }

    fn u64_member(&mut self, name: &'static str, value: u64) {
        self.name(name);
        self.u64(value);
    }

    /// `null` when absent, as serde writes a `None` it does not skip.
    fn opt_u64_member(&mut self, name: &'static str, value: Option<u64>) {
        self.name(name);
        match value {
            Some(value) => self.u64(value),
            None => self.null(),
        }
    }

    fn value_member(&mut self, name: &'static str, value: &Value) {
        self.name(name);
        self.value(value);
    }

    /// An array of strings.
    fn strings<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        self.begin_array();
        for item in items {
            self.str(item);
        }
        self.end_array();
    }
}

/// JSON text, as `serde_json` writes the same document.
#[derive(Default)]
pub struct Text {
    out: String,
    /// The object or array being written has a member already, so the next
    /// one needs a comma. One flag serves every level: opening a container
    /// starts it empty, and closing one leaves its parent with a member (the
    /// container itself).
    after_member: bool,
    /// A member's name was written and its value comes next.
    named: bool,
}

impl Text {
    /// Text expected to grow to about `bytes`.
    pub fn with_capacity(bytes: usize) -> Text {
        Text::reusing(String::with_capacity(bytes))
    }

    /// Text written into `buffer`, emptied first, so a caller writing one
    /// document after another allocates once.
    pub fn reusing(mut buffer: String) -> Text {
        buffer.clear();
        Text { out: buffer, after_member: false, named: false }
    }

    pub fn into_string(self) -> String {
        self.out
    }

    /// Before a name, or a value that has none: a comma after an earlier member.
    fn separate(&mut self) {
        if std::mem::take(&mut self.named) {
            return;
        }
        if std::mem::replace(&mut self.after_member, true) {
            self.out.push(',');
        }
    }

    /// A member's name, after a comma if it is not the first.
    fn write_name(&mut self, name: &'static str) {
        debug_assert!(first_to_escape(name.as_bytes()).is_none(), "{name:?} needs escaping");
        self.separate();
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
    }

    fn open(&mut self, bracket: char) {
        self.separate();
        self.out.push(bracket);
        self.after_member = false;
    }

    fn close(&mut self, bracket: char) {
        self.out.push(bracket);
        self.after_member = true;
    }
}

impl Sink for Text {
    fn begin_object(&mut self) {
        self.open('{');
    }
    fn end_object(&mut self) {
        self.close('}');
    }
    fn begin_array(&mut self) {
        self.open('[');
    }
    fn end_array(&mut self) {
        self.close(']');
    }
    fn name(&mut self, name: &'static str) {
        self.write_name(name);
        self.named = true;
    }
    fn str(&mut self, value: &str) {
        self.separate();
        write_str(&mut self.out, value);
    }
    fn u64(&mut self, value: u64) {
        self.separate();
        self.out.push_str(itoa::Buffer::new().format(value));
    }
    fn i64(&mut self, value: i64) {
        self.separate();
        self.out.push_str(itoa::Buffer::new().format(value));
    }
    fn bool(&mut self, value: bool) {
        self.separate();
        self.out.push_str(if value { "true" } else { "false" });
    }
    fn null(&mut self) {
        self.separate();
        self.out.push_str("null");
    }
    fn value(&mut self, value: &Value) {
        self.separate();
        write_value(&mut self.out, value);
    }

    // A record is mostly members with plain values: written in one step, without the `named` hand-over.
    fn str_member(&mut self, name: &'static str, value: &str) {
        self.write_name(name);
        write_str(&mut self.out, value);
    }
    fn u64_member(&mut self, name: &'static str, value: u64) {
        self.write_name(name);
        self.out.push_str(itoa::Buffer::new().format(value));
    }
    fn value_member(&mut self, name: &'static str, value: &Value) {
        self.write_name(name);
        write_value(&mut self.out, value);
    }
}

/// A [`Value`], built as it is described.
#[derive(Default)]
pub struct Build {
    open: Vec<Open>,
    done: Option<Value>,
}

enum Open {
    Object(serde_json::Map<String, Value>, Option<String>),
    Array(Vec<Value>),
}

impl Build {
    pub fn into_value(self) -> Value {
        self.done.unwrap_or_default()
    }

    fn put(&mut self, value: Value) {
        match self.open.last_mut() {
            Some(Open::Object(map, name)) => {
                map.insert(name.take().unwrap_or_default(), value);
            }
            Some(Open::Array(items)) => items.push(value),
            None => self.done = Some(value),
        }
    }
}

impl Sink for Build {
    fn begin_object(&mut self) {
        self.open.push(Open::Object(serde_json::Map::new(), None));
    }
    fn end_object(&mut self) {
        if let Some(Open::Object(map, _)) = self.open.pop() {
            self.put(Value::Object(map));
        }
    }
    fn begin_array(&mut self) {
        self.open.push(Open::Array(Vec::new()));
    }
    fn end_array(&mut self) {
        if let Some(Open::Array(items)) = self.open.pop() {
            self.put(Value::Array(items));
        }
    }
    fn name(&mut self, name: &'static str) {
        if let Some(Open::Object(_, next)) = self.open.last_mut() {
            *next = Some(name.to_owned());
        }
    }
    fn str(&mut self, value: &str) {
        self.put(Value::from(value));
    }
    fn u64(&mut self, value: u64) {
        self.put(Value::from(value));
    }
    fn i64(&mut self, value: i64) {
        self.put(Value::from(value));
    }
    fn bool(&mut self, value: bool) {
        self.put(Value::Bool(value));
    }
    fn null(&mut self) {
        self.put(Value::Null);
    }
    fn value(&mut self, value: &Value) {
        self.put(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(value: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, value);
        out
    }

    #[test]
    fn every_escape_is_serde_jsons() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        for s in [&every_ascii[..], "", "plain", "\"", "\\", "naïve ünïcode ✓ 𝄞", "\u{7f}\u{80}\u{2028}"] {
            let value = Value::String(s.to_owned());
            assert_eq!(written(&value), serde_json::to_string(&value).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn numbers_and_nesting_are_serde_jsons() {
        let value = serde_json::json!({
            "n": [0, -1, u64::MAX, i64::MIN, 1.5, -0.0, 1e300, 2.5e-8],
            "o": {"": null, "t": true, "f": false, "\n": {"a": []}},
        });
        assert_eq!(written(&value), serde_json::to_string(&value).unwrap());
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            // Mostly printable text with the odd character to escape, as records hold.
            "[ -~]{0,40}[\"\\\\\u{0}-\u{1f}]?[ -~]{0,40}".prop_map(Value::String),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// Member names a description may use: they come from the code, so a fixed set.
    const NAMES: [&str; 4] = ["a", "eventId", "ACS::KMS::Key", ""];

    /// A document whose object members are named from [`NAMES`] and whose leaves are whole values.
    fn described() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(&NAMES[..]), inner), 0..6).prop_map(|members| {
                    Value::Object(members.into_iter().map(|(name, value)| (name.to_owned(), value)).collect())
                }),
            ]
        })
    }

    /// Describes `value` to `sink` member by member, down to its leaves, with
    /// every kind of call a description makes: members in one call or as a
    /// name and a value, leaves typed or as whole values.
    fn describe(value: &Value, sink: &mut impl Sink) {
        match value {
            Value::Array(items) => {
                sink.begin_array();
                items.iter().for_each(|item| describe(item, sink));
                sink.end_array();
            }
            Value::Object(members) => {
                sink.begin_object();
                for (name, item) in members {
                    let name = NAMES.into_iter().find(|n| n == name).expect("names come from NAMES");
                    match item {
                        Value::String(s) => sink.str_member(name, s),
                        Value::Number(n) if n.is_u64() => sink.u64_member(name, n.as_u64().unwrap_or_default()),
                        Value::Null => sink.opt_u64_member(name, None),
                        Value::Array(_) | Value::Object(_) => {
                            sink.name(name);
                            describe(item, sink);
                        }
                        other => sink.value_member(name, other),
                    }
                }
                sink.end_object();
            }
            Value::String(s) => sink.str(s),
            Value::Bool(b) => sink.bool(*b),
            Value::Null => sink.null(),
            Value::Number(n) if n.is_u64() => sink.u64(n.as_u64().unwrap_or_default()),
            Value::Number(n) if n.is_i64() => sink.i64(n.as_i64().unwrap_or_default()),
            other => sink.value(other),
        }
    }

    proptest! {
        #[test]
        fn any_value_is_written_as_serde_json_writes_it(value in json()) {
            prop_assert_eq!(written(&value), serde_json::to_string(&value).unwrap());
        }

        #[test]
        fn any_description_gives_the_same_text_and_value(value in described()) {
            let mut text = Text::default();
            describe(&value, &mut text);
            prop_assert_eq!(text.into_string(), serde_json::to_string(&value).unwrap());
            let mut build = Build::default();
            describe(&value, &mut build);
            prop_assert_eq!(build.into_value(), value);
        }
    }
}
