//! Keys and key versions, their specs, and the key-state table that decides
//! which operation each state allows.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::crypto::asymmetric::{AsymmetricKind, EncryptScheme, SignScheme};
use super::crypto::random_secret;
use super::crypto::symmetric::Cipher;
use super::crypto::{HashAlg, ParsedKey};
use super::error::{ErrorCode, KmsError, KmsResult, Refusal};
use crate::clock::SimTime;

/// Generates an enum whose variants travel as the exact strings Alibaba uses,
/// with parsing that names the parameter at fault.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $param:literal {
        $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the wire spelling; anything else is InvalidParameter naming the parameter.
            pub fn parse(text: &str) -> KmsResult<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(KmsError::invalid($param)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_enum;

wire_enum!(
    /// The lifecycle state of a key.
    KeyState, "KeyState" {
        Enabled => "Enabled",
        Disabled => "Disabled",
        PendingDeletion => "PendingDeletion",
        PendingImport => "PendingImport",
        Unavailable => "Unavailable",
    }
);

wire_enum!(KeySpec, "KeySpec" {
    Aes256 => "Aliyun_AES_256",
    Aes128 => "Aliyun_AES_128",
    Aes192 => "Aliyun_AES_192",
    Sm4 => "Aliyun_SM4",
    Rsa2048 => "RSA_2048",
    Rsa3072 => "RSA_3072",
    Rsa4096 => "RSA_4096",
    EcP256 => "EC_P256",
    EcP256k => "EC_P256K",
    EcP384 => "EC_P384",
    EcP521 => "EC_P521",
    EcSm2 => "EC_SM2",
    Hmac224 => "HMAC_224",
    Hmac256 => "HMAC_256",
    Hmac384 => "HMAC_384",
    Hmac512 => "HMAC_512",
});

wire_enum!(
    /// AsymmetricSign / AsymmetricVerify algorithms.
    SigningAlgorithm, "Algorithm" {
        RsaPssSha256 => "RSA_PSS_SHA_256",
        RsaPssSha384 => "RSA_PSS_SHA_384",
        RsaPssSha512 => "RSA_PSS_SHA_512",
        RsaPkcs1Sha256 => "RSA_PKCS1_SHA_256",
        RsaPkcs1Sha384 => "RSA_PKCS1_SHA_384",
        RsaPkcs1Sha512 => "RSA_PKCS1_SHA_512",
        EcdsaSha256 => "ECDSA_SHA_256",
        EcdsaSha384 => "ECDSA_SHA_384",
        EcdsaSha512 => "ECDSA_SHA_512",
        Sm2Dsa => "SM2DSA",
    }
);

wire_enum!(
    /// AsymmetricEncrypt / AsymmetricDecrypt algorithms.
    EncryptionAlgorithm, "Algorithm" {
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        Sm2Pke => "SM2PKE",
    }
);

wire_enum!(MacAlgorithm, "Algorithm" {
    HmacSha224 => "HMAC_SHA_224",
    HmacSha256 => "HMAC_SHA_256",
    HmacSha384 => "HMAC_SHA_384",
    HmacSha512 => "HMAC_SHA_512",
});

wire_enum!(
    /// Whether AsymmetricSign's input is a digest (the default) or a raw message.
    MessageType, "MessageType" {
        Digest => "DIGEST",
        Raw => "RAW",
    }
);

impl SigningAlgorithm {
    pub fn scheme(self) -> SignScheme {
        use SigningAlgorithm as A;
        match self {
            A::RsaPssSha256 => SignScheme::RsaPss(HashAlg::Sha256),
            A::RsaPssSha384 => SignScheme::RsaPss(HashAlg::Sha384),
            A::RsaPssSha512 => SignScheme::RsaPss(HashAlg::Sha512),
            A::RsaPkcs1Sha256 => SignScheme::RsaPkcs1(HashAlg::Sha256),
            A::RsaPkcs1Sha384 => SignScheme::RsaPkcs1(HashAlg::Sha384),
            A::RsaPkcs1Sha512 => SignScheme::RsaPkcs1(HashAlg::Sha512),
            A::EcdsaSha256 => SignScheme::Ecdsa(HashAlg::Sha256),
            A::EcdsaSha384 => SignScheme::Ecdsa(HashAlg::Sha384),
            A::EcdsaSha512 => SignScheme::Ecdsa(HashAlg::Sha512),
            A::Sm2Dsa => SignScheme::Sm2Dsa,
        }
    }
}

impl EncryptionAlgorithm {
    pub fn scheme(self) -> EncryptScheme {
        match self {
            EncryptionAlgorithm::RsaesOaepSha256 => EncryptScheme::RsaOaep(HashAlg::Sha256),
            EncryptionAlgorithm::RsaesOaepSha1 => EncryptScheme::RsaOaep(HashAlg::Sha1),
            EncryptionAlgorithm::Sm2Pke => EncryptScheme::Sm2Pke,
        }
    }
}

impl MacAlgorithm {
    pub fn hash(self) -> HashAlg {
        match self {
            MacAlgorithm::HmacSha256 => HashAlg::Sha256,
            MacAlgorithm::HmacSha224 => HashAlg::Sha224,
            MacAlgorithm::HmacSha384 => HashAlg::Sha384,
            MacAlgorithm::HmacSha512 => HashAlg::Sha512,
        }
    }
}

/// What kind of material a spec has, and so which family of operations it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecKind {
    Symmetric(Cipher),
    Asymmetric(AsymmetricKind),
    Hmac(HashAlg),
}

wire_enum!(KeyUsage, "KeyUsage" {
    EncryptDecrypt => "ENCRYPT/DECRYPT",
    SignVerify => "SIGN/VERIFY",
    GenerateVerifyMac => "GENERATE/VERIFY_MAC",
    KeyAgreement => "KEY_AGREEMENT",
});

wire_enum!(Origin, "Origin" {
    AliyunKms => "Aliyun_KMS",
    External => "EXTERNAL",
});

wire_enum!(ProtectionLevel, "ProtectionLevel" {
    Software => "SOFTWARE",
    Hsm => "HSM",
});

impl KeySpec {
    pub fn kind(self) -> SpecKind {
        use AsymmetricKind as A;
        match self {
            KeySpec::Aes256 => SpecKind::Symmetric(Cipher::Aes256),
            KeySpec::Aes128 => SpecKind::Symmetric(Cipher::Aes128),
            KeySpec::Aes192 => SpecKind::Symmetric(Cipher::Aes192),
            KeySpec::Sm4 => SpecKind::Symmetric(Cipher::Sm4),
            KeySpec::Rsa2048 => SpecKind::Asymmetric(A::Rsa { bits: 2048 }),
            KeySpec::Rsa3072 => SpecKind::Asymmetric(A::Rsa { bits: 3072 }),
            KeySpec::Rsa4096 => SpecKind::Asymmetric(A::Rsa { bits: 4096 }),
            KeySpec::EcP256 => SpecKind::Asymmetric(A::P256),
            KeySpec::EcP256k => SpecKind::Asymmetric(A::P256k),
            KeySpec::EcP384 => SpecKind::Asymmetric(A::P384),
            KeySpec::EcP521 => SpecKind::Asymmetric(A::P521),
            KeySpec::EcSm2 => SpecKind::Asymmetric(A::Sm2),
            KeySpec::Hmac224 => SpecKind::Hmac(HashAlg::Sha224),
            KeySpec::Hmac256 => SpecKind::Hmac(HashAlg::Sha256),
            KeySpec::Hmac384 => SpecKind::Hmac(HashAlg::Sha384),
            KeySpec::Hmac512 => SpecKind::Hmac(HashAlg::Sha512),
        }
    }

    /// The usages a key of this spec may be created with.
    pub fn allows_usage(self, usage: KeyUsage) -> bool {
        match self.kind() {
            SpecKind::Symmetric(_) => usage == KeyUsage::EncryptDecrypt,
            SpecKind::Hmac(_) => usage == KeyUsage::GenerateVerifyMac,
            SpecKind::Asymmetric(kind) => {
                usage == KeyUsage::SignVerify
                    || (usage == KeyUsage::EncryptDecrypt && kind.can_encrypt())
                    || (usage == KeyUsage::KeyAgreement && kind.can_agree())
            }
        }
    }

    /// SIGN/VERIFY when the spec can sign, GENERATE/VERIFY_MAC for HMAC, else ENCRYPT/DECRYPT.
    pub fn default_usage(self) -> KeyUsage {
        match self.kind() {
            SpecKind::Symmetric(_) => KeyUsage::EncryptDecrypt,
            SpecKind::Asymmetric(_) => KeyUsage::SignVerify,
            SpecKind::Hmac(_) => KeyUsage::GenerateVerifyMac,
        }
    }

    /// Fresh material for a new version: raw key bytes, or a PKCS#8 private key.
    pub fn generate_material(self) -> Zeroizing<Vec<u8>> {
        match self.kind() {
            SpecKind::Symmetric(cipher) => random_secret(cipher.key_len()),
            SpecKind::Hmac(hash) => random_secret(hash.output_len()),
            SpecKind::Asymmetric(kind) => kind.generate(),
        }
    }
}

/// The classes of operation that the key-state table distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, sign/verify, MACs,
    /// CreateKeyVersion, UpdateRotationPolicy, export.
    Cryptographic,
    EnableOrDisable,
    ScheduleDeletion,
    CancelDeletion,
    CreateAlias,
    /// UpdateKeyDescription, TagResource, UntagResource.
    UpdateMetadata,
    /// UpdateAlias, judged on the target key.
    BeAliasTarget,
    /// DescribeKey, ListAliasesByKeyId, ListResourceTags, SetDeletionProtection, DeleteAlias, SetKeyPolicy.
    Inspect,
}

impl KeyOp {
    /// The key-state table of the reference, every cell in one place.
    pub fn check(self, state: KeyState) -> Result<(), ErrorCode> {
        use KeyOp as Op;
        use KeyState as S;
        match (self, state) {
            (Op::Inspect, _) => Ok(()),
            (_, S::Unavailable) => Err(ErrorCode::Unavailable),
            (Op::Cryptographic, S::Enabled) => Ok(()),
            (Op::Cryptographic, S::Disabled) => Err(ErrorCode::Disabled),
            (Op::Cryptographic, S::PendingDeletion) => Err(ErrorCode::PendingDeletion),
            (Op::Cryptographic, S::PendingImport) => Err(ErrorCode::PendingImport),
            (Op::EnableOrDisable, S::Enabled | S::Disabled) => Ok(()),
            (Op::EnableOrDisable, S::PendingDeletion | S::PendingImport) => Err(ErrorCode::StateModifiedFailed),
            (Op::ScheduleDeletion, S::PendingDeletion) => Err(ErrorCode::StateModifiedFailed),
            (Op::ScheduleDeletion, S::Enabled | S::Disabled | S::PendingImport) => Ok(()),
            (Op::CancelDeletion, S::PendingDeletion) => Ok(()),
            (Op::CancelDeletion, S::Enabled | S::Disabled | S::PendingImport) => Err(ErrorCode::StateModifiedFailed),
            (Op::CreateAlias, S::PendingDeletion) => Err(ErrorCode::StateModifiedFailed),
            (Op::CreateAlias, S::Enabled | S::Disabled | S::PendingImport) => Ok(()),
            (Op::UpdateMetadata | Op::BeAliasTarget, S::PendingDeletion) => Err(ErrorCode::PendingDeletion),
            (Op::UpdateMetadata | Op::BeAliasTarget, S::Enabled | S::Disabled | S::PendingImport) => Ok(()),
        }
    }
}

/// Everything about a key except its material.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyMeta {
    pub key_id: String,
    pub region: String,
    pub account_id: String,
    pub state: KeyState,
    pub spec: KeySpec,
    pub usage: KeyUsage,
    pub origin: Origin,
    pub protection_level: ProtectionLevel,
    pub description: String,
    pub creator: String,
    pub creation_date: SimTime,
    pub delete_date: Option<SimTime>,
    /// The waiting period of a scheduled deletion, in days, as it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_window_in_days: Option<i32>,
    pub primary_version: Option<Uuid>,
    pub deletion_protection: bool,
    pub deletion_protection_description: String,
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub rotation: RotationPolicy,
    /// The versions made by a rotation someone asked for (not the schedule's), which AWS's
    /// ListKeyRotations tells apart; bounded by the key's versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_demand_versions: Vec<Uuid>,
    /// For imported (EXTERNAL) material: what was imported, so a re-import must bring the same material.
    #[serde(default)]
    pub import: Option<ImportedMaterial>,
    /// Set at creation and never changed: whether ExportKey may export the material.
    #[serde(default)]
    pub exportable: bool,
    /// The KMS instance the key lives in; `None` for a default key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// For a replica: the primary instance it is synchronised from. Replicas
    /// serve cryptography and reads; only the primary is managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<String>,
    /// For a primary: the instances in other regions it is synchronised to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaTarget>,
    /// The key policy (RAM policy JSON) set with SetKeyPolicy; `None` for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// For an AWS multi-Region key, on every copy of it: which copy is the primary. The copies are
    /// the keys of this id in other regions, so the replicas are never listed here to go stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region: Option<MultiRegion>,
}

/// What a copy of a multi-Region key knows of its set: the primary's region. A copy whose own
/// region this is, is the primary; every other copy is a replica.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MultiRegion {
    pub primary_region: String,
}

/// One replica ("shadow") instance a key is synchronised to, and how its last sync ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicaTarget {
    pub shadow_instance_id: String,
    pub shadow_region: String,
    /// Syncs fall due every `interval_secs` after `since`.
    pub interval_secs: u64,
    pub since: SimTime,
    /// A sync asked for by SyncKey at this time, done when `last_sync` reaches it.
    #[serde(default)]
    pub requested: Option<SimTime>,
    #[serde(default)]
    pub last_sync: Option<SyncReport>,
}

impl ReplicaTarget {
    /// The first periodic sync due after `after` (the first at `since` itself).
    pub fn next_tick_after(&self, after: Option<SimTime>) -> SimTime {
        let interval_ms = self.interval_ms();
        match after {
            Some(after) if after >= self.since => {
                let ticks = (after.millis() - self.since.millis()) / interval_ms + 1;
                SimTime(self.since.millis().saturating_add(ticks.saturating_mul(interval_ms)))
            }
            _ => self.since,
        }
    }

    /// Whether `at` is one of the periodic sync times.
    pub fn is_tick(&self, at: SimTime) -> bool {
        at >= self.since && (at.millis() - self.since.millis()) % self.interval_ms() == 0
    }

    fn interval_ms(&self) -> i64 {
        i64::try_from(self.interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX).max(1)
    }

    /// When the last sync task ran, if any has.
    pub fn last_sync_at(&self) -> Option<SimTime> {
        self.last_sync.as_ref().map(|report| report.at)
    }
}

/// How a sync task ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncReport {
    pub sync_task_id: String,
    pub at: SimTime,
    /// Empty on success.
    pub error_code: String,
}

/// What kmsim remembers of imported material besides the material itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportedMaterial {
    /// SHA-256 of the material, hex.
    pub sha256: String,
    /// When the material expires and the key returns to PendingImport; `None` for never.
    pub expires: Option<SimTime>,
}

/// Automatic rotation: whether it is on, how often, and when it last and next happens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RotationPolicy {
    pub automatic: AutomaticRotation,
    pub interval_secs: Option<u64>,
    pub last_rotation_date: Option<SimTime>,
    pub next_rotation_date: Option<SimTime>,
}

wire_enum!(
    #[derive(Default)]
    AutomaticRotation, "EnableAutomaticRotation" {
        Enabled => "Enabled",
        #[default]
        Disabled => "Disabled",
        Suspended => "Suspended",
    }
);

/// Rotation intervals, written `integer[unit]` with unit d, h, m or s.
pub const ROTATION_INTERVAL_SECS: std::ops::RangeInclusive<u64> = 7 * 86_400..=365 * 86_400;

/// Parses `30d`, `720h`, `604800s`…; outside 7 to 365 days is InvalidParameter naming RotationInterval.
pub fn parse_rotation_interval(text: &str) -> KmsResult<u64> {
    parse_interval(text, "RotationInterval", ROTATION_INTERVAL_SECS, "Write it as 7d to 365d (units d, h, m or s).")
}

/// Parses an interval in the one duration grammar ([`crate::clock::parse_duration`]) into seconds;
/// unreadable or outside `range` is InvalidParameter naming `param`, with `hint`.
pub fn parse_interval(text: &str, param: &str, range: std::ops::RangeInclusive<u64>, hint: &str) -> KmsResult<u64> {
    let secs = crate::clock::parse_duration(text).map_err(|_| KmsError::invalid_because(param, hint))?.as_secs();
    if range.contains(&secs) { Ok(secs) } else { Err(KmsError::invalid_because(param, hint)) }
}

impl KeyMeta {
    pub fn arn(&self) -> String {
        key_arn(&self.region, &self.account_id, &self.key_id)
    }
}

pub fn key_arn(region: &str, account_id: &str, key_id: &str) -> String {
    format!("acs:kms:{region}:{account_id}:key/{key_id}")
}

/// One version of a key's material. Material is wiped from memory on drop.
pub struct KeyVersion {
    pub version_id: Uuid,
    pub created: SimTime,
    pub material: Zeroizing<Vec<u8>>,
    /// The asymmetric private key, parsed from `material` on first use.
    parsed: std::sync::OnceLock<Arc<ParsedKey>>,
}

impl KeyVersion {
    pub fn new(version_id: Uuid, created: SimTime, material: Zeroizing<Vec<u8>>) -> Self {
        KeyVersion { version_id, created, material, parsed: std::sync::OnceLock::new() }
    }

    /// The private key of an asymmetric version, parsed once and then shared.
    pub fn private_key(&self, kind: AsymmetricKind) -> KmsResult<Arc<ParsedKey>> {
        if let Some(parsed) = self.parsed.get() {
            return Ok(parsed.clone());
        }
        let parsed = Arc::new(ParsedKey::from_pkcs8(kind, &self.material).map_err(|_| KmsError::internal())?);
        Ok(self.parsed.get_or_init(|| parsed).clone())
    }
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version_id", &self.version_id)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// An immutable snapshot of a key: readers hold an `Arc<Key>` while they work,
/// writers publish a new snapshot after the change is durable.
#[derive(Debug, Clone)]
pub struct Key {
    pub meta: KeyMeta,
    pub versions: Vec<Arc<KeyVersion>>,
}

impl Key {
    /// Whether the key has usable material: an imported key whose material was deleted has none.
    pub fn has_material(&self) -> bool {
        self.primary().is_some_and(|v| !v.material.is_empty())
    }

    pub fn primary(&self) -> Option<&Arc<KeyVersion>> {
        let id = self.meta.primary_version?;
        self.version(id)
    }

    pub fn version(&self, version_id: Uuid) -> Option<&Arc<KeyVersion>> {
        self.versions.iter().find(|v| v.version_id == version_id)
    }

    /// Applies the state table for `op`; the error names the key state.
    pub fn allow(&self, op: KeyOp) -> KmsResult<()> {
        op.check(self.meta.state).map_err(|code| {
            KmsError::new(code).refused(Refusal::KeyState { key_id: self.meta.key_id.clone(), state: self.meta.state })
        })
    }

    /// `error`, marked as this key's spec or usage refusing what was asked of it.
    pub fn refuse_use(&self, error: impl Into<KmsError>) -> KmsError {
        error.into().refused(Refusal::KeyUsage { key_id: self.meta.key_id.clone(), usage: self.meta.usage })
    }

    /// Whether this is the primary copy of a multi-Region key.
    pub fn is_multi_region_primary(&self) -> bool {
        self.meta.multi_region.as_ref().is_some_and(|m| m.primary_region == self.meta.region)
    }

    /// A replica is managed through its primary: changes to it are UnsupportedOperation.
    pub fn managed_here(&self) -> KmsResult<()> {
        match self.meta.replica_of {
            None => Ok(()),
            Some(_) => Err(KmsError::new(ErrorCode::UnsupportedOperation)),
        }
    }

    /// A copy with `change` applied to the metadata, sharing the material.
    pub fn with_meta(&self, change: impl FnOnce(&mut KeyMeta)) -> Key {
        let mut next = self.clone();
        change(&mut next.meta);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_round_trip_their_alibaba_spelling() {
        for spec in KeySpec::ALL {
            assert_eq!(KeySpec::parse(spec.as_str()).unwrap(), *spec);
        }
        assert_eq!(KeyState::parse("Enabled").unwrap(), KeyState::Enabled);
        assert_eq!(KeyUsage::EncryptDecrypt.as_str(), "ENCRYPT/DECRYPT");
        let err = KeySpec::parse("AES_256").unwrap_err();
        assert_eq!(err.message, "The specified parameter \"KeySpec\" is not valid.");
        assert_eq!(serde_json::to_string(&KeySpec::Sm4).unwrap(), "\"Aliyun_SM4\"");
    }
}

#[cfg(test)]
mod state_table_tests {
    use super::*;

    /// The Unavailable column (an expired KMS instance) cannot be reached over gRPC
    /// until instances exist; every cryptographic call answers Rejected.Unavailable.
    #[test]
    fn unavailable_keys_refuse_cryptography_but_can_be_inspected() {
        assert_eq!(KeyOp::Cryptographic.check(KeyState::Unavailable), Err(ErrorCode::Unavailable));
        assert_eq!(KeyOp::Inspect.check(KeyState::Unavailable), Ok(()));
    }
}

#[cfg(test)]
mod replica_schedule_tests {
    use super::*;

    fn target(since_ms: i64, interval_secs: u64) -> ReplicaTarget {
        ReplicaTarget {
            shadow_instance_id: "kst-shh1".into(),
            shadow_region: "cn-shanghai".into(),
            interval_secs,
            since: SimTime(since_ms),
            requested: None,
            last_sync: None,
        }
    }

    #[test]
    fn periodic_syncs_fall_on_a_grid_from_since() {
        let t = target(10_000, 60);
        assert_eq!(t.next_tick_after(None), SimTime(10_000), "the first is at since");
        assert_eq!(t.next_tick_after(Some(SimTime(9_000))), SimTime(10_000));
        assert_eq!(t.next_tick_after(Some(SimTime(10_000))), SimTime(70_000), "strictly after");
        assert_eq!(t.next_tick_after(Some(SimTime(69_999))), SimTime(70_000));
        assert_eq!(t.next_tick_after(Some(SimTime(70_000))), SimTime(130_000));
        assert!(t.is_tick(SimTime(130_000)));
        assert!(!t.is_tick(SimTime(130_001)));
        assert!(!t.is_tick(SimTime(9_999 - 50_000)), "nothing before since");
    }
}
