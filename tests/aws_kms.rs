//! The AWS KMS JSON 1.1 front end, from the wire: requests built from the
//! protocol by `common::aws` against a real server, on the same port as gRPC
//! and Alibaba's API.

mod common;

use base64::Engine as _;
use common::aws::{AwsCall, send_aws};
use common::openapi::Reply;
use common::*;
use kmsim::proto as pb;
use serde_json::json;
use sha2::Digest as _;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn ok(server: &TestServer, call: AwsCall) -> serde_json::Value {
    let reply = send_aws(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{} answered {:?}", call.operation, reply.body);
    assert!(reply.headers.contains_key("x-amzn-requestid"), "every answer carries x-amzn-RequestId");
    reply.body
}

#[track_caller]
fn assert_exception(reply: &Reply, name: &str) {
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(reply.body["__type"], name, "{:?}", reply.body);
    assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{:?}", reply.body);
    assert!(reply.headers.contains_key("x-amzn-requestid"));
}

async fn record_of(server: &TestServer, reply: &Reply) -> pb::AuditEvent {
    let request_id = &reply.headers["x-amzn-requestid"];
    let found: Vec<_> = all_audit_events(server).await.into_iter().filter(|e| &e.request_id == request_id).collect();
    assert_eq!(found.len(), 1, "exactly one record for {request_id}");
    found.into_iter().next().unwrap()
}

#[tokio::test]
async fn the_aws_api_shares_the_port_and_the_keys_and_names_them_by_aws_arns() {
    let server = TestServer::start().await;
    let created = ok(&server, AwsCall::new("CreateKey", json!({ "Description": "from aws" }))).await;
    let metadata = &created["KeyMetadata"];
    let key_id = metadata["KeyId"].as_str().unwrap().to_owned();
    // Unsigned, the call names no region: it is for the server's own.
    let arn = format!("arn:aws:kms:{}:111122223333:key/{key_id}", kmsim::server::DEFAULT_REGION);
    assert_eq!(metadata["Arn"], arn.as_str());
    assert_eq!(metadata["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(metadata["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(metadata["Enabled"], true);
    assert!(metadata["CreationDate"].is_number(), "times are epoch seconds");

    let sealed = ok(
        &server,
        AwsCall::new("Encrypt", json!({ "KeyId": arn, "Plaintext": b64(b"hi"), "EncryptionContext": { "a": "1" } })),
    )
    .await;
    assert_eq!(sealed["KeyId"], arn.as_str());
    let opened = ok(
        &server,
        AwsCall::new(
            "Decrypt",
            json!({ "CiphertextBlob": sealed["CiphertextBlob"], "EncryptionContext": { "a": "1" } }),
        ),
    )
    .await;
    assert_eq!(opened["Plaintext"], b64(b"hi").as_str());

    // One key, whichever API looks at it.
    let described = server.kms().await.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap();
    assert_eq!(described.into_inner().key_metadata.unwrap().description, "from aws");
    let listed = ok(&server, AwsCall::new("ListKeys", json!({ "Limit": 1 }))).await;
    assert_eq!(listed["Keys"][0]["KeyArn"], arn.as_str());
    assert_eq!(listed["Truncated"], false);
}

#[tokio::test]
async fn refusals_are_awss_exceptions_and_each_is_recorded() {
    let server = TestServer::start().await;
    let created = ok(&server, AwsCall::new("CreateKey", json!({}))).await;
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&server, AwsCall::new("DisableKey", json!({ "KeyId": key_id }))).await;

    let disabled =
        send_aws(server.addr, &AwsCall::new("Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"x") }))).await;
    assert_exception(&disabled, "DisabledException");
    let record = record_of(&server, &disabled).await;
    assert_eq!((record.event_name.as_str(), record.error_code.as_str()), ("Encrypt", "Rejected.Disabled"));
    assert_eq!(record.user_agent, "kmsim-aws-tests/1.0");

    let missing = send_aws(server.addr, &AwsCall::new("DescribeKey", json!({ "KeyId": "alias/none" }))).await;
    assert_exception(&missing, "NotFoundException");
    let foreign = "arn:aws:kms:us-east-1:999999999999:key/".to_owned() + &key_id;
    assert_exception(
        &send_aws(server.addr, &AwsCall::new("DescribeKey", json!({ "KeyId": foreign }))).await,
        "NotFoundException",
    );

    let garbage =
        send_aws(server.addr, &AwsCall::new("Decrypt", json!({ "CiphertextBlob": b64(b"not a ciphertext") }))).await;
    assert_exception(&garbage, "InvalidCiphertextException");
    assert_eq!(record_of(&server, &garbage).await.event_name, "Decrypt");

    let custom_store =
        send_aws(server.addr, &AwsCall::new("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": "cks-1" }))).await;
    assert_exception(&custom_store, "UnsupportedOperationException");
    assert!(custom_store.body["message"].as_str().unwrap().contains("ConnectCustomKeyStore"));
    let bogus = send_aws(server.addr, &AwsCall::new("MakeCoffee", json!({}))).await;
    assert_exception(&bogus, "UnknownOperationException");
    assert!(record_of(&server, &bogus).await.request_parameters.contains("MakeCoffee"));

    let bad_spec = send_aws(server.addr, &AwsCall::new("CreateKey", json!({ "KeySpec": "ML_DSA_44" }))).await;
    assert_exception(&bad_spec, "ValidationException");
    assert!(bad_spec.body["message"].as_str().unwrap().contains("KeySpec"));
}

#[tokio::test]
async fn sigv4_is_verified_against_kmsims_access_keys_and_the_scope_names_the_region() {
    let server = TestServer::start_config(auth_required_config()).await;
    let created = ok(
        &server,
        AwsCall { region: "eu-west-1".into(), ..AwsCall::new("CreateKey", json!({})) }
            .signed(ADMIN_KEY_ID, ADMIN_SECRET),
    )
    .await;
    assert!(created["KeyMetadata"]["Arn"].as_str().unwrap().starts_with("arn:aws:kms:eu-west-1:"));

    let wrong =
        send_aws(server.addr, &AwsCall::new("ListKeys", json!({})).signed(ADMIN_KEY_ID, "not-the-secret")).await;
    assert_exception(&wrong, "InvalidSignatureException");
    let unknown = send_aws(server.addr, &AwsCall::new("ListKeys", json!({})).signed("AKIDNOBODY000001", "x")).await;
    assert_exception(&unknown, "UnrecognizedClientException");
    let mut stale = AwsCall::new("ListKeys", json!({})).signed(ADMIN_KEY_ID, ADMIN_SECRET);
    stale.date = Some(time::OffsetDateTime::now_utc() - time::Duration::minutes(20));
    let stale = send_aws(server.addr, &stale).await;
    assert_exception(&stale, "InvalidSignatureException");
    let unsigned = send_aws(server.addr, &AwsCall::new("ListKeys", json!({}))).await;
    assert_exception(&unsigned, "IncompleteSignatureException");

    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let events = admin
        .audit
        .list_audit_events(pb::ListAuditEventsRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    for (reply, access_key_id) in [(&wrong, ADMIN_KEY_ID), (&unknown, "AKIDNOBODY000001"), (&stale, ADMIN_KEY_ID)] {
        let request_id = &reply.headers["x-amzn-requestid"];
        let record = events.iter().find(|e| &e.request_id == request_id).expect("the refusal's record");
        assert_eq!(record.access_key_id, access_key_id);
        assert_eq!(record.outcome, "Failure");
    }
}

#[tokio::test]
async fn where_aws_and_alibaba_disagree_the_aws_api_behaves_as_aws() {
    let server = TestServer::start().await;
    // A cancelled deletion leaves the key Disabled, as AWS does (Alibaba's API restores Enabled).
    let key =
        ok(&server, AwsCall::new("CreateKey", json!({}))).await["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&server, AwsCall::new("ScheduleKeyDeletion", json!({ "KeyId": key, "PendingWindowInDays": 7 }))).await;
    ok(&server, AwsCall::new("CancelKeyDeletion", json!({ "KeyId": key }))).await;
    let described = ok(&server, AwsCall::new("DescribeKey", json!({ "KeyId": key }))).await;
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");

    // A signature or MAC that does not verify is an exception, never a false.
    let signing =
        ok(&server, AwsCall::new("CreateKey", json!({ "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY" }))).await;
    let signing = signing["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let message = json!({ "KeyId": signing, "Message": b64(b"msg"), "SigningAlgorithm": "ECDSA_SHA_256" });
    let signature = ok(&server, AwsCall::new("Sign", message.clone())).await["Signature"].clone();
    let mut verify = message.clone();
    verify["Signature"] = signature;
    assert_eq!(ok(&server, AwsCall::new("Verify", verify.clone())).await["SignatureValid"], true);
    verify["Message"] = json!(b64(b"another message"));
    let refused = send_aws(server.addr, &AwsCall::new("Verify", verify)).await;
    assert_exception(&refused, "KMSInvalidSignatureException");
    let record = record_of(&server, &refused).await;
    assert_eq!(
        (record.event_name.as_str(), record.outcome.as_str()),
        ("Verify", "Failure"),
        "named as the caller named it"
    );

    let mac_key =
        ok(&server, AwsCall::new("CreateKey", json!({ "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC" })))
            .await;
    let mac_key = mac_key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let mac =
        json!({ "KeyId": mac_key, "Message": b64(b"msg"), "MacAlgorithm": "HMAC_SHA_256", "Mac": b64(&[0u8; 32]) });
    assert_exception(&send_aws(server.addr, &AwsCall::new("VerifyMac", mac)).await, "KMSInvalidMacException");
}

#[tokio::test]
async fn a_decrypt_naming_another_key_is_refused_as_aws_refuses_it() {
    let server = TestServer::start().await;
    let key = |body: serde_json::Value| body["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let sealing = key(ok(&server, AwsCall::new("CreateKey", json!({}))).await);
    let other = key(ok(&server, AwsCall::new("CreateKey", json!({}))).await);
    let sealed = ok(&server, AwsCall::new("Encrypt", json!({ "KeyId": sealing, "Plaintext": b64(b"x") }))).await;
    let blob = sealed["CiphertextBlob"].clone();

    let right = ok(&server, AwsCall::new("Decrypt", json!({ "CiphertextBlob": blob, "KeyId": sealing }))).await;
    assert_eq!(right["Plaintext"], b64(b"x").as_str());
    let wrong =
        send_aws(server.addr, &AwsCall::new("Decrypt", json!({ "CiphertextBlob": blob, "KeyId": other }))).await;
    assert_exception(&wrong, "IncorrectKeyException");
    let record = record_of(&server, &wrong).await;
    assert_eq!(record.event_name, "Decrypt");
    assert!(sealing.ends_with(&record.key_id), "the record names the key the ciphertext was sealed under");
}

/// The CloudTrail renderings of every record, newest first, read by the admin.
async fn cloudtrail_renderings(server: &TestServer) -> Vec<(pb::AuditEvent, serde_json::Value)> {
    let mut admin = SignedClients::of(server, &admin_credentials()).await;
    let request = pb::QueryAuditEventsRequest { format: "cloudtrail".into(), page_size: 1000, ..Default::default() };
    let page = admin.audit.query_audit_events(request).await.unwrap().into_inner();
    page.events.into_iter().map(|e| (e.event.unwrap(), serde_json::from_str(&e.json).unwrap())).collect()
}

#[tokio::test]
async fn an_aws_calls_cloudtrail_rendering_names_the_aws_account_its_key_arn_and_the_iam_user() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let user = create_access_key_as(&mut admin, "alice").await;
    create_policy_as(&mut admin, "kms-all", &identity_policy("Allow", &["kms:*"], &["*"])).await;
    attach_user_policy_as(&mut admin, "kms-all", "alice").await;
    let (id, secret) = (user.access_key_id.as_str(), user.secret.expose());

    let created = ok(&server, AwsCall::new("CreateKey", json!({})).signed(id, secret)).await;
    let arn = created["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let encrypt =
        AwsCall::new("Encrypt", json!({ "KeyId": arn, "Plaintext": b64(b"x"), "EncryptionContext": { "app": "a" } }));
    let encrypted = send_aws(server.addr, &encrypt.signed(id, secret)).await;
    // The same kind of call through kmsim's own API keeps its Alibaba rendering.
    let grpc_key = admin.kms.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner();
    let grpc_key_id = grpc_key.key_metadata.unwrap().key_id;

    let renderings = cloudtrail_renderings(&server).await;
    let request_id = &encrypted.headers["x-amzn-requestid"];
    let (_, trail) = renderings.iter().find(|(e, _)| &e.request_id == request_id).expect("the Encrypt's record");
    assert_eq!(trail["eventSource"], "kms.amazonaws.com");
    assert_eq!(trail["awsRegion"], "us-east-1");
    assert_eq!(trail["resources"], json!([{ "accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": arn }]));
    assert_eq!(trail["recipientAccountId"], "111122223333");
    let identity = &trail["userIdentity"];
    assert_eq!(identity["type"], "IAMUser");
    assert_eq!(identity["arn"], "arn:aws:iam::111122223333:user/alice");
    assert_eq!(identity["accountId"], "111122223333");
    assert_eq!((identity["accessKeyId"].as_str(), identity["userName"].as_str()), (Some(id), Some("alice")));
    assert_eq!(trail["requestParameters"]["encryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert_eq!(trail["requestParameters"]["encryptionContext"], json!({ "app": "a" }));
    assert_eq!(trail["responseElements"], serde_json::Value::Null);
    assert!(!trail.to_string().contains("acs:kms:"), "no Alibaba ARN: {trail}");
    assert!(!trail.to_string().contains(&b64(b"x")), "no plaintext: {trail}");

    let (_, created) = renderings
        .iter()
        .find(|(e, t)| e.event_name == "CreateKey" && t["userIdentity"]["userName"] == "alice")
        .unwrap();
    assert_eq!(created["requestParameters"], json!({}), "nothing asked for but the defaults");
    assert_eq!(created["responseElements"]["keyId"], arn.as_str());
    assert_eq!(created["additionalEventData"]["keySpec"], "SYMMETRIC_DEFAULT");

    let (_, by_grpc) = renderings.iter().find(|(e, _)| e.event_name == "CreateKey" && e.key_id == grpc_key_id).unwrap();
    assert!(by_grpc["resources"][0]["ARN"].as_str().unwrap().starts_with("acs:kms:"), "{by_grpc}");
    assert_ne!(by_grpc["recipientAccountId"], "111122223333");
}

#[tokio::test]
async fn lookup_events_answers_cloudtrails_exceptions_and_refuses_its_other_operations_each_audited() {
    let server = TestServer::start().await;
    let lookup = |body: serde_json::Value| AwsCall::cloudtrail("LookupEvents", body);
    let by = |key: &str, value: &str| json!([{ "AttributeKey": key, "AttributeValue": value }]);
    let two = json!([{ "AttributeKey": "EventName", "AttributeValue": "Decrypt" },
                     { "AttributeKey": "Username", "AttributeValue": "root" }]);
    for (body, exception) in [
        (json!({ "LookupAttributes": two }), "InvalidLookupAttributesException"),
        (json!({ "LookupAttributes": by("Colour", "red") }), "InvalidLookupAttributesException"),
        (json!({ "LookupAttributes": by("ReadOnly", "maybe") }), "InvalidLookupAttributesException"),
        (json!({ "LookupAttributes": "EventName=Decrypt" }), "InvalidLookupAttributesException"),
        (json!({ "StartTime": 1_800_000_000, "EndTime": 1_700_000_000 }), "InvalidTimeRangeException"),
        (json!({ "StartTime": "yesterday" }), "InvalidTimeRangeException"),
        (json!({ "MaxResults": 51 }), "InvalidMaxResultsException"),
        (json!({ "MaxResults": 0 }), "InvalidMaxResultsException"),
        (json!({ "NextToken": "7-0000000000000000" }), "InvalidNextTokenException"),
        (json!({ "EventCategory": "data" }), "InvalidEventCategoryException"),
    ] {
        let reply = send_aws(server.addr, &lookup(body.clone())).await;
        assert_exception(&reply, exception);
        let record = record_of(&server, &reply).await;
        assert_eq!((record.event_name.as_str(), record.outcome.as_str()), ("LookupEvents", "Failure"), "{body}");
    }
    let other = send_aws(server.addr, &AwsCall::cloudtrail("DescribeTrails", json!({}))).await;
    assert_exception(&other, "UnsupportedOperationException");
    assert!(other.body["message"].as_str().unwrap().contains("DescribeTrails"));
    assert_exception(
        &send_aws(server.addr, &AwsCall::cloudtrail("BrewTea", json!({}))).await,
        "UnknownOperationException",
    );

    // A page token reads on only in the lookup that gave it.
    for _ in 0..3 {
        ok(&server, AwsCall::new("CreateKey", json!({}))).await;
    }
    let first = ok(&server, lookup(json!({ "LookupAttributes": by("EventName", "CreateKey"), "MaxResults": 2 }))).await;
    assert_eq!(first["Events"].as_array().unwrap().len(), 2);
    let token = first["NextToken"].as_str().expect("more follow").to_owned();
    let rest =
        ok(&server, lookup(json!({ "LookupAttributes": by("EventName", "CreateKey"), "NextToken": token }))).await;
    assert_eq!(rest["Events"].as_array().unwrap().len(), 1);
    assert!(rest.get("NextToken").is_none(), "{rest}");
    let elsewhere = lookup(json!({ "LookupAttributes": by("EventName", "Encrypt"), "NextToken": token }));
    assert_exception(&send_aws(server.addr, &elsewhere).await, "InvalidNextTokenException");
    // The lookups themselves are events CloudTrail shows.
    let lookups =
        ok(&server, lookup(json!({ "LookupAttributes": by("EventSource", "cloudtrail.amazonaws.com") }))).await;
    let names: Vec<&str> =
        lookups["Events"].as_array().unwrap().iter().map(|e| e["EventName"].as_str().unwrap()).collect();
    assert!(names.len() >= 12 && names.iter().all(|n| *n == "LookupEvents"), "{names:?}");
}

#[tokio::test]
async fn cloudtrail_takes_a_signature_scoped_to_cloudtrail_only() {
    let server = TestServer::start_config(auth_required_config()).await;
    let good = AwsCall::cloudtrail("LookupEvents", json!({})).signed(ADMIN_KEY_ID, ADMIN_SECRET);
    ok(&server, good).await;
    let kms_scoped = AwsCall { scoped_to: Some("kms"), ..AwsCall::cloudtrail("LookupEvents", json!({})) };
    let reply = send_aws(server.addr, &kms_scoped.signed(ADMIN_KEY_ID, ADMIN_SECRET)).await;
    assert_exception(&reply, "InvalidSignatureException");
    assert!(reply.body["message"].as_str().unwrap().contains("'cloudtrail'"), "{:?}", reply.body);
}

#[tokio::test]
async fn get_key_last_usage_is_the_keys_latest_successful_cryptographic_call_in_the_trail() {
    let server = TestServer::start().await;
    let created = ok(&server, AwsCall::new("CreateKey", json!({}))).await;
    let arn = created["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let unused = ok(&server, AwsCall::new("GetKeyLastUsage", json!({ "KeyId": arn }))).await;
    assert_eq!(unused["KeyId"], arn.as_str());
    assert!(unused.get("KeyLastUsage").is_none(), "{unused}");
    assert_eq!(unused["KeyCreationDate"], created["KeyMetadata"]["CreationDate"]);
    assert!(unused["TrackingStartDate"].as_f64().unwrap() <= unused["KeyCreationDate"].as_f64().unwrap());

    let encrypted =
        send_aws(server.addr, &AwsCall::new("Encrypt", json!({ "KeyId": arn, "Plaintext": b64(b"x") }))).await;
    ok(&server, AwsCall::new("DisableKey", json!({ "KeyId": arn }))).await;
    let refused =
        send_aws(server.addr, &AwsCall::new("Encrypt", json!({ "KeyId": arn, "Plaintext": b64(b"y") }))).await;
    assert_exception(&refused, "DisabledException");
    let used = ok(&server, AwsCall::new("GetKeyLastUsage", json!({ "KeyId": arn }))).await;
    let last = &used["KeyLastUsage"];
    assert_eq!(last["Operation"], "Encrypt", "the refused Encrypt and the DisableKey are no use: {used}");
    let record = record_of(&server, &encrypted).await;
    assert_eq!(last["CloudTrailEventId"], record.event_id.as_str());
    assert_eq!(last["KmsRequestId"], encrypted.headers["x-amzn-requestid"].as_str());
    assert!(last["Timestamp"].is_number());

    // A use through kmsim's own API counts, named as AWS names it.
    let signing =
        ok(&server, AwsCall::new("CreateKey", json!({ "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY" }))).await;
    let signing = signing["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let digest = sha2::Sha256::digest(b"msg").to_vec();
    let request = pb::AsymmetricSignRequest {
        key_id: signing.clone(),
        algorithm: "ECDSA_SHA_256".into(),
        digest,
        ..Default::default()
    };
    server.kms().await.asymmetric_sign(request).await.unwrap();
    let used = ok(&server, AwsCall::new("GetKeyLastUsage", json!({ "KeyId": signing }))).await;
    assert_eq!(used["KeyLastUsage"]["Operation"], "Sign");

    let missing = send_aws(server.addr, &AwsCall::new("GetKeyLastUsage", json!({ "KeyId": "alias/none" }))).await;
    assert_exception(&missing, "NotFoundException");
    assert_eq!(record_of(&server, &missing).await.event_name, "GetKeyLastUsage");
}

#[tokio::test]
async fn the_simulation_clock_deletes_a_key_scheduled_through_aws_and_rotates_one_rotated_through_aws() {
    let server = TestServer::start().await;
    let doomed =
        ok(&server, AwsCall::new("CreateKey", json!({}))).await["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let scheduled =
        ok(&server, AwsCall::new("ScheduleKeyDeletion", json!({ "KeyId": doomed, "PendingWindowInDays": 30 }))).await;
    assert_eq!(scheduled["PendingWindowInDays"], 30);
    let rotating =
        ok(&server, AwsCall::new("CreateKey", json!({}))).await["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&server, AwsCall::new("EnableKeyRotation", json!({ "KeyId": rotating, "RotationPeriodInDays": 90 }))).await;

    server.advance_days(29).await;
    let still = ok(&server, AwsCall::new("DescribeKey", json!({ "KeyId": doomed }))).await;
    assert_eq!(still["KeyMetadata"]["KeyState"], "PendingDeletion", "a day before its date the key waits");

    server.advance_days(2).await;
    let gone = send_aws(server.addr, &AwsCall::new("DescribeKey", json!({ "KeyId": doomed }))).await;
    assert_exception(&gone, "NotFoundException");
    let status = server.kms().await.describe_key(pb::DescribeKeyRequest { key_id: doomed }).await.unwrap_err();
    assert_eq!(common::error_code(&status), "Forbidden.KeyNotFound", "gone for every API");

    server.advance_days(60).await;
    let rotations = ok(&server, AwsCall::new("ListKeyRotations", json!({ "KeyId": rotating }))).await;
    let entries = rotations["Rotations"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "one scheduled rotation after 91 days: {rotations}");
    assert_eq!(entries[0]["RotationType"], "AUTOMATIC");
    server.stop().await;
}

fn in_region(region: &str, operation: &str, body: serde_json::Value) -> AwsCall {
    // With auth off any signature is taken as given; its scope names the call's region.
    AwsCall { region: region.into(), ..AwsCall::new(operation, body) }.signed("AKIDMULTIREGION01", "any")
}

#[tokio::test]
async fn a_multi_region_key_is_replicated_and_its_copies_share_material_but_not_state() {
    let server = TestServer::start().await;
    let (east, west) = ("us-east-1", "eu-west-1");
    let created = ok(&server, in_region(east, "CreateKey", json!({ "MultiRegion": true }))).await;
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    assert!(key_id.starts_with("mrk-") && key_id.len() == 36, "{key_id}");
    let east_arn = format!("arn:aws:kms:{east}:111122223333:key/{key_id}");
    let west_arn = format!("arn:aws:kms:{west}:111122223333:key/{key_id}");
    assert_eq!(created["KeyMetadata"]["MultiRegion"], true);
    assert_eq!(
        created["KeyMetadata"]["MultiRegionConfiguration"],
        json!({ "MultiRegionKeyType": "PRIMARY", "PrimaryKey": { "Arn": east_arn, "Region": east }, "ReplicaKeys": [] })
    );

    let call = in_region(
        east,
        "ReplicateKey",
        json!({ "KeyId": east_arn, "ReplicaRegion": west, "Description": "west copy",
                "Tags": [{ "TagKey": "team", "TagValue": "payments" }] }),
    );
    let reply = send_aws(server.addr, &call).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let replica = &reply.body["ReplicaKeyMetadata"];
    assert_eq!(replica["Arn"], west_arn.as_str());
    assert_eq!(replica["KeyId"], key_id.as_str());
    assert_eq!(replica["Description"], "west copy");
    assert_eq!(replica["KeyState"], "Enabled");
    let set = json!({
        "PrimaryKey": { "Arn": east_arn, "Region": east },
        "ReplicaKeys": [{ "Arn": west_arn, "Region": west }],
    });
    assert_eq!(replica["MultiRegionConfiguration"]["MultiRegionKeyType"], "REPLICA");
    assert_eq!(replica["MultiRegionConfiguration"]["ReplicaKeys"], set["ReplicaKeys"]);
    assert_eq!(reply.body["ReplicaTags"], json!([{ "TagKey": "team", "TagValue": "payments" }]));
    assert!(reply.body["ReplicaPolicy"].as_str().is_some_and(|p| p.contains("2012-10-17")));
    let record = record_of(&server, &reply).await;
    assert_eq!(
        (record.event_name.as_str(), record.action.as_str()),
        ("ReplicateKey", "kms.replicate_multi_region_key")
    );
    assert_eq!((record.region.as_str(), record.key_id.as_str()), (east, key_id.as_str()), "named on the primary");
    assert!(record.request_parameters.contains(west), "{}", record.request_parameters);

    for (region, kind) in [(east, "PRIMARY"), (west, "REPLICA")] {
        let described = ok(&server, in_region(region, "DescribeKey", json!({ "KeyId": key_id }))).await;
        let configuration = &described["KeyMetadata"]["MultiRegionConfiguration"];
        assert_eq!(configuration["MultiRegionKeyType"], kind, "{region}");
        assert_eq!(configuration["PrimaryKey"], set["PrimaryKey"], "{region}");
        assert_eq!(configuration["ReplicaKeys"], set["ReplicaKeys"], "{region}");
    }

    // Sealed in one region, opened in the other, both ways.
    let sealed = ok(&server, in_region(east, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"mrk") }))).await;
    let opened = ok(&server, in_region(west, "Decrypt", json!({ "CiphertextBlob": sealed["CiphertextBlob"] }))).await;
    assert_eq!(
        (opened["Plaintext"].as_str(), opened["KeyId"].as_str()),
        (Some(b64(b"mrk").as_str()), Some(west_arn.as_str()))
    );
    let sealed = ok(&server, in_region(west, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"back") }))).await;
    let opened = ok(&server, in_region(east, "Decrypt", json!({ "CiphertextBlob": sealed["CiphertextBlob"] }))).await;
    assert_eq!(opened["Plaintext"], b64(b"back"));

    // Each copy's state is its own.
    ok(&server, in_region(west, "DisableKey", json!({ "KeyId": key_id }))).await;
    let refused =
        send_aws(server.addr, &in_region(west, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"x") }))).await;
    assert_exception(&refused, "DisabledException");
    ok(&server, in_region(east, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"x") }))).await;
    ok(&server, in_region(west, "EnableKey", json!({ "KeyId": key_id }))).await;

    let again =
        send_aws(server.addr, &in_region(east, "ReplicateKey", json!({ "KeyId": key_id, "ReplicaRegion": west })))
            .await;
    assert_exception(&again, "AlreadyExistsException");
    let own =
        send_aws(server.addr, &in_region(east, "ReplicateKey", json!({ "KeyId": key_id, "ReplicaRegion": east })))
            .await;
    assert_exception(&own, "ValidationException");
    let single = ok(&server, in_region(east, "CreateKey", json!({}))).await;
    assert_eq!(single["KeyMetadata"]["MultiRegion"], false);
    assert!(single["KeyMetadata"].get("MultiRegionConfiguration").is_none());
    let call =
        in_region(east, "ReplicateKey", json!({ "KeyId": single["KeyMetadata"]["KeyId"], "ReplicaRegion": west }));
    assert_exception(&send_aws(server.addr, &call).await, "UnsupportedOperationException");
    let external =
        send_aws(server.addr, &in_region(east, "CreateKey", json!({ "MultiRegion": true, "Origin": "EXTERNAL" })))
            .await;
    assert_exception(&external, "UnsupportedOperationException");
    assert!(external.body["message"].as_str().unwrap().contains("EXTERNAL"));
    let bad = send_aws(server.addr, &in_region(east, "CreateKey", json!({ "MultiRegion": "yes" }))).await;
    assert_exception(&bad, "ValidationException");

    // The replica becomes the primary; the old primary a replica.
    let moved = send_aws(
        server.addr,
        &in_region(east, "UpdatePrimaryRegion", json!({ "KeyId": key_id, "PrimaryRegion": west })),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let record = record_of(&server, &moved).await;
    assert_eq!((record.event_name.as_str(), record.region.as_str()), ("UpdatePrimaryRegion", east));
    for (region, kind) in [(east, "REPLICA"), (west, "PRIMARY")] {
        let described = ok(&server, in_region(region, "DescribeKey", json!({ "KeyId": key_id }))).await;
        let configuration = &described["KeyMetadata"]["MultiRegionConfiguration"];
        assert_eq!(configuration["MultiRegionKeyType"], kind, "{region}");
        assert_eq!(configuration["PrimaryKey"], json!({ "Arn": west_arn, "Region": west }));
        assert_eq!(configuration["ReplicaKeys"], json!([{ "Arn": east_arn, "Region": east }]));
    }
    let stale = send_aws(
        server.addr,
        &in_region(east, "UpdatePrimaryRegion", json!({ "KeyId": key_id, "PrimaryRegion": west })),
    )
    .await;
    assert_exception(&stale, "UnsupportedOperationException");
    let nowhere = send_aws(
        server.addr,
        &in_region(west, "UpdatePrimaryRegion", json!({ "KeyId": key_id, "PrimaryRegion": "ap-south-1" })),
    )
    .await;
    assert_exception(&nowhere, "NotFoundException");
}

#[tokio::test]
async fn a_multi_region_primarys_rotations_reach_its_replicas_and_a_replica_cannot_rotate() {
    let server = TestServer::start().await;
    let (east, west) = ("us-east-1", "eu-west-1");
    let created = ok(&server, in_region(east, "CreateKey", json!({ "MultiRegion": true }))).await;
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&server, in_region(east, "ReplicateKey", json!({ "KeyId": key_id, "ReplicaRegion": west }))).await;

    // Scheduled: the primary rotates after 90 days; what it seals after that opens in the other region.
    ok(&server, in_region(east, "EnableKeyRotation", json!({ "KeyId": key_id, "RotationPeriodInDays": 90 }))).await;
    server.advance_days(91).await;
    let rotations = ok(&server, in_region(east, "ListKeyRotations", json!({ "KeyId": key_id }))).await;
    assert_eq!(rotations["Rotations"].as_array().map(Vec::len), Some(1), "{rotations}");
    let sealed =
        ok(&server, in_region(east, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"rotated") }))).await;
    let opened = ok(&server, in_region(west, "Decrypt", json!({ "CiphertextBlob": sealed["CiphertextBlob"] }))).await;
    assert_eq!(opened["Plaintext"], b64(b"rotated"));

    // On demand, likewise; and a replica is rotated only through its primary.
    ok(&server, in_region(east, "RotateKeyOnDemand", json!({ "KeyId": key_id }))).await;
    let sealed = ok(&server, in_region(west, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"again") }))).await;
    let opened = ok(&server, in_region(east, "Decrypt", json!({ "CiphertextBlob": sealed["CiphertextBlob"] }))).await;
    assert_eq!(opened["Plaintext"], b64(b"again"));
    for operation in ["RotateKeyOnDemand", "EnableKeyRotation", "DisableKeyRotation"] {
        let refused = send_aws(server.addr, &in_region(west, operation, json!({ "KeyId": key_id }))).await;
        assert_exception(&refused, "UnsupportedOperationException");
    }
    // A primary with a replica is not deleted from under it; the replica may go.
    let refused = send_aws(
        server.addr,
        &in_region(east, "ScheduleKeyDeletion", json!({ "KeyId": key_id, "PendingWindowInDays": 7 })),
    )
    .await;
    assert_exception(&refused, "KMSInvalidStateException");
    ok(&server, in_region(west, "ScheduleKeyDeletion", json!({ "KeyId": key_id, "PendingWindowInDays": 7 }))).await;
    server.advance_days(8).await;
    let described = ok(&server, in_region(east, "DescribeKey", json!({ "KeyId": key_id }))).await;
    assert_eq!(described["KeyMetadata"]["MultiRegionConfiguration"]["ReplicaKeys"], json!([]), "the replica is gone");
    ok(&server, in_region(east, "ScheduleKeyDeletion", json!({ "KeyId": key_id, "PendingWindowInDays": 7 }))).await;
}

#[tokio::test]
async fn a_multi_region_set_and_its_shared_material_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (east, west) = ("us-east-1", "eu-west-1");
    let server = TestServer::start_in(dir.path()).await;
    let created = ok(&server, in_region(east, "CreateKey", json!({ "MultiRegion": true }))).await;
    let key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&server, in_region(east, "ReplicateKey", json!({ "KeyId": key_id, "ReplicaRegion": west }))).await;
    ok(&server, in_region(east, "RotateKeyOnDemand", json!({ "KeyId": key_id }))).await;
    ok(&server, in_region(east, "UpdatePrimaryRegion", json!({ "KeyId": key_id, "PrimaryRegion": west }))).await;
    let sealed = ok(&server, in_region(west, "Encrypt", json!({ "KeyId": key_id, "Plaintext": b64(b"kept") }))).await;
    server.stop().await;

    let server = TestServer::start_in(dir.path()).await;
    let opened = ok(&server, in_region(east, "Decrypt", json!({ "CiphertextBlob": sealed["CiphertextBlob"] }))).await;
    assert_eq!(opened["Plaintext"], b64(b"kept"));
    let described = ok(&server, in_region(east, "DescribeKey", json!({ "KeyId": key_id }))).await;
    let configuration = &described["KeyMetadata"]["MultiRegionConfiguration"];
    assert_eq!(configuration["MultiRegionKeyType"], "REPLICA");
    assert_eq!(configuration["PrimaryKey"]["Region"], west);
    server.stop().await;
}

/// The ARN AWS gives the IAM user `name` of kmsim's default AWS account.
fn iam_user(name: &str) -> String {
    format!("arn:aws:iam::111122223333:user/{name}")
}

#[tokio::test]
async fn grants_are_made_listed_retired_and_revoked_and_their_tokens_are_checked_but_never_recorded() {
    let server = TestServer::start().await;
    let key =
        ok(&server, AwsCall::new("CreateKey", json!({}))).await["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let request = json!({
        "KeyId": key,
        "GranteePrincipal": iam_user("app"),
        "RetiringPrincipal": iam_user("ops"),
        "Operations": ["Encrypt", "Decrypt"],
        "Constraints": { "EncryptionContextEquals": { "app": "billing" } },
        "Name": "billing-app",
    });
    let made = ok(&server, AwsCall::new("CreateGrant", request.clone())).await;
    let (grant_id, token) =
        (made["GrantId"].as_str().unwrap().to_owned(), made["GrantToken"].as_str().unwrap().to_owned());
    assert_eq!(grant_id.len(), 64);
    let retried = ok(&server, AwsCall::new("CreateGrant", request.clone())).await;
    assert_eq!(retried["GrantId"], grant_id.as_str(), "a named retry with the same parameters is the same grant");
    assert_ne!(retried["GrantToken"], token.as_str(), "with a token of its own");

    let listed = ok(&server, AwsCall::new("ListGrants", json!({ "KeyId": key }))).await;
    assert_eq!(listed["Truncated"], false);
    let grant = &listed["Grants"][0];
    assert_eq!(grant["GrantId"], grant_id.as_str());
    assert_eq!(grant["KeyId"], key.as_str());
    assert_eq!(grant["IssuingAccount"], "arn:aws:iam::111122223333:root");
    assert_eq!(grant["Constraints"], json!({ "EncryptionContextEquals": { "app": "billing" } }));
    assert!(grant["CreationDate"].is_number());

    let sealed = json!({ "KeyId": key, "Plaintext": b64(b"x"), "GrantTokens": [token, retried["GrantToken"]] });
    let encrypted = send_aws(server.addr, &AwsCall::new("Encrypt", sealed)).await;
    assert_eq!(encrypted.status, 200, "{:?}", encrypted.body);
    let record = record_of(&server, &encrypted).await;
    assert!(record.request_parameters.contains(r#""GrantTokens":2"#), "{}", record.request_parameters);
    assert!(!record.request_parameters.contains(&token));

    let forged = send_aws(
        server.addr,
        &AwsCall::new("Encrypt", json!({ "KeyId": key, "Plaintext": b64(b"x"), "GrantTokens": ["not-a-token"] })),
    )
    .await;
    assert_exception(&forged, "InvalidGrantTokenException");
    let eleven = vec![token.clone(); 11];
    let too_many =
        send_aws(server.addr, &AwsCall::new("DescribeKey", json!({ "KeyId": key, "GrantTokens": eleven }))).await;
    assert_exception(&too_many, "ValidationException");

    let unknown_op = json!({ "KeyId": key, "GranteePrincipal": iam_user("app"), "Operations": ["Fly"] });
    let unknown_op = send_aws(server.addr, &AwsCall::new("CreateGrant", unknown_op)).await;
    assert_exception(&unknown_op, "ValidationException");
    let dry = json!({ "KeyId": key, "GranteePrincipal": iam_user("app"), "Operations": ["Encrypt"], "DryRun": true });
    let dry = send_aws(server.addr, &AwsCall::new("CreateGrant", dry)).await;
    assert_eq!((dry.status, dry.body["__type"].as_str()), (412, Some("DryRunOperationException")));
    let retirable =
        ok(&server, AwsCall::new("ListRetirableGrants", json!({ "RetiringPrincipal": iam_user("ops") }))).await;
    assert_eq!(retirable["Grants"].as_array().unwrap().len(), 1);

    let retired = send_aws(server.addr, &AwsCall::new("RetireGrant", json!({ "GrantToken": token }))).await;
    assert_eq!(retired.status, 200, "{:?}", retired.body);
    let record = record_of(&server, &retired).await;
    assert_eq!(record.request_parameters, r#"{"GrantToken":true}"#, "a retirement records that a token was given");
    let gone = send_aws(server.addr, &AwsCall::new("RevokeGrant", json!({ "KeyId": key, "GrantId": grant_id }))).await;
    assert_exception(&gone, "NotFoundException");
    let malformed = send_aws(server.addr, &AwsCall::new("RevokeGrant", json!({ "KeyId": key, "GrantId": "x" }))).await;
    assert_exception(&malformed, "InvalidGrantIdException");
    let made = all_audit_events(&server).await.into_iter().filter(|e| e.event_name == "CreateGrant");
    assert!(made.into_iter().all(|e| !e.request_parameters.contains("GrantToken")), "a token is never recorded");
}

#[tokio::test]
async fn under_auth_required_a_grantee_uses_a_key_only_through_its_grant_and_within_its_constraint() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let grantee = create_access_key_as(&mut admin, "grantee").await;
    let retirer = create_access_key_as(&mut admin, "retirer").await;
    let as_admin =
        |operation: &str, body: serde_json::Value| AwsCall::new(operation, body).signed(ADMIN_KEY_ID, ADMIN_SECRET);
    let as_grantee = |operation: &str, body: serde_json::Value| {
        AwsCall::new(operation, body).signed(&grantee.access_key_id, grantee.secret.expose())
    };
    let key = ok(&server, as_admin("CreateKey", json!({}))).await["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let other = ok(&server, as_admin("CreateKey", json!({}))).await["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let encrypt = |key: &str, context: serde_json::Value| {
        as_grantee("Encrypt", json!({ "KeyId": key, "Plaintext": b64(b"x"), "EncryptionContext": context }))
    };
    let billing = json!({ "app": "billing" });
    assert_exception(&send_aws(server.addr, &encrypt(&key, billing.clone())).await, "AccessDeniedException");

    let grant = json!({
        "KeyId": key,
        "GranteePrincipal": iam_user("grantee"),
        "RetiringPrincipal": iam_user("retirer"),
        "Operations": ["Encrypt"],
        "Constraints": { "EncryptionContextSubset": billing },
    });
    let made = ok(&server, as_admin("CreateGrant", grant.clone())).await;
    let sealed = ok(&server, encrypt(&key, json!({ "app": "billing", "more": "x" }))).await;
    assert_eq!(sealed["KeyId"], key.as_str(), "the grant lets its grantee encrypt within its constraint");
    assert_exception(&send_aws(server.addr, &encrypt(&key, json!({}))).await, "AccessDeniedException");
    assert_exception(&send_aws(server.addr, &encrypt(&other, billing.clone())).await, "AccessDeniedException");
    let decrypt = as_grantee(
        "Decrypt",
        json!({ "CiphertextBlob": sealed["CiphertextBlob"], "EncryptionContext": { "app": "billing", "more": "x" } }),
    );
    assert_exception(&send_aws(server.addr, &decrypt).await, "AccessDeniedException");
    let own_grant = send_aws(
        server.addr,
        &as_grantee(
            "CreateGrant",
            json!({ "KeyId": key, "GranteePrincipal": iam_user("grantee"), "Operations": ["Decrypt"] }),
        ),
    )
    .await;
    assert_exception(&own_grant, "AccessDeniedException");

    // The retiring principal may retire the grant with no policy of its own; then the grant permits nothing.
    let retire = AwsCall::new("RetireGrant", json!({ "KeyId": key, "GrantId": made["GrantId"] }))
        .signed(&retirer.access_key_id, retirer.secret.expose());
    let retired = send_aws(server.addr, &retire).await;
    assert_eq!(retired.status, 200, "{:?}", retired.body);
    assert_exception(&send_aws(server.addr, &encrypt(&key, billing.clone())).await, "AccessDeniedException");

    // An explicit Deny in a policy is never overridden by a grant.
    ok(&server, as_admin("CreateGrant", grant)).await;
    ok(&server, encrypt(&key, billing.clone())).await;
    create_policy_as(&mut admin, "no-encrypt", &identity_policy("Deny", &["kms:Encrypt"], &["*"])).await;
    attach_user_policy_as(&mut admin, "no-encrypt", "grantee").await;
    assert_exception(&send_aws(server.addr, &encrypt(&key, billing)).await, "AccessDeniedException");
}

#[tokio::test]
async fn create_key_takes_tags_checked_as_tag_resource_checks_them() {
    let server = TestServer::start().await;
    let request =
        json!({ "Tags": [{ "TagKey": "team", "TagValue": "payments" }, { "TagKey": "env", "TagValue": "test" }] });
    let key =
        ok(&server, AwsCall::new("CreateKey", request)).await["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let tags = ok(&server, AwsCall::new("ListResourceTags", json!({ "KeyId": key }))).await;
    assert_eq!(
        tags["Tags"],
        json!([{ "TagKey": "env", "TagValue": "test" }, { "TagKey": "team", "TagValue": "payments" }])
    );
    let too_many: Vec<_> = (0..21).map(|i| json!({ "TagKey": format!("k{i}"), "TagValue": "v" })).collect();
    let refused = send_aws(server.addr, &AwsCall::new("CreateKey", json!({ "Tags": too_many }))).await;
    assert_exception(&refused, "ValidationException");
    let listed = ok(&server, AwsCall::new("ListKeys", json!({}))).await;
    assert_eq!(listed["Keys"].as_array().unwrap().len(), 1, "a refused CreateKey makes no key");
    server.stop().await;
}
