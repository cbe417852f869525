//! Cross-region key sync: ReplicateKey copies a key of a primary instance to
//! a replica ("shadow") instance in another region under the same id; syncs
//! run at once, on SyncKey and every interval, each as an audited service
//! event ending in Instance:KeySync:Success or Instance:KeySync:Failure.

mod common;

use common::*;
use kmsim::clock::SimTime;
use kmsim::proto as pb;
use prost::Message;
use serde_json::Value;
use tonic::Code;

const ACCOUNT: &str = "1192853035118460";
const PRIMARY: &str = "cn-hangzhou";
const SHADOW: &str = "cn-shanghai";
const SUCCESS: &str = "Instance:KeySync:Success";
const FAILURE: &str = "Instance:KeySync:Failure";

/// A server with a key in a primary instance and a shadow instance in another region.
struct Setup {
    server: TestServer,
    kms: Kms,
    instances: Instances,
    primary: String,
    shadow: String,
    key_id: String,
}

impl Setup {
    /// `shadow_days`: how many days the shadow instance runs (`None` for the default year).
    async fn new(shadow_days: Option<i64>) -> Setup {
        let server = TestServer::start().await;
        let (mut kms, mut instances) = (server.kms().await, server.instances().await);
        let shadow_expires = match shadow_days {
            Some(days) => server.sim_now().await.plus_days(days).to_rfc3339(),
            None => String::new(),
        };
        let primary = create_instance(&mut instances, PRIMARY, 200, "").await.kms_instance_id;
        let shadow = create_instance(&mut instances, SHADOW, 200, &shadow_expires).await.kms_instance_id;
        let key_id = create_instance_key(&mut kms, PRIMARY, &primary).await;
        Setup { server, kms, instances, primary, shadow, key_id }
    }

    async fn replicate(&mut self, sync_interval: &str) -> pb::ReplicateKeyResponse {
        let request = pb::ReplicateKeyRequest {
            key_id: self.key_id.clone(),
            shadow_instance_id: self.shadow.clone(),
            sync_interval: sync_interval.to_owned(),
        };
        self.instances.replicate_key(in_region(PRIMARY, request)).await.expect("replicate key").into_inner()
    }

    /// Syncs now; the one replica as it stands after the task.
    async fn sync(&mut self) -> pb::KeyReplica {
        let request = pb::SyncKeyRequest { key_id: self.key_id.clone() };
        let answer = self.instances.sync_key(in_region(PRIMARY, request)).await.expect("sync key").into_inner();
        assert_eq!((answer.key_id.as_str(), answer.region.as_str()), (self.key_id.as_str(), PRIMARY));
        let [replica] = answer.replicas.try_into().expect("one replica");
        replica
    }

    async fn rotate(&mut self) -> String {
        let request = pb::CreateKeyVersionRequest { key_id: self.key_id.clone() };
        let answer = self.kms.create_key_version(in_region(PRIMARY, request)).await.expect("rotate the primary");
        answer.into_inner().key_version.unwrap().key_version_id
    }

    async fn describe(&mut self, region: &str) -> pb::KeyMetadata {
        let request = pb::DescribeKeyRequest { key_id: self.key_id.clone() };
        let answer = self.kms.describe_key(in_region(region, request)).await.expect("describe");
        answer.into_inner().key_metadata.unwrap()
    }

    async fn versions(&mut self, region: &str) -> Vec<String> {
        let request = pb::ListKeyVersionsRequest { key_id: self.key_id.clone(), page_size: 100, ..Default::default() };
        let answer = self.kms.list_key_versions(in_region(region, request)).await.expect("list versions");
        answer.into_inner().key_versions.into_iter().map(|v| v.key_version_id).collect()
    }

    async fn decrypt(&mut self, region: &str, ciphertext: &[u8]) -> Result<Vec<u8>, tonic::Status> {
        let answer = self.kms.decrypt(in_region(region, decrypt_request(ciphertext))).await?;
        Ok(answer.into_inner().plaintext)
    }

    /// The KeySync service events in the audit trail, newest first.
    async fn sync_records(&self) -> Vec<pb::AuditEvent> {
        all_audit_events(&self.server).await.into_iter().filter(|r| r.event_name == "KeySync").collect()
    }

    /// A sync event's document: the seed's fields in the seed's order, about this key and its two instances.
    #[track_caller]
    fn check_event(&self, event: &pb::SystemEvent, error_code: &str) -> Value {
        let doc: Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(field_names(&doc), INSTANCE_EVENT_FIELDS, "{doc:#}");
        let content_fields = [
            "eventId",
            "syncTaskId",
            "masterInstanceId",
            "shadowInstanceId",
            "syncStatus",
            "errorCode",
            "resourceId",
            "resourceType",
            "eventTime",
        ];
        assert_eq!(field_names(&doc["content"]), content_fields, "{doc:#}");
        let (name, level, status) = match error_code {
            "" => (SUCCESS, "INFO", "SyncSuccess"),
            _ => (FAILURE, "CRITICAL", "SyncFailure"),
        };
        let arn = format!("acs:kms:{PRIMARY}:{ACCOUNT}:key/{}", self.key_id);
        assert_eq!((event.name.as_str(), event.level.as_str(), event.region.as_str()), (name, level, PRIMARY));
        assert_eq!((doc["name"].as_str(), doc["level"].as_str()), (Some(name), Some(level)));
        assert_eq!((doc["status"].as_str(), doc["product"].as_str()), (Some("Normal"), Some("kms")));
        assert_eq!(doc["resourceId"], arn.as_str());
        assert_eq!(event.resource_id, arn);
        assert_eq!(doc["instanceName"], self.key_id.as_str());
        assert_eq!(doc["regionId"], PRIMARY);
        assert_eq!(doc["groupId"], "0");
        assert_eq!(doc["id"], event.id.as_str());
        let content = &doc["content"];
        assert_eq!(content["masterInstanceId"], self.primary.as_str());
        assert_eq!(content["shadowInstanceId"], self.shadow.as_str());
        assert_eq!(content["syncStatus"], status);
        assert_eq!(content["errorCode"], error_code);
        assert_eq!(content["resourceId"], self.key_id.as_str());
        assert_eq!(content["resourceType"], "KEY");
        let seconds = doc["time"].as_i64().unwrap().div_euclid(1000);
        assert_eq!(content["eventTime"], SimTime(seconds * 1000).to_rfc3339().as_str());
        assert_eq!(content["eventId"], format!("{ACCOUNT}:{}:{seconds}", self.key_id));
        doc
    }
}

#[track_caller]
fn assert_unsupported(result: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_error(&status, Code::FailedPrecondition, "UnsupportedOperation", "400", None, what);
}

/// The first sync runs before ReplicateKey answers; the replica has the same id in the shadow region and decrypts the primary's ciphertext.
#[tokio::test]
async fn a_replicated_key_works_in_the_shadow_region() {
    let mut s = Setup::new(None).await;
    let ciphertext = encrypt(&mut s.kms, PRIMARY, &s.key_id, b"follow me").await;
    let status = s.kms.describe_key(in_region(SHADOW, pb::DescribeKeyRequest { key_id: s.key_id.clone() })).await;
    assert_eq!(status.unwrap_err().code(), Code::NotFound, "no replica before ReplicateKey");

    let answer = s.replicate("").await;
    assert_eq!((answer.key_id.as_str(), answer.region.as_str()), (s.key_id.as_str(), PRIMARY));
    let [replica] = answer.replicas.clone().try_into().expect("one replica");
    assert_eq!((replica.shadow_instance_id.as_str(), replica.shadow_region.as_str()), (s.shadow.as_str(), SHADOW));
    assert_eq!(replica.sync_interval, "3600s", "the default interval is an hour");
    assert_eq!((replica.last_sync_status.as_str(), replica.last_error_code.as_str()), ("SyncSuccess", ""));
    assert!(!replica.last_sync_task_id.is_empty() && !replica.last_sync_time.is_empty(), "{replica:#?}");
    let listed = s.instances.list_key_replicas(pb::ListKeyReplicasRequest { key_id: s.key_id.clone() }).await;
    assert_eq!(listed.unwrap().into_inner().replicas, std::slice::from_ref(&replica));

    let primary = s.describe(PRIMARY).await;
    let copy = s.describe(SHADOW).await;
    assert_eq!((copy.key_id.as_str(), copy.region.as_str()), (s.key_id.as_str(), SHADOW));
    assert_eq!(copy.arn, format!("acs:kms:{SHADOW}:{ACCOUNT}:key/{}", s.key_id));
    assert_eq!((copy.dkms_instance_id.as_str(), copy.replica_of_instance_id.as_str()), (&*s.shadow, &*s.primary));
    assert_eq!((copy.key_state.as_str(), copy.key_spec.as_str()), ("Enabled", primary.key_spec.as_str()));
    assert_eq!(copy.primary_key_version, primary.primary_key_version);
    assert!(primary.replica_of_instance_id.is_empty());

    // The same material: each region opens what the other sealed.
    assert_eq!(s.decrypt(SHADOW, &ciphertext).await.expect("decrypt in the shadow region"), b"follow me");
    let sealed_there = encrypt(&mut s.kms, SHADOW, &s.key_id, b"and back").await;
    assert_eq!(s.decrypt(PRIMARY, &sealed_there).await.expect("decrypt in the primary region"), b"and back");

    // The replica is managed through its primary only.
    let disable = s.kms.disable_key(in_region(SHADOW, pb::DisableKeyRequest { key_id: s.key_id.clone() })).await;
    assert_unsupported(disable, "DisableKey on the replica");
    let rotate = s.kms.create_key_version(in_region(SHADOW, pb::CreateKeyVersionRequest { key_id: s.key_id.clone() }));
    assert_unsupported(rotate.await, "CreateKeyVersion on the replica");
    assert_eq!(s.describe(SHADOW).await.key_state, "Enabled");

    let request = in_region(SHADOW, pb::GetKmsInstanceRequest { kms_instance_id: s.shadow.clone() });
    let shadow = s.instances.get_kms_instance(request).await.unwrap().into_inner().kms_instance.unwrap();
    assert_eq!(shadow.key_count, 1, "the replica lives in the shadow instance");

    // One sync task: one service event in the trail, one Success event.
    let events = list_system_events(&s.server, "Instance:KeySync:*").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let doc = s.check_event(&events[0], "");
    assert_eq!(doc["content"]["syncTaskId"], replica.last_sync_task_id.as_str());
    assert_eq!(doc["content"]["eventTime"], replica.last_sync_time.as_str());
    let records = s.sync_records().await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    assert_eq!((record.event_type.as_str(), record.service_name.as_str()), ("AliyunServiceEvent", "Kms"));
    assert_eq!(
        (record.outcome.as_str(), record.key_id.as_str(), record.region.as_str()),
        ("Success", &*s.key_id, PRIMARY)
    );
    assert!(record.response_elements.contains(&replica.last_sync_task_id), "{record:#?}");
}

/// ReplicateKey and SyncKey do their syncs within the call: the answer the
/// client gets, replicas and all, is the one its record sized, and each sync's
/// service event is committed with the call that did it, right after it.
#[tokio::test]
async fn a_sync_asked_for_is_done_and_recorded_within_its_call() {
    let mut s = Setup::new(None).await;
    let added = s.replicate("").await;
    let request = pb::SyncKeyRequest { key_id: s.key_id.clone() };
    let synced = s.instances.sync_key(in_region(PRIMARY, request)).await.expect("sync key").into_inner();

    let records = all_audit_events(&s.server).await;
    let answers =
        [("ReplicateKey", added.encoded_len(), &added.replicas), ("SyncKey", synced.encoded_len(), &synced.replicas)];
    for (event_name, sent_bytes, replicas) in answers {
        let at = records.iter().position(|r| r.event_name == event_name).expect(event_name);
        assert_eq!(records[at].response_bytes, sent_bytes as u64, "{event_name}: the size the client received");
        let [replica] = replicas.as_slice() else { panic!("{event_name}: one replica, {replicas:#?}") };
        assert_eq!(replica.last_sync_status, "SyncSuccess", "{event_name}: the answer shows the sync it did");
        // Listed newest first: the record committed right after the call's comes just before it.
        let sync = &records[at.checked_sub(1).expect("a record after the call's")];
        assert_eq!(sync.event_name, "KeySync", "{event_name}: its sync is recorded right after it: {sync:#?}");
        assert!(sync.response_elements.contains(&replica.last_sync_task_id), "{sync:#?}");
    }
    assert_eq!(s.sync_records().await.len(), 2, "one sync for each call, none after");
}

/// A rotation of the primary reaches the replica on SyncKey, and on the next periodic sync; an idle tick leaves no trace.
#[tokio::test]
async fn a_rotation_reaches_the_replica_on_the_next_sync() {
    let mut s = Setup::new(None).await;
    let first = s.replicate("2h").await.replicas[0].clone();
    assert_eq!(first.sync_interval, "7200s");

    s.rotate().await;
    let sealed = encrypt(&mut s.kms, PRIMARY, &s.key_id, b"new version").await;
    assert_ne!(s.versions(SHADOW).await, s.versions(PRIMARY).await, "not synced yet");
    let status = s.decrypt(SHADOW, &sealed).await.unwrap_err();
    assert_invalid(&status, "CiphertextBlob", "a version the replica does not have yet");

    let synced = s.sync().await;
    assert_eq!((synced.last_sync_status.as_str(), synced.last_error_code.as_str()), ("SyncSuccess", ""));
    assert_ne!(synced.last_sync_task_id, first.last_sync_task_id, "a new task");
    assert_eq!(s.versions(SHADOW).await, s.versions(PRIMARY).await);
    assert_eq!(s.decrypt(SHADOW, &sealed).await.expect("the new version is there"), b"new version");
    assert_eq!(s.describe(SHADOW).await.primary_key_version, s.describe(PRIMARY).await.primary_key_version);

    // The periodic sync: a rotation is copied once the interval has passed.
    s.rotate().await;
    let later = encrypt(&mut s.kms, PRIMARY, &s.key_id, b"periodic").await;
    s.server.advance_secs(2 * 3600 + 1).await;
    assert_eq!(s.decrypt(SHADOW, &later).await.expect("synced by the periodic task"), b"periodic");
    assert_eq!(s.versions(SHADOW).await.len(), 3);
    let successes = list_system_events(&s.server, SUCCESS).await;
    assert_eq!(successes.len(), 3, "{successes:#?}");
    for event in &successes {
        s.check_event(event, "");
    }

    // Nothing to copy: the periodic task does nothing and records nothing.
    s.server.advance_secs(2 * 3600 + 1).await;
    assert_eq!(list_system_events(&s.server, "Instance:KeySync:*").await.len(), 3);
    assert_eq!(s.sync_records().await.len(), 3);
}

/// A sync to a shadow instance that has expired fails with Rejected.Unavailable and raises Instance:KeySync:Failure.
#[tokio::test]
async fn a_sync_to_an_expired_shadow_fails() {
    let mut s = Setup::new(Some(2)).await;
    s.replicate("").await;
    s.server.advance_days(3).await;
    assert_eq!(s.describe(SHADOW).await.key_state, "Unavailable", "the replica expired with its instance");
    let failures_before = list_system_events(&s.server, FAILURE).await.len();

    s.rotate().await;
    let replica = s.sync().await;
    assert_eq!(
        (replica.last_sync_status.as_str(), replica.last_error_code.as_str()),
        ("SyncFailure", "Rejected.Unavailable")
    );
    assert_eq!(s.versions(SHADOW).await.len(), 1, "nothing was copied");

    let failures = list_system_events(&s.server, FAILURE).await;
    assert_eq!(failures.len(), failures_before + 1, "one more Failure event: {failures:#?}");
    for event in &failures {
        s.check_event(event, "Rejected.Unavailable");
    }
    let doc: Value = serde_json::from_str(&failures[0].json).unwrap();
    assert_eq!(doc["content"]["syncTaskId"], replica.last_sync_task_id.as_str(), "the newest is SyncKey's task");

    let records = s.sync_records().await;
    let record = &records[0];
    assert!(record.response_elements.contains(&replica.last_sync_task_id), "{record:#?}");
    assert_eq!((record.outcome.as_str(), record.error_code.as_str()), ("Failure", "Rejected.Unavailable"));
    assert_eq!(record.event_type, "AliyunServiceEvent");
}

/// A fault injected on `KeySync` fails a sync task with its code; the task's native record names the fault.
#[tokio::test]
async fn an_injected_fault_fails_a_sync_task() {
    let mut s = Setup::new(None).await;
    s.replicate("").await;
    let request = pb::InjectFaultRequest {
        method: "KeySync".into(),
        key_id: s.key_id.clone(),
        error_code: "ServiceUnavailableTemporary".into(),
        count: 1,
        ..Default::default()
    };
    let fault = s.server.simulation().await.inject_fault(request).await.unwrap().into_inner().fault.unwrap();

    s.rotate().await;
    let failed = s.sync().await;
    assert_eq!(
        (failed.last_sync_status.as_str(), failed.last_error_code.as_str()),
        ("SyncFailure", "ServiceUnavailableTemporary")
    );
    assert_eq!(s.versions(SHADOW).await.len(), 1, "nothing was copied");
    let failures = list_system_events(&s.server, FAILURE).await;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let doc = s.check_event(&failures[0], "ServiceUnavailableTemporary");
    assert_eq!(doc["content"]["syncTaskId"], failed.last_sync_task_id.as_str());

    let native = audit_renderings(&s.server, "native").await;
    let (record, json) = native
        .iter()
        .find(|(r, _)| r.event_name == "KeySync" && r.response_elements.contains(&failed.last_sync_task_id))
        .expect("the failed task's record");
    assert_eq!((record.outcome.as_str(), record.error_code.as_str()), ("Failure", "ServiceUnavailableTemporary"));
    assert_eq!(json["injectedFault"], fault.fault_id.as_str());
    // SyncKey itself is another operation and was not hit.
    let sync_call = native.iter().find(|(r, _)| r.event_name == "SyncKey").expect("the SyncKey call");
    assert_eq!(sync_call.0.outcome, "Success");

    // The fault is spent: the next sync copies the rotation.
    let recovered = s.sync().await;
    assert_eq!((recovered.last_sync_status.as_str(), recovered.last_error_code.as_str()), ("SyncSuccess", ""));
    assert_eq!(s.versions(SHADOW).await, s.versions(PRIMARY).await);
}

/// ReplicateKey and SyncKey refuse what cannot be synchronised, naming the parameter.
#[tokio::test]
async fn bad_replication_requests_are_refused() {
    let mut s = Setup::new(None).await;
    let replicate = |key_id: &str, shadow: &str, interval: &str| {
        let request = pb::ReplicateKeyRequest {
            key_id: key_id.to_owned(),
            shadow_instance_id: shadow.to_owned(),
            sync_interval: interval.to_owned(),
        };
        in_region(PRIMARY, request)
    };
    let same_region = create_instance(&mut s.instances, PRIMARY, 200, "").await.kms_instance_id;
    let status = s.instances.replicate_key(replicate(&s.key_id, &same_region, "")).await.unwrap_err();
    assert_invalid(&status, "ShadowInstanceId", "a shadow in the key's own region");
    let status = s.instances.replicate_key(replicate(&s.key_id, "", "")).await.unwrap_err();
    assert_missing(&status, "ShadowInstanceId", "no shadow");
    let status = s.instances.replicate_key(replicate(&s.key_id, "kst-shh00000000000000", "")).await.unwrap_err();
    assert_error(&status, Code::NotFound, "Forbidden.DKMSInstanceNotFound", "403", None, "an unknown shadow");
    for interval in ["30s", "366d", "often"] {
        let status = s.instances.replicate_key(replicate(&s.key_id, &s.shadow, interval)).await.unwrap_err();
        assert_invalid(&status, "SyncInterval", interval);
    }
    let default_key = create_key(&mut s.kms, "").await;
    let status = s.instances.replicate_key(replicate(&default_key, &s.shadow, "")).await;
    assert_unsupported(status, "a default key");
    let status = s.instances.sync_key(in_region(PRIMARY, pb::SyncKeyRequest { key_id: s.key_id.clone() })).await;
    assert_invalid(&status.unwrap_err(), "KeyId", "a key with no replicas");
    let request = pb::ReplicateKeyRequest {
        key_id: s.key_id.clone(),
        shadow_instance_id: s.shadow.clone(),
        ..Default::default()
    };
    let status = s.instances.replicate_key(in_region(SHADOW, request)).await.unwrap_err();
    assert_error(&status, Code::NotFound, "Forbidden.KeyNotFound", "404", None, "from the shadow's region");

    assert!(list_system_events(&s.server, "Instance:KeySync:*").await.is_empty(), "no sync ran");
    assert!(s.sync_records().await.is_empty());
}

/// Within one long AdvanceClock each periodic sync runs at its own due time: automatic rotations on days 7 and 14 both reach the replica.
#[tokio::test]
async fn periodic_syncs_run_at_their_own_time_within_one_advance() {
    let mut s = Setup::new(None).await;
    let request = pb::UpdateRotationPolicyRequest {
        key_id: s.key_id.clone(),
        enable_automatic_rotation: true,
        rotation_interval: "7d".into(),
    };
    s.kms.update_rotation_policy(in_region(PRIMARY, request)).await.expect("rotation policy");
    s.replicate("1h").await;

    s.server.advance_days(15).await;
    assert_eq!(s.versions(PRIMARY).await.len(), 3, "rotated on days 7 and 14");
    assert_eq!(s.versions(SHADOW).await, s.versions(PRIMARY).await, "both rotations were synced by day 15");
    assert_eq!(list_system_events(&s.server, SUCCESS).await.len(), 3, "the first sync and one per rotation");
}
