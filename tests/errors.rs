//! Error shapes (gRPC code, ErrorInfo, trailing metadata), request ids, and
//! what the audit trail records about calls, success or failure.

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use kmsim::proto as pb;
use tonic::Code;
use tonic_types::StatusExt;

const REQUEST_ID_HEADER: &str = "x-kms-request-id";

fn response_request_id<T>(response: &tonic::Response<T>) -> String {
    response.metadata().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn status_request_id(status: &tonic::Status) -> String {
    status.metadata().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn with_metadata<T>(message: T, pairs: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (name, value) in pairs {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    request
}

async fn audit_events_with_request_id(server: &TestServer, request_id: &str) -> Vec<pb::AuditEvent> {
    all_audit_events(server).await.into_iter().filter(|e| e.client_request_id == request_id).collect()
}

#[tokio::test]
async fn a_disabled_key_is_rejected_and_the_failure_is_audited() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let arn = kms
        .describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap()
        .arn;
    kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.expect("disable key");

    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"refused".to_vec(), ..Default::default() };
    let status = kms.encrypt(request).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, "Rejected.Disabled");
    assert_eq!(info.domain, "kmsim");
    assert_eq!(error_code(&status), "Rejected.Disabled");
    assert_eq!(http_status(&status), "409");
    let request_id = status_request_id(&status);
    assert!(!request_id.is_empty(), "no x-kms-request-id on {status:?}");
    assert_eq!(info.metadata.get("requestId"), Some(&request_id), "ErrorInfo requestId");
    assert_eq!(info.metadata.get("httpStatus").map(String::as_str), Some("409"));

    let mut audit = server.audit().await;
    let request = pb::ListAuditEventsRequest { error_code: "Rejected.Disabled".to_owned(), ..Default::default() };
    let page = audit.list_audit_events(request).await.expect("list audit events").into_inner();
    assert_eq!(page.events.len(), 1, "{:#?}", page.events);
    assert!(page.next_page_token.is_empty());
    let event = &page.events[0];
    assert_eq!(event.event_name, "Encrypt");
    assert_eq!(event.action, "kms.encrypt");
    assert_eq!(event.service_name, "Kms");
    assert_eq!(event.outcome, "Failure");
    assert_eq!(event.error_code, "Rejected.Disabled");
    assert_eq!(event.http_status, 409);
    assert_eq!(event.key_id, key_id);
    assert_eq!(event.key_arn, arn);
    assert_eq!(event.client_ip, "127.0.0.1");
    assert_ne!(event.client_port, 0);
    assert!(event.user_agent.contains(TEST_USER_AGENT), "user agent {:?}", event.user_agent);
    assert_eq!(event.request_id, request_id);
    server.stop().await;
}

#[tokio::test]
async fn every_successful_response_carries_a_request_id() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut audit = server.audit().await;
    let mut ids = Vec::new();

    let created = kms.create_key(pb::CreateKeyRequest::default()).await.unwrap();
    ids.push(response_request_id(&created));
    let key_id = created.into_inner().key_metadata.unwrap().key_id;
    let described = kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap();
    ids.push(response_request_id(&described));
    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"id me".to_vec(), ..Default::default() };
    let sealed = kms.encrypt(request).await.unwrap();
    ids.push(response_request_id(&sealed));
    let request = pb::DecryptRequest { ciphertext_blob: sealed.into_inner().ciphertext_blob, ..Default::default() };
    ids.push(response_request_id(&kms.decrypt(request).await.unwrap()));
    ids.push(response_request_id(&kms.list_keys(pb::ListKeysRequest::default()).await.unwrap()));
    ids.push(response_request_id(&kms.generate_random(pb::GenerateRandomRequest { length: 8 }).await.unwrap()));
    let request = pb::GenerateDataKeyRequest { key_id: key_id.clone(), ..Default::default() };
    ids.push(response_request_id(&kms.generate_data_key(request).await.unwrap()));
    ids.push(response_request_id(&kms.disable_key(pb::DisableKeyRequest { key_id: key_id.clone() }).await.unwrap()));
    ids.push(response_request_id(&kms.enable_key(pb::EnableKeyRequest { key_id: key_id.clone() }).await.unwrap()));
    let listed = audit.list_audit_events(pb::ListAuditEventsRequest::default()).await.unwrap();
    ids.push(response_request_id(&listed));

    for (i, id) in ids.iter().enumerate() {
        assert!(!id.is_empty(), "response {i} has no {REQUEST_ID_HEADER}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "request ids repeat: {ids:?}");
    // Each id the client saw names exactly one audit record.
    let events = all_audit_events(&server).await;
    for id in &ids {
        assert_eq!(events.iter().filter(|e| &e.request_id == id).count(), 1, "request id {id}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_request_id_is_kept_apart_from_the_servers_own() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;

    let mine = "client-chosen-id-0001";
    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"echo".to_vec(), ..Default::default() };
    let response = kms.encrypt(with_metadata(request, &[("x-request-id", mine)])).await.unwrap();
    let answered = response_request_id(&response);
    assert_ne!(answered, mine, "the server took the client's id for its own");
    let events = audit_events_with_request_id(&server, mine).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!((events[0].event_name.as_str(), events[0].outcome.as_str()), ("Encrypt", "Success"));
    assert_eq!(events[0].key_id, key_id);
    assert_eq!(events[0].request_id, answered, "the record's request id is the one the answer gave");

    // A failing call too: the server's id in the trailers and in ErrorInfo, the client's in the record.
    let failing = "client-chosen-id-0002";
    let request = pb::DescribeKeyRequest { key_id: "alias/none".to_owned() };
    let status = kms.describe_key(with_metadata(request, &[("x-request-id", failing)])).await.unwrap_err();
    let answered = status_request_id(&status);
    assert_ne!(answered, failing);
    assert_eq!(status.get_details_error_info().unwrap().metadata.get("requestId"), Some(&answered));
    let events = audit_events_with_request_id(&server, failing).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].error_code, "Forbidden.AliasNotFound");
    assert_eq!(events[0].request_id, answered);

    // Two calls that send the same id, as a replaying or careless client would, are still two requests.
    for _ in 0..2 {
        let request = pb::DescribeKeyRequest { key_id: key_id.clone() };
        kms.describe_key(with_metadata(request, &[("x-request-id", "same-id")])).await.unwrap();
    }
    let events = audit_events_with_request_id(&server, "same-id").await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_ne!(events[0].request_id, events[1].request_id, "two calls share a request id");
    server.stop().await;
}

#[tokio::test]
async fn a_client_access_key_id_is_audited() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;

    let request = pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"whose".to_vec(), ..Default::default() };
    let metadata = [("x-kms-access-key-id", "LTAI5tTestAccessKey01"), ("x-request-id", "access-key-call")];
    kms.encrypt(with_metadata(request, &metadata)).await.unwrap();
    let events = audit_events_with_request_id(&server, "access-key-call").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].access_key_id, "LTAI5tTestAccessKey01");

    // Without the header nothing is invented.
    let request = pb::EncryptRequest { key_id, plaintext: b"anonymous".to_vec(), ..Default::default() };
    kms.encrypt(with_metadata(request, &[("x-request-id", "no-access-key-call")])).await.unwrap();
    let events = audit_events_with_request_id(&server, "no-access-key-call").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].access_key_id, "");
    server.stop().await;
}

#[tokio::test]
async fn audit_records_never_contain_plaintext_or_data_keys() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let plaintext = "kmsim-canary-plaintext-7f3a9c1e-card-4111111111111111";
    let ctx = HashMap::from([("purpose".to_owned(), "canary".to_owned())]);

    let request = pb::EncryptRequest {
        key_id: key_id.clone(),
        plaintext: plaintext.as_bytes().to_vec(),
        encryption_context: ctx.clone(),
    };
    let sealed = kms.encrypt(with_metadata(request, &[("x-request-id", "canary-encrypt")])).await.unwrap().into_inner();
    let request =
        pb::DecryptRequest { ciphertext_blob: sealed.ciphertext_blob.clone(), encryption_context: ctx.clone() };
    let opened = kms.decrypt(with_metadata(request, &[("x-request-id", "canary-decrypt")])).await.unwrap().into_inner();
    assert_eq!(opened.plaintext, plaintext.as_bytes());

    let request = pb::GenerateDataKeyRequest { key_id: key_id.clone(), ..Default::default() };
    let data_key = kms.generate_data_key(with_metadata(request, &[("x-request-id", "canary-gdk")])).await.unwrap();
    let data_key = data_key.into_inner();
    assert_eq!(data_key.plaintext.len(), 32);
    let request = pb::DecryptRequest { ciphertext_blob: data_key.ciphertext_blob.clone(), ..Default::default() };
    kms.decrypt(request).await.unwrap();
    // A failing call with the plaintext in it must not leak it either.
    let request = pb::EncryptRequest {
        key_id: "alias/missing".to_owned(),
        plaintext: plaintext.as_bytes().to_vec(),
        ..Default::default()
    };
    kms.encrypt(request).await.unwrap_err();

    let forbidden = [
        ("plaintext", plaintext.to_owned()),
        ("plaintext base64", STANDARD.encode(plaintext)),
        ("plaintext url-safe base64", URL_SAFE_NO_PAD.encode(plaintext)),
        ("data key base64", STANDARD.encode(&data_key.plaintext)),
        ("data key url-safe base64", URL_SAFE_NO_PAD.encode(&data_key.plaintext)),
        ("data key hex", data_key.plaintext.iter().map(|b| format!("{b:02x}")).collect()),
        ("ciphertext base64", STANDARD.encode(&sealed.ciphertext_blob)),
        ("data key blob base64", STANDARD.encode(&data_key.ciphertext_blob)),
    ];
    let events = all_audit_events(&server).await;
    assert!(events.len() >= 6, "only {} audit records", events.len());
    for event in &events {
        let text = format!("{event:?}");
        for (what, secret) in &forbidden {
            assert!(!text.contains(secret.as_str()), "the {what} leaked into {} record: {text}", event.event_name);
        }
    }

    let by_id = |id: &str| {
        events.iter().find(|e| e.client_request_id == id).cloned().unwrap_or_else(|| panic!("no record {id}"))
    };
    let encrypt = by_id("canary-encrypt");
    assert_eq!(encrypt.event_name, "Encrypt");
    assert_eq!(encrypt.plaintext_bytes, Some(plaintext.len() as u64));
    assert_eq!(encrypt.ciphertext_bytes, Some(sealed.ciphertext_blob.len() as u64));
    assert_eq!(encrypt.key_version_id, sealed.key_version_id);
    assert!(encrypt.request_parameters.contains("canary"), "context kept: {}", encrypt.request_parameters);
    let decrypt = by_id("canary-decrypt");
    assert_eq!(decrypt.plaintext_bytes, Some(plaintext.len() as u64));
    assert_eq!(decrypt.ciphertext_bytes, Some(sealed.ciphertext_blob.len() as u64));
    let generated = by_id("canary-gdk");
    assert_eq!(generated.event_name, "GenerateDataKey");
    assert_eq!(generated.plaintext_bytes, Some(32));
    assert_eq!(generated.ciphertext_bytes, Some(data_key.ciphertext_blob.len() as u64));
    server.stop().await;
}

#[tokio::test]
async fn bad_inputs_get_precise_codes_never_internal() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut audit = server.audit().await;
    let key_id = create_key(&mut kms, "").await;

    let request = pb::CreateKeyRequest { key_spec: "AES_999".to_owned(), ..Default::default() };
    assert_invalid(&kms.create_key(request).await.unwrap_err(), "KeySpec", "CreateKey AES_999");
    let request = pb::CreateKeyRequest { key_usage: "SIGN/VERIFY".to_owned(), ..Default::default() };
    assert_invalid(&kms.create_key(request).await.unwrap_err(), "KeyUsage", "AES key for SIGN/VERIFY");
    let request = pb::CreateKeyRequest { origin: "Somewhere".to_owned(), ..Default::default() };
    assert_invalid(&kms.create_key(request).await.unwrap_err(), "Origin", "CreateKey origin Somewhere");

    let request = pb::CreateAliasRequest { alias_name: "noprefix".to_owned(), key_id: key_id.clone() };
    assert_invalid(&kms.create_alias(request).await.unwrap_err(), "AliasName", "CreateAlias noprefix");
    let request = pb::CreateAliasRequest { alias_name: "alias/dup".to_owned(), key_id: key_id.clone() };
    kms.create_alias(request.clone()).await.expect("first alias");
    let status = kms.create_alias(request).await.unwrap_err();
    assert_error(&status, Code::AlreadyExists, "AliasAlreadyExists", "400", None, "duplicate alias");
    // Pointing the same name at another key is a duplicate too.
    let other_key = create_key(&mut kms, "").await;
    let request = pb::CreateAliasRequest { alias_name: "alias/dup".to_owned(), key_id: other_key };
    let status = kms.create_alias(request).await.unwrap_err();
    assert_error(&status, Code::AlreadyExists, "AliasAlreadyExists", "400", None, "duplicate alias, other key");

    let status = kms.list_keys(pb::ListKeysRequest { page_size: 101, ..Default::default() }).await.unwrap_err();
    assert_invalid(&status, "PageSize", "ListKeys page_size 101");
    let status = kms.list_keys(pb::ListKeysRequest { page_number: -1, ..Default::default() }).await.unwrap_err();
    assert_invalid(&status, "PageNumber", "ListKeys page_number -1");
    let listed = kms.list_keys(pb::ListKeysRequest { page_size: 100, ..Default::default() }).await.unwrap();
    assert_eq!(listed.into_inner().page_size, 100);

    let tags =
        |n: usize| (0..n).map(|i| pb::Tag { tag_key: format!("k{i}"), tag_value: format!("v{i}") }).collect::<Vec<_>>();
    let request = pb::TagResourceRequest { key_id: key_id.clone(), tags: tags(21) };
    assert_invalid(&kms.tag_resource(request).await.unwrap_err(), "Tags", "21 tags at once");
    let request = pb::TagResourceRequest { key_id: key_id.clone(), tags: tags(20) };
    kms.tag_resource(request).await.expect("20 tags are allowed");
    let request = pb::TagResourceRequest {
        key_id: key_id.clone(),
        tags: vec![pb::Tag { tag_key: "one-more".to_owned(), tag_value: "x".to_owned() }],
    };
    assert_invalid(&kms.tag_resource(request).await.unwrap_err(), "Tags", "a 21st tag");
    let listed = kms.list_resource_tags(pb::ListResourceTagsRequest { key_id: key_id.clone() }).await.unwrap();
    assert_eq!(listed.into_inner().tags.len(), 20, "a refused TagResource changed the tags");

    let request = pb::ListAuditEventsRequest { page_token: "garbage".to_owned(), ..Default::default() };
    assert_invalid(&audit.list_audit_events(request).await.unwrap_err(), "PageToken", "page_token garbage");
    let request = pb::ListAuditEventsRequest { page_size: 1001, ..Default::default() };
    assert_invalid(&audit.list_audit_events(request).await.unwrap_err(), "PageSize", "audit page_size 1001");

    let request = pb::ScheduleKeyDeletionRequest { key_id: key_id.clone(), pending_window_in_days: 6 };
    assert_invalid(&kms.schedule_key_deletion(request).await.unwrap_err(), "PendingWindowInDays", "window 6 days");

    // None of those failures left an InternalFailure in the trail.
    let events = all_audit_events(&server).await;
    assert!(events.iter().all(|e| e.error_code != "InternalFailure"), "an InternalFailure was audited");
    let failures = events.iter().filter(|e| e.outcome == "Failure").count();
    assert_eq!(failures, 13, "every refused call is audited once");
    server.stop().await;
}
