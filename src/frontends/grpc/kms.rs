//! `kmsim.v1.KeyManagementService`: decodes each request into engine terms and
//! encodes the answer; the kernel does the rest.

use std::collections::{BTreeMap, HashMap};

use tonic::{Request, Response, Status};

use super::{Grpc, Rpc};
use crate::context::CallContext;
use crate::engine::key::KeyMeta;
use crate::engine::{
    AliasRecord, CreateKeyInput, DataKey, ExportTo, KmsResult, Outcome, Page, Paged, Sealed, SignRequest, VersionInfo,
};
use crate::kernel::OpSpec;
use crate::kernel::{App, Operation};
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
    grpc: Grpc,
}

impl KmsApi {
    pub fn new(grpc: Grpc) -> Self {
        KmsApi { grpc }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl KeyManagementService for KmsApi {
    async fn create_key(&self, request: Request<pb::CreateKeyRequest>) -> Reply<pb::CreateKeyResponse> {
        self.grpc.unary(request, create_key).await
    }

    async fn describe_key(&self, request: Request<pb::DescribeKeyRequest>) -> Reply<pb::DescribeKeyResponse> {
        self.grpc.unary(request, describe_key).await
    }

    async fn get_key_policy(&self, request: Request<pb::GetKeyPolicyRequest>) -> Reply<pb::GetKeyPolicyResponse> {
        self.grpc.unary(request, get_key_policy).await
    }

    async fn set_key_policy(&self, request: Request<pb::SetKeyPolicyRequest>) -> Reply<pb::SetKeyPolicyResponse> {
        self.grpc.unary(request, set_key_policy).await
    }

    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Reply<pb::ListKeysResponse> {
        self.grpc.unary(request, list_keys).await
    }

    async fn update_key_description(
        &self,
        request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Reply<pb::UpdateKeyDescriptionResponse> {
        self.grpc.unary(request, update_key_description).await
    }

    async fn enable_key(&self, request: Request<pb::EnableKeyRequest>) -> Reply<pb::EnableKeyResponse> {
        self.grpc.unary(request, enable_key).await
    }

    async fn disable_key(&self, request: Request<pb::DisableKeyRequest>) -> Reply<pb::DisableKeyResponse> {
        self.grpc.unary(request, disable_key).await
    }

    async fn schedule_key_deletion(
        &self,
        request: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Reply<pb::ScheduleKeyDeletionResponse> {
        self.grpc.unary(request, schedule_key_deletion).await
    }

    async fn cancel_key_deletion(
        &self,
        request: Request<pb::CancelKeyDeletionRequest>,
    ) -> Reply<pb::CancelKeyDeletionResponse> {
        self.grpc.unary(request, cancel_key_deletion).await
    }

    async fn set_deletion_protection(
        &self,
        request: Request<pb::SetDeletionProtectionRequest>,
    ) -> Reply<pb::SetDeletionProtectionResponse> {
        self.grpc.unary(request, set_deletion_protection).await
    }

    async fn create_alias(&self, request: Request<pb::CreateAliasRequest>) -> Reply<pb::CreateAliasResponse> {
        self.grpc.unary(request, create_alias).await
    }

    async fn update_alias(&self, request: Request<pb::UpdateAliasRequest>) -> Reply<pb::UpdateAliasResponse> {
        self.grpc.unary(request, update_alias).await
    }

    async fn delete_alias(&self, request: Request<pb::DeleteAliasRequest>) -> Reply<pb::DeleteAliasResponse> {
        self.grpc.unary(request, delete_alias).await
    }

    async fn list_aliases(&self, request: Request<pb::ListAliasesRequest>) -> Reply<pb::ListAliasesResponse> {
        self.grpc.unary(request, list_aliases).await
    }

    async fn list_aliases_by_key_id(
        &self,
        request: Request<pb::ListAliasesByKeyIdRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        self.grpc.unary(request, list_aliases_by_key_id).await
    }

    async fn tag_resource(&self, request: Request<pb::TagResourceRequest>) -> Reply<pb::TagResourceResponse> {
        self.grpc.unary(request, tag_resource).await
    }

    async fn untag_resource(&self, request: Request<pb::UntagResourceRequest>) -> Reply<pb::UntagResourceResponse> {
        self.grpc.unary(request, untag_resource).await
    }

    async fn list_resource_tags(
        &self,
        request: Request<pb::ListResourceTagsRequest>,
    ) -> Reply<pb::ListResourceTagsResponse> {
        self.grpc.unary(request, list_resource_tags).await
    }

    async fn encrypt(&self, request: Request<pb::EncryptRequest>) -> Reply<pb::EncryptResponse> {
        self.grpc.unary(request, encrypt).await
    }

    async fn decrypt(&self, request: Request<pb::DecryptRequest>) -> Reply<pb::DecryptResponse> {
        self.grpc.unary(request, decrypt).await
    }

    async fn re_encrypt(&self, request: Request<pb::ReEncryptRequest>) -> Reply<pb::ReEncryptResponse> {
        self.grpc.unary(request, re_encrypt).await
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Reply<pb::GenerateDataKeyResponse> {
        self.grpc.unary(request, generate_data_key).await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Reply<pb::GenerateDataKeyWithoutPlaintextResponse> {
        self.grpc.unary(request, generate_data_key_without_plaintext).await
    }

    async fn generate_random(&self, request: Request<pb::GenerateRandomRequest>) -> Reply<pb::GenerateRandomResponse> {
        self.grpc.unary(request, generate_random).await
    }

    async fn asymmetric_sign(&self, request: Request<pb::AsymmetricSignRequest>) -> Reply<pb::AsymmetricSignResponse> {
        self.grpc.unary(request, asymmetric_sign).await
    }

    async fn asymmetric_verify(
        &self,
        request: Request<pb::AsymmetricVerifyRequest>,
    ) -> Reply<pb::AsymmetricVerifyResponse> {
        self.grpc.unary(request, asymmetric_verify).await
    }

    async fn asymmetric_encrypt(
        &self,
        request: Request<pb::AsymmetricEncryptRequest>,
    ) -> Reply<pb::AsymmetricEncryptResponse> {
        self.grpc.unary(request, asymmetric_encrypt).await
    }

    async fn asymmetric_decrypt(
        &self,
        request: Request<pb::AsymmetricDecryptRequest>,
    ) -> Reply<pb::AsymmetricDecryptResponse> {
        self.grpc.unary(request, asymmetric_decrypt).await
    }

    async fn get_public_key(&self, request: Request<pb::GetPublicKeyRequest>) -> Reply<pb::GetPublicKeyResponse> {
        self.grpc.unary(request, get_public_key).await
    }

    async fn create_key_version(
        &self,
        request: Request<pb::CreateKeyVersionRequest>,
    ) -> Reply<pb::CreateKeyVersionResponse> {
        self.grpc.unary(request, create_key_version).await
    }

    async fn describe_key_version(
        &self,
        request: Request<pb::DescribeKeyVersionRequest>,
    ) -> Reply<pb::DescribeKeyVersionResponse> {
        self.grpc.unary(request, describe_key_version).await
    }

    async fn list_key_versions(
        &self,
        request: Request<pb::ListKeyVersionsRequest>,
    ) -> Reply<pb::ListKeyVersionsResponse> {
        self.grpc.unary(request, list_key_versions).await
    }

    async fn update_rotation_policy(
        &self,
        request: Request<pb::UpdateRotationPolicyRequest>,
    ) -> Reply<pb::UpdateRotationPolicyResponse> {
        self.grpc.unary(request, update_rotation_policy).await
    }

    async fn get_parameters_for_import(
        &self,
        request: Request<pb::GetParametersForImportRequest>,
    ) -> Reply<pb::GetParametersForImportResponse> {
        self.grpc.unary(request, get_parameters_for_import).await
    }

    async fn import_key_material(
        &self,
        request: Request<pb::ImportKeyMaterialRequest>,
    ) -> Reply<pb::ImportKeyMaterialResponse> {
        self.grpc.unary(request, import_key_material).await
    }

    async fn delete_key_material(
        &self,
        request: Request<pb::DeleteKeyMaterialRequest>,
    ) -> Reply<pb::DeleteKeyMaterialResponse> {
        self.grpc.unary(request, delete_key_material).await
    }

    async fn export_data_key(&self, request: Request<pb::ExportDataKeyRequest>) -> Reply<pb::ExportDataKeyResponse> {
        self.grpc.unary(request, export_data_key).await
    }

    async fn generate_and_export_data_key(
        &self,
        request: Request<pb::GenerateAndExportDataKeyRequest>,
    ) -> Reply<pb::GenerateAndExportDataKeyResponse> {
        self.grpc.unary(request, generate_and_export_data_key).await
    }

    async fn export_key(&self, request: Request<pb::ExportKeyRequest>) -> Reply<pb::ExportKeyResponse> {
        self.grpc.unary(request, export_key).await
    }

    async fn generate_mac(&self, request: Request<pb::GenerateMacRequest>) -> Reply<pb::GenerateMacResponse> {
        self.grpc.unary(request, generate_mac).await
    }

    async fn verify_mac(&self, request: Request<pb::VerifyMacRequest>) -> Reply<pb::VerifyMacResponse> {
        self.grpc.unary(request, verify_mac).await
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
fn new_data_key(app: &App, cx: &CallContext, req: pb::GenerateDataKeyRequest) -> KmsResult<Outcome<DataKey>> {
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

/// create_key as a kernel operation.
pub fn create_key(req: pb::CreateKeyRequest) -> impl Operation<Output = pb::CreateKeyResponse> {
    Rpc::new(&OpSpec::CREATE_KEY, req, |app, cx, req| async move {
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
        // The catalogue marks CreateKey as generating keys: the kernel runs it on the blocking pool.
        let outcome = app.engine.create_key(&cx, input)?;
        Ok(outcome.map(|key| pb::CreateKeyResponse { key_metadata: Some(key_metadata(&key.meta)) }))
    })
}

/// describe_key as a kernel operation.
pub fn describe_key(req: pb::DescribeKeyRequest) -> impl Operation<Output = pb::DescribeKeyResponse> {
    Rpc::new(&OpSpec::DESCRIBE_KEY, req, |app, cx, req| async move {
        let outcome = app.engine.describe_key(&cx, &req.key_id)?;
        Ok(outcome.map(|meta| pb::DescribeKeyResponse { key_metadata: Some(key_metadata(&meta)) }))
    })
}

/// get_key_policy as a kernel operation.
pub fn get_key_policy(req: pb::GetKeyPolicyRequest) -> impl Operation<Output = pb::GetKeyPolicyResponse> {
    Rpc::new(&OpSpec::GET_KEY_POLICY, req, |app, cx, req| async move {
        let outcome = app.engine.get_key_policy(&cx, &req.key_id, &req.policy_name)?;
        Ok(outcome.map(|policy| pb::GetKeyPolicyResponse { policy }))
    })
}

/// set_key_policy as a kernel operation.
pub fn set_key_policy(req: pb::SetKeyPolicyRequest) -> impl Operation<Output = pb::SetKeyPolicyResponse> {
    Rpc::new(&OpSpec::SET_KEY_POLICY, req, |app, cx, req| async move {
        let outcome = app.engine.set_key_policy(&cx, &req.key_id, &req.policy_name, &req.policy).await?;
        Ok(outcome.map(|()| pb::SetKeyPolicyResponse {}))
    })
}

/// list_keys as a kernel operation.
pub fn list_keys(req: pb::ListKeysRequest) -> impl Operation<Output = pb::ListKeysResponse> {
    Rpc::new(&OpSpec::LIST_KEYS, req, |app, cx, req| async move {
        let page = Page::from_request(req.page_number, req.page_size)?;
        Ok(app.engine.list_keys(&cx, page)?.map(|paged| {
            let (total_count, page_number, page_size) = page_fields(&paged);
            pb::ListKeysResponse {
                keys: paged.items.into_iter().map(|(key_id, key_arn)| pb::KeyListEntry { key_id, key_arn }).collect(),
                total_count,
                page_number,
                page_size,
            }
        }))
    })
}

/// update_key_description as a kernel operation.
pub fn update_key_description(
    req: pb::UpdateKeyDescriptionRequest,
) -> impl Operation<Output = pb::UpdateKeyDescriptionResponse> {
    Rpc::new(&OpSpec::UPDATE_KEY_DESCRIPTION, req, |app, cx, req| async move {
        let outcome = app.engine.update_key_description(&cx, &req.key_id, req.description).await?;
        Ok(outcome.map(|_| pb::UpdateKeyDescriptionResponse {}))
    })
}

/// enable_key as a kernel operation.
pub fn enable_key(req: pb::EnableKeyRequest) -> impl Operation<Output = pb::EnableKeyResponse> {
    Rpc::new(&OpSpec::ENABLE_KEY, req, |app, cx, req| async move {
        Ok(app.engine.set_key_enabled(&cx, &req.key_id, true).await?.map(|_| pb::EnableKeyResponse {}))
    })
}

/// disable_key as a kernel operation.
pub fn disable_key(req: pb::DisableKeyRequest) -> impl Operation<Output = pb::DisableKeyResponse> {
    Rpc::new(&OpSpec::DISABLE_KEY, req, |app, cx, req| async move {
        Ok(app.engine.set_key_enabled(&cx, &req.key_id, false).await?.map(|_| pb::DisableKeyResponse {}))
    })
}

/// schedule_key_deletion as a kernel operation.
pub fn schedule_key_deletion(
    req: pb::ScheduleKeyDeletionRequest,
) -> impl Operation<Output = pb::ScheduleKeyDeletionResponse> {
    Rpc::new(&OpSpec::SCHEDULE_KEY_DELETION, req, |app, cx, req| async move {
        let outcome = app.engine.schedule_key_deletion(&cx, &req.key_id, req.pending_window_in_days).await?;
        Ok(outcome.map(|(key_id, date)| pb::ScheduleKeyDeletionResponse { key_id, delete_date: date.to_rfc3339() }))
    })
}

/// cancel_key_deletion as a kernel operation.
pub fn cancel_key_deletion(
    req: pb::CancelKeyDeletionRequest,
) -> impl Operation<Output = pb::CancelKeyDeletionResponse> {
    Rpc::new(&OpSpec::CANCEL_KEY_DELETION, req, |app, cx, req| async move {
        Ok(app.engine.cancel_key_deletion(&cx, &req.key_id).await?.map(|_| pb::CancelKeyDeletionResponse {}))
    })
}

/// set_deletion_protection as a kernel operation.
pub fn set_deletion_protection(
    req: pb::SetDeletionProtectionRequest,
) -> impl Operation<Output = pb::SetDeletionProtectionResponse> {
    Rpc::new(&OpSpec::SET_DELETION_PROTECTION, req, |app, cx, req| async move {
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
}

/// create_alias as a kernel operation.
pub fn create_alias(req: pb::CreateAliasRequest) -> impl Operation<Output = pb::CreateAliasResponse> {
    Rpc::new(&OpSpec::CREATE_ALIAS, req, |app, cx, req| async move {
        Ok(app.engine.create_alias(&cx, &req.alias_name, &req.key_id).await?.map(|()| pb::CreateAliasResponse {}))
    })
}

/// update_alias as a kernel operation.
pub fn update_alias(req: pb::UpdateAliasRequest) -> impl Operation<Output = pb::UpdateAliasResponse> {
    Rpc::new(&OpSpec::UPDATE_ALIAS, req, |app, cx, req| async move {
        let outcome = app.engine.update_alias(&cx, &req.alias_name, &req.target_key_id).await?;
        Ok(outcome.map(|()| pb::UpdateAliasResponse {}))
    })
}

/// delete_alias as a kernel operation.
pub fn delete_alias(req: pb::DeleteAliasRequest) -> impl Operation<Output = pb::DeleteAliasResponse> {
    Rpc::new(&OpSpec::DELETE_ALIAS, req, |app, cx, req| async move {
        Ok(app.engine.delete_alias(&cx, &req.alias_name).await?.map(|()| pb::DeleteAliasResponse {}))
    })
}

/// list_aliases as a kernel operation.
pub fn list_aliases(req: pb::ListAliasesRequest) -> impl Operation<Output = pb::ListAliasesResponse> {
    Rpc::new(&OpSpec::LIST_ALIASES, req, |app, cx, req| async move {
        let page = Page::from_request(req.page_number, req.page_size)?;
        Ok(app.engine.list_aliases(&cx, None, page)?.map(aliases_response))
    })
}

/// list_aliases_by_key_id as a kernel operation.
pub fn list_aliases_by_key_id(req: pb::ListAliasesByKeyIdRequest) -> impl Operation<Output = pb::ListAliasesResponse> {
    Rpc::new(&OpSpec::LIST_ALIASES_BY_KEY_ID, req, |app, cx, req| async move {
        let page = Page::from_request(req.page_number, req.page_size)?;
        Ok(app.engine.list_aliases(&cx, Some(&req.key_id), page)?.map(aliases_response))
    })
}

/// tag_resource as a kernel operation.
pub fn tag_resource(req: pb::TagResourceRequest) -> impl Operation<Output = pb::TagResourceResponse> {
    Rpc::new(&OpSpec::TAG_RESOURCE, req, |app, cx, req| async move {
        let tags = req.tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect();
        Ok(app.engine.tag_resource(&cx, &req.key_id, tags).await?.map(|_| pb::TagResourceResponse {}))
    })
}

/// untag_resource as a kernel operation.
pub fn untag_resource(req: pb::UntagResourceRequest) -> impl Operation<Output = pb::UntagResourceResponse> {
    Rpc::new(&OpSpec::UNTAG_RESOURCE, req, |app, cx, req| async move {
        let outcome = app.engine.untag_resource(&cx, &req.key_id, req.tag_keys).await?;
        Ok(outcome.map(|_| pb::UntagResourceResponse {}))
    })
}

/// list_resource_tags as a kernel operation.
pub fn list_resource_tags(req: pb::ListResourceTagsRequest) -> impl Operation<Output = pb::ListResourceTagsResponse> {
    Rpc::new(&OpSpec::LIST_RESOURCE_TAGS, req, |app, cx, req| async move {
        Ok(app.engine.list_resource_tags(&cx, &req.key_id)?.map(|tags| pb::ListResourceTagsResponse {
            tags: tags.into_iter().map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value }).collect(),
        }))
    })
}

/// encrypt as a kernel operation.
pub fn encrypt(req: pb::EncryptRequest) -> impl Operation<Output = pb::EncryptResponse> {
    Rpc::new(&OpSpec::ENCRYPT, req, |app, cx, req| async move {
        let outcome = app.engine.encrypt(&cx, &req.key_id, &req.plaintext, sorted(req.encryption_context))?;
        Ok(outcome.map(|sealed| {
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(sealed);
            pb::EncryptResponse { ciphertext_blob, key_id, key_version_id }
        }))
    })
}

/// decrypt as a kernel operation.
pub fn decrypt(req: pb::DecryptRequest) -> impl Operation<Output = pb::DecryptResponse> {
    Rpc::new(&OpSpec::DECRYPT, req, |app, cx, req| async move {
        let outcome = app.engine.decrypt(&cx, &req.ciphertext_blob, sorted(req.encryption_context))?;
        Ok(outcome.map(|opened| pb::DecryptResponse {
            plaintext: opened.plaintext.to_vec(),
            key_id: opened.key_id,
            key_version_id: opened.key_version_id.to_string(),
        }))
    })
}

/// re_encrypt as a kernel operation.
pub fn re_encrypt(req: pb::ReEncryptRequest) -> impl Operation<Output = pb::ReEncryptResponse> {
    Rpc::new(&OpSpec::RE_ENCRYPT, req, |app, cx, req| async move {
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
}

/// generate_data_key as a kernel operation.
pub fn generate_data_key(req: pb::GenerateDataKeyRequest) -> impl Operation<Output = pb::GenerateDataKeyResponse> {
    Rpc::new(&OpSpec::GENERATE_DATA_KEY, req, |app, cx, req| async move {
        Ok(new_data_key(&app, &cx, req)?.map(|data_key| {
            let plaintext = data_key.plaintext.to_vec();
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
            pb::GenerateDataKeyResponse { ciphertext_blob, plaintext, key_id, key_version_id }
        }))
    })
}

/// generate_data_key_without_plaintext as a kernel operation.
pub fn generate_data_key_without_plaintext(
    req: pb::GenerateDataKeyRequest,
) -> impl Operation<Output = pb::GenerateDataKeyWithoutPlaintextResponse> {
    Rpc::new(&OpSpec::GENERATE_DATA_KEY_WITHOUT_PLAINTEXT, req, |app, cx, req| async move {
        Ok(new_data_key(&app, &cx, req)?.map(|data_key| {
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
            pb::GenerateDataKeyWithoutPlaintextResponse { ciphertext_blob, key_id, key_version_id }
        }))
    })
}

/// generate_random as a kernel operation.
pub fn generate_random(req: pb::GenerateRandomRequest) -> impl Operation<Output = pb::GenerateRandomResponse> {
    Rpc::new(&OpSpec::GENERATE_RANDOM, req, |app, _cx, req| async move {
        Ok(app.engine.generate_random(req.length)?.map(|random| pb::GenerateRandomResponse { random: random.to_vec() }))
    })
}

/// asymmetric_sign as a kernel operation.
pub fn asymmetric_sign(req: pb::AsymmetricSignRequest) -> impl Operation<Output = pb::AsymmetricSignResponse> {
    Rpc::new(&OpSpec::ASYMMETRIC_SIGN, req, |app, cx, req| async move {
        let sign = sign_request!(req);
        Ok(app.engine.asymmetric_sign(&cx, sign)?.map(|signed| pb::AsymmetricSignResponse {
            signature: signed.value,
            key_id: signed.key_id,
            key_version_id: signed.key_version_id.to_string(),
        }))
    })
}

/// asymmetric_verify as a kernel operation.
pub fn asymmetric_verify(req: pb::AsymmetricVerifyRequest) -> impl Operation<Output = pb::AsymmetricVerifyResponse> {
    Rpc::new(&OpSpec::ASYMMETRIC_VERIFY, req, |app, cx, req| async move {
        let sign = sign_request!(req);
        Ok(app.engine.asymmetric_verify(&cx, sign, &req.signature)?.map(|checked| pb::AsymmetricVerifyResponse {
            valid: checked.value,
            key_id: checked.key_id,
            key_version_id: checked.key_version_id.to_string(),
        }))
    })
}

/// asymmetric_encrypt as a kernel operation.
pub fn asymmetric_encrypt(req: pb::AsymmetricEncryptRequest) -> impl Operation<Output = pb::AsymmetricEncryptResponse> {
    Rpc::new(&OpSpec::ASYMMETRIC_ENCRYPT, req, |app, cx, req| async move {
        let key = (req.key_id.as_str(), req.key_version_id.as_str());
        Ok(app.engine.asymmetric_encrypt(&cx, key, &req.algorithm, &req.plaintext)?.map(|sealed| {
            pb::AsymmetricEncryptResponse {
                ciphertext_blob: sealed.value,
                key_id: sealed.key_id,
                key_version_id: sealed.key_version_id.to_string(),
            }
        }))
    })
}

/// asymmetric_decrypt as a kernel operation.
pub fn asymmetric_decrypt(req: pb::AsymmetricDecryptRequest) -> impl Operation<Output = pb::AsymmetricDecryptResponse> {
    Rpc::new(&OpSpec::ASYMMETRIC_DECRYPT, req, |app, cx, req| async move {
        let key = (req.key_id.as_str(), req.key_version_id.as_str());
        Ok(app.engine.asymmetric_decrypt(&cx, key, &req.algorithm, &req.ciphertext_blob)?.map(|opened| {
            pb::AsymmetricDecryptResponse {
                plaintext: opened.value.to_vec(),
                key_id: opened.key_id,
                key_version_id: opened.key_version_id.to_string(),
            }
        }))
    })
}

/// get_public_key as a kernel operation.
pub fn get_public_key(req: pb::GetPublicKeyRequest) -> impl Operation<Output = pb::GetPublicKeyResponse> {
    Rpc::new(&OpSpec::GET_PUBLIC_KEY, req, |app, cx, req| async move {
        Ok(app.engine.get_public_key(&cx, &req.key_id, &req.key_version_id)?.map(|pem| pb::GetPublicKeyResponse {
            public_key: pem.value,
            key_id: pem.key_id,
            key_version_id: pem.key_version_id.to_string(),
        }))
    })
}

/// create_key_version as a kernel operation.
pub fn create_key_version(req: pb::CreateKeyVersionRequest) -> impl Operation<Output = pb::CreateKeyVersionResponse> {
    Rpc::new(&OpSpec::CREATE_KEY_VERSION, req, |app, cx, req| async move {
        let at = cx.received_at;
        let outcome = app.engine.rotate_key(&cx, &req.key_id, at).await?;
        Ok(outcome.map(|info| pb::CreateKeyVersionResponse { key_version: Some(key_version(info)) }))
    })
}

/// describe_key_version as a kernel operation.
pub fn describe_key_version(
    req: pb::DescribeKeyVersionRequest,
) -> impl Operation<Output = pb::DescribeKeyVersionResponse> {
    Rpc::new(&OpSpec::DESCRIBE_KEY_VERSION, req, |app, cx, req| async move {
        let outcome = app.engine.describe_key_version(&cx, &req.key_id, &req.key_version_id)?;
        Ok(outcome.map(|info| pb::DescribeKeyVersionResponse { key_version: Some(key_version(info)) }))
    })
}

/// list_key_versions as a kernel operation.
pub fn list_key_versions(req: pb::ListKeyVersionsRequest) -> impl Operation<Output = pb::ListKeyVersionsResponse> {
    Rpc::new(&OpSpec::LIST_KEY_VERSIONS, req, |app, cx, req| async move {
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
}

/// update_rotation_policy as a kernel operation.
pub fn update_rotation_policy(
    req: pb::UpdateRotationPolicyRequest,
) -> impl Operation<Output = pb::UpdateRotationPolicyResponse> {
    Rpc::new(&OpSpec::UPDATE_ROTATION_POLICY, req, |app, cx, req| async move {
        let outcome = app
            .engine
            .update_rotation_policy(&cx, &req.key_id, req.enable_automatic_rotation, &req.rotation_interval)
            .await?;
        Ok(outcome.map(|_| pb::UpdateRotationPolicyResponse {}))
    })
}

/// get_parameters_for_import as a kernel operation.
pub fn get_parameters_for_import(
    req: pb::GetParametersForImportRequest,
) -> impl Operation<Output = pb::GetParametersForImportResponse> {
    Rpc::new(&OpSpec::GET_PARAMETERS_FOR_IMPORT, req, |app, cx, req| async move {
        // The catalogue marks it as generating keys (the RSA wrapping key): it runs on the blocking pool.
        let outcome =
            app.engine.get_parameters_for_import(&cx, &req.key_id, &req.wrapping_algorithm, &req.wrapping_key_spec)?;
        Ok(outcome.map(|p| pb::GetParametersForImportResponse {
            key_id: p.key_id,
            import_token: p.import_token,
            public_key: p.public_key,
            token_expire_time: p.token_expire_time.to_rfc3339(),
        }))
    })
}

/// import_key_material as a kernel operation.
pub fn import_key_material(
    req: pb::ImportKeyMaterialRequest,
) -> impl Operation<Output = pb::ImportKeyMaterialResponse> {
    Rpc::new(&OpSpec::IMPORT_KEY_MATERIAL, req, |app, cx, req| async move {
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
}

/// delete_key_material as a kernel operation.
pub fn delete_key_material(
    req: pb::DeleteKeyMaterialRequest,
) -> impl Operation<Output = pb::DeleteKeyMaterialResponse> {
    Rpc::new(&OpSpec::DELETE_KEY_MATERIAL, req, |app, cx, req| async move {
        Ok(app.engine.delete_key_material(&cx, &req.key_id).await?.map(|_| pb::DeleteKeyMaterialResponse {}))
    })
}

/// export_data_key as a kernel operation.
pub fn export_data_key(req: pb::ExportDataKeyRequest) -> impl Operation<Output = pb::ExportDataKeyResponse> {
    Rpc::new(&OpSpec::EXPORT_DATA_KEY, req, |app, cx, req| async move {
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
}

/// generate_and_export_data_key as a kernel operation.
pub fn generate_and_export_data_key(
    req: pb::GenerateAndExportDataKeyRequest,
) -> impl Operation<Output = pb::GenerateAndExportDataKeyResponse> {
    Rpc::new(&OpSpec::GENERATE_AND_EXPORT_DATA_KEY, req, |app, cx, req| async move {
        let to = export_to!(req);
        let key = (req.key_id.as_str(), req.key_spec.as_str(), req.number_of_bytes);
        let context = sorted(req.encryption_context.clone());
        Ok(app.engine.generate_and_export_data_key(&cx, key, context, to)?.map(|(data_key, export_blob)| {
            let (ciphertext_blob, key_id, key_version_id) = sealed_fields(data_key.sealed);
            pb::GenerateAndExportDataKeyResponse { ciphertext_blob, export_blob, key_id, key_version_id }
        }))
    })
}

/// export_key as a kernel operation.
pub fn export_key(req: pb::ExportKeyRequest) -> impl Operation<Output = pb::ExportKeyResponse> {
    Rpc::new(&OpSpec::EXPORT_KEY, req, |app, cx, req| async move {
        let to = export_to!(req);
        Ok(app.engine.export_key(&cx, &req.key_id, &req.key_version_id, to)?.map(|exported| pb::ExportKeyResponse {
            export_blob: exported.export_blob,
            key_id: exported.key_id,
            key_version_id: exported.key_version_id.to_string(),
        }))
    })
}

/// generate_mac as a kernel operation.
pub fn generate_mac(req: pb::GenerateMacRequest) -> impl Operation<Output = pb::GenerateMacResponse> {
    Rpc::new(&OpSpec::GENERATE_MAC, req, |app, cx, req| async move {
        Ok(app.engine.generate_mac(&cx, &req.key_id, &req.algorithm, &req.message)?.map(|mac| {
            pb::GenerateMacResponse {
                mac: mac.value,
                key_id: mac.key_id,
                key_version_id: mac.key_version_id.to_string(),
            }
        }))
    })
}

/// verify_mac as a kernel operation.
pub fn verify_mac(req: pb::VerifyMacRequest) -> impl Operation<Output = pb::VerifyMacResponse> {
    Rpc::new(&OpSpec::VERIFY_MAC, req, |app, cx, req| async move {
        Ok(app.engine.verify_mac(&cx, &req.key_id, &req.algorithm, &req.message, &req.mac)?.map(|checked| {
            pb::VerifyMacResponse {
                valid: checked.value,
                key_id: checked.key_id,
                key_version_id: checked.key_version_id.to_string(),
            }
        }))
    })
}
