//! The parsed form of a query: what the parser builds and the evaluator walks.

/// One node of a parsed query.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    /// The lone `*`, or an empty query.
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A keyword or phrase, looked up in one field or, when `field` is `None`, in every value of the document.
    Match {
        field: Option<String>,
        pattern: Pattern,
    },
    /// `field: *`.
    Present {
        field: String,
    },
    Compare {
        field: String,
        op: CompareOp,
        number: f64,
    },
    /// `field in [lower upper)` and its bracket variants.
    Range {
        field: String,
        lower: Bound,
        upper: Bound,
    },
}

impl Expr {
    /// Appends, in order of first mention, every field name the expression refers to.
    /// How many searches (matches, presences, comparisons, ranges) the expression makes of each document.
    pub(super) fn term_count(&self) -> usize {
        match self {
            Expr::All => 0,
            Expr::And(terms) | Expr::Or(terms) => terms.iter().map(Expr::term_count).sum(),
            Expr::Not(inner) => inner.term_count(),
            Expr::Match { .. } | Expr::Present { .. } | Expr::Compare { .. } | Expr::Range { .. } => 1,
        }
    }

    pub(super) fn collect_fields(&self, fields: &mut Vec<String>) {
        match self {
            Expr::All | Expr::Match { field: None, .. } => {}
            Expr::And(terms) | Expr::Or(terms) => terms.iter().for_each(|term| term.collect_fields(fields)),
            Expr::Not(inner) => inner.collect_fields(fields),
            Expr::Match { field: Some(field), .. }
            | Expr::Present { field }
            | Expr::Compare { field, .. }
            | Expr::Range { field, .. } => {
                if !fields.contains(field) {
                    fields.push(field.clone());
                }
            }
        }
    }
}

/// One element of a keyword after unescaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Piece {
    Char(char),
    /// Unescaped `*` outside quotes: zero or more characters.
    AnyRun,
    /// Unescaped `?` outside quotes: exactly one character.
    AnyOne,
}

/// A keyword or phrase, lower-cased because SLS matches text case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    /// The whole keyword, matched against a whole value.
    pub(super) pieces: Vec<Piece>,
    /// The keyword split on the SLS delimiters, matched against a run of a value's tokens.
    pub(super) tokens: Vec<Vec<Piece>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompareOp {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

impl CompareOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Equal => "=",
            CompareOp::GreaterOrEqual => ">=",
            CompareOp::Greater => ">",
        }
    }
}

/// One end of a numeric range: `[`/`]` include the bound, `(`/`)` exclude it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bound {
    pub(super) value: f64,
    pub(super) inclusive: bool,
}
