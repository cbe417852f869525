//! `kmsim.v1.KeyManagementService`: which kernel operation each method is,
//! how its request decodes into it, and how its output encodes as the
//! response. The kernel does the rest.

use std::collections::{BTreeMap, HashMap};

use zeroize::Zeroizing;

use super::{Grpc, decode, service};
use crate::engine::key::KeyMeta;
use crate::engine::{AliasRecord, Exported, KeyListing, Paged, Sealed, UnderKey, VersionInfo};
use crate::frontends::text::page_fields;
use crate::kernel::ops::kms as ops;
use crate::kernel::ops::kms::CancelRestores;
use crate::proto as pb;
use crate::proto::key_management_service_server::KeyManagementService;

pub struct KmsApi {
    grpc: Grpc,
}

impl KmsApi {
    pub fn new(grpc: Grpc) -> Self {
        KmsApi { grpc }
    }
}

service! {
    impl KeyManagementService for KmsApi {
        create_key(CreateKeyRequest) -> CreateKeyResponse = CreateKey,
            |key| pb::CreateKeyResponse { key_metadata: Some(key_metadata(&key.meta)) };
        describe_key(DescribeKeyRequest) -> DescribeKeyResponse = DescribeKey,
            |described| pb::DescribeKeyResponse { key_metadata: Some(key_metadata(&described.meta)) };
        get_key_policy(GetKeyPolicyRequest) -> GetKeyPolicyResponse = GetKeyPolicy,
            |policy| pb::GetKeyPolicyResponse { policy };
        set_key_policy(SetKeyPolicyRequest) -> SetKeyPolicyResponse = SetKeyPolicy,
            |()| pb::SetKeyPolicyResponse {};
        list_keys(ListKeysRequest) -> ListKeysResponse = ListKeys, |paged| {
            let (total_count, page_number, page_size) = page_fields(&paged);
            let keys = paged.items.into_iter().map(key_list_entry).collect();
            pb::ListKeysResponse { keys, total_count, page_number, page_size }
        };
        update_key_description(UpdateKeyDescriptionRequest) -> UpdateKeyDescriptionResponse = UpdateKeyDescription,
            |_| pb::UpdateKeyDescriptionResponse {};
        enable_key(EnableKeyRequest) -> EnableKeyResponse = EnableKey, |_| pb::EnableKeyResponse {};
        disable_key(DisableKeyRequest) -> DisableKeyResponse = DisableKey, |_| pb::DisableKeyResponse {};
        schedule_key_deletion(ScheduleKeyDeletionRequest) -> ScheduleKeyDeletionResponse = ScheduleKeyDeletion,
            |(key_id, date)| pb::ScheduleKeyDeletionResponse { key_id, delete_date: date.to_rfc3339() };
        cancel_key_deletion(CancelKeyDeletionRequest) -> CancelKeyDeletionResponse = CancelKeyDeletion,
            |_| pb::CancelKeyDeletionResponse {};
        set_deletion_protection(SetDeletionProtectionRequest) -> SetDeletionProtectionResponse = SetDeletionProtection,
            |_| pb::SetDeletionProtectionResponse {};
        create_alias(CreateAliasRequest) -> CreateAliasResponse = CreateAlias, |()| pb::CreateAliasResponse {};
        update_alias(UpdateAliasRequest) -> UpdateAliasResponse = UpdateAlias, |()| pb::UpdateAliasResponse {};
        delete_alias(DeleteAliasRequest) -> DeleteAliasResponse = DeleteAlias, |()| pb::DeleteAliasResponse {};
        list_aliases(ListAliasesRequest) -> ListAliasesResponse = ListAliases, aliases_response;
        list_aliases_by_key_id(ListAliasesByKeyIdRequest) -> ListAliasesResponse = ListAliasesByKeyId,
            aliases_response;
        tag_resource(TagResourceRequest) -> TagResourceResponse = TagResource, |_| pb::TagResourceResponse {};
        untag_resource(UntagResourceRequest) -> UntagResourceResponse = UntagResource, |_| pb::UntagResourceResponse {};
        list_resource_tags(ListResourceTagsRequest) -> ListResourceTagsResponse = ListResourceTags,
            |tags: Paged<(String, String)>| pb::ListResourceTagsResponse {
                tags: tags.items.into_iter().map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value }).collect(),
            };
        encrypt(EncryptRequest) -> EncryptResponse = Encrypt, |sealed| {
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(sealed);
            pb::EncryptResponse { ciphertext_blob, key_id, key_version_id }
        };
        decrypt(DecryptRequest) -> DecryptResponse = Decrypt, |opened| pb::DecryptResponse {
            plaintext: opened.plaintext.to_vec(),
            key_id: opened.key_id,
            key_version_id: opened.key_version_id.to_string(),
        };
        re_encrypt(ReEncryptRequest) -> ReEncryptResponse = ReEncrypt, |re| {
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(re.sealed);
            pb::ReEncryptResponse {
                ciphertext_blob,
                key_id,
                key_version_id,
                source_key_id: re.source_key_id,
                source_key_version_id: re.source_key_version_id.to_string(),
            }
        };
        generate_data_key(GenerateDataKeyRequest) -> GenerateDataKeyResponse = GenerateDataKey, |data_key| {
            let plaintext = data_key.plaintext.to_vec();
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
            pb::GenerateDataKeyResponse { ciphertext_blob, plaintext, key_id, key_version_id }
        };
        generate_data_key_without_plaintext(GenerateDataKeyRequest) -> GenerateDataKeyWithoutPlaintextResponse =
            GenerateDataKeyWithoutPlaintext, |sealed| {
                let (ciphertext_blob, key_id, key_version_id) = sealed_fields(sealed);
                pb::GenerateDataKeyWithoutPlaintextResponse { ciphertext_blob, key_id, key_version_id }
            };
        generate_random(GenerateRandomRequest) -> GenerateRandomResponse = GenerateRandom,
            |random| pb::GenerateRandomResponse { random: random.to_vec() };
        asymmetric_sign(AsymmetricSignRequest) -> AsymmetricSignResponse = AsymmetricSign,
            |signed| {
                let (signature, key_id, key_version_id) = under_key(signed);
                pb::AsymmetricSignResponse { signature, key_id, key_version_id }
            };
        asymmetric_verify(AsymmetricVerifyRequest) -> AsymmetricVerifyResponse = AsymmetricVerify,
            |checked| {
                let (valid, key_id, key_version_id) = under_key(checked);
                pb::AsymmetricVerifyResponse { valid, key_id, key_version_id }
            };
        asymmetric_encrypt(AsymmetricEncryptRequest) -> AsymmetricEncryptResponse = AsymmetricEncrypt,
            |sealed| {
                let (ciphertext_blob, key_id, key_version_id) = under_key(sealed);
                pb::AsymmetricEncryptResponse { ciphertext_blob, key_id, key_version_id }
            };
        asymmetric_decrypt(AsymmetricDecryptRequest) -> AsymmetricDecryptResponse = AsymmetricDecrypt,
            |opened| {
                let (plaintext, key_id, key_version_id) = under_key(opened);
                pb::AsymmetricDecryptResponse { plaintext: plaintext.to_vec(), key_id, key_version_id }
            };
        get_public_key(GetPublicKeyRequest) -> GetPublicKeyResponse = GetPublicKey, |public| {
            let (public_key, key_id, key_version_id) = under_key(public);
            pb::GetPublicKeyResponse { public_key: public_key.pem, key_id, key_version_id }
        };
        create_key_version(CreateKeyVersionRequest) -> CreateKeyVersionResponse = CreateKeyVersion,
            |info| pb::CreateKeyVersionResponse { key_version: Some(key_version(info)) };
        describe_key_version(DescribeKeyVersionRequest) -> DescribeKeyVersionResponse = DescribeKeyVersion,
            |info| pb::DescribeKeyVersionResponse { key_version: Some(key_version(info)) };
        list_key_versions(ListKeyVersionsRequest) -> ListKeyVersionsResponse = ListKeyVersions,
            |paged: Paged<VersionInfo>| {
                let (total_count, page_number, page_size) = page_fields(&paged);
                let key_versions = paged.items.into_iter().map(key_version).collect();
                pb::ListKeyVersionsResponse { key_versions, total_count, page_number, page_size }
            };
        update_rotation_policy(UpdateRotationPolicyRequest) -> UpdateRotationPolicyResponse = UpdateRotationPolicy,
            |_| pb::UpdateRotationPolicyResponse {};
        get_parameters_for_import(GetParametersForImportRequest) -> GetParametersForImportResponse =
            GetParametersForImport, |p| pb::GetParametersForImportResponse {
                key_id: p.key_id,
                import_token: p.import_token,
                public_key: p.public_key,
                token_expire_time: p.token_expire_time.to_rfc3339(),
            };
        import_key_material(ImportKeyMaterialRequest) -> ImportKeyMaterialResponse = ImportKeyMaterial,
            |_| pb::ImportKeyMaterialResponse {};
        delete_key_material(DeleteKeyMaterialRequest) -> DeleteKeyMaterialResponse = DeleteKeyMaterial,
            |_| pb::DeleteKeyMaterialResponse {};
        export_data_key(ExportDataKeyRequest) -> ExportDataKeyResponse = ExportDataKey, |exported| {
            let (export_blob, key_id, key_version_id) = exported_fields(exported);
            pb::ExportDataKeyResponse { export_blob, key_id, key_version_id }
        };
        generate_and_export_data_key(GenerateAndExportDataKeyRequest) -> GenerateAndExportDataKeyResponse =
            GenerateAndExportDataKey, |(data_key, export_blob)| {
                let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
                pb::GenerateAndExportDataKeyResponse { ciphertext_blob, export_blob, key_id, key_version_id }
            };
        export_key(ExportKeyRequest) -> ExportKeyResponse = ExportKey, |exported| {
            let (export_blob, key_id, key_version_id) = exported_fields(exported);
            pb::ExportKeyResponse { export_blob, key_id, key_version_id }
        };
        generate_mac(GenerateMacRequest) -> GenerateMacResponse = GenerateMac, |mac| {
            let (mac, key_id, key_version_id) = under_key(mac);
            pb::GenerateMacResponse { mac, key_id, key_version_id }
        };
        verify_mac(VerifyMacRequest) -> VerifyMacResponse = VerifyMac, |checked| {
            let (valid, key_id, key_version_id) = under_key(checked);
            pb::VerifyMacResponse { valid, key_id, key_version_id }
        };
    }
}

decode! {
    CreateKeyRequest => CreateKey {
        key_spec, key_usage, origin, description, protection_level, enable_automatic_rotation, rotation_interval,
        exportable, dkms_instance_id,
    } + { policy: String::new(), multi_region: None, tags: Vec::new() }
    DescribeKeyRequest => DescribeKey { key_id }
    GetKeyPolicyRequest => GetKeyPolicy { key_id, policy_name }
    SetKeyPolicyRequest => SetKeyPolicy { key_id, policy_name, policy }
    ListKeysRequest => ListKeys { page_number, page_size }
    UpdateKeyDescriptionRequest => UpdateKeyDescription { key_id, description }
    EnableKeyRequest => EnableKey { key_id }
    DisableKeyRequest => DisableKey { key_id }
    ScheduleKeyDeletionRequest => ScheduleKeyDeletion { key_id, pending_window_in_days }
    CancelKeyDeletionRequest => CancelKeyDeletion { key_id } + { restore: CancelRestores::Enabled }
    SetDeletionProtectionRequest => SetDeletionProtection {
        protected_resource_arn, enable_deletion_protection, deletion_protection_description,
    }
    CreateAliasRequest => CreateAlias { alias_name, key_id }
    UpdateAliasRequest => UpdateAlias { alias_name, target_key_id }
    DeleteAliasRequest => DeleteAlias { alias_name }
    ListAliasesRequest => ListAliases { page_number, page_size } + { key_id: String::new() }
    ListAliasesByKeyIdRequest => ListAliasesByKeyId { key_id, page_number, page_size }
    TagResourceRequest => TagResource { key_id, tags: tag_pairs }
    UntagResourceRequest => UntagResource { key_id, tag_keys }
    ListResourceTagsRequest => ListResourceTags { key_id } + { page: None }
    EncryptRequest => Encrypt { key_id, plaintext: Zeroizing::new, encryption_context: sorted }
    DecryptRequest => Decrypt { ciphertext_blob, encryption_context: sorted } + { expected_key_id: String::new() }
    ReEncryptRequest => ReEncrypt {
        ciphertext_blob, source_encryption_context: sorted, destination_key_id,
        destination_encryption_context: sorted,
    } + { expected_source_key_id: String::new() }
    GenerateDataKeyRequest => GenerateDataKey { key_id, key_spec, number_of_bytes, encryption_context: sorted }
    GenerateDataKeyRequest => GenerateDataKeyWithoutPlaintext {
        key_id, key_spec, number_of_bytes, encryption_context: sorted,
    }
    GenerateRandomRequest => GenerateRandom { length }
    AsymmetricSignRequest => AsymmetricSign { key_id, key_version_id, algorithm, message_type, digest, message }
    AsymmetricVerifyRequest => AsymmetricVerify {
        key_id, key_version_id, algorithm, message_type, digest, message, signature,
    } + { invalid_is_error: false }
    AsymmetricEncryptRequest => AsymmetricEncrypt { key_id, key_version_id, algorithm, plaintext: Zeroizing::new }
    AsymmetricDecryptRequest => AsymmetricDecrypt { key_id, key_version_id, algorithm, ciphertext_blob }
    GetPublicKeyRequest => GetPublicKey { key_id, key_version_id }
    CreateKeyVersionRequest => CreateKeyVersion { key_id }
    DescribeKeyVersionRequest => DescribeKeyVersion { key_id, key_version_id }
    ListKeyVersionsRequest => ListKeyVersions { key_id, page_number, page_size }
    UpdateRotationPolicyRequest => UpdateRotationPolicy { key_id, enable_automatic_rotation, rotation_interval }
    GetParametersForImportRequest => GetParametersForImport { key_id, wrapping_algorithm, wrapping_key_spec }
    ImportKeyMaterialRequest => ImportKeyMaterial {
        key_id, key_material_expire_unix, encrypted_key_material, import_token,
    }
    DeleteKeyMaterialRequest => DeleteKeyMaterial { key_id } + { absent_is_deleted: false }
    ExportDataKeyRequest => ExportDataKey {
        encryption_context: sorted, wrapping_algorithm, wrapping_key_spec, ciphertext_blob, public_key_blob,
    }
    GenerateAndExportDataKeyRequest => GenerateAndExportDataKey {
        key_id, key_spec, number_of_bytes, encryption_context: sorted, wrapping_algorithm, wrapping_key_spec,
        public_key_blob,
    }
    ExportKeyRequest => ExportKey { key_id, key_version_id, wrapping_algorithm, wrapping_key_spec, public_key_blob }
    GenerateMacRequest => GenerateMac { key_id, algorithm, message }
    VerifyMacRequest => VerifyMac { key_id, algorithm, message, mac } + { invalid_is_error: false }
}

fn key_list_entry(listed: KeyListing) -> pb::KeyListEntry {
    let meta = &listed.key.meta;
    pb::KeyListEntry {
        key_id: meta.key_id.clone(),
        key_arn: meta.arn(),
        key_state: meta.state.as_str().to_owned(),
        key_spec: meta.spec.as_str().to_owned(),
        key_usage: meta.usage.as_str().to_owned(),
        aliases: listed.aliases,
        description: meta.description.clone(),
    }
}

pub fn key_metadata(meta: &KeyMeta) -> pb::KeyMetadata {
    pb::KeyMetadata {
        key_id: meta.key_id.clone(),
        arn: meta.arn(),
        key_state: meta.state.as_str().to_owned(),
        key_spec: meta.spec.as_str().to_owned(),
        key_usage: meta.usage.as_str().to_owned(),
        origin: meta.origin.as_str().to_owned(),
        creation_date: meta.creation_date.to_rfc3339(),
        delete_date: meta.delete_date.map(|d| d.to_rfc3339()).unwrap_or_default(),
        primary_key_version: meta.primary_version.map(|v| v.to_string()).unwrap_or_default(),
        deletion_protection: meta.deletion_protection,
        description: meta.description.clone(),
        creator: meta.creator.clone(),
        protection_level: meta.protection_level.as_str().to_owned(),
        deletion_protection_description: meta.deletion_protection_description.clone(),
        region: meta.region.clone(),
        automatic_rotation: meta.rotation.automatic.as_str().to_owned(),
        rotation_interval: meta.rotation.interval_secs.map(|secs| format!("{secs}s")).unwrap_or_default(),
        last_rotation_date: meta.rotation.last_rotation_date.map(|d| d.to_rfc3339()).unwrap_or_default(),
        next_rotation_date: meta.rotation.next_rotation_date.map(|d| d.to_rfc3339()).unwrap_or_default(),
        material_expire_time: meta.import.as_ref().and_then(|i| i.expires).map(|d| d.to_rfc3339()).unwrap_or_default(),
        exportable: meta.exportable,
        dkms_instance_id: meta.instance_id.clone().unwrap_or_default(),
        replica_of_instance_id: meta.replica_of.clone().unwrap_or_default(),
    }
}

fn key_version(info: VersionInfo) -> pb::KeyVersion {
    pb::KeyVersion {
        key_id: info.key_id,
        key_version_id: info.key_version_id.to_string(),
        creation_date: info.creation_date.to_rfc3339(),
    }
}

fn aliases_response(paged: Paged<AliasRecord>) -> pb::ListAliasesResponse {
    let (total_count, page_number, page_size) = page_fields(&paged);
    pb::ListAliasesResponse {
        aliases: paged
            .items
            .into_iter()
            .map(|a| pb::Alias { alias_arn: a.arn(), alias_name: a.alias_name, key_id: a.key_id })
            .collect(),
        total_count,
        page_number,
        page_size,
    }
}

fn sealed_fields(sealed: Sealed) -> (Vec<u8>, String, String) {
    (sealed.ciphertext_blob, sealed.key_id, sealed.key_version_id.to_string())
}

fn exported_fields(exported: Exported) -> (Vec<u8>, String, String) {
    (exported.export_blob, exported.key_id, exported.key_version_id.to_string())
}

/// A result with the key and version it was made under, as the response's three fields.
fn under_key<T>(result: UnderKey<T>) -> (T, String, String) {
    (result.value, result.key_id, result.key_version_id.to_string())
}

/// Encryption contexts are compared as sets of entries; order on the wire does not matter.
pub(super) fn sorted(context: HashMap<String, String>) -> BTreeMap<String, String> {
    context.into_iter().collect()
}

pub(super) fn tag_pairs(tags: Vec<pb::Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|pb::Tag { tag_key, tag_value }| (tag_key, tag_value)).collect()
}
