//! Prints a parsed [`Query`] back as query text: one canonical spelling per query, which parses back to an equal
//! query.
//!
//! Operators are written out in lower case (`and` between juxtaposed terms too) and keywords come out lower-cased,
//! as the parser stored them. Parentheses appear only where the precedence needs them, so the printed text never
//! nests deeper than any text that parses to the same query and stays within the parser's nesting limit.

use std::fmt::{self, Formatter, Write};

use super::Query;
use super::ast::{Bound, Expr, Piece};
use super::lexer::ends_bare_word;

impl fmt::Display for Query {
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        write_or(out, &self.expr)
    }
}

/// What `or-expr` in the grammar reads back as `expr`.
fn write_or(out: &mut Formatter<'_>, expr: &Expr) -> fmt::Result {
    let Expr::Or(alternatives) = expr else { return write_difference(out, expr) };
    if alternatives.is_empty() {
        // Not produced by the parser; this is what matches nothing.
        return out.write_str("not *");
    }
    for (index, alternative) in alternatives.iter().enumerate() {
        if index > 0 {
            out.write_str(" or ")?;
        }
        // A bare nested `or` would be read as part of this one.
        match alternative {
            Expr::Or(_) => write_operand(out, alternative)?,
            _ => write_difference(out, alternative)?,
        }
    }
    Ok(())
}

/// What `difference` reads back as `expr`: a leading `not`, or a conjunction whose trailing `not` terms are
/// written as the binary `not` (which the parser appends to the conjunction before it).
fn write_difference(out: &mut Formatter<'_>, expr: &Expr) -> fmt::Result {
    match expr {
        Expr::Not(inner) => {
            out.write_str("not ")?;
            write_and(out, inner)
        }
        Expr::And(terms) => match binary_not_split(terms) {
            Some(split) => {
                let (kept, excluded) = terms.split_at(split);
                match kept {
                    [Expr::Not(inner)] => {
                        out.write_str("not ")?;
                        write_and(out, inner)?;
                    }
                    [single] => write_operand(out, single)?,
                    _ => write_and_terms(out, kept)?,
                }
                for term in excluded {
                    let Expr::Not(inner) = term else { unreachable!("binary_not_split keeps only `not` terms") };
                    out.write_str(" not ")?;
                    write_and(out, inner)?;
                }
                Ok(())
            }
            None => write_and(out, expr),
        },
        _ => write_and(out, expr),
    }
}

/// Where a conjunction's trailing run of `not` terms can start so that the parser rebuilds exactly these terms:
/// the part kept must be a leading `not`, a single operand that is not itself a conjunction (the parser would
/// merge the two), or two or more operands.
fn binary_not_split(terms: &[Expr]) -> Option<usize> {
    let trailing_nots = terms.iter().rev().take_while(|term| matches!(term, Expr::Not(_))).count();
    let split = match terms.len() - trailing_nots {
        0 => 1,
        1 if matches!(terms[0], Expr::And(_)) => 2,
        kept => kept,
    };
    (split < terms.len()).then_some(split)
}

/// What `and-expr` reads back as `expr`.
fn write_and(out: &mut Formatter<'_>, expr: &Expr) -> fmt::Result {
    match expr {
        Expr::And(terms) => write_and_terms(out, terms),
        _ => write_operand(out, expr),
    }
}

fn write_and_terms(out: &mut Formatter<'_>, terms: &[Expr]) -> fmt::Result {
    if terms.is_empty() {
        // Not produced by the parser; this is what matches everything.
        return out.write_str("*");
    }
    for (index, term) in terms.iter().enumerate() {
        if index > 0 {
            out.write_str(" and ")?;
        }
        write_operand(out, term)?;
    }
    Ok(())
}

/// What `operand` reads back as `expr`: a term, or a parenthesised group.
fn write_operand(out: &mut Formatter<'_>, expr: &Expr) -> fmt::Result {
    match expr {
        Expr::And(_) | Expr::Or(_) | Expr::Not(_) => {
            out.write_char('(')?;
            write_or(out, expr)?;
            out.write_char(')')
        }
        Expr::All => out.write_char('*'),
        Expr::Match { field, pattern } => {
            if let Some(field) = field {
                write_field(out, field)?;
                out.write_str(": ")?;
            }
            write_word(out, &pattern.pieces)
        }
        Expr::Present { field } => {
            write_field(out, field)?;
            out.write_str(": *")
        }
        Expr::Compare { field, op, number } => {
            write_field(out, field)?;
            write!(out, " {} {}", op.symbol(), Number(*number))
        }
        Expr::Range { field, lower, upper } => {
            write_field(out, field)?;
            let Bound { value: low, inclusive: low_inclusive } = *lower;
            let Bound { value: high, inclusive: high_inclusive } = *upper;
            let (open, close) = (if low_inclusive { '[' } else { '(' }, if high_inclusive { ']' } else { ')' });
            write!(out, " in {open}{} {}{close}", Number(low), Number(high))
        }
    }
}

/// A number as the shortest text that parses back to the same f64, in exponent form when it is very large or
/// very small (`1e21` rather than 22 digits).
struct Number(f64);

impl fmt::Display for Number {
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        let magnitude = self.0.abs();
        if magnitude >= 1e16 || (magnitude != 0.0 && magnitude < 1e-6) {
            write!(out, "{:e}", self.0)
        } else {
            write!(out, "{}", self.0)
        }
    }
}

fn write_field(out: &mut Formatter<'_>, field: &str) -> fmt::Result {
    let pieces: Vec<Piece> = field.chars().map(Piece::Char).collect();
    write_word(out, &pieces)
}

/// A keyword or field name. Without wildcards it is written bare when it can be, else quoted; wildcards only
/// work outside quotes, so a word with them is written bare with every special character escaped.
fn write_word(out: &mut Formatter<'_>, pieces: &[Piece]) -> fmt::Result {
    let has_wildcard = pieces.iter().any(|piece| !matches!(piece, Piece::Char(_)));
    if !has_wildcard && needs_quotes(pieces) {
        out.write_char('"')?;
        for piece in pieces {
            if let Piece::Char(c) = *piece {
                if matches!(c, '"' | '\\') {
                    out.write_char('\\')?;
                }
                out.write_char(c)?;
            }
        }
        return out.write_char('"');
    }
    for piece in pieces {
        match *piece {
            Piece::AnyRun => out.write_char('*')?,
            Piece::AnyOne => out.write_char('?')?,
            Piece::Char(c) => {
                if is_special_in_bare_word(c) {
                    out.write_char('\\')?;
                }
                out.write_char(c)?;
            }
        }
    }
    Ok(())
}

/// Empty, containing query syntax, or spelling an operator (`and`, `or`, `not`, or `in`, which after a term
/// would start a range): a bare word would not read back as the same literal text.
fn needs_quotes(pieces: &[Piece]) -> bool {
    let text: String =
        pieces.iter().filter_map(|piece| if let Piece::Char(c) = piece { Some(*c) } else { None }).collect();
    text.is_empty()
        || text.chars().any(is_special_in_bare_word)
        || ["and", "or", "not", "in"].iter().any(|keyword| text.eq_ignore_ascii_case(keyword))
}

fn is_special_in_bare_word(c: char) -> bool {
    ends_bare_word(c) || matches!(c, '\\' | '*' | '?')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::query::parser::MAX_NESTING;

    /// Parses `text`, checks its printed form, and that the printed form parses back to the same query.
    fn assert_prints(text: &str, expected: &str) {
        let query = Query::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        let printed = query.to_string();
        assert_eq!(printed, expected, "printing {text:?}");
        let reparsed = Query::parse(&printed).unwrap_or_else(|error| panic!("{printed}: {error}"));
        assert_eq!(reparsed, query, "{text:?} printed as {printed:?} reads back differently");
    }

    #[test]
    fn prints_precedence_with_as_few_parentheses_as_it_needs() {
        assert_prints("", "*");
        assert_prints("A OR b AnD c", "a or b and c");
        assert_prints("a b or c", "a and b or c");
        assert_prints("(a or b) c", "(a or b) and c");
        assert_prints("a or (b or c)", "a or (b or c)");
        assert_prints("not a and b", "not a and b");
        assert_prints("a not b c not d", "a not b and c not d");
        assert_prints("not a not b", "not a not b");
        assert_prints("(a b) not c", "a and b not c");
        assert_prints("(a b) (not c)", "(a and b) and (not c)");
        assert_prints("(a b) (not c) not d", "(a and b) and (not c) not d");
        assert_prints("(not a) b", "(not a) and b");
        assert_prints("not (not a)", "not (not a)");
        assert_prints("not (a or b) or c", "not (a or b) or c");
    }

    #[test]
    fn prints_terms_with_their_quoting_and_escapes() {
        assert_prints(r#"* AND (event.serviceName: "Kms")"#, "* and event.serviceName: kms");
        assert_prints(r#"event.errorCode:"Rejected.Disabled""#, "event.errorCode: rejected.disabled");
        assert_prints(r#""a \"quoted\" word""#, r#""a \"quoted\" word""#);
        assert_prints(r#""" "AND" \in "back\\slash""#, r#""" and "and" and "in" and "back\\slash""#);
        assert_prints(r#"ab\ c* x\(y?"#, r"ab\ c* and x\(y?");
        assert_prints(r#""*abc" \*abc"#, r#""*abc" and "*abc""#);
        assert_prints(r#""odd field": * "and": x"#, r#""odd field": * and "and": x"#);
        assert_prints("n >= 3 m < -0.5e1 k = 1e21 j > 0.00000001", "n >= 3 and m < -5 and k = 1e21 and j > 1e-8");
        assert_prints("n = 123456789012345.5 m = 0.000001", "n = 123456789012345.5 and m = 0.000001");
        assert_prints("n in [1 2) m IN (0.5 7]", "n in [1 2) and m in (0.5 7]");
    }

    #[test]
    fn printing_stays_within_the_nesting_limit() {
        let deepest = format!("{}a b not c or d{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_prints(&deepest, "a and b not c or d");
        let nested_ors = format!("a or {}b or c{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_prints(&nested_ors, "a or (b or c)");
    }
}
