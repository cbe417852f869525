//! Secrets Manager end to end: version stages, the audit trail of secret reads
//! with their correlated decrypts, deletion windows, and managed rotation on
//! the simulation clock.

mod common;

use common::*;
use kmsim::proto as pb;
use kmsim::proto::secrets_manager_service_client::SecretsManagerServiceClient;
use serde_json::Value;
use tonic::transport::Channel;

type Secrets = SecretsManagerServiceClient<Channel>;

async fn secrets(server: &TestServer) -> Secrets {
    SecretsManagerServiceClient::new(server.channel().await)
}

async fn create(secrets: &mut Secrets, request: pb::CreateSecretRequest) -> pb::CreateSecretResponse {
    secrets.create_secret(request).await.expect("create secret").into_inner()
}

async fn value(secrets: &mut Secrets, name: &str, version_id: &str, stage: &str) -> pb::GetSecretValueResponse {
    let request = pb::GetSecretValueRequest {
        secret_name: name.into(),
        version_id: version_id.into(),
        version_stage: stage.into(),
        ..Default::default()
    };
    secrets.get_secret_value(request).await.expect("get secret value").into_inner()
}

async fn versions(secrets: &mut Secrets, name: &str) -> Vec<(String, Vec<String>)> {
    let request = pb::ListSecretVersionIdsRequest {
        secret_name: name.into(),
        include_deprecated: true,
        page_size: 100,
        ..Default::default()
    };
    let listed = secrets.list_secret_version_ids(request).await.expect("list versions").into_inner();
    listed.version_ids.into_iter().map(|v| (v.version_id, v.version_stages)).collect()
}

fn document(event: &pb::SystemEvent) -> Value {
    serde_json::from_str(&event.json).expect("an event document is JSON")
}

/// Events named `name` about the secret `secret_name`, oldest first.
async fn secret_events(server: &TestServer, name: &str, secret_name: &str) -> Vec<Value> {
    let mut events: Vec<Value> = list_system_events(server, name)
        .await
        .iter()
        .map(document)
        .filter(|d| d["content"]["secretName"] == secret_name)
        .collect();
    events.reverse();
    events
}

#[tokio::test]
async fn three_puts_move_the_stages_and_every_version_stays_readable_by_id() {
    let server = TestServer::start().await;
    let mut secrets = secrets(&server).await;
    create(
        &mut secrets,
        pb::CreateSecretRequest {
            secret_name: "app/db-password".into(),
            secret_data: "first".into(),
            version_id: "v1".into(),
            ..Default::default()
        },
    )
    .await;
    let stage = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(versions(&mut secrets, "app/db-password").await, vec![("v1".into(), stage(&["ACSCurrent"]))]);

    for (version_id, data) in [("v2", "second"), ("v3", "third")] {
        let put = pb::PutSecretValueRequest {
            secret_name: "app/db-password".into(),
            version_id: version_id.into(),
            secret_data: data.into(),
            ..Default::default()
        };
        let answer = secrets.put_secret_value(put).await.expect("put").into_inner();
        assert_eq!(answer.version_stages, ["ACSCurrent"]);
    }
    assert_eq!(
        versions(&mut secrets, "app/db-password").await,
        vec![("v3".into(), stage(&["ACSCurrent"])), ("v2".into(), stage(&["ACSPrevious"])), ("v1".into(), stage(&[])),],
        "newest first: the new value is current, the one before it previous, the first has no stage"
    );
    // A third put with a custom stage only: ACSCurrent stays where it is.
    let put = pb::PutSecretValueRequest {
        secret_name: "app/db-password".into(),
        version_id: "v4".into(),
        secret_data: "fourth".into(),
        version_stages: vec!["Canary".into()],
        ..Default::default()
    };
    secrets.put_secret_value(put).await.expect("put a canary");
    assert_eq!(value(&mut secrets, "app/db-password", "", "").await.version_id, "v3");
    assert_eq!(value(&mut secrets, "app/db-password", "", "Canary").await.secret_data, "fourth");

    for (version_id, data) in [("v1", "first"), ("v2", "second"), ("v3", "third"), ("v4", "fourth")] {
        let read = value(&mut secrets, "app/db-password", version_id, "").await;
        assert_eq!((read.version_id.as_str(), read.secret_data.as_str()), (version_id, data));
    }
    let previous = value(&mut secrets, "app/db-password", "", "ACSPrevious").await;
    assert_eq!((previous.version_id.as_str(), previous.version_stages.as_slice()), ("v2", &["ACSPrevious".into()][..]));
    // A version id with a stage it does not have names nothing.
    let mismatch = pb::GetSecretValueRequest {
        secret_name: "app/db-password".into(),
        version_id: "v1".into(),
        version_stage: "ACSCurrent".into(),
        ..Default::default()
    };
    let status = secrets.get_secret_value(mismatch).await.unwrap_err();
    assert_eq!((error_code(&status), http_status(&status)), ("Forbidden.ResourceNotFound".into(), "404".into()));
}

#[tokio::test]
async fn the_seed_query_finds_exactly_the_reads_of_a_secret_each_with_its_correlated_decrypt() {
    let server = TestServer::start().await;
    let mut secrets = secrets(&server).await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    for name in ["billing-db", "billing-db-replica", "search-db"] {
        let request = pb::CreateSecretRequest {
            secret_name: name.into(),
            secret_data: format!("value of {name}"),
            encryption_key_id: key_id.clone(),
            ..Default::default()
        };
        create(&mut secrets, request).await;
    }
    let mut reads = Vec::new();
    for (i, name) in ["billing-db", "search-db", "billing-db", "billing-db-replica", "billing-db"].iter().enumerate() {
        let request_id = format!("read-{i}-{name}");
        let request = pb::GetSecretValueRequest { secret_name: (*name).into(), ..Default::default() };
        let read = secrets.get_secret_value(with_request_id(&request_id, request)).await.expect("read");
        assert_eq!(read.into_inner().secret_data, format!("value of {name}"));
        if *name == "billing-db" {
            reads.push(request_id);
        }
    }

    let query = r#"* AND (event.serviceName: "Kms") AND (event.eventName: "GetSecretValue") AND "billing-db""#;
    let request =
        pb::QueryAuditEventsRequest { query: query.into(), format: "actiontrail".into(), ..Default::default() };
    let found = server.audit().await.query_audit_events(request).await.expect("query").into_inner().events;
    let mut found_ids: Vec<String> =
        found.iter().map(|r| r.event.as_ref().unwrap().client_request_id.clone()).collect();
    found_ids.sort();
    reads.sort();
    // "billing-db" is a phrase: the reads of billing-db-replica do not match it.
    assert_eq!(found_ids, reads, "exactly the reads of billing-db");
    for result in &found {
        let trail: Value = serde_json::from_str(&result.json).unwrap();
        assert_eq!(trail["resourceType"], "ACS::KMS::Secret");
        assert_eq!(trail["requestParameters"]["SecretName"], "billing-db");
        assert!(trail["resourceName"].as_str().unwrap().ends_with(":secret/billing-db"));
    }

    let events = all_audit_events(&server).await;
    for request_id in &reads {
        let records: Vec<&pb::AuditEvent> = events.iter().filter(|e| &e.client_request_id == request_id).collect();
        assert_eq!(records.len(), 2, "{request_id}: the read and its decrypt");
        let read = records.iter().find(|e| e.event_name == "GetSecretValue").expect("the read");
        let decrypt = records.iter().find(|e| e.action == "kms.decrypt").expect("its decrypt");
        assert_eq!((read.resource_type.as_str(), read.secret_name.as_str()), ("kms_secret", "billing-db"));
        assert_eq!(read.outcome, "Success");
        assert_eq!(decrypt.event_name, "Decrypt");
        assert_eq!((decrypt.key_id.as_str(), decrypt.outcome.as_str()), (key_id.as_str(), "Success"));
        assert_eq!(decrypt.invoked_by, "SecretsManager");
        assert_eq!(decrypt.plaintext_bytes, Some("value of billing-db".len() as u64));
        assert!(!decrypt.key_version_id.is_empty());
    }
}

#[tokio::test]
async fn a_deleted_secret_can_be_restored_in_its_window_and_is_gone_after_it() {
    let server = TestServer::start().await;
    let mut secrets = secrets(&server).await;
    let created = create(
        &mut secrets,
        pb::CreateSecretRequest {
            secret_name: "temp-creds".into(),
            secret_data: "short-lived".into(),
            ..Default::default()
        },
    )
    .await;
    let delete = || pb::DeleteSecretRequest {
        secret_name: "temp-creds".into(),
        recovery_window_in_days: 7,
        ..Default::default()
    };
    let deleted_at = server.sim_now().await;
    let planned = secrets.delete_secret(delete()).await.expect("schedule deletion").into_inner().planned_delete_time;
    let planned_at = kmsim::clock::SimTime::parse_rfc3339(&planned).unwrap();
    // Event and API times are whole seconds.
    assert!((planned_at.millis() - deleted_at.millis() - 7 * 86_400_000).abs() < 1_000, "planned 7 days on");
    let scheduled = secret_events(&server, "Secret:DeleteSecret:ScheduleDeletion", "temp-creds").await;
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0]["content"]["plannedDeleteTime"], planned.as_str());
    assert_eq!(scheduled[0]["content"]["deleteEntityArn"], created.arn.as_str());

    let get = || pb::GetSecretValueRequest { secret_name: "temp-creds".into(), ..Default::default() };
    let status = secrets.get_secret_value(get()).await.unwrap_err();
    assert_eq!((error_code(&status), http_status(&status)), ("Rejected.ResourceInDeleteWindow".into(), "409".into()));

    server.advance_days(6).await;
    secrets
        .restore_secret(pb::RestoreSecretRequest { secret_name: "temp-creds".into() })
        .await
        .expect("restore on day 6");
    assert_eq!(secrets.get_secret_value(get()).await.expect("readable again").into_inner().secret_data, "short-lived");
    server.advance_days(2).await;
    assert!(secret_events(&server, "Secret:DeleteSecret:ActualDeletion", "temp-creds").await.is_empty());

    let planned = secrets.delete_secret(delete()).await.expect("delete again").into_inner().planned_delete_time;
    server.advance_days(8).await;
    let deleted = secret_events(&server, "Secret:DeleteSecret:ActualDeletion", "temp-creds").await;
    assert_eq!(deleted.len(), 1, "one ActualDeletion");
    let event = &deleted[0];
    // The seed's shape: the envelope, and content in the seed's order.
    assert_eq!(field_names(event), KEY_EVENT_FIELDS, "secret events share the key events' envelope");
    assert_eq!(field_names(&event["content"]), ["eventId", "secretName", "deleteEntityArn", "deleteTime"]);
    assert_eq!(event["name"], "Secret:DeleteSecret:ActualDeletion");
    assert_eq!((event["level"].as_str(), event["product"].as_str()), (Some("WARN"), Some("kms")));
    assert_eq!(
        (event["resourceId"].as_str(), event["instanceName"].as_str()),
        (Some(created.arn.as_str()), Some("temp-creds"))
    );
    assert_eq!(
        event["content"]["deleteTime"],
        planned.as_str(),
        "deleted when its window ended, not when the clock jumped"
    );
    let seconds = kmsim::clock::SimTime::parse_rfc3339(&planned).unwrap().millis() / 1000;
    assert_eq!(event["content"]["eventId"], format!("{}:temp-creds:{seconds}", kmsim::server::DEFAULT_ACCOUNT_ID));

    let status = secrets.get_secret_value(get()).await.unwrap_err();
    assert_eq!((error_code(&status), http_status(&status)), ("Forbidden.ResourceNotFound".into(), "404".into()));
    let records = all_audit_events(&server).await;
    let deletion = records
        .iter()
        .find(|r| r.event_name == "DeleteSecret" && r.event_type == "AliyunServiceEvent")
        .expect("the actual deletion is audited as kmsim's own work");
    assert_eq!((deletion.secret_name.as_str(), deletion.resource_type.as_str()), ("temp-creds", "kms_secret"));
    // The name is free again.
    let again =
        pb::CreateSecretRequest { secret_name: "temp-creds".into(), secret_data: "new".into(), ..Default::default() };
    create(&mut secrets, again).await;
}

#[tokio::test]
async fn six_hourly_rotation_over_two_days_rotates_eight_times_and_a_failing_target_keeps_its_value() {
    let server = TestServer::start().await;
    let mut secrets = secrets(&server).await;
    let rds = |name: &str, config: &str| pb::CreateSecretRequest {
        secret_name: name.into(),
        secret_data: r#"{"AccountName":"app","AccountPassword":"initial-password"}"#.into(),
        version_id: "initial".into(),
        secret_type: "Rds".into(),
        extended_config: config.into(),
        enable_automatic_rotation: true,
        rotation_interval: "6h".into(),
        ..Default::default()
    };
    let created = create(
        &mut secrets,
        rds("rds/app", r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-app","AccountName":"app"}"#),
    )
    .await;
    assert_eq!((created.automatic_rotation.as_str(), created.rotation_interval.as_str()), ("Enabled", "21600s"));
    create(
        &mut secrets,
        rds("rds/broken", r#"{"DBInstanceId":"rm-gone","AccountName":"app","TargetUnreachable":true}"#),
    )
    .await;
    let start = server.sim_now().await;

    server.advance_days(2).await;

    let succeeded = secret_events(&server, "Secret:RotateSecret:Success", "rds/app").await;
    assert_eq!(succeeded.len(), 8, "every 6 hours for 2 days");
    for (i, event) in succeeded.iter().enumerate() {
        let content = &event["content"];
        assert_eq!(event["level"], "INFO");
        assert_eq!(
            (content["secretType"].as_str(), content["secretSubType"].as_str()),
            (Some("Rds"), Some("RdsSingleUser"))
        );
        assert_eq!(content["rotationStatus"], "Enabled");
        let at = kmsim::clock::SimTime::parse_rfc3339(content["successTime"].as_str().unwrap()).unwrap();
        let expected = (i as i64 + 1) * 6 * 3_600_000;
        // Event times are whole seconds.
        assert!((at.millis() - start.millis() - expected).abs() < 1_000, "rotation {i} at its own time");
    }
    let current = value(&mut secrets, "rds/app", "", "").await;
    assert_ne!(current.version_id, "initial");
    let credential: Value = serde_json::from_str(&current.secret_data).unwrap();
    assert_eq!(credential["AccountName"], "app");
    assert!(credential["AccountPassword"].as_str().is_some_and(|p| p.len() >= 16 && p != "initial-password"));
    let all_versions = versions(&mut secrets, "rds/app").await;
    assert_eq!(all_versions.len(), 9, "the first value and eight rotations");
    assert_eq!(all_versions[1].1, ["ACSPrevious"]);
    let described = secrets
        .describe_secret(pb::DescribeSecretRequest { secret_name: "rds/app".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.last_rotation_date, succeeded[7]["content"]["successTime"].as_str().unwrap());
    let records = all_audit_events(&server).await;
    let rotations: Vec<&pb::AuditEvent> =
        records.iter().filter(|r| r.action == "kms.rotate_secret.scheduled" && r.secret_name == "rds/app").collect();
    assert_eq!(rotations.len(), 8);
    for rotation in rotations {
        let sealed = records.iter().filter(|r| r.request_id == rotation.request_id && r.action == "kms.encrypt");
        assert_eq!(sealed.count(), 1, "each rotation's new value is sealed by one Encrypt");
    }

    let failed = secret_events(&server, "Secret:RotateSecret:Failure", "rds/broken").await;
    assert_eq!(failed.len(), 8);
    for event in &failed {
        assert_eq!(event["level"], "CRITICAL");
        assert_eq!(event["content"]["failureInfo"]["errorCode"], "RotateError");
        assert!(event["content"]["failureTime"].is_string());
    }
    assert!(secret_events(&server, "Secret:RotateSecret:Success", "rds/broken").await.is_empty());
    let kept = value(&mut secrets, "rds/broken", "", "").await;
    assert_eq!((kept.version_id.as_str(), kept.secret_data.as_str()), ("initial", rds("", "").secret_data.as_str()));
    assert_eq!(versions(&mut secrets, "rds/broken").await.len(), 1);
}
