//! `kmsim secret …` end to end: the real binary against an in-process server.

mod common;

use common::cli::*;
use common::*;
use serde_json::Value;

async fn json(server: &TestServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    kmsim(server, &args).await.json()
}

#[tokio::test]
async fn values_versions_and_stages_from_the_command_line() {
    let server = TestServer::start().await;
    let created = json(&server, &["secret", "create", "app/db", "--secret-data", "s3cr3t", "--version-id", "v1"]).await;
    assert_eq!((str_field(&created, "secretName"), str_field(&created, "versionId")), ("app/db", "v1"));
    assert!(str_field(&created, "arn").ends_with(":secret/app/db"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.txt");
    std::fs::write(&file, "from-a-file").unwrap();
    let put = ["secret", "put", "app/db", "--version-id", "v2", "--secret-data-file", file.to_str().unwrap()];
    assert_eq!(array(&json(&server, &put).await, "versionStages")[0], "ACSCurrent");

    assert_eq!(kmsim(&server, &["secret", "get", "app/db", "--value-only"]).await.ok(), "from-a-file");
    let previous = json(&server, &["secret", "get", "app/db", "--version-stage", "ACSPrevious"]).await;
    assert_eq!((str_field(&previous, "versionId"), str_field(&previous, "secretData")), ("v1", "s3cr3t"));

    let stage = ["secret", "stage", "app/db", "--stage", "Canary", "--move-to-version", "v1"];
    kmsim(&server, &stage).await.ok();
    let versions = json(&server, &["secret", "versions", "app/db"]).await;
    let listed: Vec<(&str, Vec<&str>)> = array(&versions, "versionIds")
        .iter()
        .map(|v| {
            let stages = array(v, "versionStages").iter().filter_map(Value::as_str).collect();
            (str_field(v, "versionId"), stages)
        })
        .collect();
    assert_eq!(listed, vec![("v2", vec!["ACSCurrent"]), ("v1", vec!["ACSPrevious", "Canary"])]);

    kmsim(&server, &["secret", "update", "app/db", "--description", "the app's database"]).await.ok();
    let described = json(&server, &["secret", "describe", "app/db"]).await;
    assert_eq!(str_field(&described, "description"), "the app's database");
    let listed = json(&server, &["secret", "list", "--filters", r#"[{"Key":"SecretName","Values":["app/"]}]"#]).await;
    assert_eq!(listed["totalCount"], 1);

    // Errors print as `Code (HTTP): message` and exit non-zero.
    let missing = kmsim(&server, &["secret", "get", "nope"]).await;
    assert_eq!(missing.failed(), "Forbidden.ResourceNotFound (404): The resource is not found.");
}

#[tokio::test]
async fn deletion_restore_and_rotation_from_the_command_line() {
    let server = TestServer::start().await;
    kmsim(&server, &["secret", "create", "temp", "--secret-data", "x"]).await.ok();
    let deleted = json(&server, &["secret", "delete", "temp", "--recovery-window-in-days", "7"]).await;
    assert!(!str_field(&deleted, "plannedDeleteTime").is_empty());
    let refused = kmsim(&server, &["secret", "get", "temp"]).await;
    assert_eq!(refused.failed(), "Rejected.ResourceInDeleteWindow (409): The secret is planned to be deleted.");
    kmsim(&server, &["secret", "restore", "temp"]).await.ok();
    assert_eq!(kmsim(&server, &["secret", "get", "temp", "--value-only"]).await.ok(), "x");
    kmsim(&server, &["secret", "delete", "temp", "--force"]).await.ok();
    assert!(kmsim(&server, &["secret", "get", "temp"]).await.failed().starts_with("Forbidden.ResourceNotFound"));

    let create = [
        "secret",
        "create",
        "rds/app",
        "--secret-type",
        "Rds",
        "--secret-data",
        r#"{"AccountName":"app","AccountPassword":"initial"}"#,
        "--extended-config",
        r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","AccountName":"app"}"#,
        "--enable-automatic-rotation",
        "--rotation-interval",
        "6h",
    ];
    let created = json(&server, &create).await;
    assert_eq!(str_field(&created, "rotationInterval"), "21600s");
    let rotated = json(&server, &["secret", "rotate", "rds/app", "--version-id", "r1"]).await;
    assert_eq!(str_field(&rotated, "versionId"), "r1");
    let value: Value = serde_json::from_str(kmsim(&server, &["secret", "get", "rds/app", "--value-only"]).await.ok())
        .expect("a JSON credential");
    assert_eq!(value["AccountName"], "app");
    assert_ne!(value["AccountPassword"], "initial");
    let policy = json(&server, &["secret", "rotation-policy", "rds/app", "--disable"]).await;
    assert_eq!(str_field(&policy, "automaticRotation"), "Disabled");

    let password = json(&server, &["secret", "random-password", "--length", "16", "--exclude-punctuation"]).await;
    let password = str_field(&password, "randomPassword");
    assert_eq!(password.len(), 16);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
}
