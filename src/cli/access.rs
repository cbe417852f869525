//! `kmsim access-key …`, `kmsim policy …`, `kmsim aap …`, `kmsim client-key …`
//! and `kmsim whoami`: identities and permissions (AccessService).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Connection, Failure};
use crate::proto as pb;
use crate::proto::access_service_client::AccessServiceClient;

#[derive(Debug, Subcommand)]
pub enum AccessKeyCommand {
    /// Create an AccessKey pair for a RAM user (created on first use). The secret is printed once; keep it.
    #[command(after_help = "Example:\n  kmsim access-key create --user alice --output json > alice.json")]
    Create {
        #[arg(long)]
        user: String,
    },
    /// List AccessKeys (never their secrets), of one user or of all.
    #[command(after_help = "Examples:\n  kmsim access-key list\n  kmsim access-key list --user alice")]
    List {
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Disable an AccessKey: its calls are refused with Forbidden.AccessKey from the next one on.
    #[command(after_help = "Example:\n  kmsim access-key disable LTAI5t…")]
    Disable { access_key_id: String },
    /// Enable a disabled AccessKey again.
    #[command(after_help = "Example:\n  kmsim access-key enable LTAI5t…")]
    Enable { access_key_id: String },
    /// Delete an AccessKey.
    #[command(after_help = "Example:\n  kmsim access-key delete LTAI5t…")]
    Delete { access_key_id: String },
    /// List RAM users and their attached policies.
    #[command(after_help = "Example:\n  kmsim access-key users")]
    Users,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy from a RAM policy JSON file (`-` reads stdin).
    #[command(
        after_help = "Example:\n  echo '{\"Version\":\"1\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"kms:Encrypt\",\
                            \"kms:Decrypt\"],\"Resource\":[\"acs:kms:*:*:key/*\"]}]}' \\\n    \
                            | kmsim policy create app-crypto --document -"
    )]
    Create {
        name: String,
        /// The policy JSON file, or `-` for stdin.
        #[arg(long)]
        document: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show a policy, its document and who it is attached to.
    #[command(after_help = "Example:\n  kmsim policy get app-crypto")]
    Get { name: String },
    /// List policies.
    #[command(after_help = "Example:\n  kmsim policy list")]
    List,
    /// Replace a policy's document.
    #[command(after_help = "Example:\n  kmsim policy update app-crypto --document policy.json")]
    Update {
        name: String,
        #[arg(long)]
        document: PathBuf,
    },
    /// Delete a policy that is attached to no one.
    #[command(after_help = "Example:\n  kmsim policy delete app-crypto")]
    Delete { name: String },
    /// Attach a policy to a RAM user (--user) or an application access point (--aap).
    #[command(
        after_help = "Examples:\n  kmsim policy attach app-crypto --user alice\n  kmsim policy attach app-crypto --aap orders"
    )]
    Attach {
        name: String,
        #[command(flatten)]
        principal: Principal,
    },
    /// Detach a policy from a RAM user or an AAP.
    #[command(after_help = "Example:\n  kmsim policy detach app-crypto --user alice")]
    Detach {
        name: String,
        #[command(flatten)]
        principal: Principal,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Principal {
    /// A RAM user.
    #[arg(long)]
    user: Option<String>,
    /// An application access point.
    #[arg(long)]
    aap: Option<String>,
}

impl Principal {
    fn parts(self) -> (String, String) {
        match (self.user, self.aap) {
            (Some(user), _) => ("User".into(), user),
            (None, Some(aap)) => ("Aap".into(), aap),
            (None, None) => (String::new(), String::new()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AapCommand {
    /// Create an application access point, optionally for a KMS instance and with policies.
    #[command(after_help = "Example:\n  kmsim aap create orders --kms-instance-id kst-hzz… --policy app-crypto")]
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        kms_instance_id: String,
        /// A policy to attach; repeat for more.
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Show an AAP.
    #[command(after_help = "Example:\n  kmsim aap get orders")]
    Get { name: String },
    /// List AAPs.
    #[command(after_help = "Example:\n  kmsim aap list")]
    List,
    /// Delete an AAP that has no ClientKeys left.
    #[command(after_help = "Example:\n  kmsim aap delete orders")]
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ClientKeyCommand {
    /// Create a ClientKey for an AAP. With --password or --out-dir: Alibaba's kind, an RSA key pair in a
    /// password-protected PKCS#12 file, for the KMS instance SDK; --out-dir writes the two files Alibaba's
    /// console downloads (`clientKey_<id>.json` and `clientKey_<id>_Password.txt`). Without: kmsim's own kind,
    /// an HMAC secret printed once, to sign kmsim.v1 and OpenAPI calls with.
    #[command(after_help = "Examples:\n  kmsim client-key create --aap orders --out-dir ./keys\n  \
        kmsim client-key create --aap orders --password 'Passw0rd!' --not-after 2027-06-30T00:00:00Z\n  \
        kmsim client-key create --aap orders   # kmsim's own HMAC kind")]
    Create {
        #[arg(long)]
        aap: String,
        /// RFC 3339 on the simulation clock; default now.
        #[arg(long, default_value = "")]
        not_before: String,
        /// RFC 3339; default five years after --not-before.
        #[arg(long, default_value = "")]
        not_after: String,
        /// The PKCS#12 file's password (8 to 64 printable ASCII characters, two kinds of characters at least);
        /// with --out-dir and no password, one is made.
        #[arg(long, env = "KMSIM_CLIENT_KEY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Write `clientKey_<id>.json` ({"KeyId", "PrivateKeyData"}) and `clientKey_<id>_Password.txt` here
        /// (readable by their owner only) instead of printing the private key.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Show a ClientKey and whether it is valid now.
    #[command(after_help = "Example:\n  kmsim client-key get KAAP.…")]
    Get { client_key_id: String },
    /// List ClientKeys, of one AAP or of all.
    #[command(after_help = "Example:\n  kmsim client-key list --aap orders")]
    List {
        #[arg(long, default_value = "")]
        aap: String,
    },
    /// Delete a ClientKey.
    #[command(after_help = "Example:\n  kmsim client-key delete KAAP.…")]
    Delete { client_key_id: String },
}

async fn client(conn: &Connection) -> Result<AccessServiceClient<super::client::Transport>, Failure> {
    Ok(AccessServiceClient::new(conn.channel().await?))
}

pub(super) async fn access_key(conn: &Connection, command: AccessKeyCommand) -> Result<Value, Failure> {
    let mut access = client(conn).await?;
    let update =
        |access_key_id: String, status: &str| pb::UpdateAccessKeyRequest { access_key_id, status: status.into() };
    Ok(match command {
        AccessKeyCommand::Create { user } => {
            let response =
                access.create_access_key(conn.request(pb::CreateAccessKeyRequest { user_name: user })).await?;
            let response = response.into_inner();
            let mut out = access_key_json(&response.access_key.unwrap_or_default());
            out["accessKeySecret"] = json!(response.access_key_secret);
            out
        }
        AccessKeyCommand::List { user } => {
            let response = access.list_access_keys(conn.request(pb::ListAccessKeysRequest { user_name: user })).await?;
            json!({ "accessKeys": response.into_inner().access_keys.iter().map(access_key_json).collect::<Vec<_>>() })
        }
        AccessKeyCommand::Disable { access_key_id } => {
            let response = access.update_access_key(conn.request(update(access_key_id, "Inactive"))).await?;
            access_key_json(&response.into_inner().access_key.unwrap_or_default())
        }
        AccessKeyCommand::Enable { access_key_id } => {
            let response = access.update_access_key(conn.request(update(access_key_id, "Active"))).await?;
            access_key_json(&response.into_inner().access_key.unwrap_or_default())
        }
        AccessKeyCommand::Delete { access_key_id } => {
            access
                .delete_access_key(conn.request(pb::DeleteAccessKeyRequest { access_key_id: access_key_id.clone() }))
                .await?;
            json!({ "accessKeyId": access_key_id, "deleted": true })
        }
        AccessKeyCommand::Users => {
            let users = access.list_users(conn.request(pb::ListUsersRequest {})).await?.into_inner().users;
            let users: Vec<Value> = users
                .iter()
                .map(|u| json!({ "userName": u.user_name, "userId": u.user_id, "arn": u.arn, "policies": u.policy_names }))
                .collect();
            json!({ "users": users })
        }
    })
}

pub(super) async fn policy(conn: &Connection, command: PolicyCommand) -> Result<Value, Failure> {
    let mut access = client(conn).await?;
    Ok(match command {
        PolicyCommand::Create { name, document, description } => {
            let request =
                pb::CreatePolicyRequest { policy_name: name, policy_document: read_text(&document)?, description };
            policy_json(&access.create_policy(conn.request(request)).await?.into_inner().policy.unwrap_or_default())
        }
        PolicyCommand::Get { name } => {
            let response = access.get_policy(conn.request(pb::GetPolicyRequest { policy_name: name })).await?;
            policy_json(&response.into_inner().policy.unwrap_or_default())
        }
        PolicyCommand::List => {
            let policies = access.list_policies(conn.request(pb::ListPoliciesRequest {})).await?.into_inner().policies;
            json!({ "policies": policies.iter().map(policy_json).collect::<Vec<_>>() })
        }
        PolicyCommand::Update { name, document } => {
            let request = pb::UpdatePolicyRequest { policy_name: name, policy_document: read_text(&document)? };
            policy_json(&access.update_policy(conn.request(request)).await?.into_inner().policy.unwrap_or_default())
        }
        PolicyCommand::Delete { name } => {
            access.delete_policy(conn.request(pb::DeletePolicyRequest { policy_name: name.clone() })).await?;
            json!({ "policyName": name, "deleted": true })
        }
        PolicyCommand::Attach { name, principal } => {
            let (principal_type, principal_name) = principal.parts();
            let request = pb::AttachPolicyRequest {
                policy_name: name.clone(),
                principal_type: principal_type.clone(),
                principal_name: principal_name.clone(),
            };
            access.attach_policy(conn.request(request)).await?;
            json!({ "policyName": name, "principalType": principal_type, "principalName": principal_name, "attached": true })
        }
        PolicyCommand::Detach { name, principal } => {
            let (principal_type, principal_name) = principal.parts();
            let request = pb::DetachPolicyRequest {
                policy_name: name.clone(),
                principal_type: principal_type.clone(),
                principal_name: principal_name.clone(),
            };
            access.detach_policy(conn.request(request)).await?;
            json!({ "policyName": name, "principalType": principal_type, "principalName": principal_name, "attached": false })
        }
    })
}

pub(super) async fn aap(conn: &Connection, command: AapCommand) -> Result<Value, Failure> {
    let mut access = client(conn).await?;
    Ok(match command {
        AapCommand::Create { name, description, kms_instance_id, policies } => {
            let request = pb::CreateApplicationAccessPointRequest {
                name,
                description,
                kms_instance_id,
                policy_names: policies,
                authentication_method: String::new(),
            };
            let response = access.create_application_access_point(conn.request(request)).await?.into_inner();
            aap_json(&response.application_access_point.unwrap_or_default())
        }
        AapCommand::Get { name } => {
            let request = pb::GetApplicationAccessPointRequest { name };
            let response = access.get_application_access_point(conn.request(request)).await?.into_inner();
            aap_json(&response.application_access_point.unwrap_or_default())
        }
        AapCommand::List => {
            let request = pb::ListApplicationAccessPointsRequest {};
            let listed = access.list_application_access_points(conn.request(request)).await?.into_inner();
            json!({ "applicationAccessPoints": listed.application_access_points.iter().map(aap_json).collect::<Vec<_>>() })
        }
        AapCommand::Delete { name } => {
            let request = pb::DeleteApplicationAccessPointRequest { name: name.clone() };
            access.delete_application_access_point(conn.request(request)).await?;
            json!({ "name": name, "deleted": true })
        }
    })
}

pub(super) async fn client_key(conn: &Connection, command: ClientKeyCommand) -> Result<Value, Failure> {
    let mut access = client(conn).await?;
    Ok(match command {
        ClientKeyCommand::Create { aap, not_before, not_after, password, out_dir } => {
            let password = match (password, &out_dir) {
                (Some(password), _) => password,
                (None, Some(_)) => new_password(),
                (None, None) => String::new(),
            };
            let request =
                pb::CreateClientKeyRequest { aap_name: aap, not_before, not_after, password: password.clone() };
            let response = access.create_client_key(conn.request(request)).await?.into_inner();
            let key = response.client_key.unwrap_or_default();
            let mut out = client_key_json(&key);
            match out_dir {
                _ if response.private_key_data.is_empty() => out["clientKeySecret"] = json!(response.client_key_secret),
                None => out["privateKeyData"] = json!(response.private_key_data),
                Some(dir) => {
                    let (key_file, password_file) =
                        write_client_key_files(&dir, &key.client_key_id, &response.private_key_data, &password)?;
                    out["clientKeyFile"] = json!(key_file.display().to_string());
                    out["passwordFile"] = json!(password_file.display().to_string());
                }
            }
            out
        }
        ClientKeyCommand::Get { client_key_id } => {
            let response = access.get_client_key(conn.request(pb::GetClientKeyRequest { client_key_id })).await?;
            client_key_json(&response.into_inner().client_key.unwrap_or_default())
        }
        ClientKeyCommand::List { aap } => {
            let response = access.list_client_keys(conn.request(pb::ListClientKeysRequest { aap_name: aap })).await?;
            json!({ "clientKeys": response.into_inner().client_keys.iter().map(client_key_json).collect::<Vec<_>>() })
        }
        ClientKeyCommand::Delete { client_key_id } => {
            let request = pb::DeleteClientKeyRequest { client_key_id: client_key_id.clone() };
            access.delete_client_key(conn.request(request)).await?;
            json!({ "clientKeyId": client_key_id, "deleted": true })
        }
    })
}

pub(super) async fn whoami(conn: &Connection) -> Result<Value, Failure> {
    let mut access = client(conn).await?;
    let me = access.get_caller_identity(conn.request(pb::GetCallerIdentityRequest {})).await?.into_inner();
    Ok(json!({
        "identityType": me.identity_type,
        "principalId": me.principal_id,
        "accountId": me.account_id,
        "accessKeyId": me.access_key_id,
        "userName": me.user_name,
        "arn": me.arn,
        "authenticatedBy": me.authenticated_by,
    }))
}

/// A text file's contents, or stdin for `-`.
pub(super) fn read_text(path: &PathBuf) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| Failure(format!("stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

fn access_key_json(key: &pb::AccessKey) -> Value {
    json!({
        "accessKeyId": key.access_key_id,
        "userName": key.user_name,
        "status": key.status,
        "createTime": key.create_time,
    })
}

fn policy_json(policy: &pb::Policy) -> Value {
    let document: Value = serde_json::from_str(&policy.policy_document).unwrap_or(Value::Null);
    json!({
        "policyName": policy.policy_name,
        "description": policy.description,
        "policyDocument": document,
        "attachments": policy.attachments,
        "createTime": policy.create_time,
        "updateTime": policy.update_time,
    })
}

fn aap_json(aap: &pb::ApplicationAccessPoint) -> Value {
    json!({
        "name": aap.name,
        "arn": aap.arn,
        "description": aap.description,
        "kmsInstanceId": aap.kms_instance_id,
        "policies": aap.policy_names,
        "createTime": aap.create_time,
    })
}

/// A password Alibaba's rule accepts: 24 letters and digits from the server's randomness source, with a digit,
/// a lowercase and an uppercase letter guaranteed.
fn new_password() -> String {
    let (_, secret) = crate::engine::access::new_access_key_pair();
    format!("Kp7{}", &secret.expose()[..21])
}

/// The two files Alibaba's console downloads for a ClientKey, named as it names them.
fn write_client_key_files(
    dir: &std::path::Path,
    client_key_id: &str,
    private_key_data: &str,
    password: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf), Failure> {
    let key_file = dir.join(format!("clientKey_{client_key_id}.json"));
    let password_file = dir.join(format!("clientKey_{client_key_id}_Password.txt"));
    let document = json!({ "KeyId": client_key_id, "PrivateKeyData": private_key_data });
    let failed = |path: &std::path::Path, e: std::io::Error| Failure(format!("{}: {e}", path.display()));
    crate::credentials::write_private(&key_file, document.to_string().as_bytes()).map_err(|e| failed(&key_file, e))?;
    crate::credentials::write_private(&password_file, password.as_bytes()).map_err(|e| failed(&password_file, e))?;
    Ok((key_file, password_file))
}

fn client_key_json(key: &pb::ClientKey) -> Value {
    json!({
        "clientKeyId": key.client_key_id,
        "aapName": key.aap_name,
        "notBefore": key.not_before,
        "notAfter": key.not_after,
        "status": key.status,
        "kind": key.kind,
        "createTime": key.create_time,
    })
}
