//! Splits query text into tokens, each remembering the column it starts at so errors can point at it.

use super::QueryError;
use super::ast::{CompareOp, Piece};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// 1-based character column.
    pub(super) column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    Word(Word),
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    Colon,
    Compare(CompareOp),
}

/// A keyword, phrase or field name, with escapes and quotes already resolved.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Word {
    pub(super) pieces: Vec<Piece>,
    /// Neither quoted nor escaped. Only bare words can be operators, so `"and"` or `\and` searches for "and".
    pub(super) bare: bool,
}

impl Word {
    /// The word as the user meant it, with wildcards shown as `*` and `?`.
    pub(super) fn text(&self) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Char(c) => *c,
                Piece::AnyRun => '*',
                Piece::AnyOne => '?',
            })
            .collect()
    }

    /// Whether this is the operator `keyword` (`and`, `or`, `not`, `in`), which SLS accepts in any case.
    pub(super) fn is_keyword(&self, keyword: &str) -> bool {
        self.bare && self.text().eq_ignore_ascii_case(keyword)
    }

    pub(super) fn has_wildcard(&self) -> bool {
        self.pieces.iter().any(|piece| !matches!(piece, Piece::Char(_)))
    }
}

impl TokenKind {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            TokenKind::Word(word) => format!("'{}'", word.text()),
            TokenKind::OpenParen => "'('".to_owned(),
            TokenKind::CloseParen => "')'".to_owned(),
            TokenKind::OpenBracket => "'['".to_owned(),
            TokenKind::CloseBracket => "']'".to_owned(),
            TokenKind::Colon => "':'".to_owned(),
            TokenKind::Compare(op) => format!("'{}'", op.symbol()),
        }
    }
}

/// Characters that end a bare word because they are query syntax of their own.
pub(super) fn ends_bare_word(c: char) -> bool {
    c.is_whitespace() || c == '"' || c == PIPE || symbol(c).is_some()
}

/// SLS's `search | analytic statement` separator.
const PIPE: char = '|';

type Chars<'a> = std::iter::Peekable<std::iter::Zip<std::str::Chars<'a>, std::ops::RangeFrom<usize>>>;

pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut chars: Chars = text.chars().zip(1..).peekable();
    let mut tokens = Vec::new();
    while let Some(&(c, column)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let kind = if c == '"' {
            TokenKind::Word(quoted_word(&mut chars, column)?)
        } else if c == PIPE {
            return Err(analytic_statement(text, column));
        } else if let Some(symbol) = symbol(c) {
            chars.next();
            with_trailing_equals(symbol, &mut chars)
        } else {
            TokenKind::Word(bare_word(&mut chars)?)
        };
        tokens.push(Token { kind, column });
    }
    Ok(tokens)
}

/// kmsim runs the search part of SLS only. Read as search terms, `| select count(*)` would quietly match
/// nothing, so it is refused, naming what is not supported.
fn analytic_statement(text: &str, pipe_column: usize) -> QueryError {
    let statement: String = text.chars().skip(pipe_column).collect();
    let statement = statement.trim();
    let what = if statement.is_empty() {
        "'|' starts an analytic statement".to_owned()
    } else {
        format!("the analytic statement after '|', {statement:?},")
    };
    QueryError::unsupported(
        pipe_column,
        format!(
            "{what} is not supported: kmsim runs the search part of a query only (`kmsim audit query` reports how \
             many records matched). Quote or escape a '|' that is part of a value"
        ),
    )
}

/// The token that the one-character symbol `c` stands for, if it is one.
fn symbol(c: char) -> Option<TokenKind> {
    Some(match c {
        '(' => TokenKind::OpenParen,
        ')' => TokenKind::CloseParen,
        '[' => TokenKind::OpenBracket,
        ']' => TokenKind::CloseBracket,
        ':' => TokenKind::Colon,
        '=' => TokenKind::Compare(CompareOp::Equal),
        '<' => TokenKind::Compare(CompareOp::Less),
        '>' => TokenKind::Compare(CompareOp::Greater),
        _ => return None,
    })
}

/// Turns `<` and `>` into `<=` and `>=` when an `=` follows.
fn with_trailing_equals(kind: TokenKind, chars: &mut Chars) -> TokenKind {
    let widened = match kind {
        TokenKind::Compare(CompareOp::Less) => CompareOp::LessOrEqual,
        TokenKind::Compare(CompareOp::Greater) => CompareOp::GreaterOrEqual,
        _ => return kind,
    };
    if chars.next_if(|&(c, _)| c == '=').is_some() { TokenKind::Compare(widened) } else { kind }
}

fn bare_word(chars: &mut Chars) -> Result<Word, QueryError> {
    let mut word = Word { pieces: Vec::new(), bare: true };
    while let Some((c, column)) = chars.next_if(|&(c, _)| !ends_bare_word(c)) {
        let piece = match c {
            '\\' => {
                word.bare = false;
                Piece::Char(escaped(chars, column)?)
            }
            '*' => Piece::AnyRun,
            '?' => Piece::AnyOne,
            _ => Piece::Char(c),
        };
        word.pieces.push(piece);
    }
    Ok(word)
}

/// Reads a `"…"` literal; wildcards inside quotes are ordinary characters.
fn quoted_word(chars: &mut Chars, open_column: usize) -> Result<Word, QueryError> {
    chars.next();
    let mut pieces = Vec::new();
    loop {
        match chars.next() {
            None => return Err(QueryError::new(open_column, "unterminated quote: this '\"' is never closed")),
            Some(('"', _)) => return Ok(Word { pieces, bare: false }),
            Some(('\\', column)) => pieces.push(Piece::Char(escaped(chars, column)?)),
            Some((c, _)) => pieces.push(Piece::Char(c)),
        }
    }
}

fn escaped(chars: &mut Chars, backslash_column: usize) -> Result<char, QueryError> {
    match chars.next() {
        Some((c, _)) => Ok(c),
        None => Err(QueryError::new(backslash_column, "trailing '\\' has no character to escape")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_character_columns() {
        let tokens: Vec<(String, usize)> = tokenize(r#"é.b:"x y" >=3 (\*)"#)
            .unwrap()
            .into_iter()
            .map(|token| (token.kind.describe(), token.column))
            .collect();
        let expected =
            [("'é.b'", 1), ("':'", 4), ("'x y'", 5), ("'>='", 11), ("'3'", 13), ("'('", 15), ("'*'", 16), ("')'", 18)];
        assert_eq!(tokens, expected.map(|(text, column)| (text.to_owned(), column)));
    }
}
