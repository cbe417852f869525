//! The domain: keys and their versions, aliases, tags, the key-state machine
//! and the cryptography. Pure Rust: no gRPC, no SQL.
//!
//! Every operation takes a [`CallContext`] and returns an [`Outcome`]: the
//! answer plus the [`Change`]s it wants made. The dispatcher commits those
//! changes together with the call's audit record and only then calls
//! [`Engine::apply`], so memory never runs ahead of the store. Mutations of one
//! key (or one alias name) are serialised by a per-resource gate that the
//! outcome holds until the change is applied; reads never wait on a gate.

pub mod access;
mod alerts;
mod asymmetric;
pub mod crypto;
pub mod error;
mod export;
pub mod grants;
mod import;
pub mod instances;
pub mod key;
mod keys;
mod lifecycle;
mod mac;
mod multi_region;
mod paging;
pub mod permissions;
pub mod policy;
mod reset;
pub mod secrets;
mod seed;
mod symmetric;
mod sync;
pub mod tags;
mod versions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, OwnedMutexGuard};

pub use self::access::{AccessEntity, AccessKind};
pub use self::asymmetric::{PublicKey, SignRequest, UnderKey};
use self::crypto::ciphertext::BlobCodec;
pub use self::error::{ErrorCode, KmsError, KmsResult};
pub use self::export::{ExportTo, Exported};
pub use self::grants::{Grant, GrantConstraints, GrantInput, GrantMade, GrantNamed, GrantUse};
pub use self::import::{ImportParameters, ImportToken};
pub use self::instances::{CreateInstanceInput, Instance};
use self::key::{Key, KeyVersion};
pub use self::keys::{AliasRecord, CreateKeyInput, KeyListing};
pub use self::lifecycle::{Agenda, CATCH_UP_DAYS, DueItem, DueTask, next_occurrence};
pub use self::multi_region::{KeyDescription, MultiRegionConfiguration, ReplicaInput, Replicated};
pub use self::paging::{Page, Paged};
pub use self::reset::Emptied;
pub use self::secrets::{CreateSecretInput, PasswordRules, Secret, SecretValue};
pub use self::seed::{SeedItem, SeedReport};
pub use self::symmetric::{DataKey, DataKeyPair, Opened, Reencrypted, Sealed};
pub use self::sync::{TaskDone, TaskFault};
pub use self::versions::{Rotation, VersionInfo};
use crate::clock::{SimClock, SimTime};
use crate::context::CallContext;
use crate::events::webhook::Subscription;
use crate::events::{EventBus, SystemEvent};

/// Why a clock move is refused that would take the clock past [`SimTime::END`].
const PAST_THE_END: &str = "The clock cannot pass 9999-12-31T23:59:59Z, the last instant a timestamp can say.";

/// A durable change an operation asks for; applied to memory only after it is committed.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace a key's metadata; `new_versions` are versions the key gained.
    SaveKey {
        key: Arc<Key>,
        new_versions: Vec<Arc<KeyVersion>>,
    },
    SaveAlias(AliasRecord),
    RemoveAlias {
        region: String,
        alias_name: String,
    },
    SetClockOffset(i64),
    SaveImportToken(Arc<ImportToken>),
    /// The key of `region`, its versions and grants, and (with the last copy of the key) its import tokens are
    /// destroyed.
    DeleteKey {
        region: String,
        key_id: String,
    },
    SaveInstance(Arc<Instance>),
    /// Insert a grant, or replace it with the same id.
    SaveGrant(Arc<Grant>),
    /// A grant is retired or revoked.
    RemoveGrant {
        region: String,
        key_id: String,
        grant_id: String,
    },
    /// Insert or replace a secret with every version it keeps.
    SaveSecret(Arc<Secret>),
    /// The secret and its versions are destroyed.
    DeleteSecret {
        region: String,
        secret_name: String,
    },
    /// Insert or replace a user, AccessKey, policy, AAP, ClientKey or network rule.
    SaveAccess(AccessEntity),
    RemoveAccess {
        kind: AccessKind,
        id: String,
    },
    /// A system event: stored, then broadcast.
    Emit(Arc<SystemEvent>),
    SaveSubscription(Arc<Subscription>),
    RemoveSubscription {
        subscription_id: String,
    },
    /// Audit records older than `cutoff` go (retention); the store keeps the chain verifiable.
    PruneAudit {
        cutoff: SimTime,
    },
    /// System events older than `cutoff` go (retention).
    PruneEvents {
        cutoff: SimTime,
    },
}

/// What an operation produced: its answer, the changes to commit, and the
/// gates to hold until those changes are applied.
#[derive(Debug)]
pub struct Outcome<T> {
    pub value: T,
    pub changes: Vec<Change>,
    pub gates: Vec<Gate>,
    /// Work that failed but whose failure is itself a change to commit (a key
    /// sync that ends in its failure event): the caller sees this error and
    /// the changes are committed all the same.
    pub failed: Option<KmsError>,
}

/// Exclusive right to change one resource; released when dropped.
pub type Gate = OwnedMutexGuard<()>;

impl<T> Outcome<T> {
    pub fn read(value: T) -> Self {
        Outcome { value, changes: Vec::new(), gates: Vec::new(), failed: None }
    }

    pub fn write(value: T, changes: Vec<Change>, gates: Vec<Gate>) -> Self {
        Outcome { value, changes, gates, failed: None }
    }

    /// Marks the work failed with `error`; its changes still commit.
    pub fn failing(mut self, error: Option<KmsError>) -> Self {
        self.failed = error;
        self
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome { value: f(self.value), changes: self.changes, gates: self.gates, failed: self.failed }
    }
}

/// The state the engine starts from: whatever the store holds.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub keys: Vec<Key>,
    pub aliases: Vec<AliasRecord>,
    pub import_tokens: Vec<ImportToken>,
    pub subscriptions: Vec<Subscription>,
    pub instances: Vec<Instance>,
    pub access: Vec<AccessEntity>,
    pub secrets: Vec<Secret>,
    pub grants: Vec<Grant>,
}

/// The simulated KMS of one account.
pub struct Engine {
    account_id: String,
    clock: Arc<SimClock>,
    blobs: BlobCodec,
    grant_tokens: grants::GrantTokens,
    /// Keys by (region, key id): a replica shares its primary's id in another region.
    keys: RwLock<HashMap<KeyAddr, Arc<KeySlot>>>,
    /// (region, alias name) to key id.
    aliases: RwLock<HashMap<(String, String), AliasRecord>>,
    alias_gates: GateTable,
    clock_gate: Arc<Mutex<()>>,
    import_tokens: RwLock<HashMap<String, Arc<ImportToken>>>,
    subscriptions: RwLock<BTreeMap<String, Arc<Subscription>>>,
    instances: RwLock<BTreeMap<String, Arc<Instance>>>,
    /// Every key's grants; changed under the key's gate.
    grants: RwLock<grants::GrantBook>,
    /// Users, AccessKeys, policies, AAPs, ClientKeys and network rules.
    access: RwLock<access::AccessBook>,
    /// Serialises changes to identities and policies (they are few and rare).
    access_gate: Arc<Mutex<()>>,
    /// Secrets by (region, name).
    secrets: RwLock<HashMap<(String, String), Arc<Secret>>>,
    /// Serialises changes to one secret, by `region/name`.
    secret_gates: GateTable,
    /// Serialises seeds, which may touch every kind of resource at once.
    seed_gate: Arc<Mutex<()>>,
    agenda: Agenda,
    events: EventBus,
}

/// Where a key lives: (region, key id).
type KeyAddr = (String, String);

fn key_addr(meta: &key::KeyMeta) -> KeyAddr {
    (meta.region.clone(), meta.key_id.clone())
}

struct KeySlot {
    gate: Arc<Mutex<()>>,
    current: RwLock<Arc<Key>>,
}

impl KeySlot {
    fn new(key: Arc<Key>) -> Self {
        KeySlot { gate: Arc::new(Mutex::new(())), current: RwLock::new(key) }
    }

    fn snapshot(&self) -> Arc<Key> {
        read_lock(&self.current).clone()
    }
}

impl Engine {
    /// `blob_secret` keys the header tag of ciphertext blobs; it must survive restarts.
    pub fn new(account_id: String, clock: Arc<SimClock>, blob_secret: [u8; 32], snapshot: Snapshot) -> Self {
        let keys = snapshot.keys.into_iter().map(|k| (key_addr(&k.meta), Arc::new(KeySlot::new(Arc::new(k)))));
        let aliases = snapshot.aliases.into_iter().map(|a| ((a.region.clone(), a.alias_name.clone()), a));
        let tokens = snapshot.import_tokens.into_iter().map(|t| (t.token.clone(), Arc::new(t)));
        let subscriptions = snapshot.subscriptions.into_iter().map(|s| (s.subscription_id.clone(), Arc::new(s)));
        let instances = snapshot.instances.into_iter().map(|i| (i.instance_id.clone(), Arc::new(i)));
        let secrets = snapshot.secrets.into_iter().map(|s| ((s.region.clone(), s.name.clone()), Arc::new(s)));
        let engine = Engine {
            account_id,
            clock,
            blobs: BlobCodec::new(blob_secret),
            grant_tokens: grants::GrantTokens::new(&blob_secret),
            keys: RwLock::new(keys.collect()),
            aliases: RwLock::new(aliases.collect()),
            alias_gates: GateTable::default(),
            clock_gate: Arc::new(Mutex::new(())),
            import_tokens: RwLock::new(tokens.collect()),
            subscriptions: RwLock::new(subscriptions.collect()),
            instances: RwLock::new(instances.collect()),
            grants: RwLock::new(grants::GrantBook::new(snapshot.grants)),
            access: RwLock::new(access::AccessBook::new(snapshot.access)),
            access_gate: Arc::new(Mutex::new(())),
            secrets: RwLock::new(secrets.collect()),
            secret_gates: GateTable::default(),
            seed_gate: Arc::new(Mutex::new(())),
            agenda: Agenda::default(),
            events: EventBus::default(),
        };
        for slot in read_lock(&engine.keys).values() {
            engine.schedule_key(&slot.snapshot().meta);
        }
        for instance in read_lock(&engine.instances).values() {
            engine.schedule_instance(instance);
        }
        for secret in read_lock(&engine.secrets).values() {
            engine.schedule_secret(secret);
        }
        for client_key in engine.list_client_keys("") {
            engine.schedule_client_key(&client_key);
        }
        engine
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// The clock itself, for what must keep it beyond a borrow of the engine.
    pub fn shared_clock(&self) -> Arc<SimClock> {
        self.clock.clone()
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Makes committed changes visible. Called by the dispatcher after the store commit.
    pub fn apply(&self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::SaveKey { key, .. } => {
                    self.schedule_key(&key.meta);
                    let addr = key_addr(&key.meta);
                    let existing = read_lock(&self.keys).get(&addr).cloned();
                    match existing {
                        Some(slot) => *write_lock(&slot.current) = key,
                        None => {
                            write_lock(&self.keys).insert(addr, Arc::new(KeySlot::new(key)));
                        }
                    }
                }
                Change::SaveAlias(alias) => {
                    write_lock(&self.aliases).insert((alias.region.clone(), alias.alias_name.clone()), alias);
                }
                Change::RemoveAlias { region, alias_name } => {
                    write_lock(&self.aliases).remove(&(region, alias_name));
                }
                Change::SetClockOffset(offset) => {
                    self.clock.set_offset(offset);
                    self.agenda.clock_moved();
                }
                Change::SaveImportToken(token) => {
                    write_lock(&self.import_tokens).insert(token.token.clone(), token);
                }
                Change::DeleteKey { region, key_id } => {
                    self.apply_grant(grants::GrantChange::RemoveKey((region.clone(), key_id.clone())));
                    let mut keys = write_lock(&self.keys);
                    keys.remove(&(region, key_id.clone()));
                    if !keys.keys().any(|(_, id)| *id == key_id) {
                        write_lock(&self.import_tokens).retain(|_, token| token.key_id != key_id);
                    }
                }
                Change::SaveInstance(instance) => {
                    self.schedule_instance(&instance);
                    write_lock(&self.instances).insert(instance.instance_id.clone(), instance);
                }
                Change::SaveGrant(grant) => self.apply_grant(grants::GrantChange::Save(grant)),
                Change::RemoveGrant { grant_id, .. } => self.apply_grant(grants::GrantChange::Remove(grant_id)),
                Change::SaveSecret(secret) => {
                    self.schedule_secret(&secret);
                    write_lock(&self.secrets).insert((secret.region.clone(), secret.name.clone()), secret);
                }
                Change::DeleteSecret { region, secret_name } => {
                    write_lock(&self.secrets).remove(&(region, secret_name));
                }
                Change::SaveAccess(entity) => self.apply_access(access::AccessChange::Save(entity)),
                Change::RemoveAccess { kind, id } => self.apply_access(access::AccessChange::Remove(kind, id)),
                Change::Emit(event) => self.events.publish(event),
                Change::SaveSubscription(subscription) => {
                    write_lock(&self.subscriptions).insert(subscription.subscription_id.clone(), subscription);
                }
                Change::RemoveSubscription { subscription_id } => {
                    write_lock(&self.subscriptions).remove(&subscription_id);
                }
                Change::PruneAudit { .. } | Change::PruneEvents { .. } => {}
            }
        }
    }

    /// Moves the simulation clock forward by `by`; answers the offset it will
    /// have. A move past [`SimTime::END`] is InvalidParameter.
    pub async fn advance_clock(&self, by: std::time::Duration) -> KmsResult<Outcome<i64>> {
        let gate = self.clock_gate.clone().lock_owned().await;
        let offset = self.clock.offset_after(by);
        let by_ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        if !SimClock::can_reach(SimTime(self.clock.now().0.saturating_add(by_ms))) {
            return Err(KmsError::invalid_because("Advance", PAST_THE_END));
        }
        Ok(Outcome::write(offset, vec![Change::SetClockOffset(offset)], vec![gate]))
    }

    /// Moves the simulation clock forward to `to`; earlier than now is InvalidParameter.
    pub async fn set_clock(&self, to: SimTime) -> KmsResult<Outcome<i64>> {
        let gate = self.clock_gate.clone().lock_owned().await;
        if to < self.clock.now() {
            return Err(KmsError::invalid_because("Time", "The clock only moves forward."));
        }
        if !SimClock::can_reach(to) {
            return Err(KmsError::invalid_because("Time", PAST_THE_END));
        }
        let offset = self.clock.offset_reaching(to);
        Ok(Outcome::write(offset, vec![Change::SetClockOffset(offset)], vec![gate]))
    }

    /// The ARN of the key a client named by id, ARN or alias, if there is such
    /// a key; for judging permissions before a call runs, so it records nothing.
    pub fn key_arn_of(&self, cx: &CallContext, name: &str) -> Option<String> {
        Some(self.resolve(cx, name, "KeyId").ok()?.snapshot().meta.arn())
    }

    /// The instance of the key a client named (`Some(None)` for a default key); `None` if it names none.
    pub fn instance_of_key(&self, cx: &CallContext, name: &str) -> Option<Option<String>> {
        let key = self.resolve(cx, name, "KeyId").ok()?.snapshot();
        Some(key.meta.instance_id.clone())
    }

    /// The instance of the secret named `name` (`Some(None)` for one outside instances); `None` if there is none.
    pub fn instance_of_secret(&self, cx: &CallContext, name: &str) -> Option<Option<String>> {
        Some(self.secret(&cx.region, name)?.instance_id.clone())
    }

    /// Records in the call's trail the key or secret a refused call named, so
    /// its record says what it was refused on though it never ran.
    pub fn note_named(&self, cx: &CallContext, key: Option<&str>, secret: Option<&str>) {
        if let Some(key) = key.and_then(|name| self.resolve(cx, name, "KeyId").ok()) {
            cx.trail.key(&key.snapshot().meta);
        }
        if let Some(name) = secret {
            match self.secret(&cx.region, name) {
                Some(secret) => cx.trail.secret(name, secret.arn(), secret.instance_id.clone()),
                None => cx.trail.secret(name, secrets::secret_arn(&cx.region, &self.account_id, name), None),
            }
        }
    }

    /// Finds the key a client named by id, ARN or alias, in the caller's region.
    fn resolve(&self, cx: &CallContext, name: &str, param: &str) -> KmsResult<Arc<KeySlot>> {
        if name.is_empty() {
            return Err(KmsError::missing(param));
        }
        let key_id = if let Some(rest) = name.strip_prefix("acs:kms:") {
            let mut parts = rest.splitn(3, ':');
            let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(KmsError::invalid(param));
            };
            if region != cx.region || account != self.account_id {
                return Err(ErrorCode::KeyNotFound.into());
            }
            if let Some(id) = resource.strip_prefix("key/") {
                id.to_owned()
            } else if resource.starts_with("alias/") {
                self.alias_target(cx, resource)?
            } else {
                return Err(KmsError::invalid(param));
            }
        } else if name.starts_with("alias/") {
            self.alias_target(cx, name)?
        } else {
            name.to_owned()
        };
        self.slot(&cx.region, &key_id).ok_or_else(|| ErrorCode::KeyNotFound.into())
    }

    /// The key `key_id` of `region`, if there is one.
    fn slot(&self, region: &str, key_id: &str) -> Option<Arc<KeySlot>> {
        read_lock(&self.keys).get(&(region.to_owned(), key_id.to_owned())).cloned()
    }

    fn alias_target(&self, cx: &CallContext, alias_name: &str) -> KmsResult<String> {
        read_lock(&self.aliases)
            .get(&(cx.region.clone(), alias_name.to_owned()))
            .map(|a| a.key_id.clone())
            .ok_or_else(|| ErrorCode::AliasNotFound.into())
    }

    /// The current snapshot of a named key, recorded in the call's trail.
    fn key_for_use(&self, cx: &CallContext, name: &str, param: &str) -> KmsResult<Arc<Key>> {
        let key = self.resolve(cx, name, param)?.snapshot();
        cx.trail.key(&key.meta);
        Ok(key)
    }
}

/// Per-name async gates, created on first use.
#[derive(Default)]
struct GateTable(std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl GateTable {
    async fn lock(&self, name: &str) -> Gate {
        let gate = {
            let mut gates = self.0.lock().unwrap_or_else(|p| p.into_inner());
            gates.entry(name.to_owned()).or_default().clone()
        };
        gate.lock_owned().await
    }
}

// Locks guard plain data that stays consistent even if a holder panicked, so a
// poisoned lock is used as is rather than taking the server down.
fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::context::CallContext;

    fn engine() -> Engine {
        Engine::new("1192853035118460".into(), Arc::new(SimClock::default()), [7; 32], Snapshot::default())
    }

    fn cx(engine: &Engine) -> CallContext {
        CallContext::internal("cn-hangzhou", engine.account_id(), engine.clock().now())
    }

    fn create(engine: &Engine) -> String {
        let outcome = engine.create_key(&cx(engine), CreateKeyInput::default()).unwrap();
        let id = outcome.value.meta.key_id.clone();
        engine.apply(outcome.changes);
        id
    }

    fn is_ready<F: Future>(future: F) -> bool {
        let mut future = pin!(future);
        matches!(future.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(_))
    }

    /// While a mutation of key A waits for its commit (holding A's gate), reads of A
    /// and changes to other keys go ahead; only a second change to A waits.
    #[tokio::test]
    async fn a_pending_change_blocks_only_changes_to_the_same_key() {
        let engine = engine();
        let (a, b) = (create(&engine), create(&engine));
        let pending = engine.set_key_enabled(&cx(&engine), &a, false).await.unwrap();

        assert!(engine.encrypt(&cx(&engine), &a, b"still readable", Default::default()).is_ok());
        assert!(is_ready(engine.set_key_enabled(&cx(&engine), &b, false)), "another key's change waits");
        assert!(!is_ready(engine.set_key_enabled(&cx(&engine), &a, true)), "a second change to A did not wait");

        engine.apply(pending.changes);
        drop(pending.gates);
        assert!(is_ready(engine.set_key_enabled(&cx(&engine), &a, true)));
        let encrypt = engine.encrypt(&cx(&engine), &a, b"x", Default::default());
        assert_eq!(encrypt.unwrap_err().code, ErrorCode::Disabled);
    }
}
