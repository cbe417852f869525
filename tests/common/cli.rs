//! Running the `kmsim` binary from tests: a child process talking to an
//! in-process server, with nothing from the test's own environment.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::TestServer;

/// A guard against hangs only: every wait ends as soon as the awaited thing happens.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// What a finished `kmsim` process left behind.
#[derive(Debug)]
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{}: failed: {self:#?}", self.what);
        assert!(!self.stderr.contains("panicked"), "{}: panicked: {self:#?}", self.what);
        &self.stdout
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}): {self:#?}", self.what))
    }

    /// Asserts the process failed (non-zero exit, no panic) and returns its trimmed stderr.
    #[track_caller]
    pub fn failed(&self) -> &str {
        assert!(self.code.is_some(), "{}: killed by a signal: {self:#?}", self.what);
        assert_ne!(self.code, Some(0), "{}: succeeded but should have failed: {self:#?}", self.what);
        assert!(!self.stderr.contains("panicked"), "{}: panicked: {self:#?}", self.what);
        self.stderr.trim()
    }
}

/// `kmsim ARGS` talking to `endpoint`, with nothing else from the test's environment.
pub fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kmsim"));
    command
        .env_remove("KMSIM_ACCESS_KEY_ID")
        .env_remove("KMSIM_ACCESS_KEY_SECRET")
        .env_remove("KMSIM_CREDENTIALS_FILE")
        .env_remove("KMSIM_TLS_CA")
        .env_remove("KMSIM_TLS_CERT")
        .env_remove("KMSIM_TLS_KEY")
        .env_remove("RUST_LOG")
        .env("KMSIM_ENDPOINT", endpoint)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn finished(what: String, output: Output) -> Run {
    Run {
        what,
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `kmsim ARGS` to completion on a blocking thread, so the in-process server keeps answering.
pub async fn kmsim_at(endpoint: &str, args: &[&str]) -> Run {
    let what = format!("kmsim {}", args.join(" "));
    let mut command = command(endpoint, args);
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("the runner thread");
    finished(what, output.expect("kmsim starts"))
}

pub async fn kmsim(server: &TestServer, args: &[&str]) -> Run {
    kmsim_at(&server.endpoint(), args).await
}

pub async fn kmsim_json(server: &TestServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    kmsim(server, &args).await.json()
}

#[track_caller]
pub fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("no string field {name:?} in {value:#}"))
}

#[track_caller]
pub fn array<'a>(value: &'a Value, name: &str) -> &'a Vec<Value> {
    value.get(name).and_then(Value::as_array).unwrap_or_else(|| panic!("no array {name:?} in {value:#}"))
}

/// A streaming `kmsim` command (`events watch`, `audit tail`), started before
/// the calls it should see.
pub struct Streaming {
    child: std::process::Child,
    what: String,
}

impl Streaming {
    pub fn start(server: &TestServer, args: &[&str]) -> Streaming {
        let child = command(&server.endpoint(), args).spawn().expect("kmsim starts");
        Streaming { child, what: format!("kmsim {}", args.join(" ")) }
    }

    /// Starts `kmsim ARGS` with its stdout a pipe nobody reads any more, as in `kmsim … | head -1` once
    /// `head` has its line. The reader is closed before the child starts, so its first write, whenever it
    /// comes, finds no reader: the test does not race the child's output.
    pub fn start_with_closed_stdout(endpoint: &str, args: &[&str]) -> Streaming {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let child = command(endpoint, args).stdout(writer).spawn().expect("kmsim starts");
        Streaming { child, what: format!("kmsim {} | (closed)", args.join(" ")) }
    }

    /// Waits until the server has recorded the stream's opening call `rpc`: that
    /// record is written once the stream is subscribed, so nothing after it is missed.
    pub async fn connected(&mut self, server: &TestServer, rpc: &str) {
        let mut audit = server.audit().await;
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let request = kmsim::proto::ListAuditEventsRequest { event_name: rpc.into(), ..Default::default() };
            let page = audit.list_audit_events(request).await.expect("list audit events").into_inner();
            if !page.events.is_empty() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("{} ended before it was connected ({status})", self.what);
            }
            assert!(tokio::time::Instant::now() < deadline, "{} never connected", self.what);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the process to exit on its own (at most [`HANG_GUARD`], then it is killed).
    pub async fn finish(self) -> Run {
        let Streaming { child, what } = self;
        let pid = child.id();
        let waited =
            tokio::time::timeout(HANG_GUARD, tokio::task::spawn_blocking(move || child.wait_with_output())).await;
        match waited {
            Ok(joined) => finished(what, joined.expect("the waiting thread").expect("wait")),
            Err(_) => {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
                panic!("{what} did not exit");
            }
        }
    }
}
