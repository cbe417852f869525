//! Grants: standing permissions on one key, given to a principal for some of
//! the key's operations, optionally only for requests whose encryption context
//! matches a constraint. A grant is AWS KMS's instrument, so its operations are
//! named as AWS names them (`Encrypt`, `ReEncryptFrom`, `Sign`), but it is
//! judged here, by the one access decision every front end's calls go through
//! ([`Engine::authorize`]): a grantee may use the key through any front end.
//!
//! A grant token is what CreateGrant answers besides the grant's id: the grant
//! id, a fresh nonce and an HMAC under a key derived from the store's secret.
//! So every CreateGrant answers a new token, all tokens of a grant are
//! interchangeable (as AWS documents), a token is unguessable and cannot be
//! forged or carried over from another kmsim server, and no token is stored.
//! Grants take effect at once in kmsim (there is no eventual consistency to
//! bridge), so a token given to a cryptographic call is checked for being one
//! of this server's tokens and otherwise changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{Key, KeyOp, KeySpec, KeyUsage, SpecKind};
use super::{Change, Engine, KeyAddr, Outcome, Page, Paged, read_lock, write_lock};
use crate::clock::SimTime;
use crate::context::{CallContext, Principal};
use crate::engine::crypto::{constant_time_eq, hex, random_array};

/// An encryption context, as a grant constraint holds it.
pub type Context = BTreeMap<String, String>;

/// The most grants one key holds. AWS allows 50,000; kmsim keeps every grant in
/// memory and scans a key's grants when it judges a call, so it stops earlier.
pub const MAX_GRANTS_PER_KEY: usize = 10_000;
/// The most grant tokens one request carries (AWS's bound).
pub const MAX_GRANT_TOKENS: usize = 10;
/// The longest grant token a request may carry (AWS's bound); kmsim's own are far shorter.
pub const MAX_GRANT_TOKEN_LEN: usize = 8192;
/// The most pairs one encryption context constraint holds (AWS's bound).
pub const MAX_CONSTRAINT_PAIRS: usize = 8;
/// The longest key or value of a constraint's pair (AWS bounds values at 384 characters).
pub const MAX_CONSTRAINT_TEXT: usize = 384;
/// The longest grant name and principal (AWS's bound).
const MAX_NAME_LEN: usize = 256;

/// Every operation a grant can permit, as AWS names them.
pub const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

/// The grant operations that take an encryption context, and so the only ones a constraint limits.
const CONTEXT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

/// A grant's encryption context constraint: at most one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantConstraints {
    /// The request's context must include these pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<Context>,
    /// The request's context must be exactly these pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<Context>,
}

impl GrantConstraints {
    pub fn is_empty(&self) -> bool {
        self.encryption_context_subset.is_none() && self.encryption_context_equals.is_none()
    }

    /// Whether a request's encryption context meets the constraint. As in AWS,
    /// a constraint's keys match regardless of case and its values exactly.
    pub fn admit(&self, context: &Context) -> bool {
        let folded: Vec<(String, &str)> = context.iter().map(|(k, v)| (k.to_lowercase(), v.as_str())).collect();
        let has = |(key, value): (&String, &String)| {
            let key = key.to_lowercase();
            folded.iter().any(|(k, v)| *k == key && v == value)
        };
        let subset_met = self.encryption_context_subset.as_ref().is_none_or(|subset| subset.iter().all(has));
        let equals_met = self
            .encryption_context_equals
            .as_ref()
            .is_none_or(|equals| equals.len() == context.len() && equals.iter().all(has));
        subset_met && equals_met
    }

    /// Bounds and shape: one kind of constraint, 1 to 8 pairs, no empty key, no text over 384 characters.
    /// An empty map is no constraint, as AWS treats it.
    fn checked(self) -> KmsResult<GrantConstraints> {
        let GrantConstraints { encryption_context_subset, encryption_context_equals } = self;
        let given = |map: Option<Context>| map.filter(|m| !m.is_empty());
        let constraints = GrantConstraints {
            encryption_context_subset: given(encryption_context_subset),
            encryption_context_equals: given(encryption_context_equals),
        };
        let bad = |reason: &str| Err(KmsError::invalid_because("Constraints", reason));
        if constraints.encryption_context_subset.is_some() && constraints.encryption_context_equals.is_some() {
            return bad("Give EncryptionContextSubset or EncryptionContextEquals, not both.");
        }
        for map in
            [&constraints.encryption_context_subset, &constraints.encryption_context_equals].into_iter().flatten()
        {
            if map.len() > MAX_CONSTRAINT_PAIRS {
                return bad("A constraint holds at most 8 encryption context pairs.");
            }
            let too_long = |text: &String| text.chars().count() > MAX_CONSTRAINT_TEXT;
            if map.iter().any(|(k, v)| k.is_empty() || too_long(k) || too_long(v)) {
                return bad("Each key is 1 to 384 characters and each value at most 384.");
            }
        }
        Ok(constraints)
    }
}

/// One grant on one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// 64 hexadecimal digits, as AWS's.
    pub grant_id: String,
    pub region: String,
    pub key_id: String,
    /// Empty when the grant was made without one.
    pub name: String,
    pub grantee_principal: String,
    /// Empty when the grant names none.
    pub retiring_principal: String,
    /// AWS operation names ([`GRANT_OPERATIONS`]), each once, in the order given.
    pub operations: Vec<String>,
    pub constraints: GrantConstraints,
    /// The account the grant was issued in, as the front end that made it names accounts.
    pub issuing_account: String,
    pub creation_date: SimTime,
}

impl Grant {
    fn permits(&self, operation: &str) -> bool {
        self.operations.iter().any(|op| op == operation)
    }

    /// Whether `principal` is the one `named` (the grantee or the retiring principal): a RAM user by
    /// its AWS IAM user ARN in the issuing account (any path) or its RAM ARN, an AAP by its ARN.
    fn names(&self, named: &str, principal: &Principal, engine_account: &str) -> bool {
        match principal {
            Principal::User { name, .. } => {
                let iam = format!("arn:aws:iam::{}:user/", self.issuing_account);
                let by_iam =
                    named.strip_prefix(&iam).is_some_and(|path| path.rsplit('/').next() == Some(name.as_str()));
                by_iam || named == format!("acs:ram::{engine_account}:user/{name}")
            }
            Principal::Aap { arn, .. } => named == arn.as_str(),
            Principal::Account | Principal::Unverified | Principal::Anonymous | Principal::Admin => false,
        }
    }

    /// Whether this grant permits `operation` for `principal`, with `context` as the request's.
    fn allows(&self, principal: &Principal, engine_account: &str, use_: &GrantUse) -> bool {
        if !self.names(&self.grantee_principal, principal, engine_account) || !self.permits(use_.operation) {
            return false;
        }
        if !CONTEXT_OPERATIONS.contains(&use_.operation) {
            return true;
        }
        self.constraints.admit(use_.context.as_ref().unwrap_or(&Context::new()))
    }
}

/// What CreateGrant answers.
#[derive(Debug, Clone)]
pub struct GrantMade {
    pub grant_id: String,
    /// A fresh token for the grant; never recorded.
    pub grant_token: String,
    pub key_id: String,
}

/// What CreateGrant asks for besides the key.
#[derive(Debug, Clone, Default)]
pub struct GrantInput {
    pub grantee_principal: String,
    pub retiring_principal: String,
    pub operations: Vec<String>,
    pub constraints: GrantConstraints,
    pub name: String,
    /// The account the front end names; empty for kmsim's own.
    pub issuing_account: String,
    /// Check everything and change nothing: answered with DryRunOperation when it would have succeeded.
    pub dry_run: bool,
}

/// How a grant to retire is named: by a token, or by its key and id.
#[derive(Debug, Clone)]
pub enum GrantNamed<'a> {
    Token(&'a str),
    Id { key_id: &'a str, grant_id: &'a str },
}

/// One use of a key a call makes that a grant could permit: the key (by
/// kmsim ARN), the grant operation it is, and the encryption context the
/// request gives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantUse {
    pub key_arn: String,
    pub operation: &'static str,
    pub context: Option<Context>,
}

/// The grant operation a kmsim action is, for a key used as the call's own key
/// or (ReEncrypt) as its source. `None`: no grant permits it. CreateGrant is
/// absent on purpose: AWS lets a grant's CreateGrant make only narrower grants,
/// which kmsim does not judge, so it refuses rather than let a grantee widen its
/// own permissions.
pub fn grant_operation(action: &str, as_source: bool) -> Option<&'static str> {
    Some(match action {
        "kms:Encrypt" | "kms:AsymmetricEncrypt" => "Encrypt",
        "kms:Decrypt" | "kms:AsymmetricDecrypt" => "Decrypt",
        "kms:GenerateDataKey" => "GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext" => "GenerateDataKeyWithoutPlaintext",
        "kms:ReEncrypt" if as_source => "ReEncryptFrom",
        "kms:ReEncrypt" => "ReEncryptTo",
        "kms:AsymmetricSign" => "Sign",
        "kms:AsymmetricVerify" => "Verify",
        "kms:GetPublicKey" => "GetPublicKey",
        "kms:GenerateMac" => "GenerateMac",
        "kms:VerifyMac" => "VerifyMac",
        "kms:DescribeKey" => "DescribeKey",
        "kms:RetireGrant" => "RetireGrant",
        _ => return None,
    })
}

/// The grant operations a key of this spec and usage supports: what CreateGrant may name for it.
fn supported(spec: KeySpec, usage: KeyUsage, operation: &str) -> bool {
    let own = match (spec.kind(), usage) {
        (SpecKind::Symmetric(_), _) => CONTEXT_OPERATIONS,
        (SpecKind::Asymmetric(_), KeyUsage::EncryptDecrypt) => {
            &["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"][..]
        }
        (SpecKind::Asymmetric(_), _) => &["Sign", "Verify", "GetPublicKey"][..],
        (SpecKind::Hmac(_), _) => &["GenerateMac", "VerifyMac"][..],
    };
    matches!(operation, "DescribeKey" | "CreateGrant" | "RetireGrant") || own.contains(&operation)
}

/// Issues and reads grant tokens under one server's store secret.
pub(super) struct GrantTokens {
    key: Zeroizing<[u8; 32]>,
}

const TOKEN_VERSION: u8 = 1;
const TOKEN_NONCE_LEN: usize = 16;
const TOKEN_TAG_LEN: usize = 16;
const TOKEN_LEN: usize = 1 + 32 + TOKEN_NONCE_LEN + TOKEN_TAG_LEN;

impl GrantTokens {
    /// A key of its own, derived from the store's secret, so a token never doubles as a blob's header tag.
    pub(super) fn new(store_secret: &[u8; 32]) -> GrantTokens {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(store_secret).expect("HMAC takes any key length");
        mac.update(b"kmsim grant tokens v1");
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        GrantTokens { key }
    }

    fn tag(&self, signed: &[u8]) -> [u8; TOKEN_TAG_LEN] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key[..]).expect("HMAC takes any key length");
        mac.update(signed);
        let mut tag = [0u8; TOKEN_TAG_LEN];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..TOKEN_TAG_LEN]);
        tag
    }

    /// A new token for the grant `grant_id` (64 hex digits).
    fn issue(&self, grant_id: &[u8; 32]) -> String {
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.push(TOKEN_VERSION);
        token.extend_from_slice(grant_id);
        token.extend_from_slice(&random_array::<TOKEN_NONCE_LEN>());
        let tag = self.tag(&token);
        token.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
    }

    /// The grant id a token of this server names; `None` for anything else.
    fn read(&self, token: &str) -> Option<String> {
        if token.len() > MAX_GRANT_TOKEN_LEN {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != TOKEN_LEN || bytes[0] != TOKEN_VERSION {
            return None;
        }
        let (signed, tag) = bytes.split_at(TOKEN_LEN - TOKEN_TAG_LEN);
        constant_time_eq(&self.tag(signed), tag).then(|| hex(&signed[1..33]))
    }
}

/// A grant id as AWS writes them: 64 hexadecimal digits.
fn check_grant_id(grant_id: &str) -> KmsResult<()> {
    match grant_id {
        "" => Err(KmsError::missing("GrantId")),
        id if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(KmsError::new(ErrorCode::InvalidGrantId).because("A grant id is 64 hexadecimal digits.")),
    }
}

/// AWS's principal ids: 1 to 256 of letters, digits and `_+=,.@:/-`.
fn check_principal(principal: &str, param: &str) -> KmsResult<()> {
    let allowed = |c: char| c.is_alphanumeric() || "_+=,.@:/-".contains(c);
    if principal.is_empty() || principal.chars().count() > MAX_NAME_LEN || !principal.chars().all(allowed) {
        return Err(KmsError::invalid_because(param, "Name a principal by its ARN, up to 256 characters."));
    }
    Ok(())
}

/// AWS's grant names: 1 to 256 of letters, digits and `:/_-`.
fn check_grant_name(name: &str) -> KmsResult<()> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-');
    if name.len() > MAX_NAME_LEN || !name.bytes().all(allowed) {
        return Err(KmsError::invalid_because("Name", "Use up to 256 letters, digits, ':', '/', '_' or '-'."));
    }
    Ok(())
}

/// The operations a grant names, each once, in the order given; every one must be a grant operation
/// the key supports.
fn checked_operations(key: &Key, operations: Vec<String>) -> KmsResult<Vec<String>> {
    if operations.is_empty() {
        return Err(KmsError::missing("Operations"));
    }
    let mut checked: Vec<String> = Vec::with_capacity(operations.len());
    for operation in operations {
        if !GRANT_OPERATIONS.contains(&operation.as_str()) {
            return Err(KmsError::invalid_because(
                "Operations",
                &format!("{operation} is not a grant operation; use one of {}.", GRANT_OPERATIONS.join(", ")),
            ));
        }
        if !supported(key.meta.spec, key.meta.usage, &operation) {
            return Err(KmsError::invalid_because(
                "Operations",
                &format!("A key of spec {} and usage {} does not support {operation}.", key.meta.spec, key.meta.usage),
            ));
        }
        if !checked.contains(&operation) {
            checked.push(operation);
        }
    }
    Ok(checked)
}

/// Every grant, by key and by id.
#[derive(Debug, Default)]
pub(super) struct GrantBook {
    by_key: HashMap<KeyAddr, BTreeMap<String, Arc<Grant>>>,
    /// Grant id to its key.
    keys: HashMap<String, KeyAddr>,
}

impl GrantBook {
    pub(super) fn new(grants: Vec<Grant>) -> GrantBook {
        let mut book = GrantBook::default();
        for grant in grants {
            book.save(Arc::new(grant));
        }
        book
    }

    pub(super) fn save(&mut self, grant: Arc<Grant>) {
        let addr = (grant.region.clone(), grant.key_id.clone());
        self.keys.insert(grant.grant_id.clone(), addr.clone());
        self.by_key.entry(addr).or_default().insert(grant.grant_id.clone(), grant);
    }

    pub(super) fn remove(&mut self, grant_id: &str) {
        let Some(addr) = self.keys.remove(grant_id) else { return };
        if let Some(grants) = self.by_key.get_mut(&addr) {
            grants.remove(grant_id);
            if grants.is_empty() {
                self.by_key.remove(&addr);
            }
        }
    }

    /// A deleted key's grants go with it.
    pub(super) fn remove_key(&mut self, addr: &KeyAddr) {
        for grant_id in self.by_key.remove(addr).into_iter().flat_map(|grants| grants.into_keys()) {
            self.keys.remove(&grant_id);
        }
    }

    fn get(&self, grant_id: &str) -> Option<Arc<Grant>> {
        let addr = self.keys.get(grant_id)?;
        self.by_key.get(addr)?.get(grant_id).cloned()
    }

    fn of_key(&self, addr: &KeyAddr) -> impl Iterator<Item = &Arc<Grant>> {
        self.by_key.get(addr).into_iter().flat_map(|grants| grants.values())
    }
}

/// Oldest first, then by id: the order listings page in.
fn in_creation_order(mut grants: Vec<Arc<Grant>>) -> Vec<Arc<Grant>> {
    grants.sort_by(|a, b| (a.creation_date, &a.grant_id).cmp(&(b.creation_date, &b.grant_id)));
    grants
}

impl Engine {
    /// Creates a grant on a key, or with a `name` already given to a grant of the same
    /// parameters, answers that grant again with a new token (AWS's idempotent retry).
    pub async fn create_grant(
        &self,
        cx: &CallContext,
        key_name: &str,
        input: GrantInput,
    ) -> KmsResult<Outcome<GrantMade>> {
        let GrantInput {
            grantee_principal,
            retiring_principal,
            operations,
            constraints,
            name,
            issuing_account,
            dry_run,
        } = input;
        check_principal(&grantee_principal, "GranteePrincipal")?;
        if !retiring_principal.is_empty() {
            check_principal(&retiring_principal, "RetiringPrincipal")?;
        }
        check_grant_name(&name)?;
        let constraints = constraints.checked()?;
        let slot = self.resolve(cx, key_name, "KeyId")?;
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        key.allow(KeyOp::Cryptographic)?;
        let operations = checked_operations(&key, operations)?;
        if !constraints.is_empty() && !matches!(key.meta.spec.kind(), SpecKind::Symmetric(_)) {
            return Err(KmsError::invalid_because(
                "Constraints",
                "Encryption context constraints apply only to symmetric encryption keys.",
            ));
        }
        let issuing_account = if issuing_account.is_empty() { self.account_id.clone() } else { issuing_account };
        let addr = (key.meta.region.clone(), key.meta.key_id.clone());
        let book = read_lock(&self.grants);
        let same = |g: &&Arc<Grant>| {
            let mut wanted = operations.clone();
            let mut theirs = g.operations.clone();
            wanted.sort();
            theirs.sort();
            g.name == name
                && g.grantee_principal == grantee_principal
                && g.retiring_principal == retiring_principal
                && g.constraints == constraints
                && g.issuing_account == issuing_account
                && theirs == wanted
        };
        let existing = if name.is_empty() { None } else { book.of_key(&addr).find(same).cloned() };
        if existing.is_none() && book.of_key(&addr).count() >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::new(ErrorCode::LimitExceeded)
                .because(&format!("A key holds at most {MAX_GRANTS_PER_KEY} grants; retire or revoke some.")));
        }
        drop(book);
        if dry_run {
            return Err(ErrorCode::DryRunOperation.into());
        }
        let (grant, changes) = match existing {
            Some(grant) => (grant, Vec::new()),
            None => {
                let grant = Arc::new(Grant {
                    grant_id: hex(&random_array::<32>()),
                    region: key.meta.region.clone(),
                    key_id: key.meta.key_id.clone(),
                    name,
                    grantee_principal,
                    retiring_principal,
                    operations,
                    constraints,
                    issuing_account,
                    creation_date: cx.received_at,
                });
                (grant.clone(), vec![Change::SaveGrant(grant)])
            }
        };
        let id_bytes = crate::audit::chain::unhex::<32>(&grant.grant_id).ok_or_else(KmsError::internal)?;
        cx.trail.response_element("GrantId", grant.grant_id.clone());
        let made = GrantMade {
            grant_id: grant.grant_id.clone(),
            grant_token: self.grant_tokens.issue(&id_bytes),
            key_id: grant.key_id.clone(),
        };
        Ok(Outcome::write(made, changes, vec![gate]))
    }

    /// The grants of a key, oldest first, optionally only one grant or one grantee's.
    pub fn list_grants(
        &self,
        cx: &CallContext,
        key_name: &str,
        (grant_id, grantee_principal): (&str, &str),
        page: Page,
    ) -> KmsResult<Outcome<Paged<Arc<Grant>>>> {
        let key = self.key_for_use(cx, key_name, "KeyId")?;
        key.allow(KeyOp::Inspect)?;
        if !grant_id.is_empty() {
            check_grant_id(grant_id)?;
        }
        let addr = (key.meta.region.clone(), key.meta.key_id.clone());
        let grants: Vec<Arc<Grant>> = read_lock(&self.grants)
            .of_key(&addr)
            .filter(|g| grant_id.is_empty() || g.grant_id == grant_id)
            .filter(|g| grantee_principal.is_empty() || g.grantee_principal == grantee_principal)
            .cloned()
            .collect();
        Ok(Outcome::read(page.slice(in_creation_order(grants))))
    }

    /// The grants of the caller's region that `retiring_principal` may retire, oldest first.
    pub fn list_retirable_grants(
        &self,
        cx: &CallContext,
        retiring_principal: &str,
        page: Page,
    ) -> KmsResult<Outcome<Paged<Arc<Grant>>>> {
        if retiring_principal.is_empty() {
            return Err(KmsError::missing("RetiringPrincipal"));
        }
        check_principal(retiring_principal, "RetiringPrincipal")?;
        let grants: Vec<Arc<Grant>> = read_lock(&self.grants)
            .by_key
            .iter()
            .filter(|((region, _), _)| *region == cx.region)
            .flat_map(|(_, grants)| grants.values())
            .filter(|g| g.retiring_principal == retiring_principal)
            .cloned()
            .collect();
        Ok(Outcome::read(page.slice(in_creation_order(grants))))
    }

    /// Retires a grant named by a token or by its key and id; a grant that is gone is ResourceNotFound.
    pub async fn retire_grant(&self, cx: &CallContext, named: GrantNamed<'_>, dry_run: bool) -> KmsResult<Outcome<()>> {
        let (key_name, grant_id) = match named {
            GrantNamed::Token(token) => {
                let grant_id = self.grant_tokens.read(token).ok_or_else(invalid_token)?;
                let grant = read_lock(&self.grants).get(&grant_id).ok_or_else(no_such_grant)?;
                (grant.key_id.clone(), grant_id)
            }
            GrantNamed::Id { key_id, grant_id } => {
                if key_id.is_empty() && grant_id.is_empty() {
                    return Err(KmsError::missing("GrantToken"));
                }
                if key_id.is_empty() {
                    return Err(KmsError::missing("KeyId"));
                }
                check_grant_id(grant_id)?;
                (key_id.to_owned(), grant_id.to_owned())
            }
        };
        self.remove_grant(cx, &key_name, &grant_id, dry_run).await
    }

    /// Revokes a grant of a key; one that is not there is ResourceNotFound, as AWS answers NotFound.
    pub async fn revoke_grant(
        &self,
        cx: &CallContext,
        key_name: &str,
        grant_id: &str,
        dry_run: bool,
    ) -> KmsResult<Outcome<()>> {
        check_grant_id(grant_id)?;
        self.remove_grant(cx, key_name, grant_id, dry_run).await
    }

    async fn remove_grant(
        &self,
        cx: &CallContext,
        key_name: &str,
        grant_id: &str,
        dry_run: bool,
    ) -> KmsResult<Outcome<()>> {
        let slot = self.resolve(cx, key_name, "KeyId")?;
        let gate = slot.gate.clone().lock_owned().await;
        let key = slot.snapshot();
        cx.trail.key(&key.meta);
        cx.trail.grant(grant_id);
        let grant = read_lock(&self.grants)
            .get(grant_id)
            .filter(|g| g.region == key.meta.region && g.key_id == key.meta.key_id)
            .ok_or_else(no_such_grant)?;
        if dry_run {
            return Err(ErrorCode::DryRunOperation.into());
        }
        let change = Change::RemoveGrant {
            region: grant.region.clone(),
            key_id: grant.key_id.clone(),
            grant_id: grant.grant_id.clone(),
        };
        Ok(Outcome::write((), vec![change], vec![gate]))
    }

    /// Refuses grant tokens that are not this server's (AWS's InvalidGrantTokenException). A token
    /// of a grant since retired is accepted: it permits nothing, as grants alone permit.
    pub fn check_grant_tokens(&self, tokens: &[String]) -> KmsResult<()> {
        if tokens.len() > MAX_GRANT_TOKENS {
            return Err(KmsError::invalid_because("GrantTokens", "Give at most 10 grant tokens."));
        }
        match tokens.iter().all(|token| self.grant_tokens.read(token).is_some()) {
            true => Ok(()),
            false => Err(invalid_token()),
        }
    }

    /// Whether the key's grants let the caller make every one of `uses` of the key `(region, key_id)`.
    /// A RetireGrant is judged on the grant it retires: its retiring principal may, and so may its
    /// grantee when it permits RetireGrant.
    pub(super) fn grants_allow(&self, cx: &CallContext, addr: &KeyAddr, uses: &[&GrantUse]) -> bool {
        if uses.is_empty() {
            return false;
        }
        let book = read_lock(&self.grants);
        uses.iter().all(|use_| match use_.operation {
            "RetireGrant" => {
                let retired = cx.trail.snapshot().grant_id;
                book.get(&retired).filter(|g| (g.region.clone(), g.key_id.clone()) == *addr).is_some_and(|g| {
                    g.names(&g.retiring_principal, &cx.principal, &self.account_id)
                        || g.allows(&cx.principal, &self.account_id, use_)
                })
            }
            _ => book.of_key(addr).any(|g| g.allows(&cx.principal, &self.account_id, use_)),
        })
    }

    /// Makes a committed grant change visible.
    pub(super) fn apply_grant(&self, change: GrantChange) {
        let mut book = write_lock(&self.grants);
        match change {
            GrantChange::Save(grant) => book.save(grant),
            GrantChange::Remove(grant_id) => book.remove(&grant_id),
            GrantChange::RemoveKey(addr) => book.remove_key(&addr),
        }
    }
}

/// The grant changes, split out of [`Change`] for [`Engine::apply_grant`].
pub(super) enum GrantChange {
    Save(Arc<Grant>),
    Remove(String),
    RemoveKey(KeyAddr),
}

fn invalid_token() -> KmsError {
    KmsError::new(ErrorCode::InvalidGrantToken).because("Give grant tokens as CreateGrant answered them.")
}

fn no_such_grant() -> KmsError {
    KmsError::new(ErrorCode::ResourceNotFound).because("The key has no grant with that id.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::engine::{CreateKeyInput, Snapshot};

    const ACCOUNT: &str = "111122223333";

    fn engine() -> Engine {
        Engine::new("1192853035118460".into(), Arc::new(SimClock::default()), [7; 32], Snapshot::default())
    }

    fn cx(engine: &Engine) -> CallContext {
        CallContext::internal("us-east-1", engine.account_id(), engine.clock().now())
    }

    fn as_user(engine: &Engine, name: &str) -> CallContext {
        let mut cx = cx(engine);
        cx.principal = Principal::User { name: name.into(), user_id: "1".into() };
        cx
    }

    fn create_key(engine: &Engine, key_spec: &str) -> String {
        let input = CreateKeyInput { key_spec: key_spec.into(), ..CreateKeyInput::default() };
        let outcome = engine.create_key(&cx(engine), input).unwrap();
        let id = outcome.value.meta.key_id.clone();
        engine.apply(outcome.changes);
        id
    }

    fn input(operations: &[&str]) -> GrantInput {
        GrantInput {
            grantee_principal: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
            retiring_principal: format!("arn:aws:iam::{ACCOUNT}:user/ops"),
            operations: operations.iter().map(|o| (*o).to_owned()).collect(),
            issuing_account: ACCOUNT.into(),
            ..GrantInput::default()
        }
    }

    /// Commits an outcome as the kernel would, releasing its gates.
    fn applied<T>(engine: &Engine, outcome: Outcome<T>) -> T {
        let Outcome { value, changes, .. } = outcome;
        engine.apply(changes);
        value
    }

    async fn grant(engine: &Engine, key_id: &str, input: GrantInput) -> GrantMade {
        applied(engine, engine.create_grant(&cx(engine), key_id, input).await.unwrap())
    }

    fn listed(engine: &Engine, key_id: &str) -> Vec<String> {
        let page = Page::from_request(0, 100).unwrap();
        let paged = engine.list_grants(&cx(engine), key_id, ("", ""), page).unwrap().value;
        paged.items.iter().map(|g| g.grant_id.clone()).collect()
    }

    fn use_of(engine: &Engine, key_id: &str, operation: &'static str, context: &[(&str, &str)]) -> GrantUse {
        let context = context.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let key_arn = crate::engine::key::key_arn("us-east-1", engine.account_id(), key_id);
        GrantUse { key_arn, operation, context: Some(context) }
    }

    fn allowed(engine: &Engine, cx: &CallContext, key_id: &str, use_: &GrantUse) -> bool {
        engine.grants_allow(cx, &("us-east-1".to_owned(), key_id.to_owned()), &[use_])
    }

    #[tokio::test]
    async fn a_grant_is_made_listed_retired_by_token_and_revoked() {
        let engine = engine();
        let key = create_key(&engine, "");
        let first = grant(&engine, &key, input(&["Encrypt", "Decrypt", "Encrypt"])).await;
        assert_eq!(first.grant_id.len(), 64);
        assert!(first.grant_id.bytes().all(|b| b.is_ascii_hexdigit()));
        let second = grant(&engine, &key, input(&["DescribeKey"])).await;
        assert_eq!(listed(&engine, &key), {
            let mut both = vec![first.grant_id.clone(), second.grant_id.clone()];
            both.sort();
            both
        });
        let page = Page::from_request(0, 100).unwrap();
        let one = engine.list_grants(&cx(&engine), &key, (&first.grant_id, ""), page).unwrap().value;
        assert_eq!(one.items[0].operations, ["Encrypt", "Decrypt"], "each operation once, in the order given");
        let retirable = engine.list_retirable_grants(&cx(&engine), &input(&[]).retiring_principal, page).unwrap();
        assert_eq!(retirable.value.total, 2);

        applied(
            &engine,
            engine.retire_grant(&cx(&engine), GrantNamed::Token(&first.grant_token), false).await.unwrap(),
        );
        assert_eq!(listed(&engine, &key), std::slice::from_ref(&second.grant_id));
        let again = engine.retire_grant(&cx(&engine), GrantNamed::Token(&first.grant_token), false).await;
        assert_eq!(again.unwrap_err().code, ErrorCode::ResourceNotFound);

        applied(&engine, engine.revoke_grant(&cx(&engine), &key, &second.grant_id, false).await.unwrap());
        assert!(listed(&engine, &key).is_empty());
        let gone = engine.revoke_grant(&cx(&engine), &key, &second.grant_id, false).await.unwrap_err();
        assert_eq!(gone.code, ErrorCode::ResourceNotFound);
        let malformed = engine.revoke_grant(&cx(&engine), &key, "not-a-grant-id", false).await.unwrap_err();
        assert_eq!(malformed.code, ErrorCode::InvalidGrantId);
    }

    #[tokio::test]
    async fn a_named_retry_answers_the_same_grant_with_a_new_token_and_both_tokens_are_good() {
        let engine = engine();
        let key = create_key(&engine, "");
        let named = GrantInput { name: "app-retry".into(), ..input(&["Encrypt", "Decrypt"]) };
        let first = grant(&engine, &key, named.clone()).await;
        let reordered = GrantInput { operations: vec!["Decrypt".into(), "Encrypt".into()], ..named.clone() };
        let retry = grant(&engine, &key, reordered).await;
        assert_eq!(retry.grant_id, first.grant_id);
        assert_ne!(retry.grant_token, first.grant_token, "every CreateGrant answers a new token");
        engine.check_grant_tokens(&[first.grant_token.clone(), retry.grant_token.clone()]).unwrap();
        let other = grant(&engine, &key, GrantInput { operations: vec!["Encrypt".into()], ..named }).await;
        assert_ne!(other.grant_id, first.grant_id, "the same name with other parameters is another grant");
        let unnamed = grant(&engine, &key, input(&["Encrypt"])).await;
        let unnamed_again = grant(&engine, &key, input(&["Encrypt"])).await;
        assert_ne!(unnamed.grant_id, unnamed_again.grant_id, "without a name every call makes a grant");
    }

    #[tokio::test]
    async fn tokens_are_refused_unless_this_server_issued_them() {
        let engine = engine();
        let key = create_key(&engine, "");
        let made = grant(&engine, &key, input(&["Encrypt"])).await;
        let mut forged = made.grant_token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for bad in ["", "not a token", forged.as_str()] {
            let error = engine.check_grant_tokens(&[made.grant_token.clone(), bad.to_owned()]).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidGrantToken, "{bad:?}");
        }
        let elsewhere = Engine::new("1".into(), Arc::new(SimClock::default()), [8; 32], Snapshot::default());
        assert_eq!(elsewhere.check_grant_tokens(&[made.grant_token]).unwrap_err().code, ErrorCode::InvalidGrantToken);
        let eleven = vec![String::new(); 11];
        assert_eq!(engine.check_grant_tokens(&eleven).unwrap_err().code, ErrorCode::InvalidParameter);
    }

    #[tokio::test]
    async fn operations_must_suit_the_key_and_constraints_only_symmetric_keys() {
        let engine = engine();
        let symmetric = create_key(&engine, "");
        let hmac = create_key(&engine, "HMAC_256");
        let refused = |result: KmsResult<Outcome<GrantMade>>| result.unwrap_err();
        let unknown = refused(engine.create_grant(&cx(&engine), &symmetric, input(&["Encrypt", "Fly"])).await);
        assert!(unknown.message.contains("Fly is not a grant operation"), "{}", unknown.message);
        let sign = refused(engine.create_grant(&cx(&engine), &symmetric, input(&["Sign"])).await);
        assert!(sign.message.contains("does not support Sign"), "{}", sign.message);
        grant(&engine, &hmac, input(&["GenerateMac", "VerifyMac", "DescribeKey"])).await;
        let context = Context::from([("app".to_owned(), "x".to_owned())]);
        let constrained = GrantInput {
            constraints: GrantConstraints { encryption_context_subset: Some(context.clone()), ..Default::default() },
            ..input(&["GenerateMac"])
        };
        let on_hmac = refused(engine.create_grant(&cx(&engine), &hmac, constrained).await);
        assert!(on_hmac.message.contains("Constraints"), "{}", on_hmac.message);
        let both = GrantConstraints {
            encryption_context_subset: Some(context.clone()),
            encryption_context_equals: Some(context),
        };
        let both = refused(
            engine
                .create_grant(&cx(&engine), &symmetric, GrantInput { constraints: both, ..input(&["Encrypt"]) })
                .await,
        );
        assert!(both.message.contains("not both"), "{}", both.message);
        let nameless = GrantInput { grantee_principal: String::new(), ..input(&["Encrypt"]) };
        assert!(
            refused(engine.create_grant(&cx(&engine), &symmetric, nameless).await).message.contains("GranteePrincipal")
        );
        let bad_name = GrantInput { name: "no spaces".into(), ..input(&["Encrypt"]) };
        assert!(refused(engine.create_grant(&cx(&engine), &symmetric, bad_name).await).message.contains("Name"));
    }

    #[tokio::test]
    async fn a_grant_follows_the_key_state_table_and_dry_runs_change_nothing() {
        let engine = engine();
        let key = create_key(&engine, "");
        let dry = engine.create_grant(&cx(&engine), &key, GrantInput { dry_run: true, ..input(&["Encrypt"]) }).await;
        assert_eq!(dry.unwrap_err().code, ErrorCode::DryRunOperation);
        assert!(listed(&engine, &key).is_empty());
        applied(&engine, engine.set_key_enabled(&cx(&engine), &key, false).await.unwrap());
        let refused = engine.create_grant(&cx(&engine), &key, input(&["Encrypt"])).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Disabled);
    }

    #[tokio::test]
    async fn a_keys_grants_are_bounded_and_die_with_the_key() {
        let engine = engine();
        let key = create_key(&engine, "");
        let made = grant(&engine, &key, input(&["Encrypt"])).await;
        let template = read_lock(&engine.grants).get(&made.grant_id).unwrap();
        for n in 1..MAX_GRANTS_PER_KEY {
            let filler = Grant { grant_id: format!("{n:064x}"), ..(*template).clone() };
            write_lock(&engine.grants).save(Arc::new(filler));
        }
        let full = engine.create_grant(&cx(&engine), &key, input(&["Encrypt"])).await.unwrap_err();
        assert_eq!(full.code, ErrorCode::LimitExceeded);

        engine.apply(vec![Change::DeleteKey { region: "us-east-1".into(), key_id: key.clone() }]);
        assert!(read_lock(&engine.grants).get(&made.grant_id).is_none());
        assert!(read_lock(&engine.grants).keys.is_empty());
    }

    #[tokio::test]
    async fn a_grant_permits_its_grantee_its_operations_within_its_constraint() {
        let engine = engine();
        let key = create_key(&engine, "");
        let subset = Context::from([("App".to_owned(), "billing".to_owned())]);
        let constrained = GrantInput {
            constraints: GrantConstraints { encryption_context_subset: Some(subset), ..Default::default() },
            ..input(&["Encrypt", "DescribeKey"])
        };
        grant(&engine, &key, constrained).await;
        let alice = as_user(&engine, "alice");
        let encrypt = |context: &[(&str, &str)]| use_of(&engine, &key, "Encrypt", context);
        assert!(
            allowed(&engine, &alice, &key, &encrypt(&[("app", "billing"), ("more", "x")])),
            "keys match in any case"
        );
        assert!(!allowed(&engine, &alice, &key, &encrypt(&[("app", "Billing")])), "values match exactly");
        assert!(!allowed(&engine, &alice, &key, &encrypt(&[])));
        assert!(allowed(&engine, &alice, &key, &use_of(&engine, &key, "DescribeKey", &[])), "no context to constrain");
        assert!(!allowed(&engine, &alice, &key, &use_of(&engine, &key, "Decrypt", &[("app", "billing")])));
        let bob = as_user(&engine, "bob");
        assert!(!allowed(&engine, &bob, &key, &encrypt(&[("app", "billing")])), "only the grantee");
        assert!(!allowed(&engine, &cx(&engine), &key, &encrypt(&[("app", "billing")])));

        let equals = GrantConstraints {
            encryption_context_equals: Some(Context::from([("a".to_owned(), "1".to_owned())])),
            ..Default::default()
        };
        assert!(equals.admit(&Context::from([("A".to_owned(), "1".to_owned())])));
        assert!(!equals.admit(&Context::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())])));
        assert!(GrantConstraints::default().admit(&Context::new()));
    }

    #[test]
    fn a_principal_is_named_by_its_iam_user_arn_in_the_issuing_account_or_its_ram_arn() {
        let grant = Grant {
            grant_id: String::new(),
            region: String::new(),
            key_id: String::new(),
            name: String::new(),
            grantee_principal: String::new(),
            retiring_principal: String::new(),
            operations: Vec::new(),
            constraints: GrantConstraints::default(),
            issuing_account: ACCOUNT.into(),
            creation_date: SimTime(0),
        };
        let alice = Principal::User { name: "alice".into(), user_id: "1".into() };
        assert!(grant.names("arn:aws:iam::111122223333:user/alice", &alice, "99"));
        assert!(grant.names("arn:aws:iam::111122223333:user/team/alice", &alice, "99"));
        assert!(grant.names("acs:ram::99:user/alice", &alice, "99"));
        assert!(!grant.names("arn:aws:iam::444455556666:user/alice", &alice, "99"));
        assert!(!grant.names("arn:aws:iam::111122223333:user/malice", &alice, "99"));
        assert!(!grant.names("arn:aws:iam::111122223333:role/alice", &alice, "99"));
        let aap = Principal::Aap { name: "app".into(), arn: "acs:kms:r:99:aap/app".into() };
        assert!(grant.names("acs:kms:r:99:aap/app", &aap, "99"));
        assert!(!grant.names("arn:aws:iam::111122223333:user/alice", &Principal::Admin, "99"));
    }
}
