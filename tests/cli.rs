//! The `kmsim` command-line client, run as a real child process against an
//! in-process server: JSON and table output, error messages and exit codes,
//! plaintext from files and stdin, and what the audit trail records about it.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use kmsim::proto as pb;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How a command is told where the server is.
enum Endpoint {
    /// Neither flag nor environment variable: the built-in default.
    Default,
    /// `KMSIM_ENDPOINT=...`
    Env(String),
    /// `--endpoint ...` after the other arguments.
    Flag(String),
}

/// One invocation of the `kmsim` binary.
struct Kmsim {
    args: Vec<String>,
    endpoint: Endpoint,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
}

/// What a finished `kmsim` process left behind.
#[derive(Debug)]
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn kmsim(args: &[&str]) -> Kmsim {
    Kmsim {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        endpoint: Endpoint::Default,
        stdin: None,
        env: Vec::new(),
    }
}

impl Kmsim {
    fn env_endpoint(mut self, server: &TestServer) -> Self {
        self.endpoint = Endpoint::Env(server.endpoint());
        self
    }

    fn flag_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Endpoint::Flag(endpoint.into());
        self
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Runs the process to completion on the calling thread.
    fn run_blocking(self) -> Run {
        let mut args = self.args.clone();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kmsim"));
        // Nothing from the environment of the test run may leak into the child.
        command.env_remove("KMSIM_ENDPOINT").env_remove("KMSIM_ACCESS_KEY_ID").env_remove("RUST_LOG");
        match &self.endpoint {
            Endpoint::Default => {}
            Endpoint::Env(endpoint) => {
                command.env("KMSIM_ENDPOINT", endpoint);
            }
            Endpoint::Flag(endpoint) => args.extend(["--endpoint".to_owned(), endpoint.clone()]),
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let what = format!("kmsim {}", args.join(" "));
        command
            .args(&args)
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(bytes).unwrap_or_else(|e| panic!("{what}: writing stdin: {e}"));
            // Dropping the pipe closes it: the child sees end of input.
        }
        let output = child.wait_with_output().unwrap_or_else(|e| panic!("{what}: waiting: {e}"));
        Run {
            what,
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs the process on a blocking thread, so the in-process server keeps answering.
    async fn run(self) -> Run {
        tokio::task::spawn_blocking(move || self.run_blocking()).await.expect("the kmsim runner thread")
    }

    /// Runs, asserts success, and parses stdout as JSON.
    async fn json(self) -> Value {
        self.run().await.ok_json()
    }
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{}: failed: {self:#?}", self.what);
        assert!(!self.stderr.contains("panicked"), "{}: panicked: {self:#?}", self.what);
        &self.stdout
    }

    #[track_caller]
    fn ok_json(&self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}): {self:#?}", self.what))
    }

    /// Asserts the process failed (non-zero exit, no panic) and returns its trimmed stderr.
    #[track_caller]
    fn failed(&self) -> &str {
        assert!(self.code.is_some(), "{}: killed by a signal: {self:#?}", self.what);
        assert_ne!(self.code, Some(0), "{}: succeeded but should have failed: {self:#?}", self.what);
        assert!(!self.stderr.contains("panicked"), "{}: panicked: {self:#?}", self.what);
        assert!(!self.stderr.trim().is_empty(), "{}: failed without a message: {self:#?}", self.what);
        self.stderr.trim()
    }
}

#[track_caller]
fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("no string field {name:?} in {value:#}"))
}

#[track_caller]
fn int_field(value: &Value, name: &str) -> i64 {
    value.get(name).and_then(Value::as_i64).unwrap_or_else(|| panic!("no integer field {name:?} in {value:#}"))
}

#[track_caller]
fn events(value: &Value) -> &Vec<Value> {
    value.get("events").and_then(Value::as_array).unwrap_or_else(|| panic!("no events array in {value:#}"))
}

#[track_caller]
fn rfc3339(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// Creates a key through the CLI and returns its id.
async fn create_key_cli(server: &TestServer) -> String {
    let created = kmsim(&["key", "create", "--output", "json"]).env_endpoint(server).json().await;
    str_field(&created, "keyId").to_owned()
}

async fn key_state_cli(server: &TestServer, key_id: &str) -> Value {
    kmsim(&["key", "describe", key_id, "--output", "json"]).flag_endpoint(server.endpoint()).json().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_lives_through_create_describe_list_encrypt_and_decrypt() {
    let server = TestServer::start().await;

    let created =
        kmsim(&["key", "create", "--description", "demo", "--output", "json"]).env_endpoint(&server).json().await;
    let key_id = str_field(&created, "keyId").to_owned();
    assert!(!key_id.is_empty(), "{created:#}");
    assert_eq!(str_field(&created, "keyState"), "Enabled", "{created:#}");
    assert_eq!(str_field(&created, "keySpec"), "Aliyun_AES_256", "{created:#}");
    assert_eq!(str_field(&created, "description"), "demo", "{created:#}");
    assert!(str_field(&created, "arn").ends_with(&format!(":key/{key_id}")), "{created:#}");

    let described =
        kmsim(&["key", "describe", &key_id, "--output", "json"]).flag_endpoint(server.endpoint()).json().await;
    assert_eq!(str_field(&described, "keyId"), key_id);
    assert_eq!(str_field(&described, "keyState"), "Enabled");
    assert_eq!(str_field(&described, "keySpec"), "Aliyun_AES_256");
    assert_eq!(str_field(&described, "description"), "demo");
    assert_eq!(str_field(&described, "arn"), str_field(&created, "arn"));

    // The same key as seen by the server itself.
    let mut kms = server.kms().await;
    assert_eq!(key_state(&mut kms, &key_id).await, "Enabled");

    let listed = kmsim(&["key", "list", "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(int_field(&listed, "totalCount"), 1, "{listed:#}");
    let keys = listed.get("keys").and_then(Value::as_array).unwrap_or_else(|| panic!("no keys in {listed:#}"));
    assert_eq!(keys.len(), 1, "{listed:#}");
    assert_eq!(str_field(&keys[0], "keyId"), key_id);
    assert_eq!(str_field(&keys[0], "keyArn"), str_field(&created, "arn"));

    // `--output` is global: it may come before the command's own options.
    let sealed_json = kmsim(&[
        "encrypt",
        "--output",
        "json",
        "--key-id",
        &key_id,
        "--plaintext",
        "hello",
        "--context",
        "app=billing",
    ])
    .flag_endpoint(server.endpoint())
    .json()
    .await;
    assert_eq!(str_field(&sealed_json, "keyId"), key_id);
    assert!(!str_field(&sealed_json, "keyVersionId").is_empty(), "{sealed_json:#}");
    let blob = str_field(&sealed_json, "ciphertextBlob").to_owned();
    let blob_bytes = BASE64.decode(&blob).unwrap_or_else(|e| panic!("ciphertextBlob {blob:?} is not base64: {e}"));
    assert!(blob_bytes.len() > "hello".len(), "a blob of {} bytes", blob_bytes.len());
    assert!(!blob_bytes.windows(5).any(|w| w == b"hello"), "the plaintext shows in the blob");

    let opened = kmsim(&["decrypt", "--ciphertext-blob", &blob, "--context", "app=billing", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    assert_eq!(str_field(&opened, "plaintext"), "hello", "{opened:#}");
    assert_eq!(str_field(&opened, "plaintextBase64"), BASE64.encode("hello"), "{opened:#}");
    assert_eq!(str_field(&opened, "keyId"), key_id);

    // Encrypt's table (default) output carries a blob that decrypts too.
    let sealed = kmsim(&["encrypt", "--key-id", &key_id, "--plaintext", "hello", "--context", "app=billing"])
        .env_endpoint(&server)
        .run()
        .await;
    sealed.ok();
    let table_blob = sealed
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("ciphertextBlob"))
        .unwrap_or_else(|| panic!("no ciphertextBlob line in {:?}", sealed.stdout))
        .trim()
        .to_owned();
    let opened = kmsim(&["decrypt", "--ciphertext-blob", &table_blob, "--context", "app=billing", "--output", "json"])
        .flag_endpoint(server.endpoint())
        .json()
        .await;
    assert_eq!(str_field(&opened, "plaintext"), "hello", "{opened:#}");

    for context in [None, Some("app=payroll")] {
        let mut args = vec!["decrypt", "--ciphertext-blob", &blob, "--output", "json"];
        if let Some(context) = context {
            args.extend(["--context", context]);
        }
        let run = kmsim(&args).env_endpoint(&server).run().await;
        assert_eq!(
            run.failed(),
            "InvalidParameter (400): The specified parameter \"CiphertextBlob\" is not valid.",
            "{run:#?}"
        );
        assert!(run.stdout.is_empty(), "{run:#?}");
    }

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_key_is_refused_and_the_refusal_is_in_the_audit_trail() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server).await;

    let disabled = kmsim(&["key", "disable", &key_id, "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(str_field(&disabled, "keyId"), key_id);
    assert_eq!(str_field(&key_state_cli(&server, &key_id).await, "keyState"), "Disabled");

    let run =
        kmsim(&["encrypt", "--key-id", &key_id, "--plaintext", "refused"]).flag_endpoint(server.endpoint()).run().await;
    let stderr = run.failed();
    assert!(
        stderr.starts_with("Rejected.Disabled (409): The request was rejected because the key state is Disabled."),
        "{run:#?}"
    );
    assert!(run.stdout.is_empty(), "{run:#?}");

    let listed = kmsim(&["audit", "list", "--error-code", "Rejected.Disabled", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    let found = events(&listed);
    assert_eq!(found.len(), 1, "{listed:#}");
    let event = &found[0];
    assert_eq!(str_field(event, "eventName"), "Encrypt", "{event:#}");
    assert_eq!(str_field(event, "action"), "kms.encrypt", "{event:#}");
    assert_eq!(str_field(event, "outcome"), "Failure", "{event:#}");
    assert_eq!(str_field(event, "errorCode"), "Rejected.Disabled", "{event:#}");
    assert_eq!(str_field(event, "keyId"), key_id, "{event:#}");
    assert_eq!(str_field(event, "clientIp"), "127.0.0.1", "{event:#}");
    assert!(str_field(event, "userAgent").contains("kmsim-cli/"), "{event:#}");
    assert!(!str_field(event, "requestId").is_empty(), "{event:#}");
    rfc3339(str_field(event, "eventTime"));

    // Enabling the key again lets the same call through.
    kmsim(&["key", "enable", &key_id]).flag_endpoint(server.endpoint()).run().await.ok();
    let sealed = kmsim(&["encrypt", "--key-id", &key_id, "--plaintext", "accepted", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    assert!(!str_field(&sealed, "ciphertextBlob").is_empty());

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_key_id_is_recorded_in_the_audit_trail() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server).await;

    kmsim(&["key", "describe", &key_id, "--access-key-id", "AK123", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    // KMSIM_ACCESS_KEY_ID works like the flag.
    kmsim(&["key", "describe", &key_id, "--output", "json"])
        .flag_endpoint(server.endpoint())
        .env("KMSIM_ACCESS_KEY_ID", "AK-FROM-ENV")
        .json()
        .await;

    let listed = kmsim(&["audit", "list", "--event-name", "DescribeKey", "--output", "json"])
        .flag_endpoint(server.endpoint())
        .json()
        .await;
    let found = events(&listed);
    assert_eq!(found.len(), 2, "{listed:#}");
    // Newest first.
    assert_eq!(str_field(&found[0], "accessKeyId"), "AK-FROM-ENV", "{listed:#}");
    assert_eq!(str_field(&found[1], "accessKeyId"), "AK123", "{listed:#}");
    for event in found {
        assert_eq!(str_field(event, "keyId"), key_id, "{event:#}");
        assert_eq!(str_field(event, "outcome"), "Success", "{event:#}");
        assert!(str_field(event, "userAgent").contains("kmsim-cli/"), "{event:#}");
    }

    // A call without it records none.
    let created =
        kmsim(&["audit", "list", "--event-name", "CreateKey", "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(events(&created).len(), 1, "{created:#}");
    assert_eq!(str_field(&events(&created)[0], "accessKeyId"), "", "{created:#}");

    // The server's own record agrees.
    let mut audit = server.audit().await;
    let request = pb::ListAuditEventsRequest { event_name: "DescribeKey".to_owned(), ..Default::default() };
    let page = audit.list_audit_events(request).await.expect("list audit events").into_inner();
    let recorded: Vec<&str> = page.events.iter().map(|e| e.access_key_id.as_str()).collect();
    assert_eq!(recorded, ["AK-FROM-ENV", "AK123"], "{:#?}", page.events);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_can_be_shown_and_advanced_but_not_backwards() {
    let server = TestServer::start().await;

    let shown = kmsim(&["clock", "show", "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(int_field(&shown, "offsetSeconds"), 0, "{shown:#}");
    let before = rfc3339(str_field(&shown, "now"));
    let real_now = OffsetDateTime::now_utc();
    assert!((real_now - before).abs() < time::Duration::minutes(5), "clock shows {before}, real time is {real_now}");

    let advanced =
        kmsim(&["clock", "advance", "30d", "--output", "json"]).flag_endpoint(server.endpoint()).json().await;
    assert_eq!(int_field(&advanced, "offsetSeconds"), 2_592_000, "{advanced:#}");
    let after = rfc3339(str_field(&advanced, "now"));
    let moved = after - before;
    assert!(
        moved >= time::Duration::days(30) && moved < time::Duration::days(30) + time::Duration::minutes(5),
        "the clock moved from {before} to {after}"
    );

    for refused in ["-5d", "3w"] {
        let run = kmsim(&["clock", "advance", refused, "--output", "json"]).env_endpoint(&server).run().await;
        run.failed();
        // 2 is clap's exit code for a bad command line: nothing was sent.
        assert_eq!(run.code, Some(2), "{run:#?}");
        assert!(run.stdout.is_empty(), "{run:#?}");
    }

    let shown = kmsim(&["clock", "show", "--output", "json"]).flag_endpoint(server.endpoint()).json().await;
    assert_eq!(int_field(&shown, "offsetSeconds"), 2_592_000, "{shown:#}");
    assert!(rfc3339(str_field(&shown, "now")) >= after, "{shown:#}");

    // The server sees the same clock.
    let mut simulation = server.simulation().await;
    let clock = simulation.get_clock(pb::GetClockRequest {}).await.expect("get clock").into_inner();
    assert_eq!(clock.offset.expect("an offset").seconds, 2_592_000);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_can_be_scheduled_and_cancelled() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server).await;

    let clock = kmsim(&["clock", "show", "--output", "json"]).env_endpoint(&server).json().await;
    let now = rfc3339(str_field(&clock, "now"));

    let scheduled = kmsim(&["key", "schedule-deletion", &key_id, "--pending-window-in-days", "7", "--output", "json"])
        .flag_endpoint(server.endpoint())
        .json()
        .await;
    assert_eq!(str_field(&scheduled, "keyId"), key_id, "{scheduled:#}");
    let delete_date = str_field(&scheduled, "deleteDate").to_owned();
    let in_seven_days = rfc3339(&delete_date) - now;
    assert!(
        (in_seven_days - time::Duration::days(7)).abs() < time::Duration::minutes(5),
        "deleteDate {delete_date} is not 7 days after {now}"
    );

    let described = key_state_cli(&server, &key_id).await;
    assert_eq!(str_field(&described, "keyState"), "PendingDeletion", "{described:#}");
    assert_eq!(str_field(&described, "deleteDate"), delete_date, "{described:#}");

    let cancelled = kmsim(&["key", "cancel-deletion", &key_id, "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(str_field(&cancelled, "keyId"), key_id, "{cancelled:#}");
    let described = key_state_cli(&server, &key_id).await;
    assert_eq!(str_field(&described, "keyState"), "Enabled", "{described:#}");

    let run = kmsim(&["key", "schedule-deletion", &key_id, "--pending-window-in-days", "3", "--output", "json"])
        .env_endpoint(&server)
        .run()
        .await;
    let stderr = run.failed();
    assert!(stderr.starts_with("InvalidParameter (400)"), "{run:#?}");
    assert!(stderr.contains("PendingWindowInDays"), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    let described = key_state_cli(&server, &key_id).await;
    assert_eq!(str_field(&described, "keyState"), "Enabled", "{described:#}");

    server.stop().await;
}

/// Bytes that are not UTF-8, with a NUL, a newline and a trailing CR.
const BINARY: &[u8] = &[0x00, 0xff, 0xfe, 0xc3, 0x28, b'\n', 0x80, b'k', b'm', b's', 0xa0, 0xa1, b'\r'];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_plaintext_from_a_file_and_from_stdin_round_trips() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server).await;

    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(BINARY).expect("write the plaintext file");
    file.flush().unwrap();
    let path = file.path().to_str().expect("a UTF-8 temporary path").to_owned();

    let from_file = kmsim(&["encrypt", "--key-id", &key_id, "--plaintext-file", &path, "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    let from_stdin = kmsim(&["encrypt", "--key-id", &key_id, "--plaintext-file", "-", "--output", "json"])
        .flag_endpoint(server.endpoint())
        .stdin(BINARY)
        .json()
        .await;
    let blobs =
        [str_field(&from_file, "ciphertextBlob").to_owned(), str_field(&from_stdin, "ciphertextBlob").to_owned()];
    assert_ne!(blobs[0], blobs[1], "two encryptions gave the same blob");

    for blob in &blobs {
        let opened =
            kmsim(&["decrypt", "--ciphertext-blob", blob, "--output", "json"]).env_endpoint(&server).json().await;
        assert_eq!(str_field(&opened, "plaintextBase64"), BASE64.encode(BINARY), "{opened:#}");
        assert!(opened.get("plaintext").is_none(), "non-UTF-8 plaintext shown as text: {opened:#}");
        assert_eq!(str_field(&opened, "keyId"), key_id);
    }

    // The blob can come from stdin too.
    let opened = kmsim(&["decrypt", "--ciphertext-blob", "-", "--output", "json"])
        .flag_endpoint(server.endpoint())
        .stdin(format!("{}\n", blobs[1]).as_bytes())
        .json()
        .await;
    assert_eq!(str_field(&opened, "plaintextBase64"), BASE64.encode(BINARY), "{opened:#}");

    // An empty stdin is an empty plaintext, which the server refuses.
    let run =
        kmsim(&["encrypt", "--key-id", &key_id, "--plaintext-file", "-"]).env_endpoint(&server).stdin(b"").run().await;
    assert!(run.failed().contains("Plaintext"), "{run:#?}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_output_is_the_default() {
    let server = TestServer::start().await;
    let key_id = create_key_cli(&server).await;

    let run = kmsim(&["key", "describe", &key_id]).env_endpoint(&server).run().await;
    let stdout = run.ok();
    assert!(serde_json::from_str::<Value>(stdout).is_err(), "the default output is JSON: {stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("keyState") && line.trim_end().ends_with("Enabled")),
        "no `keyState ... Enabled` line in:\n{stdout}"
    );
    assert!(
        stdout.lines().any(|line| line.starts_with("keyId") && line.trim_end().ends_with(&key_id)),
        "no `keyId ... {key_id}` line in:\n{stdout}"
    );

    let run = kmsim(&["key", "describe", &key_id, "--output", "table"]).flag_endpoint(server.endpoint()).run().await;
    assert_eq!(run.ok(), stdout, "--output table differs from the default");

    server.stop().await;
}

#[test]
fn help_shows_examples() {
    for args in [&["encrypt", "--help"][..], &["key", "create", "--help"], &["clock", "advance", "--help"]] {
        let run = kmsim(args).run_blocking();
        let stdout = run.ok();
        assert!(stdout.contains("Example"), "{}: no example in:\n{stdout}", run.what);
        assert!(stdout.contains(&format!("kmsim {}", args[..args.len() - 1].join(" "))), "{run:#?}");
    }
}

/// An address on which nothing listens: a port the system just handed out, its listener closed.
fn closed_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

#[test]
fn an_unreachable_endpoint_says_nothing_listens_and_how_to_start_a_server() {
    let addr = closed_address();
    for endpoint in [format!("http://{addr}"), addr.to_string()] {
        let run = kmsim(&["key", "list", "--output", "json"]).flag_endpoint(endpoint).run_blocking();
        let stderr = run.failed();
        assert!(stderr.contains(&format!("nothing is listening on {addr}")), "{run:#?}");
        assert!(stderr.contains("start a server with `kmsim serve`"), "{run:#?}");
        assert!(run.stdout.is_empty(), "{run:#?}");
    }

    let run = kmsim(&["clock", "show"]).flag_endpoint("not a url").run_blocking();
    assert!(run.failed().contains("invalid endpoint \"not a url\""), "{run:#?}");
}

/// `kmsim serve` prints a bare `IP:PORT`, which is what people paste into `--endpoint` or `KMSIM_ENDPOINT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_host_and_port_is_an_endpoint() {
    let server = TestServer::start().await;
    let bare = server.addr.to_string();
    let created = kmsim(&["key", "create", "--query", "keyId"]).flag_endpoint(bare.clone()).run().await;
    let key_id = created.ok().trim().to_owned();
    let described = kmsim(&["key", "describe", &key_id, "--output", "json"]).env("KMSIM_ENDPOINT", &bare).json().await;
    assert_eq!(str_field(&described, "keyId"), key_id);
    server.stop().await;
}

/// `kmsim key list` is where a user looks first: each key's state, spec, usage, aliases and description, without
/// a describe per key. The table leaves out the ARN, which the JSON keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_list_shows_each_keys_state_spec_usage_and_aliases() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let request = pb::CreateKeyRequest { description: "payments".into(), ..Default::default() };
    let payments = kms.create_key(request).await.unwrap().into_inner().key_metadata.unwrap().key_id;
    kms.create_alias(pb::CreateAliasRequest { alias_name: "alias/pay".into(), key_id: payments.clone() })
        .await
        .unwrap();
    kms.create_alias(pb::CreateAliasRequest { alias_name: "alias/billing".into(), key_id: payments.clone() })
        .await
        .unwrap();
    let disabled = create_key(&mut kms, "").await;
    kms.disable_key(pb::DisableKeyRequest { key_id: disabled.clone() }).await.unwrap();
    let deleted = create_key(&mut kms, "").await;
    let request = pb::ScheduleKeyDeletionRequest { key_id: deleted.clone(), pending_window_in_days: 7 };
    kms.schedule_key_deletion(request).await.unwrap();
    let signer = create_key(&mut kms, "EC_P256").await;

    let run = kmsim(&["key", "list"]).env_endpoint(&server).run().await;
    let table: Vec<Vec<&str>> = run.ok().lines().map(|line| line.split_whitespace().collect()).collect();
    let heading = ["keyId", "keyState", "keySpec", "keyUsage", "aliases", "description"];
    let at = table.iter().position(|row| row[..] == heading).unwrap_or_else(|| panic!("no heading: {run:#?}"));
    let rows = &table[at + 1..];
    assert_eq!(
        rows,
        [
            vec![
                payments.as_str(),
                "Enabled",
                "Aliyun_AES_256",
                "ENCRYPT/DECRYPT",
                "alias/billing,alias/pay",
                "payments"
            ],
            vec![disabled.as_str(), "Disabled", "Aliyun_AES_256", "ENCRYPT/DECRYPT"],
            vec![deleted.as_str(), "PendingDeletion", "Aliyun_AES_256", "ENCRYPT/DECRYPT"],
            vec![signer.as_str(), "Enabled", "EC_P256", "SIGN/VERIFY"],
        ],
        "{run:#?}"
    );
    assert!(!run.stdout.contains("acs:kms:"), "no ARN column: {run:#?}");

    let listed = kmsim(&["key", "list", "--output", "json"]).env_endpoint(&server).json().await;
    let first = &listed["keys"][0];
    assert_eq!(str_field(first, "keyState"), "Enabled", "{listed:#}");
    assert_eq!(first["aliases"], serde_json::json!(["alias/billing", "alias/pay"]), "{listed:#}");
    assert!(str_field(first, "keyArn").ends_with(&format!(":key/{payments}")), "{listed:#}");
    assert_eq!(str_field(&listed["keys"][2], "keyState"), "PendingDeletion", "{listed:#}");
    server.stop().await;
}

/// `kmsim key list | head -1` used to panic with "Broken pipe" (exit 101) whenever `head` was gone before
/// kmsim wrote. A reader that leaves early took what it wanted: every kind of output (a table, JSON, a
/// `--query` field, a raw value, export and stream lines, clap's help) ends quietly with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_every_command_quietly() {
    use common::cli::Streaming;
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let mut key_id = String::new();
    for _ in 0..200 {
        key_id = create_key(&mut kms, "").await;
    }
    let mut secrets = server.secrets().await;
    let request = pb::CreateSecretRequest {
        secret_name: "big".into(),
        secret_data: "x".repeat(30_000),
        version_id: "v1".into(),
        ..Default::default()
    };
    secrets.create_secret(request).await.expect("create secret");
    let endpoint = server.endpoint();

    // Streams whose first line waits for something to happen; first, so that each opening call is the first.
    let streams: [(&[&str], &str); 2] = [
        (&["audit", "tail", "--output", "json", "--count", "1"], "TailAuditEvents"),
        (&["events", "watch", "--count", "1"], "WatchSystemEvents"),
    ];
    for (args, opening) in streams {
        let mut stream = Streaming::start_with_closed_stdout(&endpoint, args);
        stream.connected(&server, opening).await;
        if opening == "WatchSystemEvents" {
            let request = pb::ScheduleKeyDeletionRequest { key_id: key_id.clone(), pending_window_in_days: 7 };
            kms.schedule_key_deletion(request).await.expect("schedule deletion: an event");
        } else {
            create_key(&mut kms, "").await;
        }
        let run = stream.finish().await;
        assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:#?}");
    }

    let outputs: [&[&str]; 12] = [
        &["key", "list", "--page-size", "100"],
        &["key", "list", "--page-size", "100", "--output", "json"],
        &["key", "list", "--query", "keys.0.keyId"],
        &["audit", "list", "--page-size", "1000"],
        &["audit", "query", "*", "--page-size", "1000", "--output", "json"],
        &["audit", "export"],
        &["audit", "export", "--format", "actiontrail"],
        &["events", "list"],
        &["secret", "get", "big", "--value-only"],
        &["audit", "tail"],
        &["--help"],
        &["key", "list", "--help"],
    ];
    for args in outputs {
        let run = Streaming::start_with_closed_stdout(&endpoint, args).finish().await;
        assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:#?}");
    }
    server.stop().await;
}

async fn create_spec_cli(server: &TestServer, spec: &str, usage: &str) -> String {
    let mut args = vec!["key", "create", "--key-spec", spec, "--output", "json"];
    if !usage.is_empty() {
        args.extend(["--key-usage", usage]);
    }
    let created = kmsim(&args).env_endpoint(server).json().await;
    str_field(&created, "keyId").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_and_mac_commands_round_trip() {
    let server = TestServer::start().await;

    let signer = create_spec_cli(&server, "EC_P256", "").await;
    let signed = kmsim(&[
        "sign",
        "--key-id",
        &signer,
        "--algorithm",
        "ECDSA_SHA_256",
        "--message-file",
        "-",
        "--output",
        "json",
    ])
    .stdin(b"contract v1")
    .env_endpoint(&server)
    .json()
    .await;
    let signature = str_field(&signed, "signature").to_owned();
    let verify = |message: &'static str| {
        kmsim(&[
            "verify",
            "--key-id",
            &signer,
            "--algorithm",
            "ECDSA_SHA_256",
            "--message",
            message,
            "--signature",
            &signature,
            "--output",
            "json",
        ])
        .env_endpoint(&server)
    };
    assert_eq!(verify("contract v1").json().await["valid"], Value::Bool(true));
    assert_eq!(verify("contract v2").json().await["valid"], Value::Bool(false));
    // The digest form: SHA-256 of the message, given in base64.
    let digest = BASE64.encode(<sha2::Sha256 as sha2::Digest>::digest(b"contract v1"));
    let by_digest = kmsim(&[
        "verify",
        "--key-id",
        &signer,
        "--algorithm",
        "ECDSA_SHA_256",
        "--digest-base64",
        &digest,
        "--signature",
        &signature,
        "--output",
        "json",
    ])
    .env_endpoint(&server)
    .json()
    .await;
    assert_eq!(by_digest["valid"], Value::Bool(true));

    let pem = kmsim(&["public-key", "--key-id", &signer]).env_endpoint(&server).run().await;
    let pem = pem.ok();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.trim_end().ends_with("-----END PUBLIC KEY-----"),
        "{pem}"
    );

    let hmac = create_spec_cli(&server, "HMAC_256", "").await;
    let mac =
        kmsim(&["mac", "--key-id", &hmac, "--algorithm", "HMAC_SHA_256", "--message", "body", "--output", "json"])
            .env_endpoint(&server)
            .json()
            .await;
    let mac = str_field(&mac, "mac").to_owned();
    assert_eq!(BASE64.decode(&mac).unwrap().len(), 32);
    let checked = kmsim(&[
        "verify-mac",
        "--key-id",
        &hmac,
        "--algorithm",
        "HMAC_SHA_256",
        "--message-base64",
        &BASE64.encode(b"body"),
        "--mac",
        &mac,
        "--output",
        "json",
    ])
    .env_endpoint(&server)
    .json()
    .await;
    assert_eq!(checked["valid"], Value::Bool(true));

    let rsa = create_spec_cli(&server, "RSA_2048", "ENCRYPT/DECRYPT").await;
    let sealed = kmsim(&[
        "asym-encrypt",
        "--key-id",
        &rsa,
        "--algorithm",
        "RSAES_OAEP_SHA_256",
        "--plaintext",
        "pin 1234",
        "--output",
        "json",
    ])
    .env_endpoint(&server)
    .json()
    .await;
    let blob = str_field(&sealed, "ciphertextBlob").to_owned();
    let opened = kmsim(&[
        "asym-decrypt",
        "--key-id",
        &rsa,
        "--algorithm",
        "RSAES_OAEP_SHA_256",
        "--ciphertext-blob",
        "-",
        "--output",
        "json",
    ])
    .stdin(blob.as_bytes())
    .env_endpoint(&server)
    .json()
    .await;
    assert_eq!(str_field(&opened, "plaintext"), "pin 1234");

    let refused = kmsim(&["sign", "--key-id", &rsa, "--algorithm", "RSA_PSS_SHA_256", "--message", "m"])
        .env_endpoint(&server)
        .run()
        .await;
    assert!(refused.failed().starts_with("Rejected.UnsupportedOperation (400):"), "{refused:#?}");
    for command in ["sign", "verify", "public-key", "mac", "verify-mac", "asym-encrypt", "asym-decrypt"] {
        let help = kmsim(&[command, "--help"]).run().await;
        assert!(help.ok().contains("Example"), "{command} --help");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_import_commands() {
    let server = TestServer::start().await;
    let key = create_key_cli(&server).await;
    let rotated = kmsim(&["key", "rotate", &key, "--output", "json"]).env_endpoint(&server).json().await;
    let versions = kmsim(&["key", "versions", &key, "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(int_field(&versions, "totalCount"), 2);
    assert_eq!(versions["keyVersions"][1]["keyVersionId"], rotated["keyVersionId"]);
    let policy = kmsim(&["key", "rotation-policy", &key, "--enable", "--interval", "30d", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    assert_eq!(
        (str_field(&policy, "automaticRotation"), str_field(&policy, "rotationInterval")),
        ("Enabled", "2592000s")
    );
    let refused =
        kmsim(&["key", "rotation-policy", &key, "--enable", "--interval", "3d"]).env_endpoint(&server).run().await;
    assert!(refused.failed().starts_with("InvalidParameter (400)"), "{refused:#?}");

    let external =
        kmsim(&["key", "create", "--origin", "EXTERNAL", "--output", "json"]).env_endpoint(&server).json().await;
    let external = str_field(&external, "keyId").to_owned();
    let material = BASE64.encode([5u8; 32]);
    let imported = kmsim(&["import", "--key-id", &external, "--material-base64", &material, "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    assert_eq!(str_field(&imported, "keyState"), "Enabled");
    let sealed = kmsim(&["encrypt", "--key-id", &external, "--plaintext", "byok", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    let blob = str_field(&sealed, "ciphertextBlob").to_owned();
    kmsim(&["key", "delete-material", &external]).env_endpoint(&server).run().await.ok();
    assert_eq!(str_field(&key_state_cli(&server, &external).await, "keyState"), "PendingImport");
    let refused = kmsim(&["decrypt", "--ciphertext-blob", &blob]).env_endpoint(&server).run().await;
    assert!(refused.failed().starts_with("Rejected.PendingImport (409)"), "{refused:#?}");
    kmsim(&["import", "--key-id", &external, "--material-file", "-"])
        .stdin(&[5u8; 32])
        .env_endpoint(&server)
        .run()
        .await
        .ok();
    let opened = kmsim(&["decrypt", "--ciphertext-blob", &blob, "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(str_field(&opened, "plaintext"), "byok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_data_key_commands() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let server = TestServer::start().await;
    let private = rsa::RsaPrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let public_file = dir.path().join("mine.pub.pem");
    std::fs::write(&public_file, public_pem).unwrap();
    let public_file = public_file.to_str().unwrap();
    let unwrap = |b64: &str| private.decrypt(rsa::Oaep::<sha2::Sha256>::new(), &BASE64.decode(b64).unwrap()).unwrap();

    let key = kmsim(&["key", "create", "--exportable", "--output", "json"]).env_endpoint(&server).json().await;
    assert_eq!(key["exportable"], Value::Bool(true));
    let key = str_field(&key, "keyId").to_owned();
    let exported = kmsim(&[
        "export",
        "--key-id",
        &key,
        "--public-key-file",
        public_file,
        "--wrapping-algorithm",
        "RSAES_OAEP_SHA_256",
        "--output",
        "json",
    ])
    .env_endpoint(&server)
    .json()
    .await;
    assert_eq!(unwrap(str_field(&exported, "exportBlob")).len(), 32);

    let generated = kmsim(&["data-key", "generate", "--key-id", &key, "--context", "app=x", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    let blob = str_field(&generated, "ciphertextBlob").to_owned();
    let plaintext = BASE64.decode(str_field(&generated, "plaintextBase64")).unwrap();
    let rewrapped = kmsim(&[
        "data-key",
        "export",
        "--ciphertext-blob",
        &blob,
        "--context",
        "app=x",
        "--public-key-file",
        public_file,
        "--wrapping-algorithm",
        "RSAES_OAEP_SHA_256",
        "--output",
        "json",
    ])
    .env_endpoint(&server)
    .json()
    .await;
    assert_eq!(unwrap(str_field(&rewrapped, "exportBlob")), plaintext);
    let without = kmsim(&["data-key", "generate", "--key-id", &key, "--without-plaintext", "--output", "json"])
        .env_endpoint(&server)
        .json()
        .await;
    assert!(without.get("plaintextBase64").is_none());

    let plain = create_key_cli(&server).await;
    let refused =
        kmsim(&["export", "--key-id", &plain, "--public-key-file", public_file]).env_endpoint(&server).run().await;
    assert!(refused.failed().starts_with("Rejected.UnsupportedOperation (400)"), "{refused:#?}");
    server.stop().await;
}
