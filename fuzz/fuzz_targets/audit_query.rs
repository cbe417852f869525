//! The audit search language (src/audit/query/): `Query::parse` on arbitrary text. A query that parses is matched
//! against a fixed audit-shaped document and must print as text that parses back to an equal query; an error must
//! point at a column within the text (or one past its end).

#![no_main]

use std::sync::LazyLock;

use kmsim::audit::query::Query;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// An ActionTrail-shaped record with every kind of leaf the evaluator treats differently: nested objects, a key
/// containing dots, arrays, numbers, numeric strings, booleans, null and non-ASCII text.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    json!({"event": {
        "serviceName": "Kms",
        "eventRW": "Read",
        "eventName": "Decrypt",
        "errorCode": "Rejected.Disabled",
        "userIdentity": {"accessKeyId": "LTAI5tExampleKey", "type": "ram-user"},
        "requestParameters": {"KeyId": "key-szz63dc8c429ermur1234", "SecretName": "db-password", "NumberOfBytes": 32},
        "resourceName": "acs:kms:cn-hangzhou:1192853035118460:key/0d603b4a-1a2b-4c5d-8e9f-0123456789ab",
        "latency.ms": "12.5",
        "tags": [{"k": "env", "v": "prod"}, {"k": "team", "v": "渠道"}],
        "isSuccess": false,
        "note": null,
    }})
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Query::parse(text) {
        Ok(query) => {
            query.matches(&DOCUMENT);
            query.fields();
            let printed = query.to_string();
            match Query::parse(&printed) {
                Ok(reparsed) => {
                    assert_eq!(reparsed, query, "{text:?} printed as {printed:?} parses differently");
                    assert_eq!(reparsed.to_string(), printed, "printing is not canonical");
                }
                Err(error) => panic!("{text:?} printed as {printed:?}, which does not parse: {error}"),
            }
        }
        Err(error) => {
            let columns = 1..=text.chars().count() + 1;
            assert!(columns.contains(&error.position), "{text:?}: column out of the text: {error}");
        }
    }
});
