//! Who is calling, and may they: the kernel's half of access control.
//!
//! Each front end checks its own wire credentials (a signature, a client
//! certificate) against the credentials kmsim holds, which [`Identity::lookup`]
//! hands it, and presents the result ([`Presented`]). From there the rules
//! are the same for every front end.
//!
//! With `--auth off` (the default) nothing is refused: a caller may name
//! itself with an AccessKey id and its records say so, with the identity
//! kmsim knows for that id if it knows one. With `--auth required`:
//!
//! 1. Before the operation runs, the call must come with a verified
//!    credential that is enabled and valid. The simulation and
//!    access-management services are for the admin only (GetCallerIdentity
//!    is open to all).
//! 2. Before the operation runs, if the call names everything it touches,
//!    the caller's policies and the keys' policies must allow the action on
//!    it, so that a caller with no permission cannot make the server do
//!    expensive work (generate an RSA key) only to be refused.
//! 3. After the operation has resolved what it touches (which key, through
//!    which alias) and before anything is committed, the same check on what
//!    it resolved.
//!
//! Where policies leave a use of a key undecided (no Allow, no Deny), the
//! key's grants may allow it: each use the call makes of a key is put as the
//! grant operation it is, with the encryption context the request gives
//! ([`GrantUse`]), and the engine judges it with the policies, in one place.
//!
//! A refusal at any point is audited like any failure, with the caller's
//! identity, and changes nothing.

use super::catalogue::{OpSpec, ReadWrite, ServiceName, product};
use super::meta::Presented;
use super::operation::Names;
use crate::context::{CallContext, Principal};
use crate::credentials::Credentials;
use crate::engine::access::Credential;
use crate::engine::grants::grant_operation;
use crate::engine::key::key_arn;
use crate::engine::secrets::secret_arn;
use crate::engine::{Engine, ErrorCode, GrantUse, KmsResult};

/// `--auth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Callers are taken at their word and nothing is refused.
    #[default]
    Off,
    /// Every call is authenticated and authorised.
    Required,
}

impl AuthMode {
    pub fn parse(text: &str) -> Option<AuthMode> {
        match text {
            "off" => Some(AuthMode::Off),
            "required" => Some(AuthMode::Required),
            _ => None,
        }
    }
}

pub struct Identity {
    mode: AuthMode,
    admin: Option<Credentials>,
}

impl Identity {
    pub fn new(mode: AuthMode, admin: Option<Credentials>) -> Identity {
        Identity { mode, admin }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The credential `id` names, for a front end to check a signature
    /// against: the admin's, or an AccessKey or ClientKey.
    pub fn lookup(&self, engine: &Engine, id: &str, cx_time: crate::clock::SimTime) -> Option<Credential> {
        match &self.admin {
            Some(admin) if admin.access_key_id == id => Some(Credential {
                secret: Some(admin.secret.clone()),
                public_key: String::new(),
                principal: Principal::Admin,
                refusal: None,
            }),
            _ => engine.credential(id, cx_time),
        }
    }

    /// Establishes in `cx` who the call is from, from what its front end
    /// presented, or the error it is refused with (`cx` then carries the id
    /// it claimed, unverified).
    pub fn authenticate(&self, engine: &Engine, presented: Presented, cx: &mut CallContext) -> KmsResult<()> {
        cx.access_key_id = presented.access_key_id().to_owned();
        cx.principal = match (cx.access_key_id.is_empty(), self.mode) {
            (true, AuthMode::Off) => Principal::Account,
            (true, AuthMode::Required) => Principal::Anonymous,
            (false, _) => Principal::Unverified,
        };
        // An instance authenticates every call, whatever --auth says.
        let mode = if cx.served_by_instance.is_some() { AuthMode::Required } else { self.mode };
        match (presented, mode) {
            (Presented::Nothing, AuthMode::Off) => Ok(()),
            // With auth off a call is taken at its word, whatever its front end made of the credential.
            (Presented::Claimed(id) | Presented::Rejected { access_key_id: id, .. }, AuthMode::Off) => {
                if let Some(credential) = self.lookup(engine, &id, cx.received_at) {
                    cx.principal = credential.principal;
                }
                Ok(())
            }
            (Presented::Verified { credential, by, .. }, mode) => {
                if let (Some(refusal), AuthMode::Required) = (credential.refusal, mode) {
                    return Err(refusal);
                }
                cx.principal = credential.principal;
                cx.authenticated_by = by;
                Ok(())
            }
            (Presented::Rejected { error, .. }, AuthMode::Required) => Err(error),
            // A front end that presents no verdict under auth required has not verified anything.
            (Presented::Nothing | Presented::Claimed(_), AuthMode::Required) => {
                Err(ErrorCode::SignatureNotMatch.into())
            }
        }
    }

    /// Before the operation: services only the admin may call.
    pub fn admit_service(&self, op: &OpSpec, cx: &CallContext) -> KmsResult<()> {
        let admin_only = matches!(op.service, ServiceName::KmsimSimulation | ServiceName::KmsimAccess)
            && *op != OpSpec::GET_CALLER_IDENTITY;
        if self.mode == AuthMode::Required && admin_only && cx.principal != Principal::Admin {
            return Err(ErrorCode::NoPermission.into());
        }
        Ok(())
    }

    /// Before the operation, for a call that names all it touches: whether the
    /// caller may do it on what it names. A named key is judged by the key it
    /// resolves to, as afterwards; one that resolves to nothing is left to the
    /// operation, which fails on it (and is judged afterwards like any failure).
    pub fn preauthorize(&self, engine: &Engine, op: &OpSpec, cx: &CallContext, names: &Names) -> KmsResult<()> {
        if !names.up_front || !self.checks(cx) {
            return Ok(());
        }
        let Some(product) = product(op.service) else { return Ok(()) };
        let mut arns = Vec::new();
        if let Some(key) = &names.key {
            match engine.key_arn_of(cx, key) {
                Some(arn) => arns.push(arn),
                None => return Ok(()),
            }
        }
        let uses = grant_uses(op, names, arns.first(), &[]);
        judge(engine, op, cx, names, product, arns, &uses)
    }

    /// After the operation: whether the caller's policies, and the policies of
    /// the keys it touched, allow it.
    pub fn authorize(&self, engine: &Engine, op: &OpSpec, cx: &CallContext, names: &Names) -> KmsResult<()> {
        if !self.checks(cx) {
            return Ok(());
        }
        let Some(product) = product(op.service) else { return Ok(()) };
        let facts = cx.trail.snapshot();
        if !facts.batch.is_empty() {
            return engine.authorize(cx, op.ram_action, &facts.batch, &[]);
        }
        // A secret call is authorised on its secret alone, not on the key that seals it.
        if !facts.secret_arn.is_empty() {
            return engine.authorize(cx, op.ram_action, &[facts.secret_arn], &[]);
        }
        let main = Some(facts.key_arn).filter(|a| !a.is_empty());
        let main = main.or_else(|| names.key.as_deref().map(|key| named_key_arn(engine.account_id(), &cx.region, key)));
        let uses = grant_uses(op, names, main.as_ref(), &facts.referenced_keys);
        let arns: Vec<String> = main.into_iter().chain(facts.referenced_keys).collect();
        judge(engine, op, cx, names, product, arns, &uses)
    }

    /// Whether any call's permissions are judged (auth is required).
    pub fn judges_permissions(&self) -> bool {
        self.mode == AuthMode::Required
    }

    /// Whether policies apply to this caller at all.
    fn checks(&self, cx: &CallContext) -> bool {
        (self.judges_permissions() || cx.served_by_instance.is_some())
            && matches!(cx.principal, Principal::User { .. } | Principal::Aap { .. })
    }
}

/// Whether the caller may do `op` on the keys `arns` and on what else the call
/// names: the alias it manages, the secret it names; failing all of those, what
/// it creates (`key/*` for CreateKey) or everything of the product in the region.
fn judge(
    engine: &Engine,
    op: &OpSpec,
    cx: &CallContext,
    names: &Names,
    product: &str,
    mut arns: Vec<String>,
    uses: &[GrantUse],
) -> KmsResult<()> {
    let (region, account) = (cx.region.as_str(), engine.account_id());
    arns.extend(names.alias.as_deref().map(|alias| format!("acs:kms:{region}:{account}:{alias}")));
    arns.extend(names.secret.as_deref().map(|name| secret_arn(region, account, name)));
    if arns.is_empty() {
        arns.push(match op.resource_type {
            "kms_key" if op.rw == ReadWrite::Write => format!("acs:{product}:{region}:{account}:key/*"),
            _ => format!("acs:{product}:{region}:{account}:*"),
        });
    }
    engine.authorize(cx, op.ram_action, &arns, uses)
}

/// The uses a call makes of its keys that a grant could permit: of its own key
/// (`main`) with the request's context, and of the keys it read from (ReEncrypt's
/// source) with the context their ciphertext was sealed under.
fn grant_uses(op: &OpSpec, names: &Names, main: Option<&String>, sources: &[String]) -> Vec<GrantUse> {
    let use_of = |arn: &String, as_source: bool, context: &Option<_>| {
        let operation = grant_operation(op.ram_action, as_source)?;
        Some(GrantUse { key_arn: arn.clone(), operation, context: Clone::clone(context) })
    };
    let main = main.and_then(|arn| use_of(arn, false, &names.encryption_context));
    let sources = sources.iter().filter_map(|arn| use_of(arn, true, &names.source_encryption_context));
    main.into_iter().chain(sources).collect()
}

/// The ARN a key named by id, ARN or alias goes by when it is not (yet) resolved.
fn named_key_arn(account: &str, region: &str, key: &str) -> String {
    match key {
        arn if arn.starts_with("acs:") => arn.to_owned(),
        alias if alias.starts_with("alias/") => format!("acs:kms:{region}:{account}:{alias}"),
        id => key_arn(region, account, id),
    }
}
