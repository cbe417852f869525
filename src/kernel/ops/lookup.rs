//! What AWS's APIs ask of the audit trail: CloudTrail's LookupEvents (the
//! events one lookup attribute selects, in a time range, newest first, paged)
//! and KMS's GetKeyLastUsage (a key's latest successful cryptographic use).
//! Each is a query in the audit search's syntax, run by the same search as
//! QueryAuditEvents and bounded as it is (query size, page size and bytes,
//! read time), never a scan of its own.

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::Digest;

use super::audit::TokenPage;
use super::operation;
use super::params::Param;
use crate::audit::AuditRecord;
use crate::audit::selection::Selection;
use crate::clock::SimTime;
use crate::engine::key::KeyMeta;
use crate::engine::{KmsError, KmsResult, Outcome};
use crate::kernel::reads::Order;
use crate::kernel::{App, Names};

/// The most events a LookupEvents page holds, and what it holds when not told, as CloudTrail.
pub const MAX_LOOKUP_RESULTS: i32 = 50;

/// The longest lookup attribute value, in characters, as CloudTrail.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;

/// One of CloudTrail's lookup attributes, as its caller sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupAttribute {
    pub key: String,
    pub value: String,
}

/// Lookup attributes as their record keeps them: `[{AttributeKey, AttributeValue}]`.
impl Param for Vec<LookupAttribute> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| {
            self.iter().map(|a| json!({ "AttributeKey": a.key, "AttributeValue": a.value })).collect::<Value>()
        })
    }
}

operation! {
    /// The events the lookup selects in the caller's region, newest first, as
    /// CloudTrail's LookupEvents answers them. Events are the audit records;
    /// the front end renders them.
    LookupEvents = LOOKUP_EVENTS -> TokenPage<AuditRecord> {
        lookup_attributes: Vec<LookupAttribute> = "LookupAttributes",
        start_time: Option<SimTime> = "StartTime",
        end_time: Option<SimTime> = "EndTime",
        event_category: String = "EventCategory",
        max_results: i32 = "MaxResults",
        next_token: String = "NextToken",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let limit = lookup_page_size(op.max_results)?;
        let (start, end) = (op.start_time.unwrap_or(SimTime(i64::MIN)), op.end_time.unwrap_or(SimTime(i64::MAX)));
        if start > end {
            return Err(KmsError::invalid_because("StartTime", "It is after EndTime."));
        }
        let query = lookup_query(&op.lookup_attributes, &cx.region, &cx.aws_account_id)?;
        let lookup = Lookup { attributes: &op.lookup_attributes, start, end, region: &cx.region };
        let from = lookup.resumed_at(&op.next_token)?;
        let query = match (op.event_category.as_str(), query) {
            ("", Some(query)) => query,
            // kmsim raises no Insights events; a lookup of them, like one nothing can match, finds none.
            ("insight" | "", _) => {
                return Ok(Outcome::read(TokenPage { items: Vec::new(), next_page_token: None }).into());
            }
            _ => return Err(KmsError::invalid_because("EventCategory", "The only event category is insight.")),
        };
        let selection = Arc::new(Selection::between(&query, start, end)?);
        let page = app.search_audit(selection, Order::NewestFirst, (from, None), limit).await?;
        let next_page_token = page.next_before.map(|seq| lookup.token(seq));
        Outcome::read(TokenPage { items: page.records, next_page_token })
    }
}

/// What one key's use looks like in the trail.
pub struct KeyLastUsage {
    pub key: KeyMeta,
    /// The latest successful cryptographic call with the key that the trail still holds.
    pub last_use: Option<AuditRecord>,
    /// The time of the oldest record the trail holds: uses before it are no longer known.
    pub tracking_since: Option<SimTime>,
}

operation! {
    /// The key's latest successful cryptographic use, from the audit trail.
    GetKeyLastUsage = GET_KEY_LAST_USAGE -> KeyLastUsage {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let key = app.engine.describe_key(&cx, &op.key_id)?.value;
        let last_use = first_record(&app, &last_use_query(&key.key_id, &cx.region), Order::NewestFirst).await?;
        let oldest = first_record(&app, "*", Order::OldestFirst).await?;
        Outcome::read(KeyLastUsage { key, last_use, tracking_since: oldest.map(|record| record.event_time) })
    }
}

/// The first record `query` selects in the whole trail, in `order`: a search that stops at its first match.
async fn first_record(app: &App, query: &str, order: Order) -> KmsResult<Option<AuditRecord>> {
    let selection = Arc::new(Selection::between(query, SimTime(i64::MIN), SimTime(i64::MAX))?);
    Ok(app.search_audit(selection, order, (None, None), 1).await?.records.into_iter().next())
}

/// MaxResults: 1 to 50, and 0 (not given) for 50.
fn lookup_page_size(max_results: i32) -> KmsResult<usize> {
    match max_results {
        0 => Ok(MAX_LOOKUP_RESULTS as usize),
        n @ 1..=MAX_LOOKUP_RESULTS => Ok(n as usize),
        _ => Err(KmsError::invalid_because("MaxResults", "Ask for 1 to 50 events.")),
    }
}

/// `value` as a quoted literal of the search syntax: wildcards and operator words in it are plain text.
fn literal(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// The search a lookup makes in `region`: the records whose CloudTrail rendering has the attribute's value,
/// as the search matches text (ignoring case, the whole value or a run of its tokens). `None` when no record
/// can have it (a resource type or event source kmsim never logs, a key ARN of another account).
/// `aws_account` is the AWS account the caller addressed, whose key ARNs name kmsim's keys.
pub fn lookup_query(attributes: &[LookupAttribute], region: &str, aws_account: &str) -> KmsResult<Option<String>> {
    let invalid = |reason: &str| Err(KmsError::invalid_because("LookupAttributes", reason));
    let attribute = match attributes {
        [] => return Ok(Some(format!("region: {}", literal(region)))),
        [attribute] => attribute,
        _ => return invalid("Send at most one lookup attribute."),
    };
    let value = attribute.value.as_str();
    if value.is_empty() {
        return invalid("Send an AttributeValue.");
    }
    if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
        return invalid(&format!("An AttributeValue is at most {MAX_ATTRIBUTE_VALUE_CHARS} characters."));
    }
    let term = match attribute.key.as_str() {
        "EventId" => format!("eventId: {}", literal(value)),
        "EventName" => format!("eventName: {}", literal(value)),
        "Username" => format!("userIdentity.userName: {}", literal(value)),
        "AccessKeyId" => format!("accessKeyId: {}", literal(value)),
        "ReadOnly" => match value {
            "true" => "eventRw: Read".to_owned(),
            "false" => "eventRw: Write".to_owned(),
            _ => return invalid("ReadOnly is true or false."),
        },
        "ResourceType" => match value {
            "AWS::KMS::Key" => "(keyId: * or referencedKeys: *)".to_owned(),
            "AWS::SecretsManager::Secret" => "secretArn: *".to_owned(),
            _ => return Ok(None),
        },
        "ResourceName" => match aws_key_id(value) {
            Some((account, key_id)) if account == aws_account => format!("keyId: {}", literal(key_id)),
            Some(_) => return Ok(None),
            None => {
                let value = literal(value);
                format!("(keyId: {value} or keyArn: {value} or secretName: {value} or secretArn: {value})")
            }
        },
        // As `formats::cloudtrail_event_source` names each record's source.
        "EventSource" => match value {
            "kms.amazonaws.com" => "(* not secretArn: *) not (awsAccountId: * and serviceName: KmsimAudit)".to_owned(),
            "cloudtrail.amazonaws.com" => "awsAccountId: * and serviceName: KmsimAudit".to_owned(),
            "secretsmanager.amazonaws.com" => "secretArn: *".to_owned(),
            _ => return Ok(None),
        },
        _ => {
            return invalid(
                "AttributeKey is one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, \
                 EventSource and AccessKeyId.",
            );
        }
    };
    Ok(Some(format!("region: {} and {term}", literal(region))))
}

/// The account and key id of an AWS key ARN (`arn:aws:kms:<region>:<account>:key/<id>`).
fn aws_key_id(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.strip_prefix("arn:aws:kms:")?.splitn(3, ':');
    let (_region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    Some((account, resource.strip_prefix("key/")?))
}

/// The search for a key's successful cryptographic calls in `region` (a replica shares its primary's id).
fn last_use_query(key_id: &str, region: &str) -> String {
    let uses: Vec<String> =
        crate::audit::CRYPTOGRAPHIC_ACTIONS.iter().map(|action| format!("action: {}", literal(action))).collect();
    format!(
        "keyId: {} and region: {} and outcome: Success and ({})",
        literal(key_id),
        literal(region),
        uses.join(" or ")
    )
}

/// One lookup, for its page tokens: a token reads on only in the lookup that gave it, as CloudTrail's
/// (a token used with other parameters is InvalidNextTokenException rather than a page of something else).
struct Lookup<'a> {
    attributes: &'a [LookupAttribute],
    start: SimTime,
    end: SimTime,
    region: &'a str,
}

impl Lookup<'_> {
    /// What the lookup's tokens are bound to: a digest of its parameters.
    fn fingerprint(&self) -> String {
        let mut digest = sha2::Sha256::new();
        for attribute in self.attributes {
            for text in [&attribute.key, &attribute.value] {
                digest.update((text.len() as u64).to_be_bytes());
                digest.update(text.as_bytes());
            }
        }
        digest.update(self.start.millis().to_be_bytes());
        digest.update(self.end.millis().to_be_bytes());
        digest.update(self.region.as_bytes());
        crate::audit::chain::hex(&digest.finalize()[..8])
    }

    /// The token that reads on below sequence number `seq`.
    fn token(&self, seq: i64) -> String {
        format!("{seq}-{}", self.fingerprint())
    }

    /// The sequence number `token` reads on below; `None` for the first page.
    fn resumed_at(&self, token: &str) -> KmsResult<Option<i64>> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || KmsError::invalid_because("NextToken", "Send a NextToken as given, with the same lookup.");
        let (seq, fingerprint) = token.split_once('-').ok_or_else(invalid)?;
        match seq.parse::<i64>() {
            Ok(seq) if seq > 0 && fingerprint == self.fingerprint() => Ok(Some(seq)),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::formats::{Format, cloudtrail_event_source, render};
    use crate::context::CallContext;
    use crate::engine::ErrorCode;
    use crate::kernel::OpSpec;

    fn one(key: &str, value: &str) -> Vec<LookupAttribute> {
        vec![LookupAttribute { key: key.into(), value: value.into() }]
    }

    fn query(key: &str, value: &str) -> Option<String> {
        lookup_query(&one(key, value), "us-east-1", "111122223333").expect("a valid lookup")
    }

    fn refusal(attributes: &[LookupAttribute]) -> KmsError {
        lookup_query(attributes, "us-east-1", "111122223333").expect_err("refused")
    }

    #[test]
    fn each_attribute_is_a_search_of_the_records_field_in_the_callers_region() {
        assert_eq!(query("EventName", "Decrypt").unwrap(), r#"region: "us-east-1" and eventName: "Decrypt""#);
        assert_eq!(query("EventId", "e-1").unwrap(), r#"region: "us-east-1" and eventId: "e-1""#);
        assert_eq!(query("Username", "alice").unwrap(), r#"region: "us-east-1" and userIdentity.userName: "alice""#);
        assert_eq!(query("AccessKeyId", "AKIA1").unwrap(), r#"region: "us-east-1" and accessKeyId: "AKIA1""#);
        assert_eq!(query("ReadOnly", "true").unwrap(), r#"region: "us-east-1" and eventRw: Read"#);
        assert_eq!(query("ReadOnly", "false").unwrap(), r#"region: "us-east-1" and eventRw: Write"#);
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab";
        assert_eq!(query("ResourceName", arn).unwrap(), r#"region: "us-east-1" and keyId: "1234abcd-12ab""#);
        assert_eq!(query("ResourceName", "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab"), None);
        assert!(query("ResourceName", "app/db").unwrap().contains(r#"secretName: "app/db""#));
        assert!(query("ResourceType", "AWS::KMS::Key").unwrap().contains("keyId: *"));
        assert_eq!(query("ResourceType", "AWS::EC2::Instance"), None);
        assert_eq!(query("EventSource", "s3.amazonaws.com"), None);
        assert_eq!(lookup_query(&[], "eu-west-1", "1").unwrap().unwrap(), r#"region: "eu-west-1""#);
    }

    #[test]
    fn a_value_is_searched_for_as_plain_text_never_as_query_syntax() {
        let q = query("EventName", r#"x" or * or "y\"#).unwrap();
        assert_eq!(q, r#"region: "us-east-1" and eventName: "x\" or * or \"y\\""#);
        let selection = Selection::between(&q, SimTime(0), SimTime(1)).expect("it parses");
        let mut record = decrypt();
        assert!(!selection.matches(&record), "the * in the value is not a wildcard");
        record.event_name = r#"x" or * or "y\"#.into();
        assert!(selection.matches(&record));
    }

    #[test]
    fn bad_attributes_are_refused_naming_lookup_attributes() {
        let two = [one("EventName", "Decrypt"), one("Username", "alice")].concat();
        for (attributes, reason) in [
            (two, "at most one"),
            (one("EventName", ""), "Send an AttributeValue"),
            (one("ReadOnly", "yes"), "true or false"),
            (one("Colour", "red"), "AttributeKey is one of"),
            (one("EventName", &"x".repeat(2001)), "at most 2000"),
        ] {
            let error = refusal(&attributes);
            assert_eq!(error.code, ErrorCode::InvalidParameter);
            assert!(error.message.contains("\"LookupAttributes\"") && error.message.contains(reason), "{error:?}");
        }
        assert!(query("EventName", &"x".repeat(2000)).is_some());
    }

    fn decrypt() -> AuditRecord {
        let mut cx = CallContext::internal("us-east-1", "1192853035118460", SimTime(0));
        cx.aws_account_id = "111122223333".into();
        let mut record = AuditRecord::for_call(&OpSpec::DECRYPT, &cx, json!({}), Default::default(), None);
        record.key_id = "1234abcd".into();
        record.key_arn = "acs:kms:us-east-1:1192853035118460:key/1234abcd".into();
        record
    }

    /// An event source attribute selects exactly the records whose CloudTrail rendering names that source.
    #[test]
    fn an_event_source_selects_what_the_rendering_names_so() {
        let kms = decrypt();
        let secret = AuditRecord { secret_arn: "acs:kms:us-east-1:1:secret/db".into(), ..decrypt() };
        let lookup = AuditRecord { service_name: "KmsimAudit".into(), event_name: "LookupEvents".into(), ..decrypt() };
        let by_grpc = AuditRecord { service_name: "KmsimAudit".into(), aws_account_id: String::new(), ..decrypt() };
        let records = [kms, secret, lookup, by_grpc];
        for source in ["kms.amazonaws.com", "cloudtrail.amazonaws.com", "secretsmanager.amazonaws.com"] {
            let selection = Selection::between(&query("EventSource", source).unwrap(), SimTime(0), SimTime(1)).unwrap();
            for record in &records {
                let rendered = render(record, Format::CloudTrail)["eventSource"].clone();
                assert_eq!(rendered, cloudtrail_event_source(record));
                assert_eq!(selection.matches(record), rendered == source, "{source} of {record:?}");
            }
        }
    }

    fn lookup(attributes: &[LookupAttribute], start: i64) -> Lookup<'_> {
        Lookup { attributes, start: SimTime(start), end: SimTime(i64::MAX), region: "us-east-1" }
    }

    #[test]
    fn a_page_token_reads_on_only_in_the_lookup_that_gave_it() {
        let decrypts = one("EventName", "Decrypt");
        let token = lookup(&decrypts, 0).token(42);
        assert_eq!(lookup(&decrypts, 0).resumed_at(&token).unwrap(), Some(42));
        assert_eq!(lookup(&decrypts, 0).resumed_at("").unwrap(), None);
        let encrypts = one("EventName", "Encrypt");
        let other_region = Lookup { region: "eu-west-1", ..lookup(&decrypts, 0) };
        for (lookup, token) in [
            (lookup(&encrypts, 0), token.clone()),
            (lookup(&decrypts, 1), token.clone()),
            (other_region, token.clone()),
            (lookup(&decrypts, 0), "42".to_owned()),
            (lookup(&decrypts, 0), format!("-1-{}", lookup(&decrypts, 0).fingerprint())),
            (lookup(&decrypts, 0), "not a token".to_owned()),
        ] {
            let error = lookup.resumed_at(&token).expect_err("refused");
            assert!(error.message.contains("\"NextToken\""), "{error:?}");
        }
    }

    #[test]
    fn max_results_is_one_to_fifty_and_fifty_when_not_given() {
        assert_eq!(lookup_page_size(0).unwrap(), 50);
        assert_eq!(lookup_page_size(1).unwrap(), 1);
        assert_eq!(lookup_page_size(50).unwrap(), 50);
        for bad in [-1, 51, i32::MAX] {
            assert!(lookup_page_size(bad).unwrap_err().message.contains("\"MaxResults\""));
        }
    }

    #[test]
    fn the_last_use_is_a_successful_cryptographic_call_with_the_key_in_its_region() {
        let selection = Selection::between(&last_use_query("1234abcd", "us-east-1"), SimTime(0), SimTime(1)).unwrap();
        assert!(selection.matches(&decrypt()));
        let failed = AuditRecord { outcome: crate::audit::Outcome::Failure, ..decrypt() };
        let described = AuditRecord { action: "kms.describe_key".into(), ..decrypt() };
        let elsewhere = AuditRecord { region: "eu-west-1".into(), ..decrypt() };
        let other_key = AuditRecord { key_id: "1234abcd-other".into(), ..decrypt() };
        for record in [failed, described, elsewhere, other_key] {
            assert!(!selection.matches(&record), "{record:?}");
        }
    }
}
