//! Micro-benchmarks of the audit trail: committing records, encoding them,
//! evaluating a search against them, and a selective search over a store of
//! one million records. Each group has a baseline measured in the same run
//! (the in-memory store, a clone of the record, a query on a prebuilt
//! document, SQL that reads the rows without decoding them), so the ratios
//! hold even when the shared machine's absolute times drift.
//!
//! - `commit/{file,memory}/{sequential,concurrent_64,one_call_512}`: records
//!   per second through `Store::commit`: one record per call awaited in turn
//!   (64 per iteration), one record per call from 64 tasks at once, 8 calls
//!   each (group commit), and those 512 records in a single call. `file` is a
//!   data directory in a temp dir (WAL, `synchronous=FULL`, as `kmsim serve`
//!   runs); `memory` is the same writer with no disk, the baseline for the
//!   cost of the fsync.
//! - `encode/*`: one record cloned (the baseline), as native JSON (through
//!   serde, and directly as the store writes it), decoded back, rendered as
//!   ActionTrail and CloudTrail (as `Value`s and as text), and as the
//!   document a query searches.
//! - `query/*`: parsing the seed query, and matching it against a record
//!   (`selection`, which builds the searchable document first) or against a
//!   prebuilt document (`prebuilt`).
//! - `scan_1m/*`: `Store::scan_audit` with that query over 1,000,000 records
//!   of which 0.1% match, newest first: all of them (`query_full`), beside
//!   the same scan keeping nothing (`decode_only`), SQL that steps through
//!   scan_audit's own statement or walks the table by sequence number reading
//!   each record's text without decoding it (`sql_rows_*`), and the selection
//!   as SQL on the `error_code` column (`sql_error_code`); and the first 100
//!   matches (`newest/query_limit_100`, which reads the newest 100,993
//!   records) beside walking those records in SQL.
//!
//! The one-million-record store is built on first use (about a minute) in
//! `target/kmsim-bench-1m/` and reused while it holds the expected records;
//! delete the directory to rebuild it. Filtering the run (as below) skips the
//! build when no `scan_1m` benchmark is selected.
//!
//! ```text
//! cargo bench --bench audit
//! cargo bench --bench audit -- '^(commit|encode|query)/'
//! cargo bench --bench audit -- '^scan_1m/'
//! ```
//!
//! See docs/benchmarks.md for the results and how to read them.

use std::cell::OnceCell;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use kmsim::audit::formats::{Format, render, render_text};
use kmsim::audit::query::Query;
use kmsim::audit::selection::{Selection, searchable};
use kmsim::audit::{AuditRecord, PayloadSizes};
use kmsim::clock::SimTime;
use kmsim::context::CallContext;
use kmsim::engine::key::key_arn;
use kmsim::engine::{ErrorCode, KmsError};
use kmsim::kernel::OpSpec;
use kmsim::store::{Location, Order, Scan, Store, StoreResult};
use serde_json::json;
use tokio::runtime::Runtime;

const REGION: &str = "cn-hangzhou";
const ACCOUNT: &str = "1192853035118460";
/// The seed query of the audit-search tests: Encrypt-and-friends rejected because the key is disabled.
const SEED_QUERY: &str = r#"* AND (event.serviceName: "Kms") AND (event.errorCode:"Rejected.Disabled")"#;
/// 2025-09-01T00:00:00Z, where the generated records start.
const BASE_TIME: i64 = 1_756_684_800_000;

/// The operations generated records cycle through (the data-plane calls dominate a real trail).
const OPS: [&OpSpec; 8] = [
    &OpSpec::ENCRYPT,
    &OpSpec::DECRYPT,
    &OpSpec::GENERATE_DATA_KEY,
    &OpSpec::DECRYPT,
    &OpSpec::ASYMMETRIC_SIGN,
    &OpSpec::GENERATE_MAC,
    &OpSpec::DESCRIBE_KEY,
    &OpSpec::ENCRYPT,
];
const KEYS: u64 = 64;
const ACCESS_KEYS: u64 = 37;

/// Record `i` is one of the 0.1% the seed query selects.
fn is_disabled(i: u64) -> bool {
    i % 1000 == 7
}

/// A varied, realistic record: 8 operations over 64 keys, 37 access keys (and
/// the root account), client addresses and ports, sizes, and errors in 0.5% of
/// records, `Rejected.Disabled` in 0.1%.
fn record(i: u64, time: SimTime) -> AuditRecord {
    let op = OPS[(i % OPS.len() as u64) as usize];
    let mut cx = CallContext::internal(REGION, ACCOUNT, time);
    let host = (i % 50_000) as u32;
    cx.client = Some(SocketAddr::from(([10, 8, (host >> 8) as u8, host as u8], 30_000 + (i % 30_000) as u16)));
    cx.user_agent = "AlibabaCloud (linux; amd64) Go/1.22.5 Core/1.63.18 kms/1.5.3".into();
    let access_key = i % (ACCESS_KEYS + 1);
    if access_key != ACCESS_KEYS {
        cx.access_key_id = format!("LTAI5t{access_key:018}");
    }
    let key_id = uuid::Uuid::from_u128(0x6f1c_b66f_a42a_4c1e_9d3b_0000_0000_0000 | u128::from(i % KEYS)).to_string();
    let error = match i % 1000 {
        _ if is_disabled(i) => Some(KmsError::new(ErrorCode::Disabled)),
        100 => Some(KmsError::new(ErrorCode::KeyNotFound)),
        300 => Some(KmsError::new(ErrorCode::PendingDeletion)),
        500 => Some(KmsError::invalid("EncryptionContext")),
        700 => Some(KmsError::new(ErrorCode::Throttling)),
        _ => None,
    };
    if error.is_none() {
        match op.action {
            "kms.sign" => {
                cx.trail.message_bytes(32);
                cx.trail.signature_bytes(256);
            }
            "kms.hmac" => {
                cx.trail.message_bytes(1024);
                cx.trail.mac_bytes(32);
            }
            "kms.encrypt" | "kms.decrypt" => {
                cx.trail.plaintext_bytes(256 + (i % 4096) as usize);
                cx.trail.ciphertext_bytes(340 + (i % 4096) as usize);
            }
            _ => {}
        }
    }
    let parameters = json!({
        "KeyId": key_id,
        "EncryptionContext": { "app": "billing", "tenant": format!("t-{}", i % 97) },
    });
    let sizes = PayloadSizes { request_bytes: 300 + i % 4096, response_bytes: 400 + i % 4096 };
    let mut record = AuditRecord::for_call(op, &cx, parameters, sizes, error.as_ref());
    record.key_arn = key_arn(REGION, ACCOUNT, &key_id);
    record.key_spec = if op.action == "kms.sign" { "RSA_2048" } else { "Aliyun_AES_256" }.into();
    record.key_version_id = uuid::Uuid::from_u128(0x1000 | u128::from(i % KEYS)).to_string();
    record.key_id = key_id;
    record.latency_us = 150 + i % 700;
    record
}

/// Record `i` of a trail with one record every 2.592 s: a million records cover 30 simulated days.
fn trail_record(i: u64) -> AuditRecord {
    record(i, trail_time(i))
}

fn trail_time(i: u64) -> SimTime {
    SimTime(BASE_TIME + i as i64 * 2_592)
}

/// The record the per-record benchmarks use: an Encrypt from a RAM user, with sizes.
fn typical_record() -> AuditRecord {
    trail_record(8)
}

fn runtime() -> Runtime {
    Runtime::new().expect("tokio runtime")
}

/// Groups whose iterations take milliseconds to seconds: few flat samples.
fn slow_group(group: &mut BenchmarkGroup<'_, WallTime>, measurement_time: Duration) {
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    group.measurement_time(measurement_time);
}

/// Records per iteration of the sequential commit benchmarks (one call each).
const SEQUENTIAL: usize = 64;
/// Concurrent tasks, each committing `PER_TASK` records one call at a time.
const TASKS: usize = 64;
const PER_TASK: usize = 8;
const CONCURRENT: usize = TASKS * PER_TASK;

fn bench_commit(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("commit");
    slow_group(&mut group, Duration::from_secs(4));
    for (name, location) in [("file", Location::Dir(dir.path().join("data"))), ("memory", Location::InMemory)] {
        let (store, _) = Store::open(&location).expect("open the store");
        let mut next = 0;
        // Fresh records each iteration (event ids are unique), made before the clock starts.
        let mut fresh = move |n: usize| {
            let batch: Vec<AuditRecord> = (next..next + n as u64).map(trail_record).collect();
            next += n as u64;
            batch
        };

        group.throughput(Throughput::Elements(SEQUENTIAL as u64));
        group.bench_function(format!("{name}/sequential"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let records = fresh(SEQUENTIAL);
                    let start = Instant::now();
                    rt.block_on(async {
                        for record in records {
                            store.commit(Vec::new(), &[record]).await.expect("commit");
                        }
                    });
                    total += start.elapsed();
                }
                total
            })
        });

        group.throughput(Throughput::Elements(CONCURRENT as u64));
        group.bench_function(format!("{name}/concurrent_{TASKS}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut records = fresh(CONCURRENT);
                    let shares: Vec<Vec<AuditRecord>> =
                        (0..TASKS).map(|_| records.drain(..PER_TASK).collect()).collect();
                    let start = Instant::now();
                    rt.block_on(async {
                        let tasks: Vec<_> = shares
                            .into_iter()
                            .map(|share| {
                                let store = store.clone();
                                tokio::spawn(async move {
                                    for record in share {
                                        store.commit(Vec::new(), &[record]).await.expect("commit");
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("commit task");
                        }
                    });
                    total += start.elapsed();
                }
                total
            })
        });

        // The same records in a single call: one transaction, no queueing.
        group.bench_function(format!("{name}/one_call_{CONCURRENT}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let records = fresh(CONCURRENT);
                    let start = Instant::now();
                    rt.block_on(store.commit(Vec::new(), &records)).expect("commit");
                    total += start.elapsed();
                }
                total
            })
        });
        store.close();
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let record = typical_record();
    let stored = serde_json::to_string(&serde_json::to_value(&record).unwrap()).unwrap();
    let mut group = c.benchmark_group("encode");
    group.bench_function("clone", |b| b.iter(|| black_box(&record).clone()));
    group.bench_function("native_json", |b| b.iter(|| serde_json::to_string(black_box(&record)).unwrap()));
    // The same text, written directly: what the store and the native trail write.
    group.bench_function("to_json", |b| b.iter(|| black_box(&record).to_json()));
    // What the store writes: through a Value, so the text is the canonical encoding the chain hashes.
    group.bench_function("stored_json", |b| {
        b.iter(|| serde_json::to_string(&serde_json::to_value(black_box(&record)).unwrap()).unwrap())
    });
    // What a scan does for every row it reads.
    group.bench_function("decode", |b| b.iter(|| serde_json::from_str::<AuditRecord>(black_box(&stored)).unwrap()));
    group.bench_function("actiontrail", |b| b.iter(|| render(black_box(&record), Format::ActionTrail)));
    group.bench_function("cloudtrail", |b| b.iter(|| render(black_box(&record), Format::CloudTrail)));
    // The same renderings written straight to text, as the trails and exports write them.
    group.bench_function("actiontrail_text", |b| b.iter(|| render_text(black_box(&record), Format::ActionTrail)));
    group.bench_function("cloudtrail_text", |b| b.iter(|| render_text(black_box(&record), Format::CloudTrail)));
    group.bench_function("searchable", |b| b.iter(|| searchable(black_box(&record))));
    group.finish();
}

fn bench_query(c: &mut Criterion) {
    let query = Query::parse(SEED_QUERY).expect("seed query");
    let selection = Selection::new(SEED_QUERY, "", "").expect("seed selection");
    let miss = typical_record();
    let hit = trail_record(7);
    assert!(is_disabled(7) && !is_disabled(8));
    assert!(selection.matches(&hit) && !selection.matches(&miss));
    let (miss_doc, hit_doc) = (searchable(&miss), searchable(&hit));
    assert!(query.matches(&hit_doc) && !query.matches(&miss_doc));

    let mut group = c.benchmark_group("query");
    group.bench_function("parse", |b| b.iter(|| Query::parse(black_box(SEED_QUERY)).unwrap()));
    group.bench_function("selection/miss", |b| b.iter(|| selection.matches(black_box(&miss))));
    group.bench_function("selection/hit", |b| b.iter(|| selection.matches(black_box(&hit))));
    group.bench_function("prebuilt/miss", |b| b.iter(|| query.matches(black_box(&miss_doc))));
    group.bench_function("prebuilt/hit", |b| b.iter(|| query.matches(black_box(&hit_doc))));
    group.finish();
}

const MILLION: u64 = 1_000_000;
/// Records per `commit` while building the store.
const BUILD_BATCH: u64 = 10_000;
/// Names the generator; a cached store made by another one is rebuilt.
const GENERATOR: &str = "kmsim-bench-1m v1: trail_record(0..1000000), batches of 10000";

fn million_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("kmsim-bench-1m")
}

/// Opens the cached one-million-record store, building it first when it is missing or stale.
fn million_store(rt: &Runtime) -> Store {
    let dir = million_dir();
    let marker = dir.join("generator.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == GENERATOR) {
        let (store, _) = Store::open(&Location::Dir(dir.clone())).expect("open the cached store");
        if count(rt, &store, "SELECT count(*) FROM audit_events") == MILLION {
            eprintln!("scan_1m: reusing {}", dir.display());
            return store;
        }
        store.close();
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the stale store");
    }
    eprintln!("scan_1m: building {MILLION} records in {} ...", dir.display());
    let started = Instant::now();
    let (store, _) = Store::open(&Location::Dir(dir.clone())).expect("create the store");
    rt.block_on(async {
        // Make the next batch while the writer commits the last one.
        let mut pending: Option<tokio::task::JoinHandle<StoreResult<()>>> = None;
        for first in (0..MILLION).step_by(BUILD_BATCH as usize) {
            let batch: Vec<AuditRecord> = (first..first + BUILD_BATCH).map(trail_record).collect();
            if let Some(commit) = pending.take() {
                commit.await.expect("commit task").expect("commit");
            }
            let store = store.clone();
            pending = Some(tokio::spawn(async move { store.commit(Vec::new(), &batch).await }));
        }
        if let Some(commit) = pending {
            commit.await.expect("commit task").expect("commit");
        }
    });
    assert_eq!(count(rt, &store, "SELECT count(*) FROM audit_events"), MILLION);
    std::fs::write(&marker, GENERATOR).expect("write the generator marker");
    eprintln!("scan_1m: built in {:.1} s", started.elapsed().as_secs_f64());
    store
}

/// Runs a one-number SQL query on the store's read connection.
fn count(rt: &Runtime, store: &Store, sql: &'static str) -> u64 {
    rt.block_on(store.read(move |conn| Ok(conn.query_row(sql, [], |row| row.get::<_, i64>(0))?))).expect("count") as u64
}

/// `Store::scan_audit`'s statement for `Order::NewestFirst` (copied from src/store/schema.rs):
/// `?1` continue below, `?2`..`?3` event times, `?4` through.
const SCAN_SQL: &str = "SELECT seq, record, chain FROM audit_events \
     WHERE seq < ?1 AND seq <= ?4 AND +time_ms >= ?2 AND +time_ms <= ?3 ORDER BY seq DESC";
/// The newest `?2` records below `?1`, walking the table by its primary key.
const BY_SEQ_SQL: &str = "SELECT seq, record, chain FROM audit_events WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2";

/// Steps through the rows of `sql`, touching each record's text without decoding it; answers how many.
fn read_rows(rt: &Runtime, store: &Store, sql: &'static str, params: Vec<i64>) -> u64 {
    rt.block_on(store.read(move |conn| {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let (mut n, mut bytes) = (0, 0);
        while let Some(row) = rows.next()? {
            bytes += row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?.len();
            n += 1;
        }
        black_box(bytes);
        Ok(n)
    }))
    .expect("read rows")
}

/// SQLite's plan for scan_audit's statement over all time.
fn query_plan(rt: &Runtime, store: &Store) -> Vec<String> {
    rt.block_on(store.read(|conn| {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {SCAN_SQL}"))?;
        let plan = stmt.query_map([i64::MAX, i64::MIN, i64::MAX, i64::MAX], |row| row.get::<_, String>(3))?;
        Ok(plan.collect::<Result<Vec<_>, _>>()?)
    }))
    .expect("query plan")
}

/// Records a newest-first scan reads to answer `limit` matches: `scan_audit`
/// reads up to the match after the last one it returns, to know there is more.
fn scanned_for(limit: usize) -> u64 {
    let mut matches = 0;
    for i in (0..MILLION).rev() {
        if is_disabled(i) {
            if matches == limit {
                return MILLION - i;
            }
            matches += 1;
        }
    }
    MILLION
}

fn scan(limit: usize) -> Scan {
    Scan {
        range: (SimTime(i64::MIN), SimTime(i64::MAX)),
        order: Order::NewestFirst,
        from: None,
        through: None,
        limit,
        contains: Vec::new(),
    }
}

fn bench_scan(c: &mut Criterion) {
    let rt = runtime();
    let selection = Arc::new(Selection::new(SEED_QUERY, "", "").expect("seed selection"));
    let expected = (0..MILLION).filter(|&i| is_disabled(i)).count();
    // Built (or opened) only when a benchmark of this group is selected.
    let cell = OnceCell::new();
    let store = || {
        cell.get_or_init(|| {
            let store = million_store(&rt);
            eprintln!("scan_1m: scan_audit's query plan: {}", query_plan(&rt, &store).join("; "));
            store
        })
    };
    let everything = vec![i64::MAX, i64::MIN, i64::MAX, i64::MAX];

    let mut group = c.benchmark_group("scan_1m");
    slow_group(&mut group, Duration::from_secs(10));
    group.throughput(Throughput::Elements(MILLION));
    // The selection as SQL on the error_code column (not indexed: a full table scan, no JSON).
    group.bench_function("sql_error_code", |b| {
        let store = store();
        b.iter(|| {
            let n = count(&rt, store, "SELECT count(*) FROM audit_events WHERE error_code = 'Rejected.Disabled'");
            assert_eq!(n as usize, expected);
        })
    });
    // Every record's text, newest first by walking the table (no sort), not decoded: the floor of any scan.
    group.bench_function("sql_rows_by_seq", |b| {
        let store = store();
        b.iter(|| assert_eq!(read_rows(&rt, store, BY_SEQ_SQL, vec![i64::MAX, i64::MAX]), MILLION))
    });
    // The same through scan_audit's own statement, unbounded in time, still not decoded.
    group.bench_function("sql_rows_as_scan_audit", |b| {
        let store = store();
        b.iter(|| assert_eq!(read_rows(&rt, store, SCAN_SQL, everything.clone()), MILLION))
    });
    // scan_audit decoding every record into an AuditRecord and keeping none.
    group.bench_function("decode_only", |b| {
        let store = store();
        b.iter(|| rt.block_on(store.scan_audit(scan(MILLION as usize), |_| false)).unwrap())
    });
    group.bench_function("query_full", |b| {
        let store = store();
        b.iter(|| {
            let selection = selection.clone();
            let page = rt.block_on(store.scan_audit(scan(MILLION as usize), move |r| selection.matches(r))).unwrap();
            assert_eq!(page.expect("in time").records.len(), expected);
        })
    });

    // The first 100 matches: scan_audit examines the newest `scanned_for(100)` records.
    let newest = scanned_for(100);
    group.throughput(Throughput::Elements(newest));
    group.bench_function("newest/sql_rows_by_seq", |b| {
        let store = store();
        b.iter(|| assert_eq!(read_rows(&rt, store, BY_SEQ_SQL, vec![i64::MAX, newest as i64]), newest))
    });
    group.bench_function("newest/query_limit_100", |b| {
        let store = store();
        // Once: the keep closure sees exactly the records the throughput counts.
        let seen = Arc::new(AtomicU64::new(0));
        let (counter, matcher) = (seen.clone(), selection.clone());
        let page = rt
            .block_on(store.scan_audit(scan(100), move |r| {
                counter.fetch_add(1, Ordering::Relaxed);
                matcher.matches(r)
            }))
            .unwrap()
            .expect("in time");
        assert_eq!((page.records.len(), seen.load(Ordering::Relaxed)), (100, newest));
        b.iter(|| {
            let selection = selection.clone();
            let page = rt.block_on(store.scan_audit(scan(100), move |r| selection.matches(r))).unwrap();
            let page = page.expect("in time");
            assert_eq!((page.records.len(), page.next_before.is_some()), (100, true));
        })
    });
    group.finish();
    if let Some(store) = cell.get() {
        store.close();
    }
}

criterion_group!(benches, bench_commit, bench_encode, bench_query, bench_scan);
criterion_main!(benches);
