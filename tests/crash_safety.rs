//! Crash safety under load: the real `kmsim serve` binary, driven by several
//! concurrent clients, is killed with SIGKILL at a random moment and restarted on
//! the same data directory, over and over. After every restart the test proves:
//!
//! - every call a client saw succeed has its audit record, with the right event
//!   name, key and key version (a response is only sent once its record is durable);
//! - no call is recorded twice (one top-level record per request id, one record
//!   per event id);
//! - every key whose creation was acknowledged still describes as it was created,
//!   lists every version whose creation was acknowledged, and still opens a
//!   ciphertext it sealed before the kill;
//! - the audit hash chain verifies, and never holds fewer records than before.
//!
//! Calls that were cut off by the kill may or may not have committed; only how
//! many of them did is reported.
//!
//! The workload and kill moments come from a seed printed at the start (and named
//! in every assertion message). Reproduce a failure with
//! `KMSIM_CRASH_SEED=<seed> cargo test --test crash_safety -- --nocapture`; the
//! interleaving of the clients is up to the scheduler, so a rare failure may need
//! a few runs with its seed. `KMSIM_CRASH_CYCLES=<n>` runs more kill cycles than
//! the default 20.

mod common;

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::with_request_id;
use kmsim::proto as pb;
use kmsim::proto::audit_service_client::AuditServiceClient;
use kmsim::proto::key_management_service_client::KeyManagementServiceClient;
use tokio::task::JoinSet;
use tonic::transport::Channel;

type Kms = KeyManagementServiceClient<Channel>;

const DEFAULT_CYCLES: usize = 20;
const CLIENTS: usize = 6;
/// How long the clients run before the kill, in milliseconds (inclusive).
const LOAD_MS: (u64, u64) = (20, 250);
/// Symmetric specs only, so that every key can Encrypt and Decrypt.
const SPECS: [&str; 4] = ["Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_AES_192", "Aliyun_SM4"];
/// A call cut off by the kill fails at once; this only keeps a hung call from hanging the test.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Ciphertexts remembered per key: enough to decrypt under old versions after rotations.
const SEALED_PER_KEY: usize = 4;
/// Keys checked concurrently after a restart.
const VERIFIERS: usize = 6;
/// SIGKILL's number, the same on every Unix.
const SIGKILL: i32 = 9;
/// The response header that echoes the call's request id.
const REQUEST_ID_HEADER: &str = "x-kms-request-id";

/// xorshift64*: small, dependency-free and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // xorshift's state must never be zero.
        Rng(splitmix64(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// A key whose creation a client saw acknowledged, and what was acknowledged about it since.
#[derive(Clone)]
struct KnownKey {
    created: pb::KeyMetadata,
    /// Versions whose creation was acknowledged, the one made with the key first.
    versions: Vec<String>,
    /// Acknowledged Encrypt results: (ciphertext, plaintext).
    sealed: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A call that was answered with success, so its audit record must exist.
struct Acked {
    request_id: String,
    event_name: &'static str,
    /// Empty where the response does not name one.
    key_id: String,
    key_version_id: String,
    cycle: usize,
}

/// What the clients saw, across every cycle.
#[derive(Default)]
struct Ledger {
    keys: Vec<KnownKey>,
    acked: Vec<Acked>,
    /// Calls cut off by the kill (or timed out): whether they committed is unknown.
    unanswered: Vec<String>,
    /// Anything a client saw that is wrong on its own (a refused call, a wrong answer).
    anomalies: Vec<String>,
}

impl Ledger {
    fn ack(&mut self, request_id: &str, event_name: &'static str, key_id: &str, key_version_id: &str, cycle: usize) {
        self.acked.push(Acked {
            request_id: request_id.to_owned(),
            event_name,
            key_id: key_id.to_owned(),
            key_version_id: key_version_id.to_owned(),
            cycle,
        });
    }

    fn key_mut(&mut self, key_id: &str) -> &mut KnownKey {
        self.keys.iter_mut().find(|k| k.created.key_id == key_id).expect("a key the ledger handed out")
    }
}

/// How a call ended, from the client's side.
enum Answer<T> {
    Ok(T),
    /// The server answered with an error (it then also wrote a record).
    Refused(tonic::Status),
    /// No answer: the connection died with the server, or the call timed out.
    Lost(String),
}

async fn answer<T>(
    request_id: &str,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<Answer<T>, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Ok(Answer::Lost(format!("no answer within {CALL_TIMEOUT:?}"))),
        Ok(Ok(response)) => {
            let answered = response.metadata().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            // The server names every call with an id of its own, never the client's.
            if answered.is_empty() || answered == request_id {
                return Err(format!("{request_id}: the response carries request id {answered:?}"));
            }
            Ok(Answer::Ok(response.into_inner()))
        }
        // Only the kernel sets the Alibaba error code; anything else is the transport.
        Ok(Err(status)) if status.metadata().contains_key("x-kms-error-code") => Ok(Answer::Refused(status)),
        Ok(Err(status)) => Ok(Answer::Lost(format!("{status:?}"))),
    }
}

/// The fields of a key's metadata that nothing in this workload may change.
fn identity(meta: &pb::KeyMetadata) -> [&str; 9] {
    [
        &meta.key_id,
        &meta.arn,
        &meta.key_spec,
        &meta.key_usage,
        &meta.origin,
        &meta.creation_date,
        &meta.creator,
        &meta.region,
        &meta.protection_level,
    ]
}

enum Op {
    CreateKey {
        spec: &'static str,
    },
    CreateKeyVersion {
        key_id: String,
    },
    /// `slot`: which remembered ciphertext of the key the result replaces once the key has enough.
    Encrypt {
        key_id: String,
        slot: usize,
    },
    Decrypt {
        key_id: String,
        blob: Vec<u8>,
        plaintext: Vec<u8>,
    },
    DescribeKey {
        created: Box<pb::KeyMetadata>,
    },
}

fn choose(rng: &mut Rng, ledger: &Mutex<Ledger>) -> Op {
    let ledger = ledger.lock().unwrap();
    if ledger.keys.is_empty() {
        return Op::CreateKey { spec: SPECS[rng.below(SPECS.len())] };
    }
    let key = &ledger.keys[rng.below(ledger.keys.len())];
    let key_id = key.created.key_id.clone();
    match rng.below(100) {
        // Few keys: every restart re-checks all of them.
        0..3 => Op::CreateKey { spec: SPECS[rng.below(SPECS.len())] },
        3..20 => Op::CreateKeyVersion { key_id },
        20..55 => Op::Encrypt { key_id, slot: rng.below(SEALED_PER_KEY) },
        55..80 if !key.sealed.is_empty() => {
            let (blob, plaintext) = key.sealed[rng.below(key.sealed.len())].clone();
            Op::Decrypt { key_id, blob, plaintext }
        }
        55..80 => Op::Encrypt { key_id, slot: rng.below(SEALED_PER_KEY) },
        _ => Op::DescribeKey { created: Box::new(key.created.clone()) },
    }
}

/// One client: calls until the server stops answering, which the kill makes it do.
async fn client(
    mut kms: Kms,
    name: String,
    cycle: usize,
    mut rng: Rng,
    ledger: Arc<Mutex<Ledger>>,
    killing: Arc<AtomicBool>,
) {
    for n in 1.. {
        let id = format!("{name}-{n}");
        let op = choose(&mut rng, &ledger);
        let outcome = run_op(&mut kms, &id, cycle, op, &ledger).await;
        let mut ledger = ledger.lock().unwrap();
        match outcome {
            Ok(None) => {}
            Err(anomaly) => ledger.anomalies.push(anomaly),
            // The flag is raised before the signal is sent, so a call lost without it was lost by a live server.
            Ok(Some(why)) if !killing.load(Ordering::SeqCst) => {
                ledger.anomalies.push(format!("cycle {cycle}: {id} went unanswered before the kill: {why}"));
                return;
            }
            Ok(Some(_)) => {
                ledger.unanswered.push(id);
                return;
            }
        }
    }
}

/// Runs `op` as request `id`; Ok(Some(why)) when it went unanswered, Err when its answer is wrong.
async fn run_op(
    kms: &mut Kms,
    id: &str,
    cycle: usize,
    op: Op,
    ledger: &Mutex<Ledger>,
) -> Result<Option<String>, String> {
    let what = |op: &str, key: &str| format!("cycle {cycle}: {op} {id} (key {key:?})");
    macro_rules! settle {
        ($answer:expr, $what:expr) => {
            match $answer? {
                Answer::Ok(body) => body,
                Answer::Refused(status) => return Err(format!("{} was refused: {status:?}", $what)),
                Answer::Lost(why) => return Ok(Some(why)),
            }
        };
    }
    match op {
        Op::CreateKey { spec } => {
            let request = pb::CreateKeyRequest { key_spec: spec.to_owned(), ..Default::default() };
            let body = settle!(answer(id, kms.create_key(with_request_id(id, request))).await, what("CreateKey", ""));
            let meta = body.key_metadata.ok_or_else(|| format!("{}: no key metadata", what("CreateKey", "")))?;
            if meta.key_spec != spec || meta.primary_key_version.is_empty() {
                return Err(format!("{}: asked for {spec}, got {meta:?}", what("CreateKey", "")));
            }
            let mut ledger = ledger.lock().unwrap();
            ledger.ack(id, "CreateKey", &meta.key_id, "", cycle);
            let versions = vec![meta.primary_key_version.clone()];
            ledger.keys.push(KnownKey { created: meta, versions, sealed: Vec::new() });
        }
        Op::CreateKeyVersion { key_id } => {
            let request = pb::CreateKeyVersionRequest { key_id: key_id.clone() };
            let what = what("CreateKeyVersion", &key_id);
            let body = settle!(answer(id, kms.create_key_version(with_request_id(id, request))).await, what);
            let version = body.key_version.ok_or_else(|| format!("{what}: no key version"))?;
            if version.key_id != key_id {
                return Err(format!("{what}: answered a version of {:?}", version.key_id));
            }
            let mut ledger = ledger.lock().unwrap();
            ledger.ack(id, "CreateKeyVersion", &key_id, &version.key_version_id, cycle);
            ledger.key_mut(&key_id).versions.push(version.key_version_id);
        }
        Op::Encrypt { key_id, slot } => {
            let plaintext = id.as_bytes().to_vec();
            let request =
                pb::EncryptRequest { key_id: key_id.clone(), plaintext: plaintext.clone(), ..Default::default() };
            let body = settle!(answer(id, kms.encrypt(with_request_id(id, request))).await, what("Encrypt", &key_id));
            let mut ledger = ledger.lock().unwrap();
            ledger.ack(id, "Encrypt", &key_id, &body.key_version_id, cycle);
            let key = ledger.key_mut(&key_id);
            let sealed = (body.ciphertext_blob, plaintext);
            // The first ciphertext is never replaced: it was sealed under an early version, which must keep opening.
            if key.sealed.len() < SEALED_PER_KEY {
                key.sealed.push(sealed);
            } else {
                key.sealed[slot.max(1)] = sealed;
            }
        }
        Op::Decrypt { key_id, blob, plaintext } => {
            let request = pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() };
            let what = what("Decrypt", &key_id);
            let body = settle!(answer(id, kms.decrypt(with_request_id(id, request))).await, what);
            if body.plaintext != plaintext || body.key_id != key_id {
                return Err(format!(
                    "{what}: opened under {:?} to {:?}",
                    body.key_id,
                    String::from_utf8_lossy(&body.plaintext)
                ));
            }
            ledger.lock().unwrap().ack(id, "Decrypt", &key_id, &body.key_version_id, cycle);
        }
        Op::DescribeKey { created } => {
            let key_id = created.key_id.clone();
            let request = pb::DescribeKeyRequest { key_id: key_id.clone() };
            let what = what("DescribeKey", &key_id);
            let body = settle!(answer(id, kms.describe_key(with_request_id(id, request))).await, what);
            let meta = body.key_metadata.ok_or_else(|| format!("{what}: no key metadata"))?;
            if identity(&meta) != identity(&created) || meta.key_state != "Enabled" {
                return Err(format!("{what}: created as {created:?}, now described as {meta:?}"));
            }
            ledger.lock().unwrap().ack(id, "DescribeKey", &key_id, "", cycle);
        }
    }
    Ok(None)
}

/// Every audit record, newest first.
async fn all_audit_events(audit: &mut AuditServiceClient<Channel>, context: &str) -> Vec<pb::AuditEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest { page_size: 1000, page_token, ..Default::default() };
        let page = audit
            .list_audit_events(request)
            .await
            .unwrap_or_else(|e| panic!("{context}: ListAuditEvents failed: {e:?}"))
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// Checks one key after a restart: it describes as created, lists every acknowledged
/// version, and opens one of its ciphertexts. Returns the acknowledged checking calls.
async fn check_key(mut kms: Kms, key: KnownKey, cycle: usize, context: String) -> Result<Vec<Acked>, String> {
    let key_id = key.created.key_id.clone();
    let mut acked = Vec::new();
    let mut ack = |request_id: &str, event_name, key_version_id: &str| {
        let (key_id, key_version_id) = (key_id.clone(), key_version_id.to_owned());
        acked.push(Acked { request_id: request_id.to_owned(), event_name, key_id, key_version_id, cycle });
    };
    let expect_ok = |id: &str| format!("{context}: {id} on key {key_id}");

    let id = format!("check-c{cycle}-{key_id}-describe");
    let request = pb::DescribeKeyRequest { key_id: key_id.clone() };
    let described = answered(expect_ok(&id), answer(&id, kms.describe_key(with_request_id(&id, request))).await)?;
    ack(&id, "DescribeKey", "");
    let meta = described.key_metadata.unwrap_or_default();
    if identity(&meta) != identity(&key.created) || meta.key_state != "Enabled" {
        return Err(format!("{context}: key {key_id} was created as {:?}, now described as {meta:?}", key.created));
    }

    let mut listed = Vec::new();
    for page_number in 1.. {
        let id = format!("check-c{cycle}-{key_id}-versions-{page_number}");
        let request = pb::ListKeyVersionsRequest { key_id: key_id.clone(), page_number, page_size: 100 };
        let page = answered(expect_ok(&id), answer(&id, kms.list_key_versions(with_request_id(&id, request))).await)?;
        ack(&id, "ListKeyVersions", "");
        let total = usize::try_from(page.total_count).unwrap_or_default();
        let last_page = page.key_versions.is_empty();
        listed.extend(page.key_versions.into_iter().map(|v| v.key_version_id));
        if listed.len() >= total || last_page {
            break;
        }
    }
    let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
    let missing: Vec<&String> = key.versions.iter().filter(|v| !listed_set.contains(v.as_str())).collect();
    if !missing.is_empty() {
        return Err(format!("{context}: key {key_id} lost acknowledged versions {missing:?}; it lists {listed:?}"));
    }
    if listed_set.len() != listed.len() {
        return Err(format!("{context}: key {key_id} lists a version twice: {listed:?}"));
    }
    if !listed_set.contains(meta.primary_key_version.as_str()) {
        return Err(format!(
            "{context}: key {key_id}'s primary version {} is not listed: {listed:?}",
            meta.primary_key_version
        ));
    }

    // A different remembered ciphertext each cycle, so old versions get opened too.
    if !key.sealed.is_empty() {
        let (blob, plaintext) = key.sealed[cycle % key.sealed.len()].clone();
        let id = format!("check-c{cycle}-{key_id}-decrypt");
        let request = pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() };
        let opened = answered(expect_ok(&id), answer(&id, kms.decrypt(with_request_id(&id, request))).await)?;
        if opened.plaintext != plaintext {
            return Err(format!("{context}: {id}: a ciphertext of key {key_id} no longer opens to what was sealed"));
        }
        ack(&id, "Decrypt", &opened.key_version_id);
    }
    Ok(acked)
}

/// The body of a checking call, which must succeed.
fn answered<T>(what: String, answer: Result<Answer<T>, String>) -> Result<T, String> {
    match answer? {
        Answer::Ok(body) => Ok(body),
        Answer::Refused(status) => Err(format!("{what} was refused: {status:?}")),
        Answer::Lost(why) => Err(format!("{what} went unanswered: {why}")),
    }
}

/// What one restart's checks found, for the summary.
struct Checked {
    /// Acknowledged calls found recorded once, and how many of them were load (not earlier checks).
    acked: usize,
    load: usize,
    records: u64,
    committed_unanswered: usize,
}

/// Everything the issue asks of a restarted server, against all that the ledger saw acknowledged.
async fn check_restart(
    server: &ServerProcess,
    cycle: usize,
    seed: u64,
    ledger: &Mutex<Ledger>,
    records_before: u64,
) -> Checked {
    let context = format!("seed {seed}, after restart {cycle}");
    let channel = server.channel().await;
    let mut audit = AuditServiceClient::new(channel.clone());
    let events = all_audit_events(&mut audit, &context).await;

    let mut event_ids = HashSet::new();
    for event in &events {
        assert!(event_ids.insert(event.event_id.as_str()), "{context}: event id {} is recorded twice", event.event_id);
    }
    // Each call sends an id of its own (x-request-id), which its record keeps. Nested
    // records (a secret's Encrypt behind PutSecretValue) share their caller's; a
    // duplicate is two top-level records of one call.
    let mut by_request: HashMap<&str, Vec<&pb::AuditEvent>> = HashMap::new();
    let mut server_ids = HashSet::new();
    for event in events.iter().filter(|e| e.invoked_by.is_empty()) {
        assert!(
            server_ids.insert(event.request_id.as_str()),
            "{context}: request id {} names two calls",
            event.request_id
        );
        if !event.client_request_id.is_empty() {
            by_request.entry(event.client_request_id.as_str()).or_default().push(event);
        }
    }
    let mut twice: Vec<_> = by_request.iter().filter(|(_, records)| records.len() > 1).collect();
    twice.sort_by_key(|(id, _)| *id);
    assert!(
        twice.is_empty(),
        "{context}: {} request ids have more than one record, e.g. {:?}",
        twice.len(),
        twice
            .first()
            .map(|(id, records)| (id, records.iter().map(|r| (&r.event_id, &r.event_name)).collect::<Vec<_>>()))
    );

    let (known_keys, committed_unanswered, acked, load) = {
        let ledger = ledger.lock().unwrap();
        for call in &ledger.acked {
            let what =
                format!("{context}: {} {} (acknowledged in cycle {})", call.event_name, call.request_id, call.cycle);
            let records = by_request.get(call.request_id.as_str());
            let record = records.and_then(|r| r.first()).unwrap_or_else(|| panic!("{what} has no audit record"));
            assert_eq!(
                (record.event_name.as_str(), record.outcome.as_str(), record.error_code.as_str()),
                (call.event_name, "Success", ""),
                "{what}: its record is {record:?}"
            );
            if !call.key_id.is_empty() {
                assert_eq!(record.key_id, call.key_id, "{what}: its record names another key: {record:?}");
            }
            if !call.key_version_id.is_empty() {
                assert_eq!(record.key_version_id, call.key_version_id, "{what}: its record names another version");
            }
        }
        let committed = ledger.unanswered.iter().filter(|id| by_request.contains_key(id.as_str())).count();
        let load = ledger.acked.iter().filter(|call| call.request_id.starts_with("load-")).count();
        (ledger.keys.clone(), committed, ledger.acked.len(), load)
    };

    let verified = AuditServiceClient::new(channel.clone())
        .verify_audit_trail(pb::VerifyAuditTrailRequest::default())
        .await
        .unwrap_or_else(|e| panic!("{context}: VerifyAuditTrail failed: {e:?}"))
        .into_inner();
    assert!(
        verified.valid,
        "{context}: the audit chain does not verify: first bad record {} ({}): {}",
        verified.first_bad_seq, verified.first_bad_event_id, verified.reason
    );
    assert!(
        verified.records >= records_before.max(events.len() as u64),
        "{context}: the chain holds {} records, but {records_before} were verified before the kill and {} listed now",
        verified.records,
        events.len()
    );

    let mut checks = JoinSet::new();
    for worker in 0..VERIFIERS {
        let keys: Vec<KnownKey> = known_keys.iter().skip(worker).step_by(VERIFIERS).cloned().collect();
        let kms = KeyManagementServiceClient::new(channel.clone());
        let context = context.clone();
        checks.spawn(async move {
            let mut acked = Vec::new();
            for key in keys {
                acked.extend(check_key(kms.clone(), key, cycle, context.clone()).await?);
            }
            Ok::<_, String>(acked)
        });
    }
    while let Some(joined) = checks.join_next().await {
        let acked = joined.expect("a key check panicked").unwrap_or_else(|failure| panic!("{failure}"));
        ledger.lock().unwrap().acked.extend(acked);
    }
    Checked { acked, load, records: verified.records, committed_unanswered }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_call() {
    let seed = env_number("KMSIM_CRASH_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        splitmix64(now.as_nanos() as u64)
    });
    let cycles = env_number("KMSIM_CRASH_CYCLES").map_or(DEFAULT_CYCLES, |n| n as usize);
    eprintln!("crash_safety: seed {seed}, {cycles} cycles (rerun with KMSIM_CRASH_SEED={seed})");

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng::new(seed);
    let mut records = 0;
    let started = Instant::now();

    // Restart `cycles` is the last: it only checks what the last kill left.
    for cycle in 0..=cycles {
        let args = ["--listen".to_owned(), "127.0.0.1:0".to_owned(), "--data-dir".to_owned(), data_dir.clone()];
        let server = tokio::task::spawn_blocking(move || {
            ServerProcess::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        let checked = check_restart(&server, cycle, seed, &ledger, records).await;
        records = checked.records;
        let (unanswered, keys) = {
            let ledger = ledger.lock().unwrap();
            (ledger.unanswered.len(), ledger.keys.len())
        };
        eprintln!(
            "restart {cycle}: {} acknowledged calls ({} load, the rest checks) each recorded once, \
             {} of {unanswered} cut-off calls committed, {keys} keys intact, a chain of {} records verifies",
            checked.acked, checked.load, checked.committed_unanswered, checked.records,
        );
        if cycle == cycles {
            break;
        }

        let killing = Arc::new(AtomicBool::new(false));
        let mut clients = JoinSet::new();
        for client_no in 0..CLIENTS {
            let kms = KeyManagementServiceClient::new(server.channel().await);
            let rng = Rng::new(seed ^ splitmix64((cycle * CLIENTS + client_no) as u64 + 1));
            let name = format!("load-{seed}-c{cycle}-t{client_no}");
            clients.spawn(client(kms, name, cycle, rng, ledger.clone(), killing.clone()));
        }
        let load = Duration::from_millis(rng.between(LOAD_MS.0, LOAD_MS.1));
        tokio::time::sleep(load).await;
        killing.store(true, Ordering::SeqCst);
        let status = tokio::task::spawn_blocking(move || server.signal_and_wait("KILL")).await.unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "seed {seed}, cycle {cycle}: the server ended with {status} instead of by our SIGKILL after {load:?}"
        );
        while let Some(joined) = clients.join_next().await {
            joined.unwrap_or_else(|e| panic!("seed {seed}, cycle {cycle}: a client panicked: {e:?}"));
        }
        let ledger = ledger.lock().unwrap();
        assert!(
            ledger.anomalies.is_empty(),
            "seed {seed}, cycle {cycle}: clients saw wrong answers:\n{}",
            ledger.anomalies.join("\n")
        );
    }

    let ledger = ledger.lock().unwrap();
    let load_acked = ledger.acked.iter().filter(|call| call.request_id.starts_with("load-")).count();
    eprintln!(
        "crash_safety: seed {seed}, {cycles} kills in {:?}: {load_acked} acknowledged load calls, {} cut off",
        started.elapsed(),
        ledger.unanswered.len()
    );
    // Proof that the kills landed on real work, not on an idle server.
    assert!(load_acked >= cycles, "seed {seed}: only {load_acked} load calls were acknowledged in {cycles} cycles");
}
