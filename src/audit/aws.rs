//! How AWS names what a record of a call through AWS's API names, for the
//! CloudTrail rendering of that call as AWS would log it: the AWS account's
//! ARNs in place of Alibaba's (`arn:aws:kms:…` for `acs:kms:…`), and KMS's
//! request parameters in AWS's camelCase and vocabulary (`keySpec`
//! `SYMMETRIC_DEFAULT`, `signingAlgorithm`, `numberOfBytes`) rather than the
//! kernel operation's Alibaba spelling. AWS's names for kmsim's values are the
//! AWS front end's one table ([`vocabulary`]); this reads it rather than keep
//! a second.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::record::AuditRecord;
use crate::engine::key::{KeySpec, KeyUsage};
use crate::frontends::aws::vocabulary::{self, KEY_SPECS, KEY_USAGES, SIGNING_ALGORITHMS};

/// The AWS ARN of a resource kmsim names `acs:kms:<region>:<account>:<resource>`, in `account`; anything
/// else (already AWS's, or empty) as it is.
pub fn arn<'a>(acs: &'a str, account: &str) -> Cow<'a, str> {
    let Some(rest) = acs.strip_prefix("acs:kms:") else { return Cow::Borrowed(acs) };
    match rest.split_once(':').and_then(|(region, rest)| Some((region, rest.split_once(':')?.1))) {
        Some((region, resource)) => Cow::Owned(format!("arn:aws:kms:{region}:{account}:{resource}")),
        None => Cow::Borrowed(acs),
    }
}

/// AWS's name for a key spec kmsim spells its own way (`Aliyun_AES_256` is `SYMMETRIC_DEFAULT`); a spec
/// AWS has no name for, or a data key spec (`AES_256`, the same in both), as it is.
pub fn key_spec(spec: &str) -> &str {
    match KeySpec::parse(spec).map(|spec| vocabulary::aws_name(KEY_SPECS, spec)) {
        Ok(name) if !name.is_empty() => name,
        _ => spec,
    }
}

/// Parameters of kmsim's operations that only Alibaba's API sets (AWS's API has no way to send them): a call
/// through AWS's API carries only their defaults, which AWS would not log.
const ALIBABA_ONLY_PARAMETERS: &[&str] =
    &["EnableAutomaticRotation", "Exportable", "ProtectionLevel", "RotationInterval", "DKMSInstanceId"];

/// The record's request parameters as CloudTrail logs a KMS call's: camelCase names, AWS's values, AWS's
/// key ARNs, and the encryption algorithm AWS logs for symmetric Encrypt, Decrypt and ReEncrypt (the only
/// one the AWS front end takes for them). Nested names stay as written where they are the caller's own
/// data (an encryption context's keys); in lists of objects (tags, lookup attributes) they are API names
/// and are camelCased too.
pub fn request_parameters(r: &AuditRecord) -> Value {
    let Value::Object(parameters) = &r.request_parameters else { return r.request_parameters.clone() };
    let mut logged = Map::new();
    for (name, value) in parameters.iter().filter(|(name, _)| !ALIBABA_ONLY_PARAMETERS.contains(&name.as_str())) {
        let aws_name = match (name.as_str(), r.event_name.as_str()) {
            ("Algorithm", "Sign" | "Verify") => "signingAlgorithm".to_owned(),
            ("Algorithm", "GenerateMac" | "VerifyMac") => "macAlgorithm".to_owned(),
            ("Length", _) => "numberOfBytes".to_owned(),
            ("PageSize", _) => "limit".to_owned(),
            ("PageNumber", _) => "marker".to_owned(),
            _ => lower_camel(name),
        };
        let text = value.as_str().unwrap_or_default();
        let aws_value = match aws_name.as_str() {
            "keySpec" => Value::from(key_spec(text)),
            "keyUsage" => KeyUsage::parse(text)
                .map(|usage| Value::from(vocabulary::aws_name(KEY_USAGES, usage)))
                .unwrap_or_else(|_| value.clone()),
            "signingAlgorithm" => SIGNING_ALGORITHMS
                .iter()
                .find(|(_, kmsim)| *kmsim == text)
                .map_or_else(|| value.clone(), |(aws, _)| Value::from(*aws)),
            "marker" => Value::from(value.to_string()),
            _ if text.starts_with("acs:kms:") => Value::from(arn(text, &r.aws_account_id).into_owned()),
            _ => lower_camel_in_lists(value),
        };
        logged.insert(aws_name, aws_value);
    }
    let algorithms: &[&str] = match r.event_name.as_str() {
        "Encrypt" | "Decrypt" => &["encryptionAlgorithm"],
        "ReEncrypt" => &["sourceEncryptionAlgorithm", "destinationEncryptionAlgorithm"],
        _ => &[],
    };
    for name in algorithms {
        logged.insert((*name).to_owned(), Value::from("SYMMETRIC_DEFAULT"));
    }
    Value::Object(logged)
}

/// A management call's response elements as CloudTrail logs them: camelCase, ARNs AWS's.
pub fn response_elements(kept: Map<String, Value>, account: &str) -> Map<String, Value> {
    kept.into_iter()
        .map(|(name, value)| match value.as_str() {
            Some(text) if text.starts_with("acs:kms:") => (name, Value::from(arn(text, account).into_owned())),
            _ => (name, value),
        })
        .collect()
}

/// `KeyId` as `keyId`.
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// A list of objects (`[{"TagKey": …}]`) with its objects' names camelCased; any other value as it is.
fn lower_camel_in_lists(value: &Value) -> Value {
    let Value::Array(items) = value else { return value.clone() };
    let item = |item: &Value| match item {
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (lower_camel(k), v.clone())).collect()),
        other => other.clone(),
    };
    Value::Array(items.iter().map(item).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alibaba_arn_becomes_the_aws_accounts_and_anything_else_stays() {
        let acs = "acs:kms:us-east-1:1192853035118460:key/1234abcd";
        assert_eq!(arn(acs, "111122223333"), "arn:aws:kms:us-east-1:111122223333:key/1234abcd");
        assert_eq!(
            arn("acs:kms:us-east-1:1:alias/app", "111122223333"),
            "arn:aws:kms:us-east-1:111122223333:alias/app"
        );
        for kept in ["arn:aws:kms:us-east-1:111122223333:key/x", "", "acs:kms:broken"] {
            assert_eq!(arn(kept, "111122223333"), kept);
        }
    }

    #[test]
    fn key_specs_are_awss_and_data_key_specs_stay() {
        assert_eq!(key_spec("Aliyun_AES_256"), "SYMMETRIC_DEFAULT");
        assert_eq!(key_spec("EC_P256"), "ECC_NIST_P256");
        assert_eq!(key_spec("AES_256"), "AES_256");
        assert_eq!(key_spec("Aliyun_SM4"), "Aliyun_SM4", "no AWS name: as kmsim spells it");
    }
}
