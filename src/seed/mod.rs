//! Seeds: fixtures described in YAML (keys with fixed ids and given material,
//! aliases, secrets, instances, identities, faults), applied at start
//! (`kmsim serve --seed FILE`) or to a running server (`ApplySeed`).
//!
//! This module owns the document: its shape, and parsing it with the line of
//! every value kept, so that whoever checks a value later can name its line.
//! What a seed does to the state is [`crate::engine::Engine::apply_seed`]'s
//! business; docs/seeding.md is the user's reference.

use std::collections::BTreeMap;

use serde::Deserialize;
pub use serde_saphyr::Spanned;

/// A seed document and where it came from.
#[derive(Debug, Clone)]
pub struct SeedSource {
    /// A file name, for messages and the audit record.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

impl SeedSource {
    /// Reads a seed file.
    pub fn read(path: &std::path::Path) -> std::io::Result<SeedSource> {
        let text = std::fs::read_to_string(path)?;
        Ok(SeedSource { name: path.display().to_string(), text })
    }
}

/// The largest seed accepted: fixtures, not a data dump.
pub const MAX_SEED_BYTES: usize = 4 * 1024 * 1024;

/// Why a seed was refused: the line at fault (1-based; 0 when the document as a
/// whole is wrong) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => f.write_str(&self.reason),
            line => write!(f, "line {line}: {}", self.reason),
        }
    }
}

impl SeedError {
    pub fn at(line: u64, reason: impl Into<String>) -> Self {
        SeedError { line, reason: reason.into() }
    }
}

/// The line a spanned value starts on.
pub fn line_of<T>(value: &Spanned<T>) -> u64 {
    value.referenced.line()
}

/// Parses a seed document; unknown fields are refused, so a typo is never silently ignored.
pub fn parse(text: &str) -> Result<SeedDoc, SeedError> {
    if text.len() > MAX_SEED_BYTES {
        return Err(SeedError::at(0, format!("the seed is larger than {MAX_SEED_BYTES} bytes")));
    }
    if text.trim().is_empty() {
        return Ok(SeedDoc::default());
    }
    parse_yaml(text)
}

/// Parses a YAML document into `T` with kmsim's rules: errors name their line,
/// and a tag on a field name (`!t keys:`), which would hide a repeated field from
/// the parser's duplicate-key check, is refused at its line (no field needs a tag).
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SeedError> {
    let mut options = serde_saphyr::Options::default();
    options.reject_tagged_field_names = true;
    serde_saphyr::from_str_with_options::<T>(text, options).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let message = e.without_snippet().to_string();
        // The library appends the position; the line leads our message instead.
        let reason = match message.rfind(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        SeedError::at(line, reason)
    })
}

/// A whole seed: every list is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDoc {
    #[serde(default)]
    pub instances: Vec<Spanned<InstanceSeed>>,
    #[serde(default)]
    pub keys: Vec<Spanned<KeySeed>>,
    #[serde(default)]
    pub secrets: Vec<Spanned<SecretSeed>>,
    #[serde(default)]
    pub policies: Vec<Spanned<PolicySeed>>,
    #[serde(default)]
    pub users: Vec<Spanned<UserSeed>>,
    #[serde(default)]
    pub faults: Vec<Spanned<FaultSeed>>,
}

/// A key with a fixed id. Its versions, oldest first, end with the primary.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySeed {
    pub id: Spanned<String>,
    /// Default: the server's region.
    pub region: Option<Spanned<String>>,
    /// Default Aliyun_AES_256.
    pub spec: Option<Spanned<String>>,
    /// Default: the spec's usual usage.
    pub usage: Option<Spanned<String>>,
    /// Aliyun_KMS (default) or EXTERNAL.
    pub origin: Option<Spanned<String>>,
    pub protection_level: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    #[serde(default)]
    pub aliases: Vec<Spanned<String>>,
    #[serde(default)]
    pub tags: Option<Spanned<BTreeMap<String, String>>>,
    /// Enabled (default), Disabled, PendingDeletion or PendingImport.
    pub state: Option<Spanned<String>>,
    /// With state PendingDeletion: days until the deletion (7 to 366, default 30).
    pub pending_window_days: Option<Spanned<i32>>,
    /// Turns automatic rotation on: `30d`, `720h`, ... (7 to 365 days).
    pub rotation_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub exportable: bool,
    /// The KMS instance the key lives in (seeded or existing); default: a default key.
    pub instance: Option<Spanned<String>>,
    #[serde(default)]
    pub versions: Vec<Spanned<VersionSeed>>,
}

/// One key version: an id (default: derived from the key id and position) and
/// material (default: generated). Give at most one of the material fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSeed {
    pub id: Option<Spanned<String>>,
    /// Symmetric or HMAC material, base64.
    pub material_base64: Option<Spanned<String>>,
    /// Symmetric or HMAC material, hex.
    pub material_hex: Option<Spanned<String>>,
    /// An asymmetric private key, PEM (PKCS#8 `PRIVATE KEY`, or `RSA PRIVATE KEY` / `EC PRIVATE KEY`).
    pub private_key_pem: Option<Spanned<String>>,
}

/// A KMS instance with a fixed id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSeed {
    pub id: Spanned<String>,
    pub region: Option<Spanned<String>>,
    /// QPS spec, 1 to 100000 (default 1000).
    pub spec: Option<Spanned<i64>>,
    pub name: Option<Spanned<String>>,
    /// RFC 3339; default a year from now.
    pub expire_time: Option<Spanned<String>>,
}

/// A secret and its versions, oldest first; the last is ACSCurrent unless stages say otherwise.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSeed {
    pub name: Spanned<String>,
    pub region: Option<Spanned<String>>,
    /// The key that seals its values (id, ARN or alias; seeded or existing); default alias/acs/secretsmanager.
    pub key: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// Generic (default), Rds, Redis, PolarDB, RAMCredentials or ECS.
    #[serde(rename = "type")]
    pub secret_type: Option<Spanned<String>>,
    /// Managed secrets' ExtendedConfig, as a mapping.
    pub extended_config: Option<Spanned<serde_json::Value>>,
    /// Turns automatic rotation on (managed secrets).
    pub rotation_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Option<Spanned<BTreeMap<String, String>>>,
    /// Shorthand for one version with this text value.
    pub value: Option<Spanned<String>>,
    #[serde(default)]
    pub versions: Vec<Spanned<SecretVersionSeed>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretVersionSeed {
    pub id: Spanned<String>,
    /// A text value.
    pub value: Option<Spanned<String>>,
    /// A binary value, base64.
    pub value_base64: Option<Spanned<String>>,
    /// Default: ACSCurrent on the last version, ACSPrevious on the one before, none on the rest.
    pub stages: Option<Spanned<Vec<String>>>,
}

/// A custom policy (RAM policy JSON, written as a mapping or as a JSON string).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySeed {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub document: Spanned<serde_json::Value>,
}

/// A RAM user, its AccessKeys (fixed ids and secrets) and its policies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    pub name: Spanned<String>,
    #[serde(default)]
    pub access_keys: Vec<Spanned<AccessKeySeed>>,
    #[serde(default)]
    pub policies: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeySeed {
    pub id: Spanned<String>,
    pub secret: Spanned<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// A fault, as InjectFault takes it (an absolute expiry, so the seed means the same on every apply).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSeed {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub key_id: String,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub delay_ms: u32,
    #[serde(default)]
    pub probability: f64,
    #[serde(default)]
    pub count: u32,
    pub expire_time: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_lines() {
        let doc = parse("# fixtures\nkeys:\n  - id: k1\n    spec: Aliyun_SM4\n  - id: k2\n").unwrap();
        assert_eq!(doc.keys.len(), 2);
        assert_eq!(line_of(&doc.keys[0].value.id), 3);
        assert_eq!(line_of(doc.keys[0].value.spec.as_ref().unwrap()), 4);
        assert_eq!(line_of(&doc.keys[1]), 5);
    }

    #[test]
    fn errors_name_their_line_without_the_library_position() {
        let err = parse("keys:\n  - id: k1\n    sepc: Aliyun_SM4\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.starts_with("unknown field `sepc`"), "{err}");
        assert!(!err.reason.contains("column"), "{err}");
        assert_eq!(parse("keys: [\n").unwrap_err().line, 1);
        assert_eq!(parse("keys:\n  - spec: x\n").unwrap_err().to_string(), "line 2: missing field `id`");
    }

    /// Found by the `seed` fuzz target (minimized): the tagged repeat of `instances` was refused as a duplicate
    /// field with line 0.
    #[test]
    fn a_tagged_repeated_field_is_refused_at_its_line() {
        let err = parse("instances:\n- id: 0\n!n instances:").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.reason.contains("tag `!n` on a struct field name"), "{err}");
        // Tags on values are untouched.
        assert_eq!(parse("keys:\n  - id: !!str 12\n").unwrap().keys[0].value.id.value, "12");
    }

    #[test]
    fn an_empty_seed_is_an_empty_document() {
        assert!(parse("").unwrap().keys.is_empty());
        assert!(parse("# nothing yet\n").unwrap().keys.is_empty());
    }
}
