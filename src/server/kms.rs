//! `kmsim.v1.KeyManagementService`: decodes each request into engine terms and
//! encodes the answer; the dispatcher does the rest.

use std::collections::{BTreeMap, HashMap};

use tonic::{Request, Response, Status};

use super::dispatch::App;
use super::dispatch::Dispatcher;
use crate::audit::OpSpec;
use crate::context::CallContext;
use crate::engine::key::KeyMeta;
use crate::engine::{
    AliasRecord, CreateKeyInput, DataKey, ExportTo, KmsError, KmsResult, Outcome, Page, Paged, Sealed, SignRequest,
    VersionInfo,
};
use crate::proto as pb;
use crate::proto::key_management_service_server::KeyManagementService;

/// The engine's view of AsymmetricSign and AsymmetricVerify requests, whose common fields share names.
macro_rules! sign_request {
    ($req:ident) => {
        SignRequest {
            key_id: &$req.key_id,
            key_version_id: &$req.key_version_id,
            algorithm: &$req.algorithm,
            digest: &$req.digest,
            message: &$req.message,
            message_type: &$req.message_type,
        }
    };
}

/// Where an export goes, from any of the three export requests.
macro_rules! export_to {
    ($req:ident) => {
        ExportTo {
            public_key_blob: &$req.public_key_blob,
            wrapping_algorithm: &$req.wrapping_algorithm,
            wrapping_key_spec: &$req.wrapping_key_spec,
        }
    };
}

pub struct KmsApi {
    dispatch: Dispatcher,
}

impl KmsApi {
    pub fn new(dispatch: Dispatcher) -> Self {
        KmsApi { dispatch }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl KeyManagementService for KmsApi {
    async fn create_key(&self, request: Request<pb::CreateKeyRequest>) -> Reply<pb::CreateKeyResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_KEY, request, |app, cx, req| async move {
                let input = CreateKeyInput {
                    key_spec: req.key_spec,
                    key_usage: req.key_usage,
                    origin: req.origin,
                    description: req.description,
                    protection_level: req.protection_level,
                    enable_automatic_rotation: req.enable_automatic_rotation,
                    rotation_interval: req.rotation_interval,
                    exportable: req.exportable,
                    dkms_instance_id: req.dkms_instance_id,
                };
                // RSA key generation takes long enough to stall other calls on this worker.
                let outcome = tokio::task::spawn_blocking(move || app.engine.create_key(&cx, input))
                    .await
                    .map_err(|_| KmsError::internal())??;
                Ok(outcome.map(|key| pb::CreateKeyResponse { key_metadata: Some(key_metadata(&key.meta)) }))
            })
            .await
    }

    async fn describe_key(&self, request: Request<pb::DescribeKeyRequest>) -> Reply<pb::DescribeKeyResponse> {
        self.dispatch
            .run(&OpSpec::DESCRIBE_KEY, request, |app, cx, req| async move {
                let outcome = app.engine.describe_key(&cx, &req.key_id)?;
                Ok(outcome.map(|meta| pb::DescribeKeyResponse { key_metadata: Some(key_metadata(&meta)) }))
            })
            .await
    }

    async fn get_key_policy(&self, request: Request<pb::GetKeyPolicyRequest>) -> Reply<pb::GetKeyPolicyResponse> {
        self.dispatch
            .run(&OpSpec::GET_KEY_POLICY, request, |app, cx, req| async move {
                let outcome = app.engine.get_key_policy(&cx, &req.key_id, &req.policy_name)?;
                Ok(outcome.map(|policy| pb::GetKeyPolicyResponse { policy }))
            })
            .await
    }

    async fn set_key_policy(&self, request: Request<pb::SetKeyPolicyRequest>) -> Reply<pb::SetKeyPolicyResponse> {
        self.dispatch
            .run(&OpSpec::SET_KEY_POLICY, request, |app, cx, req| async move {
                let outcome = app.engine.set_key_policy(&cx, &req.key_id, &req.policy_name, &req.policy).await?;
                Ok(outcome.map(|()| pb::SetKeyPolicyResponse {}))
            })
            .await
    }

    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Reply<pb::ListKeysResponse> {
        self.dispatch
            .run(&OpSpec::LIST_KEYS, request, |app, cx, req| async move {
                let page = Page::from_request(req.page_number, req.page_size)?;
                Ok(app.engine.list_keys(&cx, page)?.map(|paged| {
                    let (total_count, page_number, page_size) = page_fields(&paged);
                    pb::ListKeysResponse {
                        keys: paged
                            .items
                            .into_iter()
                            .map(|(key_id, key_arn)| pb::KeyListEntry { key_id, key_arn })
                            .collect(),
                        total_count,
                        page_number,
                        page_size,
                    }
                }))
            })
            .await
    }

    async fn update_key_description(
        &self,
        request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Reply<pb::UpdateKeyDescriptionResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_KEY_DESCRIPTION, request, |app, cx, req| async move {
                let outcome = app.engine.update_key_description(&cx, &req.key_id, req.description).await?;
                Ok(outcome.map(|_| pb::UpdateKeyDescriptionResponse {}))
            })
            .await
    }

    async fn enable_key(&self, request: Request<pb::EnableKeyRequest>) -> Reply<pb::EnableKeyResponse> {
        self.dispatch
            .run(&OpSpec::ENABLE_KEY, request, |app, cx, req| async move {
                Ok(app.engine.set_key_enabled(&cx, &req.key_id, true).await?.map(|_| pb::EnableKeyResponse {}))
            })
            .await
    }

    async fn disable_key(&self, request: Request<pb::DisableKeyRequest>) -> Reply<pb::DisableKeyResponse> {
        self.dispatch
            .run(&OpSpec::DISABLE_KEY, request, |app, cx, req| async move {
                Ok(app.engine.set_key_enabled(&cx, &req.key_id, false).await?.map(|_| pb::DisableKeyResponse {}))
            })
            .await
    }

    async fn schedule_key_deletion(
        &self,
        request: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Reply<pb::ScheduleKeyDeletionResponse> {
        self.dispatch
            .run(&OpSpec::SCHEDULE_KEY_DELETION, request, |app, cx, req| async move {
                let outcome = app.engine.schedule_key_deletion(&cx, &req.key_id, req.pending_window_in_days).await?;
                Ok(outcome
                    .map(|(key_id, date)| pb::ScheduleKeyDeletionResponse { key_id, delete_date: date.to_rfc3339() }))
            })
            .await
    }

    async fn cancel_key_deletion(
        &self,
        request: Request<pb::CancelKeyDeletionRequest>,
    ) -> Reply<pb::CancelKeyDeletionResponse> {
        self.dispatch
            .run(&OpSpec::CANCEL_KEY_DELETION, request, |app, cx, req| async move {
                Ok(app.engine.cancel_key_deletion(&cx, &req.key_id).await?.map(|_| pb::CancelKeyDeletionResponse {}))
            })
            .await
    }

    async fn set_deletion_protection(
        &self,
        request: Request<pb::SetDeletionProtectionRequest>,
    ) -> Reply<pb::SetDeletionProtectionResponse> {
        self.dispatch
            .run(&OpSpec::SET_DELETION_PROTECTION, request, |app, cx, req| async move {
                let outcome = app
                    .engine
                    .set_deletion_protection(
                        &cx,
                        &req.protected_resource_arn,
                        req.enable_deletion_protection,
                        req.deletion_protection_description,
                    )
                    .await?;
                Ok(outcome.map(|_| pb::SetDeletionProtectionResponse {}))
            })
            .await
    }

    async fn create_alias(&self, request: Request<pb::CreateAliasRequest>) -> Reply<pb::CreateAliasResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_ALIAS, request, |app, cx, req| async move {
                Ok(app
                    .engine
                    .create_alias(&cx, &req.alias_name, &req.key_id)
                    .await?
                    .map(|()| pb::CreateAliasResponse {}))
            })
            .await
    }

    async fn update_alias(&self, request: Request<pb::UpdateAliasRequest>) -> Reply<pb::UpdateAliasResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_ALIAS, request, |app, cx, req| async move {
                let outcome = app.engine.update_alias(&cx, &req.alias_name, &req.target_key_id).await?;
                Ok(outcome.map(|()| pb::UpdateAliasResponse {}))
            })
            .await
    }

    async fn delete_alias(&self, request: Request<pb::DeleteAliasRequest>) -> Reply<pb::DeleteAliasResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_ALIAS, request, |app, cx, req| async move {
                Ok(app.engine.delete_alias(&cx, &req.alias_name).await?.map(|()| pb::DeleteAliasResponse {}))
            })
            .await
    }

    async fn list_aliases(&self, request: Request<pb::ListAliasesRequest>) -> Reply<pb::ListAliasesResponse> {
        self.dispatch
            .run(&OpSpec::LIST_ALIASES, request, |app, cx, req| async move {
                let page = Page::from_request(req.page_number, req.page_size)?;
                Ok(app.engine.list_aliases(&cx, None, page)?.map(aliases_response))
            })
            .await
    }

    async fn list_aliases_by_key_id(
        &self,
        request: Request<pb::ListAliasesByKeyIdRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        self.dispatch
            .run(&OpSpec::LIST_ALIASES_BY_KEY_ID, request, |app, cx, req| async move {
                let page = Page::from_request(req.page_number, req.page_size)?;
                Ok(app.engine.list_aliases(&cx, Some(&req.key_id), page)?.map(aliases_response))
            })
            .await
    }

    async fn tag_resource(&self, request: Request<pb::TagResourceRequest>) -> Reply<pb::TagResourceResponse> {
        self.dispatch
            .run(&OpSpec::TAG_RESOURCE, request, |app, cx, req| async move {
                let tags = req.tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect();
                Ok(app.engine.tag_resource(&cx, &req.key_id, tags).await?.map(|_| pb::TagResourceResponse {}))
            })
            .await
    }

    async fn untag_resource(&self, request: Request<pb::UntagResourceRequest>) -> Reply<pb::UntagResourceResponse> {
        self.dispatch
            .run(&OpSpec::UNTAG_RESOURCE, request, |app, cx, req| async move {
                let outcome = app.engine.untag_resource(&cx, &req.key_id, req.tag_keys).await?;
                Ok(outcome.map(|_| pb::UntagResourceResponse {}))
            })
            .await
    }

    async fn list_resource_tags(
        &self,
        request: Request<pb::ListResourceTagsRequest>,
    ) -> Reply<pb::ListResourceTagsResponse> {
        self.dispatch
            .run(&OpSpec::LIST_RESOURCE_TAGS, request, |app, cx, req| async move {
                Ok(app.engine.list_resource_tags(&cx, &req.key_id)?.map(|tags| pb::ListResourceTagsResponse {
                    tags: tags.into_iter().map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value }).collect(),
                }))
            })
            .await
    }

    async fn encrypt(&self, request: Request<pb::EncryptRequest>) -> Reply<pb::EncryptResponse> {
        self.dispatch
            .run(&OpSpec::ENCRYPT, request, |app, cx, req| async move {
                let outcome = app.engine.encrypt(&cx, &req.key_id, &req.plaintext, sorted(req.encryption_context))?;
                Ok(outcome.map(|sealed| {
                    let (ciphertext_blob, key_id, key_version_id) = sealed_fields(sealed);
                    pb::EncryptResponse { ciphertext_blob, key_id, key_version_id }
                }))
            })
            .await
    }

    async fn decrypt(&self, request: Request<pb::DecryptRequest>) -> Reply<pb::DecryptResponse> {
        self.dispatch
            .run(&OpSpec::DECRYPT, request, |app, cx, req| async move {
                let outcome = app.engine.decrypt(&cx, &req.ciphertext_blob, sorted(req.encryption_context))?;
                Ok(outcome.map(|opened| pb::DecryptResponse {
                    plaintext: opened.plaintext.to_vec(),
                    key_id: opened.key_id,
                    key_version_id: opened.key_version_id.to_string(),
                }))
            })
            .await
    }

    async fn re_encrypt(&self, request: Request<pb::ReEncryptRequest>) -> Reply<pb::ReEncryptResponse> {
        self.dispatch
            .run(&OpSpec::RE_ENCRYPT, request, |app, cx, req| async move {
                let outcome = app.engine.re_encrypt(
                    &cx,
                    &req.ciphertext_blob,
                    sorted(req.source_encryption_context),
                    &req.destination_key_id,
                    sorted(req.destination_encryption_context),
                )?;
                Ok(outcome.map(|re| {
                    let (ciphertext_blob, key_id, key_version_id) = sealed_fields(re.sealed);
                    pb::ReEncryptResponse {
                        ciphertext_blob,
                        key_id,
                        key_version_id,
                        source_key_id: re.source_key_id,
                        source_key_version_id: re.source_key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Reply<pb::GenerateDataKeyResponse> {
        self.dispatch
            .run(&OpSpec::GENERATE_DATA_KEY, request, |app, cx, req| async move {
                Ok(generate_data_key(&app, &cx, req)?.map(|data_key| {
                    let plaintext = data_key.plaintext.to_vec();
                    let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
                    pb::GenerateDataKeyResponse { ciphertext_blob, plaintext, key_id, key_version_id }
                }))
            })
            .await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Reply<pb::GenerateDataKeyWithoutPlaintextResponse> {
        self.dispatch
            .run(&OpSpec::GENERATE_DATA_KEY_WITHOUT_PLAINTEXT, request, |app, cx, req| async move {
                Ok(generate_data_key(&app, &cx, req)?.map(|data_key| {
                    let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
                    pb::GenerateDataKeyWithoutPlaintextResponse { ciphertext_blob, key_id, key_version_id }
                }))
            })
            .await
    }

    async fn generate_random(&self, request: Request<pb::GenerateRandomRequest>) -> Reply<pb::GenerateRandomResponse> {
        self.dispatch
            .run(&OpSpec::GENERATE_RANDOM, request, |app, _cx, req| async move {
                Ok(app
                    .engine
                    .generate_random(req.length)?
                    .map(|random| pb::GenerateRandomResponse { random: random.to_vec() }))
            })
            .await
    }

    async fn asymmetric_sign(&self, request: Request<pb::AsymmetricSignRequest>) -> Reply<pb::AsymmetricSignResponse> {
        self.dispatch
            .run(&OpSpec::ASYMMETRIC_SIGN, request, |app, cx, req| async move {
                let sign = sign_request!(req);
                Ok(app.engine.asymmetric_sign(&cx, sign)?.map(|signed| pb::AsymmetricSignResponse {
                    signature: signed.value,
                    key_id: signed.key_id,
                    key_version_id: signed.key_version_id.to_string(),
                }))
            })
            .await
    }

    async fn asymmetric_verify(
        &self,
        request: Request<pb::AsymmetricVerifyRequest>,
    ) -> Reply<pb::AsymmetricVerifyResponse> {
        self.dispatch
            .run(&OpSpec::ASYMMETRIC_VERIFY, request, |app, cx, req| async move {
                let sign = sign_request!(req);
                Ok(app.engine.asymmetric_verify(&cx, sign, &req.signature)?.map(|checked| {
                    pb::AsymmetricVerifyResponse {
                        valid: checked.value,
                        key_id: checked.key_id,
                        key_version_id: checked.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn asymmetric_encrypt(
        &self,
        request: Request<pb::AsymmetricEncryptRequest>,
    ) -> Reply<pb::AsymmetricEncryptResponse> {
        self.dispatch
            .run(&OpSpec::ASYMMETRIC_ENCRYPT, request, |app, cx, req| async move {
                let key = (req.key_id.as_str(), req.key_version_id.as_str());
                Ok(app.engine.asymmetric_encrypt(&cx, key, &req.algorithm, &req.plaintext)?.map(|sealed| {
                    pb::AsymmetricEncryptResponse {
                        ciphertext_blob: sealed.value,
                        key_id: sealed.key_id,
                        key_version_id: sealed.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn asymmetric_decrypt(
        &self,
        request: Request<pb::AsymmetricDecryptRequest>,
    ) -> Reply<pb::AsymmetricDecryptResponse> {
        self.dispatch
            .run(&OpSpec::ASYMMETRIC_DECRYPT, request, |app, cx, req| async move {
                let key = (req.key_id.as_str(), req.key_version_id.as_str());
                Ok(app.engine.asymmetric_decrypt(&cx, key, &req.algorithm, &req.ciphertext_blob)?.map(|opened| {
                    pb::AsymmetricDecryptResponse {
                        plaintext: opened.value.to_vec(),
                        key_id: opened.key_id,
                        key_version_id: opened.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn get_public_key(&self, request: Request<pb::GetPublicKeyRequest>) -> Reply<pb::GetPublicKeyResponse> {
        self.dispatch
            .run(&OpSpec::GET_PUBLIC_KEY, request, |app, cx, req| async move {
                Ok(app.engine.get_public_key(&cx, &req.key_id, &req.key_version_id)?.map(|pem| {
                    pb::GetPublicKeyResponse {
                        public_key: pem.value,
                        key_id: pem.key_id,
                        key_version_id: pem.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn create_key_version(
        &self,
        request: Request<pb::CreateKeyVersionRequest>,
    ) -> Reply<pb::CreateKeyVersionResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_KEY_VERSION, request, |app, cx, req| async move {
                let at = cx.received_at;
                let outcome = app.engine.rotate_key(&cx, &req.key_id, at).await?;
                Ok(outcome.map(|info| pb::CreateKeyVersionResponse { key_version: Some(key_version(info)) }))
            })
            .await
    }

    async fn describe_key_version(
        &self,
        request: Request<pb::DescribeKeyVersionRequest>,
    ) -> Reply<pb::DescribeKeyVersionResponse> {
        self.dispatch
            .run(&OpSpec::DESCRIBE_KEY_VERSION, request, |app, cx, req| async move {
                let outcome = app.engine.describe_key_version(&cx, &req.key_id, &req.key_version_id)?;
                Ok(outcome.map(|info| pb::DescribeKeyVersionResponse { key_version: Some(key_version(info)) }))
            })
            .await
    }

    async fn list_key_versions(
        &self,
        request: Request<pb::ListKeyVersionsRequest>,
    ) -> Reply<pb::ListKeyVersionsResponse> {
        self.dispatch
            .run(&OpSpec::LIST_KEY_VERSIONS, request, |app, cx, req| async move {
                let page = Page::from_request(req.page_number, req.page_size)?;
                Ok(app.engine.list_key_versions(&cx, &req.key_id, page)?.map(|paged| {
                    let (total_count, page_number, page_size) = page_fields(&paged);
                    pb::ListKeyVersionsResponse {
                        key_versions: paged.items.into_iter().map(key_version).collect(),
                        total_count,
                        page_number,
                        page_size,
                    }
                }))
            })
            .await
    }

    async fn update_rotation_policy(
        &self,
        request: Request<pb::UpdateRotationPolicyRequest>,
    ) -> Reply<pb::UpdateRotationPolicyResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_ROTATION_POLICY, request, |app, cx, req| async move {
                let outcome = app
                    .engine
                    .update_rotation_policy(&cx, &req.key_id, req.enable_automatic_rotation, &req.rotation_interval)
                    .await?;
                Ok(outcome.map(|_| pb::UpdateRotationPolicyResponse {}))
            })
            .await
    }

    async fn get_parameters_for_import(
        &self,
        request: Request<pb::GetParametersForImportRequest>,
    ) -> Reply<pb::GetParametersForImportResponse> {
        self.dispatch
            .run(&OpSpec::GET_PARAMETERS_FOR_IMPORT, request, |app, cx, req| async move {
                // Generating the RSA wrapping key takes long enough to stall other calls on this worker.
                let outcome = tokio::task::spawn_blocking(move || {
                    app.engine.get_parameters_for_import(
                        &cx,
                        &req.key_id,
                        &req.wrapping_algorithm,
                        &req.wrapping_key_spec,
                    )
                })
                .await
                .map_err(|_| KmsError::internal())??;
                Ok(outcome.map(|p| pb::GetParametersForImportResponse {
                    key_id: p.key_id,
                    import_token: p.import_token,
                    public_key: p.public_key,
                    token_expire_time: p.token_expire_time.to_rfc3339(),
                }))
            })
            .await
    }

    async fn import_key_material(
        &self,
        request: Request<pb::ImportKeyMaterialRequest>,
    ) -> Reply<pb::ImportKeyMaterialResponse> {
        self.dispatch
            .run(&OpSpec::IMPORT_KEY_MATERIAL, request, |app, cx, req| async move {
                let outcome = app
                    .engine
                    .import_key_material(
                        &cx,
                        &req.key_id,
                        &req.encrypted_key_material,
                        &req.import_token,
                        req.key_material_expire_unix,
                    )
                    .await?;
                Ok(outcome.map(|_| pb::ImportKeyMaterialResponse {}))
            })
            .await
    }

    async fn delete_key_material(
        &self,
        request: Request<pb::DeleteKeyMaterialRequest>,
    ) -> Reply<pb::DeleteKeyMaterialResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_KEY_MATERIAL, request, |app, cx, req| async move {
                Ok(app.engine.delete_key_material(&cx, &req.key_id).await?.map(|_| pb::DeleteKeyMaterialResponse {}))
            })
            .await
    }

    async fn export_data_key(&self, request: Request<pb::ExportDataKeyRequest>) -> Reply<pb::ExportDataKeyResponse> {
        self.dispatch
            .run(&OpSpec::EXPORT_DATA_KEY, request, |app, cx, req| async move {
                let to = export_to!(req);
                let context = sorted(req.encryption_context.clone());
                Ok(app.engine.export_data_key(&cx, &req.ciphertext_blob, context, to)?.map(|exported| {
                    pb::ExportDataKeyResponse {
                        export_blob: exported.export_blob,
                        key_id: exported.key_id,
                        key_version_id: exported.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn generate_and_export_data_key(
        &self,
        request: Request<pb::GenerateAndExportDataKeyRequest>,
    ) -> Reply<pb::GenerateAndExportDataKeyResponse> {
        self.dispatch
            .run(&OpSpec::GENERATE_AND_EXPORT_DATA_KEY, request, |app, cx, req| async move {
                let to = export_to!(req);
                let key = (req.key_id.as_str(), req.key_spec.as_str(), req.number_of_bytes);
                let context = sorted(req.encryption_context.clone());
                Ok(app.engine.generate_and_export_data_key(&cx, key, context, to)?.map(|(data_key, export_blob)| {
                    let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
                    pb::GenerateAndExportDataKeyResponse { ciphertext_blob, export_blob, key_id, key_version_id }
                }))
            })
            .await
    }

    async fn export_key(&self, request: Request<pb::ExportKeyRequest>) -> Reply<pb::ExportKeyResponse> {
        self.dispatch
            .run(&OpSpec::EXPORT_KEY, request, |app, cx, req| async move {
                let to = export_to!(req);
                Ok(app.engine.export_key(&cx, &req.key_id, &req.key_version_id, to)?.map(|exported| {
                    pb::ExportKeyResponse {
                        export_blob: exported.export_blob,
                        key_id: exported.key_id,
                        key_version_id: exported.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn generate_mac(&self, request: Request<pb::GenerateMacRequest>) -> Reply<pb::GenerateMacResponse> {
        self.dispatch
            .run(&OpSpec::GENERATE_MAC, request, |app, cx, req| async move {
                Ok(app.engine.generate_mac(&cx, &req.key_id, &req.algorithm, &req.message)?.map(|mac| {
                    pb::GenerateMacResponse {
                        mac: mac.value,
                        key_id: mac.key_id,
                        key_version_id: mac.key_version_id.to_string(),
                    }
                }))
            })
            .await
    }

    async fn verify_mac(&self, request: Request<pb::VerifyMacRequest>) -> Reply<pb::VerifyMacResponse> {
        self.dispatch
            .run(&OpSpec::VERIFY_MAC, request, |app, cx, req| async move {
                Ok(app.engine.verify_mac(&cx, &req.key_id, &req.algorithm, &req.message, &req.mac)?.map(|checked| {
                    pb::VerifyMacResponse {
                        valid: checked.value,
                        key_id: checked.key_id,
                        key_version_id: checked.key_version_id.to_string(),
                    }
                }))
            })
            .await
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

/// Shared by GenerateDataKey and GenerateDataKeyWithoutPlaintext, which differ only in what they return.
fn generate_data_key(app: &App, cx: &CallContext, req: pb::GenerateDataKeyRequest) -> KmsResult<Outcome<DataKey>> {
    app.engine.generate_data_key(cx, &req.key_id, &req.key_spec, req.number_of_bytes, sorted(req.encryption_context))
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

pub(super) fn page_fields<T>(paged: &Paged<T>) -> (i32, i32, i32) {
    let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    (clamp(paged.total), clamp(paged.page.number), clamp(paged.page.size))
}

fn sealed_fields(sealed: Sealed) -> (Vec<u8>, String, String) {
    (sealed.ciphertext_blob, sealed.key_id, sealed.key_version_id.to_string())
}

/// Encryption contexts are compared as sets of entries; order on the wire does not matter.
fn sorted(context: HashMap<String, String>) -> BTreeMap<String, String> {
    context.into_iter().collect()
}
