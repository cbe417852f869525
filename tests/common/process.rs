//! Runs the real `kmsim` binary as a child process, as a user would.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `kmsim serve <args>` and waits for its `listening on IP:PORT` line.
    pub fn spawn(args: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kmsim"));
        command.arg("serve").args(args);
        ServerProcess::spawn_command(command)
    }

    /// Starts `kmsim serve <args>` with `TMPDIR` set to `temp`, the system temp dir as kmsim sees it.
    pub fn spawn_with_temp_dir(temp: &std::path::Path, args: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kmsim"));
        command.arg("serve").args(args).env("TMPDIR", temp);
        ServerProcess::spawn_command(command)
    }

    /// Starts `kmsim serve <args>` with the file-creation mask `umask` (e.g. "022"), as a user's shell would.
    pub fn spawn_with_umask(umask: &str, args: &[&str]) -> ServerProcess {
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!("umask {umask} && exec \"$0\" serve \"$@\"")).arg(env!("CARGO_BIN_EXE_kmsim"));
        command.args(args);
        ServerProcess::spawn_command(command)
    }

    /// Starts `command` (a `kmsim serve`) and waits for its `listening on IP:PORT` line.
    fn spawn_command(mut command: Command) -> ServerProcess {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kmsim starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reads the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an IP:PORT");
        ServerProcess { child, addr }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.endpoint()).unwrap().connect().await.expect("connects")
    }

    /// Sends `signal` (e.g. "TERM", "KILL") and waits for the process to end.
    pub fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(sent.expect("kill runs").success());
        self.child.wait().expect("the server exits")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
