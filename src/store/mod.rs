//! The embedded store: SQLite (bundled) in WAL mode.
//!
//! One writer thread owns the write connection. Callers send it a batch (the
//! state changes of one call plus that call's audit record); the thread gathers
//! every batch that is waiting into one transaction (group commit), gives each
//! its own savepoint so one bad batch cannot sink the others, commits, and only
//! then answers each caller. A call's change and its record are therefore
//! durable together, or not at all.

mod schema;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

use crate::audit::{AuditFilter, AuditRecord};
use crate::clock::SimTime;
use crate::engine::Change;
use crate::engine::Snapshot;
use crate::events::EventFilter;

/// The most batches folded into one transaction.
const MAX_GROUP: usize = 512;

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// Nothing touches the disk; everything is gone when the process ends.
    InMemory,
    /// `kmsim.db` (and its WAL) inside this directory, created if missing.
    Dir(PathBuf),
}

#[derive(Debug, Clone)]
pub struct StoreError(String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the store held when it was opened.
#[derive(Debug)]
pub struct Loaded {
    pub blob_secret: [u8; 32],
    pub clock_offset_ms: i64,
    pub snapshot: Snapshot,
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// One call's changes and audit records, and where to report their fate.
struct PendingCommit {
    changes: Vec<Change>,
    records: Vec<AuditRecord>,
    done: oneshot::Sender<StoreResult<()>>,
}

enum Job {
    Commit(PendingCommit),
    Read(ReadJob),
    /// Finish what is queued before this, then stop.
    Stop,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    /// A second connection for reads; absent in memory, where reads go to the writer.
    reader: Option<Arc<Mutex<Connection>>>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// One page of audit records, with the sequence number to continue from.
#[derive(Debug)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub next_before: Option<i64>,
}

/// A walk over the audit records.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    /// Event times, both ends included.
    pub range: (SimTime, SimTime),
    pub order: Order,
    /// Continue past this sequence number (a page's `next_before`).
    pub from: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// Which system events to list.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub filter: EventFilter,
    pub start: SimTime,
    pub end: SimTime,
    pub limit: usize,
}

/// One page of system event documents, newest first, with the position to continue below.
#[derive(Debug)]
pub struct EventPage {
    pub documents: Vec<serde_json::Value>,
    pub next_before: Option<(i64, i64)>,
}

impl Store {
    pub fn open(location: &Location) -> StoreResult<(Store, Loaded)> {
        let (writer_conn, reader) = match location {
            Location::InMemory => (Connection::open_in_memory()?, None),
            Location::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
                let path = dir.join("kmsim.db");
                let writer = Connection::open(&path)?;
                schema::configure_file(&writer)?;
                (writer, Some(Arc::new(Mutex::new(open_reader(&path)?))))
            }
        };
        schema::migrate(&writer_conn)?;
        let loaded = schema::load(&writer_conn)?;
        let (jobs, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("kmsim-store".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|e| StoreError(e.to_string()))?;
        Ok((Store { jobs, reader, writer: Arc::new(Mutex::new(Some(handle))) }, loaded))
    }

    /// Commits `changes` and `records` in one transaction; returns once durable.
    pub async fn commit(&self, changes: Vec<Change>, records: Vec<AuditRecord>) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Commit(PendingCommit { changes, records, done }))
            .map_err(|_| StoreError("the store is closed".into()))?;
        wait.await.map_err(|_| StoreError("the store writer stopped".into()))?
    }

    /// Runs `f` against a consistent view of the store.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        match &self.reader {
            Some(reader) => {
                let reader = reader.clone();
                tokio::task::spawn_blocking(move || {
                    let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
                    f(&conn)
                })
                .await
                .map_err(|e| StoreError(e.to_string()))?
            }
            None => {
                let (tx, rx) = oneshot::channel();
                let job: ReadJob = Box::new(move |conn| {
                    let _ = tx.send(f(conn));
                });
                self.jobs.send(Job::Read(job)).map_err(|_| StoreError("the store is closed".into()))?;
                rx.await.map_err(|_| StoreError("the store writer stopped".into()))?
            }
        }
    }

    /// Audit records newest first, below sequence `before` when given.
    pub async fn list_audit(&self, filter: AuditFilter, limit: usize, before: Option<i64>) -> StoreResult<AuditPage> {
        self.read(move |conn| schema::list_audit(conn, &filter, limit, before)).await
    }

    /// The records of `scan` that `keep` accepts.
    pub async fn scan_audit(
        &self,
        scan: Scan,
        mut keep: impl FnMut(&AuditRecord) -> bool + Send + 'static,
    ) -> StoreResult<AuditPage> {
        self.read(move |conn| schema::scan_audit(conn, &scan, &mut keep)).await
    }

    /// Every record made with `access_key_id`, oldest first.
    pub async fn audit_by_access_key(&self, access_key_id: String) -> StoreResult<Vec<AuditRecord>> {
        self.read(move |conn| schema::audit_by_access_key(conn, &access_key_id)).await
    }

    /// System events newest first, below position `before` (time, sequence) when given.
    pub async fn list_events(&self, query: EventQuery, before: Option<(i64, i64)>) -> StoreResult<EventPage> {
        self.read(move |conn| schema::list_events(conn, &query, before)).await
    }

    /// Waits for every commit sent so far, then stops the writer. Other clones become unusable.
    pub fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = self.jobs.send(Job::Stop);
            let _ = handle.join();
        }
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn writer_loop(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = jobs.recv() else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut commits = Vec::new();
        let mut reads = Vec::new();
        for job in batch {
            match job {
                Job::Commit(commit) => commits.push(commit),
                Job::Read(read) => reads.push(read),
                Job::Stop => stopping = true,
            }
        }
        if !commits.is_empty() {
            commit_group(&mut conn, commits);
        }
        for read in reads {
            read(&conn);
        }
    }
}

fn commit_group(conn: &mut Connection, commits: Vec<PendingCommit>) {
    let mut outcomes = Vec::with_capacity(commits.len());
    let group = (|| -> StoreResult<()> {
        let mut tx = conn.transaction()?;
        for commit in commits {
            outcomes.push((persist_in_savepoint(&mut tx, &commit.changes, &commit.records), commit.done));
        }
        tx.commit()?;
        Ok(())
    })();
    for (result, done) in outcomes {
        let result = match &group {
            Ok(()) => result,
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "audit commit failed; the call fails closed");
        }
        let _ = done.send(result);
    }
}

/// A savepoint rolls back when dropped uncommitted, so a failed batch leaves no trace.
fn persist_in_savepoint(tx: &mut Transaction<'_>, changes: &[Change], records: &[AuditRecord]) -> StoreResult<()> {
    let savepoint = tx.savepoint()?;
    schema::persist(&savepoint, changes, records)?;
    savepoint.commit()?;
    Ok(())
}

/// Reads one value from the meta table.
fn meta_value(conn: &Connection, name: &str) -> StoreResult<Option<Vec<u8>>> {
    Ok(conn.query_row("SELECT value FROM meta WHERE name = ?1", params![name], |row| row.get(0)).optional()?)
}
