//! CloudTrail's API (2013-11-01) on the same port, as boto3's `cloudtrail`
//! client speaks it: `POST /` with `X-Amz-Target:
//! com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>`, JSON
//! 1.1, SigV4 with service `cloudtrail`, verified against the same AccessKeys
//! as KMS's calls. It offers LookupEvents: the audit trail's records, each as
//! the event CloudTrail would show (its CloudTrail rendering inside); every
//! other CloudTrail operation is refused with UnsupportedOperationException.
//! Errors are CloudTrail's exceptions, from this module's one table.

use std::sync::Arc;

use serde_json::{Value, json};

use super::operations::{Json, epoch, run};
use crate::audit::AuditRecord;
use crate::audit::formats::{Format, render};
use crate::clock::SimTime;
use crate::engine::{ErrorCode, KmsError, KmsResult};
use crate::frontends::{decode, refuse_unknown};
use crate::kernel::ops::lookup::{LookupAttribute, LookupEvents};
use crate::kernel::{Answer, App, CallMeta};

/// The `X-Amz-Target` prefix of CloudTrail's operations.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// Every operation of CloudTrail's current API (botocore's service model, 60), offered or not.
pub const CLOUDTRAIL_OPERATIONS: &[&str] = &[
    "AddTags",
    "CancelQuery",
    "CreateChannel",
    "CreateDashboard",
    "CreateEventDataStore",
    "CreateTrail",
    "DeleteChannel",
    "DeleteDashboard",
    "DeleteEventDataStore",
    "DeleteResourcePolicy",
    "DeleteTrail",
    "DeregisterOrganizationDelegatedAdmin",
    "DescribeQuery",
    "DescribeTrails",
    "DisableFederation",
    "EnableFederation",
    "GenerateQuery",
    "GetChannel",
    "GetDashboard",
    "GetEventConfiguration",
    "GetEventDataStore",
    "GetEventSelectors",
    "GetImport",
    "GetInsightSelectors",
    "GetQueryResults",
    "GetResourcePolicy",
    "GetTrail",
    "GetTrailStatus",
    "ListChannels",
    "ListDashboards",
    "ListEventDataStores",
    "ListImportFailures",
    "ListImports",
    "ListInsightsData",
    "ListInsightsMetricData",
    "ListPublicKeys",
    "ListQueries",
    "ListTags",
    "ListTrails",
    "LookupEvents",
    "PutEventConfiguration",
    "PutEventSelectors",
    "PutInsightSelectors",
    "PutResourcePolicy",
    "RegisterOrganizationDelegatedAdmin",
    "RemoveTags",
    "RestoreEventDataStore",
    "SearchSampleQueries",
    "StartDashboardRefresh",
    "StartEventDataStoreIngestion",
    "StartImport",
    "StartLogging",
    "StartQuery",
    "StopEventDataStoreIngestion",
    "StopImport",
    "StopLogging",
    "UpdateChannel",
    "UpdateDashboard",
    "UpdateEventDataStore",
    "UpdateTrail",
];

/// Runs the call to CloudTrail's `operation` with its JSON request.
pub async fn dispatch(app: &Arc<App>, meta: CallMeta, operation: &str, j: Json<'_>) -> Answer<Vec<u8>> {
    match operation {
        "LookupEvents" => {
            let decoded = decode(|| {
                Ok(LookupEvents {
                    lookup_attributes: lookup_attributes(j)?,
                    start_time: time(j, "StartTime")?,
                    end_time: time(j, "EndTime")?,
                    event_category: j.text("EventCategory"),
                    max_results: max_results(j)?,
                    next_token: j.text("NextToken"),
                })
            });
            run(app, meta, decoded, |page| {
                let mut body = json!({ "Events": page.items.iter().map(event).collect::<Vec<_>>() });
                if let Some(token) = page.next_page_token {
                    body["NextToken"] = json!(token);
                }
                body
            })
            .await
        }
        _ => {
            let error = if CLOUDTRAIL_OPERATIONS.contains(&operation) {
                KmsError::new(ErrorCode::UnsupportedOperation)
                    .because(&format!("kmsim offers only LookupEvents of CloudTrail's API, not {operation}."))
            } else {
                KmsError::new(ErrorCode::ActionNotFound).because("Name a CloudTrail operation in X-Amz-Target.")
            };
            refuse_unknown(app, meta, "Operation", operation, error).await
        }
    }
}

/// A record as LookupEvents shows it: the fields CloudTrail lifts out of the event, and the event itself,
/// its CloudTrail rendering, as JSON text.
fn event(record: &AuditRecord) -> Value {
    let trail = render(record, Format::CloudTrail);
    let resources: Vec<Value> = trail["resources"]
        .as_array()
        .map(|resources| {
            resources.iter().map(|r| json!({ "ResourceType": r["type"], "ResourceName": r["ARN"] })).collect()
        })
        .unwrap_or_default();
    let mut event = json!({
        "EventId": record.event_id,
        "EventName": record.event_name,
        "ReadOnly": (record.event_rw == "Read").to_string(),
        "EventTime": epoch(record.event_time),
        "EventSource": trail["eventSource"],
        "Resources": resources,
        "CloudTrailEvent": trail.to_string(),
    });
    // CloudTrail leaves out what the event does not know, rather than naming it empty.
    for (name, value) in [("AccessKeyId", &record.access_key_id), ("Username", &record.user_identity.user_name)] {
        if !value.is_empty() {
            event[name] = json!(value);
        }
    }
    event
}

/// `LookupAttributes`: a list of `{AttributeKey, AttributeValue}` (the operation decides how many it takes).
fn lookup_attributes(j: Json<'_>) -> KmsResult<Vec<LookupAttribute>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Attribute {
        attribute_key: String,
        attribute_value: String,
    }
    match j.0.get("LookupAttributes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value) => serde_json::from_value::<Vec<Attribute>>(value.clone())
            .map(|list| {
                list.into_iter().map(|a| LookupAttribute { key: a.attribute_key, value: a.attribute_value }).collect()
            })
            .map_err(|_| {
                KmsError::invalid_because("LookupAttributes", "Send a list of {AttributeKey, AttributeValue}.")
            }),
    }
}

/// The latest time CloudTrail's timestamps reach (year 5138): far past any simulated clock, and small
/// enough that its milliseconds fit.
const MAX_EPOCH_SECONDS: f64 = 1e11;

/// A time as AWS's JSON sends it: seconds since the epoch, a fraction allowed.
fn time(j: Json<'_>, name: &str) -> KmsResult<Option<SimTime>> {
    match j.0.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(seconds)) => seconds
            .as_f64()
            .filter(|s| (0.0..MAX_EPOCH_SECONDS).contains(s))
            .map(|s| Some(SimTime((s * 1000.0).round() as i64)))
            .ok_or_else(|| KmsError::invalid_because(name, "Send a time from 1970 on, in seconds since the epoch.")),
        Some(_) => Err(KmsError::invalid_because(name, "Send seconds since the epoch.")),
    }
}

/// `MaxResults`: an integer the operation bounds; 0 is what "not given" reads as, so a 0 sent is refused here.
fn max_results(j: Json<'_>) -> KmsResult<i32> {
    match j.int("MaxResults")? {
        0 if j.0.get("MaxResults").is_some_and(|v| !v.is_null()) => {
            Err(KmsError::invalid_because("MaxResults", "Ask for 1 to 50 events."))
        }
        n => Ok(n),
    }
}

/// CloudTrail's exception for a kmsim error, and its HTTP status: the one table from kmsim's codes to
/// CloudTrail's. A bad parameter is the exception CloudTrail names after it.
pub fn exception(error: &KmsError) -> (&'static str, u16) {
    use ErrorCode as C;
    // Every AWS service refuses a signature, a credential, a permission, a rate and an operation alike, with
    // the same statuses: those are KMS's table's.
    let (shared, status) = super::vocabulary::exception(error);
    let names = |parameter: &str| error.message.contains(&format!("\"{parameter}\""));
    let name = match error.code {
        C::InvalidParameter | C::MissingParameter => {
            match ["LookupAttributes", "Query", "StartTime", "EndTime", "MaxResults", "NextToken", "EventCategory"]
                .into_iter()
                .find(|parameter| names(parameter))
            {
                Some("LookupAttributes" | "Query") => "InvalidLookupAttributesException",
                Some("StartTime" | "EndTime") => "InvalidTimeRangeException",
                Some("MaxResults") => "InvalidMaxResultsException",
                Some("NextToken") => "InvalidNextTokenException",
                Some(_) => "InvalidEventCategoryException",
                None => "InvalidParameterException",
            }
        }
        C::UnsupportedOperation
        | C::RejectedUnsupportedOperation
        | C::SignatureNotMatch
        | C::SignatureDoesNotMatch
        | C::SignatureNonceUsed
        | C::RequestTimeTooSkewed
        | C::TimestampExpired
        | C::IncompleteSignature
        | C::TimestampFormat
        | C::NoPermission
        | C::AccessKeyForbidden
        | C::AccessKeyNotFound
        | C::Throttling
        | C::ActionNotFound => shared,
        C::InternalFailure => "InternalFailure",
        C::ServiceUnavailable => "ServiceUnavailableException",
        // No lookup touches a key or a secret: anything else is an operation CloudTrail would not allow.
        _ => "OperationNotPermittedException",
    };
    (name, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refused_lookup_parameter_is_the_exception_cloudtrail_names_after_it() {
        for (parameter, exception_name) in [
            ("LookupAttributes", "InvalidLookupAttributesException"),
            ("StartTime", "InvalidTimeRangeException"),
            ("EndTime", "InvalidTimeRangeException"),
            ("MaxResults", "InvalidMaxResultsException"),
            ("NextToken", "InvalidNextTokenException"),
            ("EventCategory", "InvalidEventCategoryException"),
            ("Body", "InvalidParameterException"),
        ] {
            assert_eq!(exception(&KmsError::invalid_because(parameter, "Why.")), (exception_name, 400));
        }
        assert_eq!(exception(&ErrorCode::UnsupportedOperation.into()).0, "UnsupportedOperationException");
        assert_eq!(exception(&ErrorCode::InternalFailure.into()), ("InternalFailure", 500));
        for code in ErrorCode::ALL {
            let (name, status) = exception(&KmsError::new(*code));
            assert!(name.ends_with("Exception") || name == "InternalFailure", "{code}: {name}");
            // 412 is KMS's DryRunOperationException, which no lookup answers but the tables share.
            assert!(matches!(status, 400 | 412 | 500 | 503), "{code}: {status}");
        }
    }

    #[test]
    fn the_offered_operation_is_one_of_cloudtrails() {
        assert!(CLOUDTRAIL_OPERATIONS.contains(&"LookupEvents"));
        assert_eq!(CLOUDTRAIL_OPERATIONS.len(), 60);
    }

    #[test]
    fn times_are_epoch_seconds_from_1970() {
        let body = json!({ "StartTime": 1_765_000_000, "EndTime": 1_765_000_000.25, "Bad": "2025-01-01", "Old": -1 });
        let j = Json(body.as_object().unwrap());
        assert_eq!(time(j, "StartTime").unwrap(), Some(SimTime(1_765_000_000_000)));
        assert_eq!(time(j, "EndTime").unwrap(), Some(SimTime(1_765_000_000_250)));
        assert_eq!(time(j, "Missing").unwrap(), None);
        assert_eq!(exception(&time(j, "Bad").unwrap_err()).0, "InvalidParameterException", "named Bad");
        assert!(time(j, "Old").is_err());
        let zero = json!({ "MaxResults": 0 });
        assert_eq!(
            exception(&max_results(Json(zero.as_object().unwrap())).unwrap_err()).0,
            "InvalidMaxResultsException"
        );
    }
}
