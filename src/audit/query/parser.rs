//! Recursive-descent parser from tokens to [`Expr`], following the SLS precedence: `and` (written or implied by
//! juxtaposition) binds tighter than `not`, which binds tighter than `or`.
//!
//! ```text
//! query      := or-expr
//! or-expr    := difference ("or" difference)*
//! difference := ["not"] and-expr (("not" | "and" "not") and-expr)*
//! and-expr   := operand (["and"] operand)*
//! operand    := "(" or-expr ")" | term
//! term       := word | word ":" word | word compare number | word "in" ("[" | "(") number number ("]" | ")")
//! ```

use std::collections::VecDeque;

use super::QueryError;
use super::ast::{Bound, Expr, Pattern, Piece};
use super::lexer::{Token, TokenKind, Word, tokenize};

/// Deep enough for any hand-written query, shallow enough that the recursion cannot exhaust the stack.
pub(super) const MAX_NESTING: usize = 100;

pub(super) fn parse(text: &str) -> Result<Expr, QueryError> {
    let tokens = tokenize(text)?.into();
    let mut parser = Parser { tokens, end_column: text.chars().count() + 1, depth: 0 };
    if parser.tokens.is_empty() {
        return Ok(Expr::All);
    }
    let expr = parser.parse_or(None)?;
    match parser.tokens.pop_front() {
        None => Ok(expr),
        Some(Token { kind: TokenKind::CloseParen, column }) => {
            Err(QueryError::new(column, "unmatched ')': no '(' is open here"))
        }
        Some(token) => Err(QueryError::new(
            token.column,
            format!("unexpected {}; quote a value that contains it", token.kind.describe()),
        )),
    }
}

/// The operator or parenthesis just before an operand, so a missing operand can be blamed on it.
#[derive(Debug, Clone, Copy)]
struct After {
    symbol: &'static str,
    column: usize,
}

impl After {
    fn describe(after: Option<After>) -> String {
        match after {
            Some(After { symbol, column }) => format!(" after '{symbol}' at column {column}"),
            None => String::new(),
        }
    }
}

struct Parser {
    tokens: VecDeque<Token>,
    /// Where "end of query" errors point: one past the last character.
    end_column: usize,
    depth: usize,
}

impl Parser {
    fn parse_or(&mut self, after: Option<After>) -> Result<Expr, QueryError> {
        let mut alternatives = vec![self.parse_difference(after)?];
        while let Some(column) = self.eat_keyword("or") {
            alternatives.push(self.parse_difference(Some(After { symbol: "or", column }))?);
        }
        Ok(combine(alternatives, Expr::Or))
    }

    /// SLS's `not` is set difference: `a not b` keeps what `a` matches minus what `b` matches, and a leading
    /// `not b` subtracts from everything. `a and not b` is accepted as a spelling of `a not b`.
    fn parse_difference(&mut self, after: Option<After>) -> Result<Expr, QueryError> {
        let mut kept = match self.eat_keyword("not") {
            Some(column) => Expr::Not(Box::new(self.parse_and(Some(After { symbol: "not", column }))?)),
            None => self.parse_and(after)?,
        };
        while let Some(column) = self.eat_binary_not() {
            let excluded = self.parse_and(Some(After { symbol: "not", column }))?;
            // Appending to an existing conjunction keeps long `not` chains flat, so evaluation stays shallow.
            let excluded = Expr::Not(Box::new(excluded));
            kept = match kept {
                Expr::And(mut terms) => {
                    terms.push(excluded);
                    Expr::And(terms)
                }
                other => Expr::And(vec![other, excluded]),
            };
        }
        Ok(kept)
    }

    fn parse_and(&mut self, after: Option<After>) -> Result<Expr, QueryError> {
        let mut terms = vec![self.parse_operand(after)?];
        loop {
            // `and not` is left for parse_difference, which reads it as the binary `not`.
            if !self.peek_keyword(1, "not")
                && let Some(column) = self.eat_keyword("and")
            {
                terms.push(self.parse_operand(Some(After { symbol: "and", column }))?);
            } else if self.starts_operand() {
                terms.push(self.parse_operand(None)?);
            } else {
                return Ok(combine(terms, Expr::And));
            }
        }
    }

    fn parse_operand(&mut self, after: Option<After>) -> Result<Expr, QueryError> {
        match self.tokens.pop_front() {
            Some(Token { kind: TokenKind::OpenParen, column }) => self.parse_group(column),
            Some(Token { kind: TokenKind::Word(word), column }) if !is_operator(&word) => self.parse_term(word, column),
            other => Err(self.unexpected(other, format!("expected a search term{}", After::describe(after)))),
        }
    }

    fn parse_group(&mut self, open_column: usize) -> Result<Expr, QueryError> {
        if self.depth == MAX_NESTING {
            return Err(QueryError::new(open_column, format!("parentheses are nested more than {MAX_NESTING} deep")));
        }
        self.depth += 1;
        let inner = self.parse_or(Some(After { symbol: "(", column: open_column }))?;
        self.depth -= 1;
        match self.tokens.pop_front() {
            Some(Token { kind: TokenKind::CloseParen, .. }) => Ok(inner),
            other => Err(self.unexpected(other, format!("expected ')' to close the '(' at column {open_column}"))),
        }
    }

    /// A word is a bare keyword unless what follows makes it a field name.
    fn parse_term(&mut self, word: Word, column: usize) -> Result<Expr, QueryError> {
        let Some(next) = self.tokens.front() else { return bare_term(&word, column) };
        match &next.kind {
            TokenKind::Colon => {
                let colon_column = next.column;
                self.tokens.pop_front();
                let field = field_name(&word, column)?;
                self.parse_field_value(field, colon_column)
            }
            TokenKind::Compare(op) => {
                let (op, op_column) = (*op, next.column);
                self.tokens.pop_front();
                let field = field_name(&word, column)?;
                let number = self.expect_number(&format!("after '{}' at column {op_column}", op.symbol()))?;
                Ok(Expr::Compare { field, op, number })
            }
            TokenKind::Word(next_word) if next_word.is_keyword("in") => {
                let in_column = next.column;
                self.tokens.pop_front();
                let field = field_name(&word, column)?;
                self.parse_range(field, in_column)
            }
            _ => bare_term(&word, column),
        }
    }

    fn parse_field_value(&mut self, field: String, colon_column: usize) -> Result<Expr, QueryError> {
        match self.tokens.pop_front() {
            Some(Token { kind: TokenKind::Word(value), .. }) if is_lone_star(&value) => Ok(Expr::Present { field }),
            Some(Token { kind: TokenKind::Word(value), column }) if !is_operator(&value) => {
                Ok(Expr::Match { pattern: keyword_pattern(&value, column)?, field: Some(field) })
            }
            other => {
                Err(self
                    .unexpected(other, format!("expected a value for '{field}' after ':' at column {colon_column}")))
            }
        }
    }

    fn parse_range(&mut self, field: String, in_column: usize) -> Result<Expr, QueryError> {
        let expectation = format!("expected '[' or '(' to open a range after 'in' at column {in_column}");
        let (lower_inclusive, open_column) =
            self.expect_bracket(TokenKind::OpenBracket, TokenKind::OpenParen, expectation)?;
        let lower = self.expect_number("for the lower bound of the range")?;
        let upper = self.expect_number("for the upper bound of the range")?;
        let expectation = format!("expected ']' or ')' to close the range opened at column {open_column}");
        let (upper_inclusive, _) = self.expect_bracket(TokenKind::CloseBracket, TokenKind::CloseParen, expectation)?;
        Ok(Expr::Range {
            field,
            lower: Bound { value: lower, inclusive: lower_inclusive },
            upper: Bound { value: upper, inclusive: upper_inclusive },
        })
    }

    /// Consumes a range bracket, returning whether it includes its bound and its column.
    fn expect_bracket(
        &mut self,
        inclusive: TokenKind,
        exclusive: TokenKind,
        expectation: String,
    ) -> Result<(bool, usize), QueryError> {
        match self.tokens.pop_front() {
            Some(token) if token.kind == inclusive => Ok((true, token.column)),
            Some(token) if token.kind == exclusive => Ok((false, token.column)),
            other => Err(self.unexpected(other, expectation)),
        }
    }

    fn expect_number(&mut self, purpose: &str) -> Result<f64, QueryError> {
        let token = self.tokens.pop_front();
        if let Some(Token { kind: TokenKind::Word(word), .. }) = &token
            && let Ok(number) = word.text().trim().parse::<f64>()
            && number.is_finite()
        {
            return Ok(number);
        }
        Err(self.unexpected(token, format!("expected a number {purpose}")))
    }

    /// An error at `found` (or at the end of the query) naming what was expected and what was there instead.
    fn unexpected(&self, found: Option<Token>, expectation: String) -> QueryError {
        match found {
            Some(token) => QueryError::new(token.column, format!("{expectation}, found {}", token.kind.describe())),
            None => QueryError::new(self.end_column, format!("{expectation}, found end of query")),
        }
    }

    fn peek_keyword(&self, offset: usize, keyword: &str) -> bool {
        matches!(self.tokens.get(offset), Some(Token { kind: TokenKind::Word(word), .. }) if word.is_keyword(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> Option<usize> {
        if self.peek_keyword(0, keyword) { self.tokens.pop_front().map(|token| token.column) } else { None }
    }

    /// Consumes `not` or `and not`, returning the column of the `not`.
    fn eat_binary_not(&mut self) -> Option<usize> {
        if self.peek_keyword(0, "and") && self.peek_keyword(1, "not") {
            self.tokens.pop_front();
        }
        self.eat_keyword("not")
    }

    fn starts_operand(&self) -> bool {
        match self.tokens.front().map(|token| &token.kind) {
            Some(TokenKind::OpenParen) => true,
            Some(TokenKind::Word(word)) => !is_operator(word),
            _ => false,
        }
    }
}

fn combine(mut terms: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 { terms.remove(0) } else { join(terms) }
}

fn is_operator(word: &Word) -> bool {
    ["and", "or", "not"].iter().any(|keyword| word.is_keyword(keyword))
}

fn is_lone_star(word: &Word) -> bool {
    word.pieces == [Piece::AnyRun]
}

fn bare_term(word: &Word, column: usize) -> Result<Expr, QueryError> {
    if is_lone_star(word) {
        return Ok(Expr::All);
    }
    Ok(Expr::Match { field: None, pattern: keyword_pattern(word, column)? })
}

fn field_name(word: &Word, column: usize) -> Result<String, QueryError> {
    let name = word.text();
    if word.has_wildcard() {
        return Err(QueryError::new(column, format!("field name '{name}' cannot contain wildcards")));
    }
    if name.is_empty() {
        return Err(QueryError::new(column, "field name is empty"));
    }
    Ok(name)
}

/// SLS rejects a leading wildcard because it cannot be answered from the term index; so does the simulator,
/// so that queries which work here also work against the real service.
fn keyword_pattern(word: &Word, column: usize) -> Result<Pattern, QueryError> {
    if matches!(word.pieces.first(), Some(Piece::AnyRun | Piece::AnyOne)) {
        let message = format!("keyword '{}' starts with a wildcard; put at least one character first", word.text());
        return Err(QueryError::new(column, message));
    }
    Ok(Pattern::new(&word.pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(query: &str) -> (usize, String) {
        let error = parse(query).unwrap_err();
        (error.position, error.message)
    }

    #[test]
    fn precedence_matches_sls() {
        let keyword = |text: &str| Expr::Match { field: None, pattern: Pattern::new(&text_pieces(text)) };
        let not = |expr: Expr| Expr::Not(Box::new(expr));
        let and = |a: Expr, b: Expr| Expr::And(vec![a, b]);
        let (a, b, c) = (keyword("a"), keyword("b"), keyword("c"));
        assert_eq!(parse("a or b and c").unwrap(), Expr::Or(vec![a.clone(), and(b.clone(), c.clone())]));
        assert_eq!(parse("a b or c").unwrap(), parse("(a and b) or c").unwrap());
        // `and` binds tighter than `not`, so a leading `not` covers the whole and-chain.
        assert_eq!(parse("not a and b").unwrap(), not(and(a.clone(), b.clone())));
        assert_eq!(parse("a not b").unwrap(), and(a.clone(), not(b.clone())));
        assert_eq!(parse("a and not b").unwrap(), parse("a not b").unwrap());
        assert_eq!(parse("a not b c").unwrap(), and(a.clone(), not(and(b.clone(), c.clone()))));
        assert_eq!(parse("a b not c").unwrap(), Expr::And(vec![a.clone(), b.clone(), not(c.clone())]));
        assert_eq!(parse("a not b or c").unwrap(), Expr::Or(vec![and(a.clone(), not(b.clone())), c.clone()]));
        assert_eq!(parse("A OR b AnD c").unwrap(), parse("a or (b and c)").unwrap());
        assert_eq!(parse("(a or b) c").unwrap(), and(Expr::Or(vec![a, b]), c));
    }

    fn text_pieces(text: &str) -> Vec<Piece> {
        text.chars().map(Piece::Char).collect()
    }

    #[test]
    fn lone_star_and_blank_query_match_everything() {
        assert_eq!(parse("").unwrap(), Expr::All);
        assert_eq!(parse(" \t\n").unwrap(), Expr::All);
        assert_eq!(parse("*").unwrap(), Expr::All);
        assert_eq!(parse("f: *").unwrap(), Expr::Present { field: "f".to_owned() });
    }

    #[test]
    fn reports_unbalanced_parentheses() {
        assert_eq!(
            error("a and (b or c"),
            (14, "expected ')' to close the '(' at column 7, found end of query".into())
        );
        assert_eq!(error("a b)").0, 4);
        assert_eq!(error("()"), (2, "expected a search term after '(' at column 1, found ')'".into()));
    }

    #[test]
    fn reports_dangling_operators() {
        assert_eq!(error("a and"), (6, "expected a search term after 'and' at column 3, found end of query".into()));
        assert_eq!(error("a or  "), (7, "expected a search term after 'or' at column 3, found end of query".into()));
        assert_eq!(error("not"), (4, "expected a search term after 'not' at column 1, found end of query".into()));
        assert_eq!(error("a not"), (6, "expected a search term after 'not' at column 3, found end of query".into()));
        assert_eq!(error("or a"), (1, "expected a search term, found 'or'".into()));
        assert_eq!(error("a and or b"), (7, "expected a search term after 'and' at column 3, found 'or'".into()));
    }

    #[test]
    fn reports_leading_wildcards() {
        let message = "keyword '*abc' starts with a wildcard; put at least one character first".to_owned();
        assert_eq!(error("f: *abc"), (4, message));
        assert_eq!(error("x ?bc").0, 3);
        assert_eq!(error("f*: x"), (1, "field name 'f*' cannot contain wildcards".into()));
        assert!(parse(r#""*abc" \*abc"#).is_ok(), "quoted and escaped stars are literal");
    }

    #[test]
    fn reports_bad_ranges_and_comparisons() {
        assert_eq!(error("n in [a 2)"), (7, "expected a number for the lower bound of the range, found 'a'".into()));
        assert_eq!(error("n in [1 x]").0, 9);
        assert_eq!(
            error("n in 1 2]"),
            (6, "expected '[' or '(' to open a range after 'in' at column 3, found '1'".into())
        );
        assert_eq!(
            error("n in [1 2"),
            (10, "expected ']' or ')' to close the range opened at column 6, found end of query".into())
        );
        assert_eq!(error("n >= ten"), (6, "expected a number after '>=' at column 3, found 'ten'".into()));
        assert_eq!(error("n <"), (4, "expected a number after '<' at column 3, found end of query".into()));
        assert_eq!(error("> 3"), (1, "expected a search term, found '>'".into()));
    }

    #[test]
    fn reports_empty_field_values_and_stray_syntax() {
        let message = "expected a value for 'event.errorCode' after ':' at column 16, found end of query".to_owned();
        assert_eq!(error("event.errorCode:"), (17, message));
        assert_eq!(error("f: and g").0, 4);
        assert_eq!(error("a:b:c"), (4, "unexpected ':'; quote a value that contains it".into()));
    }

    #[test]
    fn limits_nesting_instead_of_overflowing_the_stack() {
        let deep = "(".repeat(MAX_NESTING + 1) + "a" + &")".repeat(MAX_NESTING + 1);
        assert_eq!(error(&deep).0, MAX_NESTING + 1);
        let fine = "(".repeat(MAX_NESTING) + "a" + &")".repeat(MAX_NESTING);
        assert!(parse(&fine).is_ok());
    }
}
