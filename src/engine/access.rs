//! Identities and their permissions: RAM users with AccessKey pairs, custom
//! policies attached to users and application access points (AAPs), AAPs'
//! ClientKeys with their validity periods and expiry reminders, and the
//! authorisation decision for a call (see [`policy`](super::policy), and
//! [`permissions`](super::permissions) for Alibaba's permission policies and
//! network rules).
//!
//! Checking a request's signature is the server's business (it reads the
//! metadata and the wall clock); the engine answers who an AccessKey id
//! belongs to, whether that credential may be used now, and whether the
//! caller's policies allow what it asked.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngExt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::grants::GrantUse;
use super::key::KeyOp;
use super::keys::check_description;
use super::lifecycle::{DueItem, DueTask};
use super::permissions::{self, NetworkRule, PermissionPolicy, Scope};
use super::policy::{self, Decision, PolicyDocument, PolicyKind, Resource};
use super::{Change, Engine, Outcome, read_lock, write_lock};
use crate::clock::SimTime;
use crate::context::{CallContext, Principal};
use crate::events::{Subject, SystemEvent};

/// Alibaba RAM allows two AccessKey pairs per user.
pub const MAX_ACCESS_KEYS_PER_USER: usize = 2;
/// Days before a ClientKey's expiry on which a reminder goes out.
pub const REMINDER_DAYS: [u32; 4] = [180, 90, 30, 7];
/// A ClientKey made without `not_after` is valid for five years, as Alibaba's are by default.
const DEFAULT_CLIENT_KEY_DAYS: i64 = 5 * 365;

/// A credential's secret: kept to check signatures, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(Zeroizing::new(text))
    }

    /// A fresh secret of `len` letters and digits.
    fn generate(len: usize) -> Secret {
        Secret::new(random_text(len, ALPHANUMERIC))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// How an AAP's applications authenticate: with its ClientKeys, the one way Alibaba has.
pub const CLIENT_KEY: &str = "ClientKey";

/// A fresh AccessKey id (`LTAI` + 20 characters) and secret (30 characters), shaped like Alibaba's.
pub fn new_access_key_pair() -> (String, Secret) {
    (format!("LTAI{}", random_text(20, ALPHANUMERIC)), Secret::generate(30))
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = crate::engine::crypto::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub user_name: String,
    /// The principal id audit records show: 16 digits, like Alibaba's.
    pub user_id: String,
    pub policies: Vec<String>,
    pub created: SimTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret: Secret,
    pub user_name: String,
    pub active: bool,
    pub created: SimTime,
}

impl AccessKey {
    pub fn status(&self) -> &'static str {
        if self.active { "Active" } else { "Inactive" }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    pub policy_name: String,
    pub description: String,
    /// The document as given (it parsed when it was saved), or for a
    /// permission policy, what it grants in RAM's terms.
    pub document: String,
    pub created: SimTime,
    pub updated: SimTime,
    /// What a permission policy (Alibaba's, for AAPs) was made from; `None` for kmsim's own.
    #[serde(default)]
    pub permission: Option<PermissionPolicy>,
}

/// An application access point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Aap {
    pub name: String,
    pub region: String,
    pub account_id: String,
    pub description: String,
    /// The KMS instance its ClientKeys are for; empty for none.
    pub kms_instance_id: String,
    pub policies: Vec<String>,
    pub created: SimTime,
}

impl Aap {
    pub fn arn(&self) -> String {
        format!("acs:kms:{}:{}:aap/{}", self.region, self.account_id, self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientKey {
    pub client_key_id: String,
    /// A ClientKey of kmsim's own kind, made without a password: the secret it signs
    /// kmsim.v1 and OpenAPI calls with (HMAC), as every ClientKey did before
    /// Alibaba's kind. `None` for Alibaba's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Alibaba's kind, made with a password: the RSA public key
    /// (SubjectPublicKeyInfo DER, base64) that checks the instance API's
    /// signatures. The private key left in its PKCS#12 file and was never kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    pub aap_name: String,
    pub not_before: SimTime,
    pub not_after: SimTime,
    pub created: SimTime,
    /// The reminders already raised, in days before expiry, so each goes out once.
    #[serde(default)]
    pub reminders_sent: Vec<u32>,
}

impl ClientKey {
    /// `Valid`, `NotYetValid` or `Expired` at `now`.
    pub fn status(&self, now: SimTime) -> &'static str {
        if now < self.not_before {
            "NotYetValid"
        } else if now >= self.not_after {
            "Expired"
        } else {
            "Valid"
        }
    }

    /// `RSA` for Alibaba's kind (signs the instance API), `HMAC` for kmsim's own.
    pub fn kind(&self) -> &'static str {
        if self.public_key.is_empty() { "HMAC" } else { "RSA" }
    }

    /// When the reminder `days` before expiry is due.
    fn reminder_due(&self, days: u32) -> SimTime {
        self.not_after.plus_days(-i64::from(days))
    }
}

/// One stored identity or policy: what [`Change::SaveAccess`] persists.
#[derive(Debug, Clone)]
pub enum AccessEntity {
    User(Arc<User>),
    AccessKey(Arc<AccessKey>),
    Policy(Arc<Policy>),
    Aap(Arc<Aap>),
    ClientKey(Arc<ClientKey>),
    NetworkRule(Arc<NetworkRule>),
}

/// Which table of the access book an entity lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    User,
    AccessKey,
    Policy,
    Aap,
    ClientKey,
    NetworkRule,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::User => "user",
            AccessKind::AccessKey => "access_key",
            AccessKind::Policy => "policy",
            AccessKind::Aap => "aap",
            AccessKind::ClientKey => "client_key",
            AccessKind::NetworkRule => "network_rule",
        }
    }
}

impl AccessEntity {
    pub fn kind(&self) -> AccessKind {
        match self {
            AccessEntity::User(_) => AccessKind::User,
            AccessEntity::AccessKey(_) => AccessKind::AccessKey,
            AccessEntity::Policy(_) => AccessKind::Policy,
            AccessEntity::Aap(_) => AccessKind::Aap,
            AccessEntity::ClientKey(_) => AccessKind::ClientKey,
            AccessEntity::NetworkRule(_) => AccessKind::NetworkRule,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            AccessEntity::User(u) => &u.user_name,
            AccessEntity::AccessKey(k) => &k.access_key_id,
            AccessEntity::Policy(p) => &p.policy_name,
            AccessEntity::Aap(a) => &a.name,
            AccessEntity::ClientKey(c) => &c.client_key_id,
            AccessEntity::NetworkRule(r) => &r.name,
        }
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        let value = match self {
            AccessEntity::User(u) => serde_json::to_string(u.as_ref()),
            AccessEntity::AccessKey(k) => serde_json::to_string(k.as_ref()),
            AccessEntity::Policy(p) => serde_json::to_string(p.as_ref()),
            AccessEntity::Aap(a) => serde_json::to_string(a.as_ref()),
            AccessEntity::ClientKey(c) => serde_json::to_string(c.as_ref()),
            AccessEntity::NetworkRule(r) => serde_json::to_string(r.as_ref()),
        };
        value.expect("access entities are plain data")
    }

    /// Reads a stored row back.
    pub fn from_json(kind: &str, json: &str) -> Result<AccessEntity, String> {
        let parsed = match kind {
            "user" => serde_json::from_str(json).map(|u| AccessEntity::User(Arc::new(u))),
            "access_key" => serde_json::from_str(json).map(|k| AccessEntity::AccessKey(Arc::new(k))),
            "policy" => serde_json::from_str(json).map(|p| AccessEntity::Policy(Arc::new(p))),
            "aap" => serde_json::from_str(json).map(|a| AccessEntity::Aap(Arc::new(a))),
            "client_key" => serde_json::from_str(json).map(|c| AccessEntity::ClientKey(Arc::new(c))),
            "network_rule" => serde_json::from_str(json).map(|r| AccessEntity::NetworkRule(Arc::new(r))),
            other => return Err(format!("unknown access entity kind {other:?}")),
        };
        parsed.map_err(|e| format!("{kind}: {e}"))
    }
}

/// Every identity and policy, in memory.
#[derive(Debug, Default)]
pub struct AccessBook {
    pub(super) users: BTreeMap<String, Arc<User>>,
    pub(super) access_keys: BTreeMap<String, Arc<AccessKey>>,
    pub(super) policies: BTreeMap<String, Arc<Policy>>,
    aaps: BTreeMap<String, Arc<Aap>>,
    client_keys: BTreeMap<String, Arc<ClientKey>>,
    pub(super) network_rules: BTreeMap<String, Arc<NetworkRule>>,
}

impl AccessBook {
    pub fn new(entities: Vec<AccessEntity>) -> AccessBook {
        let mut book = AccessBook::default();
        for entity in entities {
            book.save(entity);
        }
        book
    }

    fn save(&mut self, entity: AccessEntity) {
        match entity {
            AccessEntity::User(u) => drop(self.users.insert(u.user_name.clone(), u)),
            AccessEntity::AccessKey(k) => drop(self.access_keys.insert(k.access_key_id.clone(), k)),
            AccessEntity::Policy(p) => drop(self.policies.insert(p.policy_name.clone(), p)),
            AccessEntity::Aap(a) => drop(self.aaps.insert(a.name.clone(), a)),
            AccessEntity::ClientKey(c) => drop(self.client_keys.insert(c.client_key_id.clone(), c)),
            AccessEntity::NetworkRule(r) => drop(self.network_rules.insert(r.name.clone(), r)),
        }
    }

    fn remove(&mut self, kind: AccessKind, id: &str) {
        match kind {
            AccessKind::User => drop(self.users.remove(id)),
            AccessKind::AccessKey => drop(self.access_keys.remove(id)),
            AccessKind::Policy => drop(self.policies.remove(id)),
            AccessKind::Aap => drop(self.aaps.remove(id)),
            AccessKind::ClientKey => drop(self.client_keys.remove(id)),
            AccessKind::NetworkRule => drop(self.network_rules.remove(id)),
        }
    }

    /// The identity policies named, each with where it applies.
    fn grants(&self, names: &[String]) -> Vec<(PolicyDocument, Scope)> {
        names
            .iter()
            .filter_map(|name| self.policies.get(name))
            .filter_map(|p| {
                let document = PolicyDocument::parse(&p.document, PolicyKind::Identity).ok()?;
                Some((document, permissions::scope(p, &self.network_rules)))
            })
            .collect()
    }

    /// Refuses policy names that name no policy.
    fn check_policies_exist(&self, names: &[String]) -> KmsResult<()> {
        match names.iter().find(|name| !self.policies.contains_key(*name)) {
            Some(missing) => {
                Err(KmsError::invalid_because("Policies", &format!("There is no policy named {missing}.")))
            }
            None => Ok(()),
        }
    }

    /// Who each policy is attached to, as `User/<name>` and `Aap/<name>`.
    fn attachments(&self, policy_name: &str) -> Vec<String> {
        let users = self.users.values().filter(|u| u.policies.iter().any(|p| p == policy_name));
        let aaps = self.aaps.values().filter(|a| a.policies.iter().any(|p| p == policy_name));
        users.map(|u| format!("User/{}", u.user_name)).chain(aaps.map(|a| format!("Aap/{}", a.name))).collect()
    }
}

/// A credential an AccessKey id names, as authentication needs it.
#[derive(Debug, Clone)]
pub struct Credential {
    /// What HMAC signatures are checked with; `None` for a ClientKey of Alibaba's kind, which signs with RSA.
    pub secret: Option<Secret>,
    /// A ClientKey's RSA public key (SubjectPublicKeyInfo DER, base64), which
    /// checks the instance API's signatures; empty for every other credential.
    pub public_key: String,
    pub principal: Principal,
    /// Why the credential cannot be used now (disabled, expired), if it cannot.
    pub refusal: Option<KmsError>,
}

/// A policy with the identities it is attached to.
#[derive(Debug, Clone)]
pub struct PolicyView {
    pub policy: Arc<Policy>,
    pub attachments: Vec<String>,
}

/// A principal's type in AttachPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalType {
    User,
    Aap,
}

fn principal_type(text: &str) -> KmsResult<PrincipalType> {
    match text {
        "User" => Ok(PrincipalType::User),
        "Aap" => Ok(PrincipalType::Aap),
        "" => Err(KmsError::missing("PrincipalType")),
        _ => Err(KmsError::invalid_because("PrincipalType", "Use User or Aap.")),
    }
}

/// Names of users, policies and AAPs: 1 to 64 (policies 128) letters, digits and `.`, `_`, `-`, `@`.
pub(super) fn check_name(name: &str, param: &str, max: usize) -> KmsResult<()> {
    if name.is_empty() {
        return Err(KmsError::missing(param));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@');
    if name.len() > max || !name.bytes().all(allowed) {
        return Err(KmsError::invalid_because(
            param,
            &format!("Use 1 to {max} letters, digits, '.', '_', '-' or '@'."),
        ));
    }
    Ok(())
}

pub(super) fn parse_identity_policy(document: &str) -> KmsResult<()> {
    if document.is_empty() {
        return Err(KmsError::missing("PolicyDocument"));
    }
    PolicyDocument::parse(document, PolicyKind::Identity)
        .map(drop)
        .map_err(|e| KmsError::invalid_because("PolicyDocument", &e))
}

impl Engine {
    /// The credential `access_key_id` names (an AccessKey or a ClientKey), at `now`.
    pub fn credential(&self, access_key_id: &str, now: SimTime) -> Option<Credential> {
        let book = read_lock(&self.access);
        if let Some(key) = book.access_keys.get(access_key_id) {
            let user_id = book.users.get(&key.user_name).map(|u| u.user_id.clone()).unwrap_or_default();
            return Some(Credential {
                secret: Some(key.secret.clone()),
                public_key: String::new(),
                principal: Principal::User { name: key.user_name.clone(), user_id },
                refusal: (!key.active).then(|| ErrorCode::AccessKeyForbidden.into()),
            });
        }
        let client_key = book.client_keys.get(access_key_id)?;
        let aap = book.aaps.get(&client_key.aap_name)?;
        let valid = client_key.status(now) == "Valid";
        Some(Credential {
            secret: client_key.secret.clone(),
            public_key: client_key.public_key.clone(),
            principal: Principal::Aap { name: aap.name.clone(), arn: aap.arn() },
            refusal: (!valid).then(|| ErrorCode::AccessKeyForbidden.into()),
        })
    }

    /// Whether the caller may do `action` on every one of `resources` (ARNs);
    /// `Forbidden.NoPermission` if not. Only RAM users and AAPs are subject to
    /// policies: the admin and unauthenticated callers (auth off) are not.
    /// Each resource is judged by the identity policies whose scope admits the
    /// call on it (a permission policy's instance and network rules) and by
    /// the resource's own policy. A key those leave undecided (no Deny, no
    /// Allow) is allowed when its grants permit every one of `uses` the call
    /// makes of it; an explicit Deny is never overridden by a grant.
    pub fn authorize(&self, cx: &CallContext, action: &str, resources: &[String], uses: &[GrantUse]) -> KmsResult<()> {
        let book = read_lock(&self.access);
        let (principal_arn, grants) = match &cx.principal {
            Principal::User { name, .. } => {
                let names = book.users.get(name).map(|u| u.policies.clone()).unwrap_or_default();
                (format!("acs:ram::{}:user/{name}", self.account_id), book.grants(&names))
            }
            Principal::Aap { name, arn } => {
                let names = book.aaps.get(name).map(|a| a.policies.clone()).unwrap_or_default();
                (arn.clone(), book.grants(&names))
            }
            Principal::Account | Principal::Unverified | Principal::Anonymous | Principal::Admin => return Ok(()),
        };
        drop(book);
        let source = cx.client.map(|addr| addr.ip());
        let scoped_by_instance = grants.iter().any(|(_, scope)| scope.instance.is_some());
        for arn in resources {
            let instance = if scoped_by_instance { self.instance_of(arn) } else { None };
            let identity: Vec<&PolicyDocument> = grants
                .iter()
                .filter(|(_, scope)| scope.admits(source, instance.as_deref()))
                .map(|(document, _)| document)
                .collect();
            let own = self.resource_policy_of(arn);
            let resource = Resource { arn, policy: own.as_ref() };
            match policy::decide(&identity, &principal_arn, action, &[resource]) {
                Decision::Allow => {}
                Decision::ImplicitDeny if self.granted(cx, arn, uses) => {}
                Decision::ExplicitDeny | Decision::ImplicitDeny => return Err(ErrorCode::NoPermission.into()),
            }
        }
        Ok(())
    }

    /// Whether the grants of the key `arn` names permit every use the call makes of it (at least one).
    fn granted(&self, cx: &CallContext, arn: &str, uses: &[GrantUse]) -> bool {
        let Some((region, resource)) = self.own_resource(arn) else { return false };
        let Some(key_id) = resource.strip_prefix("key/") else { return false };
        let of_key: Vec<&GrantUse> = uses.iter().filter(|u| u.key_arn == arn).collect();
        self.grants_allow(cx, &(region.to_owned(), key_id.to_owned()), &of_key)
    }

    /// The KMS instance of the key or secret `arn` names, if it is in one.
    fn instance_of(&self, arn: &str) -> Option<String> {
        let (region, resource) = self.own_resource(arn)?;
        match resource.split_once('/')? {
            ("key", key_id) => self.slot(region, key_id)?.snapshot().meta.instance_id.clone(),
            ("secret", name) => self.secret(region, name)?.instance_id.clone(),
            _ => None,
        }
    }

    /// The region and resource (`key/<id>`, `secret/<name>`) of an ARN of this account.
    fn own_resource<'a>(&self, arn: &'a str) -> Option<(&'a str, &'a str)> {
        let mut parts = arn.strip_prefix("acs:kms:")?.splitn(3, ':');
        let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
        (account == self.account_id).then_some((region, resource))
    }

    /// The policy of the key or secret `arn` names, if it is one of this account with one.
    fn resource_policy_of(&self, arn: &str) -> Option<PolicyDocument> {
        let (region, resource) = self.own_resource(arn)?;
        let text = if let Some(key_id) = resource.strip_prefix("key/") {
            self.slot(region, key_id)?.snapshot().meta.policy.clone()?
        } else {
            self.secret(region, resource.strip_prefix("secret/")?)?.policy.clone()?
        };
        PolicyDocument::parse(&text, PolicyKind::Resource).ok()
    }

    /// The key's policy document, or the default one.
    pub fn get_key_policy(&self, cx: &CallContext, key_id: &str, policy_name: &str) -> KmsResult<Outcome<String>> {
        check_resource_policy_name(policy_name)?;
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        let text = key.meta.policy.clone().unwrap_or_else(|| policy::default_resource_policy(&self.account_id));
        Ok(Outcome::read(text))
    }

    pub async fn set_key_policy(
        &self,
        cx: &CallContext,
        key_id: &str,
        policy_name: &str,
        text: &str,
    ) -> KmsResult<Outcome<()>> {
        check_resource_policy(policy_name, text)?;
        let outcome = self
            // A key's policy can be changed in every state: it is how its owner regains access to it.
            .change_key(cx, (key_id, "KeyId"), KeyOp::Inspect, |key| {
                Ok(key.with_meta(|m| m.policy = Some(text.to_owned())))
            })
            .await?;
        Ok(outcome.map(drop))
    }

    pub async fn create_access_key(&self, cx: &CallContext, user_name: &str) -> KmsResult<Outcome<Arc<AccessKey>>> {
        check_name(user_name, "UserName", 64)?;
        let gate = self.access_gate.clone().lock_owned().await;
        let book = read_lock(&self.access);
        let mut changes = Vec::new();
        if !book.users.contains_key(user_name) {
            changes.push(Change::SaveAccess(AccessEntity::User(Arc::new(self.new_user(user_name, cx.received_at)))));
        }
        if book.access_keys.values().filter(|k| k.user_name == user_name).count() >= MAX_ACCESS_KEYS_PER_USER {
            return Err(ErrorCode::LimitExceeded.into());
        }
        let (access_key_id, secret) = new_access_key_pair();
        let key = Arc::new(AccessKey {
            access_key_id,
            secret,
            user_name: user_name.to_owned(),
            active: true,
            created: cx.received_at,
        });
        cx.trail.response_element("AccessKeyId", key.access_key_id.clone());
        changes.push(Change::SaveAccess(AccessEntity::AccessKey(key.clone())));
        Ok(Outcome::write(key, changes, vec![gate]))
    }

    pub(super) fn new_user(&self, user_name: &str, now: SimTime) -> User {
        User {
            user_name: user_name.to_owned(),
            user_id: random_text(16, b"0123456789"),
            policies: Vec::new(),
            created: now,
        }
    }

    pub fn list_access_keys(&self, user_name: &str) -> Vec<Arc<AccessKey>> {
        let book = read_lock(&self.access);
        book.access_keys.values().filter(|k| user_name.is_empty() || k.user_name == user_name).cloned().collect()
    }

    pub async fn update_access_key(&self, access_key_id: &str, status: &str) -> KmsResult<Outcome<Arc<AccessKey>>> {
        let active = match status {
            "Active" => true,
            "Inactive" => false,
            "" => return Err(KmsError::missing("Status")),
            _ => return Err(KmsError::invalid_because("Status", "Use Active or Inactive.")),
        };
        let gate = self.access_gate.clone().lock_owned().await;
        let key = self.access_key(access_key_id)?;
        let next = Arc::new(AccessKey { active, ..(*key).clone() });
        Ok(Outcome::write(next.clone(), vec![Change::SaveAccess(AccessEntity::AccessKey(next))], vec![gate]))
    }

    pub async fn delete_access_key(&self, access_key_id: &str) -> KmsResult<Outcome<()>> {
        let gate = self.access_gate.clone().lock_owned().await;
        self.access_key(access_key_id)?;
        let change = Change::RemoveAccess { kind: AccessKind::AccessKey, id: access_key_id.to_owned() };
        Ok(Outcome::write((), vec![change], vec![gate]))
    }

    fn access_key(&self, access_key_id: &str) -> KmsResult<Arc<AccessKey>> {
        if access_key_id.is_empty() {
            return Err(KmsError::missing("AccessKeyId"));
        }
        read_lock(&self.access)
            .access_keys
            .get(access_key_id)
            .cloned()
            .ok_or_else(|| ErrorCode::ResourceNotFound.into())
    }

    pub fn list_users(&self) -> Vec<Arc<User>> {
        read_lock(&self.access).users.values().cloned().collect()
    }

    pub async fn create_policy(
        &self,
        cx: &CallContext,
        name: &str,
        document: &str,
        description: &str,
    ) -> KmsResult<Outcome<PolicyView>> {
        check_name(name, "PolicyName", 128)?;
        parse_identity_policy(document)?;
        let gate = self.access_gate.clone().lock_owned().await;
        if read_lock(&self.access).policies.contains_key(name) {
            return Err(ErrorCode::ResourceExist.into());
        }
        let policy = Arc::new(Policy {
            policy_name: name.to_owned(),
            description: description.to_owned(),
            document: document.to_owned(),
            created: cx.received_at,
            updated: cx.received_at,
            permission: None,
        });
        let view = PolicyView { policy: policy.clone(), attachments: Vec::new() };
        Ok(Outcome::write(view, vec![Change::SaveAccess(AccessEntity::Policy(policy))], vec![gate]))
    }

    pub fn get_policy(&self, name: &str) -> KmsResult<PolicyView> {
        if name.is_empty() {
            return Err(KmsError::missing("PolicyName"));
        }
        let book = read_lock(&self.access);
        let policy = book.policies.get(name).cloned().ok_or(ErrorCode::ResourceNotFound)?;
        Ok(PolicyView { attachments: book.attachments(name), policy })
    }

    pub fn list_policies(&self) -> Vec<PolicyView> {
        let book = read_lock(&self.access);
        book.policies
            .values()
            .map(|p| PolicyView { policy: p.clone(), attachments: book.attachments(&p.policy_name) })
            .collect()
    }

    pub async fn update_policy(&self, cx: &CallContext, name: &str, document: &str) -> KmsResult<Outcome<PolicyView>> {
        parse_identity_policy(document)?;
        let gate = self.access_gate.clone().lock_owned().await;
        let view = self.get_policy(name)?;
        if view.policy.permission.is_some() {
            return Err(KmsError::new(ErrorCode::RejectedUnsupportedOperation)
                .because("A permission policy grants what its Permissions and Resources say: change those instead."));
        }
        let policy =
            Arc::new(Policy { document: document.to_owned(), updated: cx.received_at, ..(*view.policy).clone() });
        let next = PolicyView { policy: policy.clone(), attachments: view.attachments };
        Ok(Outcome::write(next, vec![Change::SaveAccess(AccessEntity::Policy(policy))], vec![gate]))
    }

    pub async fn delete_policy(&self, name: &str) -> KmsResult<Outcome<()>> {
        let gate = self.access_gate.clone().lock_owned().await;
        let view = self.get_policy(name)?;
        if !view.attachments.is_empty() {
            return Err(ErrorCode::ResourceInUse.into());
        }
        let change = Change::RemoveAccess { kind: AccessKind::Policy, id: name.to_owned() };
        Ok(Outcome::write((), vec![change], vec![gate]))
    }

    /// Attaches (or with `attach` false, detaches) a policy. Attaching to a
    /// user that does not exist yet creates it, so permissions can be set up
    /// before its AccessKey.
    pub async fn attach_policy(
        &self,
        cx: &CallContext,
        policy_name: &str,
        principal: (&str, &str),
        attach: bool,
    ) -> KmsResult<Outcome<()>> {
        let kind = principal_type(principal.0)?;
        let name = principal.1;
        check_name(name, "PrincipalName", 64)?;
        let gate = self.access_gate.clone().lock_owned().await;
        self.get_policy(policy_name)?;
        let book = read_lock(&self.access);
        let edit = |policies: &mut Vec<String>| -> KmsResult<()> {
            let present = policies.iter().any(|p| p == policy_name);
            match (attach, present) {
                (true, true) => Err(ErrorCode::ResourceExist.into()),
                (false, false) => Err(ErrorCode::ResourceNotFound.into()),
                (true, false) => {
                    policies.push(policy_name.to_owned());
                    Ok(())
                }
                (false, true) => {
                    policies.retain(|p| p != policy_name);
                    Ok(())
                }
            }
        };
        let entity = match kind {
            PrincipalType::User => {
                let mut user = match book.users.get(name) {
                    Some(user) => (**user).clone(),
                    None if attach => self.new_user(name, cx.received_at),
                    None => return Err(ErrorCode::ResourceNotFound.into()),
                };
                edit(&mut user.policies)?;
                AccessEntity::User(Arc::new(user))
            }
            PrincipalType::Aap => {
                let mut aap = (**book.aaps.get(name).ok_or(ErrorCode::ResourceNotFound)?).clone();
                edit(&mut aap.policies)?;
                AccessEntity::Aap(Arc::new(aap))
            }
        };
        Ok(Outcome::write((), vec![Change::SaveAccess(entity)], vec![gate]))
    }

    pub async fn create_aap(
        &self,
        cx: &CallContext,
        name: &str,
        (description, authentication_method): (&str, &str),
        kms_instance_id: &str,
        policies: &[String],
    ) -> KmsResult<Outcome<Arc<Aap>>> {
        check_name(name, "Name", 64)?;
        if !matches!(authentication_method, "" | CLIENT_KEY) {
            return Err(KmsError::invalid_because("AuthenticationMethod", "The only method is ClientKey."));
        }
        if !kms_instance_id.is_empty() {
            self.get_instance(cx, kms_instance_id)?;
        }
        let gate = self.access_gate.clone().lock_owned().await;
        let book = read_lock(&self.access);
        if book.aaps.contains_key(name) {
            return Err(ErrorCode::ResourceExist.into());
        }
        book.check_policies_exist(policies)?;
        let aap = Arc::new(Aap {
            name: name.to_owned(),
            region: cx.region.clone(),
            account_id: self.account_id.clone(),
            description: description.to_owned(),
            kms_instance_id: kms_instance_id.to_owned(),
            policies: policies.to_vec(),
            created: cx.received_at,
        });
        Ok(Outcome::write(aap.clone(), vec![Change::SaveAccess(AccessEntity::Aap(aap))], vec![gate]))
    }

    /// Changes an AAP's description or policies, those given.
    pub async fn update_aap(
        &self,
        name: &str,
        description: Option<String>,
        policies: Option<Vec<String>>,
    ) -> KmsResult<Outcome<Arc<Aap>>> {
        if let Some(description) = &description {
            check_description(description)?;
        }
        let gate = self.access_gate.clone().lock_owned().await;
        let current = self.get_aap(name)?;
        if let Some(policies) = &policies {
            read_lock(&self.access).check_policies_exist(policies)?;
        }
        let aap = Aap {
            description: description.unwrap_or_else(|| current.description.clone()),
            policies: policies.unwrap_or_else(|| current.policies.clone()),
            ..(*current).clone()
        };
        let aap = Arc::new(aap);
        Ok(Outcome::write(aap.clone(), vec![Change::SaveAccess(AccessEntity::Aap(aap))], vec![gate]))
    }

    /// The KMS instance an AAP's applications reach: the one the AAP is bound
    /// to, else the one its permission policies name (the first, in the order
    /// they are attached); empty for none.
    pub fn instance_of_aap(&self, name: &str) -> String {
        let book = read_lock(&self.access);
        let Some(aap) = book.aaps.get(name) else { return String::new() };
        if !aap.kms_instance_id.is_empty() {
            return aap.kms_instance_id.clone();
        }
        let named = aap.policies.iter().filter_map(|p| book.policies.get(p)?.permission.as_ref());
        named.map(|p| p.kms_instance.clone()).find(|i| !i.is_empty()).unwrap_or_default()
    }

    pub fn get_aap(&self, name: &str) -> KmsResult<Arc<Aap>> {
        if name.is_empty() {
            return Err(KmsError::missing("Name"));
        }
        read_lock(&self.access).aaps.get(name).cloned().ok_or_else(|| ErrorCode::ResourceNotFound.into())
    }

    pub fn list_aaps(&self) -> Vec<Arc<Aap>> {
        read_lock(&self.access).aaps.values().cloned().collect()
    }

    pub async fn delete_aap(&self, name: &str) -> KmsResult<Outcome<()>> {
        let gate = self.access_gate.clone().lock_owned().await;
        self.get_aap(name)?;
        if read_lock(&self.access).client_keys.values().any(|c| c.aap_name == name) {
            return Err(ErrorCode::ResourceInUse.into());
        }
        Ok(Outcome::write((), vec![Change::RemoveAccess { kind: AccessKind::Aap, id: name.to_owned() }], vec![gate]))
    }

    pub async fn create_client_key(
        &self,
        cx: &CallContext,
        aap_name: &str,
        not_before: &str,
        not_after: &str,
        password: &str,
    ) -> KmsResult<Outcome<(Arc<ClientKey>, Option<PrivateKeyData>)>> {
        let now = cx.received_at;
        let time = |text: &str, param: &str| -> KmsResult<Option<SimTime>> {
            if text.is_empty() {
                return Ok(None);
            }
            SimTime::parse_rfc3339(text)
                .map(Some)
                .ok_or_else(|| KmsError::invalid_because(param, "Write an RFC 3339 time such as 2027-01-01T00:00:00Z."))
        };
        let not_before = time(not_before, "NotBefore")?.unwrap_or(now);
        let not_after = time(not_after, "NotAfter")?.unwrap_or(not_before.plus_days(DEFAULT_CLIENT_KEY_DAYS));
        if not_after <= not_before {
            return Err(KmsError::invalid_because("NotAfter", "It must be after NotBefore."));
        }
        self.get_aap(aap_name)?;
        let client_key_id = format!("KAAP.{}", crate::engine::crypto::new_uuid());
        // The key pair is made before the gate is taken: it is the slow part, and needs nothing the gate guards.
        let (secret, public_key, private_key_data) = match password {
            "" => (Some(Secret::generate(32)), String::new(), None),
            password => {
                check_client_key_password(password)?;
                let (pfx, spki) = crate::engine::crypto::pkcs12::new_client_key(
                    &client_key_id,
                    password,
                    &not_before.to_rfc3339(),
                    &not_after.to_rfc3339(),
                )
                .map_err(|_| KmsError::internal())?;
                (None, BASE64.encode(spki), Some(PrivateKeyData(Zeroizing::new(BASE64.encode(&*pfx)))))
            }
        };
        let gate = self.access_gate.clone().lock_owned().await;
        self.get_aap(aap_name)?;
        let key = Arc::new(ClientKey {
            client_key_id,
            secret,
            public_key,
            aap_name: aap_name.to_owned(),
            not_before,
            not_after,
            created: now,
            reminders_sent: Vec::new(),
        });
        cx.trail.response_element("ClientKeyId", key.client_key_id.clone());
        let changes = vec![Change::SaveAccess(AccessEntity::ClientKey(key.clone()))];
        Ok(Outcome::write((key, private_key_data), changes, vec![gate]))
    }

    pub fn get_client_key(&self, client_key_id: &str) -> KmsResult<Arc<ClientKey>> {
        if client_key_id.is_empty() {
            return Err(KmsError::missing("ClientKeyId"));
        }
        read_lock(&self.access)
            .client_keys
            .get(client_key_id)
            .cloned()
            .ok_or_else(|| ErrorCode::ResourceNotFound.into())
    }

    pub fn list_client_keys(&self, aap_name: &str) -> Vec<Arc<ClientKey>> {
        let book = read_lock(&self.access);
        book.client_keys.values().filter(|c| aap_name.is_empty() || c.aap_name == aap_name).cloned().collect()
    }

    pub async fn delete_client_key(&self, client_key_id: &str) -> KmsResult<Outcome<()>> {
        let gate = self.access_gate.clone().lock_owned().await;
        self.get_client_key(client_key_id)?;
        let change = Change::RemoveAccess { kind: AccessKind::ClientKey, id: client_key_id.to_owned() };
        Ok(Outcome::write((), vec![change], vec![gate]))
    }

    /// Applies a committed access change and schedules what it makes due.
    pub(super) fn apply_access(&self, change: AccessChange) {
        match change {
            AccessChange::Save(entity) => {
                if let AccessEntity::ClientKey(key) = &entity {
                    self.schedule_client_key(key);
                }
                write_lock(&self.access).save(entity);
            }
            AccessChange::Remove(kind, id) => write_lock(&self.access).remove(kind, &id),
        }
    }

    /// Puts a ClientKey's outstanding expiry reminders on the agenda. A
    /// reminder whose date fell before the key was made is never sent.
    pub(super) fn schedule_client_key(&self, key: &ClientKey) {
        let region = self.get_aap(&key.aap_name).map(|a| a.region.clone()).unwrap_or_default();
        for days in REMINDER_DAYS {
            let at = key.reminder_due(days);
            if at >= key.created && !key.reminders_sent.contains(&days) {
                let task = DueTask::ClientKeyReminder { client_key_id: key.client_key_id.clone(), days };
                self.agenda.push(DueItem { at, region: region.clone(), task });
            }
        }
    }

    /// The reminder `days` before a ClientKey expires, if it is still due.
    pub(super) fn remind_client_key(&self, item: &DueItem, client_key_id: &str, days: u32) -> Option<Outcome<()>> {
        let key = self.get_client_key(client_key_id).ok()?;
        if key.reminders_sent.contains(&days) || key.reminder_due(days) != item.at {
            return None;
        }
        let aap = self.get_aap(&key.aap_name).ok()?;
        let subject = Subject {
            account_id: &self.account_id,
            region: &aap.region,
            resource_arn: aap.arn(),
            instance_name: aap.name.clone(),
            event_resource: key.client_key_id.clone(),
        };
        let event = SystemEvent::client_key_expiring(subject, &aap.kms_instance_id, key.not_after, days, item.at);
        let mut sent = (*key).clone();
        sent.reminders_sent.push(days);
        let changes = vec![Change::SaveAccess(AccessEntity::ClientKey(Arc::new(sent))), Change::Emit(Arc::new(event))];
        Some(Outcome::write((), changes, Vec::new()))
    }
}

/// A new ClientKey's PKCS#12 file, base64: told to its caller once, never stored, logged or audited.
pub struct PrivateKeyData(pub Zeroizing<String>);

impl PrivateKeyData {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyData(..)")
    }
}

/// Alibaba's rule for the password of a ClientKey's PKCS#12 file: 8 to 64
/// printable ASCII characters with at least two of digits, lowercase,
/// uppercase and special characters.
fn check_client_key_password(password: &str) -> KmsResult<()> {
    let printable = password.bytes().all(|b| b.is_ascii_graphic());
    let kinds = [
        password.bytes().any(|b| b.is_ascii_digit()),
        password.bytes().any(|b| b.is_ascii_lowercase()),
        password.bytes().any(|b| b.is_ascii_uppercase()),
        password.bytes().any(|b| b.is_ascii_punctuation()),
    ];
    if !(8..=64).contains(&password.len()) || !printable || kinds.iter().filter(|k| **k).count() < 2 {
        return Err(KmsError::invalid_because(
            "Password",
            "It must be 8 to 64 printable ASCII characters with at least two of digits, lowercase, uppercase and special characters.",
        ));
    }
    Ok(())
}

/// The two access changes, split out of [`Change`] for [`Engine::apply_access`].
pub(super) enum AccessChange {
    Save(AccessEntity),
    Remove(AccessKind, String),
}

/// Key and secret policies have one name.
pub(super) fn check_resource_policy_name(name: &str) -> KmsResult<()> {
    match name {
        "" | "default" => Ok(()),
        _ => Err(KmsError::invalid_because("PolicyName", "The only policy of a key or secret is named default.")),
    }
}

/// A key or secret policy to set: its name, and a document that parses.
pub(super) fn check_resource_policy(name: &str, text: &str) -> KmsResult<()> {
    check_resource_policy_name(name)?;
    if text.is_empty() {
        return Err(KmsError::missing("Policy"));
    }
    PolicyDocument::parse(text, PolicyKind::Resource).map(drop).map_err(|e| KmsError::invalid_because("Policy", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let key = AccessKey {
            access_key_id: "LTAIexample".into(),
            secret: Secret::new("do-not-print-me".into()),
            user_name: "alice".into(),
            active: true,
            created: SimTime(0),
        };
        let printed = format!("{key:?} {:?}", AccessEntity::AccessKey(Arc::new(key.clone())));
        assert!(!printed.contains("do-not-print-me"), "{printed}");
        let stored = AccessEntity::AccessKey(Arc::new(key)).to_json();
        let back = AccessEntity::from_json("access_key", &stored).unwrap();
        let AccessEntity::AccessKey(back) = back else { panic!("kind changed") };
        assert_eq!(back.secret.expose(), "do-not-print-me", "the store keeps the secret to check signatures");
    }

    #[test]
    fn reminders_are_due_the_stated_days_before_expiry() {
        let key = ClientKey {
            client_key_id: "KAAP.x".into(),
            secret: Some(Secret::new("s".into())),
            public_key: String::new(),
            aap_name: "app".into(),
            not_before: SimTime(0),
            not_after: SimTime(0).plus_days(365),
            created: SimTime(0),
            reminders_sent: Vec::new(),
        };
        let due: Vec<i64> = REMINDER_DAYS.iter().map(|d| key.reminder_due(*d).millis() / SimTime::MS_PER_DAY).collect();
        assert_eq!(due, [185, 275, 335, 358]);
        assert_eq!(key.status(SimTime(0).plus_days(365)), "Expired");
        assert_eq!(key.status(SimTime(-1)), "NotYetValid");
    }

    #[test]
    fn a_client_key_stored_before_alibabas_kind_reads_back_as_kmsims_own_hmac_kind() {
        let stored = r#"{"client_key_id":"KAAP.old","secret":"s3cret","aap_name":"app","not_before":0,
            "not_after":86400000,"created":0}"#;
        let AccessEntity::ClientKey(key) = AccessEntity::from_json("client_key", stored).unwrap() else {
            panic!("kind changed")
        };
        assert_eq!((key.secret.as_ref().map(Secret::expose), key.kind()), (Some("s3cret"), "HMAC"));
        let rsa = ClientKey { secret: None, public_key: "MIIB".into(), ..(*key).clone() };
        let json = AccessEntity::ClientKey(Arc::new(rsa)).to_json();
        assert!(!json.contains("\"secret\""), "an RSA ClientKey stores no secret: {json}");
    }

    #[test]
    fn a_client_key_password_follows_alibabas_rule() {
        for good in ["Passw0rd", "orders-2027!", "ABCDEFG1"] {
            assert!(check_client_key_password(good).is_ok(), "{good}");
        }
        for bad in ["short1A", "password", "PASSWORDS", "pass word 1", &"a1".repeat(33)] {
            assert!(check_client_key_password(bad).is_err(), "{bad}");
        }
    }
}
