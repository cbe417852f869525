//! The console in a real browser (issue 31, item 8): headless Chromium (Debian's package, driven by playwright-core,
//! both installed by the harness when missing: see `support/sdk.rs`) against a server this test starts on
//! 127.0.0.1:0. The script `tests/sdk/console/browser.js` clicks through the page as a user would and saves the
//! screenshots docs/console.md shows (under `target/console-screenshots`). Never skips: without node/npm or a way
//! to install chromium it fails saying what to install.

mod common;
#[path = "support/sdk.rs"]
mod sdk;

use std::process::Command;
use std::time::Duration;

use common::TestServer;
use kmsim::proto as pb;
use serde_json::Value;

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

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (chromium, modules) =
        tokio::task::spawn_blocking(|| (sdk::chromium(), sdk::CONSOLE_NODE.node_modules())).await.unwrap();
    let mut command = Command::new("node");
    command
        .arg(sdk::scripts_dir_of("console").join("browser.js"))
        .env("NODE_PATH", modules)
        .env("KMSIM_ENDPOINT", server.addr.to_string())
        .env("KMSIM_CHROMIUM", chromium)
        .env("KMSIM_SCREENSHOTS", &shots)
        .env("KMSIM_KEY_ID", &key_id);
    let finished = tokio::task::spawn_blocking(move || sdk::run_bounded(command, Duration::from_secs(180)))
        .await
        .unwrap()
        .expect("node runs the browser script");
    let report: Value = serde_json::from_str(finished.stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("the browser script printed no report: {}", finished.describe()));
    assert!(report["failed"].is_null(), "{report:#}\n{}", finished.stderr);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 12, "{report:#}");
    for shot in ["keys.png", "refusal.png", "rotations.png"] {
        assert!(shots.join(shot).metadata().is_ok_and(|m| m.len() > 1000), "{shot} was saved");
    }
    eprintln!("console page load (navigation duration): {} ms", report["timings"]["keysLoadMs"]);
    server.stop().await;
}
