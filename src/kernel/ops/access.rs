//! Access: RAM users and their AccessKeys, identity policies and what they
//! are attached to, application access points and their ClientKeys,
//! Alibaba's permission policies and network rules for AAPs, and who a
//! caller is. Every one is about no particular key or secret, so each is
//! authorized on its product as a whole. The AccessKey and ClientKey secrets
//! are in outputs only, never in a request, so never in a record.

use std::sync::Arc;

use super::operation;
use crate::clock::SimTime;
use crate::context::{AuthMethod, CallContext, Principal};
use crate::engine::Outcome;
use crate::engine::access::{Aap, AccessKey, ClientKey, Policy, PolicyView, PrivateKeyData, User};
use crate::engine::permissions::{NetworkRule, NetworkRuleChange, PermissionChange};
use crate::kernel::Names;
use zeroize::Zeroizing;

/// Who a call was made as, in GetCallerIdentity's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub identity_type: &'static str,
    pub principal_id: String,
    pub account_id: String,
    pub access_key_id: String,
    pub user_name: String,
    pub arn: String,
    pub authenticated_by: AuthMethod,
}

operation! {
    /// A new AccessKey, its secret included: the one time the secret is told.
    CreateAccessKey = CREATE_ACCESS_KEY -> Arc<AccessKey> {
        user_name: String = "UserName",
    }
    names(_) { Names::none() }
    run(op, app, cx) { app.engine.create_access_key(&cx, &op.user_name).await? }
}

operation! {
    ListAccessKeys = LIST_ACCESS_KEYS -> Vec<Arc<AccessKey>> {
        user_name: String = "UserName",
    }
    names(_) { Names::none() }
    run(op, app, _) { Outcome::read(app.engine.list_access_keys(&op.user_name)) }
}

operation! {
    UpdateAccessKey = UPDATE_ACCESS_KEY -> Arc<AccessKey> {
        access_key_id: String = "UserAccessKeyId",
        status: String = "Status",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.update_access_key(&op.access_key_id, &op.status).await? }
}

operation! {
    DeleteAccessKey = DELETE_ACCESS_KEY -> () {
        access_key_id: String = "UserAccessKeyId",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.delete_access_key(&op.access_key_id).await? }
}

operation! {
    /// Each user with its ARN.
    ListUsers = LIST_USERS -> Vec<(Arc<User>, String)> {}
    names(_) { Names::none() }
    run(_, app, _) {
        let account = app.engine.account_id();
        let users = app.engine.list_users().into_iter().map(|user| {
            let arn = user_arn(account, &user.user_name);
            (user, arn)
        });
        Outcome::read(users.collect())
    }
}

operation! {
    CreatePolicy = CREATE_POLICY -> PolicyView {
        policy_name: String = "PolicyName",
        policy_document: String = "PolicyDocument",
        description: String = "Description",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        app.engine.create_policy(&cx, &op.policy_name, &op.policy_document, &op.description).await?
    }
}

operation! {
    GetPolicy = GET_POLICY -> PolicyView {
        policy_name: String = "PolicyName",
    }
    names(_) { Names::none() }
    run(op, app, _) { Outcome::read(app.engine.get_policy(&op.policy_name)?) }
}

operation! {
    ListPolicies = LIST_POLICIES -> Vec<PolicyView> {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.engine.list_policies()) }
}

operation! {
    UpdatePolicy = UPDATE_POLICY -> PolicyView {
        policy_name: String = "PolicyName",
        policy_document: String = "PolicyDocument",
    }
    names(_) { Names::none() }
    run(op, app, cx) { app.engine.update_policy(&cx, &op.policy_name, &op.policy_document).await? }
}

operation! {
    DeletePolicy = DELETE_POLICY -> () {
        policy_name: String = "PolicyName",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.delete_policy(&op.policy_name).await? }
}

operation! {
    AttachPolicy = ATTACH_POLICY -> () {
        policy_name: String = "PolicyName",
        principal_type: String = "PrincipalType",
        principal_name: String = "PrincipalName",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let principal = (op.principal_type.as_str(), op.principal_name.as_str());
        app.engine.attach_policy(&cx, &op.policy_name, principal, true).await?
    }
}

operation! {
    DetachPolicy = DETACH_POLICY -> () {
        policy_name: String = "PolicyName",
        principal_type: String = "PrincipalType",
        principal_name: String = "PrincipalName",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let principal = (op.principal_type.as_str(), op.principal_name.as_str());
        app.engine.attach_policy(&cx, &op.policy_name, principal, false).await?
    }
}

operation! {
    CreateApplicationAccessPoint = CREATE_AAP -> Arc<Aap> {
        name: String = "Name",
        description: String = "Description",
        kms_instance_id: String = "KmsInstanceId",
        policy_names: Vec<String> = "Policies",
        /// `ClientKey`, the only method, or empty for it.
        authentication_method: String = "AuthenticationMethod",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let CreateApplicationAccessPoint { name, description, kms_instance_id, policy_names, authentication_method } =
            op;
        let about = (description.as_str(), authentication_method.as_str());
        app.engine.create_aap(&cx, &name, about, &kms_instance_id, &policy_names).await?
    }
}

operation! {
    GetApplicationAccessPoint = GET_AAP -> Arc<Aap> {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { Outcome::read(app.engine.get_aap(&op.name)?) }
}

operation! {
    /// What Alibaba's OpenAPI calls GetApplicationAccessPoint.
    DescribeApplicationAccessPoint = DESCRIBE_AAP -> Arc<Aap> {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { Outcome::read(app.engine.get_aap(&op.name)?) }
}

operation! {
    /// The AAP with the description or policies given.
    UpdateApplicationAccessPoint = UPDATE_AAP -> Arc<Aap> {
        name: String = "Name",
        description: Option<String> = "Description",
        policy_names: Option<Vec<String>> = "Policies",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.update_aap(&op.name, op.description, op.policy_names).await? }
}

operation! {
    ListApplicationAccessPoints = LIST_AAPS -> Vec<Arc<Aap>> {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.engine.list_aaps()) }
}

operation! {
    DeleteApplicationAccessPoint = DELETE_AAP -> () {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.delete_aap(&op.name).await? }
}

operation! {
    /// A new ClientKey, its secret or its PKCS#12 file included (the one time
    /// either is told), and its status when the call arrived.
    CreateClientKey = CREATE_CLIENT_KEY -> NewClientKey {
        aap_name: String = "AapName",
        /// RFC 3339, or empty for when the call arrives.
        not_before: String = "NotBefore",
        /// RFC 3339, or empty for the default validity after `not_before`.
        not_after: String = "NotAfter",
        /// Protects the PKCS#12 file of an RSA ClientKey (Alibaba's kind); empty for
        /// kmsim's own HMAC kind. Never a parameter of the record.
        password: Zeroizing<String>,
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let (before, after) = (&op.not_before, &op.not_after);
        let outcome = app.engine.create_client_key(&cx, &op.aap_name, before, after, &op.password).await?;
        outcome.map(|(key, private_key_data)| {
            let status = key.status(cx.received_at);
            NewClientKey { key, private_key_data, status }
        })
    }
}

operation! {
    /// The ClientKey and its status when the call arrived.
    GetClientKey = GET_CLIENT_KEY -> (Arc<ClientKey>, &'static str) {
        client_key_id: String = "ClientKeyId",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let key = app.engine.get_client_key(&op.client_key_id)?;
        Outcome::read(with_status(key, cx.received_at))
    }
}

operation! {
    /// ClientKeys (of one AAP, or all of them) with their status when the call arrived.
    ListClientKeys = LIST_CLIENT_KEYS -> Vec<(Arc<ClientKey>, &'static str)> {
        aap_name: String = "AapName",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let keys = app.engine.list_client_keys(&op.aap_name);
        Outcome::read(keys.into_iter().map(|key| with_status(key, cx.received_at)).collect())
    }
}

operation! {
    DeleteClientKey = DELETE_CLIENT_KEY -> () {
        client_key_id: String = "ClientKeyId",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.delete_client_key(&op.client_key_id).await? }
}

operation! {
    /// A permission policy for AAPs (Alibaba's CreatePolicy): RBAC templates on
    /// keys and secrets of a KMS instance, for calls from some network rules' addresses.
    CreatePermissionPolicy = CREATE_PERMISSION_POLICY -> Arc<Policy> {
        name: String = "Name",
        description: String = "Description",
        kms_instance: String = "KmsInstance",
        permissions: Vec<String> = "Permissions",
        resources: Vec<String> = "Resources",
        /// AccessControlRules' NetworkRules.
        network_rules: Vec<String> = "AccessControlRules",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let CreatePermissionPolicy { name, description, kms_instance, permissions, resources, network_rules } = op;
        let change = PermissionChange {
            description: Some(description),
            permissions: Some(permissions),
            resources: Some(resources),
            kms_instance: Some(kms_instance),
            network_rules: Some(network_rules),
        };
        app.engine.create_permission_policy(&cx, &name, change).await?
    }
}

operation! {
    DescribePermissionPolicy = DESCRIBE_PERMISSION_POLICY -> Arc<Policy> {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { Outcome::read(app.engine.describe_permission_policy(&op.name)?) }
}

operation! {
    ListPermissionPolicies = LIST_PERMISSION_POLICIES -> Vec<Arc<Policy>> {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.engine.list_permission_policies()) }
}

operation! {
    /// The permission policy with what was given changed; its instance stays.
    UpdatePermissionPolicy = UPDATE_PERMISSION_POLICY -> Arc<Policy> {
        name: String = "Name",
        description: Option<String> = "Description",
        permissions: Option<Vec<String>> = "Permissions",
        resources: Option<Vec<String>> = "Resources",
        network_rules: Option<Vec<String>> = "AccessControlRules",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let UpdatePermissionPolicy { name, description, permissions, resources, network_rules } = op;
        let change = PermissionChange { description, permissions, resources, kms_instance: None, network_rules };
        app.engine.update_permission_policy(&cx, &name, change).await?
    }
}

operation! {
    DeletePermissionPolicy = DELETE_PERMISSION_POLICY -> () {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.delete_permission_policy(&op.name).await? }
}

operation! {
    CreateNetworkRule = CREATE_NETWORK_RULE -> Arc<NetworkRule> {
        name: String = "Name",
        rule_type: String = "Type",
        description: String = "Description",
        source_private_ips: Vec<String> = "SourcePrivateIp",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let CreateNetworkRule { name, rule_type, description, source_private_ips } = op;
        let change = NetworkRuleChange {
            description: Some(description),
            rule_type: Some(rule_type),
            source_private_ips: Some(source_private_ips),
        };
        app.engine.create_network_rule(&cx, &name, change).await?
    }
}

operation! {
    DescribeNetworkRule = DESCRIBE_NETWORK_RULE -> Arc<NetworkRule> {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { Outcome::read(app.engine.describe_network_rule(&op.name)?) }
}

operation! {
    ListNetworkRules = LIST_NETWORK_RULES -> Vec<Arc<NetworkRule>> {}
    names(_) { Names::none() }
    run(_, app, _) { Outcome::read(app.engine.list_network_rules()) }
}

operation! {
    /// The rule with the description or addresses given; every permission policy naming it follows.
    UpdateNetworkRule = UPDATE_NETWORK_RULE -> Arc<NetworkRule> {
        name: String = "Name",
        description: Option<String> = "Description",
        source_private_ips: Option<Vec<String>> = "SourcePrivateIp",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let UpdateNetworkRule { name, description, source_private_ips } = op;
        let change = NetworkRuleChange { description, rule_type: None, source_private_ips };
        app.engine.update_network_rule(&cx, &name, change).await?
    }
}

operation! {
    DeleteNetworkRule = DELETE_NETWORK_RULE -> () {
        name: String = "Name",
    }
    names(_) { Names::none() }
    run(op, app, _) { app.engine.delete_network_rule(&op.name).await? }
}

operation! {
    GetCallerIdentity = GET_CALLER_IDENTITY -> CallerIdentity {}
    names(_) { Names::none() }
    run(_, _, cx) { Outcome::read(caller_identity(&cx)) }
}

fn user_arn(account: &str, user_name: &str) -> String {
    format!("acs:ram::{account}:user/{user_name}")
}

/// What CreateClientKey answers.
pub struct NewClientKey {
    pub key: Arc<ClientKey>,
    /// The PKCS#12 file of a ClientKey of Alibaba's kind, base64.
    pub private_key_data: Option<PrivateKeyData>,
    pub status: &'static str,
}

fn with_status(key: Arc<ClientKey>, now: SimTime) -> (Arc<ClientKey>, &'static str) {
    let status = key.status(now);
    (key, status)
}

fn caller_identity(cx: &CallContext) -> CallerIdentity {
    let account = &cx.account_id;
    let root = || format!("acs:ram::{account}:root");
    let (identity_type, principal_id, user_name, arn) = match &cx.principal {
        Principal::Account => ("anonymous", account.clone(), "root".to_owned(), root()),
        Principal::Anonymous => ("anonymous", String::new(), String::new(), String::new()),
        Principal::Admin => ("root-account", account.clone(), "root".to_owned(), root()),
        // Not verified, so not known to be any one user.
        Principal::Unverified => ("ram-user", cx.access_key_id.clone(), String::new(), user_arn(account, "*")),
        Principal::User { name, user_id } => ("ram-user", user_id.clone(), name.clone(), user_arn(account, name)),
        Principal::Aap { name, arn } => ("assumed-role", format!("aap/{name}"), name.clone(), arn.clone()),
    };
    CallerIdentity {
        identity_type,
        principal_id,
        account_id: account.clone(),
        access_key_id: cx.access_key_id.clone(),
        user_name,
        arn,
        authenticated_by: cx.authenticated_by,
    }
}
