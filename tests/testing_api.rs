//! `kmsim::testing` as another crate's tests use it, and the documented way to
//! run the binary from any language's tests (the shell example of
//! docs/testing.md, run as written).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kmsim::proto::{CreateKeyRequest, DecryptRequest, DescribeKeyRequest, EncryptRequest};
use kmsim::testing::{Error, KmsClient, Kmsim};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn create_key(kms: &mut KmsClient) -> Result<String, tonic::Status> {
    let created = kms.create_key(CreateKeyRequest::default()).await?.into_inner();
    Ok(created.key_metadata.expect("CreateKey returns metadata").key_id)
}

async fn round_trip(kms: &mut KmsClient, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let request = EncryptRequest { key_id: key_id.to_owned(), plaintext: plaintext.to_vec(), ..Default::default() };
    let sealed = kms.encrypt(request).await?.into_inner().ciphertext_blob;
    let request = DecryptRequest { ciphertext_blob: sealed, ..Default::default() };
    Ok(kms.decrypt(request).await?.into_inner().plaintext)
}

#[tokio::test]
async fn a_started_server_encrypts_and_decrypts_and_shuts_down() -> TestResult {
    let server = Kmsim::start().await?;
    assert!(server.addr().ip().is_loopback());
    assert_ne!(server.addr().port(), 0);
    assert_eq!(server.endpoint(), format!("http://{}", server.addr()));
    assert_eq!(server.region(), "cn-hangzhou");

    let mut kms = server.kms();
    let key_id = create_key(&mut kms).await?;
    assert_eq!(round_trip(&mut kms, &key_id, b"card 4111").await?, b"card 4111");

    // The call was audited, and the other clients reach the same server.
    let request = kmsim::proto::ListAuditEventsRequest { page_size: 100, ..Default::default() };
    let events = server.audit().list_audit_events(request).await?.into_inner().events;
    assert!(events.iter().any(|e| e.event_name == "Encrypt"), "an Encrypt record among {events:?}");

    // Shutdown answers once the server has stopped, even with a client still held.
    let addr = server.addr();
    server.shutdown().await?;
    assert!(TcpListener::bind(addr).is_ok(), "the port of a stopped server is free");
    Ok(())
}

#[tokio::test]
async fn two_servers_run_side_by_side_and_share_nothing() -> TestResult {
    let (one, two) = tokio::try_join!(Kmsim::start(), Kmsim::start())?;
    assert_ne!(one.addr(), two.addr());

    let key_id = create_key(&mut one.kms()).await?;
    let request = DescribeKeyRequest { key_id: key_id.clone() };
    let missing = two.kms().describe_key(request).await.expect_err("a key of one server is unknown to the other");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");

    let request = DescribeKeyRequest { key_id };
    assert!(one.kms().describe_key(request).await.is_ok());
    tokio::try_join!(one.shutdown(), two.shutdown())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_stops_it_and_releases_its_port() -> TestResult {
    let server = Kmsim::start().await?;
    let addr = server.addr();
    let mut kms = server.kms();
    create_key(&mut kms).await?;
    assert!(TcpListener::bind(addr).is_err(), "a running server holds its port");

    drop(kms);
    drop(server);
    // The server stops in the background; its listener closes once it has stopped accepting.
    let released = async {
        while TcpListener::bind(addr).is_err() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), released)
        .await
        .map_err(|_| format!("{addr} still bound 30 s after the server was dropped"))?;
    Ok(())
}

#[tokio::test]
async fn the_builder_sets_region_account_clock_and_user_agent() -> TestResult {
    let server = Kmsim::builder()
        .region("cn-shanghai")
        .account_id("1234567890123456")
        .clock_start("2031-05-01T00:00:00Z")
        .user_agent("payments-tests/2.0")
        .start()
        .await?;
    assert_eq!((server.region(), server.account_id()), ("cn-shanghai", "1234567890123456"));

    let created = server.kms().create_key(CreateKeyRequest::default()).await?.into_inner();
    let metadata = created.key_metadata.expect("metadata");
    assert_eq!(metadata.arn, format!("acs:kms:cn-shanghai:1234567890123456:key/{}", metadata.key_id));

    let start = kmsim::clock::SimTime::parse_rfc3339("2031-05-01T00:00:00Z").expect("an instant");
    let now = server.now().await?;
    assert!(now >= start, "the clock starts at --clock-start: {}", now.to_rfc3339());
    let later = server.advance_clock(Duration::from_secs(86_400)).await?;
    assert!(later >= now.plus_days(1), "{} is a day after {}", later.to_rfc3339(), now.to_rfc3339());

    let request = kmsim::proto::ListAuditEventsRequest { page_size: 100, ..Default::default() };
    let events = server.audit().list_audit_events(request).await?.into_inner().events;
    let create = events.iter().find(|e| e.event_name == "CreateKey").expect("the CreateKey record");
    assert!(create.user_agent.starts_with("payments-tests/2.0"), "user agent {:?}", create.user_agent);
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_data_dir_outlives_the_server() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = Kmsim::builder().data_dir(dir.path()).start().await?;
    let key_id = create_key(&mut server.kms()).await?;
    server.shutdown().await?;

    let server = Kmsim::builder().data_dir(dir.path()).start().await?;
    let described = server.kms().describe_key(DescribeKeyRequest { key_id: key_id.clone() }).await?.into_inner();
    assert_eq!(described.key_metadata.expect("metadata").key_id, key_id);
    server.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_errors_not_panics() {
    let missing = Kmsim::builder().seed_file("/nonexistent/kmsim-seed.yaml").start().await;
    let Err(Error::SeedFile { path, .. }) = &missing else { panic!("a missing seed file: {missing:?}") };
    assert_eq!(path, Path::new("/nonexistent/kmsim-seed.yaml"));
    assert!(missing.unwrap_err().to_string().contains("/nonexistent/kmsim-seed.yaml"));

    let region = Kmsim::builder().region("Hangzhou").start().await;
    assert!(matches!(region, Err(Error::Start(_))), "a bad region: {region:?}");

    let seed = Kmsim::builder().seed_yaml("keys:\n  - spec: Aliyun_AES_999\n").start().await;
    assert!(matches!(seed, Err(Error::Start(_))), "a bad seed: {seed:?}");

    let clock = Kmsim::builder().clock_start("tomorrow").start().await;
    assert!(matches!(clock, Err(Error::Config(_))), "a bad clock start: {clock:?}");
}

/// The seed's key, with its fixed id and alias.
const SEED: &str = "\
keys:
  - id: 5e7b3a4c-1d2f-4a6b-8c9d-0e1f2a3b4c5d
    spec: Aliyun_AES_256
    aliases: [alias/payments]
";

// NOTE: depends on the server applying `ServerConfig.seed` before it serves (the seed
// implementation, src/engine/seed.rs); without it the key is not found.
#[tokio::test]
async fn a_seed_file_creates_its_key_with_the_fixed_id_before_serving() -> TestResult {
    let dir = tempfile::tempdir()?;
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED)?;
    let server = Kmsim::builder().seed_file(&seed).start().await?;
    let mut kms = server.kms();

    let id = "5e7b3a4c-1d2f-4a6b-8c9d-0e1f2a3b4c5d";
    let described = kms.describe_key(DescribeKeyRequest { key_id: id.to_owned() }).await?.into_inner();
    assert_eq!(described.key_metadata.expect("metadata").key_id, id);
    let by_alias = kms.describe_key(DescribeKeyRequest { key_id: "alias/payments".to_owned() }).await?.into_inner();
    assert_eq!(by_alias.key_metadata.expect("metadata").key_id, id);
    assert_eq!(round_trip(&mut kms, "alias/payments", b"seeded").await?, b"seeded");
    server.shutdown().await?;
    Ok(())
}

/// The Rust example of docs/testing.md, verbatim (checked by `the_documented_rust_example_is_this_one`).
// NOTE: its test depends on the server applying `ServerConfig.seed` before it serves (the
// seed implementation, src/engine/seed.rs); without it `alias/payments` is not found.
mod documented_example {
    use kmsim::proto::{DecryptRequest, DescribeKeyRequest, EncryptRequest};
    use kmsim::testing::Kmsim;

    /// A key with a fixed id and an alias.
    const SEED: &str = "
keys:
  - id: 5e7b3a4c-1d2f-4a6b-8c9d-0e1f2a3b4c5d
    spec: Aliyun_AES_256
    aliases: [alias/payments]
";

    #[tokio::test]
    async fn payments_are_sealed_under_the_payments_key() -> Result<(), Box<dyn std::error::Error>> {
        let kms_server = Kmsim::builder()
            .seed_yaml(SEED) // or .seed_file("tests/fixtures/kms-seed.yaml"), relative to the crate root
            .region("cn-hangzhou")
            .start()
            .await?;
        let mut kms = kms_server.kms();

        // The seeded key, by its alias.
        let request = DescribeKeyRequest { key_id: "alias/payments".into() };
        let key = kms.describe_key(request).await?.into_inner().key_metadata.ok_or("no metadata")?;
        assert_eq!(key.key_id, "5e7b3a4c-1d2f-4a6b-8c9d-0e1f2a3b4c5d");

        // The code under test would take kms_server.endpoint() (http://127.0.0.1:PORT) or .channel().
        let plaintext = b"card 4111".to_vec();
        let request = EncryptRequest { key_id: "alias/payments".into(), plaintext, ..Default::default() };
        let sealed = kms.encrypt(request).await?.into_inner().ciphertext_blob;
        let request = DecryptRequest { ciphertext_blob: sealed, ..Default::default() };
        assert_eq!(kms.decrypt(request).await?.into_inner().plaintext, b"card 4111");

        kms_server.shutdown().await?; // or let it drop
        Ok(())
    }
}

/// The lines of the ```LANG block that follows `marker` in docs/testing.md.
fn documented_block(marker: &str, lang: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/testing.md");
    let doc = std::fs::read_to_string(&path).expect("docs/testing.md");
    let after = &doc[doc.find(marker).unwrap_or_else(|| panic!("{marker} in docs/testing.md")) + marker.len()..];
    let fence = format!("```{lang}\n");
    let block = after.trim_start().strip_prefix(&fence).unwrap_or_else(|| panic!("a {fence} block after {marker}"));
    block[..block.find("\n```").expect("the end of the block")].to_owned()
}

#[test]
fn the_documented_rust_example_is_this_one() {
    let block = documented_block("<!-- tests/testing_api.rs holds the next block verbatim and runs it -->", "rust");
    fn trimmed(text: &str) -> Vec<&str> {
        text.lines().map(str::trim).collect()
    }
    let (documented, here) = (trimmed(&block), trimmed(include_str!("testing_api.rs")));
    assert!(
        here.windows(documented.len()).any(|window| window == documented.as_slice()),
        "the Rust example of docs/testing.md differs from mod documented_example here; copy it over"
    );
}

#[test]
fn the_documented_shell_example_runs() {
    let script = documented_block("<!-- tests/testing_api.rs runs the next block -->", "sh");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kmsim")).parent().expect("the binary's directory").to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("a PATH");
    let mut command = Command::new("sh");
    command.arg("-c").arg(&script).env("PATH", path).env("RUST_LOG", "warn");
    // The user's own kmsim settings must not leak into the example.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KMSIM_") {
            command.env_remove(name);
        }
    }
    let child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sh runs");
    // Waited for on a thread of its own, so a hung example fails the test instead of hanging it.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("the shell example finishes within 120 s")
        .expect("the shell example runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("kmsim at http://127.0.0.1:"), "stdout:\n{stdout}");
    assert!(stdout.contains("round trip ok"), "stdout:\n{stdout}");
}
