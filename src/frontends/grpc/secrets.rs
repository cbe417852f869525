//! `kmsim.v1.SecretsManagerService`: decodes each request into engine terms
//! and encodes the answer; the kernel does the rest (including the
//! Encrypt and Decrypt records of the values the engine sealed and opened).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::kms::page_fields;
use super::{Grpc, Rpc};
use crate::clock::SimTime;
use crate::engine::secrets::{ROTATION_FAULT_NAME, SecretVersion, encode_data};
use crate::engine::{CreateSecretInput, Page, PasswordRules, Secret};
use crate::kernel::OpSpec;
use crate::kernel::Operation;
use crate::proto as pb;
use crate::proto::secrets_manager_service_server::SecretsManagerService;

pub struct SecretsApi {
    grpc: Grpc,
}

impl SecretsApi {
    pub fn new(grpc: Grpc) -> Self {
        SecretsApi { grpc }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl SecretsManagerService for SecretsApi {
    async fn create_secret(&self, request: Request<pb::CreateSecretRequest>) -> Reply<pb::CreateSecretResponse> {
        self.grpc.unary(request, create_secret).await
    }

    async fn get_secret_value(&self, request: Request<pb::GetSecretValueRequest>) -> Reply<pb::GetSecretValueResponse> {
        self.grpc.unary(request, get_secret_value).await
    }

    async fn put_secret_value(&self, request: Request<pb::PutSecretValueRequest>) -> Reply<pb::PutSecretValueResponse> {
        self.grpc.unary(request, put_secret_value).await
    }

    async fn describe_secret(&self, request: Request<pb::DescribeSecretRequest>) -> Reply<pb::DescribeSecretResponse> {
        self.grpc.unary(request, describe_secret).await
    }

    async fn list_secrets(&self, request: Request<pb::ListSecretsRequest>) -> Reply<pb::ListSecretsResponse> {
        self.grpc.unary(request, list_secrets).await
    }

    async fn update_secret(&self, request: Request<pb::UpdateSecretRequest>) -> Reply<pb::UpdateSecretResponse> {
        self.grpc.unary(request, update_secret).await
    }

    async fn update_secret_version_stage(
        &self,
        request: Request<pb::UpdateSecretVersionStageRequest>,
    ) -> Reply<pb::UpdateSecretVersionStageResponse> {
        self.grpc.unary(request, update_secret_version_stage).await
    }

    async fn list_secret_version_ids(
        &self,
        request: Request<pb::ListSecretVersionIdsRequest>,
    ) -> Reply<pb::ListSecretVersionIdsResponse> {
        self.grpc.unary(request, list_secret_version_ids).await
    }

    async fn delete_secret(&self, request: Request<pb::DeleteSecretRequest>) -> Reply<pb::DeleteSecretResponse> {
        self.grpc.unary(request, delete_secret).await
    }

    async fn restore_secret(&self, request: Request<pb::RestoreSecretRequest>) -> Reply<pb::RestoreSecretResponse> {
        self.grpc.unary(request, restore_secret).await
    }

    async fn rotate_secret(&self, request: Request<pb::RotateSecretRequest>) -> Reply<pb::RotateSecretResponse> {
        self.grpc.unary(request, rotate_secret).await
    }

    async fn update_secret_rotation_policy(
        &self,
        request: Request<pb::UpdateSecretRotationPolicyRequest>,
    ) -> Reply<pb::UpdateSecretRotationPolicyResponse> {
        self.grpc.unary(request, update_secret_rotation_policy).await
    }

    async fn get_random_password(
        &self,
        request: Request<pb::GetRandomPasswordRequest>,
    ) -> Reply<pb::GetRandomPasswordResponse> {
        self.grpc.unary(request, get_random_password).await
    }
}

fn date(time: Option<SimTime>) -> String {
    time.map(SimTime::to_rfc3339).unwrap_or_default()
}

/// AutomaticRotation, RotationInterval (seconds, `21600s`) and NextRotationDate.
fn rotation_fields(secret: &Arc<Secret>) -> (String, String, String) {
    let rotation = &secret.rotation;
    let automatic = if rotation.automatic { "Enabled" } else { "Disabled" };
    let interval = rotation.interval_secs.filter(|_| rotation.automatic).map(|s| format!("{s}s")).unwrap_or_default();
    (automatic.to_owned(), interval, date(rotation.next))
}

fn extended_config(secret: &Secret) -> String {
    secret.extended_config.as_ref().map(|c| serde_json::Value::Object(c.clone()).to_string()).unwrap_or_default()
}

fn stages(version: &SecretVersion) -> Vec<String> {
    version.stages.iter().cloned().collect()
}

fn tags(secret: &Secret) -> Vec<pb::Tag> {
    secret.tags.iter().map(|(k, v)| pb::Tag { tag_key: k.clone(), tag_value: v.clone() }).collect()
}

/// create_secret as a kernel operation.
pub fn create_secret(req: pb::CreateSecretRequest) -> impl Operation<Output = pb::CreateSecretResponse> {
    Rpc::new(&OpSpec::CREATE_SECRET, req, |app, cx, req| async move {
        let input = CreateSecretInput {
            secret_name: req.secret_name,
            secret_data: Zeroizing::new(req.secret_data),
            secret_data_type: req.secret_data_type,
            version_id: req.version_id,
            encryption_key_id: req.encryption_key_id,
            description: req.description,
            secret_type: req.secret_type,
            extended_config: req.extended_config,
            enable_automatic_rotation: req.enable_automatic_rotation,
            rotation_interval: req.rotation_interval,
            tags: req.tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect(),
            dkms_instance_id: req.dkms_instance_id,
        };
        Ok(app.engine.create_secret(&cx, input).await?.map(|secret| {
            let (automatic_rotation, rotation_interval, next_rotation_date) = rotation_fields(&secret);
            pb::CreateSecretResponse {
                arn: secret.arn(),
                secret_name: secret.name.clone(),
                version_id: secret.versions.first().map(|v| v.version_id.clone()).unwrap_or_default(),
                secret_type: secret.secret_type.as_str().to_owned(),
                automatic_rotation,
                rotation_interval,
                next_rotation_date,
                dkms_instance_id: secret.instance_id.clone().unwrap_or_default(),
            }
        }))
    })
}

/// get_secret_value as a kernel operation.
pub fn get_secret_value(req: pb::GetSecretValueRequest) -> impl Operation<Output = pb::GetSecretValueResponse> {
    Rpc::new(&OpSpec::GET_SECRET_VALUE, req, |app, cx, req| async move {
        let outcome = app.engine.get_secret_value(&cx, &req.secret_name, &req.version_id, &req.version_stage)?;
        Ok(outcome.map(|value| {
            let secret = &value.secret;
            let (automatic_rotation, rotation_interval, next_rotation_date) = rotation_fields(secret);
            pb::GetSecretValueResponse {
                secret_name: secret.name.clone(),
                secret_type: secret.secret_type.as_str().to_owned(),
                secret_data: encode_data(&value.data, secret.data_type).to_string(),
                secret_data_type: secret.data_type.as_str().to_owned(),
                version_id: value.version.version_id.clone(),
                version_stages: value.version.stages.iter().cloned().collect(),
                create_time: value.version.created.to_rfc3339(),
                last_rotation_date: date(secret.rotation.last),
                next_rotation_date,
                extended_config: if req.fetch_extended_config { extended_config(secret) } else { String::new() },
                automatic_rotation,
                rotation_interval,
            }
        }))
    })
}

/// put_secret_value as a kernel operation.
pub fn put_secret_value(req: pb::PutSecretValueRequest) -> impl Operation<Output = pb::PutSecretValueResponse> {
    Rpc::new(&OpSpec::PUT_SECRET_VALUE, req, |app, cx, req| async move {
        let data = Zeroizing::new(req.secret_data);
        let outcome = app
            .engine
            .put_secret_value(&cx, &req.secret_name, &req.version_id, &data, &req.secret_data_type, req.version_stages)
            .await?;
        Ok(outcome.map(|(secret, version_id)| pb::PutSecretValueResponse {
            secret_name: secret.name.clone(),
            version_stages: secret.version(&version_id).map(stages).unwrap_or_default(),
            version_id,
        }))
    })
}

/// describe_secret as a kernel operation.
pub fn describe_secret(req: pb::DescribeSecretRequest) -> impl Operation<Output = pb::DescribeSecretResponse> {
    Rpc::new(&OpSpec::DESCRIBE_SECRET, req, |app, cx, req| async move {
        Ok(app.engine.describe_secret(&cx, &req.secret_name)?.map(|secret| {
            let (automatic_rotation, rotation_interval, next_rotation_date) = rotation_fields(&secret);
            pb::DescribeSecretResponse {
                arn: secret.arn(),
                secret_name: secret.name.clone(),
                secret_type: secret.secret_type.as_str().to_owned(),
                encryption_key_id: secret.encryption_key_id.clone(),
                description: secret.description.clone(),
                create_time: secret.created.to_rfc3339(),
                update_time: secret.updated.to_rfc3339(),
                planned_delete_time: date(secret.planned_delete),
                automatic_rotation,
                rotation_interval,
                last_rotation_date: date(secret.rotation.last),
                next_rotation_date,
                extended_config: extended_config(&secret),
                dkms_instance_id: secret.instance_id.clone().unwrap_or_default(),
                tags: if req.fetch_tags { tags(&secret) } else { Vec::new() },
            }
        }))
    })
}

/// list_secrets as a kernel operation.
pub fn list_secrets(req: pb::ListSecretsRequest) -> impl Operation<Output = pb::ListSecretsResponse> {
    Rpc::new(&OpSpec::LIST_SECRETS, req, |app, cx, req| async move {
        let page = Page::from_request(req.page_number, req.page_size)?;
        Ok(app.engine.list_secrets(&cx, &req.filters, page)?.map(|paged| {
            let (total_count, page_number, page_size) = page_fields(&paged);
            pb::ListSecretsResponse {
                secret_list: paged
                    .items
                    .iter()
                    .map(|secret| pb::SecretListEntry {
                        secret_name: secret.name.clone(),
                        secret_type: secret.secret_type.as_str().to_owned(),
                        create_time: secret.created.to_rfc3339(),
                        update_time: secret.updated.to_rfc3339(),
                        planned_delete_time: date(secret.planned_delete),
                        tags: if req.fetch_tags { tags(secret) } else { Vec::new() },
                    })
                    .collect(),
                page_number,
                page_size,
                total_count,
            }
        }))
    })
}

/// update_secret as a kernel operation.
pub fn update_secret(req: pb::UpdateSecretRequest) -> impl Operation<Output = pb::UpdateSecretResponse> {
    Rpc::new(&OpSpec::UPDATE_SECRET, req, |app, cx, req| async move {
        let description = (req.update_description || !req.description.is_empty()).then_some(req.description);
        let outcome = app.engine.update_secret(&cx, &req.secret_name, description, &req.extended_config).await?;
        Ok(outcome.map(|secret| pb::UpdateSecretResponse { secret_name: secret.name.clone() }))
    })
}

/// update_secret_version_stage as a kernel operation.
pub fn update_secret_version_stage(
    req: pb::UpdateSecretVersionStageRequest,
) -> impl Operation<Output = pb::UpdateSecretVersionStageResponse> {
    Rpc::new(&OpSpec::UPDATE_SECRET_VERSION_STAGE, req, |app, cx, req| async move {
        let outcome = app
            .engine
            .update_secret_version_stage(
                &cx,
                &req.secret_name,
                &req.version_stage,
                &req.remove_from_version,
                &req.move_to_version,
            )
            .await?;
        Ok(outcome.map(|secret| pb::UpdateSecretVersionStageResponse { secret_name: secret.name.clone() }))
    })
}

/// list_secret_version_ids as a kernel operation.
pub fn list_secret_version_ids(
    req: pb::ListSecretVersionIdsRequest,
) -> impl Operation<Output = pb::ListSecretVersionIdsResponse> {
    Rpc::new(&OpSpec::LIST_SECRET_VERSION_IDS, req, |app, cx, req| async move {
        let page = Page::from_request(req.page_number, req.page_size)?;
        let outcome = app.engine.list_secret_version_ids(&cx, &req.secret_name, req.include_deprecated, page)?;
        Ok(outcome.map(|(secret, paged)| {
            let (total_count, page_number, page_size) = page_fields(&paged);
            pb::ListSecretVersionIdsResponse {
                secret_name: secret.name.clone(),
                version_ids: paged
                    .items
                    .iter()
                    .map(|v| pb::SecretVersionEntry {
                        version_id: v.version_id.clone(),
                        create_time: v.created.to_rfc3339(),
                        version_stages: stages(v),
                    })
                    .collect(),
                page_number,
                page_size,
                total_count,
            }
        }))
    })
}

/// delete_secret as a kernel operation.
pub fn delete_secret(req: pb::DeleteSecretRequest) -> impl Operation<Output = pb::DeleteSecretResponse> {
    Rpc::new(&OpSpec::DELETE_SECRET, req, |app, cx, req| async move {
        let outcome = app
            .engine
            .delete_secret(&cx, &req.secret_name, req.recovery_window_in_days, req.force_delete_without_recovery)
            .await?;
        Ok(outcome.map(|(secret, planned)| pb::DeleteSecretResponse {
            secret_name: secret.name.clone(),
            planned_delete_time: planned.to_rfc3339(),
        }))
    })
}

/// restore_secret as a kernel operation.
pub fn restore_secret(req: pb::RestoreSecretRequest) -> impl Operation<Output = pb::RestoreSecretResponse> {
    Rpc::new(&OpSpec::RESTORE_SECRET, req, |app, cx, req| async move {
        let outcome = app.engine.restore_secret(&cx, &req.secret_name).await?;
        Ok(outcome.map(|secret| pb::RestoreSecretResponse { secret_name: secret.name.clone() }))
    })
}

/// rotate_secret as a kernel operation.
pub fn rotate_secret(req: pb::RotateSecretRequest) -> impl Operation<Output = pb::RotateSecretResponse> {
    Rpc::new(&OpSpec::ROTATE_SECRET, req, |app, cx, req| async move {
        // A rotation asked for is the same work as a scheduled one, and the same faults break it.
        let now = cx.received_at;
        let fault = |name: &str| {
            let (fault_id, error) = app.admission.task_fault(ROTATION_FAULT_NAME, name, now)?;
            cx.trail.injected_fault(fault_id);
            Some(error)
        };
        let outcome = app.engine.rotate_secret(&cx, &req.secret_name, &req.version_id, fault).await?;
        Ok(outcome.map(|(secret, version_id)| pb::RotateSecretResponse {
            arn: secret.arn(),
            secret_name: secret.name.clone(),
            version_id,
        }))
    })
}

/// update_secret_rotation_policy as a kernel operation.
pub fn update_secret_rotation_policy(
    req: pb::UpdateSecretRotationPolicyRequest,
) -> impl Operation<Output = pb::UpdateSecretRotationPolicyResponse> {
    Rpc::new(&OpSpec::UPDATE_SECRET_ROTATION_POLICY, req, |app, cx, req| async move {
        let outcome = app
            .engine
            .update_secret_rotation_policy(&cx, &req.secret_name, req.enable_automatic_rotation, &req.rotation_interval)
            .await?;
        Ok(outcome.map(|secret| pb::UpdateSecretRotationPolicyResponse { secret_name: secret.name.clone() }))
    })
}

/// get_random_password as a kernel operation.
pub fn get_random_password(
    req: pb::GetRandomPasswordRequest,
) -> impl Operation<Output = pb::GetRandomPasswordResponse> {
    Rpc::new(&OpSpec::GET_RANDOM_PASSWORD, req, |app, _cx, req| async move {
        let defaults = PasswordRules::default();
        let rules = PasswordRules {
            length: match req.password_length {
                0 => defaults.length,
                n => usize::try_from(n).unwrap_or(0),
            },
            exclude_characters: req.exclude_characters,
            exclude_numbers: req.exclude_numbers,
            exclude_lowercase: req.exclude_lowercase,
            exclude_uppercase: req.exclude_uppercase,
            exclude_punctuation: req.exclude_punctuation,
            require_each_included_type: req.require_each_included_type.unwrap_or(true),
        };
        let outcome = app.engine.get_random_password(&rules)?;
        Ok(outcome.map(|password| pb::GetRandomPasswordResponse { random_password: password.to_string() }))
    })
}
