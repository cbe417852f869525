//! The audit-log search language: the Alibaba Simple Log Service (SLS) / ActionTrail search syntax, parsed into a
//! [`Query`] and evaluated against audit records held as JSON documents.
//!
//! # Syntax
//!
//! - `field: value` searches one field; a term without a field searches every value in the document.
//! - `"…"` is a literal phrase: operators, `:` and wildcards inside it are ordinary characters. `\` escapes the
//!   next character inside or outside quotes (`Rejected\.Disabled`, `"a \"quoted\" word"`).
//! - `and`, `or`, `not` in any case, and parentheses. Terms separated only by whitespace are ANDed.
//!   Precedence, tightest first: `and`, then `not`, then `or`. `not` is set difference: `a not b` is
//!   "`a` and not `b`", a leading `not b` is "everything but `b`", and `a and not b` means `a not b`. Because
//!   `and` binds tighter, `not a and b` is `not (a and b)` and `a not b c` is `a not (b and c)`.
//! - `*` alone matches every document. Inside a keyword `*` is any run of characters and `?` exactly one, but a
//!   keyword may not start with a wildcard. `field: *` asks for the field to be present and non-empty.
//! - `field > 3`, `>=`, `<`, `<=`, `=` compare numbers; `field in [100 200)` is a range whose `[`/`]` ends are
//!   inclusive and `(`/`)` ends exclusive. `in` (any case) is an operator only right after a field name.
//! - Field names are dotted paths such as `event.userIdentity.accessKeyId`, matched case-sensitively.
//! - SLS's analytic statements (`search | select count(*)`) are not supported: an unquoted `|` is refused, naming
//!   the statement, rather than searched for as text. A `|` inside quotes or escaped (`\|`) is an ordinary character.
//!
//! A [`Query`] displays as canonical query text that parses back to an equal query (see `print.rs`).
//!
//! # Matching
//!
//! - A field resolves through nested objects (`{"a":{"b":…}}`), keys that contain dots (`{"a.b":…}`) or any mix
//!   of the two; arrays along the way are searched element by element. What the field holds is reduced to its
//!   scalar leaves: strings as written, numbers and booleans as their JSON text, null as no value at all.
//! - Text matching ignores case. A value is split into tokens at whitespace and `` ,'";=()[]{}?@&<>/: `` (the SLS
//!   default delimiters; note that `.` and `-` do not split). A keyword matches a value when it matches the whole
//!   value or, split the same way, matches a contiguous run of the value's tokens. So a single-token keyword
//!   needs only one matching token, and a keyword containing delimiters (quoted or not) acts as a phrase.
//!   Wildcards apply within a token or across the whole value.
//! - A term without a field matches if any leaf anywhere in the document matches; field names are not searched.
//! - Comparisons and ranges consider only leaves that are JSON numbers or strings parsing as finite numbers.
//! - With several leaves (arrays, nested objects, a field found under both spellings), one matching leaf is enough.

mod ast;
mod eval;
mod lexer;
mod parser;
mod print;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A parsed search, ready to be matched against many documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    expr: ast::Expr,
}

impl Query {
    /// Parses a query; an empty or whitespace-only query matches everything.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        parser::parse(text).map(|expr| Query { expr })
    }

    /// How many searches the query makes of each document: what a scan costs per record.
    pub fn term_count(&self) -> usize {
        self.expr.term_count()
    }

    pub fn matches(&self, document: &Value) -> bool {
        self.expr.matches(document)
    }

    /// The field searches that every matching document satisfies: the query
    /// itself, or the terms of its top-level `and`. A caller can pre-filter
    /// on their [`pieces`](RequiredTerm::pieces) without ever losing a match.
    pub fn required_terms(&self) -> Vec<RequiredTerm<'_>> {
        let mut required = Vec::new();
        self.expr.collect_required_matches(&mut required);
        required.into_iter().map(|(field, pattern)| RequiredTerm { field, pattern }).collect()
    }

    /// Every field name the query mentions, in order of first mention, so a caller can pre-filter on them.
    pub fn fields(&self) -> Vec<String> {
        let mut fields = Vec::new();
        self.expr.collect_fields(&mut fields);
        fields
    }
}

/// A `field: keyword` search that every document a query matches satisfies.
#[derive(Debug, Clone, Copy)]
pub struct RequiredTerm<'a> {
    pub field: &'a str,
    pattern: &'a ast::Pattern,
}

impl RequiredTerm<'_> {
    /// Pieces of text, lower-cased, that any value matching the keyword
    /// contains. They hold only characters `keep` accepts; the rest cut them.
    pub fn pieces(&self, keep: impl Fn(char) -> bool) -> Vec<String> {
        self.pattern.literal_pieces(keep)
    }

    /// Whether the keyword matches `value`, as it would in a document.
    pub fn matches(&self, value: &str) -> bool {
        self.pattern.matches(value)
    }
}

impl FromStr for Query {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Query, QueryError> {
        Query::parse(text)
    }
}

/// Why a query could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 1-based character column in the query text; one past the end when the query stops too early.
    pub position: usize,
    pub message: String,
    /// Valid SLS that kmsim does not run (an analytic statement), rather than malformed text.
    pub unsupported: bool,
}

impl QueryError {
    fn new(position: usize, message: impl Into<String>) -> QueryError {
        QueryError { position, message: message.into(), unsupported: false }
    }

    fn unsupported(position: usize, message: impl Into<String>) -> QueryError {
        QueryError { position, message: message.into(), unsupported: true }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "at column {}: {}", self.position, self.message)
    }
}

impl std::error::Error for QueryError {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY_ID: &str = "key-szz63dc8c429ermur1234";

    /// An ActionTrail-shaped KMS record; `error_code` is empty on success.
    fn record(event_name: &str, read_write: &str, error_code: &str, key_id: &str) -> Value {
        json!({"event": {
            "serviceName": "Kms",
            "eventRW": read_write,
            "eventName": event_name,
            "errorCode": error_code,
            "userIdentity": {"accessKeyId": "LTAI5tExampleKey"},
            "requestParameters": {"KeyId": key_id, "SecretName": "db-password"},
        }})
    }

    fn matches(query: &str, document: &Value) -> bool {
        Query::parse(query).unwrap_or_else(|error| panic!("{query}: {error}")).matches(document)
    }

    #[test]
    fn seed_queries_match_and_reject_records() {
        let read = record("Decrypt", "Read", "", KEY_ID);
        let query = format!(r#"* AND (event.serviceName: "Kms") AND (event.eventRW: "Read") AND "{KEY_ID}""#);
        assert!(matches(&query, &read));
        assert!(!matches(&query, &record("Decrypt", "Read", "", "key-other")));
        assert!(!matches(&query, &record("DisableKey", "Write", "", KEY_ID)));

        for code in ["Rejected.Disabled", "Rejected.PendingDeletion", "Rejected.Unavailable"] {
            let query = format!(r#"* AND (event.serviceName: "Kms") AND (event.errorCode:"{code}")"#);
            assert!(matches(&query, &record("Encrypt", "Read", code, KEY_ID)), "{query}");
            assert!(!matches(&query, &read), "{query}");
        }

        let query = r#"* AND (event.serviceName: "Kms") AND (event.eventName: "GetSecretValue") AND "db-password""#;
        assert!(matches(query, &record("GetSecretValue", "Read", "", KEY_ID)));
        let mut other_secret = record("GetSecretValue", "Read", "", KEY_ID);
        other_secret["event"]["requestParameters"]["SecretName"] = json!("api-token");
        assert!(!matches(query, &other_secret));
        assert!(!matches(query, &read));

        assert!(matches("event.userIdentity.accessKeyId: *", &read));
        assert!(!matches("event.userIdentity.accessKeyId: *", &json!({"event": {"userIdentity": {"type": "system"}}})));
        let failed = record("Encrypt", "Read", "Rejected.Disabled", KEY_ID);
        assert!(matches("event.errorCode: * AND event.userIdentity.accessKeyId: *", &failed));
        assert!(!matches("event.errorCode: * AND event.userIdentity.accessKeyId: *", &read), "errorCode is empty");

        // The docs' placeholder ids stand for real ones, which may also be UUIDs inside an ARN.
        let uuid = "0d603b4a-1a2b-4c5d-8e9f-0123456789ab";
        let arn = format!("acs:kms:cn-hangzhou:1192853035118460:key/{uuid}");
        let document = json!({"event": {"serviceName": "Kms", "resourceName": arn}});
        assert!(matches(&format!(r#"* AND (event.serviceName: "Kms") AND "{uuid}""#), &document));
        assert!(!matches(r#"* AND (event.serviceName: "Kms") AND "0d603b4a-1a2b""#, &document));
    }

    #[test]
    fn required_terms_are_the_field_searches_every_match_satisfies() {
        fn required_text(query: &Query, keep: impl Fn(char) -> bool + Copy) -> Vec<(&str, Vec<String>)> {
            query.required_terms().into_iter().map(|term| (term.field, term.pieces(keep))).collect()
        }
        let query: Query =
            r#"a: Rejected.Dis* AND (b: x OR c: y) AND e: "Ab%c:d\"e" f: k?y_1 NOT d: z"#.parse().unwrap();
        let plain = |c: char| c.is_ascii_graphic() && c != '"';
        // `or` and `not` terms promise nothing; wildcards, delimiters and refused characters cut pieces.
        assert_eq!(
            required_text(&query, plain),
            [
                ("a", vec!["rejected.dis".to_owned()]),
                ("e", vec!["ab%c".into(), "d".into(), "e".into()]),
                ("f", vec!["k".into(), "y_1".into()])
            ]
        );
        assert_eq!(required_text(&"x: Kelvin".parse().unwrap(), plain), [("x", vec!["kelvin".to_owned()])]);
        for nothing_required in ["*", "a: x OR b: y", "NOT a: x", "b NOT a: x AND c: y", "a: *", "a > 3", "bare"] {
            let query: Query = nothing_required.parse().unwrap();
            assert!(required_text(&query, plain).iter().all(|(_, pieces)| pieces.is_empty()), "{nothing_required}");
        }
    }

    #[test]
    fn fields_lists_each_mentioned_field_once() {
        let query = Query::parse("a: x or (b > 3 and not a: y) c in [1 2] d: * plain").unwrap();
        assert_eq!(query.fields(), ["a", "b", "c", "d"]);
        assert_eq!("event.errorCode: *".parse::<Query>().unwrap().fields(), ["event.errorCode"]);
    }

    #[test]
    fn an_analytic_statement_is_refused_naming_it_and_a_quoted_pipe_is_text() {
        let error = Query::parse("eventName: Decrypt | select count(*)").unwrap_err();
        assert!(error.unsupported, "{error}");
        assert_eq!(error.position, 20, "{error}");
        assert!(error.message.contains(r#""select count(*)""#), "{error}");
        assert!(error.message.contains("not supported"), "{error}");
        // However the pipe is written: alone, glued to a word, or ending the query.
        for text in ["a|select count(*)", "a: b |", "| select *", "(a or b) | select key_id, count(*) group by key_id"]
        {
            let error = Query::parse(text).unwrap_err();
            assert!(error.unsupported, "{text}: {error}");
            assert_eq!(text.chars().nth(error.position - 1), Some('|'), "{text}: {error}");
        }
        // Malformed text before the pipe is still malformed.
        assert!(!Query::parse("a: \"open | select 1").unwrap_err().unsupported);

        let document = json!({"event": {"requestParameters": {"Description": "a|b"}}});
        for text in [r#""a|b""#, r"a\|b", r#"event.requestParameters.Description: "a|b""#] {
            let query = Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(query.matches(&document), "{text}");
            let printed = query.to_string();
            assert_eq!(Query::parse(&printed).as_ref(), Ok(&query), "{text} printed as {printed}");
        }
    }

    #[test]
    fn errors_display_their_column() {
        let error = "a and (b or c".parse::<Query>().unwrap_err();
        assert_eq!(error.to_string(), "at column 14: expected ')' to close the '(' at column 7, found end of query");
        assert_eq!(Query::parse(r#"m: "open"#).unwrap_err().position, 4);
        assert_eq!(Query::parse(r"m: x\").unwrap_err().position, 5);
    }

    /// Parsing and matching must never panic, whatever the user types, and what parses prints back to itself.
    #[test]
    fn survives_arbitrary_input() {
        let seeds = [
            r#"* AND (event.serviceName: "Kms") AND (event.eventRW: "Read") AND "key-szz63dc8c429ermur****""#,
            r#"* AND (event.serviceName: "Kms") AND (event.errorCode:"Rejected.Disabled")"#,
            "event.errorCode: * AND event.userIdentity.accessKeyId: * not n in [1 2) or n >= 3",
            r#"a\ b \" "c\" d" é漢 (x:?y)"#,
        ];
        let document = record("Encrypt", "Read", "Rejected.Disabled", KEY_ID);
        let mut inputs: Vec<String> = Vec::new();
        for seed in seeds {
            inputs.extend(seed.char_indices().map(|(end, _)| seed[..end].to_owned()));
            inputs.extend(seed.char_indices().map(|(start, _)| seed[start..].to_owned()));
        }
        let alphabet: Vec<char> = " \t:\"\\()[]*?<>=.-az09é漢".chars().collect();
        let words = ["and ", "OR ", "not ", " in ", "[1 2)", "f:", "*", "event.errorCode"];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next_random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state >> 40).unwrap_or(0)
        };
        for _ in 0..3000 {
            let length = next_random() % 24;
            let soup: String = (0..length)
                .map(|_| match next_random() {
                    pick if pick % 4 == 0 => words[pick / 4 % words.len()].to_owned(),
                    pick => alphabet[pick % alphabet.len()].to_string(),
                })
                .collect();
            inputs.push(soup);
        }
        inputs.push("(".repeat(100_000));
        inputs.push("not ".repeat(10_000));
        inputs.push("a ".repeat(10_000));
        inputs.push("a not b ".repeat(10_000));
        for input in &inputs {
            match Query::parse(input) {
                Ok(query) => {
                    query.matches(&document);
                    query.fields();
                    let printed = query.to_string();
                    assert_eq!(Query::parse(&printed).as_ref(), Ok(&query), "{input:?} printed as {printed:?}");
                }
                Err(error) => {
                    let columns = 1..=input.chars().count() + 1;
                    assert!(columns.contains(&error.position), "{input:?}: {error}");
                }
            }
        }
    }
}
