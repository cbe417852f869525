//! Keys: their lifecycle, aliases, tags, versions, imported and exported
//! material, and the cryptography done with them.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::operation;
use crate::context::CallContext;
use crate::engine::key::{Key, KeyMeta, Origin, SpecKind, parse_rotation_interval};
use crate::engine::{
    AliasRecord, CreateKeyInput, DataKey, DataKeyPair, ExportTo, Exported, ImportParameters, KeyDescription,
    KeyListing, Opened, Page, Paged, PublicKey, Reencrypted, ReplicaInput, Replicated, Sealed, SignRequest, UnderKey,
    VersionInfo,
};
use crate::engine::{ErrorCode, KmsError, KmsResult};
use crate::kernel::{App, Names};

/// The state a cancelled deletion leaves a key with material in: the one vendor
/// behaviour the two APIs disagree on, chosen by the front end the call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRestores {
    /// Alibaba: the key is usable again.
    Enabled,
    /// AWS: the key must be enabled again on purpose.
    Disabled,
}

/// An encryption context: compared as a set of entries, so kept sorted.
pub type Context = BTreeMap<String, String>;

operation! {
    /// Creates a key of any spec; RSA generation runs on the blocking pool (the catalogue says so).
    CreateKey = CREATE_KEY -> Arc<Key> {
        key_spec: String = "KeySpec",
        key_usage: String = "KeyUsage",
        origin: String = "Origin",
        description: String = "Description",
        protection_level: String = "ProtectionLevel",
        enable_automatic_rotation: bool = "EnableAutomaticRotation",
        rotation_interval: String = "RotationInterval",
        exportable: bool = "Exportable",
        dkms_instance_id: String = "DKMSInstanceId",
        policy: String = "Policy",
        /// AWS's multi-Region primary key, as the caller gave it (the other front ends have no such
        /// parameter, so `None`): only a given value is recorded.
        multi_region: Option<bool> = "MultiRegion",
        /// Tags to start with (AWS's CreateKey takes them); empty for none.
        tags: Vec<(String, String)> = "Tags",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let CreateKey {
            key_spec,
            key_usage,
            origin,
            description,
            protection_level,
            enable_automatic_rotation,
            rotation_interval,
            exportable,
            dkms_instance_id,
            policy,
            multi_region,
            tags,
        } = op;
        let input = CreateKeyInput {
            key_spec,
            key_usage,
            origin,
            description,
            protection_level,
            enable_automatic_rotation,
            rotation_interval,
            exportable,
            dkms_instance_id,
            policy,
            multi_region: multi_region.unwrap_or(false),
            tags,
        };
        app.engine.create_key(&cx, input)?
    }
}

operation! {
    /// The key, with its multi-Region set when it has one.
    DescribeKey = DESCRIBE_KEY -> KeyDescription {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.describe_key_with_set(&cx, &op.key_id)? }
}

operation! {
    /// AWS's ReplicateKey: copies a multi-Region primary key (of the caller's region) to
    /// `replica_region`. Not Alibaba's ReplicateKey (`ops::instances`), which synchronises
    /// a key of a KMS instance to another instance.
    ReplicateMultiRegionKey = REPLICATE_MULTI_REGION_KEY -> Replicated {
        key_id: String = "KeyId",
        replica_region: String = "ReplicaRegion",
        description: String = "Description",
        policy: String = "Policy",
        tags: Vec<(String, String)> = "Tags",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let ReplicateMultiRegionKey { key_id, replica_region, description, policy, tags } = op;
        let input = ReplicaInput { replica_region, description, policy, tags };
        app.engine.replicate_to_region(&cx, &key_id, input).await?
    }
}

operation! {
    /// Makes the replica in `primary_region` the primary of a multi-Region key, named by its primary.
    UpdatePrimaryRegion = UPDATE_PRIMARY_REGION -> () {
        key_id: String = "KeyId",
        primary_region: String = "PrimaryRegion",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.update_primary_region(&cx, &op.key_id, &op.primary_region).await? }
}

operation! {
    GetKeyPolicy = GET_KEY_POLICY -> String {
        key_id: String = "KeyId",
        policy_name: String = "PolicyName",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.get_key_policy(&cx, &op.key_id, &op.policy_name)? }
}

operation! {
    /// The names of a key's policies: kmsim keys, like AWS's, have one, `default`.
    ListKeyPolicies = LIST_KEY_POLICIES -> Vec<String> {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.describe_key(&cx, &op.key_id)?.map(|_| vec!["default".to_owned()]) }
}

operation! {
    SetKeyPolicy = SET_KEY_POLICY -> () {
        key_id: String = "KeyId",
        policy_name: String = "PolicyName",
        policy: String = "Policy",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.set_key_policy(&cx, &op.key_id, &op.policy_name, &op.policy).await? }
}

operation! {
    /// A page of keys, each with its aliases.
    ListKeys = LIST_KEYS -> Paged<KeyListing> {
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_keys(&cx, page)?
    }
}

operation! {
    UpdateKeyDescription = UPDATE_KEY_DESCRIPTION -> Arc<Key> {
        key_id: String = "KeyId",
        description: String = "Description",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.update_key_description(&cx, &op.key_id, op.description).await? }
}

operation! {
    EnableKey = ENABLE_KEY -> Arc<Key> {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.set_key_enabled(&cx, &op.key_id, true).await? }
}

operation! {
    DisableKey = DISABLE_KEY -> Arc<Key> {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.set_key_enabled(&cx, &op.key_id, false).await? }
}

operation! {
    /// The key's id and the date it will be deleted.
    ScheduleKeyDeletion = SCHEDULE_KEY_DELETION -> (String, crate::clock::SimTime) {
        key_id: String = "KeyId",
        pending_window_in_days: i32 = "PendingWindowInDays",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.schedule_key_deletion(&cx, &op.key_id, op.pending_window_in_days).await? }
}

operation! {
    CancelKeyDeletion = CANCEL_KEY_DELETION -> Arc<Key> {
        key_id: String = "KeyId",
        /// The state a key with material returns to: Alibaba's Enabled, AWS's Disabled.
        restore: CancelRestores,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let enabled = op.restore == CancelRestores::Enabled;
        app.engine.cancel_key_deletion(&cx, &op.key_id, enabled).await?
    }
}

operation! {
    SetDeletionProtection = SET_DELETION_PROTECTION -> Arc<Key> {
        protected_resource_arn: String = "ProtectedResourceArn",
        enable_deletion_protection: bool = "EnableDeletionProtection",
        deletion_protection_description: String = "DeletionProtectionDescription",
    }
    names(op) { Names::key(&op.protected_resource_arn) }
    run(op, app, cx) {
        app.engine
            .set_deletion_protection(
                &cx,
                &op.protected_resource_arn,
                op.enable_deletion_protection,
                op.deletion_protection_description,
            )
            .await?
    }
}

operation! {
    CreateAlias = CREATE_ALIAS -> () {
        alias_name: String = "AliasName",
        key_id: String = "KeyId",
    }
    names(op) { Names::alias(&op.alias_name, &op.key_id) }
    run(op, app, cx) { app.engine.create_alias(&cx, &op.alias_name, &op.key_id).await? }
}

operation! {
    UpdateAlias = UPDATE_ALIAS -> () {
        alias_name: String = "AliasName",
        target_key_id: String = "TargetKeyId",
    }
    names(op) { Names::alias(&op.alias_name, &op.target_key_id) }
    run(op, app, cx) { app.engine.update_alias(&cx, &op.alias_name, &op.target_key_id).await? }
}

operation! {
    DeleteAlias = DELETE_ALIAS -> () {
        alias_name: String = "AliasName",
    }
    names(op) { Names::alias(&op.alias_name, "") }
    run(op, app, cx) { app.engine.delete_alias(&cx, &op.alias_name).await? }
}

operation! {
    /// A page of the aliases; only one key's where the caller's API names it here (AWS's `KeyId`).
    ListAliases = LIST_ALIASES -> Paged<AliasRecord> {
        key_id: String = "KeyId",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(op) { if op.key_id.is_empty() { Names::none() } else { Names::key(&op.key_id) } }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        let only = Some(op.key_id.as_str()).filter(|id| !id.is_empty());
        app.engine.list_aliases(&cx, only, page)?
    }
}

operation! {
    ListAliasesByKeyId = LIST_ALIASES_BY_KEY_ID -> Paged<AliasRecord> {
        key_id: String = "KeyId",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_aliases(&cx, Some(&op.key_id), page)?
    }
}

operation! {
    TagResource = TAG_RESOURCE -> Arc<Key> {
        key_id: String = "KeyId",
        tags: Vec<(String, String)> = "Tags",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.tag_resource(&cx, &op.key_id, op.tags).await? }
}

operation! {
    UntagResource = UNTAG_RESOURCE -> Arc<Key> {
        key_id: String = "KeyId",
        tag_keys: Vec<String> = "TagKeys",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.untag_resource(&cx, &op.key_id, op.tag_keys).await? }
}

operation! {
    /// A key's tags, in key order: a page of them where the caller's API pages them (AWS's), else all.
    ListResourceTags = LIST_RESOURCE_TAGS -> Paged<(String, String)> {
        key_id: String = "KeyId",
        page: Option<Page>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let tags = app.engine.list_resource_tags(&cx, &op.key_id)?;
        tags.map(|tags| {
            let all: Vec<(String, String)> = tags.into_iter().collect();
            let page = op.page.unwrap_or(Page { number: 1, size: all.len().max(1) });
            page.slice(all)
        })
    }
}

operation! {
    Encrypt = ENCRYPT -> Sealed {
        key_id: String = "KeyId",
        plaintext: Zeroizing<Vec<u8>>,
        encryption_context: Context = "EncryptionContext",
    }
    names(op) { Names::key(&op.key_id).with_context(&op.encryption_context) }
    run(op, app, cx) { app.engine.encrypt(&cx, &op.key_id, &op.plaintext, op.encryption_context)? }
}

operation! {
    /// Its key is inside its ciphertext: found only as it runs.
    Decrypt = DECRYPT -> Opened {
        ciphertext_blob: Vec<u8>,
        encryption_context: Context = "EncryptionContext",
        /// The key the caller says sealed the ciphertext (AWS's optional `KeyId`); empty for any.
        expected_key_id: String = "KeyId",
    }
    names(op) { Names::found_while_running().with_context(&op.encryption_context) }
    run(op, app, cx) {
        let expected = expected_key(&app, &cx, &op.expected_key_id)?;
        let opened = app.engine.decrypt(&cx, &op.ciphertext_blob, op.encryption_context)?;
        sealed_by(expected, &opened.value.key_id)?;
        opened
    }
}

/// The key a caller says sealed a ciphertext, as the engine names it; `None` when none was named.
/// Resolved before the ciphertext is opened, so that the record names the key the ciphertext was
/// sealed under, as it would anyway.
fn expected_key(app: &App, cx: &CallContext, named: &str) -> KmsResult<Option<String>> {
    match named {
        "" => Ok(None),
        named => Ok(Some(app.engine.describe_key(cx, named)?.value.key_id)),
    }
}

/// IncorrectKey when the caller named a key that did not seal the ciphertext.
fn sealed_by(expected: Option<String>, key_id: &str) -> KmsResult<()> {
    match expected {
        Some(expected) if expected != key_id => Err(ErrorCode::IncorrectKey.into()),
        _ => Ok(()),
    }
}

operation! {
    ReEncrypt = RE_ENCRYPT -> Reencrypted {
        ciphertext_blob: Vec<u8>,
        source_encryption_context: Context = "SourceEncryptionContext",
        destination_key_id: String = "DestinationKeyId",
        destination_encryption_context: Context = "DestinationEncryptionContext",
        /// The key the caller says sealed the ciphertext (AWS's optional `SourceKeyId`); empty for any.
        expected_source_key_id: String = "SourceKeyId",
    }
    names(op) {
        Names::found_while_running()
            .with_context(&op.destination_encryption_context)
            .with_source_context(&op.source_encryption_context)
    }
    run(op, app, cx) {
        let expected = expected_key(&app, &cx, &op.expected_source_key_id)?;
        let moved = app.engine.re_encrypt(
            &cx,
            &op.ciphertext_blob,
            op.source_encryption_context,
            &op.destination_key_id,
            op.destination_encryption_context,
        )?;
        sealed_by(expected, &moved.value.source_key_id)?;
        moved
    }
}

operation! {
    GenerateDataKey = GENERATE_DATA_KEY -> DataKey {
        key_id: String = "KeyId",
        key_spec: String = "KeySpec",
        number_of_bytes: i32 = "NumberOfBytes",
        encryption_context: Context = "EncryptionContext",
    }
    names(op) { Names::key(&op.key_id).with_context(&op.encryption_context) }
    run(op, app, cx) {
        app.engine.generate_data_key(&cx, &op.key_id, &op.key_spec, op.number_of_bytes, op.encryption_context)?
    }
}

operation! {
    /// A data key whose plaintext its front end never sends.
    GenerateDataKeyWithoutPlaintext = GENERATE_DATA_KEY_WITHOUT_PLAINTEXT -> Sealed {
        key_id: String = "KeyId",
        key_spec: String = "KeySpec",
        number_of_bytes: i32 = "NumberOfBytes",
        encryption_context: Context = "EncryptionContext",
    }
    names(op) { Names::key(&op.key_id).with_context(&op.encryption_context) }
    run(op, app, cx) {
        let GenerateDataKeyWithoutPlaintext { key_id, key_spec, number_of_bytes, encryption_context } = op;
        let data_key = app.engine.generate_data_key(&cx, &key_id, &key_spec, number_of_bytes, encryption_context)?;
        data_key.map(|data_key| data_key.sealed)
    }
}

operation! {
    /// A key pair whose private key is sealed under the key; RSA generation runs on the blocking pool.
    GenerateDataKeyPair = GENERATE_DATA_KEY_PAIR -> DataKeyPair {
        key_id: String = "KeyId",
        key_pair_spec: String = "KeyPairSpec",
        encryption_context: Context = "EncryptionContext",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        app.engine.generate_data_key_pair(&cx, &op.key_id, &op.key_pair_spec, op.encryption_context)?
    }
}

operation! {
    /// A key pair whose private key its front end never sends, only the sealed copy.
    GenerateDataKeyPairWithoutPlaintext = GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT -> DataKeyPair {
        key_id: String = "KeyId",
        key_pair_spec: String = "KeyPairSpec",
        encryption_context: Context = "EncryptionContext",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        app.engine.generate_data_key_pair(&cx, &op.key_id, &op.key_pair_spec, op.encryption_context)?
    }
}

operation! {
    GenerateRandom = GENERATE_RANDOM -> Zeroizing<Vec<u8>> {
        length: i32 = "Length",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.generate_random(op.length)? }
}

operation! {
    AsymmetricSign = ASYMMETRIC_SIGN -> UnderKey<Vec<u8>> {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
        algorithm: String = "Algorithm",
        message_type: String = "MessageType",
        digest: Vec<u8>,
        message: Vec<u8>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let request = SignRequest {
            key_id: &op.key_id,
            key_version_id: &op.key_version_id,
            algorithm: &op.algorithm,
            digest: &op.digest,
            message: &op.message,
            message_type: &op.message_type,
        };
        app.engine.asymmetric_sign(&cx, request)?
    }
}

operation! {
    AsymmetricVerify = ASYMMETRIC_VERIFY -> UnderKey<bool> {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
        algorithm: String = "Algorithm",
        message_type: String = "MessageType",
        digest: Vec<u8>,
        message: Vec<u8>,
        signature: Vec<u8>,
        /// Whether a signature that does not verify fails the call (AWS) rather than answering false (Alibaba).
        invalid_is_error: bool,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let request = SignRequest {
            key_id: &op.key_id,
            key_version_id: &op.key_version_id,
            algorithm: &op.algorithm,
            digest: &op.digest,
            message: &op.message,
            message_type: &op.message_type,
        };
        let checked = app.engine.asymmetric_verify(&cx, request, &op.signature)?;
        if op.invalid_is_error && !checked.value.value {
            return Err(ErrorCode::InvalidSignature.into());
        }
        checked
    }
}

operation! {
    AsymmetricEncrypt = ASYMMETRIC_ENCRYPT -> UnderKey<Vec<u8>> {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
        algorithm: String = "Algorithm",
        plaintext: Zeroizing<Vec<u8>>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let key = (op.key_id.as_str(), op.key_version_id.as_str());
        app.engine.asymmetric_encrypt(&cx, key, &op.algorithm, &op.plaintext)?
    }
}

operation! {
    AsymmetricDecrypt = ASYMMETRIC_DECRYPT -> UnderKey<Zeroizing<Vec<u8>>> {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
        algorithm: String = "Algorithm",
        ciphertext_blob: Vec<u8>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let key = (op.key_id.as_str(), op.key_version_id.as_str());
        app.engine.asymmetric_decrypt(&cx, key, &op.algorithm, &op.ciphertext_blob)?
    }
}

operation! {
    /// ECDH between a KEY_AGREEMENT key and the caller's public key; the output is the shared secret.
    DeriveSharedSecret = DERIVE_SHARED_SECRET -> UnderKey<Zeroizing<Vec<u8>>> {
        key_id: String = "KeyId",
        key_agreement_algorithm: String = "KeyAgreementAlgorithm",
        public_key: Vec<u8>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        app.engine.derive_shared_secret(&cx, &op.key_id, &op.key_agreement_algorithm, &op.public_key)?
    }
}

operation! {
    /// The public key as PEM.
    GetPublicKey = GET_PUBLIC_KEY -> UnderKey<PublicKey> {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.get_public_key(&cx, &op.key_id, &op.key_version_id)? }
}

operation! {
    /// A manual rotation; an RSA key's runs on the blocking pool (the catalogue says so).
    CreateKeyVersion = CREATE_KEY_VERSION -> VersionInfo {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let at = cx.received_at;
        app.engine.rotate_key(&cx, &op.key_id, at).await?
    }
}

operation! {
    DescribeKeyVersion = DESCRIBE_KEY_VERSION -> VersionInfo {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.describe_key_version(&cx, &op.key_id, &op.key_version_id)? }
}

operation! {
    ListKeyVersions = LIST_KEY_VERSIONS -> Paged<VersionInfo> {
        key_id: String = "KeyId",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_key_versions(&cx, &op.key_id, page)?
    }
}

operation! {
    UpdateRotationPolicy = UPDATE_ROTATION_POLICY -> Arc<Key> {
        key_id: String = "KeyId",
        enable_automatic_rotation: bool = "EnableAutomaticRotation",
        rotation_interval: String = "RotationInterval",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let interval = match (op.enable_automatic_rotation, op.rotation_interval.as_str()) {
            (true, "") | (false, _) => None,
            (true, text) => Some(parse_rotation_interval(text)?),
        };
        app.engine.update_rotation_policy(&cx, &op.key_id, op.enable_automatic_rotation, interval).await?
    }
}

/// AWS rotates only symmetric keys whose material it made; its rotation calls refuse the others.
fn rotatable(app: &App, cx: &CallContext, key_id: &str) -> KmsResult<()> {
    let key = app.engine.describe_key(cx, key_id)?.value;
    if key.origin == Origin::External {
        return Err(
            KmsError::new(ErrorCode::UnsupportedOperation).because("Keys with imported material do not rotate.")
        );
    }
    if !matches!(key.spec.kind(), SpecKind::Symmetric(_)) {
        return Err(KmsError::new(ErrorCode::UnsupportedOperation).because("Only symmetric encryption keys rotate."));
    }
    Ok(())
}

operation! {
    /// Turns on automatic rotation every `rotation_period_in_days` (AWS's 90 to 2560; 365 when 0).
    EnableKeyRotation = ENABLE_KEY_ROTATION -> Arc<Key> {
        key_id: String = "KeyId",
        rotation_period_in_days: i32 = "RotationPeriodInDays",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let days = match op.rotation_period_in_days {
            0 => 365,
            days @ 90..=2560 => days,
            _ => return Err(KmsError::invalid_because("RotationPeriodInDays", "Send 90 to 2560.")),
        };
        rotatable(&app, &cx, &op.key_id)?;
        app.engine.update_rotation_policy(&cx, &op.key_id, true, Some(days as u64 * 86_400)).await?
    }
}

operation! {
    DisableKeyRotation = DISABLE_KEY_ROTATION -> Arc<Key> {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        rotatable(&app, &cx, &op.key_id)?;
        app.engine.update_rotation_policy(&cx, &op.key_id, false, None).await?
    }
}

operation! {
    /// The key, for its rotation policy.
    GetKeyRotationStatus = GET_KEY_ROTATION_STATUS -> KeyMeta {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        rotatable(&app, &cx, &op.key_id)?;
        app.engine.describe_key(&cx, &op.key_id)?
    }
}

operation! {
    /// A rotation now, of a key AWS would rotate; the schedule stays as it was.
    RotateKeyOnDemand = ROTATE_KEY_ON_DEMAND -> VersionInfo {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        rotatable(&app, &cx, &op.key_id)?;
        let at = cx.received_at;
        app.engine.rotate_key(&cx, &op.key_id, at).await?
    }
}

operation! {
    /// A page of the key's rotations (its versions after the first), oldest first.
    ListKeyRotations = LIST_KEY_ROTATIONS -> Paged<VersionInfo> {
        key_id: String = "KeyId",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_key_rotations(&cx, &op.key_id, page)?
    }
}

operation! {
    /// Generates the RSA wrapping key: runs on the blocking pool (the catalogue says so).
    GetParametersForImport = GET_PARAMETERS_FOR_IMPORT -> ImportParameters {
        key_id: String = "KeyId",
        wrapping_algorithm: String = "WrappingAlgorithm",
        wrapping_key_spec: String = "WrappingKeySpec",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        app.engine.get_parameters_for_import(&cx, &op.key_id, &op.wrapping_algorithm, &op.wrapping_key_spec)?
    }
}

operation! {
    ImportKeyMaterial = IMPORT_KEY_MATERIAL -> Arc<Key> {
        key_id: String = "KeyId",
        key_material_expire_unix: i64 = "KeyMaterialExpireUnix",
        encrypted_key_material: Vec<u8>,
        import_token: String,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        app.engine
            .import_key_material(
                &cx,
                &op.key_id,
                &op.encrypted_key_material,
                &op.import_token,
                op.key_material_expire_unix,
            )
            .await?
    }
}

operation! {
    DeleteKeyMaterial = DELETE_KEY_MATERIAL -> Arc<Key> {
        key_id: String = "KeyId",
        /// Whether a key with no material to delete answers as if it were deleted (AWS) rather than
        /// refusing in its state, PendingImport (Alibaba).
        absent_is_deleted: bool,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.delete_key_material(&cx, &op.key_id, op.absent_is_deleted).await? }
}

operation! {
    /// Its key is inside its ciphertext: found only as it runs.
    ExportDataKey = EXPORT_DATA_KEY -> Exported {
        encryption_context: Context = "EncryptionContext",
        wrapping_algorithm: String = "WrappingAlgorithm",
        wrapping_key_spec: String = "WrappingKeySpec",
        ciphertext_blob: Vec<u8>,
        public_key_blob: Vec<u8>,
    }
    names(_) { Names::found_while_running() }
    run(op, app, cx) {
        let to = ExportTo {
            public_key_blob: &op.public_key_blob,
            wrapping_algorithm: &op.wrapping_algorithm,
            wrapping_key_spec: &op.wrapping_key_spec,
        };
        app.engine.export_data_key(&cx, &op.ciphertext_blob, op.encryption_context, to)?
    }
}

operation! {
    /// A new data key, sealed under the key and wrapped for the caller; the
    /// output is the data key and its export blob.
    GenerateAndExportDataKey = GENERATE_AND_EXPORT_DATA_KEY -> (DataKey, Vec<u8>) {
        key_id: String = "KeyId",
        key_spec: String = "KeySpec",
        number_of_bytes: i32 = "NumberOfBytes",
        encryption_context: Context = "EncryptionContext",
        wrapping_algorithm: String = "WrappingAlgorithm",
        wrapping_key_spec: String = "WrappingKeySpec",
        public_key_blob: Vec<u8>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let to = ExportTo {
            public_key_blob: &op.public_key_blob,
            wrapping_algorithm: &op.wrapping_algorithm,
            wrapping_key_spec: &op.wrapping_key_spec,
        };
        let key = (op.key_id.as_str(), op.key_spec.as_str(), op.number_of_bytes);
        app.engine.generate_and_export_data_key(&cx, key, op.encryption_context, to)?
    }
}

operation! {
    ExportKey = EXPORT_KEY -> Exported {
        key_id: String = "KeyId",
        key_version_id: String = "KeyVersionId",
        wrapping_algorithm: String = "WrappingAlgorithm",
        wrapping_key_spec: String = "WrappingKeySpec",
        public_key_blob: Vec<u8>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let to = ExportTo {
            public_key_blob: &op.public_key_blob,
            wrapping_algorithm: &op.wrapping_algorithm,
            wrapping_key_spec: &op.wrapping_key_spec,
        };
        app.engine.export_key(&cx, &op.key_id, &op.key_version_id, to)?
    }
}

operation! {
    GenerateMac = GENERATE_MAC -> UnderKey<Vec<u8>> {
        key_id: String = "KeyId",
        algorithm: String = "Algorithm",
        message: Vec<u8>,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) { app.engine.generate_mac(&cx, &op.key_id, &op.algorithm, &op.message)? }
}

operation! {
    VerifyMac = VERIFY_MAC -> UnderKey<bool> {
        key_id: String = "KeyId",
        algorithm: String = "Algorithm",
        message: Vec<u8>,
        mac: Vec<u8>,
        /// Whether a MAC that does not verify fails the call (AWS) rather than answering false (Alibaba).
        invalid_is_error: bool,
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let checked = app.engine.verify_mac(&cx, &op.key_id, &op.algorithm, &op.message, &op.mac)?;
        if op.invalid_is_error && !checked.value.value {
            return Err(ErrorCode::InvalidMac.into());
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Operation;

    #[test]
    fn plaintext_never_becomes_a_parameter() {
        let context = Context::from([("b".into(), "2".into()), ("a".into(), "1".into())]);
        let request = Encrypt {
            key_id: "alias/app".into(),
            plaintext: Zeroizing::new(b"card number 4111".to_vec()),
            encryption_context: context,
        };
        let params = request.audit_params().to_string();
        assert_eq!(params, r#"{"KeyId":"alias/app","EncryptionContext":{"a":"1","b":"2"}}"#);
    }

    #[test]
    fn an_alias_call_names_the_alias_and_its_key() {
        let create = CreateAlias { alias_name: "alias/app".into(), key_id: "key-1".into() };
        let names = create.names();
        assert_eq!(
            (names.alias.as_deref(), names.key.as_deref(), names.up_front),
            (Some("alias/app"), Some("key-1"), true)
        );
        let delete = DeleteAlias { alias_name: "alias/app".into() };
        assert_eq!(delete.names().key, None, "deleting an alias names no key");
    }
}
