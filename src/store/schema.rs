//! Tables, migrations, and the translation of engine changes and audit records to rows.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    AuditPage, Column, EncodedRecord, EventPage, EventQuery, Loaded, Order, Scan, StoreError, StoreResult, meta_value,
};
use crate::audit::chain;
use crate::audit::{AuditFilter, AuditRecord};
use crate::clock::SimTime;
use crate::engine::crypto::wrap::WrapAlgorithm;
use crate::engine::key::{Key, KeyMeta, KeyVersion};
use crate::engine::{AccessEntity, Change, ImportToken, Snapshot};

/// One step of the schema: SQL, or code where SQL cannot say it.
enum Migration {
    Sql(&'static str),
    Code(fn(&Connection) -> StoreResult<()>),
}

use Migration::{Code, Sql};

const MIGRATIONS: &[Migration] = &[
    Sql(r#"
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE keys (key_id TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE key_versions (
    key_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    material BLOB NOT NULL,
    PRIMARY KEY (key_id, version_id)
);
CREATE TABLE aliases (
    region TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (region, alias_name)
);
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    time_ms INTEGER NOT NULL,
    service_name TEXT NOT NULL,
    event_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    error_code TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX audit_events_by_key ON audit_events (key_id, seq);
"#),
    Sql(r#"
CREATE TABLE import_tokens (
    token TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapping_algorithm TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    private_key BLOB NOT NULL
);
"#),
    Sql(r#"
CREATE TABLE system_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    time_ms INTEGER NOT NULL,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    region TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX system_events_by_time ON system_events (time_ms, seq);
CREATE TABLE event_subscriptions (subscription_id TEXT PRIMARY KEY, record TEXT NOT NULL);
"#),
    Sql(r#"
ALTER TABLE audit_events ADD COLUMN access_key_id TEXT NOT NULL DEFAULT '';
UPDATE audit_events SET access_key_id = coalesce(json_extract(record, '$.accessKeyId'), '');
CREATE INDEX audit_events_by_access_key ON audit_events (access_key_id, seq) WHERE access_key_id != '';
CREATE INDEX audit_events_by_time ON audit_events (time_ms);
"#),
    Sql(r#"
ALTER TABLE audit_events ADD COLUMN chain BLOB;
CREATE TABLE audit_digests (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    link BLOB NOT NULL,
    signature BLOB NOT NULL
);
"#),
    // Keys are addressed by region and id: a replica shares its primary's id in another region.
    Sql(r#"
CREATE TABLE keys_by_region (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (region, key_id)
);
INSERT INTO keys_by_region (region, key_id, meta) SELECT json_extract(meta, '$.region'), key_id, meta FROM keys;
CREATE TABLE key_versions_by_region (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    material BLOB NOT NULL,
    PRIMARY KEY (region, key_id, version_id)
);
INSERT INTO key_versions_by_region (region, key_id, version_id, created_ms, material)
    SELECT k.region, v.key_id, v.version_id, v.created_ms, v.material
    FROM key_versions v JOIN keys_by_region k ON k.key_id = v.key_id;
DROP TABLE key_versions;
DROP TABLE keys;
ALTER TABLE keys_by_region RENAME TO keys;
ALTER TABLE key_versions_by_region RENAME TO key_versions;
CREATE TABLE kms_instances (instance_id TEXT PRIMARY KEY, record TEXT NOT NULL);
"#),
    // 7: identities and policies (users, AccessKeys, policies, AAPs, ClientKeys), one JSON record each.
    Sql(r#"
CREATE TABLE access_entities (kind TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (kind, id));
"#),
    // 8: secrets, one JSON record each with its versions (values sealed under the secret's KMS key).
    Sql(r#"
CREATE TABLE secrets (region TEXT NOT NULL, name TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (region, name));
"#),
    // 9: every record carries its link from here on; see `link_legacy_records`.
    Code(link_legacy_records),
    // 10: grants, one JSON record each, found by their key when it is deleted.
    Sql(r#"
CREATE TABLE grants (grant_id TEXT PRIMARY KEY, region TEXT NOT NULL, key_id TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX grants_by_key ON grants (region, key_id);
"#),
];

/// The page size of a store built in bulk (SQLite's default is 4096).
const BULK_PAGE_SIZE: i64 = 16_384;

/// Sets up a connection to the store's file; `kept` says whether the file outlives the store.
pub(super) fn configure_file(conn: &Connection, durability: super::Durability, kept: bool) -> StoreResult<()> {
    match durability {
        super::Durability::Full => {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL: a commit is on disk before the call that made it is answered. A store that
            // nothing outlives has nothing to lose in a crash, so it never waits for the disk.
            conn.pragma_update(None, "synchronous", if kept { "FULL" } else { "OFF" })?;
        }
        super::Durability::Bulk => {
            // A record is about 1.2 KB: three to a default page, so nearly every insert split one.
            // Takes effect only in a new file, which is what a bulk build writes.
            conn.pragma_update(None, "page_size", BULK_PAGE_SIZE)?;
            // Each page is written once, to the file, rather than to a log and then copied; the
            // rollback journal stays in memory, so a batch that fails still rolls back.
            conn.pragma_update(None, "journal_mode", "MEMORY")?;
            conn.pragma_update(None, "synchronous", "OFF")?;
            // A bulk build touches the indexes' pages again and again; keep them (64 MiB) rather than reread them.
            conn.pragma_update(None, "cache_size", -65_536)?;
        }
    }
    // Destroyed key material is overwritten on disk, not just unlinked from the b-tree.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Each call's batch commits in a savepoint of the group's transaction; its undo log stays in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

pub(super) fn migrate(conn: &Connection) -> StoreResult<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError(format!(
            "the data directory was written by a newer kmsim (schema {applied}, this build knows {})",
            MIGRATIONS.len()
        )));
    }
    for (number, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        apply(conn, number + 1, migration)?;
    }
    Ok(())
}

/// Applies one migration and records it, in one transaction.
fn apply(conn: &Connection, number: usize, migration: &Migration) -> StoreResult<()> {
    let tx = conn.unchecked_transaction()?;
    match migration {
        Sql(sql) => tx.execute_batch(sql)?,
        Code(step) => step(&tx)?,
    }
    tx.pragma_update(None, "user_version", i64::try_from(number).unwrap_or(i64::MAX))?;
    tx.commit()?;
    Ok(())
}

/// The schema from which every record carries its link and the store records
/// whether it is open ([`OPEN_MARKER`]).
const CHAINED_SCHEMA: i64 = 9;

/// The meta row present while a store is open, and after a crash: a store
/// without it was stopped cleanly, and signed its head as it stopped.
pub(super) const OPEN_MARKER: &str = "audit_open";

/// Migration 9. Records from before the chain existed are linked here, once,
/// in the migration's own transaction, and nothing links a record after this:
/// a record without its link is from then on a removed link, for verification
/// to report. A record is provably from before the chain only in a store that
/// never had a chaining writer: the first start of one linked the old records
/// and then made the signing key, and digests and a retention anchor come
/// later still. So a store holding any of those is left as it is.
fn link_legacy_records(conn: &Connection) -> StoreResult<()> {
    // Older kmsims did not record how they stopped: the store may have crashed, with records unsigned.
    conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, x'01')", params![OPEN_MARKER])?;
    let chained: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE name IN ('audit_signing_key', 'audit_anchor')) \
         OR EXISTS (SELECT 1 FROM audit_digests)",
        [],
        |row| row.get(0),
    )?;
    if chained {
        return Ok(());
    }
    let mut links = Vec::new();
    let mut previous = chain::GENESIS;
    let mut stmt = conn.prepare("SELECT seq, record FROM audit_events ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let record: serde_json::Value = serde_json::from_str(&row.get::<_, String>(1)?)
            .map_err(|e| StoreError(format!("audit record {seq}, from before the chain, is not JSON: {e}")))?;
        previous = chain::link(&previous, seq, &chain::canonical(&record));
        links.push((seq, previous));
    }
    drop(rows);
    for (seq, link) in links {
        conn.prepare_cached("UPDATE audit_events SET chain = ?1 WHERE seq = ?2")?.execute(params![&link[..], seq])?;
    }
    Ok(())
}

/// Whether the store was stopped cleanly; `None` for a store last written by
/// a kmsim that did not record it.
pub(super) fn stopped_cleanly(conn: &Connection) -> StoreResult<Option<bool>> {
    let schema: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if schema > MIGRATIONS.len() as i64 {
        return Err(StoreError(format!(
            "the data directory was written by a newer kmsim (schema {schema}, this build knows {})",
            MIGRATIONS.len()
        )));
    }
    if schema < CHAINED_SCHEMA {
        return Ok(None);
    }
    Ok(Some(meta_value(conn, OPEN_MARKER)?.is_none()))
}

pub(super) fn load(conn: &Connection) -> StoreResult<Loaded> {
    let blob_secret = match meta_value(conn, "blob_secret")? {
        Some(bytes) => bytes.try_into().map_err(|_| StoreError("blob_secret is corrupt".into()))?,
        None => {
            let secret: [u8; 32] = crate::engine::crypto::random_array();
            conn.execute("INSERT INTO meta (name, value) VALUES ('blob_secret', ?1)", params![&secret[..]])?;
            secret
        }
    };
    let clock_offset_ms = match meta_value(conn, "clock_offset_ms")? {
        Some(bytes) => {
            i64::from_be_bytes(bytes.try_into().map_err(|_| StoreError("clock_offset_ms is corrupt".into()))?)
        }
        None => 0,
    };
    Ok(Loaded {
        blob_secret,
        clock_offset_ms,
        snapshot: Snapshot {
            keys: load_keys(conn)?,
            aliases: load_json_rows(conn, "SELECT record FROM aliases")?,
            import_tokens: load_import_tokens(conn)?,
            subscriptions: load_json_rows(conn, "SELECT record FROM event_subscriptions")?,
            instances: load_json_rows(conn, "SELECT record FROM kms_instances")?,
            access: load_access(conn)?,
            secrets: load_json_rows(conn, "SELECT record FROM secrets")?,
            grants: load_json_rows(conn, "SELECT record FROM grants")?,
        },
    })
}

fn load_keys(conn: &Connection) -> StoreResult<Vec<Key>> {
    let mut versions: HashMap<(String, String), Vec<Arc<KeyVersion>>> = HashMap::new();
    let mut stmt =
        conn.prepare("SELECT region, key_id, version_id, created_ms, material FROM key_versions ORDER BY created_ms")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let version_id: String = row.get(2)?;
        let version_id = Uuid::parse_str(&version_id).map_err(|e| StoreError(e.to_string()))?;
        let version = KeyVersion::new(version_id, SimTime(row.get(3)?), Zeroizing::new(row.get(4)?));
        versions.entry((row.get(0)?, row.get(1)?)).or_default().push(Arc::new(version));
    }
    let mut stmt = conn.prepare("SELECT meta FROM keys")?;
    let metas = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let mut keys = Vec::new();
    for meta in metas {
        let meta: KeyMeta = serde_json::from_str(&meta?)?;
        let versions = versions.remove(&(meta.region.clone(), meta.key_id.clone())).unwrap_or_default();
        keys.push(Key { meta, versions });
    }
    Ok(keys)
}

fn load_import_tokens(conn: &Connection) -> StoreResult<Vec<ImportToken>> {
    let mut stmt =
        conn.prepare("SELECT token, key_id, wrapping_algorithm, expires_ms, private_key FROM import_tokens")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, String>(2)?, row.get(3)?, row.get::<_, Vec<u8>>(4)?))
    })?;
    let mut tokens = Vec::new();
    for row in rows {
        let (token, key_id, algorithm, expires_ms, private_key) = row?;
        let wrapping_algorithm = WrapAlgorithm::parse(&algorithm)
            .ok_or_else(|| StoreError(format!("bad wrapping algorithm {algorithm}")))?;
        tokens.push(ImportToken {
            token,
            key_id,
            wrapping_algorithm,
            expires: SimTime(expires_ms),
            private_key_der: Zeroizing::new(private_key),
        });
    }
    Ok(tokens)
}

fn load_access(conn: &Connection) -> StoreResult<Vec<AccessEntity>> {
    let mut stmt = conn.prepare("SELECT kind, record FROM access_entities")?;
    let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (kind, record) = row?;
        AccessEntity::from_json(&kind, &record).map_err(StoreError)
    })
    .collect()
}

/// Rows whose one column is a JSON document.
fn load_json_rows<T: serde::de::DeserializeOwned>(conn: &Connection, sql: &str) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let records = stmt.query_map([], |row| row.get::<_, String>(0))?;
    records.map(|r| Ok(serde_json::from_str(&r?)?)).collect()
}

pub(super) fn persist(
    conn: &Connection,
    changes: &[Change],
    records: &[EncodedRecord],
    chain: &mut super::AuditChain,
) -> StoreResult<()> {
    for change in changes {
        match change {
            Change::SaveKey { key, new_versions } => {
                let meta = &key.meta;
                conn.prepare_cached("INSERT OR REPLACE INTO keys (region, key_id, meta) VALUES (?1, ?2, ?3)")?
                    .execute(params![meta.region, meta.key_id, serde_json::to_string(meta)?])?;
                for v in new_versions {
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO key_versions (region, key_id, version_id, created_ms, material) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        meta.region,
                        meta.key_id,
                        v.version_id.to_string(),
                        v.created.0,
                        &v.material[..]
                    ])?;
                }
            }
            Change::SaveInstance(instance) => {
                conn.prepare_cached("INSERT OR REPLACE INTO kms_instances (instance_id, record) VALUES (?1, ?2)")?
                    .execute(params![instance.instance_id, serde_json::to_string(&**instance)?])?;
            }
            Change::SaveAccess(entity) => {
                conn.prepare_cached("INSERT OR REPLACE INTO access_entities (kind, id, record) VALUES (?1, ?2, ?3)")?
                    .execute(params![entity.kind().as_str(), entity.id(), entity.to_json()])?;
            }
            Change::RemoveAccess { kind, id } => {
                conn.prepare_cached("DELETE FROM access_entities WHERE kind = ?1 AND id = ?2")?
                    .execute(params![kind.as_str(), id])?;
            }
            Change::SaveGrant(grant) => {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO grants (grant_id, region, key_id, record) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    grant.grant_id,
                    grant.region,
                    grant.key_id,
                    serde_json::to_string(&**grant)?
                ])?;
            }
            Change::RemoveGrant { region, key_id, grant_id } => {
                conn.prepare_cached("DELETE FROM grants WHERE grant_id = ?1 AND region = ?2 AND key_id = ?3")?
                    .execute(params![grant_id, region, key_id])?;
            }
            Change::SaveSecret(secret) => {
                conn.prepare_cached("INSERT OR REPLACE INTO secrets (region, name, record) VALUES (?1, ?2, ?3)")?
                    .execute(params![secret.region, secret.name, serde_json::to_string(&**secret)?])?;
            }
            Change::DeleteSecret { region, secret_name } => {
                conn.prepare_cached("DELETE FROM secrets WHERE region = ?1 AND name = ?2")?
                    .execute(params![region, secret_name])?;
            }
            Change::SaveAlias(alias) => {
                conn.prepare_cached("INSERT OR REPLACE INTO aliases (region, alias_name, record) VALUES (?1, ?2, ?3)")?
                    .execute(params![alias.region, alias.alias_name, serde_json::to_string(alias)?])?;
            }
            Change::RemoveAlias { region, alias_name } => {
                conn.prepare_cached("DELETE FROM aliases WHERE region = ?1 AND alias_name = ?2")?
                    .execute(params![region, alias_name])?;
            }
            Change::PruneAudit { cutoff } => prune_audit(conn, *cutoff)?,
            Change::PruneEvents { cutoff } => {
                conn.prepare_cached("DELETE FROM system_events WHERE time_ms < ?1")?.execute(params![cutoff.0])?;
            }
            Change::SetClockOffset(offset) => {
                conn.prepare_cached("INSERT OR REPLACE INTO meta (name, value) VALUES ('clock_offset_ms', ?1)")?
                    .execute(params![&offset.to_be_bytes()[..]])?;
            }
            Change::SaveImportToken(token) => {
                conn.prepare_cached(
                    "INSERT INTO import_tokens (token, key_id, wrapping_algorithm, expires_ms, private_key) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    token.token,
                    token.key_id,
                    token.wrapping_algorithm.as_str(),
                    token.expires.0,
                    &token.private_key_der[..]
                ])?;
            }
            Change::DeleteKey { region, key_id } => {
                for sql in [
                    "DELETE FROM grants WHERE region = ?1 AND key_id = ?2",
                    "DELETE FROM key_versions WHERE region = ?1 AND key_id = ?2",
                    "DELETE FROM keys WHERE region = ?1 AND key_id = ?2",
                ] {
                    conn.prepare_cached(sql)?.execute(params![region, key_id])?;
                }
                // Import tokens go with the last copy of the key.
                conn.prepare_cached(
                    "DELETE FROM import_tokens WHERE key_id = ?1 AND NOT EXISTS (SELECT 1 FROM keys WHERE key_id = ?1)",
                )?
                .execute(params![key_id])?;
            }
            Change::Emit(event) => {
                conn.prepare_cached(
                    "INSERT INTO system_events (event_id, time_ms, name, level, region, resource_id, document) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    event.id.to_string(),
                    event.time.0,
                    event.name,
                    event.level,
                    event.region,
                    event.resource_id,
                    event.json(),
                ])?;
            }
            Change::SaveSubscription(subscription) => {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO event_subscriptions (subscription_id, record) VALUES (?1, ?2)",
                )?
                .execute(params![subscription.subscription_id, serde_json::to_string(&**subscription)?])?;
            }
            Change::RemoveSubscription { subscription_id } => {
                conn.prepare_cached("DELETE FROM event_subscriptions WHERE subscription_id = ?1")?
                    .execute(params![subscription_id])?;
            }
        }
    }
    for record in records {
        let text = record.text();
        let (seq, link) = chain.append(conn, text.as_bytes(), record.time())?;
        conn.prepare_cached(
            "INSERT INTO audit_events \
             (seq, event_id, time_ms, service_name, event_name, key_id, error_code, access_key_id, record, chain) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            seq,
            record.column(Column::EventId),
            record.time().millis(),
            record.column(Column::ServiceName),
            record.column(Column::EventName),
            record.column(Column::KeyId),
            record.column(Column::ErrorCode),
            record.column(Column::AccessKeyId),
            text,
            &link[..],
        ])?;
    }
    Ok(())
}

/// The head of the audit chain as the writer extends it.
#[derive(Debug, Clone)]
pub(super) struct ChainHead {
    pub seq: i64,
    pub link: [u8; 32],
    /// Records appended since the last signed digest.
    pub unsigned: u64,
    /// The event time of the head record: the simulated time a digest of it speaks for.
    pub time: SimTime,
}

impl ChainHead {
    pub(super) fn append(&mut self, canonical_record: &[u8], time: SimTime) -> (i64, [u8; 32]) {
        self.seq += 1;
        self.time = time;
        self.link = chain::link(&self.link, self.seq, canonical_record);
        self.unsigned += 1;
        (self.seq, self.link)
    }
}

/// Reads the head of the chain for the writer to extend, after checking what
/// it would extend and sign over: every record after the last signed digest
/// (the unsigned tail) must carry its link and follow from that digest, and a
/// store that was stopped cleanly must have none. A digest signs the head's
/// link, so signing over a tail that does not hang together would vouch for
/// it; the store refuses to open instead, and `kmsim audit verify --data-dir`
/// says what is wrong. Records before the last digest are the digests'
/// already, which nothing new can change, and are left to verification: a
/// start reads only the tail, not the whole trail.
pub(super) fn chain_head(conn: &Connection, key: &ed25519_dalek::VerifyingKey) -> StoreResult<ChainHead> {
    let refuse = |violation: chain::Violation| {
        StoreError(format!(
            "the audit trail does not verify: {violation}. The server will not extend or sign a trail it cannot \
             vouch for; run `kmsim audit verify --data-dir` on this directory"
        ))
    };
    let (anchor_link, anchor_seq) = checked_anchor(conn)?.map_err(refuse)?;
    let mut start = (anchor_link, anchor_seq, SimTime(0), None);
    if let Some(digest) = last_digest(conn, anchor_seq - 1)? {
        let violation =
            |reason: &str| chain::Violation { seq: digest.seq, event_id: String::new(), reason: reason.into() };
        if !digest.is_signed_by(key) {
            return Err(refuse(violation("its digest's signature is not valid")));
        }
        if digest.seq > anchor_seq {
            let stored: Option<Option<Vec<u8>>> = conn
                .query_row("SELECT chain FROM audit_events WHERE seq = ?1", params![digest.seq], |row| row.get(0))
                .optional()?;
            match stored {
                None => return Err(refuse(violation("it is missing, though a signed digest covers it"))),
                Some(link) if link.as_deref() != Some(&digest.link[..]) => {
                    return Err(refuse(violation("its chain link is not the one its signed digest covers")));
                }
                Some(_) => {}
            }
        }
        start = (digest.link, digest.seq, SimTime(digest.time_ms), Some(digest));
    }
    let (link, seq, time, digest) = start;
    let mut verifier = chain::Verifier::new(*key, (link, seq), digest.into_iter().collect()).map_err(refuse)?;
    verify_rows(conn, seq, &mut verifier)?.map_err(refuse)?;
    let (head_seq, head_link) = verifier.head();
    let tail = match stopped_cleanly(conn)? {
        Some(true) => chain::Tail::SignedAtStop,
        Some(false) | None => chain::Tail::MayBeUnsigned,
    };
    let verified = verifier.finish(tail).map_err(refuse)?;
    let time = match verified.records {
        0 => time,
        _ => SimTime(
            conn.query_row("SELECT time_ms FROM audit_events WHERE seq = ?1", params![head_seq], |row| row.get(0))?,
        ),
    };
    Ok(ChainHead { seq: head_seq, link: head_link, unsigned: verified.unsigned_tail, time })
}

/// The link and sequence number the oldest kept record follows: genesis, or
/// after retention pruned the start of the trail, the signed digest it was cut at.
pub(super) fn anchor(conn: &Connection) -> StoreResult<([u8; 32], i64)> {
    checked_anchor(conn)?.map_err(|violation| StoreError(violation.to_string()))
}

/// [`anchor`], with an anchor whose digest is gone or malformed as a violation of the trail.
pub(super) fn checked_anchor(conn: &Connection) -> StoreResult<Result<([u8; 32], i64), chain::Violation>> {
    let Some(bytes) = meta_value(conn, "audit_anchor")? else {
        return Ok(Ok((chain::GENESIS, 0)));
    };
    let Ok(bytes) = <[u8; 8]>::try_from(bytes) else {
        let reason = "the trail's retention anchor is malformed".to_owned();
        return Ok(Err(chain::Violation { seq: 0, event_id: String::new(), reason }));
    };
    let seq = i64::from_be_bytes(bytes);
    let link: Option<Vec<u8>> =
        conn.query_row("SELECT link FROM audit_digests WHERE seq = ?1", params![seq], |row| row.get(0)).optional()?;
    Ok(link.and_then(|l| l.try_into().ok()).map(|link| (link, seq)).ok_or_else(|| chain::Violation {
        seq: seq + 1,
        event_id: String::new(),
        reason: format!("the trail was cut by retention after record {seq}, but the digest it was cut at is gone"),
    }))
}

/// Retention: drops the records up to the last signed digest older than
/// `cutoff`, which becomes the anchor the remaining chain is verified from.
fn prune_audit(conn: &Connection, cutoff: SimTime) -> StoreResult<()> {
    let (_, current) = anchor(conn)?;
    let cut: Option<i64> = conn.query_row(
        "SELECT max(seq) FROM audit_digests WHERE time_ms < ?1 AND seq > ?2",
        params![cutoff.0, current],
        |row| row.get(0),
    )?;
    let Some(cut) = cut else { return Ok(()) };
    conn.prepare_cached("DELETE FROM audit_events WHERE seq <= ?1")?.execute(params![cut])?;
    conn.prepare_cached("DELETE FROM audit_digests WHERE seq < ?1")?.execute(params![cut])?;
    conn.prepare_cached("INSERT OR REPLACE INTO meta (name, value) VALUES ('audit_anchor', ?1)")?
        .execute(params![&cut.to_be_bytes()[..]])?;
    Ok(())
}

pub(super) fn insert_digest(conn: &Connection, digest: &chain::Digest) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO audit_digests (seq, time_ms, link, signature) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![digest.seq, digest.time_ms, &digest.link[..], &digest.signature[..]])?;
    Ok(())
}

/// The digests after `from_seq`, oldest first.
pub(super) fn digests(conn: &Connection, from_seq: i64) -> StoreResult<Vec<chain::Digest>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, time_ms, link, signature FROM audit_digests WHERE seq > ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![from_seq], digest_row)?;
    rows.map(|row| row?).collect()
}

/// The newest digest after `from_seq`.
fn last_digest(conn: &Connection, from_seq: i64) -> StoreResult<Option<chain::Digest>> {
    conn.prepare_cached(
        "SELECT seq, time_ms, link, signature FROM audit_digests WHERE seq > ?1 ORDER BY seq DESC LIMIT 1",
    )?
    .query_row(params![from_seq], digest_row)
    .optional()?
    .transpose()
}

fn digest_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<chain::Digest>> {
    let (seq, time_ms, link, signature) =
        (row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?, row.get::<_, Vec<u8>>(3)?);
    let bad = || StoreError(format!("audit digest {seq} is malformed"));
    Ok((|| {
        Ok(chain::Digest {
            seq,
            time_ms,
            link: link.try_into().map_err(|_| bad())?,
            signature: signature.try_into().map_err(|_| bad())?,
        })
    })())
}

/// The Ed25519 key that signs digests, made on first use. A trail that has
/// digests already lost its key: a new one would sign on as if nothing
/// happened, so the store refuses to open instead.
pub(super) fn signing_key(conn: &Connection) -> StoreResult<ed25519_dalek::SigningKey> {
    let seed: [u8; 32] = match meta_value(conn, "audit_signing_key")? {
        Some(bytes) => bytes.try_into().map_err(|_| StoreError("audit_signing_key is corrupt".into()))?,
        None => {
            let signed: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_digests) OR EXISTS (SELECT 1 FROM meta WHERE name = 'audit_anchor')",
                [],
                |row| row.get(0),
            )?;
            if signed {
                return Err(StoreError(
                    "the audit trail has signed digests but its signing key is gone; the server will not sign it \
                     with a new one (verify it with `kmsim audit verify --data-dir DIR --public-key HEX`)"
                        .into(),
                ));
            }
            let seed: [u8; 32] = crate::engine::crypto::random_array();
            conn.execute("INSERT INTO meta (name, value) VALUES ('audit_signing_key', ?1)", params![&seed[..]])?;
            seed
        }
    };
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// The columns that indexes and filters read in place of the record, with
/// the record's field each copies. Verification holds every one of them to
/// its record, rather than the filters reading the chained record: the
/// columns exist so that listing by key, by AccessKey or by time does not
/// decode every record, and a mismatch is as much an edit of the trail as an
/// edit of the record (it would hide the record from a filter, or misplace
/// it), so it is reported the same way.
const INDEXED_COLUMNS: [(&str, &str); 7] = [
    ("event_id", "eventId"),
    ("time_ms", "eventTime"),
    ("service_name", "serviceName"),
    ("event_name", "eventName"),
    ("key_id", "keyId"),
    ("error_code", "errorCode"),
    ("access_key_id", "accessKeyId"),
];

/// Walks the records after `after`, oldest first, through `verifier`, and
/// checks each one's indexed columns against the record.
pub(super) fn verify_rows(
    conn: &Connection,
    after: i64,
    verifier: &mut chain::Verifier,
) -> StoreResult<Result<(), chain::Violation>> {
    let columns: Vec<&str> = INDEXED_COLUMNS.iter().map(|(column, _)| *column).collect();
    let sql =
        format!("SELECT seq, record, chain, {} FROM audit_events WHERE seq > ?1 ORDER BY seq", columns.join(", "));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![after])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let record = match row.get_ref(1)?.as_str().ok().map(serde_json::from_str::<serde_json::Value>) {
            Some(Ok(record)) => record,
            _ => {
                let reason = "it is not valid JSON any more".to_owned();
                return Ok(Err(chain::Violation { seq, event_id: String::new(), reason }));
            }
        };
        let stored: Option<[u8; 32]> = match row.get_ref(2)? {
            rusqlite::types::ValueRef::Blob(link) => link.try_into().ok(),
            _ => None,
        };
        if let Err(violation) = verifier.feed(seq, &record, stored.as_ref()) {
            return Ok(Err(violation));
        }
        for (i, (column, field)) in INDEXED_COLUMNS.iter().enumerate() {
            let agrees = match (row.get_ref(3 + i)?, &record[*field]) {
                (rusqlite::types::ValueRef::Integer(n), serde_json::Value::Number(m)) => m.as_i64() == Some(n),
                (rusqlite::types::ValueRef::Text(text), serde_json::Value::String(s)) => text == s.as_bytes(),
                // Older records leave an empty field out.
                (rusqlite::types::ValueRef::Text(text), serde_json::Value::Null) => text.is_empty(),
                _ => false,
            };
            if !agrees {
                let event_id = record["eventId"].as_str().unwrap_or_default().to_owned();
                let reason = format!(
                    "its {column} column does not match its record's {field}: the column was edited, so filters on \
                     it would hide or misplace the record"
                );
                return Ok(Err(chain::Violation { seq, event_id, reason }));
            }
        }
    }
    Ok(Ok(()))
}

pub(super) fn list_audit(
    conn: &Connection,
    filter: &AuditFilter,
    limit: usize,
    before: Option<i64>,
) -> StoreResult<AuditPage> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, record FROM audit_events \
         WHERE seq < ?1 AND (?2 = '' OR key_id = ?2) AND (?3 = '' OR event_name = ?3) AND (?4 = '' OR error_code = ?4) \
         ORDER BY seq DESC LIMIT ?5",
    )?;
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let rows = stmt.query_map(
        params![before.unwrap_or(i64::MAX), filter.key_id, filter.event_name, filter.error_code, fetch],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
    )?;
    let mut records = Vec::new();
    let mut last_seq = None;
    let mut more = false;
    let mut bytes = 0;
    for row in rows {
        let (seq, json) = row?;
        bytes += json.len();
        if records.len() == limit || (!records.is_empty() && bytes > MAX_PAGE_BYTES) {
            more = true;
            break;
        }
        records.push(serde_json::from_str(&json)?);
        last_seq = Some(seq);
    }
    Ok(AuditPage { records, links: Vec::new(), next_before: if more { last_seq } else { None } })
}

/// One page of system events, newest first, from the position `before` (time, seq) down.
pub(super) fn list_events(conn: &Connection, query: &EventQuery, before: Option<(i64, i64)>) -> StoreResult<EventPage> {
    let (name_exact, name_prefix) = match query.filter.name.strip_suffix('*') {
        Some(prefix) => (String::new(), format!("{}%", like_literal(prefix))),
        None => (query.filter.name.clone(), String::new()),
    };
    let (before_time, before_seq) = before.unwrap_or((i64::MAX, i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT seq, time_ms, event_id, document FROM system_events \
         WHERE time_ms >= ?1 AND time_ms <= ?2 AND (time_ms < ?3 OR (time_ms = ?3 AND seq < ?4)) \
         AND (?5 = '' OR name = ?5) AND (?6 = '' OR name LIKE ?6 ESCAPE '\\') AND (?7 = '' OR level = ?7) \
         ORDER BY time_ms DESC, seq DESC LIMIT ?8",
    )?;
    let fetch = i64::try_from(query.limit).unwrap_or(i64::MAX).saturating_add(1);
    let rows = stmt.query_map(
        params![
            query.start.0,
            query.end.0,
            before_time,
            before_seq,
            name_exact,
            name_prefix,
            query.filter.level,
            fetch
        ],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(3)?)),
    )?;
    let mut events = Vec::new();
    let mut next = None;
    for row in rows {
        let (seq, time_ms, document) = row?;
        if events.len() == query.limit {
            next = events.last().map(|(position, _): &((i64, i64), String)| *position);
            break;
        }
        events.push(((time_ms, seq), document));
    }
    let documents =
        events.into_iter().map(|(_, document)| serde_json::from_str(&document)).collect::<Result<_, _>>()?;
    Ok(EventPage { documents, next_before: next })
}

/// What is left of a page as a scan goes from slice to slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// Records the page may still take.
    pub records: usize,
    /// Record text the page holds already (see [`MAX_PAGE_BYTES`]).
    pub bytes_used: usize,
}

/// Walks one slice of records in `scan.order`: newest first, those below
/// sequence `slice.0` and at or above `slice.1`; oldest first, those above
/// `slice.0` and at or below `slice.1`; inside the event-time range. Keeps
/// those `keep` accepts within `budget`, and answers them, with the sequence
/// to continue from when the page filled, and the page's record text so far.
pub(super) fn scan_audit(
    conn: &Connection,
    scan: &Scan,
    slice: (i64, i64),
    budget: Budget,
    keep: &mut dyn FnMut(&AuditRecord) -> bool,
) -> StoreResult<(AuditPage, usize)> {
    // `+time_ms` keeps SQLite off the time index: walking by sequence streams rows in
    // the order wanted, where the index would first sort the whole table.
    let (after, order) = match scan.order {
        Order::NewestFirst => ("seq < ?1 AND seq >= ?4", "seq DESC"),
        Order::OldestFirst => ("seq > ?1 AND seq <= ?4", "seq"),
    };
    // Matching text is far cheaper than decoding the record to ask `keep`. LIKE folds ASCII case only,
    // so a record with other characters is always decoded (octet_length counts bytes, length characters).
    // SQLite refuses patterns over 50,000 bytes; leaving a piece out only lets more records through.
    let pieces: Vec<&String> = scan.contains.iter().filter(|piece| piece.len() <= MAX_LIKE_PIECE).collect();
    let contains: String = (0..pieces.len())
        .map(|i| format!(" AND (record LIKE ?{} ESCAPE '\\' OR octet_length(record) <> length(record))", i + 5))
        .collect();
    let through = match scan.order {
        Order::NewestFirst => format!(" AND seq <= {}", scan.through.unwrap_or(i64::MAX)),
        Order::OldestFirst => String::new(),
    };
    let sql = format!(
        "SELECT seq, record, chain FROM audit_events \
         WHERE {after}{through} AND +time_ms >= ?2 AND +time_ms <= ?3{contains} ORDER BY {order}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let bounds = [slice.0, scan.range.0.0, scan.range.1.0, slice.1].map(SqlValue::Integer);
    let patterns = pieces.into_iter().map(|text| SqlValue::Text(format!("%{}%", like_literal(text))));
    let mut rows = stmt.query(rusqlite::params_from_iter(bounds.into_iter().chain(patterns)))?;
    let mut page = AuditPage { records: Vec::new(), links: Vec::new(), next_before: None };
    let mut bytes = budget.bytes_used;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let text = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let record: AuditRecord = serde_json::from_str(text)?;
        if keep(&record) {
            let at_least_one = !page.records.is_empty() || budget.bytes_used > 0;
            if page.records.len() == budget.records || (at_least_one && bytes + text.len() > MAX_PAGE_BYTES) {
                page.next_before = page.links.last().map(|(seq, _)| *seq).or(Some(slice.0));
                return Ok((page, bytes));
            }
            bytes += text.len();
            let link = row.get::<_, Option<Vec<u8>>>(2)?.and_then(|l| l.try_into().ok()).unwrap_or(chain::GENESIS);
            page.records.push(record);
            page.links.push((seq, link));
        }
    }
    Ok((page, bytes))
}

/// The most record text one page of the trail holds (at least one record):
/// rendered, with its protobuf form beside it, a page stays well under the 4 MiB
/// a gRPC client accepts by default, however large its records are.
const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// The longest piece of text a scan filters on: escaped, it stays under SQLite's LIKE pattern limit.
const MAX_LIKE_PIECE: usize = 20_000;

/// `text` with LIKE's wildcards escaped by a backslash (`ESCAPE '\\'`), to be matched literally.
fn like_literal(text: &str) -> String {
    let mut literal = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            literal.push('\\');
        }
        literal.push(c);
    }
    literal
}

pub(super) fn last_seq(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT coalesce(max(seq), 0) FROM audit_events", [], |row| row.get(0))?)
}

/// The link and sequence number of the last record before `seq` (the anchor when none is kept).
pub(super) fn link_before(conn: &Connection, seq: i64) -> StoreResult<([u8; 32], i64)> {
    let row = conn
        .query_row(
            "SELECT seq, chain FROM audit_events WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
            params![seq],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<Vec<u8>>>(1)?)),
        )
        .optional()?;
    match row {
        Some((seq, Some(link))) => Ok((link.try_into().unwrap_or(chain::GENESIS), seq)),
        _ => anchor(conn),
    }
}

/// Every record made with `access_key_id`, oldest first.
pub(super) fn audit_by_access_key(conn: &Connection, access_key_id: &str) -> StoreResult<Vec<AuditRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT record FROM audit_events WHERE access_key_id = ?1 AND access_key_id != '' ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![access_key_id], |row| row.get::<_, String>(0))?;
    rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
}

/// Applies the migrations up to schema `version`, as a kmsim of that schema did.
#[cfg(test)]
pub(super) fn migrate_to(conn: &Connection, version: usize) {
    for (number, migration) in MIGRATIONS.iter().enumerate().take(version) {
        apply(conn, number + 1, migration).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written before keys were addressed by region keeps its keys and material.
    #[test]
    fn migration_6_keeps_keys_written_by_region_less_schemas() {
        let conn = Connection::open_in_memory().unwrap();
        migrate_to(&conn, 5);
        let meta = r#"{"key_id":"k1","region":"cn-shanghai","account_id":"1192853035118460","state":"Enabled",
            "spec":"Aliyun_AES_256","usage":"ENCRYPT/DECRYPT","origin":"Aliyun_KMS","protection_level":"SOFTWARE",
            "description":"","creator":"1192853035118460","creation_date":0,"delete_date":null,
            "primary_version":"6f1c4a58-8f0e-4c2b-9a51-2b7d2f0f7d10","deletion_protection":false,
            "deletion_protection_description":"","tags":{}}"#;
        conn.execute("INSERT INTO keys (key_id, meta) VALUES ('k1', ?1)", params![meta]).unwrap();
        conn.execute(
            "INSERT INTO key_versions (key_id, version_id, created_ms, material) \
             VALUES ('k1', '6f1c4a58-8f0e-4c2b-9a51-2b7d2f0f7d10', 0, x'0102')",
            [],
        )
        .unwrap();

        migrate(&conn).unwrap();
        let keys = load_keys(&conn).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].meta.region, "cn-shanghai");
        assert_eq!(keys[0].versions.len(), 1);
        assert_eq!(&keys[0].versions[0].material[..], &[1, 2]);
        let region: String = conn.query_row("SELECT region FROM key_versions", [], |row| row.get(0)).unwrap();
        assert_eq!(region, "cn-shanghai");
    }
}
