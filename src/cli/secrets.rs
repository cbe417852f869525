//! `kmsim secret …`: secrets and their versions (SecretsManagerService).
//!
//! Output fields carry Alibaba's names (SecretName, VersionId, VersionStages, ...).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::access::read_text;
use super::client::{Connection, Failure, read_input};
use crate::proto as pb;
use crate::proto::secrets_manager_service_client::SecretsManagerServiceClient;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a secret and its first version (ACSCurrent), sealed under a KMS key.
    #[command(after_help = "Examples:\n  kmsim secret create db-password --secret-data 'S3cr3t!' --tag env=prod\n  \
                            kmsim secret create tls-key --secret-data-file key.der --binary\n  \
                            kmsim secret create app-db --secret-type Rds --secret-data-file app-db.json \\\n    \
                            --extended-config @app-db-config.json --enable-automatic-rotation --rotation-interval 30d")]
    Create {
        name: String,
        #[command(flatten)]
        data: SecretDataInput,
        /// A binary value: the file's bytes are sent in base64 (--secret-data is taken as base64 already).
        #[arg(long)]
        binary: bool,
        /// The first version's id; default a UUID.
        #[arg(long, default_value = "")]
        version_id: String,
        /// The KMS key that seals the values (id, ARN or alias); default the service-managed
        /// alias/acs/secretsmanager.
        #[arg(long, default_value = "")]
        encryption_key_id: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Generic, Rds, Redis, RAMCredentials, ECS or PolarDB.
        #[arg(long, default_value = "Generic")]
        secret_type: String,
        /// A JSON object (SecretSubType, the target, CustomData, ...), or @PATH to read it from a file (@- for
        /// stdin).
        #[arg(long, default_value = "")]
        extended_config: String,
        /// Rotate automatically every --rotation-interval (managed types only).
        #[arg(long)]
        enable_automatic_rotation: bool,
        /// 6h to 8760h (units d, h, m, s); default 7d when automatic rotation is enabled.
        #[arg(long, default_value = "")]
        rotation_interval: String,
        /// A tag KEY=VALUE; repeat for more.
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        /// Create the secret in this KMS instance.
        #[arg(long, default_value = "")]
        dkms_instance_id: String,
    },
    /// Read a secret's value: the ACSCurrent version, or the one given by --version-id or --version-stage.
    #[command(after_help = "Examples:\n  kmsim secret get db-password\n  \
                            kmsim secret get db-password --version-stage ACSPrevious --output json\n  \
                            PGPASSWORD=\"$(kmsim secret get db-password --value-only)\" psql …\n  \
                            kmsim secret get tls-key --value-only > key.der")]
    Get {
        name: String,
        #[arg(long, default_value = "")]
        version_id: String,
        /// ACSCurrent (default), ACSPrevious, or a stage of your own.
        #[arg(long, default_value = "")]
        version_stage: String,
        /// Also return the secret's extended config.
        #[arg(long)]
        fetch_extended_config: bool,
        /// Print only the value, raw and without a trailing newline (a binary value's bytes, decoded); ignores
        /// --output.
        #[arg(long)]
        value_only: bool,
    },
    /// Store a new version of a secret's value; it becomes ACSCurrent unless --stage says otherwise.
    #[command(after_help = "Examples:\n  kmsim secret put db-password --version-id v2 --secret-data 'N3wS3cr3t!'\n  \
                            kmsim secret put db-password --version-id v3 --secret-data-file - --stage canary < pw.txt")]
    Put {
        name: String,
        /// Required; putting the same id with the same value again changes nothing.
        #[arg(long)]
        version_id: String,
        #[command(flatten)]
        data: SecretDataInput,
        /// A binary value: the file's bytes are sent in base64 (--secret-data is taken as base64 already).
        #[arg(long)]
        binary: bool,
        /// A stage to give the new version; repeat for more. Default ACSCurrent.
        #[arg(long = "stage")]
        stages: Vec<String>,
    },
    /// Show a secret's metadata (never its value).
    #[command(after_help = "Example:\n  kmsim secret describe db-password --fetch-tags")]
    Describe {
        name: String,
        /// Also return the secret's tags.
        #[arg(long)]
        fetch_tags: bool,
    },
    /// List secrets, optionally filtered by name, description or tag.
    #[command(after_help = "Examples:\n  kmsim secret list --fetch-tags\n  \
                            kmsim secret list --filters '[{\"Key\":\"SecretName\",\"Values\":[\"db-\"]}]'")]
    List {
        /// Also return each secret's tags.
        #[arg(long)]
        fetch_tags: bool,
        #[arg(long, default_value_t = 1)]
        page_number: i32,
        /// 1 to 100.
        #[arg(long, default_value_t = 10)]
        page_size: i32,
        /// Alibaba's JSON filter list; keys SecretName, Description, TagKey and TagValue.
        #[arg(long, default_value = "")]
        filters: String,
    },
    /// Change a secret's description and extended config.
    #[command(after_help = "Examples:\n  kmsim secret update db-password --description 'orders database'\n  \
                            kmsim secret update db-password --description ''   # clears it")]
    Update {
        name: String,
        /// The new description; an empty one clears it.
        #[arg(long)]
        description: Option<String>,
        /// A JSON object that replaces the extended config, or @PATH to read it from a file (@- for stdin).
        #[arg(long, default_value = "")]
        extended_config: String,
    },
    /// Move a stage label from one version to another, or remove it (UpdateSecretVersionStage).
    #[command(after_help = "Examples:\n  kmsim secret stage db-password --stage ACSCurrent --remove-from-version v2 \
                            --move-to-version v1\n  \
                            kmsim secret stage db-password --stage canary --remove-from-version v3")]
    #[command(group(clap::ArgGroup::new("versions").required(true).multiple(true)))]
    Stage {
        name: String,
        /// The stage label, e.g. ACSCurrent or one of your own.
        #[arg(long)]
        stage: String,
        /// The version that has the stage now (required when one has it).
        #[arg(long, group = "versions")]
        remove_from_version: Option<String>,
        /// The version to give the stage to; omit to only remove it.
        #[arg(long, group = "versions")]
        move_to_version: Option<String>,
    },
    /// List a secret's versions and their stages (ListSecretVersionIds).
    #[command(after_help = "Example:\n  kmsim secret versions db-password --include-deprecated")]
    Versions {
        name: String,
        /// Also list versions that have no stage.
        #[arg(long)]
        include_deprecated: bool,
        #[arg(long, default_value_t = 1)]
        page_number: i32,
        #[arg(long, default_value_t = 100)]
        page_size: i32,
    },
    /// Schedule a secret's deletion after a recovery window (restore cancels it), or delete it at once with --force.
    #[command(after_help = "Examples:\n  kmsim secret delete db-password --recovery-window-in-days 7\n  \
                            kmsim secret delete db-password --force")]
    Delete {
        name: String,
        /// 7 to 30; default 30.
        #[arg(long, conflicts_with = "force")]
        recovery_window_in_days: Option<i32>,
        /// Delete at once, without a recovery window.
        #[arg(long)]
        force: bool,
    },
    /// Cancel a secret's scheduled deletion.
    #[command(after_help = "Example:\n  kmsim secret restore db-password")]
    Restore { name: String },
    /// Rotate a managed secret now: a new credential becomes ACSCurrent, the old one ACSPrevious.
    #[command(after_help = "Example:\n  kmsim secret rotate app-db --version-id 2025-06-rotation")]
    Rotate {
        name: String,
        /// The new version's id; default a UUID.
        #[arg(long, default_value = "")]
        version_id: String,
    },
    /// Turn a managed secret's automatic rotation on (--enable) or off (--disable); prints the secret after.
    #[command(after_help = "Examples:\n  kmsim secret rotation-policy app-db --enable --rotation-interval 6h\n  \
                            kmsim secret rotation-policy app-db --disable")]
    RotationPolicy {
        name: String,
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// 6h to 8760h (units d, h, m, s); default 7d.
        #[arg(long, default_value = "", conflicts_with = "disable")]
        rotation_interval: String,
    },
    /// Generate a random password (GetRandomPassword); nothing is stored.
    #[command(after_help = "Examples:\n  kmsim secret random-password --length 20 --exclude-punctuation\n  \
                            kmsim secret random-password --exclude-characters 'lI1O0' --output json")]
    RandomPassword {
        /// 8 to 128; default 32.
        #[arg(long)]
        length: Option<i32>,
        /// Characters never to use.
        #[arg(long, default_value = "")]
        exclude_characters: String,
        #[arg(long)]
        exclude_numbers: bool,
        #[arg(long)]
        exclude_lowercase: bool,
        #[arg(long)]
        exclude_uppercase: bool,
        #[arg(long)]
        exclude_punctuation: bool,
        /// Do not insist on at least one character of every kind not excluded.
        #[arg(long)]
        no_require_each_type: bool,
    },
}

/// A secret's value, given as text or read from a file; clap makes sure exactly one is given.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SecretDataInput {
    /// The value as text (base64 with --binary). Up to 30720 bytes.
    #[arg(long)]
    secret_data: Option<String>,
    /// Read the value from a file, or `-` for stdin, as it is (a final newline too): UTF-8 text, or any bytes with
    /// --binary.
    #[arg(long)]
    secret_data_file: Option<PathBuf>,
}

impl SecretDataInput {
    /// (secret_data, secret_data_type) as CreateSecret and PutSecretValue take them.
    fn into_fields(self, binary: bool) -> Result<(String, String), Failure> {
        let data = match (self.secret_data, self.secret_data_file) {
            (Some(text), _) => text,
            (None, Some(path)) => secret_data_from_file(read_input(&path)?, &path, binary)?,
            (None, None) => return Err(Failure("give --secret-data or --secret-data-file".into())),
        };
        Ok((data, if binary { "binary" } else { "text" }.into()))
    }
}

/// A file's bytes as `secret_data`: base64 for a binary value, else the text itself.
fn secret_data_from_file(bytes: Vec<u8>, path: &Path, binary: bool) -> Result<String, Failure> {
    if binary {
        return Ok(BASE64.encode(bytes));
    }
    String::from_utf8(bytes)
        .map_err(|_| Failure(format!("{}: not UTF-8 text; give --binary to store its bytes", path.display())))
}

/// The bytes of a secret value as GetSecretValue returns it: binary values come in base64.
fn secret_value_bytes(secret_data: &str, secret_data_type: &str) -> Result<Vec<u8>, Failure> {
    if secret_data_type.eq_ignore_ascii_case("binary") {
        return BASE64
            .decode(secret_data.trim())
            .map_err(|e| Failure(format!("the server's binary SecretData is not base64: {e}")));
    }
    Ok(secret_data.as_bytes().to_vec())
}

/// A JSON argument given inline, or `@PATH` to read it from a file (`@-` for stdin).
fn json_arg(value: String) -> Result<String, Failure> {
    match value.strip_prefix('@') {
        Some(path) => read_text(&PathBuf::from(path)),
        None => Ok(value),
    }
}

/// `KEY=VALUE` (the value may be empty or contain `=`).
pub(super) fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

pub(super) async fn secret(conn: &Connection, command: SecretCommand) -> Result<Value, Failure> {
    let mut secrets = SecretsManagerServiceClient::new(conn.channel().await?);
    Ok(match command {
        SecretCommand::Create {
            name,
            data,
            binary,
            version_id,
            encryption_key_id,
            description,
            secret_type,
            extended_config,
            enable_automatic_rotation,
            rotation_interval,
            tags,
            dkms_instance_id,
        } => {
            let (secret_data, secret_data_type) = data.into_fields(binary)?;
            let request = pb::CreateSecretRequest {
                secret_name: name,
                secret_data,
                secret_data_type,
                version_id,
                encryption_key_id,
                description,
                secret_type,
                extended_config: json_arg(extended_config)?,
                enable_automatic_rotation,
                rotation_interval,
                tags: tags.into_iter().map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value }).collect(),
                dkms_instance_id,
            };
            let r = secrets.create_secret(conn.request(request)).await?.into_inner();
            json!({
                "arn": r.arn,
                "secretName": r.secret_name,
                "versionId": r.version_id,
                "secretType": r.secret_type,
                "automaticRotation": r.automatic_rotation,
                "rotationInterval": r.rotation_interval,
                "nextRotationDate": r.next_rotation_date,
                "dkmsInstanceId": r.dkms_instance_id,
            })
        }
        SecretCommand::Get { name, version_id, version_stage, fetch_extended_config, value_only } => {
            let request =
                pb::GetSecretValueRequest { secret_name: name, version_stage, version_id, fetch_extended_config };
            let r = secrets.get_secret_value(conn.request(request)).await?.into_inner();
            if value_only {
                let bytes = secret_value_bytes(&r.secret_data, &r.secret_data_type)?;
                // A reader that has gone (`| head -c 4`) took what it wanted.
                super::output::print_bytes(&bytes).map_err(|e| Failure(format!("writing the value: {e}")))?;
                return Ok(Value::Null);
            }
            let mut out = json!({
                "secretName": r.secret_name,
                "secretType": r.secret_type,
                "secretData": r.secret_data,
                "secretDataType": r.secret_data_type,
                "versionId": r.version_id,
                "versionStages": r.version_stages,
                "createTime": r.create_time,
                "lastRotationDate": r.last_rotation_date,
                "nextRotationDate": r.next_rotation_date,
                "automaticRotation": r.automatic_rotation,
                "rotationInterval": r.rotation_interval,
            });
            if fetch_extended_config {
                out["extendedConfig"] = json!(r.extended_config);
            }
            out
        }
        SecretCommand::Put { name, version_id, data, binary, stages } => {
            let (secret_data, secret_data_type) = data.into_fields(binary)?;
            let request = pb::PutSecretValueRequest {
                secret_name: name,
                version_id,
                secret_data,
                secret_data_type,
                version_stages: stages,
            };
            let r = secrets.put_secret_value(conn.request(request)).await?.into_inner();
            json!({ "secretName": r.secret_name, "versionId": r.version_id, "versionStages": r.version_stages })
        }
        SecretCommand::Describe { name, fetch_tags } => {
            let request = pb::DescribeSecretRequest { secret_name: name, fetch_tags };
            describe_json(secrets.describe_secret(conn.request(request)).await?.into_inner(), fetch_tags)
        }
        SecretCommand::List { fetch_tags, page_number, page_size, filters } => {
            let request = pb::ListSecretsRequest { fetch_tags, page_number, page_size, filters };
            let r = secrets.list_secrets(conn.request(request)).await?.into_inner();
            let list: Vec<Value> = r
                .secret_list
                .iter()
                .map(|s| {
                    let mut entry = json!({
                        "secretName": s.secret_name,
                        "secretType": s.secret_type,
                        "createTime": s.create_time,
                        "updateTime": s.update_time,
                        "plannedDeleteTime": s.planned_delete_time,
                    });
                    if fetch_tags {
                        entry["tags"] = tags_json(&s.tags);
                    }
                    entry
                })
                .collect();
            json!({
                "totalCount": r.total_count,
                "pageNumber": r.page_number,
                "pageSize": r.page_size,
                "secretList": list,
            })
        }
        SecretCommand::Update { name, description, extended_config } => {
            let extended_config = json_arg(extended_config)?;
            let request = pb::UpdateSecretRequest {
                secret_name: name,
                update_description: description.is_some(),
                description: description.clone().unwrap_or_default(),
                extended_config: extended_config.clone(),
            };
            let r = secrets.update_secret(conn.request(request)).await?.into_inner();
            let mut out = json!({ "secretName": r.secret_name });
            if let Some(description) = description {
                out["description"] = json!(description);
            }
            if !extended_config.is_empty() {
                out["extendedConfig"] = json!(extended_config);
            }
            out
        }
        SecretCommand::Stage { name, stage, remove_from_version, move_to_version } => {
            let request = pb::UpdateSecretVersionStageRequest {
                secret_name: name,
                version_stage: stage.clone(),
                remove_from_version: remove_from_version.unwrap_or_default(),
                move_to_version: move_to_version.unwrap_or_default(),
            };
            let (remove_from, move_to) = (request.remove_from_version.clone(), request.move_to_version.clone());
            let r = secrets.update_secret_version_stage(conn.request(request)).await?.into_inner();
            json!({
                "secretName": r.secret_name,
                "versionStage": stage,
                "removeFromVersion": remove_from,
                "moveToVersion": move_to,
            })
        }
        SecretCommand::Versions { name, include_deprecated, page_number, page_size } => {
            let request =
                pb::ListSecretVersionIdsRequest { secret_name: name, include_deprecated, page_number, page_size };
            let r = secrets.list_secret_version_ids(conn.request(request)).await?.into_inner();
            let versions: Vec<Value> = r
                .version_ids
                .iter()
                .map(|v| json!({ "versionId": v.version_id, "createTime": v.create_time, "versionStages": v.version_stages }))
                .collect();
            json!({
                "secretName": r.secret_name,
                "totalCount": r.total_count,
                "pageNumber": r.page_number,
                "pageSize": r.page_size,
                "versionIds": versions,
            })
        }
        SecretCommand::Delete { name, recovery_window_in_days, force } => {
            let request = pb::DeleteSecretRequest {
                secret_name: name,
                recovery_window_in_days: recovery_window_in_days.unwrap_or(0),
                force_delete_without_recovery: force,
            };
            let r = secrets.delete_secret(conn.request(request)).await?.into_inner();
            json!({ "secretName": r.secret_name, "plannedDeleteTime": r.planned_delete_time })
        }
        SecretCommand::Restore { name } => {
            let r = secrets.restore_secret(conn.request(pb::RestoreSecretRequest { secret_name: name })).await?;
            json!({ "secretName": r.into_inner().secret_name })
        }
        SecretCommand::Rotate { name, version_id } => {
            let request = pb::RotateSecretRequest { secret_name: name, version_id };
            let r = secrets.rotate_secret(conn.request(request)).await?.into_inner();
            json!({ "arn": r.arn, "secretName": r.secret_name, "versionId": r.version_id })
        }
        SecretCommand::RotationPolicy { name, enable, disable: _, rotation_interval } => {
            let request = pb::UpdateSecretRotationPolicyRequest {
                secret_name: name.clone(),
                enable_automatic_rotation: enable,
                rotation_interval,
            };
            secrets.update_secret_rotation_policy(conn.request(request)).await?;
            let request = pb::DescribeSecretRequest { secret_name: name, fetch_tags: false };
            describe_json(secrets.describe_secret(conn.request(request)).await?.into_inner(), false)
        }
        SecretCommand::RandomPassword {
            length,
            exclude_characters,
            exclude_numbers,
            exclude_lowercase,
            exclude_uppercase,
            exclude_punctuation,
            no_require_each_type,
        } => {
            let request = pb::GetRandomPasswordRequest {
                password_length: length.unwrap_or(0),
                exclude_characters,
                exclude_numbers,
                exclude_lowercase,
                exclude_uppercase,
                exclude_punctuation,
                require_each_included_type: no_require_each_type.then_some(false),
            };
            let r = secrets.get_random_password(conn.request(request)).await?.into_inner();
            json!({ "randomPassword": r.random_password })
        }
    })
}

fn describe_json(r: pb::DescribeSecretResponse, with_tags: bool) -> Value {
    let mut out = json!({
        "arn": r.arn,
        "secretName": r.secret_name,
        "secretType": r.secret_type,
        "encryptionKeyId": r.encryption_key_id,
        "description": r.description,
        "createTime": r.create_time,
        "updateTime": r.update_time,
        "plannedDeleteTime": r.planned_delete_time,
        "automaticRotation": r.automatic_rotation,
        "rotationInterval": r.rotation_interval,
        "lastRotationDate": r.last_rotation_date,
        "nextRotationDate": r.next_rotation_date,
        "extendedConfig": r.extended_config,
        "dkmsInstanceId": r.dkms_instance_id,
    });
    if with_tags {
        out["tags"] = tags_json(&r.tags);
    }
    out
}

fn tags_json(tags: &[pb::Tag]) -> Value {
    tags.iter().map(|t| json!({ "tagKey": t.tag_key, "tagValue": t.tag_value })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(result: Result<T, Failure>) -> T {
        result.unwrap_or_else(|Failure(message)| panic!("{message}"))
    }

    #[test]
    fn tags() {
        assert_eq!(parse_tag("env=prod"), Ok(("env".into(), "prod".into())));
        assert_eq!(parse_tag("empty="), Ok(("empty".into(), String::new())));
        assert_eq!(parse_tag("expr=a=b"), Ok(("expr".into(), "a=b".into())));
        for bad in ["", "env", "=prod"] {
            assert!(parse_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inline_secret_data_is_sent_as_given() {
        let text = SecretDataInput { secret_data: Some("s3cr3t\n".into()), secret_data_file: None };
        assert_eq!(ok(text.into_fields(false)), ("s3cr3t\n".into(), "text".into()));
        let b64 = SecretDataInput { secret_data: Some("AAEC".into()), secret_data_file: None };
        assert_eq!(ok(b64.into_fields(true)), ("AAEC".into(), "binary".into()));
    }

    #[test]
    fn secret_data_files_are_text_or_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value.bin");
        std::fs::write(&path, [0xff, 0x00, 0x01]).unwrap();
        let input = |path: &Path| SecretDataInput { secret_data: None, secret_data_file: Some(path.to_owned()) };
        assert_eq!(ok(input(&path).into_fields(true)), ("/wAB".into(), "binary".into()));
        let Err(Failure(message)) = input(&path).into_fields(false) else { panic!("not UTF-8, yet accepted") };
        assert!(message.contains("--binary"), "{message}");
        std::fs::write(&path, "pässword").unwrap();
        assert_eq!(ok(input(&path).into_fields(false)), ("pässword".into(), "text".into()));
        assert!(input(&dir.path().join("missing")).into_fields(false).is_err());
    }

    #[test]
    fn secret_values_decode_by_type() {
        assert_eq!(ok(secret_value_bytes("/wAB", "binary")), vec![0xff, 0x00, 0x01]);
        assert_eq!(ok(secret_value_bytes("/wAB", "text")), b"/wAB".to_vec());
        assert_eq!(ok(secret_value_bytes("plain", "")), b"plain".to_vec());
        assert!(secret_value_bytes("not base64!", "binary").is_err());
    }

    #[test]
    fn json_args_are_inline_or_read_from_a_file() {
        assert_eq!(ok(json_arg(String::new())), "");
        assert_eq!(ok(json_arg(r#"{"SecretSubType":"SingleUser"}"#.into())), r#"{"SecretSubType":"SingleUser"}"#);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"DBInstanceId":"rm-1"}"#).unwrap();
        assert_eq!(ok(json_arg(format!("@{}", path.display()))), r#"{"DBInstanceId":"rm-1"}"#);
        assert!(json_arg(format!("@{}", dir.path().join("missing").display())).is_err());
    }
}
