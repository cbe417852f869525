//! An OpenAPI request as the SDKs send it: the action, the parameters merged
//! from the query string and a form body, and typed readers for them that
//! refuse a bad value by naming its parameter.
//!
//! The URL arrives form-encoded (`+` for a space, as Python's `urlencode`
//! writes it); values are kept decoded, and the signature code re-encodes
//! them the way each signature version wants.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::engine::secrets::SecretWanted;
use crate::engine::{KmsError, KmsResult};
use crate::frontends::query::form_pairs;
use crate::kernel::ops::kms::Context;

/// The most parameters one request may carry; the widest action takes about twenty.
pub const MAX_PARAMETERS: usize = 256;

/// One OpenAPI request, decoded as far as it can be without knowing its action.
pub struct ApiRequest {
    pub method: http::Method,
    /// The query string exactly as sent, for the signature.
    pub raw_query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// Query parameters, decoded, in the order sent.
    pub query: Vec<(String, String)>,
    /// Form body parameters, decoded, in the order sent.
    pub form: Vec<(String, String)>,
    /// Both, the body's winning where a name is in each.
    pub params: BTreeMap<String, String>,
}

impl ApiRequest {
    /// Decodes what every action shares. An error here is still an audited call.
    pub fn parse(parts: &http::request::Parts, body: Bytes) -> KmsResult<ApiRequest> {
        let raw_query = parts.uri.query().unwrap_or_default().to_owned();
        let query = form_pairs(&raw_query).ok_or_else(|| KmsError::invalid_because("QueryString", UTF8))?;
        let is_form = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/x-www-form-urlencoded"));
        let form = if is_form && !body.is_empty() {
            let text = std::str::from_utf8(&body).map_err(|_| KmsError::invalid_because("Body", UTF8))?;
            form_pairs(text).ok_or_else(|| KmsError::invalid_because("Body", UTF8))?
        } else {
            Vec::new()
        };
        if query.len() + form.len() > MAX_PARAMETERS {
            return Err(KmsError::invalid_because(
                "QueryString",
                &format!("A request carries at most {MAX_PARAMETERS} parameters."),
            ));
        }
        let params = query.iter().chain(form.iter()).cloned().collect();
        Ok(ApiRequest {
            method: parts.method.clone(),
            raw_query,
            headers: parts.headers.clone(),
            body,
            query,
            form,
            params,
        })
    }

    /// A header's value as text, if it has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        let value = self.headers.get(name)?.to_str().ok()?.trim();
        (!value.is_empty()).then_some(value)
    }

    /// The action: the `x-acs-action` header (ACS3), else the `Action` parameter (v1).
    pub fn action(&self) -> Option<&str> {
        self.header("x-acs-action").or_else(|| self.params.get("Action").map(String::as_str))
    }

    pub fn params(&self) -> Params<'_> {
        Params(&self.params)
    }
}

const UTF8: &str = "Percent-encode UTF-8 text.";

/// Typed readers over an action's parameters. An absent parameter reads as
/// the type's empty value (as an absent protobuf field does), so that the
/// engine, not the front end, decides what is required; a present one that
/// is not of its type is refused naming it.
#[derive(Clone, Copy)]
pub struct Params<'a>(&'a BTreeMap<String, String>);

impl Params<'_> {
    pub fn text(&self, name: &str) -> String {
        self.0.get(name).cloned().unwrap_or_default()
    }

    /// Text the API requires, where the engine cannot tell absent from empty
    /// (CreateClientKey's `Password`, empty for kmsim's own kind of ClientKey).
    pub fn required(&self, name: &str) -> KmsResult<String> {
        self.present(name).filter(|text| !text.is_empty()).map(str::to_owned).ok_or_else(|| KmsError::missing(name))
    }

    pub fn int<T: std::str::FromStr + Default>(&self, name: &str) -> KmsResult<T> {
        match self.present(name) {
            None => Ok(T::default()),
            Some(text) => text.trim().parse().map_err(|_| KmsError::invalid_because(name, "Write a whole number.")),
        }
    }

    pub fn boolean(&self, name: &str) -> KmsResult<bool> {
        Ok(self.optional_boolean(name)?.unwrap_or(false))
    }

    pub fn optional_boolean(&self, name: &str) -> KmsResult<Option<bool>> {
        match self.present(name).map(str::trim) {
            None => Ok(None),
            Some(text) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(text) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(KmsError::invalid_because(name, "Write true or false.")),
        }
    }

    /// Binary data, which the API carries as standard base64.
    pub fn base64(&self, name: &str) -> KmsResult<Vec<u8>> {
        match self.present(name) {
            None => Ok(Vec::new()),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| KmsError::invalid_because(name, "Encode the bytes as base64.")),
        }
    }

    /// Binary data that is secret (plaintext), zeroized when dropped.
    pub fn secret_base64(&self, name: &str) -> KmsResult<Zeroizing<Vec<u8>>> {
        self.base64(name).map(Zeroizing::new)
    }

    /// An encryption context: a JSON object whose values are kept as text
    /// (`{"n":1}` is the entry `n` = `1`, as the SDKs pass numbers through),
    /// or, as the Node SDK flattens a map, `EncryptionContext.app=billing` parameters.
    pub fn context(&self, name: &str) -> KmsResult<Context> {
        let bad = || KmsError::invalid_because(name, "Write a JSON object of strings, such as {\"app\":\"billing\"}.");
        let Some(text) = self.present(name) else {
            let prefix = format!("{name}.");
            let flattened = self.0.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix));
            // A dot past the prefix is a nested object or a list, which a context cannot hold.
            return flattened
                .map(|(k, v)| match &k[prefix.len()..] {
                    entry if entry.is_empty() || entry.contains('.') => Err(bad()),
                    entry => Ok((entry.to_owned(), v.clone())),
                })
                .collect();
        };
        let Value::Object(entries) = serde_json::from_str::<Value>(text).map_err(|_| bad())? else {
            return Err(bad());
        };
        entries
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, b.to_string())),
                _ => Err(bad()),
            })
            .collect()
    }

    /// A list the API carries as a JSON array of strings (`["a","b"]`).
    pub fn list(&self, name: &str) -> KmsResult<Vec<String>> {
        let Some(text) = self.present(name) else { return Ok(Vec::new()) };
        serde_json::from_str(text).map_err(|_| KmsError::invalid_because(name, "Write a JSON array of strings."))
    }

    /// A JSON array of strings, if the call gave one.
    pub fn optional_list(&self, name: &str) -> KmsResult<Option<Vec<String>>> {
        if self.has(name) { self.list(name).map(Some) } else { Ok(None) }
    }

    /// Text, if the call gave it (even empty).
    pub fn optional_text(&self, name: &str) -> Option<String> {
        self.present(name).map(str::to_owned)
    }

    /// A permission policy's `AccessControlRules`, `{"NetworkRules":["rule"]}`:
    /// the network rules it names, if the call gave any.
    pub fn network_rules(&self, name: &str) -> KmsResult<Option<Vec<String>>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct Rules {
            #[serde(default)]
            network_rules: Vec<String>,
        }
        let Some(text) = self.present(name) else { return Ok(None) };
        let rules: Rules = serde_json::from_str(text)
            .map_err(|_| KmsError::invalid_because(name, "Write {\"NetworkRules\":[\"a-rule\"]}."))?;
        Ok(Some(rules.network_rules))
    }

    /// Addresses and CIDR blocks: a JSON array of strings, or the same separated by commas.
    pub fn addresses(&self, name: &str) -> KmsResult<Option<Vec<String>>> {
        let Some(text) = self.present(name) else { return Ok(None) };
        if text.trim_start().starts_with('[') {
            return self.list(name).map(Some);
        }
        Ok(Some(text.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()))
    }

    /// Tags as the API carries them: `[{"TagKey":"k","TagValue":"v"}]`.
    pub fn tags(&self, name: &str) -> KmsResult<Vec<(String, String)>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Tag {
            tag_key: String,
            #[serde(default)]
            tag_value: String,
        }
        let Some(text) = self.present(name) else { return Ok(Vec::new()) };
        let tags: Vec<Tag> = serde_json::from_str(text).map_err(|_| {
            KmsError::invalid_because(name, "Write a JSON array such as [{\"TagKey\":\"k\",\"TagValue\":\"v\"}].")
        })?;
        Ok(tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect())
    }

    /// A list the SDKs send as Alibaba's RepeatList (`Name.1`, `Name.2`, …),
    /// or a JSON array of strings in `Name` itself, as the API reference writes it.
    pub fn repeat_list(&self, name: &str) -> KmsResult<Vec<String>> {
        if self.has(name) {
            return self.list(name);
        }
        let bad =
            || KmsError::invalid_because(name, &format!("Send {name}.1, {name}.2, … or a JSON array of strings."));
        let members = self.numbered(name).ok_or_else(bad)?;
        members
            .into_values()
            .map(|fields| fields.get("").filter(|_| fields.len() == 1).map(|v| (*v).to_owned()).ok_or_else(bad))
            .collect()
    }

    /// Tags as a RepeatList of `{Key, Value}` (`Name.1.Key`, `Name.1.Value`,
    /// …), or a JSON array `[{"Key":"k","Value":"v"}]` in `Name` itself.
    pub fn repeat_tags(&self, name: &str) -> KmsResult<Vec<(String, String)>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct Tag {
            key: String,
            #[serde(default)]
            value: String,
        }
        let bad = || {
            let example = r#"[{"Key":"k","Value":"v"}]"#;
            KmsError::invalid_because(
                name,
                &format!("Send {name}.1.Key, {name}.1.Value, … or a JSON array such as {example}."),
            )
        };
        if let Some(text) = self.present(name) {
            let tags: Vec<Tag> = serde_json::from_str(text).map_err(|_| bad())?;
            return Ok(tags.into_iter().map(|Tag { key, value }| (key, value)).collect());
        }
        let members = self.numbered(name).ok_or_else(bad)?;
        members
            .into_values()
            .map(|fields| {
                let known = fields.keys().all(|field| matches!(*field, "Key" | "Value"));
                match (fields.get("Key"), known) {
                    (Some(key), true) => {
                        Ok(((*key).to_owned(), fields.get("Value").map(|v| (*v).to_owned()).unwrap_or_default()))
                    }
                    _ => Err(bad()),
                }
            })
            .collect()
    }

    /// The members of a RepeatList `Name.<n>[.<field>]`, by n (from 1), each
    /// a map from its field (empty for a plain member) to its value; `None`
    /// if a member is not numbered so.
    fn numbered(&self, name: &str) -> Option<BTreeMap<usize, BTreeMap<&str, &str>>> {
        let prefix = format!("{name}.");
        let mut members: BTreeMap<usize, BTreeMap<&str, &str>> = BTreeMap::new();
        for (key, value) in self.0.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
            let member = &key[prefix.len()..];
            let (n, field) = member.split_once('.').unwrap_or((member, ""));
            let n = n.parse::<usize>().ok().filter(|n| *n >= 1)?;
            members.entry(n).or_default().insert(field, value.as_str());
        }
        Some(members)
    }

    /// The secrets a BatchGetSecretValue asks for: a JSON array of
    /// `{"SecretName", "VersionId", "VersionStage", "FetchExtendedConfig"}`.
    pub fn secrets_list(&self, name: &str) -> KmsResult<Vec<SecretWanted>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase", deny_unknown_fields)]
        struct Wanted {
            #[serde(default)]
            secret_name: String,
            #[serde(default)]
            version_id: String,
            #[serde(default)]
            version_stage: String,
            /// `true`, or `"true"` as the SDK's model types it.
            #[serde(default)]
            fetch_extended_config: Option<Value>,
        }
        let bad = || KmsError::invalid_because(name, "Write a JSON array such as [{\"SecretName\":\"db\"}].");
        let Some(text) = self.present(name) else { return Ok(Vec::new()) };
        let wanted: Vec<Wanted> = serde_json::from_str(text).map_err(|_| bad())?;
        wanted
            .into_iter()
            .map(|Wanted { secret_name, version_id, version_stage, fetch_extended_config }| {
                let fetch_extended_config = match fetch_extended_config {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => b,
                    Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
                    Some(Value::String(text)) if text.eq_ignore_ascii_case("false") || text.is_empty() => false,
                    Some(_) => return Err(bad()),
                };
                Ok(SecretWanted { secret_name, version_id, version_stage, fetch_extended_config })
            })
            .collect()
    }

    /// Secret text (a secret's value), zeroized when dropped.
    pub fn secret_text(&self, name: &str) -> Zeroizing<String> {
        Zeroizing::new(self.text(name))
    }

    /// Whether the call gave `name` at all, even empty.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn present(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_of_the_wrong_type_is_refused_naming_its_parameter() {
        let map: BTreeMap<String, String> = [("PageSize", "ten"), ("DryRun", "yes"), ("Plaintext", "***")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let params = Params(&map);
        assert!(params.int::<i32>("PageSize").unwrap_err().message.contains("PageSize"));
        assert!(params.boolean("DryRun").unwrap_err().message.contains("DryRun"));
        assert!(params.base64("Plaintext").unwrap_err().message.contains("Plaintext"));
        assert_eq!(params.int::<i32>("PageNumber").unwrap(), 0, "absent reads as empty");
    }

    #[test]
    fn an_encryption_context_is_a_json_object_whatever_its_spacing_and_order() {
        let map: BTreeMap<String, String> =
            [("A".to_owned(), r#"{ "n": 1, "app" : "billing" }"#.to_owned()), ("B".to_owned(), "[1]".to_owned())]
                .into_iter()
                .collect();
        let params = Params(&map);
        let context = params.context("A").unwrap();
        assert_eq!(
            context.into_iter().collect::<Vec<_>>(),
            vec![("app".into(), "billing".into()), ("n".into(), "1".into())]
        );
        assert!(params.context("B").is_err());
    }

    #[test]
    fn a_repeat_list_is_numbered_members_or_a_json_array() {
        let map: BTreeMap<String, String> = [
            ("ResourceId.2", "b"),
            ("ResourceId.10", "c"),
            ("ResourceId.1", "a"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "pay"),
            ("Tag.2.Key", "env"),
            ("TagKey", r#"["x","y"]"#),
            ("Bad.one", "x"),
            ("Odd.1.Colour", "red"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let params = Params(&map);
        assert_eq!(params.repeat_list("ResourceId").unwrap(), ["a", "b", "c"], "in numeric order");
        assert_eq!(params.repeat_list("TagKey").unwrap(), ["x", "y"]);
        assert!(params.repeat_list("Missing").unwrap().is_empty());
        assert!(params.repeat_list("Bad").unwrap_err().message.contains("Bad"));
        assert_eq!(
            params.repeat_tags("Tag").unwrap(),
            [("team".to_owned(), "pay".to_owned()), ("env".to_owned(), String::new())]
        );
        assert!(params.repeat_tags("Odd").is_err(), "a tag has a Key and a Value only");
        let json: BTreeMap<String, String> =
            [("Tag".to_owned(), r#"[{"Key":"k","Value":"v"}]"#.to_owned())].into_iter().collect();
        assert_eq!(Params(&json).repeat_tags("Tag").unwrap(), [("k".to_owned(), "v".to_owned())]);
    }

    #[test]
    fn a_secrets_list_takes_fetch_extended_config_as_a_boolean_or_its_text() {
        let map: BTreeMap<String, String> = [
            (
                "A",
                r#"[{"SecretName":"db","FetchExtendedConfig":"true"},{"SecretName":"x","VersionStage":"ACSPrevious"}]"#,
            ),
            ("B", r#"[{"SecretName":"db","FetchExtendedConfig":true}]"#),
            ("C", r#"[{"Name":"db"}]"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let params = Params(&map);
        let wanted = params.secrets_list("A").unwrap();
        assert!(wanted[0].fetch_extended_config);
        assert_eq!((wanted[1].secret_name.as_str(), wanted[1].version_stage.as_str()), ("x", "ACSPrevious"));
        assert!(params.secrets_list("B").unwrap()[0].fetch_extended_config);
        assert!(params.secrets_list("C").unwrap_err().message.contains("C"));
    }

    #[test]
    fn network_rules_and_addresses_come_as_the_reference_writes_them() {
        let map: BTreeMap<String, String> = [
            ("AccessControlRules", r#"{"NetworkRules":["office","vpn"]}"#),
            ("Bad", r#"["office"]"#),
            ("SourcePrivateIp", r#"["10.0.0.0/8","192.168.1.7"]"#),
            ("Commas", "10.0.0.0/8, 192.168.1.7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let params = Params(&map);
        assert_eq!(params.network_rules("AccessControlRules").unwrap().unwrap(), ["office", "vpn"]);
        assert!(params.network_rules("Bad").unwrap_err().message.contains("Bad"));
        assert_eq!(params.network_rules("Missing").unwrap(), None);
        let expected = ["10.0.0.0/8", "192.168.1.7"];
        assert_eq!(params.addresses("SourcePrivateIp").unwrap().unwrap(), expected);
        assert_eq!(params.addresses("Commas").unwrap().unwrap(), expected);
    }

    #[test]
    fn a_flattened_context_is_the_same_context() {
        let map: BTreeMap<String, String> = [("C.app", "billing"), ("C.n", "1"), ("Cx.other", "no"), ("D.a.b", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let params = Params(&map);
        let context = params.context("C").unwrap();
        assert_eq!(
            context.into_iter().collect::<Vec<_>>(),
            vec![("app".into(), "billing".into()), ("n".into(), "1".into())]
        );
        assert!(params.context("D").is_err(), "a nested object is no context");
        assert!(params.context("E").unwrap().is_empty());
    }
}
