//! `kmsim.v1.SecretsManagerService`: which kernel operation each method is,
//! how its request decodes into it, and how its output encodes as the
//! response. The kernel does the rest (including the Encrypt and Decrypt
//! records of the values the engine sealed and opened).

use zeroize::Zeroizing;

use super::kms::tag_pairs;
use super::{Grpc, decode, service};
use crate::engine::Secret;
use crate::engine::secrets::encode_data;
use crate::frontends::text::{date, extended_config, page_fields, rotation_fields, stages};
use crate::kernel::ops::secrets as ops;
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

service! {
    impl SecretsManagerService for SecretsApi {
        create_secret(CreateSecretRequest) -> CreateSecretResponse = CreateSecret, |secret| {
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
        };
        get_secret_value(GetSecretValueRequest) -> GetSecretValueResponse = GetSecretValue, |value| {
            let secret = &value.secret;
            let (automatic_rotation, rotation_interval, next_rotation_date) = rotation_fields(secret);
            pb::GetSecretValueResponse {
                secret_name: secret.name.clone(),
                secret_type: secret.secret_type.as_str().to_owned(),
                secret_data: encode_data(&value.data, secret.data_type).to_string(),
                secret_data_type: secret.data_type.as_str().to_owned(),
                version_id: value.version.version_id.clone(),
                version_stages: stages(&value.version),
                create_time: value.version.created.to_rfc3339(),
                last_rotation_date: date(secret.rotation.last),
                next_rotation_date,
                extended_config: extended_config(secret),
                automatic_rotation,
                rotation_interval,
            }
        };
        put_secret_value(PutSecretValueRequest) -> PutSecretValueResponse = PutSecretValue,
            |(secret, version_id)| pb::PutSecretValueResponse {
                secret_name: secret.name.clone(),
                version_stages: secret.version(&version_id).map(stages).unwrap_or_default(),
                version_id,
            };
        describe_secret(DescribeSecretRequest) -> DescribeSecretResponse = DescribeSecret, |secret| {
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
                tags: tags(&secret),
            }
        };
        list_secrets(ListSecretsRequest) -> ListSecretsResponse = ListSecrets, |paged| {
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
                        tags: tags(secret),
                    })
                    .collect(),
                page_number,
                page_size,
                total_count,
            }
        };
        update_secret(UpdateSecretRequest) -> UpdateSecretResponse = UpdateSecret,
            |secret| pb::UpdateSecretResponse { secret_name: secret.name.clone() };
        update_secret_version_stage(UpdateSecretVersionStageRequest) -> UpdateSecretVersionStageResponse =
            UpdateSecretVersionStage, |secret| pb::UpdateSecretVersionStageResponse { secret_name: secret.name.clone() };
        list_secret_version_ids(ListSecretVersionIdsRequest) -> ListSecretVersionIdsResponse = ListSecretVersionIds,
            |(secret, paged)| {
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
            };
        delete_secret(DeleteSecretRequest) -> DeleteSecretResponse = DeleteSecret,
            |(secret, planned)| pb::DeleteSecretResponse {
                secret_name: secret.name.clone(),
                planned_delete_time: planned.to_rfc3339(),
            };
        restore_secret(RestoreSecretRequest) -> RestoreSecretResponse = RestoreSecret,
            |secret| pb::RestoreSecretResponse { secret_name: secret.name.clone() };
        rotate_secret(RotateSecretRequest) -> RotateSecretResponse = RotateSecret,
            |(secret, version_id)| pb::RotateSecretResponse {
                arn: secret.arn(),
                secret_name: secret.name.clone(),
                version_id,
            };
        update_secret_rotation_policy(UpdateSecretRotationPolicyRequest) -> UpdateSecretRotationPolicyResponse =
            UpdateSecretRotationPolicy,
            |secret| pb::UpdateSecretRotationPolicyResponse { secret_name: secret.name.clone() };
        get_random_password(GetRandomPasswordRequest) -> GetRandomPasswordResponse = GetRandomPassword,
            |password| pb::GetRandomPasswordResponse { random_password: password.to_string() };
    }
}

decode! {
    CreateSecretRequest => CreateSecret {
        secret_name, secret_data: Zeroizing::new, secret_data_type, version_id, encryption_key_id, description,
        secret_type, extended_config, enable_automatic_rotation, rotation_interval, tags: tag_pairs,
        dkms_instance_id,
    }
    GetSecretValueRequest => GetSecretValue { secret_name, version_stage, version_id, fetch_extended_config }
    PutSecretValueRequest => PutSecretValue {
        secret_name, version_id, secret_data: Zeroizing::new, secret_data_type, version_stages,
    }
    DescribeSecretRequest => DescribeSecret { secret_name, fetch_tags }
    ListSecretsRequest => ListSecrets { fetch_tags, page_number, page_size, filters }
    UpdateSecretRequest => UpdateSecret { secret_name, description, update_description, extended_config }
    UpdateSecretVersionStageRequest => UpdateSecretVersionStage {
        secret_name, version_stage, remove_from_version, move_to_version,
    }
    ListSecretVersionIdsRequest => ListSecretVersionIds { secret_name, include_deprecated, page_number, page_size }
    DeleteSecretRequest => DeleteSecret { secret_name, recovery_window_in_days, force_delete_without_recovery }
    RestoreSecretRequest => RestoreSecret { secret_name }
    RotateSecretRequest => RotateSecret { secret_name, version_id }
    UpdateSecretRotationPolicyRequest => UpdateSecretRotationPolicy {
        secret_name, enable_automatic_rotation, rotation_interval,
    }
    GetRandomPasswordRequest => GetRandomPassword {
        password_length, exclude_characters, exclude_numbers, exclude_lowercase, exclude_uppercase,
        exclude_punctuation, require_each_included_type,
    }
}

fn tags(secret: &Secret) -> Vec<pb::Tag> {
    secret.tags.iter().map(|(k, v)| pb::Tag { tag_key: k.clone(), tag_value: v.clone() }).collect()
}
