//! Decides whether a JSON document satisfies a parsed query, imitating how SLS matches an indexed log.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::{Bound, CompareOp, Expr, Pattern, Piece};

/// SLS's default token delimiters; any whitespace separates tokens too.
const DELIMITERS: &str = ",'\";=()[]{}?@&<>/:";

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || DELIMITERS.contains(c)
}

impl Expr {
    pub(super) fn matches(&self, document: &Value) -> bool {
        match self {
            Expr::All => true,
            Expr::And(terms) => terms.iter().all(|term| term.matches(document)),
            Expr::Or(terms) => terms.iter().any(|term| term.matches(document)),
            Expr::Not(inner) => !inner.matches(document),
            Expr::Match { field, pattern } => {
                let leaves = match field {
                    Some(field) => field_leaves(document, field),
                    None => leaves(document),
                };
                leaves.into_iter().any(|leaf| pattern.matches(&leaf_text(leaf)))
            }
            Expr::Present { field } => {
                field_leaves(document, field).into_iter().any(|leaf| !leaf_text(leaf).is_empty())
            }
            Expr::Compare { field, op, number } => field_numbers(document, field).any(|value| op.holds(value, *number)),
            Expr::Range { field, lower, upper } => {
                field_numbers(document, field).any(|value| lower.allows_above(value) && upper.allows_below(value))
            }
        }
    }

    /// Appends the field searches that every matching document satisfies: the
    /// whole expression, or each term of an `and`, at any depth.
    pub(super) fn collect_required_matches<'a>(&'a self, required: &mut Vec<(&'a str, &'a Pattern)>) {
        match self {
            Expr::And(terms) => terms.iter().for_each(|term| term.collect_required_matches(required)),
            Expr::Match { field: Some(field), pattern } => required.push((field, pattern)),
            _ => {}
        }
    }
}

impl CompareOp {
    fn holds(self, value: f64, operand: f64) -> bool {
        match self {
            CompareOp::Less => value < operand,
            CompareOp::LessOrEqual => value <= operand,
            CompareOp::Equal => value == operand,
            CompareOp::GreaterOrEqual => value >= operand,
            CompareOp::Greater => value > operand,
        }
    }
}

impl Bound {
    /// As a lower bound: whether `value` is on the allowed side of it.
    fn allows_above(self, value: f64) -> bool {
        if self.inclusive { self.value <= value } else { self.value < value }
    }

    /// As an upper bound: whether `value` is on the allowed side of it.
    fn allows_below(self, value: f64) -> bool {
        if self.inclusive { value <= self.value } else { value < self.value }
    }
}

impl Pattern {
    pub(super) fn new(pieces: &[Piece]) -> Pattern {
        let pieces: Vec<Piece> = pieces.iter().flat_map(|piece| lowercase(*piece)).collect();
        let tokens = pieces
            .split(|piece| matches!(piece, Piece::Char(c) if is_delimiter(*c)))
            .filter(|token| !token.is_empty())
            .map(<[Piece]>::to_vec)
            .collect();
        Pattern { pieces, tokens }
    }

    /// Pieces of text, lower-cased, that every value this pattern matches
    /// contains: its literal runs, cut at wildcards, at delimiters (so that
    /// they hold whether the whole value or a run of its tokens matched) and
    /// at each character that `keep` refuses.
    pub(super) fn literal_pieces(&self, keep: impl Fn(char) -> bool) -> Vec<String> {
        self.pieces
            .split(|piece| !matches!(piece, Piece::Char(c) if !is_delimiter(*c) && keep(*c)))
            .filter(|run| !run.is_empty())
            .map(|run| {
                run.iter().filter_map(|piece| if let Piece::Char(c) = piece { Some(*c) } else { None }).collect()
            })
            .collect()
    }

    /// True if the pattern matches the whole value, or its tokens match a contiguous run of the value's tokens.
    pub(super) fn matches(&self, value: &str) -> bool {
        let value: Vec<char> = value.to_lowercase().chars().collect();
        if glob(&self.pieces, &value) {
            return true;
        }
        if self.tokens.is_empty() {
            return false;
        }
        let value_tokens: Vec<&[char]> = value.split(|c| is_delimiter(*c)).filter(|token| !token.is_empty()).collect();
        value_tokens
            .windows(self.tokens.len())
            .any(|run| run.iter().zip(&self.tokens).all(|(token, keyword)| glob(keyword, token)))
    }
}

fn lowercase(piece: Piece) -> Vec<Piece> {
    match piece {
        Piece::Char(c) => c.to_lowercase().map(Piece::Char).collect(),
        wildcard => vec![wildcard],
    }
}

/// Wildcard match of the whole of `text`. Backtracks only to the most recent `*`, which keeps it linear in
/// practice and never exponential.
fn glob(pattern: &[Piece], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a mismatch, retry from the last `*` with it swallowing one more character.
    let mut last_star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(Piece::AnyRun) => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(Piece::AnyOne) => (p, t) = (p + 1, t + 1),
            Some(Piece::Char(expected)) if *expected == c => (p, t) = (p + 1, t + 1),
            _ => match last_star {
                Some((star, swallowed_up_to)) => {
                    last_star = Some((star, swallowed_up_to + 1));
                    (p, t) = (star + 1, swallowed_up_to + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|piece| *piece == Piece::AnyRun)
}

/// Every value at `field`, which may be written as nested objects, as keys that contain dots, or as any mix.
/// Arrays on the way are searched element by element.
fn resolve<'a>(value: &'a Value, field: &str, found: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| resolve(item, field, found)),
        Value::Object(map) => {
            for (key, child) in map {
                if key == field {
                    found.push(child);
                } else if let Some(rest) = field.strip_prefix(key.as_str()).and_then(|rest| rest.strip_prefix('.')) {
                    resolve(child, rest, found);
                }
            }
        }
        _ => {}
    }
}

/// The scalars under `value`; null counts as no value at all.
fn collect_leaves<'a>(value: &'a Value, leaves: &mut Vec<&'a Value>) {
    match value {
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|item| collect_leaves(item, leaves)),
        Value::Object(map) => map.values().for_each(|child| collect_leaves(child, leaves)),
        scalar => leaves.push(scalar),
    }
}

fn leaves(value: &Value) -> Vec<&Value> {
    let mut leaves = Vec::new();
    collect_leaves(value, &mut leaves);
    leaves
}

fn field_leaves<'a>(document: &'a Value, field: &str) -> Vec<&'a Value> {
    let mut resolved = Vec::new();
    resolve(document, field, &mut resolved);
    resolved.into_iter().flat_map(leaves).collect()
}

fn leaf_text(leaf: &Value) -> Cow<'_, str> {
    match leaf {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}

/// The field's values that read as finite numbers, whether stored as JSON numbers or as numeric strings.
fn field_numbers(document: &Value, field: &str) -> impl Iterator<Item = f64> {
    field_leaves(document, field)
        .into_iter()
        .filter_map(|leaf| match leaf {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        })
        .filter(|number| number.is_finite())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::parser::parse;
    use super::*;

    /// Checks each `(query, expected)` pair against `document`.
    fn check(document: Value, cases: &[(&str, bool)]) {
        for (query, expected) in cases {
            assert_eq!(parse(query).unwrap().matches(&document), *expected, "{query} on {document}");
        }
    }

    #[test]
    fn keywords_match_whole_values_or_runs_of_tokens() {
        check(
            json!({"arn": "acs:kms:cn-hangzhou:1192853035118460:key/0d603b4a-1234", "code": "Rejected.Disabled"}),
            &[
                ("arn: 0d603b4a-1234", true),
                ("arn: KMS", true),                      // case-insensitive
                ("arn: 0d603b4a", false),                // '-' does not split tokens
                (r#"arn: "acs:kms:cn-hangzhou""#, true), // a keyword with delimiters is a phrase
                (r#"arn: "acs:cn-hangzhou""#, false),    // phrase tokens must be contiguous
                (r"code: Rejected\.Disabled", true),     // an escaped '.' is just '.'
                ("code: Rejected", false),               // '.' does not split tokens
                (r#"code: "rejected.disabled""#, true),  // so a quoted value can match it whole
                (r#"code: "and" or "OR""#, false),       // quoted operators are search terms
                (r#"arn: "KEY" not "and""#, true),
            ],
        );
        check(json!({"m": "say a \"quoted\" word", "e": ""}), &[(r#""a \"quoted\" word""#, true), (r#"e: """#, true)]);
    }

    #[test]
    fn wildcards_match_within_a_token_or_across_the_whole_value() {
        check(
            json!({"name": "GetSecretValue", "arn": "acs:kms:cn-hangzhou:1:key/key-abc12", "star": "Get*"}),
            &[
                ("name: Get*", true),
                ("name: get*s*value", true),
                ("name: GetSecretValu?", true),
                ("name: GetSecretVal?", false), // '?' is exactly one character
                ("arn: key-abc*", true),
                ("arn: acs*12", true),      // across delimiters when matching the whole value
                (r#"name: "Get*""#, false), // quoted wildcards are literal
                (r"name: Get\*", false),    // so are escaped ones
                (r#"star: "Get*""#, true),
            ],
        );
    }

    #[test]
    fn numbers_compare_only_numeric_values() {
        check(
            json!({"size": 150, "text": "150", "name": "big", "list": [5, 500], "SIZE": -1}),
            &[
                ("size > 100 and size < 200 and size >= 150 and size <= 150 and size = 150", true),
                ("size > 150", false),
                ("text = 150", true), // numeric strings count as numbers
                ("name > 0 or name < 0", false),
                ("list > 400", true), // any array element may satisfy a comparison
                ("size in [150 200)", true),
                ("size in (150 200]", false),
                ("size in (100 150]", true),
                ("size in [100 150)", false),
                ("SIZE IN [-1.5 0)", true),
            ],
        );
    }

    #[test]
    fn present_needs_a_non_empty_non_null_value() {
        check(
            json!({"full": "x", "empty": "", "null": null, "zero": 0, "list": ["", "y"], "none": []}),
            &[
                ("full: *", true),
                ("empty: *", false),
                ("null: *", false),
                ("zero: *", true),
                ("list: *", true),
                ("none: *", false),
                ("missing: *", false),
            ],
        );
    }

    #[test]
    fn fields_resolve_through_nesting_flattened_keys_and_arrays() {
        for document in [
            json!({"a": {"b": {"c": "deep"}}}),
            json!({"a.b.c": "deep"}),
            json!({"a": {"b.c": "deep"}}),
            json!({"a": [{"b": {"c": "no"}}, {"b": [{"c": "deep"}]}]}),
        ] {
            check(document, &[("a.b.c: deep", true), ("a.b.c: no-such", false)]);
        }
        // A field holding an object is searched through its leaves.
        check(json!({"a": {"b": {"c": "deep"}}}), &[("a: deep", true), ("a.b: deep", true)]);
        check(json!({"a": "b", "b": "deep", "t": true, "n": 42}), &[("a.b: deep", false), ("t: TRUE and n: 42", true)]);
    }

    #[test]
    fn bare_terms_search_every_value_but_not_keys() {
        let document = json!({"event": {"requestParameters": {"KeyId": "key-123"}, "tags": ["prod"]}});
        check(document, &[("key-123", true), ("prod", true), ("KeyId", false)]);
    }
}
