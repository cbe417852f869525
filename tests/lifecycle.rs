//! Keys moving through time: the scheduler deletes keys when their window
//! ends, rotates them on schedule and expires imported material, each at its
//! own due time, as the simulation clock is advanced or set, and after a
//! restart that skipped the due time.

mod common;
#[path = "support/independent.rs"]
mod independent;

use common::*;
use kmsim::clock::SimTime;
use kmsim::proto as pb;
use kmsim::server::ServerConfig;
use kmsim::store::Location;
use serde_json::Value;
use tonic::Code;

const DAY_MS: i64 = 86_400_000;

async fn schedule_deletion(kms: &mut Kms, key_id: &str, days: i32) -> String {
    let request = pb::ScheduleKeyDeletionRequest { key_id: key_id.into(), pending_window_in_days: days };
    kms.schedule_key_deletion(request).await.expect("schedule deletion");
    describe(kms, key_id).await.delete_date
}

async fn describe(kms: &mut Kms, key_id: &str) -> pb::KeyMetadata {
    let request = pb::DescribeKeyRequest { key_id: key_id.into() };
    kms.describe_key(request).await.expect("describe").into_inner().key_metadata.unwrap()
}

async fn now(server: &TestServer) -> SimTime {
    let clock = server.simulation().await.get_clock(pb::GetClockRequest {}).await.unwrap().into_inner();
    let now = clock.now.unwrap();
    SimTime(now.seconds * 1000 + i64::from(now.nanos) / 1_000_000)
}

async fn system_events(server: &TestServer, name: &str) -> Vec<pb::SystemEvent> {
    let request = pb::ListSystemEventsRequest { name: name.into(), ..Default::default() };
    server.events().await.list_system_events(request).await.expect("list events").into_inner().events
}

fn millis(rfc3339: &str) -> i64 {
    SimTime::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("{rfc3339:?} is not RFC 3339")).millis()
}

#[tokio::test]
async fn a_key_is_deleted_when_its_window_ends_and_not_a_day_before() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let alias = pb::CreateAliasRequest { alias_name: "alias/doomed".into(), key_id: key_id.clone() };
    kms.create_alias(alias).await.unwrap();
    let ciphertext = kms
        .encrypt(pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"x".to_vec(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .ciphertext_blob;
    let delete_date = schedule_deletion(&mut kms, &key_id, 7).await;

    server.advance_days(6).await;
    assert_eq!(describe(&mut kms, &key_id).await.key_state, "PendingDeletion");
    assert!(system_events(&server, "Key:DeleteKey:ActualDeletion").await.is_empty());

    server.advance_days(1).await;
    let gone = kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap_err();
    assert_eq!((gone.code(), error_code(&gone).as_str()), (Code::NotFound, "Forbidden.KeyNotFound"));
    let decrypt = kms.decrypt(pb::DecryptRequest { ciphertext_blob: ciphertext, ..Default::default() }).await;
    assert_eq!(error_code(&decrypt.unwrap_err()), "Forbidden.KeyNotFound", "the material is gone");

    // The alias was released with the key: its name can point at another key now.
    let other = create_key(&mut kms, "").await;
    kms.create_alias(pb::CreateAliasRequest { alias_name: "alias/doomed".into(), key_id: other }).await.unwrap();

    let deleted = system_events(&server, "Key:DeleteKey:ActualDeletion").await;
    assert_eq!(deleted.len(), 1, "exactly one ActualDeletion event");
    let document: Value = serde_json::from_str(&deleted[0].json).unwrap();
    assert_eq!(field_names(&document), KEY_EVENT_FIELDS, "the seed's fields, in the seed's order");
    assert_eq!(field_names(&document["content"]), ["eventId", "keyId", "deleteEntityArn", "deleteTime"]);
    let arn = format!("acs:kms:cn-hangzhou:1192853035118460:key/{key_id}");
    assert_eq!(document["resourceId"], arn.as_str());
    assert_eq!(document["content"]["deleteEntityArn"], arn.as_str());
    assert_eq!(document["content"]["keyId"], key_id.as_str());
    assert_eq!(document["content"]["deleteTime"], delete_date.as_str(), "stamped with the due time");
    assert_eq!(document["time"].as_i64().unwrap() / 1000, millis(&delete_date) / 1000);
    let epoch_secs = millis(&delete_date) / 1000;
    assert_eq!(document["content"]["eventId"], format!("1192853035118460:{key_id}:{epoch_secs}").as_str());
    assert_eq!((document["level"].as_str(), document["product"].as_str()), (Some("WARN"), Some("kms")));
    assert_eq!((document["groupId"].as_str(), document["status"].as_str()), (Some("0"), Some("normal")));

    let records: Vec<_> = all_audit_events(&server)
        .await
        .into_iter()
        .filter(|e| e.key_id == key_id && e.event_type == "AliyunServiceEvent")
        .collect();
    assert_eq!(records.len(), 1, "one record of the internal deletion");
    let record = &records[0];
    assert_eq!((record.event_name.as_str(), record.action.as_str()), ("DeleteKey", "kms.delete_key"));
    assert_eq!((record.outcome.as_str(), record.event_rw.as_str()), ("Success", "Write"));
    assert_eq!((record.client_ip.as_str(), record.access_key_id.as_str()), ("", ""), "no caller");
    // Dates travel in whole seconds; the record keeps milliseconds.
    assert_eq!(millis(&record.event_time) / 1000, millis(&delete_date) / 1000, "at the due time, not the advance's");
    server.stop().await;
}

#[tokio::test]
async fn scheduling_a_deletion_raises_its_event_with_the_planned_time() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let delete_date = schedule_deletion(&mut kms, &key_id, 30).await;
    let scheduled = system_events(&server, "Key:DeleteKey:ScheduleDeletion").await;
    assert_eq!(scheduled.len(), 1);
    let document: Value = serde_json::from_str(&scheduled[0].json).unwrap();
    assert_eq!(field_names(&document["content"]), ["eventId", "keyId", "deleteEntityArn", "plannedDeleteTime"]);
    assert_eq!(document["content"]["plannedDeleteTime"], delete_date.as_str());
    assert_eq!(scheduled[0].level, "WARN");
    assert_eq!(millis(&delete_date) / 1000 - millis(&scheduled[0].time) / 1000, 30 * 86_400);
    server.stop().await;
}

#[tokio::test]
async fn a_cancelled_deletion_never_happens() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    schedule_deletion(&mut kms, &key_id, 7).await;
    server.advance_days(3).await;
    kms.cancel_key_deletion(pb::CancelKeyDeletionRequest { key_id: key_id.clone() }).await.unwrap();

    server.advance_days(30).await;
    assert_eq!(describe(&mut kms, &key_id).await.key_state, "Enabled");
    assert!(system_events(&server, "Key:DeleteKey:ActualDeletion").await.is_empty());
    let internal = all_audit_events(&server).await.into_iter().filter(|e| e.event_type == "AliyunServiceEvent");
    assert_eq!(internal.count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_key_rotating_every_30_days_has_14_versions_after_400_days() {
    // Retention would prune the first rotations' records after 180 days; this test reads them all.
    let server = TestServer::start_config(ServerConfig { audit_retention_days: None, ..ServerConfig::default() }).await;
    let mut kms = server.kms().await;
    let request =
        pb::CreateKeyRequest { enable_automatic_rotation: true, rotation_interval: "30d".into(), ..Default::default() };
    let key = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap();
    let seal = |plaintext: &'static [u8]| pb::EncryptRequest {
        key_id: key.key_id.clone(),
        plaintext: plaintext.to_vec(),
        ..Default::default()
    };
    let first = kms.encrypt(seal(b"before any rotation")).await.unwrap().into_inner().ciphertext_blob;

    server.advance_days(400).await;

    let request = pb::ListKeyVersionsRequest { key_id: key.key_id.clone(), page_size: 100, ..Default::default() };
    let versions = kms.list_key_versions(request).await.unwrap().into_inner().key_versions;
    assert_eq!(versions.len(), 14, "13 rotations in 400 days");
    let created: Vec<i64> = versions.iter().map(|v| millis(&v.creation_date)).collect();
    for pair in created.windows(2) {
        assert_eq!((pair[1] - pair[0]) / 1000, 30 * 86_400, "each rotation 30 days after the one before");
    }
    let described = describe(&mut kms, &key.key_id).await;
    assert_eq!(described.primary_key_version, versions[13].key_version_id);
    assert_eq!(millis(&described.next_rotation_date) / 1000, (created[13] + 30 * DAY_MS) / 1000);

    let latest = kms.encrypt(seal(b"after")).await.unwrap().into_inner().ciphertext_blob;
    for (blob, expected) in [(first, &b"before any rotation"[..]), (latest, b"after")] {
        let opened = kms.decrypt(pb::DecryptRequest { ciphertext_blob: blob, ..Default::default() }).await.unwrap();
        assert_eq!(opened.into_inner().plaintext, expected);
    }

    let rotations: Vec<_> =
        all_audit_events(&server).await.into_iter().filter(|e| e.action == "kms.rotate.scheduled").collect();
    assert_eq!(rotations.len(), 13);
    for record in &rotations {
        assert_eq!((record.event_name.as_str(), record.event_type.as_str()), ("RotateKey", "AliyunServiceEvent"));
        let version = versions.iter().find(|v| v.key_version_id == record.key_version_id).expect("a version");
        let (recorded, created) = (millis(&record.event_time) / 1000, millis(&version.creation_date) / 1000);
        assert_eq!(recorded, created, "recorded at its own due time");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_rotation_due_while_disabled_happens_when_the_key_is_enabled() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let request =
        pb::CreateKeyRequest { enable_automatic_rotation: true, rotation_interval: "7d".into(), ..Default::default() };
    let key_id = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    server.advance_days(20).await;
    let versions = |kms: &mut Kms| {
        let request = pb::ListKeyVersionsRequest { key_id: key_id.clone(), ..Default::default() };
        let mut kms = kms.clone();
        async move { kms.list_key_versions(request).await.unwrap().into_inner().key_versions.len() }
    };
    assert_eq!(versions(&mut kms).await, 1, "a disabled key does not rotate");

    kms.enable_key(pb::EnableKeyRequest { key_id: key_id.clone() }).await.unwrap();
    // The catch-up rotation is due at the moment of enabling; advancing a second runs it.
    server.simulation().await.advance_clock(pb::AdvanceClockRequest { advance: Some(seconds(1)) }).await.unwrap();
    assert_eq!(versions(&mut kms).await, 2, "it rotates as soon as it is enabled");
    let next = millis(&describe(&mut kms, &key_id).await.next_rotation_date);
    assert!(next > now(&server).await.millis() + 6 * DAY_MS, "and the next rotation is an interval later");
    server.stop().await;
}

fn seconds(n: i64) -> prost_types::Duration {
    prost_types::Duration { seconds: n, nanos: 0 }
}

#[tokio::test]
async fn imported_material_expires_and_the_key_waits_for_an_import_again() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_external_key(&mut kms).await;
    let request = pb::GetParametersForImportRequest {
        key_id: key_id.clone(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
        wrapping_key_spec: "RSA_2048".into(),
    };
    let params = kms.get_parameters_for_import(request).await.unwrap().into_inner();
    let wrapped = independent::rsa_oaep_encrypt(
        &independent::parse_spki_pem(&params.public_key),
        independent::Hash::Sha256,
        &[7u8; 32],
    );
    let expires_unix = now(&server).await.millis() / 1000 + 86_400;
    let request = pb::ImportKeyMaterialRequest {
        key_id: key_id.clone(),
        encrypted_key_material: wrapped,
        import_token: params.import_token,
        key_material_expire_unix: expires_unix,
    };
    kms.import_key_material(request).await.unwrap();
    assert_eq!(describe(&mut kms, &key_id).await.key_state, "Enabled");

    server.advance_days(2).await;
    assert_eq!(describe(&mut kms, &key_id).await.key_state, "PendingImport");
    let encrypt = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"x".to_vec(), ..Default::default() };
    assert_eq!(error_code(&kms.encrypt(encrypt).await.unwrap_err()), "Rejected.PendingImport");
    let expiry = all_audit_events(&server).await.into_iter().find(|e| e.event_name == "DeleteExpiredKeyMaterial");
    let expiry = expiry.expect("the expiry is audited");
    assert_eq!(expiry.event_type, "AliyunServiceEvent");
    assert_eq!(millis(&expiry.event_time) / 1000, expires_unix);
    server.stop().await;
}

#[tokio::test]
async fn set_clock_moves_forward_only() {
    let server = TestServer::start().await;
    let mut simulation = server.simulation().await;
    let target = now(&server).await.millis() / 1000 + 365 * 86_400;
    let request = pb::SetClockRequest { time: Some(prost_types::Timestamp { seconds: target, nanos: 0 }) };
    let answer = simulation.set_clock(request).await.unwrap().into_inner();
    assert_eq!(answer.now.unwrap().seconds, target);
    assert!(now(&server).await.millis() / 1000 >= target);

    let back = pb::SetClockRequest { time: Some(prost_types::Timestamp { seconds: target - 86_400, nanos: 0 }) };
    assert_invalid(&simulation.set_clock(back).await.unwrap_err(), "Time", "setting the clock back");
    assert_missing(&simulation.set_clock(pb::SetClockRequest { time: None }).await.unwrap_err(), "Time", "no time");
    assert!(now(&server).await.millis() / 1000 >= target, "a refused move leaves the clock alone");
    server.stop().await;
}

#[tokio::test]
async fn the_clock_can_start_at_a_given_instant() {
    let start = SimTime::parse_rfc3339("2031-01-01T00:00:00Z").unwrap();
    let server = TestServer::start_config(ServerConfig { clock_start: Some(start), ..ServerConfig::default() }).await;
    let now = now(&server).await;
    assert!(now >= start && now.millis() - start.millis() < 60_000, "now is {}", now.to_rfc3339());
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    assert!(describe(&mut kms, &key_id).await.creation_date.starts_with("2031-01-01T"));
    server.stop().await;
}

/// The server is down while the deletion falls due (it restarts with its
/// clock past the date); the deletion is done at start, before any call.
#[tokio::test]
async fn due_work_missed_while_the_server_was_down_is_done_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let delete_date = schedule_deletion(&mut kms, &key_id, 7).await;
    let rotating =
        pb::CreateKeyRequest { enable_automatic_rotation: true, rotation_interval: "7d".into(), ..Default::default() };
    let rotating = kms.create_key(rotating).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    let later = SimTime(now(&server).await.millis() + 15 * DAY_MS);
    server.stop().await;

    let config = ServerConfig {
        store: Location::Dir(dir.path().to_path_buf()),
        clock_start: Some(later),
        ..ServerConfig::default()
    };
    let server = TestServer::start_config(config).await;
    let mut kms = server.kms().await;
    let gone = kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap_err();
    assert_eq!(error_code(&gone), "Forbidden.KeyNotFound");
    let deleted = system_events(&server, "Key:DeleteKey:ActualDeletion").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(millis(&deleted[0].time) / 1000, millis(&delete_date) / 1000, "done at start, at the due time");
    let request = pb::ListKeyVersionsRequest { key_id: rotating, ..Default::default() };
    let versions = kms.list_key_versions(request).await.unwrap().into_inner().key_versions;
    assert_eq!(versions.len(), 3, "two rotations fell due in 15 days");
    let records = all_audit_events(&server).await;
    assert!(records.iter().any(|e| e.event_name == "SetClock" && e.event_type == "AliyunServiceEvent"));
    server.stop().await;
}
