//! The key commands that complete the CLI (aliases, tags, re-encryption, random bytes, key versions, deletion
//! protection, descriptions, import parameters), the global `--query`, binary inputs from files and stdin, and
//! long audit work staying quiet when stderr is piped: the real binary against an in-process server.

mod common;

use std::io::Write as _;
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::cli::*;
use common::*;
use kmsim::audit::formats::Format;
use kmsim::audit::trail::{Selectors, TrailSpec};
use kmsim::server::ServerConfig;
use serde_json::{Value, json};

async fn create_key(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["key", "create", "--query", "keyId"];
    all.extend(args);
    let id = kmsim(server, &all).await.ok().trim().to_owned();
    assert_eq!(id.len(), 36, "not a key id: {id:?}");
    id
}

/// `kmsim ARGS` with `stdin` piped in.
async fn kmsim_stdin(server: &TestServer, args: &[&str], stdin: Vec<u8>) -> Run {
    let what = format!("kmsim {} < stdin", args.join(" "));
    let mut command = common::cli::command(&server.endpoint(), args);
    command.stdin(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn()?;
        child.stdin.take().expect("piped stdin").write_all(&stdin)?;
        child.wait_with_output()
    })
    .await
    .expect("the runner thread")
    .expect("kmsim runs");
    finished(what, output)
}

fn aliases(listed: &Value) -> Vec<(&str, &str)> {
    array(listed, "aliases").iter().map(|a| (str_field(a, "aliasName"), str_field(a, "keyId"))).collect()
}

#[tokio::test]
async fn aliases_are_created_listed_repointed_and_deleted() {
    let server = TestServer::start().await;
    let (first, second) = (create_key(&server, &[]).await, create_key(&server, &[]).await);
    let created = kmsim_json(&server, &["alias", "create", "alias/payments", "--key-id", &first]).await;
    assert_eq!(created, json!({ "aliasName": "alias/payments", "keyId": first }));
    kmsim(&server, &["alias", "create", "alias/ledger", "--key-id", &second]).await.ok();

    let of_first = kmsim_json(&server, &["alias", "list", "--key-id", &first]).await;
    assert_eq!(aliases(&of_first), [("alias/payments", first.as_str())]);
    assert_eq!(of_first["totalCount"], 1);
    assert!(str_field(&array(&of_first, "aliases")[0], "aliasArn").ends_with(":alias/payments"));
    let every = kmsim_json(&server, &["alias", "list"]).await;
    let mut listed = aliases(&every);
    listed.sort();
    assert_eq!(listed, [("alias/ledger", second.as_str()), ("alias/payments", first.as_str())]);
    let table = kmsim(&server, &["alias", "list", "--key-id", &second]).await;
    assert!(table.ok().lines().any(|line| line.starts_with("alias/ledger") && line.contains(&second)), "{table:#?}");

    let via_alias = ["encrypt", "--key-id", "alias/payments", "--plaintext", "x", "--query", "keyId"];
    assert_eq!(kmsim(&server, &via_alias).await.ok().trim(), first);
    kmsim(&server, &["alias", "update", "alias/payments", "--key-id", &second]).await.ok();
    assert_eq!(kmsim(&server, &via_alias).await.ok().trim(), second);

    let deleted = kmsim_json(&server, &["alias", "delete", "alias/payments"]).await;
    assert_eq!(deleted, json!({ "aliasName": "alias/payments", "deleted": true }));
    assert_eq!(
        aliases(&kmsim_json(&server, &["alias", "list", "--key-id", &second]).await),
        [("alias/ledger", second.as_str())]
    );
    assert_eq!(
        kmsim(&server, &via_alias).await.failed(),
        "Forbidden.AliasNotFound (404): The specified Alias is not found."
    );
    let empty = kmsim(&server, &["alias", "list", "--key-id", &first]).await;
    assert_eq!(empty.ok().lines().last(), Some("(none)"), "{empty:#?}");
}

#[tokio::test]
async fn tags_are_added_removed_and_listed() {
    let server = TestServer::start().await;
    let key = create_key(&server, &[]).await;
    let tags = |value: &Value| -> Vec<(String, String)> {
        array(value, "tags").iter().map(|t| (str_field(t, "tagKey").into(), str_field(t, "tagValue").into())).collect()
    };
    let added = kmsim_json(&server, &["tag", "add", &key, "env=prod", "team=billing", "expr=a=b"]).await;
    assert_eq!(str_field(&added, "keyId"), key);
    let mut all = tags(&added);
    all.sort();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(all, [pair("env", "prod"), pair("expr", "a=b"), pair("team", "billing")]);

    let removed = kmsim_json(&server, &["tag", "remove", &key, "env", "expr"]).await;
    assert_eq!(tags(&removed), [pair("team", "billing")]);
    assert_eq!(tags(&kmsim_json(&server, &["tag", "list", &key]).await), [pair("team", "billing")]);
    assert_eq!(kmsim(&server, &["tag", "list", &key, "--query", "tags.0.tagValue"]).await.ok(), "billing\n");

    let refused = kmsim(&server, &["tag", "add", &key, "no-equals-sign"]).await;
    assert!(refused.failed().contains("expected KEY=VALUE"), "{refused:#?}");
}

#[tokio::test]
async fn re_encrypted_blobs_decrypt_under_the_destination_key() {
    let server = TestServer::start().await;
    let (source, destination) = (create_key(&server, &[]).await, create_key(&server, &[]).await);
    let encrypt = ["encrypt", "--key-id", &source, "--plaintext", "card 4111", "--context", "app=billing"];
    let blob = kmsim(&server, &[&encrypt[..], &["--query", "ciphertextBlob"]].concat()).await.ok().trim().to_owned();

    let re_encrypt = [
        "re-encrypt",
        "--ciphertext-blob",
        &blob,
        "--source-context",
        "app=billing",
        "--destination-key-id",
        &destination,
        "--destination-context",
        "app=ledger",
    ];
    let moved = kmsim_json(&server, &re_encrypt).await;
    assert_eq!((str_field(&moved, "keyId"), str_field(&moved, "sourceKeyId")), (destination.as_str(), source.as_str()));
    assert!(!str_field(&moved, "keyVersionId").is_empty() && !str_field(&moved, "sourceKeyVersionId").is_empty());
    let new_blob = str_field(&moved, "ciphertextBlob");
    assert_ne!(new_blob, blob);

    // The new blob as base64, as raw bytes in a file, and as base64 on stdin.
    let decrypted = kmsim_json(&server, &["decrypt", "--ciphertext-blob", new_blob, "--context", "app=ledger"]).await;
    assert_eq!(
        (str_field(&decrypted, "plaintext"), str_field(&decrypted, "keyId")),
        ("card 4111", destination.as_str())
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob.bin");
    std::fs::write(&file, BASE64.decode(new_blob).unwrap()).unwrap();
    let from_file = ["decrypt", "--ciphertext-blob-file", file.to_str().unwrap(), "--context", "app=ledger"];
    assert_eq!(kmsim(&server, &[&from_file[..], &["--query", "plaintext"]].concat()).await.ok(), "card 4111\n");
    let from_stdin = ["decrypt", "--ciphertext-blob", "-", "--context", "app=ledger", "--query", "plaintext"];
    assert_eq!(kmsim_stdin(&server, &from_stdin, format!("{new_blob}\n").into_bytes()).await.ok(), "card 4111\n");

    // The old context no longer fits the new blob.
    let wrong = kmsim(&server, &["decrypt", "--ciphertext-blob", new_blob, "--context", "app=billing"]).await;
    assert!(wrong.failed().contains(" (400): "), "{wrong:#?}");
}

#[tokio::test]
async fn random_bytes_come_in_base64() {
    let server = TestServer::start().await;
    let table = kmsim(&server, &["random", "--length", "32"]).await;
    assert_eq!(BASE64.decode(table.ok().trim()).unwrap().len(), 32);
    let json = kmsim_json(&server, &["random", "--length", "5"]).await;
    assert_eq!(BASE64.decode(str_field(&json, "random")).unwrap().len(), 5);
    let too_many = kmsim(&server, &["random", "--length", "1025"]).await;
    assert!(too_many.failed().starts_with("InvalidParameter (400): "), "{too_many:#?}");
}

#[tokio::test]
async fn a_key_version_is_described_by_its_id() {
    let server = TestServer::start().await;
    let key = create_key(&server, &[]).await;
    let rotated = kmsim(&server, &["key", "rotate", &key, "--query", "keyVersionId"]).await.ok().trim().to_owned();
    let described = kmsim_json(&server, &["key", "describe-version", &key, &rotated]).await;
    assert_eq!(
        (str_field(&described, "keyId"), str_field(&described, "keyVersionId")),
        (key.as_str(), rotated.as_str())
    );
    assert!(str_field(&described, "creationDate").ends_with('Z'));
    let first = kmsim(&server, &["key", "versions", &key, "--query", "keyVersions.0.keyVersionId"]).await;
    assert_ne!(first.ok().trim(), rotated);
    let unknown = kmsim(&server, &["key", "describe-version", &key, "00000000-0000-0000-0000-000000000000"]).await;
    assert!(unknown.failed().contains(" (404): "), "{unknown:#?}");
}

#[tokio::test]
async fn deletion_protection_refuses_scheduled_deletion_until_lifted() {
    let server = TestServer::start().await;
    let key = create_key(&server, &[]).await;
    let protected =
        kmsim_json(&server, &["key", "deletion-protection", &key, "--enable", "--description", "ledger key"]).await;
    assert_eq!(protected["deletionProtection"], true);
    assert_eq!(str_field(&protected, "deletionProtectionDescription"), "ledger key");

    let refused = kmsim(&server, &["key", "schedule-deletion", &key, "--pending-window-in-days", "7"]).await;
    assert_eq!(
        refused.failed(),
        "Rejected.StateModifiedFailed (409): Keystate modified failed. The key has deletion protection enabled."
    );
    assert_eq!(kmsim(&server, &["key", "describe", &key, "--query", "keyState"]).await.ok(), "Enabled\n");

    let lifted = kmsim_json(&server, &["key", "deletion-protection", &key, "--disable"]).await;
    assert_eq!((&lifted["deletionProtection"], &lifted["deletionProtectionDescription"]), (&json!(false), &json!("")));
    kmsim(&server, &["key", "schedule-deletion", &key, "--pending-window-in-days", "7"]).await.ok();
    assert_eq!(kmsim(&server, &["key", "describe", &key, "--query", "keyState"]).await.ok(), "PendingDeletion\n");

    let neither = kmsim(&server, &["key", "deletion-protection", &key]).await;
    assert!(neither.failed().contains("--enable"), "{neither:#?}");
}

#[tokio::test]
async fn a_description_is_changed_and_cleared() {
    let server = TestServer::start().await;
    let key = create_key(&server, &["--description", "payments"]).await;
    let updated = kmsim_json(&server, &["key", "update-description", &key, "--description", "payments, EU"]).await;
    assert_eq!((str_field(&updated, "keyId"), str_field(&updated, "description")), (key.as_str(), "payments, EU"));
    assert_eq!(kmsim(&server, &["key", "describe", &key, "--query", "description"]).await.ok(), "payments, EU\n");
    kmsim(&server, &["key", "update-description", &key, "--description", ""]).await.ok();
    assert_eq!(kmsim(&server, &["key", "describe", &key, "--query", "description"]).await.ok(), "\n");
}

#[tokio::test]
async fn import_parameters_give_a_wrapping_key_and_a_token() {
    use rsa::pkcs8::DecodePublicKey as _;
    let server = TestServer::start().await;
    let key = create_key(&server, &["--origin", "EXTERNAL"]).await;
    let params = kmsim_json(&server, &["key", "import-params", &key]).await;
    assert_eq!(str_field(&params, "keyId"), key);
    assert!(!str_field(&params, "importToken").is_empty());
    let expires = str_field(&params, "tokenExpireTime");
    assert!(time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).is_ok(), "{expires}");
    let pem = str_field(&params, "publicKey");
    assert!(rsa::RsaPublicKey::from_public_key_pem(pem).is_ok(), "{pem}");

    // People get the fields, then the PEM ready to copy.
    let table = kmsim(&server, &["key", "import-params", &key, "--wrapping-algorithm", "RSAES_OAEP_SHA_1"]).await;
    let table = table.ok();
    assert!(table.lines().any(|line| line.starts_with("importToken ")), "{table}");
    assert!(table.trim_end().ends_with("-----END PUBLIC KEY-----"), "{table}");
    let pem_alone = kmsim(&server, &["key", "import-params", &key, "--query", "publicKey"]).await;
    assert!(pem_alone.ok().starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem_alone:#?}");

    let aliyun = create_key(&server, &[]).await;
    let refused = kmsim(&server, &["key", "import-params", &aliyun]).await;
    assert!(refused.failed().contains(" (4"), "{refused:#?}");
}

#[tokio::test]
async fn errors_print_code_http_status_and_message_and_exit_non_zero() {
    let server = TestServer::start().await;
    let key = create_key(&server, &[]).await;
    kmsim(&server, &["key", "disable", &key]).await.ok();
    let refused = kmsim(&server, &["encrypt", "--key-id", &key, "--plaintext", "again"]).await;
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.failed(),
        "Rejected.Disabled (409): The request was rejected because the key state is Disabled."
    );
    assert!(refused.stdout.is_empty(), "{refused:#?}");
}

#[tokio::test]
async fn query_prints_one_field_raw_for_scripts() {
    let server = TestServer::start().await;
    let key = create_key(&server, &["--description", "q"]).await;
    let listed = kmsim(&server, &["key", "list", "--query", "keys.0.keyId"]).await;
    assert_eq!(listed.ok(), format!("{key}\n"));
    // Not a string: compact JSON on one line.
    let first = kmsim(&server, &["key", "list", "--query", "keys.0"]).await;
    let first: Value = serde_json::from_str(first.ok().trim()).unwrap();
    assert_eq!(str_field(&first, "keyId"), key);
    assert_eq!(kmsim(&server, &["key", "list", "--query", "totalCount"]).await.ok(), "1\n");
    // The path points into the JSON form even where the table differs (public-key, random).
    let random = kmsim(&server, &["random", "--length", "3", "--query", "random"]).await;
    assert_eq!(BASE64.decode(random.ok().trim()).unwrap().len(), 3);

    let missing = kmsim(&server, &["key", "describe", &key, "--query", "keyid"]).await;
    assert!(
        missing.failed().starts_with("--query \"keyid\": no field \"keyid\"; there are: keyId, arn,"),
        "{missing:#?}"
    );
    assert!(missing.stdout.is_empty(), "{missing:#?}");
    let past_the_end = kmsim(&server, &["key", "list", "--query", "keys.1.keyId"]).await;
    assert!(past_the_end.failed().contains("no item \"1\" in the 1 items of \"keys\""), "{past_the_end:#?}");

    // Commands that stream have no result to pick from, and are refused before they write anything.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.jsonl");
    let export = kmsim(&server, &["audit", "export", "--out-file", file.to_str().unwrap(), "--query", "records"]).await;
    assert!(export.failed().starts_with("--query: this command streams its output"), "{export:#?}");
    assert!(!file.exists());
}

#[tokio::test]
async fn binary_inputs_come_as_text_files_stdin_or_base64() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hmac = create_key(&server, &["--key-spec", "HMAC_256"]).await;
    let mac = ["mac", "--key-id", &hmac, "--algorithm", "HMAC_SHA_256"];
    let by_text = kmsim(&server, &[&mac[..], &["--message", "body", "--query", "mac"]].concat()).await.ok().to_owned();
    let by_base64 = kmsim(&server, &[&mac[..], &["--message-base64", "Ym9keQ==", "--query", "mac"]].concat()).await;
    assert_eq!(by_base64.ok(), by_text);
    let mac_file = dir.path().join("mac.bin");
    std::fs::write(&mac_file, BASE64.decode(by_text.trim()).unwrap()).unwrap();
    let verify = ["verify-mac", "--key-id", &hmac, "--algorithm", "HMAC_SHA_256", "--message", "body"];
    let by_file = [&verify[..], &["--mac-file", mac_file.to_str().unwrap(), "--query", "valid"]].concat();
    assert_eq!(kmsim(&server, &by_file).await.ok(), "true\n");
    let other =
        [&verify[..5], &["--message", "other", "--mac-file", mac_file.to_str().unwrap(), "--query", "valid"]].concat();
    assert_eq!(kmsim(&server, &other).await.ok(), "false\n");

    let signer = create_key(&server, &["--key-spec", "EC_P256", "--key-usage", "SIGN/VERIFY"]).await;
    let sign = [
        "sign",
        "--key-id",
        &signer,
        "--algorithm",
        "ECDSA_SHA_256",
        "--message-base64",
        "AAEC/w==",
        "--query",
        "signature",
    ];
    let signature = kmsim(&server, &sign).await.ok().trim().to_owned();
    let signature_file = dir.path().join("signature.der");
    std::fs::write(&signature_file, BASE64.decode(&signature).unwrap()).unwrap();
    let message_file = dir.path().join("message.bin");
    std::fs::write(&message_file, [0x00, 0x01, 0x02, 0xff]).unwrap();
    let verify = [
        "verify",
        "--key-id",
        &signer,
        "--algorithm",
        "ECDSA_SHA_256",
        "--message-file",
        message_file.to_str().unwrap(),
        "--signature-file",
        signature_file.to_str().unwrap(),
        "--query",
        "valid",
    ];
    assert_eq!(kmsim(&server, &verify).await.ok(), "true\n");
    let from_stdin = [&verify[..6], &["-", "--signature", &signature, "--query", "valid"]].concat();
    assert_eq!(kmsim_stdin(&server, &from_stdin, vec![0x00, 0x01, 0x02, 0xff]).await.ok(), "true\n");

    let both = ["decrypt", "--ciphertext-blob", "AAAA", "--ciphertext-blob-file", "x"];
    assert!(kmsim(&server, &both).await.failed().contains("cannot be used with"));
}

#[tokio::test]
async fn long_audit_work_prints_no_progress_into_a_pipe() {
    let server = TestServer::start().await;
    let key = create_key(&server, &[]).await;
    for _ in 0..5 {
        kmsim(&server, &["encrypt", "--key-id", &key, "--plaintext", "x"]).await.ok();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.jsonl");
    let export = kmsim(&server, &["audit", "export", "--out-file", file.to_str().unwrap()]).await;
    export.ok();
    assert_eq!(export.stderr, "", "{export:#?}");
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(exported.lines().filter(|line| line.contains("\"Encrypt\"")).count() >= 5, "{exported}");

    let to_stdout = kmsim(&server, &["audit", "export", "--format", "actiontrail"]).await;
    assert!(to_stdout.ok().lines().count() >= 5, "{to_stdout:#?}");
    assert_eq!(to_stdout.stderr, "", "{to_stdout:#?}");

    for args in [vec!["audit", "verify"], vec!["audit", "verify", "--file", file.to_str().unwrap()]] {
        let verified = kmsim(&server, &[&args[..], &["--output", "json"]].concat()).await;
        assert_eq!(verified.json()["valid"], true, "{verified:#?}");
        assert_eq!(verified.stderr, "", "{verified:#?}");
    }
}

#[tokio::test]
async fn audit_trails_are_listed_and_their_selectors_set() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror.jsonl");
    let trails = vec![TrailSpec { path: mirror, format: Format::Native, selectors: Selectors::default() }];
    let server = TestServer::start_config(ServerConfig { trails, ..ServerConfig::default() }).await;
    let listed = kmsim_json(&server, &["audit", "trails"]).await;
    let trail = &array(&listed, "trails")[0];
    assert_eq!(str_field(trail, "name"), "trail-1");
    assert_eq!(trail["excludeReadOnlyEvents"], false);
    let set = kmsim_json(&server, &["audit", "event-selectors", "trail-1", "--exclude-read-only-events"]).await;
    assert_eq!((&set["excludeReadOnlyEvents"], &set["excludeCryptographicEvents"]), (&json!(true), &json!(false)));
    let listed = kmsim(&server, &["audit", "trails", "--query", "trails.0.excludeReadOnlyEvents"]).await;
    assert_eq!(listed.ok(), "true\n");
    let unknown = kmsim(&server, &["audit", "event-selectors", "trail-9"]).await;
    assert!(unknown.failed().contains(" (404): "), "{unknown:#?}");
}

#[tokio::test]
async fn seed_commands_explain_themselves() {
    for command in ["apply", "check"] {
        let help = kmsim_at("http://127.0.0.1:9", &["seed", command, "--help"]).await;
        let help = help.ok();
        assert!(help.contains("Example") && help.contains("kmsim seed"), "{help}");
        assert!(help.contains("`-` reads stdin"), "{help}");
    }
}
