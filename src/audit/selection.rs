//! Which records a query, export or tail wants: a search in the Simple Log
//! Service syntax (see [`super::query`]) over each record seen both ways a
//! user may name its fields (ActionTrail's `event.errorCode` and kmsim's own
//! `errorCode`), within an optional time range.

use serde_json::Value;

use super::formats::{ActionTrailSource, actiontrail, actiontrail_source};
use super::query::Query;
use super::record::AuditRecord;
use crate::clock::SimTime;
use crate::engine::{KmsError, KmsResult};

/// The longest query text a search takes, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The most searches (keywords, comparisons, ranges) one query may make of each record.
pub const MAX_QUERY_TERMS: usize = 64;

#[derive(Debug)]
pub struct Selection {
    query: Query,
    /// Event times, both ends included.
    pub range: (SimTime, SimTime),
}

impl Selection {
    /// Parses the query and the RFC 3339 bounds; errors name the parameter
    /// and, for a query, the column where it goes wrong.
    pub fn new(query: &str, start_time: &str, end_time: &str) -> KmsResult<Selection> {
        let query = parse(query)?;
        let start = optional_time(start_time, "StartTime")?.unwrap_or(SimTime(i64::MIN));
        let end = optional_time(end_time, "EndTime")?.unwrap_or(SimTime(i64::MAX));
        Selection::of(query, (start, end))
    }

    /// The query's records with event times from `start` to `end`, both included.
    pub fn between(query: &str, start: SimTime, end: SimTime) -> KmsResult<Selection> {
        Selection::of(parse(query)?, (start, end))
    }

    fn of(query: Query, (start, end): (SimTime, SimTime)) -> KmsResult<Selection> {
        if start > end {
            return Err(KmsError::invalid_because("EndTime", "It is before StartTime."));
        }
        Ok(Selection { query, range: (start, end) })
    }

    /// Text that the stored JSON of every record this selection matches
    /// contains, ignoring ASCII case, whenever that JSON is all ASCII (where
    /// Unicode's lower case and ASCII's could disagree): the pieces of the
    /// query's required terms on the record's own fields, cut at what JSON
    /// escapes and at anything not ASCII. Terms on ActionTrail's `event.`
    /// fields count only where that rendering copies the record's value
    /// ([`actiontrail_source`]), or where no stand-in for it could match the
    /// term; the rest of it is not the stored text.
    pub fn required_text(&self) -> Vec<String> {
        let unescaped_ascii = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
        self.query
            .required_terms()
            .into_iter()
            .filter(|term| match term.field.strip_prefix("event.") {
                Some(rendered) => match actiontrail_source(rendered) {
                    ActionTrailSource::Copied => true,
                    // A term that no stand-in satisfies is satisfied by the record's own value.
                    ActionTrailSource::CopiedOr(stand_ins) => !stand_ins.iter().any(|s| term.matches(s)),
                    ActionTrailSource::MadeUp => false,
                },
                None => term.field != "event",
            })
            .flat_map(|term| term.pieces(unescaped_ascii))
            .collect()
    }

    /// Whether the record matches the query (the time range is the store's to apply).
    pub fn matches(&self, record: &AuditRecord) -> bool {
        self.query.matches(&searchable(record))
    }
}

/// The document a query searches: the native record's fields at the top, and
/// its ActionTrail rendering under `event`, as Simple Log Service flattens it.
pub fn searchable(record: &AuditRecord) -> Value {
    let mut document = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut document {
        fields.insert("event".to_owned(), actiontrail(record));
    }
    document
}

pub fn optional_time(text: &str, param: &str) -> KmsResult<Option<SimTime>> {
    match text {
        "" => Ok(None),
        text => SimTime::parse_rfc3339(text)
            .map(Some)
            .ok_or_else(|| KmsError::invalid_because(param, "Write it as RFC 3339, e.g. 2025-09-01T07:15:07Z.")),
    }
}

/// The query, parsed, and bounded: a scan costs its terms times the records it reads, and both are bounded
/// before anything is read.
fn parse(query: &str) -> KmsResult<Query> {
    if query.len() > MAX_QUERY_BYTES {
        let reason = format!("The query is {} bytes; the limit is {MAX_QUERY_BYTES}.", query.len());
        return Err(KmsError::invalid_because("Query", &reason));
    }
    let query = Query::parse(query).map_err(|e| {
        let reason = format!("{} {e}", if e.unsupported { "Unsupported" } else { "Malformed" });
        let reason = if reason.ends_with('.') { reason } else { reason + "." };
        KmsError::invalid_because("Query", &reason)
    })?;
    if query.term_count() > MAX_QUERY_TERMS {
        let reason = format!("The query has {} terms; the limit is {MAX_QUERY_TERMS}.", query.term_count());
        return Err(KmsError::invalid_because("Query", &reason));
    }
    Ok(query)
}
