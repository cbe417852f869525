//! The call kernel's promises, through a real server: a caller with no
//! permission is refused before any key is generated for it, work that
//! follows a commit happens only once its record is committed, the kernel
//! knows no transport, and front ends never touch the store.

mod common;

use common::*;
use kmsim::proto as pb;

// ---------------------------------------------------------------------------
// Authorization before expensive work
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_caller_with_no_permission_is_refused_before_any_key_is_generated() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let rsa_key = admin
        .kms
        .create_key(pb::CreateKeyRequest {
            key_spec: "RSA_2048".into(),
            key_usage: "SIGN/VERIFY".into(),
            ..Default::default()
        })
        .await
        .expect("the admin creates an RSA key")
        .into_inner()
        .key_metadata
        .unwrap()
        .key_id;
    let mut nobody = SignedClients::of(&server, &create_access_key_as(&mut admin, "nobody").await).await;

    let create =
        pb::CreateKeyRequest { key_spec: "RSA_4096".into(), key_usage: "SIGN/VERIFY".into(), ..Default::default() };
    let status = nobody.kms.create_key(create).await.expect_err("no permission to create keys");
    assert_eq!(error_code(&status), "Forbidden.NoPermission");
    let status = nobody
        .kms
        .create_key_version(pb::CreateKeyVersionRequest { key_id: rsa_key.clone() })
        .await
        .expect_err("no permission to rotate the key");
    assert_eq!(error_code(&status), "Forbidden.NoPermission");

    let events = audit_events_as(&mut admin).await;
    let refused: Vec<_> = events.iter().filter(|e| e.user_identity.as_ref().unwrap().user_name == "nobody").collect();
    let create_record = refused.iter().find(|e| e.event_name == "CreateKey").expect("the refused CreateKey's record");
    assert_eq!(create_record.error_code, "Forbidden.NoPermission");
    // A key generated and then thrown away would have left its id in the record.
    assert_eq!(create_record.key_id, "", "the refused CreateKey made a key first");
    let rotate_record =
        refused.iter().find(|e| e.event_name == "CreateKeyVersion").expect("the refused CreateKeyVersion's record");
    assert_eq!(rotate_record.error_code, "Forbidden.NoPermission");
    assert_eq!(rotate_record.key_id, rsa_key, "the refusal names the key the call named");
    assert_eq!(rotate_record.key_version_id, "", "the refused CreateKeyVersion made a version first");

    let versions = admin
        .kms
        .list_key_versions(pb::ListKeyVersionsRequest { key_id: rsa_key, ..Default::default() })
        .await
        .expect("list versions")
        .into_inner();
    assert_eq!(versions.total_count, 1, "a refused rotation added a version");
    server.stop().await;
}

#[tokio::test]
async fn a_caller_allowed_on_a_key_still_runs_calls_named_by_alias() {
    let server = TestServer::start_config(auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &admin_credentials()).await;
    let key_id = admin
        .kms
        .create_key(pb::CreateKeyRequest::default())
        .await
        .expect("create key")
        .into_inner()
        .key_metadata
        .unwrap()
        .key_id;
    let alias = pb::CreateAliasRequest { alias_name: "alias/app".into(), key_id: key_id.clone() };
    admin.kms.create_alias(alias).await.expect("create alias");
    let arn = format!("acs:kms:{}:{}:key/{key_id}", kmsim::server::DEFAULT_REGION, kmsim::server::DEFAULT_ACCOUNT_ID);
    create_policy_as(&mut admin, "encrypt-one", &identity_policy("Allow", &["kms:Encrypt"], &[&arn])).await;
    let user = create_access_key_as(&mut admin, "app").await;
    attach_user_policy_as(&mut admin, "encrypt-one", "app").await;
    let mut app = SignedClients::of(&server, &user).await;

    // Judged up front by the key the alias resolves to, as afterwards.
    let request = pb::EncryptRequest { key_id: "alias/app".into(), plaintext: b"x".to_vec(), ..Default::default() };
    app.kms.encrypt(request).await.expect("allowed on the key the alias names");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Nothing escapes the commit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_fault_is_in_force_only_from_its_record_on() {
    let server = TestServer::start().await;
    let mut simulation = server.simulation().await;
    let inject = pb::InjectFaultRequest {
        method: "GenerateRandom".into(),
        error_code: "Rejected.Throttling".into(),
        ..Default::default()
    };
    let fault = simulation.inject_fault(with_request_id("inject", inject)).await.expect("inject").into_inner();
    let fault_id = fault.fault.unwrap().fault_id;
    let mut kms = server.kms().await;
    let status = kms
        .generate_random(with_request_id("random", pb::GenerateRandomRequest { length: 16 }))
        .await
        .expect_err("the fault is in force once InjectFault answered");
    assert_eq!(error_code(&status), "Rejected.Throttling");

    let cleared =
        simulation.clear_faults(with_request_id("clear", pb::ClearFaultsRequest { fault_id: fault_id.clone() }));
    assert_eq!(cleared.await.expect("clear").into_inner().cleared, 1);
    kms.generate_random(pb::GenerateRandomRequest { length: 16 }).await.expect("the fault is gone once cleared");

    let events = all_audit_events(&server).await;
    let inject_record = only_record(&events, "inject");
    let random_record = only_record(&events, "random");
    let clear_record = only_record(&events, "clear");
    // Records are listed newest first: the fault's record precedes the first call it broke.
    let position = |id: &str| events.iter().position(|e| e.event_id == id).unwrap();
    assert!(position(&inject_record.event_id) > position(&random_record.event_id));
    assert!(position(&random_record.event_id) > position(&clear_record.event_id));
    server.stop().await;
}

/// An app on an in-memory store, as the server assembles it, but driven in process.
fn in_process_app() -> (std::sync::Arc<kmsim::kernel::App>, kmsim::store::Store) {
    let config = kmsim::server::ServerConfig::default();
    let (store, loaded) = kmsim::store::Store::open(&config.store).expect("an in-memory store");
    let clock = std::sync::Arc::new(kmsim::clock::SimClock::with_offset(loaded.clock_offset_ms));
    let engine = kmsim::engine::Engine::new(config.account_id.clone(), clock, loaded.blob_secret, loaded.snapshot);
    let app = kmsim::server::assemble(&config, store.clone(), std::sync::Arc::new(engine), None).expect("assembled");
    (app, store)
}

#[tokio::test]
async fn a_fault_whose_record_cannot_be_committed_is_never_in_force() {
    use kmsim::kernel::CallMeta;
    use kmsim::kernel::meta::new_request_id;
    use kmsim::kernel::ops::simulation::InjectFault;

    let (app, store) = in_process_app();
    // The store takes no more commits, as when its disk fails.
    store.close();
    let inject = InjectFault {
        method: "Encrypt".into(),
        key_id: String::new(),
        error_code: "Rejected.Throttling".into(),
        delay_ms: 0,
        probability: 0.0,
        count: 0,
        expire_time: String::new(),
        ttl: String::new(),
    };
    let meta = CallMeta::new("test", "cn-hangzhou", new_request_id());
    let answer = app.execute(meta, inject, |fault| (fault, 0)).await;
    let error = answer.result.expect_err("a call whose record cannot be stored fails closed");
    assert_eq!(error.code.as_str(), "InternalFailure");
    let now = app.engine.clock().now();
    assert!(app.admission.faults(now).is_empty(), "an unrecorded fault is in force");
}

/// An operation is the kernel's own: built from plain values, with no wire
/// type, it runs, is audited with exactly its allow-listed parameters and the
/// size its front end rendered, and answers in the engine's terms. A second
/// front end needs nothing more than this.
#[tokio::test]
async fn an_operation_needs_no_wire_type() {
    use kmsim::audit::AuditFilter;
    use kmsim::kernel::CallMeta;
    use kmsim::kernel::meta::new_request_id;
    use kmsim::kernel::ops::kms::{CreateKey, Encrypt};

    let (app, _store) = in_process_app();
    let meta = || {
        let mut meta = CallMeta::new("another-front-end", "cn-hangzhou", new_request_id());
        meta.user_agent = "a-second-sdk/1.0".into();
        meta
    };
    let create = CreateKey {
        key_spec: "Aliyun_AES_256".into(),
        key_usage: "ENCRYPT/DECRYPT".into(),
        origin: String::new(),
        description: "made without a wire".into(),
        protection_level: String::new(),
        enable_automatic_rotation: false,
        rotation_interval: String::new(),
        exportable: false,
        dkms_instance_id: String::new(),
        policy: String::new(),
        multi_region: None,
        tags: Vec::new(),
    };
    let key = app.execute(meta(), create, |key| (key, 0)).await.result.expect("the key is created");
    let key_id = key.meta.key_id.clone();

    let context = [("tenant", "b"), ("app", "a")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
    let plaintext = zeroize::Zeroizing::new(b"card number 4111".to_vec());
    let encrypt = Encrypt { key_id: key_id.clone(), plaintext, encryption_context: context };
    let sealed = app.execute(meta(), encrypt, |sealed| (sealed, 42)).await.result.expect("encrypted");
    assert_eq!(sealed.key_id, key_id);

    let filter = AuditFilter { event_name: "Encrypt".into(), ..AuditFilter::default() };
    let page = app.list_audit(filter, 10, None).await.expect("the trail reads");
    let [record] = page.records.as_slice() else { panic!("one Encrypt record: {:#?}", page.records) };
    let expected = serde_json::json!({"KeyId": key_id, "EncryptionContext": {"app": "a", "tenant": "b"}});
    assert_eq!(record.request_parameters, expected, "the operation's allow-list, in its order, maps sorted");
    assert_eq!((record.user_agent.as_str(), record.response_bytes), ("a-second-sdk/1.0", 42));
    let text = serde_json::to_string(record).expect("a record serializes");
    assert!(!text.contains("card number"), "plaintext reached the record: {text}");
}

// ---------------------------------------------------------------------------
// Layering
// ---------------------------------------------------------------------------

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path.display().to_string(), text));
            }
        }
    }
    assert!(!found.is_empty(), "no sources under {dir}");
    found
}

#[test]
fn the_kernel_names_no_transport() {
    for (path, text) in sources("src/kernel") {
        for crate_name in ["tonic", "prost", "hyper", "http", "tower", "h2", "crate::proto", "crate::frontends"] {
            let used = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| line.contains(&format!("{crate_name}::")) || line.contains(&format!("use {crate_name}")));
            assert!(!used, "{path} uses {crate_name}: the kernel must not know a transport");
        }
    }
}

#[test]
fn front_ends_never_touch_the_store() {
    for (path, text) in sources("src/frontends") {
        for line in text.lines().filter(|line| !line.trim_start().starts_with("//")) {
            let touches = line.contains("crate::store") || line.contains(".store.") || line.contains(".store,");
            assert!(!touches, "{path}: {line:?}: a front end reads and writes only through the kernel");
        }
    }
}
