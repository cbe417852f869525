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
use crate::engine::key::{EncryptionAlgorithm, Key, KeyMeta, KeyVersion};
use crate::engine::{AccessEntity, Change, ImportToken, Snapshot};

const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
CREATE TABLE import_tokens (
    token TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapping_algorithm TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    private_key BLOB NOT NULL
);
"#,
    r#"
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
"#,
    r#"
ALTER TABLE audit_events ADD COLUMN access_key_id TEXT NOT NULL DEFAULT '';
UPDATE audit_events SET access_key_id = coalesce(json_extract(record, '$.accessKeyId'), '');
CREATE INDEX audit_events_by_access_key ON audit_events (access_key_id, seq) WHERE access_key_id != '';
CREATE INDEX audit_events_by_time ON audit_events (time_ms);
"#,
    r#"
ALTER TABLE audit_events ADD COLUMN chain BLOB;
CREATE TABLE audit_digests (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    link BLOB NOT NULL,
    signature BLOB NOT NULL
);
"#,
    // Keys are addressed by region and id: a replica shares its primary's id in another region.
    r#"
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
"#,
    // 7: identities and policies (users, AccessKeys, policies, AAPs, ClientKeys), one JSON record each.
    r#"
CREATE TABLE access_entities (kind TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (kind, id));
"#,
    // 8: secrets, one JSON record each with its versions (values sealed under the secret's KMS key).
    r#"
CREATE TABLE secrets (region TEXT NOT NULL, name TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (region, name));
"#,
];

/// The page size of a store built in bulk (SQLite's default is 4096).
const BULK_PAGE_SIZE: i64 = 16_384;

pub(super) fn configure_file(conn: &Connection, durability: super::Durability) -> StoreResult<()> {
    match durability {
        super::Durability::Full => {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL: a commit is on disk before the call that made it is answered.
            conn.pragma_update(None, "synchronous", "FULL")?;
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
    for (number, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {}; COMMIT;", number + 1))?;
    }
    Ok(())
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
        let wrapping_algorithm = EncryptionAlgorithm::parse(&algorithm)
            .map_err(|_| StoreError(format!("bad wrapping algorithm {algorithm}")))?;
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

/// Reads the head of the chain, first linking any records written before the chain existed.
pub(super) fn chain_head(conn: &Connection) -> StoreResult<ChainHead> {
    let unsigned: i64 = conn.query_row(
        "SELECT count(*) FROM audit_events WHERE seq > coalesce((SELECT max(seq) FROM audit_digests), 0)",
        [],
        |row| row.get(0),
    )?;
    let (anchor_link, anchor_seq) = anchor(conn)?;
    let mut head = ChainHead { seq: anchor_seq, link: anchor_link, unsigned: 0, time: SimTime(0) };
    // Records without a link come from before the chain existed, and the writer only appends once they are
    // all linked, so if there are any, the newest record is one of them. Asking only the newest keeps a start
    // on a large trail from reading the whole table (it was most of a second at a million records).
    let legacy: bool = conn
        .query_row("SELECT chain IS NULL FROM audit_events ORDER BY seq DESC LIMIT 1", [], |row| row.get(0))
        .optional()?
        .unwrap_or(false);
    // Usually the head is just the last row; only records from before the chain existed need walking, once.
    let sql = if legacy {
        "SELECT seq, record, chain, time_ms FROM audit_events ORDER BY seq"
    } else {
        "SELECT seq, record, chain, time_ms FROM audit_events ORDER BY seq DESC LIMIT 1"
    };
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut unlinked = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        head.time = SimTime(row.get(3)?);
        match row.get::<_, Option<Vec<u8>>>(2)? {
            Some(link) if unlinked.is_empty() => {
                head.seq = seq;
                head.link = link.try_into().map_err(|_| StoreError(format!("audit record {seq} has a bad link")))?;
            }
            _ => {
                let record: serde_json::Value = serde_json::from_str(&row.get::<_, String>(1)?)?;
                head.link = chain::link(&head.link, seq, &chain::canonical(&record));
                head.seq = seq;
                unlinked.push((seq, head.link));
            }
        }
    }
    drop(rows);
    for (seq, link) in unlinked {
        conn.execute("UPDATE audit_events SET chain = ?1 WHERE seq = ?2", params![&link[..], seq])?;
    }
    head.unsigned = u64::try_from(unsigned).unwrap_or(0);
    Ok(head)
}

/// The link and sequence number the oldest kept record follows: genesis, or
/// after retention pruned the start of the trail, the signed digest it was cut at.
pub(super) fn anchor(conn: &Connection) -> StoreResult<([u8; 32], i64)> {
    let Some(bytes) = meta_value(conn, "audit_anchor")? else {
        return Ok((chain::GENESIS, 0));
    };
    let seq = i64::from_be_bytes(bytes.try_into().map_err(|_| StoreError("audit_anchor is corrupt".into()))?);
    let link: Option<Vec<u8>> =
        conn.query_row("SELECT link FROM audit_digests WHERE seq = ?1", params![seq], |row| row.get(0)).optional()?;
    let link =
        link.and_then(|l| l.try_into().ok()).ok_or_else(|| StoreError(format!("the digest at {seq} is gone")))?;
    Ok((link, seq))
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

pub(super) fn digests(conn: &Connection, from_seq: i64) -> StoreResult<Vec<chain::Digest>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, time_ms, link, signature FROM audit_digests WHERE seq > ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![from_seq], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?, row.get::<_, Vec<u8>>(3)?))
    })?;
    let mut digests = Vec::new();
    for row in rows {
        let (seq, time_ms, link, signature) = row?;
        let bad = || StoreError(format!("audit digest {seq} is malformed"));
        digests.push(chain::Digest {
            seq,
            time_ms,
            link: link.try_into().map_err(|_| bad())?,
            signature: signature.try_into().map_err(|_| bad())?,
        });
    }
    Ok(digests)
}

/// The Ed25519 key that signs digests, made on first use.
pub(super) fn signing_key(conn: &Connection) -> StoreResult<ed25519_dalek::SigningKey> {
    let seed: [u8; 32] = match meta_value(conn, "audit_signing_key")? {
        Some(bytes) => bytes.try_into().map_err(|_| StoreError("audit_signing_key is corrupt".into()))?,
        None => {
            let seed: [u8; 32] = crate::engine::crypto::random_array();
            conn.execute("INSERT INTO meta (name, value) VALUES ('audit_signing_key', ?1)", params![&seed[..]])?;
            seed
        }
    };
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Walks the whole trail oldest first through `verifier`.
pub(super) fn verify(conn: &Connection, verifier: &mut chain::Verifier) -> StoreResult<Result<(), chain::Violation>> {
    let mut stmt = conn.prepare("SELECT seq, record, chain FROM audit_events ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let record: serde_json::Value = match serde_json::from_str(&row.get::<_, String>(1)?) {
            Ok(record) => record,
            Err(_) => {
                let reason = "it is not valid JSON any more".to_owned();
                return Ok(Err(chain::Violation { seq, event_id: String::new(), reason }));
            }
        };
        let stored: Option<[u8; 32]> = row.get::<_, Option<Vec<u8>>>(2)?.and_then(|l| l.try_into().ok());
        if let Err(violation) = verifier.feed(seq, &record, stored.as_ref()) {
            return Ok(Err(violation));
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

/// Walks records in `scan.order` (past the sequence `scan.from`, inside the
/// event-time range) and keeps those `keep` accepts, until `scan.limit` are
/// kept; answers them with the sequence to continue from when more may follow.
pub(super) fn scan_audit(
    conn: &Connection,
    scan: &Scan,
    keep: &mut dyn FnMut(&AuditRecord) -> bool,
) -> StoreResult<AuditPage> {
    // `+time_ms` keeps SQLite off the time index: walking by sequence streams rows in
    // the order wanted, where the index would first sort the whole table.
    let (after, order) = match scan.order {
        Order::NewestFirst => ("seq < ?1", "seq DESC"),
        Order::OldestFirst => ("seq > ?1", "seq"),
    };
    // Matching text is far cheaper than decoding the record to ask `keep`. LIKE folds ASCII case only,
    // so a record with other characters is always decoded (octet_length counts bytes, length characters).
    // SQLite refuses patterns over 50,000 bytes; leaving a piece out only lets more records through.
    let pieces: Vec<&String> = scan.contains.iter().filter(|piece| piece.len() <= MAX_LIKE_PIECE).collect();
    let contains: String = (0..pieces.len())
        .map(|i| format!(" AND (record LIKE ?{} ESCAPE '\\' OR octet_length(record) <> length(record))", i + 5))
        .collect();
    let sql = format!(
        "SELECT seq, record, chain FROM audit_events \
         WHERE {after} AND seq <= ?4 AND +time_ms >= ?2 AND +time_ms <= ?3{contains} ORDER BY {order}"
    );
    let from = scan.from.unwrap_or(match scan.order {
        Order::NewestFirst => i64::MAX,
        Order::OldestFirst => i64::MIN,
    });
    let mut stmt = conn.prepare_cached(&sql)?;
    let bounds = [from, scan.range.0.0, scan.range.1.0, scan.through.unwrap_or(i64::MAX)].map(SqlValue::Integer);
    let patterns = pieces.into_iter().map(|text| SqlValue::Text(format!("%{}%", like_literal(text))));
    let mut rows = stmt.query(rusqlite::params_from_iter(bounds.into_iter().chain(patterns)))?;
    let mut page = AuditPage { records: Vec::new(), links: Vec::new(), next_before: None };
    let mut bytes = 0;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let text = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let record: AuditRecord = serde_json::from_str(text)?;
        if keep(&record) {
            bytes += text.len();
            if page.records.len() == scan.limit || (!page.records.is_empty() && bytes > MAX_PAGE_BYTES) {
                page.next_before = page.links.last().map(|(seq, _)| *seq);
                return Ok(page);
            }
            let link = row.get::<_, Option<Vec<u8>>>(2)?.and_then(|l| l.try_into().ok()).unwrap_or(chain::GENESIS);
            page.records.push(record);
            page.links.push((seq, link));
        }
    }
    Ok(page)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written before keys were addressed by region keeps its keys and material.
    #[test]
    fn migration_6_keeps_keys_written_by_region_less_schemas() {
        let conn = Connection::open_in_memory().unwrap();
        for (number, sql) in MIGRATIONS.iter().enumerate().take(5) {
            conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {}; COMMIT;", number + 1)).unwrap();
        }
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
