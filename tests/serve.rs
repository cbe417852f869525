//! The server as the README starts it: health, reflection and graceful shutdown.

mod common;

use common::process::ServerProcess;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as ServerReflectionClientV1Alpha;
use tonic_reflection::pb::{v1, v1alpha};

const KMSIM_SERVICES: [&str; 4] =
    ["kmsim.v1.KeyManagementService", "kmsim.v1.AuditService", "kmsim.v1.SimulationService", "grpc.health.v1.Health"];

#[tokio::test]
async fn the_readme_server_answers_health_and_reflection_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // The README's `cargo run --release -- serve`, on a free port and a private data dir.
    let server = ServerProcess::spawn(&["--listen", "127.0.0.1:0", "--data-dir", dir.path().to_str().unwrap()]);
    let channel = server.channel().await;

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "kmsim.v1.KeyManagementService"] {
        let request = tonic_health::pb::HealthCheckRequest { service: service.into() };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "health of {service:?}");
    }

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let mut answers = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("v1 reflection did not list services");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in KMSIM_SERVICES {
        assert!(names.iter().any(|n| n == service), "v1 reflection lists {service}: {names:?}");
    }
    // Close the open reflection streams, so the shutdown below has nothing to wait for.
    drop((answers, reflection));

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClientV1Alpha::new(channel.clone());
    let mut answers = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("v1alpha reflection did not list services");
    };
    assert!(list.service.iter().any(|s| s.name == "kmsim.v1.KeyManagementService"));
    drop((answers, reflection, health));

    // Wait off the runtime, so the client side can still answer the server's GOAWAY.
    let status = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "SIGTERM is a graceful shutdown: {status:?}");
}

#[test]
fn a_bad_account_id_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["serve", "--in-memory", "--listen", "127.0.0.1:0", "--account-id", "12345"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("16 digits"));
}

/// The permission bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

#[track_caller]
fn assert_mode(path: &std::path::Path, expected: u32) {
    assert_eq!(mode(path), expected, "{} is {:04o}, not {expected:04o}", path.display(), mode(path));
}

/// Writes through `server` so that SQLite has its log and shared memory beside the database.
async fn write_something(server: &ServerProcess) {
    let mut kms = kmsim::proto::key_management_service_client::KeyManagementServiceClient::new(server.channel().await);
    let key = kms.create_key(kmsim::proto::CreateKeyRequest::default()).await.expect("create key");
    let key_id = key.into_inner().key_metadata.expect("metadata").key_id;
    let request = kmsim::proto::EncryptRequest { key_id, plaintext: b"private".to_vec(), ..Default::default() };
    kms.encrypt(request).await.expect("encrypt");
}

/// Under the usual umask 022 a data dir would be 0755 and its files 0644, yet it holds the audit signing key, key
/// material and AccessKey secrets: kmsim makes the dir (and parents it creates) 0700 and every file 0600,
/// including the WAL and shared memory that SQLite creates itself, and the audit mirror files.
#[tokio::test]
async fn a_new_data_dir_and_every_file_in_it_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("parent/data");
    let trail = data.join("audit.jsonl");
    let args =
        ["--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap(), "--audit-file", trail.to_str().unwrap()];
    let server = ServerProcess::spawn_with_umask("022", &args);
    write_something(&server).await;

    assert_mode(&dir.path().join("parent"), 0o700);
    assert_mode(&data, 0o700);
    for file in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm", "audit.jsonl"] {
        assert_mode(&data.join(file), 0o600);
    }
    let status = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "{status:?}");
    for entry in std::fs::read_dir(&data).unwrap() {
        assert_mode(&entry.unwrap().path(), 0o600);
    }
}

/// The scratch dirs of in-memory stores in `temp`.
fn scratch_dirs(temp: &std::path::Path) -> Vec<std::path::PathBuf> {
    let entries = std::fs::read_dir(temp).unwrap().map(|entry| entry.unwrap().path());
    entries.filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("kmsim-in-memory-")).collect()
}

/// `--in-memory` leaves the user nothing to clean up: the store is in a private scratch dir under `$TMPDIR`
/// (so that reads get a connection of their own), which is gone once the server stops; one that a SIGKILL left
/// behind is removed by the next in-memory server to start.
#[tokio::test]
async fn an_in_memory_server_leaves_nothing_behind_even_when_killed() {
    let temp = tempfile::tempdir().unwrap();
    let args = ["--listen", "127.0.0.1:0", "--in-memory"];
    let killed = ServerProcess::spawn_with_temp_dir(temp.path(), &args);
    write_something(&killed).await;
    let [scratch] = &scratch_dirs(temp.path())[..] else { panic!("one scratch dir: {:?}", scratch_dirs(temp.path())) };
    assert_mode(scratch, 0o700);
    for file in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm"] {
        assert_mode(&scratch.join(file), 0o600);
    }
    let scratch = scratch.clone();
    tokio::task::spawn_blocking(move || killed.signal_and_wait("KILL")).await.unwrap();
    assert!(scratch.exists(), "a killed server cannot remove its scratch dir");

    let next = ServerProcess::spawn_with_temp_dir(temp.path(), &args);
    write_something(&next).await;
    let left = scratch_dirs(temp.path());
    assert!(left.len() == 1 && left[0] != scratch, "the next server removed the killed one's: {left:?}");
    let status = tokio::task::spawn_blocking(move || next.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(scratch_dirs(temp.path()), Vec::<std::path::PathBuf>::new(), "a stopped server removes its own");
}

/// A data dir that holds something and that the group or others can reach (an older kmsim's, under umask 022) is
/// refused, naming the dir, its mode and the fix, unless the user says to start anyway; its files are made private
/// either way. An empty dir (`tempfile`'s, a fresh `mkdir`) holds nothing yet, and is made private instead.
#[tokio::test]
async fn a_data_dir_others_can_reach_is_refused_unless_allowed_and_an_empty_one_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shared");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_arg = data.to_str().unwrap();
    let allowed = ["--listen", "127.0.0.1:0", "--data-dir", data_arg, "--allow-shared-data-dir"];

    // Told to, kmsim serves the shared dir and leaves its mode, but not its files, alone.
    let server = ServerProcess::spawn_with_umask("022", &allowed);
    write_something(&server).await;
    assert_mode(&data, 0o755);
    for file in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm"] {
        assert_mode(&data.join(file), 0o600);
    }
    let status = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "{status:?}");

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(refused.stdout.is_empty(), "it never listened");
    for needed in [format!("data directory {data_arg} has mode 0755"), format!("`chmod 700 {data_arg}`")] {
        assert!(stderr.contains(&needed), "no {needed:?} in: {stderr}");
    }
    assert!(stderr.contains("--allow-shared-data-dir"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_mode(&data, 0o755);

    // The fix the message gives, with files as a kmsim that left them to the umask wrote them: made private.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = ServerProcess::spawn_with_umask("022", &["--listen", "127.0.0.1:0", "--data-dir", data_arg]);
    write_something(&server).await;
    for file in ["kmsim.db", "kmsim.db-wal", "kmsim.db-shm"] {
        assert_mode(&data.join(file), 0o600);
    }
    let status = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "{status:?}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server =
        ServerProcess::spawn_with_umask("022", &["--listen", "127.0.0.1:0", "--data-dir", empty.to_str().unwrap()]);
    assert_mode(&empty, 0o700);
    assert_mode(&empty.join("kmsim.db"), 0o600);
    let status = tokio::task::spawn_blocking(move || server.signal_and_wait("TERM")).await.unwrap();
    assert!(status.success(), "{status:?}");
}

/// `--in-memory` asks for no store on disk, so a data dir beside it is a contradiction, whether it comes from
/// `--data-dir` or from `KMSIM_DATA_DIR` (as docs/testing.md says), and each is named as the user gave it.
#[test]
fn in_memory_conflicts_with_a_data_dir_from_the_command_line_or_the_environment() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let serve = |extra: &[&str], env: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kmsim"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--in-memory"]).args(extra).env_remove("KMSIM_DATA_DIR");
        if let Some(env) = env {
            command.env("KMSIM_DATA_DIR", env);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kmsim starts");
        // A server that started anyway says so on its first line, and would serve for ever: stop it and fail.
        let mut stdout = String::new();
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        if !stdout.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kmsim serve --in-memory {extra:?} (KMSIM_DATA_DIR={env:?}) started: {stdout}");
        }
        child.wait_with_output().unwrap()
    };
    let flag = serve(&["--data-dir", data_arg], None);
    let env = serve(&[], Some(data_arg));
    for (output, named) in [(flag, format!("--data-dir {data_arg}")), (env, format!("KMSIM_DATA_DIR={data_arg}"))] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
        assert!(stderr.contains(&format!("--in-memory conflicts with {named}")), "{stderr}");
    }
    assert!(!data.exists(), "neither made a store");
}
