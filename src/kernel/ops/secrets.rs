//! Secrets Manager: secrets and their versions, stages, deletion and
//! rotation, secret policies, and random passwords. A secret's value never becomes an audit
//! parameter; the Encrypt and Decrypt records of the values the engine seals
//! and opens are the kernel's, made as these run.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::operation;
use crate::clock::SimTime;
use crate::engine::secrets::{BatchAnswer, ROTATION_FAULT_NAME, SecretVersion, SecretWanted};
use crate::engine::{CreateSecretInput, Page, Paged, PasswordRules, Secret, SecretValue};
use crate::kernel::Names;

operation! {
    CreateSecret = CREATE_SECRET -> Arc<Secret> {
        secret_name: String = "SecretName",
        secret_data: Zeroizing<String>,
        secret_data_type: String = "SecretDataType",
        version_id: String = "VersionId",
        encryption_key_id: String = "EncryptionKeyId",
        description: String = "Description",
        secret_type: String = "SecretType",
        extended_config: String,
        enable_automatic_rotation: bool = "EnableAutomaticRotation",
        rotation_interval: String = "RotationInterval",
        tags: Vec<(String, String)> = "Tags",
        dkms_instance_id: String = "DKMSInstanceId",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        let CreateSecret {
            secret_name,
            secret_data,
            secret_data_type,
            version_id,
            encryption_key_id,
            description,
            secret_type,
            extended_config,
            enable_automatic_rotation,
            rotation_interval,
            tags,
            dkms_instance_id,
        } = op;
        let input = CreateSecretInput {
            secret_name,
            secret_data,
            secret_data_type,
            version_id,
            encryption_key_id,
            description,
            secret_type,
            extended_config,
            enable_automatic_rotation,
            rotation_interval,
            tags,
            dkms_instance_id,
        };
        app.engine.create_secret(&cx, input).await?
    }
}

operation! {
    /// The value opened; the secret's extended config only when asked for.
    GetSecretValue = GET_SECRET_VALUE -> SecretValue {
        secret_name: String = "SecretName",
        version_stage: String = "VersionStage",
        version_id: String = "VersionId",
        fetch_extended_config: bool = "FetchExtendedConfig",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        let outcome = app.engine.get_secret_value(&cx, &op.secret_name, &op.version_id, &op.version_stage)?;
        outcome.map(|value| shown(value, op.fetch_extended_config))
    }
}

operation! {
    /// Each secret asked for, by the name it was asked for by: its value
    /// (its extended config only when asked for), or the error it met.
    BatchGetSecretValue = BATCH_GET_SECRET_VALUE -> Vec<BatchAnswer> {
        secrets_list: Vec<SecretWanted> = "SecretsList",
    }
    names(_) { Names::found_while_running() }
    run(op, app, cx) {
        let outcome = app.engine.batch_get_secret_value(&cx, &op.secrets_list)?;
        outcome.map(|answers| {
            answers
                .into_iter()
                .zip(&op.secrets_list)
                .map(|((name, value), wanted)| (name, value.map(|value| shown(value, wanted.fetch_extended_config))))
                .collect()
        })
    }
}

operation! {
    GetSecretPolicy = GET_SECRET_POLICY -> String {
        secret_name: String = "SecretName",
        policy_name: String = "PolicyName",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) { app.engine.get_secret_policy(&cx, &op.secret_name, &op.policy_name)? }
}

operation! {
    SetSecretPolicy = SET_SECRET_POLICY -> () {
        secret_name: String = "SecretName",
        policy_name: String = "PolicyName",
        policy: String = "Policy",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        app.engine.set_secret_policy(&cx, &op.secret_name, &op.policy_name, &op.policy).await?
    }
}

operation! {
    /// The secret as it now is, and the id of the version put.
    PutSecretValue = PUT_SECRET_VALUE -> (Arc<Secret>, String) {
        secret_name: String = "SecretName",
        version_id: String = "VersionId",
        secret_data: Zeroizing<String>,
        secret_data_type: String = "SecretDataType",
        version_stages: Vec<String> = "VersionStages",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        app.engine
            .put_secret_value(
                &cx,
                &op.secret_name,
                &op.version_id,
                &op.secret_data,
                &op.secret_data_type,
                op.version_stages,
            )
            .await?
    }
}

operation! {
    /// The secret; its tags only when asked for.
    DescribeSecret = DESCRIBE_SECRET -> Arc<Secret> {
        secret_name: String = "SecretName",
        fetch_tags: bool = "FetchTags",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        let outcome = app.engine.describe_secret(&cx, &op.secret_name)?;
        if op.fetch_tags { outcome } else { outcome.map(without_tags) }
    }
}

operation! {
    /// A page of secrets; their tags only when asked for.
    ListSecrets = LIST_SECRETS -> Paged<Arc<Secret>> {
        fetch_tags: bool = "FetchTags",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
        filters: String = "Filters",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        let outcome = app.engine.list_secrets(&cx, &op.filters, page)?;
        if op.fetch_tags {
            outcome
        } else {
            outcome.map(|paged| Paged { items: paged.items.into_iter().map(without_tags).collect(), ..paged })
        }
    }
}

operation! {
    UpdateSecret = UPDATE_SECRET -> Arc<Secret> {
        secret_name: String = "SecretName",
        description: String = "Description",
        /// Whether an empty description is one to set (a non-empty one always is).
        update_description: bool,
        extended_config: String,
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        let description = (op.update_description || !op.description.is_empty()).then_some(op.description);
        app.engine.update_secret(&cx, &op.secret_name, description, &op.extended_config).await?
    }
}

operation! {
    UpdateSecretVersionStage = UPDATE_SECRET_VERSION_STAGE -> Arc<Secret> {
        secret_name: String = "SecretName",
        version_stage: String = "VersionStage",
        remove_from_version: String = "RemoveFromVersion",
        move_to_version: String = "MoveToVersion",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        app.engine
            .update_secret_version_stage(
                &cx,
                &op.secret_name,
                &op.version_stage,
                &op.remove_from_version,
                &op.move_to_version,
            )
            .await?
    }
}

operation! {
    /// The secret and a page of its versions, newest first.
    ListSecretVersionIds = LIST_SECRET_VERSION_IDS -> (Arc<Secret>, Paged<SecretVersion>) {
        secret_name: String = "SecretName",
        include_deprecated: bool = "IncludeDeprecated",
        page_number: i32 = "PageNumber",
        page_size: i32 = "PageSize",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        let page = Page::from_request(op.page_number, op.page_size)?;
        app.engine.list_secret_version_ids(&cx, &op.secret_name, op.include_deprecated, page)?
    }
}

operation! {
    /// The secret and when it will be (or was, when forced) deleted.
    DeleteSecret = DELETE_SECRET -> (Arc<Secret>, SimTime) {
        secret_name: String = "SecretName",
        recovery_window_in_days: i32 = "RecoveryWindowInDays",
        force_delete_without_recovery: bool = "ForceDeleteWithoutRecovery",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        app.engine
            .delete_secret(&cx, &op.secret_name, op.recovery_window_in_days, op.force_delete_without_recovery)
            .await?
    }
}

operation! {
    RestoreSecret = RESTORE_SECRET -> Arc<Secret> {
        secret_name: String = "SecretName",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) { app.engine.restore_secret(&cx, &op.secret_name).await? }
}

operation! {
    /// The secret as rotated, and the id of its new version.
    RotateSecret = ROTATE_SECRET -> (Arc<Secret>, String) {
        secret_name: String = "SecretName",
        version_id: String = "VersionId",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        // A rotation asked for is the same work as a scheduled one, and the same faults break it.
        let now = cx.received_at;
        let fault = |name: &str| {
            let (fault_id, error) = app.admission.task_fault(ROTATION_FAULT_NAME, name, now)?;
            cx.trail.injected_fault(fault_id);
            Some(error)
        };
        app.engine.rotate_secret(&cx, &op.secret_name, &op.version_id, fault).await?
    }
}

operation! {
    UpdateSecretRotationPolicy = UPDATE_SECRET_ROTATION_POLICY -> Arc<Secret> {
        secret_name: String = "SecretName",
        enable_automatic_rotation: bool = "EnableAutomaticRotation",
        rotation_interval: String = "RotationInterval",
    }
    names(op) { Names::secret(&op.secret_name) }
    run(op, app, cx) {
        app.engine
            .update_secret_rotation_policy(&cx, &op.secret_name, op.enable_automatic_rotation, &op.rotation_interval)
            .await?
    }
}

operation! {
    GetRandomPassword = GET_RANDOM_PASSWORD -> Zeroizing<String> {
        /// Zero for the default length.
        password_length: i32 = "PasswordLength",
        exclude_characters: String = "ExcludeCharacters",
        exclude_numbers: bool = "ExcludeNumbers",
        exclude_lowercase: bool = "ExcludeLowercase",
        exclude_uppercase: bool = "ExcludeUppercase",
        exclude_punctuation: bool = "ExcludePunctuation",
        /// Not given means required.
        require_each_included_type: Option<bool> = "RequireEachIncludedType",
    }
    names(_) { Names::none() }
    run(op, app, _) {
        let defaults = PasswordRules::default();
        let rules = PasswordRules {
            // A negative length becomes zero, which the engine refuses as out of range.
            length: match op.password_length {
                0 => defaults.length,
                n => usize::try_from(n).unwrap_or(0),
            },
            exclude_characters: op.exclude_characters,
            exclude_numbers: op.exclude_numbers,
            exclude_lowercase: op.exclude_lowercase,
            exclude_uppercase: op.exclude_uppercase,
            exclude_punctuation: op.exclude_punctuation,
            require_each_included_type: op.require_each_included_type.unwrap_or(true),
        };
        app.engine.get_random_password(&rules)?
    }
}

// FetchTags and FetchExtendedConfig decide what the caller is shown, through
// every front end alike, so the operation leaves out what was not asked for.

fn without_tags(secret: Arc<Secret>) -> Arc<Secret> {
    if secret.tags.is_empty() {
        return secret;
    }
    Arc::new(Secret { tags: BTreeMap::new(), ..(*secret).clone() })
}

/// A value as shown: its secret's extended config only when asked for.
fn shown(value: SecretValue, fetch_extended_config: bool) -> SecretValue {
    if fetch_extended_config || value.secret.extended_config.is_none() {
        return value;
    }
    let secret = Arc::new(Secret { extended_config: None, ..(*value.secret).clone() });
    SecretValue { secret, ..value }
}
