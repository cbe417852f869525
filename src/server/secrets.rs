//! `kmsim.v1.SecretsManagerService`: decodes each request into engine terms
//! and encodes the answer; the dispatcher does the rest (including the
//! Encrypt and Decrypt records of the values the engine sealed and opened).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::dispatch::Dispatcher;
use super::kms::page_fields;
use crate::audit::OpSpec;
use crate::clock::SimTime;
use crate::engine::secrets::{ROTATION_FAULT_NAME, SecretVersion, encode_data};
use crate::engine::{CreateSecretInput, Page, PasswordRules, Secret};
use crate::proto as pb;
use crate::proto::secrets_manager_service_server::SecretsManagerService;

pub struct SecretsApi {
    dispatch: Dispatcher,
}

impl SecretsApi {
    pub fn new(dispatch: Dispatcher) -> Self {
        SecretsApi { dispatch }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl SecretsManagerService for SecretsApi {
    async fn create_secret(&self, request: Request<pb::CreateSecretRequest>) -> Reply<pb::CreateSecretResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_SECRET, request, |app, cx, req| async move {
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
            .await
    }

    async fn get_secret_value(&self, request: Request<pb::GetSecretValueRequest>) -> Reply<pb::GetSecretValueResponse> {
        self.dispatch
            .run(&OpSpec::GET_SECRET_VALUE, request, |app, cx, req| async move {
                let outcome =
                    app.engine.get_secret_value(&cx, &req.secret_name, &req.version_id, &req.version_stage)?;
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
                        extended_config: if req.fetch_extended_config {
                            extended_config(secret)
                        } else {
                            String::new()
                        },
                        automatic_rotation,
                        rotation_interval,
                    }
                }))
            })
            .await
    }

    async fn put_secret_value(&self, request: Request<pb::PutSecretValueRequest>) -> Reply<pb::PutSecretValueResponse> {
        self.dispatch
            .run(&OpSpec::PUT_SECRET_VALUE, request, |app, cx, req| async move {
                let data = Zeroizing::new(req.secret_data);
                let outcome = app
                    .engine
                    .put_secret_value(
                        &cx,
                        &req.secret_name,
                        &req.version_id,
                        &data,
                        &req.secret_data_type,
                        req.version_stages,
                    )
                    .await?;
                Ok(outcome.map(|(secret, version_id)| pb::PutSecretValueResponse {
                    secret_name: secret.name.clone(),
                    version_stages: secret.version(&version_id).map(stages).unwrap_or_default(),
                    version_id,
                }))
            })
            .await
    }

    async fn describe_secret(&self, request: Request<pb::DescribeSecretRequest>) -> Reply<pb::DescribeSecretResponse> {
        self.dispatch
            .run(&OpSpec::DESCRIBE_SECRET, request, |app, cx, req| async move {
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
            .await
    }

    async fn list_secrets(&self, request: Request<pb::ListSecretsRequest>) -> Reply<pb::ListSecretsResponse> {
        self.dispatch
            .run(&OpSpec::LIST_SECRETS, request, |app, cx, req| async move {
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
            .await
    }

    async fn update_secret(&self, request: Request<pb::UpdateSecretRequest>) -> Reply<pb::UpdateSecretResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_SECRET, request, |app, cx, req| async move {
                let description = (req.update_description || !req.description.is_empty()).then_some(req.description);
                let outcome =
                    app.engine.update_secret(&cx, &req.secret_name, description, &req.extended_config).await?;
                Ok(outcome.map(|secret| pb::UpdateSecretResponse { secret_name: secret.name.clone() }))
            })
            .await
    }

    async fn update_secret_version_stage(
        &self,
        request: Request<pb::UpdateSecretVersionStageRequest>,
    ) -> Reply<pb::UpdateSecretVersionStageResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_SECRET_VERSION_STAGE, request, |app, cx, req| async move {
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
            .await
    }

    async fn list_secret_version_ids(
        &self,
        request: Request<pb::ListSecretVersionIdsRequest>,
    ) -> Reply<pb::ListSecretVersionIdsResponse> {
        self.dispatch
            .run(&OpSpec::LIST_SECRET_VERSION_IDS, request, |app, cx, req| async move {
                let page = Page::from_request(req.page_number, req.page_size)?;
                let outcome =
                    app.engine.list_secret_version_ids(&cx, &req.secret_name, req.include_deprecated, page)?;
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
            .await
    }

    async fn delete_secret(&self, request: Request<pb::DeleteSecretRequest>) -> Reply<pb::DeleteSecretResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_SECRET, request, |app, cx, req| async move {
                let outcome = app
                    .engine
                    .delete_secret(
                        &cx,
                        &req.secret_name,
                        req.recovery_window_in_days,
                        req.force_delete_without_recovery,
                    )
                    .await?;
                Ok(outcome.map(|(secret, planned)| pb::DeleteSecretResponse {
                    secret_name: secret.name.clone(),
                    planned_delete_time: planned.to_rfc3339(),
                }))
            })
            .await
    }

    async fn restore_secret(&self, request: Request<pb::RestoreSecretRequest>) -> Reply<pb::RestoreSecretResponse> {
        self.dispatch
            .run(&OpSpec::RESTORE_SECRET, request, |app, cx, req| async move {
                let outcome = app.engine.restore_secret(&cx, &req.secret_name).await?;
                Ok(outcome.map(|secret| pb::RestoreSecretResponse { secret_name: secret.name.clone() }))
            })
            .await
    }

    async fn rotate_secret(&self, request: Request<pb::RotateSecretRequest>) -> Reply<pb::RotateSecretResponse> {
        self.dispatch
            .run(&OpSpec::ROTATE_SECRET, request, |app, cx, req| async move {
                // A rotation asked for is the same work as a scheduled one, and the same faults break it.
                let now = cx.received_at;
                let fault = |name: &str| app.admission.task_fault(ROTATION_FAULT_NAME, name, now).map(|(_, e)| e);
                let outcome = app.engine.rotate_secret(&cx, &req.secret_name, &req.version_id, fault).await?;
                Ok(outcome.map(|(secret, version_id)| pb::RotateSecretResponse {
                    arn: secret.arn(),
                    secret_name: secret.name.clone(),
                    version_id,
                }))
            })
            .await
    }

    async fn update_secret_rotation_policy(
        &self,
        request: Request<pb::UpdateSecretRotationPolicyRequest>,
    ) -> Reply<pb::UpdateSecretRotationPolicyResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_SECRET_ROTATION_POLICY, request, |app, cx, req| async move {
                let outcome = app
                    .engine
                    .update_secret_rotation_policy(
                        &cx,
                        &req.secret_name,
                        req.enable_automatic_rotation,
                        &req.rotation_interval,
                    )
                    .await?;
                Ok(outcome.map(|secret| pb::UpdateSecretRotationPolicyResponse { secret_name: secret.name.clone() }))
            })
            .await
    }

    async fn get_random_password(
        &self,
        request: Request<pb::GetRandomPasswordRequest>,
    ) -> Reply<pb::GetRandomPasswordResponse> {
        self.dispatch
            .run(&OpSpec::GET_RANDOM_PASSWORD, request, |app, _cx, req| async move {
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
            .await
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
