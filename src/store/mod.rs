//! The embedded store: SQLite (bundled) in WAL mode.
//!
//! One writer thread owns the write connection. Callers send it a batch (the
//! state changes of one call plus that call's audit record); the thread gathers
//! every batch that is waiting into one transaction (group commit), gives each
//! its own savepoint so one bad batch cannot sink the others, commits, and only
//! then answers each caller. A call's change and its record are therefore
//! durable together, or not at all.
//!
//! Reads have a connection of their own, which the write-ahead log lets see
//! a consistent snapshot while the writer goes on committing: no read, however
//! long, delays a commit. A store that nothing outlives ([`Location::InMemory`])
//! is the same store, in files of its own under the system's temp dir (see
//! `private`), because SQLite's in-memory databases have no write-ahead log:
//! there every read would hold the writer.

mod private;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

use crate::audit::chain::{Digest, Tail, Verified, Verifier, Violation};
use crate::audit::{AuditFilter, AuditRecord};
use crate::clock::SimTime;
use crate::engine::Change;
use crate::engine::Snapshot;
use crate::events::EventFilter;

/// The most batches a durable store folds into one transaction.
const MAX_GROUP: usize = 512;

/// WAL pages after which the checkpointer copies the log into the database (SQLite's own default threshold).
const CHECKPOINT_PAGES: i32 = 1000;
/// WAL pages at which the writer checkpoints itself (see [`start_checkpointer`]).
const CHECKPOINT_INLINE_PAGES: i32 = 4 * CHECKPOINT_PAGES;

/// A digest is signed after this many records, or this long after the last one, whichever comes first.
const DIGEST_EVERY_RECORDS: u64 = 1000;
const DIGEST_EVERY: Duration = Duration::from_secs(60);

/// How a file store trades safety for speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk before the call that made it is answered, and a
    /// digest is signed at least once a minute while records arrive.
    #[default]
    Full,
    /// A store built in one go, as the audit-data generator builds one:
    /// commits are not synced and write the database file directly, with no
    /// write-ahead log (a crash means building it again); pages are larger.
    /// So that the same work gives the same file, each submission commits in
    /// a transaction of its own (never grouped with whatever else happens to
    /// be waiting), and digests fall only by record count and simulated day,
    /// never by wall-clock time.
    Bulk,
}

impl Durability {
    /// The most submissions committed in one transaction.
    fn max_group(self) -> usize {
        match self {
            Durability::Full => MAX_GROUP,
            // A bulk store's submissions are large already, and how many wait at
            // once depends on timing, which must not change the file.
            Durability::Bulk => 1,
        }
    }
}

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// Nothing outlives the store: its files are in a private scratch dir of
    /// their own under the system's temp dir, never synced, and removed when
    /// the store closes or is dropped (or, after SIGKILL, by the next such store).
    InMemory,
    /// `kmsim.db` (and its WAL) inside this directory, created if missing.
    Dir(PathBuf),
}

#[derive(Debug, Clone)]
pub struct StoreError(String);

/// How many sequence numbers one slice of a scan covers: a slice's read is
/// short, whatever the query, so nothing waits long behind it.
pub const SCAN_SLICE_SEQS: i64 = 20_000;

/// The longest one search of the trail may read before it is stopped.
pub const MAX_SCAN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Stops a running scan from outside its thread: armed with the connection's
/// interrupt handle only while the scan runs, so nothing else the connection
/// does is ever interrupted.
#[derive(Clone, Default)]
struct Interrupter(Arc<Mutex<Option<rusqlite::InterruptHandle>>>);

impl Interrupter {
    fn arm(&self, handle: rusqlite::InterruptHandle) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    fn disarm(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn interrupt(&self) {
        if let Some(handle) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            handle.interrupt();
        }
    }
}

/// Interrupts a scan still running when its caller's future is dropped.
struct InterruptOnDrop(Interrupter);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.interrupt();
    }
}

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

pub use private::{SharedDataDir, create_dir as create_private_dir, ensure_private};

/// What the store held when it was opened.
#[derive(Debug)]
pub struct Loaded {
    pub blob_secret: [u8; 32],
    pub clock_offset_ms: i64,
    pub snapshot: Snapshot,
}

/// One call's changes and audit records, and where to report their fate.
struct PendingCommit {
    changes: Vec<Change>,
    records: Vec<EncodedRecord>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// An audit record as the writer stores it: its text and the columns indexed
/// beside it, in one buffer. Records are encoded on the caller's thread, where
/// they were just made and are still in cache, and where callers run in
/// parallel; the one writer thread then only hashes and inserts contiguous
/// text, instead of chasing a cold record's strings across the heap.
pub(crate) struct EncodedRecord {
    /// The text, then each column in [`Column`] order.
    buffer: String,
    /// Where the text and each column end in `buffer`.
    ends: [usize; 1 + Column::ALL.len()],
    time: SimTime,
}

/// The record's columns that have indexes or filters of their own.
#[derive(Clone, Copy)]
pub(crate) enum Column {
    EventId,
    ServiceName,
    EventName,
    KeyId,
    ErrorCode,
    AccessKeyId,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::EventId,
        Column::ServiceName,
        Column::EventName,
        Column::KeyId,
        Column::ErrorCode,
        Column::AccessKeyId,
    ];

    fn of(self, record: &AuditRecord) -> &str {
        match self {
            Column::EventId => &record.event_id,
            Column::ServiceName => &record.service_name,
            Column::EventName => &record.event_name,
            Column::KeyId => &record.key_id,
            Column::ErrorCode => &record.error_code,
            Column::AccessKeyId => &record.access_key_id,
        }
    }
}

impl EncodedRecord {
    fn new(record: &AuditRecord) -> EncodedRecord {
        let mut buffer = record.to_json();
        let mut ends = [buffer.len(); 1 + Column::ALL.len()];
        for (end, column) in ends[1..].iter_mut().zip(Column::ALL) {
            buffer.push_str(column.of(record));
            *end = buffer.len();
        }
        EncodedRecord { buffer, ends, time: record.event_time }
    }

    /// The record's canonical text (see [`AuditRecord::to_json`]).
    pub(crate) fn text(&self) -> &str {
        &self.buffer[..self.ends[0]]
    }

    pub(crate) fn column(&self, column: Column) -> &str {
        let at = column as usize + 1;
        &self.buffer[self.ends[at - 1]..self.ends[at]]
    }

    pub(crate) fn time(&self) -> SimTime {
        self.time
    }
}

enum Job {
    Commit(PendingCommit),
    /// Sign a digest of the chain's head now, if anything is unsigned; answers the head's sequence number.
    Digest(oneshot::Sender<StoreResult<i64>>),
    /// Finish what is queued before this, then stop.
    Stop,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    /// A second connection for reads.
    reader: Arc<Mutex<Connection>>,
    threads: Arc<Threads>,
    /// Verifies the digests the writer signs.
    public_key: VerifyingKey,
}

/// The writer, then the checkpointer (which stops once the writer has).
/// Stopped by [`Store::close`], or when the last handle goes: a store
/// dropped without closing still stops cleanly, and is gone from its
/// scratch dir by the time the drop returns.
struct Threads {
    jobs: mpsc::Sender<Job>,
    running: Mutex<Vec<JoinHandle<()>>>,
    /// Set when the store closes: a read still running stops, since the
    /// writer's last checkpoint waits for every reader (see [`interrupt_reads_once_closed`]).
    closed: Arc<AtomicBool>,
}

impl Threads {
    fn stop(&self) {
        self.closed.store(true, Ordering::Release);
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|p| p.into_inner()));
        if !running.is_empty() {
            let _ = self.jobs.send(Job::Stop);
        }
        for thread in running {
            let _ = thread.join();
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One page of audit records, with the sequence number to continue from.
#[derive(Debug)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Each record's sequence number and chain link, where the walk read them.
    pub links: Vec<(i64, [u8; 32])>,
    pub next_before: Option<i64>,
}

/// A walk over the audit records.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Event times, both ends included.
    pub range: (SimTime, SimTime),
    pub order: Order,
    /// Continue past this sequence number (a page's `next_before`).
    pub from: Option<i64>,
    /// Stop after this sequence number: what was committed when a long walk began.
    pub through: Option<i64>,
    pub limit: usize,
    /// Text that a record's JSON must contain, ignoring ASCII case, for the
    /// scan to decode it and ask whether to keep it; records whose JSON is not
    /// all ASCII are always asked. A pre-filter, so it must be implied by what
    /// the scan keeps ([`Selection::required_text`](crate::audit::selection::Selection::required_text)).
    pub contains: Vec<String>,
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
        Store::open_with(location, Durability::Full)
    }

    pub fn open_with(location: &Location, durability: Durability) -> StoreResult<(Store, Loaded)> {
        let dir = private::StoreDir::open(location).map_err(|e| StoreError(e.to_string()))?;
        let path = dir.database();
        let mut writer_conn = Connection::open(&path)?;
        schema::configure_file(&writer_conn, durability, dir.is_kept())?;
        let mut reader = open_reader(&path)?;
        let closed = Arc::new(AtomicBool::new(false));
        interrupt_reads_once_closed(&mut reader, closed.clone())?;
        let reader = Arc::new(Mutex::new(reader));
        let (checkpointer, checkpoints) = match durability {
            // Only a write-ahead log needs checkpoints: a bulk store writes the file itself.
            Durability::Bulk => (None, Checkpoints::default()),
            Durability::Full => {
                let (thread, checkpoints) = start_checkpointer(&path, &mut writer_conn, dir.is_kept())?;
                (Some(thread), checkpoints)
            }
        };
        schema::migrate(&writer_conn)?;
        let loaded = schema::load(&writer_conn)?;
        let key = schema::signing_key(&writer_conn)?;
        let chain = AuditChain {
            head: schema::chain_head(&writer_conn, &key.verifying_key())?,
            key,
            last_digest: Instant::now(),
            digest_by_wall_time: durability == Durability::Full,
        };
        // Until a clean stop removes it, the store is open: its head may be unsigned (see `close_trail`).
        writer_conn
            .execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, x'01')", params![schema::OPEN_MARKER])?;
        let public_key = chain.key.verifying_key();
        let (jobs, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("kmsim-store".into())
            .spawn(move || {
                writer_loop(writer_conn, chain, checkpoints, durability.max_group(), rx);
                // Only once the writer's connection has closed: a scratch dir goes with it.
                drop(dir);
            })
            .map_err(|e| StoreError(e.to_string()))?;
        let running = Mutex::new(std::iter::once(handle).chain(checkpointer).collect());
        let threads = Arc::new(Threads { jobs: jobs.clone(), running, closed });
        Ok((Store { jobs, reader, threads, public_key }, loaded))
    }

    /// Commits `changes` and `records` in one transaction; returns once durable.
    pub async fn commit(&self, changes: Vec<Change>, records: &[AuditRecord]) -> StoreResult<()> {
        self.submit(changes, records)?.await
    }

    /// Queues `changes` and `records` for one transaction, behind everything
    /// queued before, and returns what resolves once they are committed. The
    /// queue keeps their order whether or not the caller waits meanwhile.
    /// The records are encoded here, on the caller's thread ([`EncodedRecord`]),
    /// and stay the caller's.
    pub fn submit(
        &self,
        changes: Vec<Change>,
        records: &[AuditRecord],
    ) -> StoreResult<impl Future<Output = StoreResult<()>> + use<>> {
        let (done, wait) = oneshot::channel();
        let records = records.iter().map(EncodedRecord::new).collect();
        self.jobs
            .send(Job::Commit(PendingCommit { changes, records, done }))
            .map_err(|_| StoreError("the store is closed".into()))?;
        Ok(async move { wait.await.map_err(|_| StoreError("the store writer stopped".into()))? })
    }

    /// Runs `f` against a consistent view of the store, on the read
    /// connection: the writer commits meanwhile.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let (reader, closed) = (self.reader.clone(), self.threads.closed.clone());
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            let read = f(&conn);
            match read {
                Err(e) if closed.load(Ordering::Acquire) => {
                    Err(StoreError(format!("the store closed during a read ({e})")))
                }
                read => read,
            }
        })
        .await
        .map_err(|e| StoreError(e.to_string()))?
    }

    /// Audit records newest first, below sequence `before` when given.
    pub async fn list_audit(&self, filter: AuditFilter, limit: usize, before: Option<i64>) -> StoreResult<AuditPage> {
        self.read(move |conn| schema::list_audit(conn, &filter, limit, before)).await
    }

    /// The records of `scan` that `keep` accepts; `None` if the scan ran past
    /// [`MAX_SCAN_TIME`]. The walk goes in slices of [`SCAN_SLICE_SEQS`]
    /// sequence numbers, each a read of its own, so a long search never holds
    /// the read connection for more than one slice: other reads go between
    /// slices (commits never wait for a read). A scan whose caller has
    /// gone (its future is dropped: the client cancelled, or its deadline
    /// passed) is interrupted where it is and stops.
    pub async fn scan_audit(
        &self,
        scan: Scan,
        keep: impl FnMut(&AuditRecord) -> bool + Send + 'static,
    ) -> StoreResult<Option<AuditPage>> {
        let started = tokio::time::Instant::now();
        let keep = Arc::new(Mutex::new(keep));
        let top = self.read(schema::last_seq).await?;
        let scan = Arc::new(scan);
        let mut page = AuditPage { records: Vec::new(), links: Vec::new(), next_before: None };
        let mut bytes = 0;
        let mut cursor = scan.from;
        loop {
            let (slice, last) = match scan.order {
                Order::NewestFirst => {
                    let upper = cursor.unwrap_or(i64::MAX).min(top.saturating_add(1));
                    let lower = upper.saturating_sub(SCAN_SLICE_SEQS);
                    ((upper, lower), lower <= 1)
                }
                Order::OldestFirst => {
                    let end = scan.through.unwrap_or(i64::MAX).min(top);
                    let lower = cursor.unwrap_or(0);
                    let upper = lower.saturating_add(SCAN_SLICE_SEQS).min(end);
                    ((lower, upper), upper >= end)
                }
            };
            let budget = schema::Budget { records: scan.limit.saturating_sub(page.records.len()), bytes_used: bytes };
            let Some((part, used)) = self.scan_slice(scan.clone(), slice, budget, keep.clone(), started).await? else {
                return Ok(None);
            };
            bytes = used;
            let full = part.next_before.is_some();
            page.records.extend(part.records);
            page.links.extend(part.links);
            if full || last || page.records.len() >= scan.limit {
                page.next_before = if full || !last { page.links.last().map(|(seq, _)| *seq) } else { None };
                return Ok(Some(page));
            }
            // The next slice starts where this one ended, in either direction.
            cursor = Some(slice.1);
        }
    }

    /// One slice of a scan, interrupted if its caller goes or the scan's time is up.
    async fn scan_slice(
        &self,
        scan: Arc<Scan>,
        slice: (i64, i64),
        budget: schema::Budget,
        keep: Arc<Mutex<impl FnMut(&AuditRecord) -> bool + Send + 'static>>,
        started: tokio::time::Instant,
    ) -> StoreResult<Option<(AuditPage, usize)>> {
        let running = Interrupter::default();
        let _interrupt_if_abandoned = InterruptOnDrop(running.clone());
        let closed = self.threads.closed.clone();
        let reading = self.read({
            let running = running.clone();
            move |conn| {
                running.arm(conn.get_interrupt_handle());
                let mut keep = keep.lock().unwrap_or_else(|p| p.into_inner());
                let scanned = schema::scan_audit(conn, &scan, slice, budget, &mut *keep);
                running.disarm();
                match scanned {
                    Ok(page) => Ok(Some(page)),
                    // Interrupted by its caller or its deadline, not by the store closing.
                    Err(e) if e.0.contains("interrupted") && !closed.load(Ordering::Acquire) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        });
        tokio::pin!(reading);
        tokio::select! {
            read = &mut reading => read,
            () = tokio::time::sleep_until(started + MAX_SCAN_TIME) => {
                running.interrupt();
                reading.await
            }
        }
    }

    /// Every record made with `access_key_id`, oldest first.
    pub async fn audit_by_access_key(&self, access_key_id: String) -> StoreResult<Vec<AuditRecord>> {
        self.read(move |conn| schema::audit_by_access_key(conn, &access_key_id)).await
    }

    /// System events newest first, below position `before` (time, sequence) when given.
    pub async fn list_events(&self, query: EventQuery, before: Option<(i64, i64)>) -> StoreResult<EventPage> {
        self.read(move |conn| schema::list_events(conn, &query, before)).await
    }

    /// What an outside verifier of records from `first_seq` to `last_seq` needs:
    /// the link they follow, and the signed digests among them.
    pub async fn chain_context(&self, first_seq: i64, last_seq: i64) -> StoreResult<(([u8; 32], i64), Vec<Digest>)> {
        self.read(move |conn| {
            let anchor = schema::link_before(conn, first_seq)?;
            let digests = schema::digests(conn, anchor.1)?.into_iter().filter(|d| d.seq <= last_seq).collect();
            Ok((anchor, digests))
        })
        .await
    }

    /// Signs a digest of everything committed so far (exports call this, so that all they carry is signed);
    /// answers the sequence number of the last record it covers.
    pub async fn sign_digest(&self) -> StoreResult<i64> {
        let (done, wait) = oneshot::channel();
        self.jobs.send(Job::Digest(done)).map_err(|_| StoreError("the store is closed".into()))?;
        wait.await.map_err(|_| StoreError("the store writer stopped".into()))?
    }

    /// The event time of the oldest record kept.
    pub async fn oldest_audit_time(&self) -> StoreResult<Option<SimTime>> {
        self.read(|conn| {
            let oldest: Option<i64> = conn.query_row("SELECT min(time_ms) FROM audit_events", [], |row| row.get(0))?;
            Ok(oldest.map(SimTime))
        })
        .await
    }

    pub async fn oldest_event_time(&self) -> StoreResult<Option<SimTime>> {
        self.read(|conn| {
            let oldest: Option<i64> = conn.query_row("SELECT min(time_ms) FROM system_events", [], |row| row.get(0))?;
            Ok(oldest.map(SimTime))
        })
        .await
    }

    /// The sequence number of the last committed record.
    pub async fn last_audit_seq(&self) -> StoreResult<i64> {
        self.read(schema::last_seq).await
    }

    /// The Ed25519 public key of the audit digests.
    pub fn audit_public_key(&self) -> VerifyingKey {
        self.public_key
    }

    /// Checks the whole audit trail against its chain and signed digests, and
    /// against `kept`, a digest kept outside the store, when given. The store
    /// is open, so its head may be unsigned.
    pub async fn verify_audit(&self, kept: Option<Digest>) -> StoreResult<Result<Verified, Violation>> {
        let key = self.public_key;
        self.read(move |conn| verify_connection(conn, key, kept, Reader::Server)).await
    }

    /// Waits for every commit sent so far, then stops the writer. Other clones become unusable.
    pub fn close(&self) {
        self.threads.stop();
    }
}

/// Moves WAL checkpoints off the commit path. SQLite's automatic checkpoint
/// runs inside the commit that crosses its threshold, so one call in every
/// thousand pages waited for the whole log to be copied into the database
/// and synced. The writer's WAL hook now only notes the log's size and nudges
/// this thread, whose connection checkpoints passively: it copies what no
/// reader still needs while the writer goes on appending. A log starts over
/// only once a checkpoint has caught up with it between two commits, which a
/// checkpointer racing a busy writer rarely manages, so when the log reaches
/// [`CHECKPOINT_INLINE_PAGES`] the writer finishes the job itself, between
/// groups (see [`Checkpoints::finish_if_long`]), after the checkpoint the
/// thread may be running: SQLite refuses a second checkpoint at once rather
/// than wait, and a writer refused that way every time, as on a loaded
/// machine, would let the log grow without bound. The thread stops when the
/// writer drops the hook, and with it the sender: at close, or when its
/// connection goes.
fn start_checkpointer(path: &Path, writer: &mut Connection, kept: bool) -> StoreResult<(JoinHandle<()>, Checkpoints)> {
    let conn = Connection::open(path)?;
    schema::configure_file(&conn, Durability::Full, kept)?;
    let (nudge, nudged) = mpsc::sync_channel::<()>(1);
    let log_pages = Arc::new(AtomicI32::new(0));
    let noted = log_pages.clone();
    // Replaces SQLite's own automatic checkpoint, which is itself a WAL hook. It must not fail: an
    // error from here would fail a commit that has already happened.
    writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
        noted.store(pages, Ordering::Relaxed);
        if pages >= CHECKPOINT_PAGES {
            // Full means a checkpoint is already due; the nudge is not lost.
            let _ = nudge.try_send(());
        }
        Ok(())
    }))?;
    // Dropped when the thread ends, which is how the writer learns that it has.
    let (running, ended) = mpsc::channel::<()>();
    let one_at_a_time = Arc::new(Mutex::new(()));
    let turn = one_at_a_time.clone();
    let thread = std::thread::Builder::new()
        .name("kmsim-checkpoint".into())
        .spawn(move || {
            let _running = running;
            while nudged.recv().is_ok() {
                let _turn = turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                    log_checkpoint_failure(&e);
                }
            }
        })
        .map_err(|e| StoreError(e.to_string()))?;
    Ok((thread, Checkpoints { log_pages: Some(log_pages), checkpointer_ended: Some(ended), one_at_a_time }))
}

/// The writer's view of the WAL's size, as its hook last reported it.
#[derive(Default)]
struct Checkpoints {
    /// Absent in a bulk store, which has no log.
    log_pages: Option<Arc<AtomicI32>>,
    /// Disconnects once the checkpointer thread has ended.
    checkpointer_ended: Option<mpsc::Receiver<()>>,
    /// Held by whichever of the writer and the checkpointer is checkpointing.
    one_at_a_time: Arc<Mutex<()>>,
}

impl Checkpoints {
    /// Checkpoints on the writer's own connection once the log is long. The
    /// checkpointer has usually copied most of it already, so this is short.
    fn finish_if_long(&self, conn: &Connection) {
        let Some(pages) = &self.log_pages else { return };
        if pages.load(Ordering::Relaxed) < CHECKPOINT_INLINE_PAGES {
            return;
        }
        // The checkpointer's checkpoint is already copying most of the log; wait it out rather than be refused.
        let _turn = self.one_at_a_time.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok(_) => pages.store(0, Ordering::Relaxed),
            Err(e) => log_checkpoint_failure(&e),
        }
    }

    /// Copies the whole log into the database and empties it, so that after a
    /// clean stop `kmsim.db` alone is the complete store: the file a user copies
    /// or opens with another SQLite client. SQLite would do this itself when the
    /// last connection closes, but the last to close is the reader, which is
    /// read-only and may not. Waits out a checkpoint the checkpointer is still
    /// running; a failure leaves the log in place, which the next open
    /// replays, so it is only logged.
    fn finish_on_close(&mut self, conn: &mut Connection) {
        let Some(checkpointer_ended) = self.checkpointer_ended.take() else { return };
        // SQLite runs one checkpoint at a time and refuses a second at once, without the busy timeout.
        // Removing the hook drops the checkpointer's nudges, so it stops after the one it may be running.
        type Hook = fn(&mut rusqlite::hooks::Wal, std::ffi::c_int) -> rusqlite::Result<()>;
        match conn.wal_hook(None::<Hook>) {
            Ok(()) => {
                let _ = checkpointer_ended.recv();
            }
            Err(e) => tracing::warn!(error = %e, "could not stop the WAL checkpointer before the last checkpoint"),
        }
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::TRUNCATE) {
            Ok(_) => tracing::debug!("WAL checkpointed into the database at close"),
            Err(e) => tracing::warn!(error = %e, "could not checkpoint the WAL at close; the next start replays it"),
        }
    }
}

/// The writer's and the checkpointer's checkpoints can collide, and the loser
/// is refused as busy: harmless, since the next one goes on where it stopped.
fn log_checkpoint_failure(e: &rusqlite::Error) {
    let busy =
        matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked));
    if busy {
        tracing::debug!(error = %e, "WAL checkpoint collided with another; the next one goes on");
    } else {
        tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
    }
}

/// Stops any statement on `reader` once `closed` is set. At close the writer
/// copies the whole log into the database (see [`Checkpoints::finish_on_close`]),
/// which must wait for every reader: a long search still reading after the
/// server's shutdown grace would hold the process up for the busy timeout and
/// then leave the log behind. SQLite's progress handler, unlike its interrupt,
/// also stops a statement that starts after the store has closed.
fn interrupt_reads_once_closed(reader: &mut Connection, closed: Arc<AtomicBool>) -> StoreResult<()> {
    /// Virtual machine steps between checks: a few microseconds.
    const STEPS: std::ffi::c_int = 1000;
    reader.progress_handler(STEPS, Some(move || closed.load(Ordering::Acquire)))?;
    Ok(())
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// The writer's end of the audit chain: its head and the key that signs digests.
struct AuditChain {
    head: schema::ChainHead,
    key: SigningKey,
    last_digest: Instant,
    /// Whether a minute of wall-clock time also makes a digest due (not in a bulk store).
    digest_by_wall_time: bool,
}

impl AuditChain {
    /// Links the next record. A digest closes each simulated day of records
    /// first, so retention can cut the trail at the end of a day and the rest
    /// still verifies from a signed point.
    fn append(&mut self, conn: &Connection, canonical: &[u8], time: SimTime) -> StoreResult<(i64, [u8; 32])> {
        let day = |t: SimTime| t.millis().div_euclid(SimTime::MS_PER_DAY);
        if self.head.unsigned > 0 && day(self.head.time) != day(time) {
            self.sign(conn)?;
        }
        Ok(self.head.append(canonical, time))
    }

    /// Signs the head when enough records or time have gone by since the last digest, or when `closing`.
    fn digest_due(&self, closing: bool) -> bool {
        self.head.unsigned > 0
            && (closing
                || self.head.unsigned >= DIGEST_EVERY_RECORDS
                || self.digest_by_wall_time && self.last_digest.elapsed() >= DIGEST_EVERY)
    }

    fn sign(&mut self, conn: &Connection) -> StoreResult<()> {
        let digest = Digest::sign(&self.key, self.head.seq, self.head.time.millis(), self.head.link);
        schema::insert_digest(conn, &digest)?;
        self.head.unsigned = 0;
        self.last_digest = Instant::now();
        Ok(())
    }
}

fn writer_loop(
    mut conn: Connection,
    mut chain: AuditChain,
    mut checkpoints: Checkpoints,
    max_group: usize,
    jobs: mpsc::Receiver<Job>,
) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = jobs.recv() else { break };
        let mut batch = vec![first];
        while batch.len() < max_group {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut commits = Vec::new();
        let mut digests = Vec::new();
        for job in batch {
            match job {
                Job::Commit(commit) => commits.push(commit),
                Job::Digest(done) => digests.push(done),
                Job::Stop => stopping = true,
            }
        }
        if !commits.is_empty() {
            commit_group(&mut conn, &mut chain, commits);
            checkpoints.finish_if_long(&conn);
        }
        if !digests.is_empty() {
            let signed = if chain.digest_due(true) { chain.sign(&conn) } else { Ok(()) };
            let signed = signed.map(|()| chain.head.seq);
            for done in digests {
                let _ = done.send(signed.clone());
            }
        }
    }
    if let Err(e) = close_trail(&mut conn, &mut chain) {
        tracing::error!(error = %e, "could not sign the final audit digest; the store stays marked open");
    }
    checkpoints.finish_on_close(&mut conn);
}

/// A clean stop signs the head and, in the same transaction, removes the open
/// marker: a store without it must have its head signed, so records appended
/// or digests removed after a clean stop are a violation, not an unsigned tail.
fn close_trail(conn: &mut Connection, chain: &mut AuditChain) -> StoreResult<()> {
    let tx = conn.transaction()?;
    if chain.digest_due(true) {
        chain.sign(&tx)?;
    }
    tx.execute("DELETE FROM meta WHERE name = ?1", params![schema::OPEN_MARKER])?;
    tx.commit()?;
    Ok(())
}

fn commit_group(conn: &mut Connection, chain: &mut AuditChain, commits: Vec<PendingCommit>) {
    let mut outcomes = Vec::with_capacity(commits.len());
    let before = chain.head.clone();
    let group = (|| -> StoreResult<()> {
        let mut tx = conn.transaction()?;
        for commit in commits {
            let result = persist_in_savepoint(&mut tx, &commit.changes, &commit.records, chain);
            outcomes.push((result, commit.done));
        }
        if chain.digest_due(false) {
            chain.sign(&tx)?;
        }
        tx.commit()?;
        Ok(())
    })();
    if group.is_err() {
        // Nothing of the group was written, so the chain is where it was.
        chain.head = before;
    }
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

/// A savepoint rolls back when dropped uncommitted, so a failed batch leaves no
/// trace, in the store or in the chain.
fn persist_in_savepoint(
    tx: &mut Transaction<'_>,
    changes: &[Change],
    records: &[EncodedRecord],
    chain: &mut AuditChain,
) -> StoreResult<()> {
    let before = chain.head.clone();
    let savepoint = tx.savepoint()?;
    let result = schema::persist(&savepoint, changes, records, chain).and_then(|()| Ok(savepoint.commit()?));
    if result.is_err() {
        chain.head = before;
    }
    result
}

/// Whether verification asks the store how it was left, or knows it is open.
#[derive(Clone, Copy)]
enum Reader {
    /// The store's own writer is running: its head may be unsigned.
    Server,
    /// Someone else's data directory: its open marker says whether the head must be signed.
    Offline,
}

fn verify_connection(
    conn: &Connection,
    key: VerifyingKey,
    kept: Option<Digest>,
    reader: Reader,
) -> StoreResult<Result<Verified, Violation>> {
    // One snapshot: retention, a digest or a clean stop committing between the reads must not look like tampering.
    let snapshot = conn.unchecked_transaction()?;
    let stopped_cleanly = match reader {
        Reader::Server => None,
        Reader::Offline => schema::stopped_cleanly(&snapshot)?,
    };
    let tail = match stopped_cleanly {
        Some(true) => Tail::SignedAtStop,
        Some(false) | None => Tail::MayBeUnsigned,
    };
    let anchor = match schema::checked_anchor(&snapshot)? {
        Ok(anchor) => anchor,
        Err(violation) => return Ok(Err(violation)),
    };
    // The anchor's own digest is among those checked, so a pruned trail starts from a signed point.
    let verifier = Verifier::new(key, anchor, schema::digests(&snapshot, anchor.1 - 1)?);
    let mut verifier = match verifier.and_then(|verifier| match kept {
        Some(kept) => verifier.keeping(kept),
        None => Ok(verifier),
    }) {
        Ok(verifier) => verifier,
        Err(violation) => return Ok(Err(violation)),
    };
    Ok(match schema::verify_rows(&snapshot, anchor.1, &mut verifier)? {
        Ok(()) => verifier.finish(tail).map(|verified| Verified { stopped_cleanly, ..verified }),
        Err(violation) => Err(violation),
    })
}

/// Verifies the audit trail of the data directory `dir` without a server,
/// reading it only; `key`, when given, is the public key to trust instead of
/// the one the directory holds (which a forger could have replaced), and
/// `kept` a digest kept outside the directory, which the trail must reach and
/// agree with. A store that was stopped cleanly must have its head signed.
pub fn verify_dir(
    dir: &Path,
    key: Option<VerifyingKey>,
    kept: Option<Digest>,
) -> StoreResult<Result<Verified, Violation>> {
    let path = dir.join(private::DB_FILE);
    if !path.exists() {
        return Err(StoreError(format!("{} does not exist", path.display())));
    }
    let conn = open_reader(&path)?;
    let key = match key {
        Some(key) => key,
        None => match meta_value(&conn, "audit_signing_key")? {
            Some(seed) => {
                let seed: [u8; 32] = seed.try_into().map_err(|_| StoreError("audit_signing_key is corrupt".into()))?;
                SigningKey::from_bytes(&seed).verifying_key()
            }
            None => return Err(StoreError("the data directory has no audit signing key".into())),
        },
    };
    verify_connection(&conn, key, kept, Reader::Offline)
}

/// Reads one value from the meta table.
fn meta_value(conn: &Connection, name: &str) -> StoreResult<Option<Vec<u8>>> {
    Ok(conn.query_row("SELECT value FROM meta WHERE name = ?1", params![name], |row| row.get(0)).optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::PayloadSizes;
    use crate::context::CallContext;
    use crate::kernel::OpSpec;

    /// A scan armed for interruption stops where it is once interrupted from
    /// another thread; disarmed, the connection is never interrupted again.
    #[test]
    fn a_scan_whose_caller_is_gone_is_interrupted() {
        let conn = Connection::open_in_memory().expect("a connection");
        let running = Interrupter::default();
        running.arm(conn.get_interrupt_handle());
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scan = std::thread::spawn({
            let finished = finished.clone();
            move || {
                let endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) \
                               SELECT count(*) FROM n WHERE x < 0";
                let result = conn.query_row(endless, [], |row| row.get::<_, i64>(0));
                finished.store(true, std::sync::atomic::Ordering::Release);
                result
            }
        });
        // The caller goes away, perhaps before the statement has begun: keep telling it until it stops.
        while !finished.load(std::sync::atomic::Ordering::Acquire) {
            drop(InterruptOnDrop(running.clone()));
            std::thread::yield_now();
        }
        let error = scan.join().expect("the scan thread").expect_err("the endless scan was interrupted");
        assert!(StoreError::from(error).0.contains("interrupted"));
        running.disarm();
        running.interrupt();
    }

    fn padded_record(i: i64) -> AuditRecord {
        let cx = CallContext::internal("cn-hangzhou", "1192853035118460", SimTime(1_700_000_000_000 + i));
        let padding = serde_json::json!({ "Description": "x".repeat(2000) });
        AuditRecord::for_call(&OpSpec::DESCRIBE_KEY, &cx, padding, PayloadSizes::default(), None)
    }

    /// The records of an in-memory store that `selection` keeps, by sequence, with or without the text pre-filter.
    async fn scanned(store: &Store, selection: &Arc<crate::audit::selection::Selection>, prefilter: bool) -> Vec<i64> {
        let contains = if prefilter { selection.required_text() } else { Vec::new() };
        let scan = Scan {
            range: selection.range,
            order: Order::OldestFirst,
            from: None,
            through: None,
            limit: 1000,
            contains,
        };
        let selection = selection.clone();
        let page =
            store.scan_audit(scan, move |r| selection.matches(r)).await.unwrap().expect("the scan finishes in time");
        page.links.into_iter().map(|(seq, _)| seq).collect()
    }

    fn record_with(user_agent: &str, key_id: &str, detail: &str, i: i64) -> AuditRecord {
        let cx = CallContext::internal("cn-hangzhou", "1192853035118460", SimTime(1_700_000_000_000 + i));
        let parameters = serde_json::json!({ "KeyId": key_id, "Detail": detail });
        let mut record = AuditRecord::for_call(&OpSpec::ENCRYPT, &cx, parameters, PayloadSizes::default(), None);
        (record.user_agent, record.key_id) = (user_agent.to_owned(), key_id.to_owned());
        // Every other record is kmsim's own call, with no address: ActionTrail shows "Internal" instead.
        record.client_ip = if i % 2 == 0 { key_id.to_owned() } else { String::new() };
        record
    }

    /// A scan across many slices finds exactly what one walk would, in order,
    /// and pages on from where a full page stopped, in both directions.
    #[tokio::test]
    async fn a_scan_in_slices_finds_what_one_walk_would() {
        let (store, _) = Store::open(&Location::InMemory).unwrap();
        let total = 2 * SCAN_SLICE_SEQS + 500;
        let records: Vec<AuditRecord> =
            (0..total).map(|i| record_with("sdk", if i % 9_000 == 4 { "wanted" } else { "other" }, "", i)).collect();
        for chunk in records.chunks(5_000) {
            store.commit(Vec::new(), chunk).await.unwrap();
        }
        let wanted: Vec<i64> = (1..=total).filter(|seq| (seq - 1) % 9_000 == 4).collect();
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let mut expected = wanted.clone();
            if order == Order::NewestFirst {
                expected.reverse();
            }
            let (mut found, mut from) = (Vec::new(), None);
            loop {
                let scan = Scan {
                    range: (SimTime(i64::MIN), SimTime(i64::MAX)),
                    order,
                    from,
                    through: None,
                    limit: 2,
                    contains: Vec::new(),
                };
                let page = store.scan_audit(scan, |r| r.key_id == "wanted").await.unwrap().expect("in time");
                found.extend(page.links.iter().map(|(seq, _)| *seq));
                match page.next_before {
                    Some(seq) => from = Some(seq),
                    None => break,
                }
            }
            assert_eq!(found, expected, "{order:?}");
        }
    }

    /// A grant is kept across a restart, and goes when its key is deleted.
    #[tokio::test]
    async fn grants_outlive_a_restart_and_die_with_their_key() {
        let data = tempfile::tempdir().unwrap();
        let location = Location::Dir(data.path().join("kmsim"));
        let grant = crate::engine::Grant {
            grant_id: "ab".repeat(32),
            region: "us-east-1".into(),
            key_id: "key-1".into(),
            name: "app".into(),
            grantee_principal: "arn:aws:iam::111122223333:user/app".into(),
            retiring_principal: String::new(),
            operations: vec!["Encrypt".into()],
            constraints: crate::engine::GrantConstraints::default(),
            issuing_account: "111122223333".into(),
            creation_date: SimTime(1_700_000_000_000),
        };
        let (store, _) = Store::open(&location).unwrap();
        store.commit(vec![Change::SaveGrant(Arc::new(grant.clone()))], &[padded_record(0)]).await.unwrap();
        store.close();
        drop(store);
        let (store, loaded) = Store::open(&location).unwrap();
        assert_eq!(loaded.snapshot.grants, [grant]);
        let deleted = Change::DeleteKey { region: "us-east-1".into(), key_id: "key-1".into() };
        store.commit(vec![deleted], &[padded_record(1)]).await.unwrap();
        store.close();
        drop(store);
        let (_, loaded) = Store::open(&location).unwrap();
        assert!(loaded.snapshot.grants.is_empty());
    }

    /// A store that nothing outlives, and a data dir in `data`.
    fn both_locations(data: &Path) -> [Location; 2] {
        [Location::InMemory, Location::Dir(data.to_path_buf())]
    }

    async fn with_one_record(location: &Location) -> Store {
        let (store, _) = Store::open(location).unwrap();
        store.commit(Vec::new(), &[padded_record(0)]).await.unwrap();
        store
    }

    /// A read in progress, however long, never holds a commit, in a store that nothing outlives as in a data
    /// dir: the read has a connection of its own, and keeps the snapshot it began with.
    #[tokio::test]
    async fn a_commit_never_waits_for_a_read_in_progress() {
        let data = tempfile::tempdir().unwrap();
        for location in both_locations(data.path()) {
            let store = with_one_record(&location).await;
            let (began, reading_began) = oneshot::channel();
            let (release, released) = mpsc::channel::<()>();
            let reading = tokio::spawn({
                let store = store.clone();
                async move {
                    store
                        .read(move |conn| {
                            let snapshot = conn.unchecked_transaction()?;
                            let before = schema::last_seq(&snapshot)?;
                            let _ = began.send(());
                            // Holds its snapshot until the commit below has finished, or has failed to.
                            let _ = released.recv();
                            Ok((before, schema::last_seq(&snapshot)?))
                        })
                        .await
                }
            });
            reading_began.await.expect("the read began");
            // Bounded only so that a commit stuck behind the read fails the test rather than hanging it.
            let committed =
                tokio::time::timeout(Duration::from_secs(60), store.commit(Vec::new(), &[padded_record(1)])).await;
            release.send(()).unwrap();
            committed.unwrap_or_else(|_| panic!("{location:?}: the commit waited for the read")).unwrap();
            assert_eq!(reading.await.unwrap().unwrap(), (1, 1), "{location:?}: the read kept its snapshot");
            assert_eq!(store.last_audit_seq().await.unwrap(), 2, "{location:?}");
            store.close();
        }
    }

    /// A read still running when the store closes (a search past the server's shutdown grace) stops, says why,
    /// and does not hold up the close, which still leaves `kmsim.db` complete (its log emptied into it).
    #[tokio::test]
    async fn closing_stops_a_read_still_running() {
        let data = tempfile::tempdir().unwrap();
        for location in both_locations(data.path()) {
            let store = with_one_record(&location).await;
            let (began, reading_began) = oneshot::channel();
            let stop_if_stuck = Interrupter::default();
            let reading = tokio::spawn({
                let (store, stop_if_stuck) = (store.clone(), stop_if_stuck.clone());
                async move {
                    store
                        .read(move |conn| {
                            stop_if_stuck.arm(conn.get_interrupt_handle());
                            let _ = began.send(());
                            let endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) \
                                           SELECT count(*) FROM n WHERE x < 0";
                            Ok(conn.query_row(endless, [], |row| row.get::<_, i64>(0))?)
                        })
                        .await
                }
            });
            reading_began.await.expect("the read began");
            let closing = tokio::task::spawn_blocking({
                let store = store.clone();
                move || store.close()
            });
            // Bounded only so that a read nothing stops fails the test rather than hanging it.
            let Ok(read) = tokio::time::timeout(Duration::from_secs(60), reading).await else {
                stop_if_stuck.interrupt();
                panic!("{location:?}: the read went on after the store closed");
            };
            let error = read.unwrap().unwrap_err();
            assert!(error.to_string().contains("the store closed"), "{location:?}: {error}");
            closing.await.unwrap();
            if let Location::Dir(dir) = &location {
                let wal = std::fs::metadata(dir.join("kmsim.db-wal")).map(|m| m.len()).unwrap_or(0);
                assert_eq!(wal, 0, "the log was copied into kmsim.db at close");
            }
        }
    }

    #[tokio::test]
    async fn the_text_prefilter_keeps_what_the_stored_text_does_not_spell_out() {
        let (store, _) = Store::open(&Location::InMemory).unwrap();
        // U+212A KELVIN SIGN lower-cases to an ASCII `k`, which SQLite's LIKE cannot know.
        let records = [record_with("\u{212A}msim-cli", "key-1", "", 0), record_with("other", "key-2", "", 1)];
        store.commit(Vec::new(), &records).await.unwrap();
        let selection = Arc::new(crate::audit::selection::Selection::new("userAgent: KMSIM*", "", "").unwrap());
        assert_eq!(selection.required_text(), ["kmsim"]);
        assert_eq!(scanned(&store, &selection, true).await, scanned(&store, &selection, false).await);
        assert_eq!(scanned(&store, &selection, true).await.len(), 1);
        // A piece too long for SQLite's LIKE cannot even be asked for: the query is over its size limit.
        let long = format!("userAgent: \"kmsim{}\"", "x".repeat(60_000));
        assert!(crate::audit::selection::Selection::new(&long, "", "").is_err());
        // ActionTrail copies the user agent as it is, so its spelling filters the same.
        let selection = Arc::new(crate::audit::selection::Selection::new("event.userAgent: KMSIM*", "", "").unwrap());
        assert_eq!(selection.required_text(), ["kmsim"]);
        assert_eq!(scanned(&store, &selection, true).await.len(), 1);
        // ActionTrail's source address is the record's, unless a stand-in is: a term no stand-in matches
        // filters on the record's text, and one a stand-in matches filters nothing.
        let selection =
            Arc::new(crate::audit::selection::Selection::new("event.sourceIpAddress: KEY-1", "", "").unwrap());
        assert_eq!(selection.required_text(), ["key-1"]);
        assert_eq!(scanned(&store, &selection, true).await.len(), 1);
        for stood_in in ["Internal", "internal", "INT*", "kms.aliyuncs.com", "kms*", "KMS.ALIYUNCS*"] {
            let query = format!("event.sourceIpAddress: {stood_in}");
            let selection = Arc::new(crate::audit::selection::Selection::new(&query, "", "").unwrap());
            assert!(selection.required_text().is_empty(), "{query}");
        }
        let selection =
            Arc::new(crate::audit::selection::Selection::new("event.sourceIpAddress: Internal", "", "").unwrap());
        assert_eq!(scanned(&store, &selection, true).await.len(), 1);
        // ActionTrail's time is a rendering of the stored number, so a term on it filters nothing.
        let selection = Arc::new(
            crate::audit::selection::Selection::new(r#"event.eventTime: "2023-11-14T22:13:20Z""#, "", "").unwrap(),
        );
        assert!(selection.required_text().is_empty());
        assert_eq!(scanned(&store, &selection, true).await.len(), 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The pre-filter only saves decoding: whatever the records hold (escapes, LIKE's own wildcards,
        /// case, text beyond ASCII) and whatever the query, the scan keeps exactly what it keeps without it.
        #[test]
        fn the_text_prefilter_never_changes_what_a_scan_keeps(
            ascii in proptest::collection::vec("[a-cA-C%_\\\\\"\\.:/ k-]{1,10}", 6),
            beyond_ascii in proptest::collection::vec("[a-cA-C%_\\\\\"\\.:/ \u{e9}\u{212A}k-]{1,10}", 3),
            picks in proptest::collection::vec((0usize..3, 0usize..8, proptest::bool::ANY, 0usize..4), 1..4),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (store, _) = Store::open(&Location::InMemory).unwrap();
                // Two records whose text is all ASCII, which LIKE decides, and one that is not.
                let texts: Vec<&String> = ascii.iter().chain(&beyond_ascii).collect();
                let records: Vec<AuditRecord> =
                    texts.chunks(3).enumerate().map(|(i, t)| record_with(t[0], t[1], t[2], i as i64)).collect();
                store.commit(Vec::new(), &records).await.unwrap();
                // Each field with the record text (0, 1 or 2) it holds: the record's own spellings, and
                // ActionTrail's, which copies the record's values there.
                let fields = [
                    ("userAgent", 0),
                    ("keyId", 1),
                    ("requestParameters.Detail", 2),
                    ("event.userAgent", 0),
                    ("event.requestParameters.KeyId", 1),
                    ("event.requestParameters.Detail", 2),
                    // The record's address, or "Internal" standing in for none (odd records).
                    ("event.sourceIpAddress", 1),
                    ("event.sourceIpAddress", 3),
                ];
                let internal = "Internal".to_owned();
                // Each term quotes the end of one record's value in that field, in upper or lower case.
                let terms: Vec<String> = picks
                    .iter()
                    .map(|&(record, field, lower, cut)| {
                        let (field, text) = fields[field];
                        let text = if text == 3 { &internal } else { texts[record * 3 + text] };
                        let chars: Vec<char> = text.chars().collect();
                        let piece: String = chars[cut.min(chars.len() - 1)..].iter().collect();
                        // Lower case turns the Kelvin sign into an ASCII `k`, which the store's LIKE cannot fold.
                        let piece = if lower { piece.to_lowercase() } else { piece.to_uppercase() };
                        let quoted = piece.replace('\\', "\\\\").replace('"', "\\\"");
                        format!("{field}: \"{quoted}\"")
                    })
                    .collect();
                let joiner = if picks[0].2 { " AND " } else { " OR " };
                let selection = Arc::new(crate::audit::selection::Selection::new(&terms.join(joiner), "", "").unwrap());
                let with = scanned(&store, &selection, true).await;
                let without = scanned(&store, &selection, false).await;
                proptest::prop_assert_eq!(with, without, "{}", terms.join(joiner));
                Ok(())
            })?;
        }
    }

    /// A data dir as a kmsim of schema `version` left it, with `records` stored the way it stored them;
    /// `linked` of them carry the link the chain gives them (an older start that was cut off while linking).
    fn legacy_store(dir: &Path, version: usize, records: &[AuditRecord], linked: usize) {
        let conn = Connection::open(dir.join("kmsim.db")).unwrap();
        schema::migrate_to(&conn, version);
        let mut previous = crate::audit::chain::GENESIS;
        for (i, record) in records.iter().enumerate() {
            let seq = i as i64 + 1;
            let text = record.to_json();
            previous = crate::audit::chain::link(&previous, seq, text.as_bytes());
            conn.execute(
                "INSERT INTO audit_events (seq, event_id, time_ms, service_name, event_name, key_id, error_code, record) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    seq,
                    record.event_id,
                    record.event_time.millis(),
                    record.service_name,
                    record.event_name,
                    record.key_id,
                    record.error_code,
                    text
                ],
            )
            .unwrap();
            if i < linked {
                conn.execute("UPDATE audit_events SET chain = ?1 WHERE seq = ?2", params![&previous[..], seq]).unwrap();
            }
        }
    }

    /// Records from before the chain existed are linked by the migration that makes links mandatory, once: in
    /// a store that never had a signing key (the first start of a chaining kmsim made one after linking them).
    #[tokio::test]
    async fn records_from_before_the_chain_are_linked_once_by_the_migration() {
        let records: Vec<AuditRecord> = (0..60).map(padded_record).collect();
        // Before the chain (schema 4), and after it but with an older start cut off while linking (schema 8).
        for (version, linked) in [(4, 0), (8, 40)] {
            let dir = tempfile::tempdir().unwrap();
            legacy_store(dir.path(), version, &records, linked);
            let location = Location::Dir(dir.path().to_path_buf());
            let (store, _) = Store::open(&location).unwrap();
            let verified = store.verify_audit(None).await.unwrap().unwrap();
            assert_eq!((verified.records, verified.unsigned_tail), (60, 60), "schema {version}");
            store.commit(Vec::new(), &[padded_record(60)]).await.unwrap();
            assert_eq!(store.last_audit_seq().await.unwrap(), 61);
            store.close();
            let verified = verify_dir(dir.path(), None, None).unwrap().unwrap();
            assert_eq!((verified.records, verified.unsigned_tail, verified.stopped_cleanly), (61, 0, Some(true)));
        }
    }

    /// Once a store has a chain, a record without its link is a removed link: the store neither links it
    /// again nor signs over it, and says where the trail breaks.
    #[tokio::test]
    async fn a_chained_store_never_links_a_record_again() {
        for (clear_from, delete_digests) in [(1, true), (40, false), (61, false)] {
            let dir = tempfile::tempdir().unwrap();
            let location = Location::Dir(dir.path().to_path_buf());
            let (store, _) = Store::open(&location).unwrap();
            store.commit(Vec::new(), &(0..61).map(padded_record).collect::<Vec<_>>()).await.unwrap();
            store.close();
            drop(store);
            let conn = Connection::open(dir.path().join("kmsim.db")).unwrap();
            conn.execute("UPDATE audit_events SET chain = NULL WHERE seq >= ?1", [clear_from]).unwrap();
            if delete_digests {
                conn.execute("DELETE FROM audit_digests", []).unwrap();
            }
            drop(conn);

            let refused = Store::open(&location).err().expect("a store with a removed link does not open");
            assert!(refused.to_string().contains("kmsim audit verify"), "{refused}");
            let violation = verify_dir(dir.path(), None, None).unwrap().unwrap_err();
            assert_eq!(violation.seq, clear_from, "{violation}");
            assert!(violation.reason.contains("no chain link"), "{violation}");
            let conn = Connection::open(dir.path().join("kmsim.db")).unwrap();
            let unlinked: i64 =
                conn.query_row("SELECT count(*) FROM audit_events WHERE chain IS NULL", [], |row| row.get(0)).unwrap();
            assert_eq!(unlinked, 62 - clear_from, "nothing was linked again");
        }
    }

    /// A copy of the store files in `dir` as they are now: what a crash at this moment leaves.
    fn snapshot(dir: &Path) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        for name in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm"] {
            if dir.join(name).exists() {
                std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
            }
        }
        copy
    }

    /// A store that crashed may have records after its last digest; one stopped cleanly signed its head, so
    /// records after its last digest there mean its digests were removed or records were appended.
    #[tokio::test]
    async fn only_a_store_that_was_not_stopped_cleanly_may_have_an_unsigned_tail() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Dir(dir.path().to_path_buf());
        let (store, _) = Store::open(&location).unwrap();
        store.commit(Vec::new(), &(0..5).map(padded_record).collect::<Vec<_>>()).await.unwrap();
        store.sign_digest().await.unwrap();
        store.commit(Vec::new(), &(5..8).map(padded_record).collect::<Vec<_>>()).await.unwrap();
        let crashed = snapshot(dir.path());
        store.close();

        let verified = verify_dir(crashed.path(), None, None).unwrap().unwrap();
        assert_eq!((verified.unsigned_tail, verified.stopped_cleanly), (3, Some(false)), "{verified:?}");
        assert_eq!(verified.last_digest.map(|d| d.seq), Some(5));
        let (restarted, _) = Store::open(&Location::Dir(crashed.path().to_path_buf())).unwrap();
        restarted.commit(Vec::new(), &[padded_record(8)]).await.unwrap();
        restarted.close();
        let verified = verify_dir(crashed.path(), None, None).unwrap().unwrap();
        assert_eq!((verified.records, verified.unsigned_tail, verified.stopped_cleanly), (9, 0, Some(true)));

        let verified = verify_dir(dir.path(), None, None).unwrap().unwrap();
        assert_eq!((verified.first_seq, verified.last_seq, verified.digests), (1, 8, 2), "{verified:?}");
        assert_eq!((verified.unsigned_tail, verified.stopped_cleanly), (0, Some(true)));
        assert_eq!(verified.last_digest.map(|d| d.seq), Some(8));
        let conn = Connection::open(dir.path().join("kmsim.db")).unwrap();
        conn.execute("DELETE FROM audit_digests WHERE seq = 8", []).unwrap();
        drop(conn);
        let violation = verify_dir(dir.path(), None, None).unwrap().unwrap_err();
        assert_eq!(violation.seq, 6, "{violation}");
        assert!(violation.reason.contains("stopped cleanly"), "{violation}");
        let refused =
            Store::open(&location).err().expect("a cleanly stopped store with an unsigned tail does not open");
        assert!(refused.to_string().contains("records 6 to 8"), "{refused}");
    }

    #[tokio::test]
    async fn a_bulk_store_writes_one_file_of_large_pages_that_a_durable_store_then_serves() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Dir(dir.path().to_path_buf());
        let (bulk, _) = Store::open_with(&location, Durability::Bulk).unwrap();
        for batch in 0..4 {
            bulk.commit(Vec::new(), &(0..50).map(|i| padded_record(batch * 50 + i)).collect::<Vec<_>>()).await.unwrap();
        }
        let files = || {
            let mut names: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            names
        };
        assert_eq!(files(), ["kmsim.db"], "no write-ahead log, even while open");
        bulk.close();
        drop(bulk);
        let conn = Connection::open(dir.path().join("kmsim.db")).unwrap();
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0)).unwrap();
        assert_eq!(page_size, 16_384);
        drop(conn);

        let (served, _) = Store::open(&location).unwrap();
        assert_eq!(served.last_audit_seq().await.unwrap(), 200);
        served.commit(Vec::new(), &[padded_record(200)]).await.unwrap();
        assert!(served.verify_audit(None).await.unwrap().is_ok());
        served.close();
    }

    #[tokio::test]
    async fn a_long_log_of_small_commits_is_checkpointed_without_failing_any() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&Location::Dir(dir.path().to_path_buf())).unwrap();
        // One record per transaction, each dirtying the table and its indexes: well past the writer's
        // own threshold, which it must cross without failing a commit that has happened.
        let commits = 3000;
        for i in 0..commits {
            store.commit(Vec::new(), &[padded_record(i)]).await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("kmsim.db-wal")).unwrap().len();
        assert!(wal < 20_000_000, "the WAL grew to {wal} bytes");
        assert_eq!(store.last_audit_seq().await.unwrap(), commits);
        store.close();
    }

    #[tokio::test]
    async fn the_checkpointer_keeps_the_log_bounded_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&Location::Dir(dir.path().to_path_buf())).unwrap();
        // About 2.5 KB per record: 50 MB of log if nothing were checkpointed.
        let (groups, per_group) = (200, 100);
        for group in 0..groups {
            let records: Vec<_> = (0..per_group).map(|i| padded_record(group * per_group + i)).collect();
            store.commit(Vec::new(), &records).await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("kmsim.db-wal")).unwrap().len();
        assert!(wal < 20_000_000, "the WAL grew to {wal} bytes");
        assert_eq!(store.last_audit_seq().await.unwrap(), groups * per_group);
        store.close();
        drop(store);
        let (reopened, _) = Store::open(&Location::Dir(dir.path().to_path_buf())).unwrap();
        assert_eq!(reopened.last_audit_seq().await.unwrap(), groups * per_group);
        assert!(reopened.verify_audit(None).await.unwrap().is_ok());
        reopened.close();
    }
}
