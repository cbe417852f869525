//! Alibaba's access model for application access points: permission
//! policies (RBAC templates on keys and secrets of a KMS instance, for calls
//! from the addresses of some network rules) and network rules (the source
//! addresses a call may come from).
//!
//! A permission policy is kept as one of kmsim's policies: its document is
//! what its templates grant on its resources, in RAM's terms, so it is judged
//! by the same decision as every other policy, and `permission` keeps what it
//! was made from. Its KMS instance and its network rules bound where it
//! applies ([`Scope`]); they are read when a call is judged, so a network rule
//! changed later changes every policy that names it, as Alibaba's do.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{AccessEntity, AccessKind, Policy, check_name};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::policy::{PolicyDocument, PolicyKind};
use super::{Change, Engine, Outcome, read_lock};
use crate::clock::SimTime;
use crate::context::CallContext;

/// The template that lets an application use keys for cryptography.
pub const KEY_USER: &str = "RbacPermission/Template/CryptoServiceKeyUser";
/// The template that lets an application read secret values.
pub const SECRET_USER: &str = "RbacPermission/Template/CryptoServiceSecretUser";
/// The only network type Alibaba has: addresses inside the VPCs an instance is bound to.
pub const PRIVATE: &str = "Private";
/// The most addresses or blocks one network rule holds.
pub const MAX_SOURCES: usize = 100;
/// The most resources, and the most network rules, one permission policy names.
pub const MAX_POLICY_ENTRIES: usize = 100;

/// What each template grants: the RAM actions of the calls it lets through,
/// on resources of one kind (`key/…` or `secret/…`). The key user's actions are
/// the cryptographic calls of a KMS instance's API that kmsim has.
const TEMPLATES: [(&str, &str, &[&str]); 2] = [
    (
        KEY_USER,
        "key/",
        &[
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:AsymmetricEncrypt",
            "kms:AsymmetricDecrypt",
            "kms:AsymmetricSign",
            "kms:AsymmetricVerify",
            "kms:GetPublicKey",
        ],
    ),
    (SECRET_USER, "secret/", &["kms:GetSecretValue"]),
];

/// What a permission policy was made from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PermissionPolicy {
    /// The region and account it was made in, which its ARN names.
    pub region: String,
    pub account_id: String,
    /// RBAC templates ([`KEY_USER`], [`SECRET_USER`]).
    pub permissions: Vec<String>,
    /// `key/<id>` and `secret/<name>`, `*` and `?` allowed.
    pub resources: Vec<String>,
    /// The KMS instance whose keys and secrets it is about; empty for any.
    pub kms_instance: String,
    /// Network rules by name: when there are any, it applies only to calls from their addresses.
    pub network_rules: Vec<String>,
}

/// The addresses a call may come from, for the permission policies that name the rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkRule {
    pub name: String,
    pub region: String,
    pub account_id: String,
    pub description: String,
    /// [`PRIVATE`].
    pub rule_type: String,
    /// Addresses and CIDR blocks, as given; each parsed when saved.
    pub source_private_ips: Vec<String>,
    pub created: SimTime,
    pub updated: SimTime,
}

impl NetworkRule {
    pub fn arn(&self) -> String {
        format!("acs:kms:{}:{}:network/{}", self.region, self.account_id, self.name)
    }

    fn blocks(&self) -> impl Iterator<Item = Cidr> + '_ {
        self.source_private_ips.iter().filter_map(|text| Cidr::parse(text))
    }
}

/// An address block: an address and how many of its leading bits a source must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `192.168.1.7` (one address), or IPv6 alike.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (shared, bits) = match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(block), IpAddr::V4(ip)) => ((u32::from(block) ^ u32::from(ip)).leading_zeros(), 32),
            (IpAddr::V6(block), IpAddr::V6(ip)) => ((u128::from(block) ^ u128::from(ip)).leading_zeros(), 128),
            _ => return false,
        };
        shared >= u32::from(self.prefix).min(bits)
    }
}

/// Where an identity policy applies, beyond what its document says: a
/// permission policy only to keys and secrets of its instance, and only to
/// calls from its network rules' addresses. kmsim's own policies apply everywhere.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub instance: Option<String>,
    /// `None`: from anywhere; otherwise from these blocks only (none: from nowhere).
    pub sources: Option<Vec<Cidr>>,
}

impl Scope {
    /// Whether the policy applies to a call from `source` on a resource of `instance`.
    pub fn admits(&self, source: Option<IpAddr>, instance: Option<&str>) -> bool {
        let from = match &self.sources {
            None => true,
            Some(blocks) => source.is_some_and(|ip| blocks.iter().any(|block| block.contains(ip))),
        };
        from && self.instance.as_deref().is_none_or(|scoped| Some(scoped) == instance)
    }
}

impl PermissionPolicy {
    pub fn arn(&self, name: &str) -> String {
        format!("acs:kms:{}:{}:policy/{name}", self.region, self.account_id)
    }

    /// What its templates grant on its resources, as a RAM identity policy.
    /// An instance's keys are in its region, so the ARNs name it; without an
    /// instance, any region.
    fn document(&self, instance_region: Option<&str>) -> KmsResult<String> {
        let (region, account_id) = (instance_region.unwrap_or("*"), &self.account_id);
        let statements: Vec<serde_json::Value> = TEMPLATES
            .iter()
            .filter(|(template, _, _)| self.permissions.iter().any(|p| p == template))
            .filter_map(|(_, kind, actions)| {
                let arns: Vec<String> = self
                    .resources
                    .iter()
                    .filter(|resource| resource.starts_with(kind))
                    .map(|resource| format!("acs:kms:{region}:{account_id}:{resource}"))
                    .collect();
                (!arns.is_empty()).then(|| json!({ "Effect": "Allow", "Action": actions, "Resource": arns }))
            })
            .collect();
        if statements.is_empty() {
            return Err(KmsError::invalid_because(
                "Resources",
                "Name a key/… for CryptoServiceKeyUser or a secret/… for CryptoServiceSecretUser.",
            ));
        }
        let document = json!({ "Version": "1", "Statement": statements }).to_string();
        PolicyDocument::parse(&document, PolicyKind::Identity)
            .map_err(|reason| KmsError::invalid_because("Resources", &reason))?;
        Ok(document)
    }

    fn check(&self) -> KmsResult<()> {
        if self.permissions.is_empty() {
            return Err(KmsError::missing("Permissions"));
        }
        if let Some(unknown) = self.permissions.iter().find(|p| TEMPLATES.iter().all(|(t, _, _)| t != p)) {
            return Err(KmsError::invalid_because(
                "Permissions",
                &format!("{unknown} is not a template; use {KEY_USER} or {SECRET_USER}."),
            ));
        }
        if self.resources.is_empty() {
            return Err(KmsError::missing("Resources"));
        }
        let well_formed = |r: &String| {
            TEMPLATES.iter().any(|(_, kind, _)| r.strip_prefix(kind).is_some_and(|rest| !rest.is_empty()))
                && !r.contains(char::is_whitespace)
        };
        if self.resources.len() > MAX_POLICY_ENTRIES || !self.resources.iter().all(well_formed) {
            return Err(KmsError::invalid_because("Resources", "Name up to 100 of key/<id> and secret/<name>."));
        }
        if self.network_rules.len() > MAX_POLICY_ENTRIES {
            return Err(KmsError::invalid_because("AccessControlRules", "Name up to 100 network rules."));
        }
        Ok(())
    }
}

/// A permission policy's parameters as a call gives them; `None` leaves one as it is (UpdatePolicy).
#[derive(Debug, Clone, Default)]
pub struct PermissionChange {
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub kms_instance: Option<String>,
    pub network_rules: Option<Vec<String>>,
}

/// A network rule's parameters as a call gives them; `None` leaves one as it is (UpdateNetworkRule).
#[derive(Debug, Clone, Default)]
pub struct NetworkRuleChange {
    pub description: Option<String>,
    pub rule_type: Option<String>,
    pub source_private_ips: Option<Vec<String>>,
}

fn check_sources(sources: &[String]) -> KmsResult<()> {
    let bad = |reason: &str| KmsError::invalid_because("SourcePrivateIp", reason);
    if sources.len() > MAX_SOURCES {
        return Err(bad("Give at most 100 addresses or CIDR blocks."));
    }
    match sources.iter().find(|text| Cidr::parse(text).is_none()) {
        Some(wrong) => Err(bad(&format!("{wrong} is not an address or a CIDR block such as 192.168.0.0/16."))),
        None => Ok(()),
    }
}

fn check_rule_type(rule_type: &str) -> KmsResult<()> {
    match rule_type {
        PRIVATE => Ok(()),
        "" => Err(KmsError::missing("Type")),
        _ => Err(KmsError::invalid_because("Type", "The only network type is Private.")),
    }
}

impl Engine {
    pub async fn create_permission_policy(
        &self,
        cx: &CallContext,
        name: &str,
        change: PermissionChange,
    ) -> KmsResult<Outcome<Arc<Policy>>> {
        check_name(name, "Name", 128)?;
        let PermissionChange { description, permissions, resources, kms_instance, network_rules } = change;
        let permission = PermissionPolicy {
            region: cx.region.clone(),
            account_id: self.account_id.clone(),
            permissions: permissions.unwrap_or_default(),
            resources: resources.unwrap_or_default(),
            kms_instance: kms_instance.unwrap_or_default(),
            network_rules: network_rules.unwrap_or_default(),
        };
        let gate = self.access_gate.clone().lock_owned().await;
        if read_lock(&self.access).policies.contains_key(name) {
            return Err(ErrorCode::ResourceExist.into());
        }
        let now = cx.received_at;
        let policy = Policy {
            policy_name: name.to_owned(),
            description: description.unwrap_or_default(),
            document: self.permission_document(cx, &permission)?,
            created: now,
            updated: now,
            permission: Some(permission),
        };
        let policy = Arc::new(policy);
        Ok(Outcome::write(policy.clone(), vec![Change::SaveAccess(AccessEntity::Policy(policy))], vec![gate]))
    }

    /// A permission policy; one of kmsim's own policies is not one.
    pub fn describe_permission_policy(&self, name: &str) -> KmsResult<Arc<Policy>> {
        if name.is_empty() {
            return Err(KmsError::missing("Name"));
        }
        let book = read_lock(&self.access);
        book.policies
            .get(name)
            .filter(|p| p.permission.is_some())
            .cloned()
            .ok_or_else(|| ErrorCode::ResourceNotFound.into())
    }

    /// Every permission policy, by name.
    pub fn list_permission_policies(&self) -> Vec<Arc<Policy>> {
        read_lock(&self.access).policies.values().filter(|p| p.permission.is_some()).cloned().collect()
    }

    pub async fn update_permission_policy(
        &self,
        cx: &CallContext,
        name: &str,
        change: PermissionChange,
    ) -> KmsResult<Outcome<Arc<Policy>>> {
        let gate = self.access_gate.clone().lock_owned().await;
        let current = self.describe_permission_policy(name)?;
        let PermissionChange { description, permissions, resources, kms_instance, network_rules } = change;
        let mut permission = current.permission.clone().ok_or(ErrorCode::ResourceNotFound)?;
        permission.permissions = permissions.unwrap_or(permission.permissions);
        permission.resources = resources.unwrap_or(permission.resources);
        permission.kms_instance = kms_instance.unwrap_or(permission.kms_instance);
        permission.network_rules = network_rules.unwrap_or(permission.network_rules);
        let policy = Policy {
            description: description.unwrap_or_else(|| current.description.clone()),
            document: self.permission_document(cx, &permission)?,
            updated: cx.received_at,
            permission: Some(permission),
            ..(*current).clone()
        };
        let policy = Arc::new(policy);
        Ok(Outcome::write(policy.clone(), vec![Change::SaveAccess(AccessEntity::Policy(policy))], vec![gate]))
    }

    /// Deletes a permission policy that no AAP (or user) has attached.
    pub async fn delete_permission_policy(&self, name: &str) -> KmsResult<Outcome<()>> {
        self.describe_permission_policy(name)?;
        self.delete_policy(name).await
    }

    /// Checks what a permission policy is made from, and writes what it grants.
    fn permission_document(&self, cx: &CallContext, permission: &PermissionPolicy) -> KmsResult<String> {
        permission.check()?;
        let instance = match permission.kms_instance.as_str() {
            "" => None,
            id => Some(self.instance_in(&cx.region, id, "KmsInstance")?),
        };
        let book = read_lock(&self.access);
        if let Some(missing) = permission.network_rules.iter().find(|rule| !book.network_rules.contains_key(*rule)) {
            return Err(KmsError::invalid_because(
                "AccessControlRules",
                &format!("There is no network rule named {missing}."),
            ));
        }
        permission.document(instance.as_ref().map(|i| i.region.as_str()))
    }

    pub async fn create_network_rule(
        &self,
        cx: &CallContext,
        name: &str,
        change: NetworkRuleChange,
    ) -> KmsResult<Outcome<Arc<NetworkRule>>> {
        check_name(name, "Name", 64)?;
        let NetworkRuleChange { description, rule_type, source_private_ips } = change;
        let rule_type = rule_type.unwrap_or_default();
        check_rule_type(&rule_type)?;
        let sources = source_private_ips.unwrap_or_default();
        check_sources(&sources)?;
        let gate = self.access_gate.clone().lock_owned().await;
        if read_lock(&self.access).network_rules.contains_key(name) {
            return Err(ErrorCode::ResourceExist.into());
        }
        let rule = Arc::new(NetworkRule {
            name: name.to_owned(),
            region: cx.region.clone(),
            account_id: self.account_id.clone(),
            description: description.unwrap_or_default(),
            rule_type,
            source_private_ips: sources,
            created: cx.received_at,
            updated: cx.received_at,
        });
        Ok(Outcome::write(rule.clone(), vec![Change::SaveAccess(AccessEntity::NetworkRule(rule))], vec![gate]))
    }

    pub fn describe_network_rule(&self, name: &str) -> KmsResult<Arc<NetworkRule>> {
        if name.is_empty() {
            return Err(KmsError::missing("Name"));
        }
        read_lock(&self.access).network_rules.get(name).cloned().ok_or_else(|| ErrorCode::ResourceNotFound.into())
    }

    /// Every network rule, by name.
    pub fn list_network_rules(&self) -> Vec<Arc<NetworkRule>> {
        read_lock(&self.access).network_rules.values().cloned().collect()
    }

    /// Changes a rule's description or addresses; its name and type are fixed.
    pub async fn update_network_rule(
        &self,
        cx: &CallContext,
        name: &str,
        change: NetworkRuleChange,
    ) -> KmsResult<Outcome<Arc<NetworkRule>>> {
        let NetworkRuleChange { description, rule_type, source_private_ips } = change;
        if rule_type.is_some() {
            return Err(KmsError::invalid_because("Type", "A network rule's type cannot change."));
        }
        if let Some(sources) = &source_private_ips {
            check_sources(sources)?;
        }
        let gate = self.access_gate.clone().lock_owned().await;
        let current = self.describe_network_rule(name)?;
        let rule = NetworkRule {
            description: description.unwrap_or_else(|| current.description.clone()),
            source_private_ips: source_private_ips.unwrap_or_else(|| current.source_private_ips.clone()),
            updated: cx.received_at,
            ..(*current).clone()
        };
        let rule = Arc::new(rule);
        Ok(Outcome::write(rule.clone(), vec![Change::SaveAccess(AccessEntity::NetworkRule(rule))], vec![gate]))
    }

    /// Deletes a rule that no permission policy names.
    pub async fn delete_network_rule(&self, name: &str) -> KmsResult<Outcome<()>> {
        let gate = self.access_gate.clone().lock_owned().await;
        self.describe_network_rule(name)?;
        let named =
            |p: &Arc<Policy>| p.permission.as_ref().is_some_and(|perm| perm.network_rules.iter().any(|r| r == name));
        if read_lock(&self.access).policies.values().any(named) {
            return Err(KmsError::new(ErrorCode::ResourceInUse).because("A permission policy names the rule."));
        }
        let change = Change::RemoveAccess { kind: AccessKind::NetworkRule, id: name.to_owned() };
        Ok(Outcome::write((), vec![change], vec![gate]))
    }
}

/// Where `policy` applies, with the addresses its network rules hold now.
pub(super) fn scope(policy: &Policy, rules: &BTreeMap<String, Arc<NetworkRule>>) -> Scope {
    let Some(permission) = &policy.permission else { return Scope::default() };
    let instance = (!permission.kms_instance.is_empty()).then(|| permission.kms_instance.clone());
    let sources = (!permission.network_rules.is_empty()).then(|| {
        permission.network_rules.iter().filter_map(|name| rules.get(name)).flat_map(|rule| rule.blocks()).collect()
    });
    Scope { instance, sources }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_block_holds_the_addresses_that_share_its_prefix() {
        let block = Cidr::parse("192.168.0.0/16").unwrap();
        assert!(block.contains(ip("192.168.7.9")));
        assert!(!block.contains(ip("192.169.0.1")));
        assert!(block.contains(ip("::ffff:192.168.1.1")), "an IPv4 peer seen on an IPv6 socket");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "10.0.0", "host", "10.0.0.0/", "::/129"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_scope_bounds_a_policy_by_instance_and_source() {
        let everywhere = Scope::default();
        assert!(everywhere.admits(None, None));
        let scoped = Scope { instance: Some("kst-a".into()), sources: Some(vec![Cidr::parse("10.0.0.0/8").unwrap()]) };
        assert!(scoped.admits(Some(ip("10.1.2.3")), Some("kst-a")));
        assert!(!scoped.admits(Some(ip("10.1.2.3")), Some("kst-b")));
        assert!(!scoped.admits(Some(ip("10.1.2.3")), None), "a default key is in no instance");
        assert!(!scoped.admits(Some(ip("172.16.0.1")), Some("kst-a")));
        assert!(!scoped.admits(None, Some("kst-a")), "a call from nowhere known");
        let no_addresses = Scope { instance: None, sources: Some(Vec::new()) };
        assert!(!no_addresses.admits(Some(ip("10.1.2.3")), None));
    }

    #[test]
    fn the_templates_grant_their_actions_on_their_kind_of_resource() {
        let permission = PermissionPolicy {
            region: "cn-hangzhou".into(),
            account_id: "1234".into(),
            permissions: vec![KEY_USER.into(), SECRET_USER.into()],
            resources: vec!["key/key-hzz1".into(), "secret/db/*".into()],
            kms_instance: "kst-hzz1".into(),
            network_rules: Vec::new(),
        };
        permission.check().unwrap();
        let document: serde_json::Value =
            serde_json::from_str(&permission.document(Some("cn-hangzhou")).unwrap()).unwrap();
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Resource"], json!(["acs:kms:cn-hangzhou:1234:key/key-hzz1"]));
        assert!(statements[0]["Action"].as_array().unwrap().contains(&json!("kms:Decrypt")));
        assert_eq!(statements[1]["Action"], json!(["kms:GetSecretValue"]));
        assert_eq!(statements[1]["Resource"], json!(["acs:kms:cn-hangzhou:1234:secret/db/*"]));

        let keys_only = PermissionPolicy { permissions: vec![SECRET_USER.into()], ..permission.clone() };
        let secretless = PermissionPolicy { resources: vec!["key/*".into()], ..keys_only };
        assert_eq!(secretless.document(None).unwrap_err().code, ErrorCode::InvalidParameter);
        let unknown =
            PermissionPolicy { permissions: vec!["RbacPermission/Template/Admin".into()], ..permission.clone() };
        assert!(unknown.check().unwrap_err().message.contains("Permissions"));
        let malformed = PermissionPolicy { resources: vec!["alias/x".into()], ..permission };
        assert!(malformed.check().unwrap_err().message.contains("Resources"));
    }
}
