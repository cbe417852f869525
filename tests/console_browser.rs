//! The console in a real browser (issue 31, item 8): headless Chromium (Debian's package, driven by playwright-core,
//! both installed by the harness when missing: see `support/sdk.rs`) against a server this test starts on
//! 127.0.0.1:0. The script `tests/sdk/console/browser.js` clicks through the page as a user would and saves the
//! screenshots docs/console.md shows (under `target/console-screenshots`). Never skips: without node/npm or a way
//! to install chromium it fails saying what to install.

mod common;
#[path = "support/sdk.rs"]
mod sdk;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{SignedClients, TestServer};
use kmsim::proto as pb;
use serde_json::Value;

fn screenshots() -> PathBuf {
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

/// Runs the browser script against `server` with `settings` (`KMSIM_…`); its report, every check passed.
async fn browse(server: &TestServer, key_id: &str, settings: &[(&str, &str)]) -> Value {
    let (chromium, modules) =
        tokio::task::spawn_blocking(|| (sdk::chromium(), sdk::CONSOLE_NODE.node_modules())).await.unwrap();
    let mut command = Command::new("node");
    command
        .arg(sdk::scripts_dir_of("console").join("browser.js"))
        .env("NODE_PATH", modules)
        .env("KMSIM_ENDPOINT", server.addr.to_string())
        .env("KMSIM_CHROMIUM", chromium)
        .env("KMSIM_SCREENSHOTS", screenshots())
        .env("KMSIM_KEY_ID", key_id);
    for (name, value) in settings {
        command.env(name, value);
    }
    let finished = tokio::task::spawn_blocking(move || sdk::run_bounded(command, Duration::from_secs(180)))
        .await
        .unwrap()
        .expect("node runs the browser script");
    let report: Value = serde_json::from_str(finished.stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("the browser script printed no report: {}", finished.describe()));
    assert!(report["failed"].is_null(), "{report:#}\n{}", finished.stderr);
    report
}

#[tokio::test]
async fn the_console_shows_keys_refusals_rotations_and_calls_from_elsewhere_in_chromium() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let created = kms
        .create_key(pb::CreateKeyRequest {
            enable_automatic_rotation: true,
            rotation_interval: "90d".into(),
            description: "for the browser".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let key_id = created.key_metadata.unwrap().key_id;
    // A call made outside the console, which its live audit must show.
    kms.describe_key(pb::DescribeKeyRequest { key_id: key_id.clone() }).await.unwrap();

    let report = browse(&server, &key_id, &[]).await;
    assert_eq!(report["checks"].as_array().unwrap().len(), 12, "{report:#}");
    for shot in ["keys.png", "refusal.png", "rotations.png", "deleted.png"] {
        assert!(screenshots().join(shot).metadata().is_ok_and(|m| m.len() > 1000), "{shot} was saved");
    }
    eprintln!("console page load (navigation duration): {} ms", report["timings"]["keysLoadMs"]);
    server.stop().await;
}

#[tokio::test]
async fn under_auth_required_the_console_signs_its_calls_with_the_access_key_it_is_given() {
    let server = TestServer::start_config(common::auth_required_config()).await;
    let mut admin = SignedClients::of(&server, &common::admin_credentials()).await;
    let created = admin.kms.create_key(pb::CreateKeyRequest::default()).await.unwrap().into_inner();
    let key_id = created.key_metadata.unwrap().key_id;
    let settings = [("KMSIM_ACCESS_KEY_ID", common::ADMIN_KEY_ID), ("KMSIM_ACCESS_KEY_SECRET", common::ADMIN_SECRET)];
    let report = browse(&server, &key_id, &settings).await;
    assert_eq!(report["checks"].as_array().unwrap().len(), 3, "{report:#}");

    let request = pb::ListAuditEventsRequest { page_size: 1000, ..Default::default() };
    let records = admin.audit.list_audit_events(request).await.unwrap().into_inner().events;
    let from_page: Vec<_> = records.iter().filter(|r| r.user_agent.contains("HeadlessChrome")).collect();
    assert!(from_page.iter().any(|r| r.event_name == "ListKeys" && !r.error_code.is_empty()), "refused unsigned");
    assert!(
        from_page
            .iter()
            .any(|r| r.event_name == "ListKeys" && r.error_code.is_empty() && r.access_key_id == common::ADMIN_KEY_ID),
        "answered once signed with the admin's AccessKey: {from_page:#?}"
    );
    server.stop().await;
}
