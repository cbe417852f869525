//! The Alibaba OpenAPI front end, from the wire: requests built from the
//! protocol by `common::openapi` against a real server, on the same port as
//! gRPC. What the real SDKs do with it is `tests/alibaba_sdk.rs`.

mod common;

use base64::Engine as _;
use common::openapi::{Call, Reply, raw, send};
use common::*;
use kmsim::proto as pb;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn ok(server: &TestServer, call: Call) -> serde_json::Value {
    let reply = send(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{} answered {:?}", call.action, reply.body);
    assert!(!reply.request_id().is_empty(), "every answer carries a RequestId");
    reply.body
}

async fn create_key(server: &TestServer) -> String {
    let body = ok(server, Call::new("CreateKey").param("KeySpec", "Aliyun_AES_256")).await;
    body["KeyMetadata"]["KeyId"].as_str().expect("KeyMetadata.KeyId").to_owned()
}

/// Every record, oldest first.
async fn records(server: &TestServer) -> Vec<pb::AuditEvent> {
    let mut events: Vec<_> = audit_renderings(server, "native").await.into_iter().map(|(event, _)| event).collect();
    events.reverse();
    events
}

async fn record_of(server: &TestServer, request_id: &str) -> pb::AuditEvent {
    let found: Vec<_> = records(server).await.into_iter().filter(|e| e.request_id == request_id).collect();
    assert_eq!(found.len(), 1, "exactly one record for request {request_id}");
    found.into_iter().next().unwrap()
}

fn assert_alibaba_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.code(), code, "{:?}", reply.body);
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(
            reply.body[field].as_str().is_some_and(|v| !v.is_empty()),
            "error body lacks {field}: {:?}",
            reply.body
        );
    }
}

#[tokio::test]
async fn the_openapi_is_answered_on_the_grpc_port_in_alibabas_json() {
    let server = TestServer::start().await;
    let key_id = create_key(&server).await;
    let sealed = ok(
        &server,
        Call::new("Encrypt")
            .param("KeyId", &key_id)
            .param("Plaintext", &b64(b"hello, kms"))
            .param("EncryptionContext", r#"{"app": "billing", "n": 1}"#),
    )
    .await;
    assert_eq!(sealed["KeyId"], key_id.as_str());
    let blob = sealed["CiphertextBlob"].as_str().expect("CiphertextBlob").to_owned();
    // The context is a set of entries: another order and spacing is the same context.
    let opened = ok(
        &server,
        Call::new("Decrypt").param("CiphertextBlob", &blob).param("EncryptionContext", r#"{"n":1,"app":"billing"}"#),
    )
    .await;
    assert_eq!(opened["Plaintext"], b64(b"hello, kms").as_str());
    assert_eq!(opened["KeyVersionId"], sealed["KeyVersionId"]);

    // The same key through gRPC on the same port.
    let keys = server.kms().await.list_keys(pb::ListKeysRequest::default()).await.unwrap().into_inner().keys;
    assert!(keys.iter().any(|k| k.key_id == key_id));

    let listed = ok(&server, Call::new("ListKeys").param("PageSize", "1")).await;
    assert_eq!(listed["TotalCount"], 1);
    assert_eq!(listed["PageSize"], 1);
    assert_eq!(listed["Keys"]["Key"][0]["KeyId"], key_id.as_str());
}

#[tokio::test]
async fn a_refusal_is_alibabas_error_body_with_the_tables_status_and_its_record() {
    let server = TestServer::start().await;
    let key_id = create_key(&server).await;
    ok(&server, Call::new("DisableKey").param("KeyId", &key_id)).await;
    let mut call = Call::new("Encrypt").param("KeyId", &key_id).param("Plaintext", &b64(b"x"));
    call.user_agent = Some("AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2".into());
    let reply = send(server.addr, &call).await;
    assert_alibaba_error(&reply, 409, "Rejected.Disabled");

    let record = record_of(&server, reply.request_id()).await;
    assert_eq!(record.event_name, "Encrypt");
    assert_eq!(record.error_code, "Rejected.Disabled");
    assert_eq!(record.http_status, 409);
    assert_eq!(record.key_id, key_id);
    assert_eq!(record.user_agent, "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2");
    assert_eq!(record.client_ip, "127.0.0.1");
}

#[tokio::test]
async fn an_unknown_action_and_a_malformed_parameter_are_audited_refusals() {
    let server = TestServer::start().await;
    let unknown = send(server.addr, &Call::new("DescribeEverything")).await;
    assert_alibaba_error(&unknown, 404, "InvalidAction.NotFound");
    let record = record_of(&server, unknown.request_id()).await;
    assert_eq!(record.error_code, "InvalidAction.NotFound");
    assert!(record.request_parameters.contains("DescribeEverything"), "{}", record.request_parameters);

    let malformed = send(server.addr, &Call::new("ListKeys").param("PageSize", "ten")).await;
    assert_alibaba_error(&malformed, 400, "InvalidParameter");
    assert!(malformed.body["Message"].as_str().unwrap().contains("PageSize"));
    let record = record_of(&server, malformed.request_id()).await;
    assert_eq!(record.event_name, "ListKeys", "refused as the action it was addressed to");

    let not_base64 = send(server.addr, &Call::new("Decrypt").param("CiphertextBlob", "***")).await;
    assert_alibaba_error(&not_base64, 400, "InvalidParameter");
    assert_eq!(record_of(&server, not_base64.request_id()).await.event_name, "Decrypt");

    let no_action =
        raw(server.addr, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    assert_alibaba_error(&no_action, 400, "MissingParameter");
    record_of(&server, no_action.request_id()).await;
}

#[tokio::test]
async fn the_region_comes_from_the_host_called_and_actiontrail_names_it() {
    let server = TestServer::start().await;
    let mut call = Call::new("CreateKey").param("KeySpec", "Aliyun_AES_256");
    call.host = Some("kms.cn-shanghai.aliyuncs.com".into());
    let reply = send(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let arn = reply.body["KeyMetadata"]["Arn"].as_str().unwrap();
    assert!(arn.starts_with("acs:kms:cn-shanghai:"), "{arn}");

    let by_region_id = ok(&server, Call::new("CreateKey").param("RegionId", "cn-beijing")).await;
    assert!(by_region_id["KeyMetadata"]["Arn"].as_str().unwrap().starts_with("acs:kms:cn-beijing:"));

    let renderings = audit_renderings(&server, "actiontrail").await;
    let (_, trail) = renderings.iter().find(|(e, _)| e.request_id == reply.request_id()).expect("the record");
    assert_eq!(trail["eventSource"], "kms.cn-shanghai.aliyuncs.com");
    assert_eq!(trail["acsRegion"], "cn-shanghai");
}

#[tokio::test]
async fn throttling_asks_the_client_to_retry_later() {
    let server = TestServer::start().await;
    let key_id = create_key(&server).await;
    let fault = pb::InjectFaultRequest {
        method: "Encrypt".into(),
        error_code: "Rejected.Throttling".into(),
        ..Default::default()
    };
    server.simulation().await.inject_fault(fault).await.expect("inject a fault");
    let reply = send(server.addr, &Call::new("Encrypt").param("KeyId", &key_id).param("Plaintext", &b64(b"x"))).await;
    assert_alibaba_error(&reply, 429, "Rejected.Throttling");
    let retry_after: u64 = reply.headers["x-acs-retry-after"].parse().expect("a number");
    assert!(retry_after > 0, "the SDK raises ThrottlingException only for a positive retry-after");
}

#[tokio::test]
async fn signatures_are_verified_against_kmsims_access_keys_and_every_refusal_is_recorded() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, "openapi-user").await;
    let (id, secret) = (user.access_key_id.as_str(), user.secret.expose());

    let right = send(server.addr, &Call::new("ListKeys").signed(ADMIN_KEY_ID, ADMIN_SECRET)).await;
    assert_eq!(right.status, 200, "{:?}", right.body);

    // A RAM user's signature verifies, and then its (empty) policies are judged, as on every front end.
    let as_user = send(server.addr, &Call::new("ListKeys").signed(id, secret)).await;
    assert_alibaba_error(&as_user, 403, "Forbidden.NoPermission");

    let wrong = send(server.addr, &Call::new("ListKeys").signed(id, "not-the-secret")).await;
    assert_alibaba_error(&wrong, 400, "SignatureDoesNotMatch");
    let message = wrong.body["Message"].as_str().unwrap();
    let (_, quoted) = message.split_once(':').expect("the message quotes the string to sign after a colon");
    assert!(quoted.starts_with("ACS3-HMAC-SHA256\n"), "{message}");

    let unknown = send(server.addr, &Call::new("ListKeys").signed("LTAInobodyAtAll00000001", "x")).await;
    assert_alibaba_error(&unknown, 404, "InvalidAccessKeyId.NotFound");

    let mut stale = Call::new("ListKeys").signed(ADMIN_KEY_ID, ADMIN_SECRET);
    stale.date = Some("2020-01-01T00:00:00Z".into());
    let stale = send(server.addr, &stale).await;
    assert_alibaba_error(&stale, 400, "InvalidTimeStamp.Expired");

    let mut once = Call::new("ListKeys").signed(ADMIN_KEY_ID, ADMIN_SECRET);
    once.nonce = Some("5e0f1a9c2b7d4c3e8f6a1b2c3d4e5f60".into());
    assert_eq!(send(server.addr, &once).await.status, 200);
    let replayed = send(server.addr, &once).await;
    assert_alibaba_error(&replayed, 400, "SignatureNonceUsed");

    let unsigned = send(server.addr, &Call::new("ListKeys")).await;
    assert_alibaba_error(&unsigned, 400, "MissingParameter");

    let events = admin
        .audit
        .list_audit_events(pb::ListAuditEventsRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    let record = |reply: &Reply| {
        let found: Vec<_> = events.iter().filter(|e| e.request_id == reply.request_id()).collect();
        assert_eq!(found.len(), 1, "one record for {:?}", reply.body);
        found[0].clone()
    };
    for (reply, access_key_id) in
        [(&wrong, id), (&unknown, "LTAInobodyAtAll00000001"), (&stale, ADMIN_KEY_ID), (&replayed, ADMIN_KEY_ID)]
    {
        let event = record(reply);
        assert_eq!(event.event_name, "ListKeys");
        assert_eq!(event.error_code, reply.code());
        assert_eq!(event.access_key_id, access_key_id);
    }
    // The string to sign is the client's own request (a v1 one holds every parameter, plaintext
    // included): it goes back on the wire and never into a record.
    assert!(!record(&wrong).error_message.contains("string to sign"), "{}", record(&wrong).error_message);
    assert_eq!(record(&right).access_key_id, ADMIN_KEY_ID);
    assert_eq!(record(&as_user).access_key_id, id);
}

async fn create_secret(server: &TestServer, name: &str, key_id: &str, value: &str) {
    let call = Call::new("CreateSecret")
        .param("SecretName", name)
        .param("SecretData", value)
        .param("VersionId", "v1")
        .param("EncryptionKeyId", key_id);
    ok(server, call).await;
}

/// `Name.1`, `Name.2`, … as the SDKs flatten a list (Alibaba's RepeatList).
fn numbered(mut call: Call, name: &str, values: &[&str]) -> Call {
    for (n, value) in values.iter().enumerate() {
        call = call.param(&format!("{name}.{}", n + 1), value);
    }
    call
}

/// Each tag of a ListTagResources answer as (resource, key, value).
fn tag_rows(body: &serde_json::Value) -> Vec<(String, String, String)> {
    let rows = body["TagResources"]["TagResource"].as_array().expect("TagResources.TagResource[]");
    rows.iter()
        .map(|row| {
            let text = |name: &str| row[name].as_str().unwrap_or_else(|| panic!("{name} in {row}")).to_owned();
            (text("ResourceId"), text("TagKey"), text("TagValue"))
        })
        .collect()
}

#[tokio::test]
async fn the_account_its_regions_and_its_kms_instances_answer_as_alibaba_documents_them() {
    let server = TestServer::start().await;
    ok(&server, Call::new("CreateKey").param("RegionId", "cn-zhangjiakou")).await;
    let regions = ok(&server, Call::new("DescribeRegions")).await;
    let ids: Vec<&str> = regions["Regions"]["Region"]
        .as_array()
        .expect("Regions.Region[]")
        .iter()
        .filter_map(|r| r["RegionId"].as_str())
        .collect();
    for region in ["cn-hangzhou", "cn-shanghai", "ap-southeast-1", "cn-zhangjiakou"] {
        assert!(ids.contains(&region), "{region} in {ids:?}");
    }
    assert_eq!(ok(&server, Call::new("DescribeAccountKmsStatus")).await["AccountStatus"], "Enabled");
    let opened = ok(&server, Call::new("OpenKmsService")).await;
    assert_eq!(record_of(&server, opened["RequestId"].as_str().unwrap()).await.event_name, "OpenKmsService");

    let mut instances = server.instances().await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create_instance(&mut instances, "cn-hangzhou", 1000, "").await.kms_instance_id);
    }
    let first = &made[0].clone();
    let mut kms = server.kms().await;
    for _ in 0..2 {
        create_instance_key(&mut kms, "cn-hangzhou", first).await;
    }
    let key_in_instance = create_instance_key(&mut kms, "cn-hangzhou", first).await;
    create_secret(&server, "in-instance", &key_in_instance, "s3cret").await;

    let got = ok(&server, Call::new("GetKmsInstance").param("KmsInstanceId", first)).await;
    let instance = &got["KmsInstance"];
    assert_eq!(instance["InstanceId"], first.as_str());
    assert_eq!(instance["Status"], "Connected");
    assert_eq!(instance["Spec"], 1000, "a JSON number, as the model reads it");
    assert_eq!(instance["KeyNum"], 1000, "the key quota");
    assert_eq!(instance["SecretNum"], "1000", "the model reads SecretNum as a string");
    assert!(instance["EndDate"].as_str().unwrap().ends_with('Z'));

    let mut seen = Vec::new();
    for (page, expected) in [(1, 2), (2, 1)] {
        let call = Call::new("ListKmsInstances").param("PageNumber", &page.to_string()).param("PageSize", "2");
        let listed = ok(&server, call).await;
        assert_eq!((listed["TotalCount"].as_i64(), listed["PageNumber"].as_i64()), (Some(3), Some(page)));
        let items = listed["KmsInstances"]["KmsInstance"].as_array().expect("KmsInstances.KmsInstance[]");
        assert_eq!(items.len(), expected);
        for item in items {
            let id = item["KmsInstanceId"].as_str().unwrap();
            assert!(item["KmsInstanceArn"].as_str().unwrap().ends_with(&format!(":instance/{id}")), "{item}");
            seen.push(id.to_owned());
        }
    }
    // Oldest first; made within one simulated millisecond, they are in id order.
    seen.sort();
    made.sort();
    assert_eq!(seen, made, "each once");
    let too_big = send(server.addr, &Call::new("ListKmsInstances").param("PageSize", "101")).await;
    assert_alibaba_error(&too_big, 400, "InvalidParameter");
    let record = record_of(&server, too_big.request_id()).await;
    assert_eq!(record.event_name, "ListKmsInstances");
    assert!(record.request_parameters.contains("\"PageSize\":101"), "{}", record.request_parameters);

    let quotas = ok(&server, Call::new("GetKmsInstanceQuotaInfos").param("KmsInstanceId", first)).await;
    assert_eq!(quotas["KmsInstanceId"], first.as_str());
    let by_type: std::collections::BTreeMap<String, (i64, i64)> = quotas["KmsInstanceQuotaInfos"]
        .as_array()
        .expect("KmsInstanceQuotaInfos[]")
        .iter()
        .map(|q| {
            let n = |name: &str| q[name].as_i64().unwrap_or_else(|| panic!("{name} is a number in {q}"));
            (q["ResourceType"].as_str().unwrap().to_owned(), (n("ResourceQuota"), n("UsedQuantity")))
        })
        .collect();
    assert_eq!(by_type["key"], (1000, 3));
    assert_eq!(by_type["secret"], (1000, 1));
    assert_eq!(by_type["vpc"], (1, 0));
    assert_eq!(by_type["qps"].0, 1000);
    assert!(by_type["qps"].1 >= 1, "the calls on its keys count: {:?}", by_type["qps"]);
    let keys_only =
        ok(&server, Call::new("GetKmsInstanceQuotaInfos").param("KmsInstanceId", first).param("ResourceType", "key"))
            .await;
    assert_eq!(keys_only["KmsInstanceQuotaInfos"].as_array().unwrap().len(), 1);
    let bad_type = Call::new("GetKmsInstanceQuotaInfos").param("KmsInstanceId", first).param("ResourceType", "hsm");
    assert_alibaba_error(&send(server.addr, &bad_type).await, 400, "InvalidParameter");
    let unknown = send(server.addr, &Call::new("GetKmsInstance").param("KmsInstanceId", "kst-hzznosuchinstance")).await;
    assert_alibaba_error(&unknown, 403, "Forbidden.DKMSInstanceNotFound");
}

#[tokio::test]
async fn an_instance_refuses_a_key_beyond_its_quota_of_a_thousand() {
    let server = TestServer::start().await;
    let mut instances = server.instances().await;
    let instance = create_instance(&mut instances, "cn-hangzhou", 1000, "").await.kms_instance_id;
    let mut kms = server.kms().await;
    for _ in 0..1000 {
        create_instance_key(&mut kms, "cn-hangzhou", &instance).await;
    }
    let refused = send(server.addr, &Call::new("CreateKey").param("DKMSInstanceId", &instance)).await;
    assert_alibaba_error(&refused, 400, "Rejected.LimitExceeded");
    assert!(refused.body["Message"].as_str().unwrap().contains("1000 keys"), "{:?}", refused.body);
    let quotas = ok(
        &server,
        Call::new("GetKmsInstanceQuotaInfos").param("KmsInstanceId", &instance).param("ResourceType", "key"),
    )
    .await;
    assert_eq!(quotas["KmsInstanceQuotaInfos"][0]["UsedQuantity"], 1000);
}

#[tokio::test]
async fn tags_of_several_keys_or_secrets_change_all_together_and_list_in_pages_of_200() {
    let server = TestServer::start().await;
    let (a, b) = (create_key(&server).await, create_key(&server).await);
    ok(&server, Call::new("CreateAlias").param("AliasName", "alias/tagged-b").param("KeyId", &b)).await;
    // The SDKs flatten lists: ResourceId.1, Tag.1.Key, Tag.1.Value, …
    let tag = numbered(Call::new("TagResources").param("ResourceType", "key"), "ResourceId", &[&a, "alias/tagged-b"])
        .param("Tag.1.Key", "team")
        .param("Tag.1.Value", "payments")
        .param("Tag.2.Key", "env")
        .param("Tag.2.Value", "test");
    let tagged = ok(&server, tag).await;
    let record = record_of(&server, tagged["RequestId"].as_str().unwrap()).await;
    assert_eq!(record.event_name, "TagResources");
    assert!(record.request_parameters.contains("alias/tagged-b"), "{}", record.request_parameters);

    // The reference's own form: a JSON array in ResourceId.
    let both = serde_json::json!([a, b]).to_string();
    let listed =
        ok(&server, Call::new("ListTagResources").param("ResourceType", "key").param("ResourceId", &both)).await;
    let mut expected = vec![
        (a.clone(), "env".to_owned(), "test".to_owned()),
        (a.clone(), "team".to_owned(), "payments".to_owned()),
        (b.clone(), "env".to_owned(), "test".to_owned()),
        (b.clone(), "team".to_owned(), "payments".to_owned()),
    ];
    expected.sort();
    assert_eq!(tag_rows(&listed), expected);
    assert_eq!(listed["NextToken"], "");
    assert!(listed["TagResources"]["TagResource"][0]["ResourceType"] == "key");
    let resource_tags = ok(&server, Call::new("ListResourceTags").param("KeyId", &b)).await;
    assert_eq!(resource_tags["Tags"]["Tag"].as_array().unwrap().len(), 2, "the one-key view agrees");

    // All or nothing: a key that does not exist spoils the batch, and the other key is untouched.
    let spoiled = numbered(Call::new("TagResources").param("ResourceType", "key"), "ResourceId", &[&a, "no-such-key"])
        .param("Tag.1.Key", "spoiled");
    assert_alibaba_error(&send(server.addr, &spoiled).await, 404, "Forbidden.KeyNotFound");
    let after = ok(&server, Call::new("ListTagResources").param("ResourceType", "key").param("ResourceId.1", &a)).await;
    assert!(tag_rows(&after).iter().all(|(_, key, _)| key != "spoiled"), "{after}");

    let untag = numbered(Call::new("UntagResources").param("ResourceType", "key"), "ResourceId", &[&a, &b])
        .param("TagKey.1", "env");
    ok(&server, untag).await;
    let filtered = Call::new("ListTagResources").param("ResourceType", "key").param("Tag.1.Key", "team");
    let rows = tag_rows(&ok(&server, filtered).await);
    assert_eq!(rows.len(), 2, "every key of the region with the tag team: {rows:?}");
    assert!(rows.iter().all(|(_, key, _)| key == "team"));
    let all =
        numbered(Call::new("UntagResources").param("ResourceType", "key"), "ResourceId", &[&a]).param("All", "true");
    ok(&server, all).await;
    let rows = tag_rows(&ok(&server, Call::new("ListTagResources").param("ResourceType", "key")).await);
    assert_eq!(rows, vec![(b.clone(), "team".to_owned(), "payments".to_owned())]);
    let no_keys = numbered(Call::new("UntagResources").param("ResourceType", "key"), "ResourceId", &[&a]);
    assert_alibaba_error(&send(server.addr, &no_keys).await, 400, "MissingParameter");
    let bad_type = Call::new("ListTagResources").param("ResourceType", "certificate");
    assert_alibaba_error(&send(server.addr, &bad_type).await, 400, "InvalidParameter");

    // Secrets, by name.
    create_secret(&server, "tagged/one", &a, "x").await;
    let secret_tag = Call::new("TagResources")
        .param("ResourceType", "secret")
        .param("ResourceId.1", "tagged/one")
        .param("Tag.1.Key", "owner")
        .param("Tag.1.Value", "ops");
    ok(&server, secret_tag).await;
    let described =
        ok(&server, Call::new("DescribeSecret").param("SecretName", "tagged/one").param("FetchTags", "true")).await;
    assert_eq!(described["Tags"]["Tag"][0]["TagKey"], "owner");
    let rows = tag_rows(&ok(&server, Call::new("ListTagResources").param("ResourceType", "secret")).await);
    assert_eq!(rows, vec![("tagged/one".to_owned(), "owner".to_owned(), "ops".to_owned())]);

    // 11 keys of 20 tags: 220 rows, a page of 200 and a page of 20.
    let tags: Vec<(String, String)> = (0..20).map(|n| (format!("Tag.{}.Key", n + 1), format!("k{n:02}"))).collect();
    for _ in 0..11 {
        let key = create_key(&server).await;
        let mut call = Call::new("TagResources").param("ResourceType", "key").param("ResourceId.1", &key);
        for (name, value) in &tags {
            call = call.param(name, value);
        }
        ok(&server, call).await;
    }
    let first = ok(&server, Call::new("ListTagResources").param("ResourceType", "key").param("Tag.1.Key", "k00")).await;
    assert_eq!(tag_rows(&first).len(), 200);
    let token = first["NextToken"].as_str().expect("NextToken").to_owned();
    assert!(!token.is_empty());
    let call =
        Call::new("ListTagResources").param("ResourceType", "key").param("Tag.1.Key", "k00").param("NextToken", &token);
    let second = ok(&server, call).await;
    assert_eq!(tag_rows(&second).len(), 20);
    assert_eq!(second["NextToken"], "");
}

#[tokio::test]
async fn batch_get_secret_value_reads_each_secret_as_get_secret_value_does_and_reports_each_failure() {
    let server = TestServer::start().await;
    let key = create_key(&server).await;
    create_secret(&server, "batch/a", &key, "alpha").await;
    create_secret(&server, "batch/b", &key, "beta").await;
    let wanted = serde_json::json!([
        { "SecretName": "batch/a" },
        { "SecretName": "batch/b", "VersionStage": "ACSCurrent" },
        { "SecretName": "batch/none" },
    ])
    .to_string();
    let answer = ok(&server, Call::new("BatchGetSecretValue").param("SecretsList", &wanted)).await;
    let request_id = answer["RequestId"].as_str().unwrap().to_owned();
    let values = answer["SecretValues"].as_array().expect("SecretValues[]");
    let data: Vec<(&str, &str)> =
        values.iter().map(|v| (v["SecretName"].as_str().unwrap(), v["SecretData"].as_str().unwrap())).collect();
    assert_eq!(data, [("batch/a", "alpha"), ("batch/b", "beta")]);
    assert_eq!(values[0]["VersionStages"]["VersionStage"][0], "ACSCurrent");
    assert_eq!(values[0]["RequestId"], request_id.as_str());
    let errors = answer["Errors"].as_array().expect("Errors[]");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["SecretName"], "batch/none");
    assert_eq!(errors[0]["Code"], "Forbidden.ResourceNotFound");
    assert_eq!(errors[0]["HttpStatus"], 404, "a JSON number");

    // One record of its own, and each value's Decrypt on the caller's behalf, as GetSecretValue leaves.
    let records: Vec<_> = records(&server).await.into_iter().filter(|e| e.request_id == request_id).collect();
    let own: Vec<_> = records.iter().filter(|e| e.invoked_by.is_empty()).collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].event_name, "BatchGetSecretValue");
    assert!(own[0].request_parameters.contains("batch/none"), "{}", own[0].request_parameters);
    assert!(!own[0].request_parameters.contains("alpha") && !own[0].response_elements.contains("alpha"));
    let nested: Vec<_> = records.iter().filter(|e| !e.invoked_by.is_empty()).collect();
    assert_eq!(nested.len(), 2, "{nested:#?}");
    assert!(nested.iter().all(|e| e.event_name == "Decrypt" && e.key_id == key));

    ok(&server, Call::new("DisableKey").param("KeyId", &key)).await;
    let disabled =
        ok(&server, Call::new("BatchGetSecretValue").param("SecretsList", r#"[{"SecretName":"batch/a"}]"#)).await;
    assert_eq!(disabled["Errors"][0]["Code"], "Rejected.Disabled");
    assert_eq!(disabled["SecretValues"].as_array().map(Vec::len), Some(0));
    let malformed = send(server.addr, &Call::new("BatchGetSecretValue").param("SecretsList", "batch/a")).await;
    assert_alibaba_error(&malformed, 400, "InvalidParameter");
    assert!(malformed.body["Message"].as_str().unwrap().contains("SecretsList"));
    let empty = send(server.addr, &Call::new("BatchGetSecretValue")).await;
    assert_alibaba_error(&empty, 400, "MissingParameter");
}

#[tokio::test]
async fn a_secret_policy_grants_and_a_batch_is_authorised_on_every_resource_it_names() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, "secret-reader").await;
    let (id, secret) = (user.access_key_id.clone(), user.secret.expose().to_owned());
    let as_admin = |call: Call| call.signed(ADMIN_KEY_ID, ADMIN_SECRET);
    let as_user = |call: Call| call.signed(&id, &secret);
    let key = ok(&server, as_admin(Call::new("CreateKey"))).await["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    for name in ["shared", "private"] {
        let call = Call::new("CreateSecret")
            .param("SecretName", name)
            .param("SecretData", "value")
            .param("VersionId", "v1")
            .param("EncryptionKeyId", &key);
        ok(&server, as_admin(call)).await;
    }
    let default = ok(&server, as_admin(Call::new("GetSecretPolicy").param("SecretName", "shared"))).await;
    assert!(default["Policy"].as_str().unwrap().contains(":root"), "the default lets the account root in: {default}");

    // The user has no identity policy: only the secret's own policy can let it in.
    let denied = send(server.addr, &as_user(Call::new("GetSecretValue").param("SecretName", "shared"))).await;
    assert_alibaba_error(&denied, 403, "Forbidden.NoPermission");
    let policy = serde_json::json!({
        "Version": "1",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"RAM": ["acs:ram::*:user/secret-reader"]},
            "Action": ["kms:GetSecretValue", "kms:BatchGetSecretValue"],
            "Resource": ["*"],
        }],
    })
    .to_string();
    let set = Call::new("SetSecretPolicy")
        .param("SecretName", "shared")
        .param("PolicyName", "default")
        .param("Policy", &policy);
    ok(&server, as_admin(set)).await;
    let read = ok(&server, as_admin(Call::new("GetSecretPolicy").param("SecretName", "shared"))).await;
    assert_eq!(read["Policy"], policy.as_str());
    let granted = ok(&server, as_user(Call::new("GetSecretValue").param("SecretName", "shared"))).await;
    assert_eq!(granted["SecretData"], "value");
    let other = send(server.addr, &as_user(Call::new("GetSecretValue").param("SecretName", "private"))).await;
    assert_alibaba_error(&other, 403, "Forbidden.NoPermission");

    // A batch needs every secret it names allowed; one that is not refuses the whole call.
    let one =
        ok(&server, as_user(Call::new("BatchGetSecretValue").param("SecretsList", r#"[{"SecretName":"shared"}]"#)))
            .await;
    assert_eq!(one["SecretValues"][0]["SecretData"], "value");
    let both = r#"[{"SecretName":"shared"},{"SecretName":"private"}]"#;
    let refused = send(server.addr, &as_user(Call::new("BatchGetSecretValue").param("SecretsList", both))).await;
    assert_alibaba_error(&refused, 403, "Forbidden.NoPermission");
    let events = audit_events_as(&mut admin).await;
    let refused_records: Vec<_> = events.iter().filter(|e| e.request_id == refused.request_id()).collect();
    assert_eq!(refused_records.len(), 1, "a refused batch leaves no Decrypt records: {refused_records:#?}");

    let bad = Call::new("SetSecretPolicy")
        .param("SecretName", "shared")
        .param("PolicyName", "other")
        .param("Policy", &policy);
    assert_alibaba_error(&send(server.addr, &as_admin(bad)).await, 400, "InvalidParameter");
    let no_principal = Call::new("SetSecretPolicy")
        .param("SecretName", "shared")
        .param("Policy", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#);
    assert_alibaba_error(&send(server.addr, &as_admin(no_principal)).await, 400, "InvalidParameter");

    // Tags of several keys: the user may tag one key, not the other, so the batch is refused whole.
    let other_key =
        ok(&server, as_admin(Call::new("CreateKey"))).await["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let key_arn = |k: &str| format!("acs:kms:cn-hangzhou:*:key/{k}");
    create_policy_as(&mut admin, "tag-one", &identity_policy("Allow", &["kms:TagResources"], &[&key_arn(&key)])).await;
    attach_user_policy_as(&mut admin, "tag-one", "secret-reader").await;
    let one_key =
        numbered(Call::new("TagResources").param("ResourceType", "key"), "ResourceId", &[&key]).param("Tag.1.Key", "t");
    ok(&server, as_user(one_key)).await;
    let two_keys = numbered(Call::new("TagResources").param("ResourceType", "key"), "ResourceId", &[&key, &other_key])
        .param("Tag.1.Key", "u");
    assert_alibaba_error(&send(server.addr, &as_user(two_keys)).await, 403, "Forbidden.NoPermission");
    let listed = ok(&server, as_admin(Call::new("ListTagResources").param("ResourceType", "key"))).await;
    assert_eq!(
        tag_rows(&listed),
        vec![(key.clone(), "t".to_owned(), String::new())],
        "the refused batch changed nothing"
    );
}

#[tokio::test]
async fn an_aaps_permission_policy_grants_its_templates_on_its_instance_and_only_from_its_network_rules() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let as_admin = |call: Call| call.signed(ADMIN_KEY_ID, ADMIN_SECRET);
    let request = pb::CreateKmsInstanceRequest { spec: 1000, ..Default::default() };
    let instance = admin.instances.create_kms_instance(request).await.unwrap().into_inner().kms_instance.unwrap();
    let instance = instance.kms_instance_id;
    let key_id = |body: serde_json::Value| body["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let inside = key_id(ok(&server, as_admin(Call::new("CreateKey").param("DKMSInstanceId", &instance))).await);
    let outside = key_id(ok(&server, as_admin(Call::new("CreateKey"))).await);
    let secret = Call::new("CreateSecret")
        .param("SecretName", "app/db")
        .param("SecretData", "db-password")
        .param("VersionId", "v1")
        .param("EncryptionKeyId", &inside);
    ok(&server, as_admin(secret)).await;

    // A network rule, a permission policy naming it, an AAP with the policy, and its ClientKey.
    let rule = Call::new("CreateNetworkRule")
        .param("Name", "office")
        .param("Type", "Private")
        .param("SourcePrivateIp", r#"["127.0.0.1","10.0.0.0/8"]"#)
        .param("Description", "the office");
    let rule = ok(&server, as_admin(rule)).await;
    assert!(rule["Arn"].as_str().unwrap().ends_with(":network/office"), "{rule}");
    assert_eq!(rule["SourcePrivateIp"], r#"["127.0.0.1","10.0.0.0/8"]"#, "JSON text, as the model reads it");
    let both = r#"["RbacPermission/Template/CryptoServiceKeyUser","RbacPermission/Template/CryptoServiceSecretUser"]"#;
    let policy = Call::new("CreatePolicy")
        .param("Name", "app-crypto")
        .param("KmsInstance", &instance)
        .param("Permissions", both)
        .param("Resources", r#"["key/*","secret/*"]"#)
        .param("AccessControlRules", r#"{"NetworkRules":["office"]}"#);
    let policy = ok(&server, as_admin(policy)).await;
    assert!(policy["Arn"].as_str().unwrap().ends_with(":policy/app-crypto"), "{policy}");
    assert!(policy["Permissions"].is_string(), "CreatePolicy's model reads the lists as text: {policy}");
    let described = ok(&server, as_admin(Call::new("DescribePolicy").param("Name", "app-crypto"))).await;
    assert_eq!(described["Resources"], serde_json::json!(["key/*", "secret/*"]), "DescribePolicy's, as arrays");
    assert_eq!(described["KmsInstance"], instance.as_str());
    assert_eq!(described["AccessControlRules"], r#"{"NetworkRules":["office"]}"#);
    let aap = Call::new("CreateApplicationAccessPoint")
        .param("Name", "orders")
        .param("AuthenticationMethod", "ClientKey")
        .param("Policies", r#"["app-crypto"]"#);
    let aap = ok(&server, as_admin(aap)).await;
    assert_eq!(
        (aap["Policies"].as_str(), aap["AuthenticationMethod"].as_str()),
        (Some(r#"["app-crypto"]"#), Some("ClientKey"))
    );
    // The OpenAPI makes Alibaba's kind: an RSA key pair in a PKCS#12 file under the password, which signs the KMS
    // instance API (tests/dkms_sdk.rs), not the OpenAPI, where its id names no AccessKey.
    let no_password = send(server.addr, &as_admin(Call::new("CreateClientKey").param("AapName", "orders"))).await;
    assert_alibaba_error(&no_password, 400, "MissingParameter");
    let made = Call::new("CreateClientKey").param("AapName", "orders").param("Password", "Passw0rd-for-the-pkcs12");
    let made = ok(&server, as_admin(made)).await;
    let rsa_client_key_id = made["ClientKeyId"].as_str().unwrap().to_owned();
    let pfx = base64::engine::general_purpose::STANDARD.decode(made["PrivateKeyData"].as_str().unwrap()).unwrap();
    assert!(rsa_client_key_id.starts_with("KAAP.") && pfx.starts_with(&[0x30, 0x82]), "a DER PFX: {made}");
    let signed_with_it = Call::new("ListKeys").signed(&rsa_client_key_id, made["PrivateKeyData"].as_str().unwrap());
    assert_alibaba_error(&send(server.addr, &signed_with_it).await, 404, "InvalidAccessKeyId.NotFound");
    // kmsim's own kind (kmsim.v1, no password) signs OpenAPI calls as the AAP.
    let request = pb::CreateClientKeyRequest { aap_name: "orders".into(), ..Default::default() };
    let own = admin.access.create_client_key(request).await.unwrap().into_inner();
    let client_key_id = own.client_key.unwrap().client_key_id;
    let private_key_data = own.client_key_secret;
    assert!(own.private_key_data.is_empty());
    let as_app = |call: Call| call.signed(&client_key_id, &private_key_data);

    // What the templates grant, on the instance's keys and secrets, from the rule's addresses.
    let sealed =
        ok(&server, as_app(Call::new("Encrypt").param("KeyId", &inside).param("Plaintext", &b64(b"order 1")))).await;
    let blob = sealed["CiphertextBlob"].as_str().unwrap().to_owned();
    let opened = ok(&server, as_app(Call::new("Decrypt").param("CiphertextBlob", &blob))).await;
    assert_eq!(opened["Plaintext"], b64(b"order 1").as_str());
    let value = ok(&server, as_app(Call::new("GetSecretValue").param("SecretName", "app/db"))).await;
    assert_eq!(value["SecretData"], "db-password");
    for (what, call) in [
        ("a key outside the instance", Call::new("Encrypt").param("KeyId", &outside).param("Plaintext", &b64(b"x"))),
        ("a call the template does not grant", Call::new("DescribeKey").param("KeyId", &inside)),
        ("a listing", Call::new("ListKeys")),
    ] {
        let refused = send(server.addr, &as_app(call)).await;
        assert_eq!(refused.code(), "Forbidden.NoPermission", "{what}: {:?}", refused.body);
    }

    // A rule changed later changes the policy that names it.
    let away = Call::new("UpdateNetworkRule").param("Name", "office").param("SourcePrivateIp", "10.0.0.0/8");
    ok(&server, as_admin(away)).await;
    let encrypt = || as_app(Call::new("Encrypt").param("KeyId", &inside).param("Plaintext", &b64(b"x")));
    assert_alibaba_error(&send(server.addr, &encrypt()).await, 403, "Forbidden.NoPermission");
    let back =
        Call::new("UpdateNetworkRule").param("Name", "office").param("SourcePrivateIp", "10.0.0.0/8,127.0.0.0/8");
    ok(&server, as_admin(back)).await;
    ok(&server, encrypt()).await;
    let described = ok(&server, as_admin(Call::new("DescribeNetworkRule").param("Name", "office"))).await;
    assert_eq!(described["SourcePrivateIp"], r#"["10.0.0.0/8","127.0.0.0/8"]"#);
    assert_eq!(described["Description"], "the office", "what was not given stays");

    // UpdatePolicy: keys only now.
    let keys_only = Call::new("UpdatePolicy")
        .param("Name", "app-crypto")
        .param("Permissions", r#"["RbacPermission/Template/CryptoServiceKeyUser"]"#);
    ok(&server, as_admin(keys_only)).await;
    let secret_read = send(server.addr, &as_app(Call::new("GetSecretValue").param("SecretName", "app/db"))).await;
    assert_alibaba_error(&secret_read, 403, "Forbidden.NoPermission");
    ok(&server, encrypt()).await;

    // kmsim.v1 sees the policy as what it grants, in RAM's terms, and does not edit it as a document.
    let got = admin.access.get_policy(pb::GetPolicyRequest { policy_name: "app-crypto".into() }).await.unwrap();
    let document = got.into_inner().policy.unwrap().policy_document;
    assert!(
        document.contains("kms:Encrypt") && document.contains(":key/*") && !document.contains("kms:GetSecretValue"),
        "{document}"
    );
    let update = pb::UpdatePolicyRequest {
        policy_name: "app-crypto".into(),
        policy_document: identity_policy("Allow", &["kms:*"], &["*"]),
    };
    let refused = admin.access.update_policy(update).await.unwrap_err();
    assert_eq!(error_code(&refused), "Rejected.UnsupportedOperation");
    // The OpenAPI's policy calls see permission policies only.
    create_policy_as(&mut admin, "ram-style", &identity_policy("Allow", &["kms:*"], &["*"])).await;
    let listed = ok(&server, as_admin(Call::new("ListPolicies"))).await;
    assert_eq!(listed["Policies"]["Policy"], serde_json::json!([{ "Name": "app-crypto" }]));
    assert_alibaba_error(
        &send(server.addr, &as_admin(Call::new("DescribePolicy").param("Name", "ram-style"))).await,
        404,
        "Forbidden.ResourceNotFound",
    );

    let listed = ok(&server, as_admin(Call::new("ListNetworkRules"))).await;
    assert_eq!(listed["NetworkRules"]["NetworkRule"], serde_json::json!([{ "Name": "office", "Type": "Private" }]));
    let listed = ok(&server, as_admin(Call::new("ListApplicationAccessPoints").param("PageSize", "5"))).await;
    assert_eq!(listed["ApplicationAccessPoints"]["ApplicationAccessPoint"][0]["Name"], "orders");
    assert_eq!(listed["TotalCount"], 1);
    let updated =
        Call::new("UpdateApplicationAccessPoint").param("Name", "orders").param("Description", "orders service");
    ok(&server, as_admin(updated)).await;
    let aap = ok(&server, as_admin(Call::new("DescribeApplicationAccessPoint").param("Name", "orders"))).await;
    assert_eq!(
        (aap["Description"].as_str(), aap["Policies"].as_str()),
        (Some("orders service"), Some(r#"["app-crypto"]"#))
    );
    let key = ok(&server, as_admin(Call::new("GetClientKey").param("ClientKeyId", &client_key_id))).await;
    assert_eq!(
        (key["AapName"].as_str(), key["PrivateKeyData"].as_str()),
        (Some("orders"), None),
        "the secret is told once"
    );
    let keys = ok(&server, as_admin(Call::new("ListClientKeys").param("AapName", "orders"))).await;
    let mut listed: Vec<&str> =
        keys["ClientKeys"].as_array().unwrap().iter().map(|k| k["ClientKeyId"].as_str().unwrap()).collect();
    listed.sort_unstable();
    let mut made = vec![client_key_id.as_str(), rsa_client_key_id.as_str()];
    made.sort_unstable();
    assert_eq!(listed, made, "a flat list: {keys}");

    // What is in use stays; then everything goes, in order.
    let in_use = send(server.addr, &as_admin(Call::new("DeleteNetworkRule").param("Name", "office"))).await;
    assert_alibaba_error(&in_use, 409, "Rejected.ResourceInUse");
    let attached = send(server.addr, &as_admin(Call::new("DeletePolicy").param("Name", "app-crypto"))).await;
    assert_alibaba_error(&attached, 409, "Rejected.ResourceInUse");
    for call in [
        Call::new("DeleteClientKey").param("ClientKeyId", &client_key_id),
        Call::new("DeleteClientKey").param("ClientKeyId", &rsa_client_key_id),
        Call::new("DeleteApplicationAccessPoint").param("Name", "orders"),
        Call::new("DeletePolicy").param("Name", "app-crypto"),
        Call::new("DeleteNetworkRule").param("Name", "office"),
    ] {
        ok(&server, as_admin(call)).await;
    }

    // Only the admin manages access, and no record holds the ClientKey's secret.
    let user = create_access_key_as(&mut admin, "not-admin").await;
    let as_user = Call::new("CreateNetworkRule")
        .param("Name", "n")
        .param("Type", "Private")
        .signed(&user.access_key_id, user.secret.expose());
    assert_alibaba_error(&send(server.addr, &as_user).await, 403, "Forbidden.NoPermission");
    let events = audit_events_as(&mut admin).await;
    let created =
        events.iter().find(|e| e.event_name == "CreatePolicy" && e.action == "kms.create_policy").expect("its record");
    assert_eq!(created.service_name, "KmsimAccess");
    assert!(created.request_parameters.contains("CryptoServiceKeyUser"), "{}", created.request_parameters);
    let app_call = events
        .iter()
        .find(|e| e.event_name == "Decrypt" && e.access_key_id == client_key_id)
        .expect("the AAP's Decrypt");
    assert_eq!(app_call.user_identity.as_ref().unwrap().r#type, "assumed-role");
    for event in &events {
        let text = format!("{} {} {}", event.request_parameters, event.response_elements, event.error_message);
        assert!(!text.contains(&private_key_data), "{} holds the ClientKey's secret", event.event_name);
    }
}
