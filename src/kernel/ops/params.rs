//! A request field as an audit parameter: what "not given" is for each kind
//! of value, and how a given one is written in the record.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::clock::SimTime;
use crate::engine::GrantConstraints;
use crate::engine::secrets::SecretWanted;

/// A field value as an audit parameter; `None` for "not given".
pub trait Param {
    fn param(&self) -> Option<Value>;
}

impl Param for String {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| Value::String(self.clone()))
    }
}

impl Param for i32 {
    fn param(&self) -> Option<Value> {
        (*self != 0).then(|| Value::from(*self))
    }
}

impl Param for i64 {
    fn param(&self) -> Option<Value> {
        (*self != 0).then(|| Value::from(*self))
    }
}

impl Param for u32 {
    fn param(&self) -> Option<Value> {
        (*self != 0).then(|| Value::from(*self))
    }
}

impl Param for f64 {
    fn param(&self) -> Option<Value> {
        (*self != 0.0).then(|| Value::from(*self))
    }
}

impl Param for bool {
    fn param(&self) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}

/// A value given or not; given, as the value itself says.
impl<T: Param> Param for Option<T> {
    fn param(&self) -> Option<Value> {
        self.as_ref().and_then(Param::param)
    }
}

/// An encryption context, or any other map of strings: written sorted.
impl Param for BTreeMap<String, String> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

impl Param for Vec<String> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| Value::from(self.clone()))
    }
}

/// The secrets a BatchGetSecretValue asks for, each with what it was asked for by.
impl Param for Vec<SecretWanted> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| {
            let wanted =
                self.iter().map(|SecretWanted { secret_name, version_id, version_stage, fetch_extended_config }| {
                    let mut entry = serde_json::Map::new();
                    for (name, value) in
                        [("SecretName", secret_name), ("VersionId", version_id), ("VersionStage", version_stage)]
                    {
                        if let Some(value) = value.param() {
                            entry.insert(name.to_owned(), value);
                        }
                    }
                    entry.insert("FetchExtendedConfig".to_owned(), Value::Bool(*fetch_extended_config));
                    Value::Object(entry)
                });
            Value::Array(wanted.collect())
        })
    }
}

/// Tags, as (key, value) pairs.
impl Param for Vec<(String, String)> {
    fn param(&self) -> Option<Value> {
        (!self.is_empty()).then(|| {
            Value::Array(
                self.iter().map(|(key, value)| serde_json::json!({"TagKey": key, "TagValue": value})).collect(),
            )
        })
    }
}

/// A value its record says was given, never what it was: a grant token, which names a grant the
/// way a bearer credential would.
pub struct Withheld(pub String);

impl Param for Withheld {
    fn param(&self) -> Option<Value> {
        (!self.0.is_empty()).then_some(Value::Bool(true))
    }
}

/// A grant's constraint, as the kind of constraint and its pairs (sorted).
impl Param for GrantConstraints {
    fn param(&self) -> Option<Value> {
        let GrantConstraints { encryption_context_subset, encryption_context_equals } = self;
        let mut constraint = serde_json::Map::new();
        for (name, pairs) in [
            ("EncryptionContextSubset", encryption_context_subset),
            ("EncryptionContextEquals", encryption_context_equals),
        ] {
            if let Some(pairs) = pairs.as_ref().and_then(Param::param) {
                constraint.insert(name.to_owned(), pairs);
            }
        }
        (!constraint.is_empty()).then_some(Value::Object(constraint))
    }
}

/// A span of time as a client gave it: whole seconds and nanoseconds, either
/// of which may be negative (the kernel refuses what it cannot use, and the
/// record keeps what was asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub seconds: i64,
    pub nanos: i32,
}

impl Param for Option<Span> {
    fn param(&self) -> Option<Value> {
        self.as_ref().map(|d| Value::String(format!("{}.{:09}s", d.seconds, d.nanos)))
    }
}

/// An instant as a client gave it, to the millisecond.
impl Param for Option<SimTime> {
    fn param(&self) -> Option<Value> {
        self.map(|t| Value::String(t.to_rfc3339_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_given_is_absent_and_maps_are_sorted() {
        assert_eq!(String::new().param(), None);
        assert_eq!(0i32.param(), None);
        assert_eq!(false.param(), Some(Value::Bool(false)), "a flag given as false is still given");
        let context = BTreeMap::from([("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())]);
        assert_eq!(context.param().unwrap().to_string(), r#"{"a":"1","b":"2"}"#);
        let span = Some(Span { seconds: 90, nanos: 5 });
        assert_eq!(span.param(), Some(Value::String("90.000000005s".into())));
    }
}
