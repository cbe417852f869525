//! Real client SDKs (Alibaba Cloud's and AWS's), installed once under `target/sdk` and driven as child processes.
//!
//! Six pinned environments, each installed the same way:
//!
//! * `target/sdk/python`: a venv with exactly the packages of `tests/sdk/alibaba/requirements.txt` (the whole
//!   dependency closure, each `==`), installed with `pip install --no-deps` and checked with `pip check`: the new
//!   Alibaba SDK (alibabacloud-kms20160120), the old one (aliyun-python-sdk-kms on aliyun-python-sdk-core) and
//!   `cryptography`, which checks signatures and does RSA-OAEP outside kmsim.
//! * `target/sdk/node/node_modules` from `tests/sdk/alibaba/package.json` and its `package-lock.json` (`npm ci`).
//! * `target/sdk/aws-python`: a venv of its own (its pins differ) from `tests/sdk/aws/requirements.txt`: boto3 and
//!   botocore, the AWS CLI v1 (`awscli`), the AWS Encryption SDK with the Material Providers Library, and
//!   `cryptography`.
//! * `target/sdk/aws-node/node_modules` from `tests/sdk/aws/package.json` and its lock: `@aws-sdk/client-kms`.
//! * `target/sdk/dkms-python` from `tests/sdk/dkms/requirements.txt`: Alibaba's KMS instance SDK
//!   (alibabacloud-dkms-gcs), and `target/sdk/kms-router-python` from `tests/sdk/dkms/router/requirements.txt`:
//!   its router SDK (alibabacloud-kms-python-sdk); each its own venv, their pins being incompatible.
//!
//! Each install happens once: a stamp file records the hash of what it was made from (the pinned list, and
//! the interpreter it was made with) and a changed hash reinstalls. Concurrent test threads and test binaries
//! take an exclusive `flock` on `target/sdk/<toolchain>.lock` first, so only one of them installs.
//! Nothing is skipped: a missing toolchain fails the test with one message saying what to install.
//!
//! A scenario script prints one JSON document on stdout (see `tests/sdk/alibaba/README.md`; the AWS scripts print
//! the same shape); `Report` reads it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const NEED_PYTHON: &str =
    "the SDK tests need python3 with venv and pip (Debian: apt install python3 python3-venv python3-pip)";
pub const NEED_NODE: &str = "the SDK tests need Node.js and npm (Debian: apt install nodejs npm)";

/// How long one scenario script may run (the SDK install before it is not counted).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// The check a script reports for a section that cannot run because an earlier one failed.
const NEEDS_EARLIER: &str = "needs what an earlier section made";
/// How long one install step (creating the venv, pip, npm) may run.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// `tests/sdk/alibaba`: the scripts, the pinned requirements and the npm lock.
pub fn scripts_dir() -> PathBuf {
    scripts_dir_of("alibaba")
}

/// `tests/sdk/<family>` (`alibaba`, `aws`): a family's scripts, pinned requirements and npm lock.
pub fn scripts_dir_of(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk").join(family)
}

/// `<target>/sdk`, where `<target>` is `CARGO_TARGET_DIR` (relative to the package if relative) or `target`.
pub fn sdk_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join(dir),
        _ => manifest.join("target"),
    };
    target.join("sdk")
}

// ---------------------------------------------------------------------------
// Running a child process with a bound
// ---------------------------------------------------------------------------

/// What a bounded child process did.
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// The exit status, the timeout, and the last lines of stderr and stdout, for a failure message.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            format!("killed after {:.0?} (timed out)", self.elapsed)
        } else {
            match self.status {
                Some(status) => format!("{status}"),
                None => "no exit status".to_owned(),
            }
        };
        format!("{how}\n--- stderr ---\n{}\n--- stdout ---\n{}", tail(&self.stderr, 60), tail(&self.stdout, 20))
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}

/// Runs `command` with no stdin, collecting stdout and stderr, and kills its whole process group if it is
/// still running after `timeout`. Err only when it cannot be started (e.g. the program is not installed).
pub fn run_bounded(mut command: Command, timeout: Duration) -> io::Result<Finished> {
    let started = Instant::now();
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let stdout = read_in_background(child.stdout.take().expect("piped stdout"));
    let stderr = read_in_background(child.stderr.take().expect("piped stderr"));
    // The watchdog kills the group only while the child has not exited: the main thread marks `exited`
    // (under the lock) before reaping, so the pid cannot have been reused when the watchdog uses it.
    let exited = Arc::new(Mutex::new(false));
    let (done, until_done) = mpsc::channel::<()>();
    let watchdog = {
        let exited = Arc::clone(&exited);
        thread::spawn(move || match until_done.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => {
                let exited = exited.lock().unwrap();
                if !*exited {
                    // SAFETY: kill(2) on our own child's process group, which still exists (not yet reaped).
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    return true;
                }
                false
            }
            _ => false,
        })
    };
    wait_for_exit_without_reaping(pid)?;
    *exited.lock().unwrap() = true;
    let _ = done.send(());
    let timed_out = watchdog.join().expect("the watchdog thread");
    let status = child.wait()?;
    Ok(Finished {
        status: Some(status),
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
        timed_out,
        elapsed: started.elapsed(),
    })
}

fn read_in_background(mut from: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Blocks until child `pid` has exited, leaving it to be reaped by `Child::wait`.
fn wait_for_exit_without_reaping(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: waitid(2) writes only into `info`, which is a valid, zeroed siginfo_t.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

// ---------------------------------------------------------------------------
// Installing, once, under a lock
// ---------------------------------------------------------------------------

/// An exclusive `flock` on `path`, held until dropped (the lock goes with the open file).
struct InstallLock(File);

impl InstallLock {
    fn take(path: &Path) -> Result<InstallLock, String> {
        fs::create_dir_all(path.parent().unwrap()).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open the install lock {}: {e}", path.display()))?;
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock(2) on a descriptor this File owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(InstallLock(file));
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(format!("cannot lock {}: {error}", path.display()));
            }
        }
    }
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Runs one install step; Err with `what` and the step's output when it fails.
fn step(command: Command, what: &str) -> Result<Finished, String> {
    let shown = format!("{command:?}");
    match run_bounded(command, INSTALL_TIMEOUT) {
        Ok(finished) if finished.success() => Ok(finished),
        Ok(finished) => Err(format!("{what}: `{shown}` failed: {}", finished.describe())),
        Err(e) => Err(format!("{what}: `{shown}` could not start: {e}")),
    }
}

/// Installs into `dir` with `install` unless its stamp says `stamp` is already there; under `lock`.
fn install_once(
    dir: &Path,
    lock: &Path,
    stamp: &str,
    what: &str,
    install: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let stamp_file = dir.join(".kmsim-stamp");
    let _lock = InstallLock::take(lock)?;
    if fs::read_to_string(&stamp_file).is_ok_and(|found| found.trim() == stamp) {
        return Ok(());
    }
    let started = Instant::now();
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("cannot remove the old {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    install(dir)?;
    fs::write(&stamp_file, format!("{stamp}\n")).map_err(|e| format!("cannot write {}: {e}", stamp_file.display()))?;
    eprintln!("installed {what} into {} in {:.1?}", dir.display(), started.elapsed());
    Ok(())
}

/// `program --version`'s output, or the one message saying what to install.
fn toolchain_version(program: &str, need: &str) -> Result<String, String> {
    let mut command = Command::new(program);
    command.arg("--version");
    match run_bounded(command, Duration::from_secs(60)) {
        Ok(finished) if finished.success() => Ok(format!("{}{}", finished.stdout.trim(), finished.stderr.trim())),
        Ok(finished) => Err(format!("{need}: `{program} --version` failed: {}", finished.describe())),
        Err(e) => Err(format!("{need}: `{program}` could not be run: {e}")),
    }
}

/// A pinned Python environment: a venv under `target/sdk/<dir>` made from `tests/sdk/<family>/requirements.txt`.
pub struct PythonEnv {
    /// The venv's folder under `target/sdk` (its lock is `target/sdk/<dir>.lock`).
    pub dir: &'static str,
    /// The folder under `tests/sdk` holding `requirements.txt` and the scripts.
    pub family: &'static str,
    /// What it holds, for messages.
    pub what: &'static str,
    /// A Python statement that must run once it is installed.
    pub imports: &'static str,
    installed: OnceLock<Result<PathBuf, String>>,
}

/// Alibaba Cloud's Python SDKs (tests/alibaba_sdk.rs).
pub static ALIBABA_PYTHON: PythonEnv = PythonEnv {
    dir: "python",
    family: "alibaba",
    what: "the Alibaba Python SDKs",
    imports: "import alibabacloud_kms20160120.client, aliyunsdkkms, aliyunsdkcore.client, cryptography",
    installed: OnceLock::new(),
};

/// AWS's Python clients (tests/aws_sdk.rs): boto3, the AWS CLI, the AWS Encryption SDK.
pub static AWS_PYTHON: PythonEnv = PythonEnv {
    dir: "aws-python",
    family: "aws",
    what: "the AWS Python SDKs (boto3, awscli, aws-encryption-sdk)",
    imports: "import boto3, botocore, awscli, aws_encryption_sdk, aws_cryptographic_material_providers, cryptography",
    installed: OnceLock::new(),
};

impl PythonEnv {
    /// The venv's python, with the pinned packages installed (once). Panics with what to install when it cannot be.
    pub fn python(&'static self) -> PathBuf {
        match self.installed.get_or_init(|| self.install()) {
            Ok(python) => python.clone(),
            Err(message) => panic!("{message}"),
        }
    }

    fn install(&self) -> Result<PathBuf, String> {
        let system = toolchain_version("python3", NEED_PYTHON)?;
        // The venv links to the interpreter it was made with, so a different python3 means a new venv.
        let mut which = Command::new("python3");
        which.args(["-c", "import sys; print(sys.executable, sys.version)"]);
        let interpreter = step(which, NEED_PYTHON)?.stdout;
        let requirements = scripts_dir_of(self.family).join("requirements.txt");
        let shown = format!("tests/sdk/{}/requirements.txt", self.family);
        let stamp = hex_sha256(&[&read_file(&requirements)?, system.as_bytes(), interpreter.as_bytes()]);
        let dir = sdk_root().join(self.dir);
        let python = dir.join("bin/python");
        let lock = sdk_root().join(format!("{}.lock", self.dir));
        install_once(&dir, &lock, &stamp, self.what, |dir| {
            let mut venv = Command::new("python3");
            venv.arg("-m").arg("venv").arg(dir);
            step(venv, NEED_PYTHON)?;
            let mut pip = Command::new(&python);
            pip.args(["-m", "pip", "--version"]);
            step(pip, NEED_PYTHON)?;
            let mut install = Command::new(&python);
            install
                .args(["-m", "pip", "install", "--no-deps", "--require-virtualenv", "--no-input"])
                .args(["--disable-pip-version-check", "--no-cache-dir", "-r"])
                .arg(&requirements);
            step(install, &format!("pip could not install the pinned packages of {shown} from PyPI"))?;
            let mut check = Command::new(&python);
            check.args(["-m", "pip", "check"]);
            step(check, &format!("{shown} does not list every dependency of the packages it pins"))?;
            let mut import = Command::new(&python);
            import.args(["-c", self.imports]);
            step(import, &format!("the packages of {shown} do not import"))?;
            Ok(())
        })?;
        Ok(python)
    }
}

/// Alibaba's KMS instance SDK (tests/dkms_sdk.rs): alibabacloud-dkms-gcs, whose pyopenssl and protobuf pins
/// need a venv of their own.
pub static DKMS_PYTHON: PythonEnv = PythonEnv {
    dir: "dkms-python",
    family: "dkms",
    what: "Alibaba's KMS instance SDK (alibabacloud-dkms-gcs)",
    imports: "import sdk.client, openapi.models, OpenSSL.crypto, cryptography",
    installed: OnceLock::new(),
};

/// Alibaba's router SDK (tests/dkms_sdk.rs): alibabacloud-kms-python-sdk on the instance SDK and the 2.x OpenAPI
/// SDK, whose pins differ again.
pub static KMS_ROUTER_PYTHON: PythonEnv = PythonEnv {
    dir: "kms-router-python",
    family: "dkms/router",
    what: "Alibaba's router SDK (alibabacloud-kms-python-sdk)",
    imports: "import alibabacloud_kms_kms20160120.transfer_client, sdk.client, alibabacloud_kms20160120.client",
    installed: OnceLock::new(),
};

/// The Alibaba venv's python (see [`ALIBABA_PYTHON`]).
pub fn python() -> PathBuf {
    ALIBABA_PYTHON.python()
}

/// A pinned Node environment: `target/sdk/<dir>/node_modules` from `tests/sdk/<family>/package(-lock).json`.
pub struct NodeEnv {
    pub dir: &'static str,
    pub family: &'static str,
    pub what: &'static str,
    /// A module that must load once it is installed.
    pub loads: &'static str,
    installed: OnceLock<Result<PathBuf, String>>,
}

/// Alibaba Cloud's Node SDK (tests/alibaba_sdk.rs).
pub static ALIBABA_NODE: NodeEnv = NodeEnv {
    dir: "node",
    family: "alibaba",
    what: "the Alibaba Node SDK",
    loads: "@alicloud/kms20160120",
    installed: OnceLock::new(),
};

/// The AWS SDK for JavaScript v3's KMS client (tests/aws_sdk.rs).
pub static AWS_NODE: NodeEnv = NodeEnv {
    dir: "aws-node",
    family: "aws",
    what: "the AWS SDK for JavaScript (@aws-sdk/client-kms)",
    loads: "@aws-sdk/client-kms",
    installed: OnceLock::new(),
};

/// playwright-core, which drives Debian's chromium for the console's browser tests (tests/console_browser.rs).
pub static CONSOLE_NODE: NodeEnv = NodeEnv {
    dir: "console-node",
    family: "console",
    what: "playwright-core",
    loads: "playwright-core",
    installed: OnceLock::new(),
};

/// Debian's chromium, which playwright-core drives for the console's browser tests.
pub const CHROMIUM: DebianBrowser = DebianBrowser { package: "chromium", path: "/usr/bin/chromium" };

/// Debian's Firefox ESR, which puppeteer-core drives over WebDriver BiDi for the console's browser tests.
pub const FIREFOX: DebianBrowser = DebianBrowser { package: "firefox-esr", path: "/usr/bin/firefox-esr" };

/// A browser from a Debian package, for the console's browser tests.
pub struct DebianBrowser {
    package: &'static str,
    path: &'static str,
}

impl DebianBrowser {
    /// The browser: there already, or installed with apt-get when the tests run as root (a machine of the kind CI
    /// uses), once, under a lock; else the one message saying what to install.
    pub fn path(&'static self) -> PathBuf {
        static FOUND: OnceLock<Mutex<BTreeMap<&'static str, Result<PathBuf, String>>>> = OnceLock::new();
        let mut found = FOUND.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        match found.entry(self.package).or_insert_with(|| self.install()) {
            Ok(browser) => browser.clone(),
            Err(message) => panic!("{message}"),
        }
    }

    fn install(&self) -> Result<PathBuf, String> {
        let (package, browser) = (self.package, PathBuf::from(self.path));
        if browser.exists() {
            return Ok(browser);
        }
        let need = format!(
            "the console's browser tests need Debian's {package} package: run `apt-get install {package}` as root"
        );
        let root =
            Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        if !root {
            return Err(format!("{need} (the tests install it themselves only when they run as root)"));
        }
        fs::create_dir_all(sdk_root()).map_err(|e| format!("{need}: cannot create {}: {e}", sdk_root().display()))?;
        // One lock for every apt-get: dpkg takes one at a time.
        let _lock = InstallLock::take(&sdk_root().join("apt.lock"))?;
        if browser.exists() {
            return Ok(browser);
        }
        let started = Instant::now();
        for args in [&["update", "-qq"][..], &["install", "-y", "-qq", package][..]] {
            let mut apt = Command::new("apt-get");
            apt.env("DEBIAN_FRONTEND", "noninteractive").args(args);
            step(apt, &need)?;
        }
        eprintln!("installed Debian's {package} in {:.1?}", started.elapsed());
        if browser.exists() { Ok(browser) } else { Err(format!("{need}: apt-get ran but {} is missing", self.path)) }
    }
}

impl NodeEnv {
    /// Its `node_modules`, installed (once). Panics with what to install when it cannot be.
    pub fn node_modules(&'static self) -> PathBuf {
        match self.installed.get_or_init(|| self.install()) {
            Ok(modules) => modules.clone(),
            Err(message) => panic!("{message}"),
        }
    }

    fn install(&self) -> Result<PathBuf, String> {
        let node = toolchain_version("node", NEED_NODE)?;
        let npm = toolchain_version("npm", NEED_NODE)?;
        let scripts = scripts_dir_of(self.family);
        let package = read_file(&scripts.join("package.json"))?;
        let lock = read_file(&scripts.join("package-lock.json"))?;
        let stamp = hex_sha256(&[&package, &lock, node.as_bytes(), npm.as_bytes()]);
        let dir = sdk_root().join(self.dir);
        let install_lock = sdk_root().join(format!("{}.lock", self.dir));
        install_once(&dir, &install_lock, &stamp, self.what, |dir| {
            for file in ["package.json", "package-lock.json"] {
                fs::copy(scripts.join(file), dir.join(file)).map_err(|e| format!("cannot copy {file}: {e}"))?;
            }
            let mut ci = Command::new("npm");
            ci.current_dir(dir).args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"]);
            let what =
                format!("npm could not install tests/sdk/{}/package-lock.json from the npm registry", self.family);
            step(ci, &what)?;
            let mut load = Command::new("node");
            load.env("NODE_PATH", dir.join("node_modules")).arg("-e").arg(format!("require('{}')", self.loads));
            step(load, &format!("the installed {} does not load", self.what))?;
            Ok(())
        })?;
        Ok(dir.join("node_modules"))
    }
}

/// The Alibaba Node SDK's `node_modules` (see [`ALIBABA_NODE`]).
pub fn node_modules() -> PathBuf {
    ALIBABA_NODE.node_modules()
}

// ---------------------------------------------------------------------------
// Scenario scripts
// ---------------------------------------------------------------------------

/// Which SDK a script drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// alibabacloud-kms20160120 (Python), ACS3 signatures unless told otherwise.
    NewPython,
    /// aliyun-python-sdk-kms on aliyun-python-sdk-core (Python), v1 HMAC-SHA1.
    OldPython,
    /// @alicloud/kms20160120 (Node), v1 HMAC-SHA1.
    Node,
    /// boto3 / botocore (Python), SigV4: tests/sdk/aws/boto3_sdk.py.
    Boto3,
    /// The AWS CLI v1 (`aws kms ...`, Python), SigV4: tests/sdk/aws/aws_cli.py.
    AwsCli,
    /// The AWS Encryption SDK for Python on boto3: tests/sdk/aws/esdk.py.
    AwsEncryptionSdkPython,
    /// @aws-sdk/client-kms (Node), SigV4: tests/sdk/aws/node_sdk.js.
    AwsNode,
    /// alibabacloud-dkms-gcs (Python), the KMS instance API: tests/sdk/dkms/dkms_sdk.py.
    Dkms,
    /// alibabacloud-kms-python-sdk (Python), the instance API and the OpenAPI: tests/sdk/dkms/router_sdk.py.
    KmsRouter,
}

/// What runs a script: a pinned venv's python, or node with a pinned `node_modules`.
enum Runtime {
    Python(&'static PythonEnv),
    Node(&'static NodeEnv),
}

impl Sdk {
    fn script(self) -> &'static str {
        match self {
            Sdk::NewPython => "new_sdk.py",
            Sdk::OldPython => "old_sdk.py",
            Sdk::Node => "node_sdk.js",
            Sdk::Boto3 => "boto3_sdk.py",
            Sdk::AwsCli => "aws_cli.py",
            Sdk::AwsEncryptionSdkPython => "esdk.py",
            Sdk::AwsNode => "node_sdk.js",
            Sdk::Dkms => "dkms_sdk.py",
            Sdk::KmsRouter => "router_sdk.py",
        }
    }

    /// The folder under `tests/sdk` with its script.
    pub fn family(self) -> &'static str {
        match self {
            Sdk::NewPython | Sdk::OldPython | Sdk::Node => "alibaba",
            Sdk::Boto3 | Sdk::AwsCli | Sdk::AwsEncryptionSdkPython | Sdk::AwsNode => "aws",
            Sdk::Dkms | Sdk::KmsRouter => "dkms",
        }
    }

    fn runtime(self) -> Runtime {
        match self {
            Sdk::NewPython | Sdk::OldPython => Runtime::Python(&ALIBABA_PYTHON),
            Sdk::Node => Runtime::Node(&ALIBABA_NODE),
            Sdk::Boto3 | Sdk::AwsCli | Sdk::AwsEncryptionSdkPython => Runtime::Python(&AWS_PYTHON),
            Sdk::AwsNode => Runtime::Node(&AWS_NODE),
            Sdk::Dkms => Runtime::Python(&DKMS_PYTHON),
            Sdk::KmsRouter => Runtime::Python(&KMS_ROUTER_PYTHON),
        }
    }
}

/// One run of a scenario script against a server.
pub struct Script {
    sdk: Sdk,
    scenario: String,
    env: BTreeMap<String, String>,
}

impl Script {
    /// `scenario` of the `sdk`'s script, against the server at `addr` as `access_key_id`/`secret`.
    pub fn new(sdk: Sdk, scenario: &str, addr: std::net::SocketAddr, access_key_id: &str, secret: &str) -> Script {
        let mut env = BTreeMap::new();
        env.insert("KMSIM_ENDPOINT".to_owned(), addr.to_string());
        env.insert("KMSIM_ACCESS_KEY_ID".to_owned(), access_key_id.to_owned());
        env.insert("KMSIM_ACCESS_KEY_SECRET".to_owned(), secret.to_owned());
        Script { sdk, scenario: scenario.to_owned(), env }
    }

    /// A scenario parameter, `KMSIM_<name>` in the script's environment.
    pub fn param(mut self, name: &str, value: &str) -> Script {
        self.env.insert(format!("KMSIM_{name}"), value.to_owned());
        self
    }

    /// Runs the script (installing its SDK first if need be) off the async runtime, so the server the test
    /// started keeps answering; panics if it cannot start, times out, or prints no JSON report.
    pub async fn run(self) -> Report {
        match tokio::task::spawn_blocking(move || self.run_blocking()).await {
            Ok(report) => report,
            // The runner's own panic (what to install, a timeout, a broken script) is the test's failure.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the script runner: {e}"),
        }
    }

    fn run_blocking(self) -> Report {
        let dir = scripts_dir_of(self.sdk.family());
        let script = dir.join(self.sdk.script());
        let mut command = match self.sdk.runtime() {
            Runtime::Python(env) => {
                let mut command = Command::new(env.python());
                command.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1").arg(&script);
                command
            }
            Runtime::Node(env) => {
                let mut command = Command::new("node");
                command.env("NODE_PATH", env.node_modules()).arg(&script);
                command
            }
        };
        command.arg(&self.scenario).envs(&self.env).current_dir(&dir);
        // The SDKs read these; a developer's own settings must not redirect the calls.
        for name in ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_USER_AGENT"] {
            command.env_remove(name);
        }
        // Nor AWS's: no AWS_* variable (profiles, credentials, endpoints, retries) and no config or credentials
        // file reaches a script, and no client asks an instance metadata service for credentials.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        let no_config = sdk_root().join("aws-no-config");
        command
            .env("AWS_CONFIG_FILE", no_config.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", no_config.join("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            command.env_remove(name);
        }
        let what = format!("{} {}", self.sdk.script(), self.scenario);
        let finished = run_bounded(command, SCRIPT_TIMEOUT).unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
        if finished.timed_out {
            panic!("{what}: {}", finished.describe());
        }
        let json: Value = serde_json::from_str(finished.stdout.trim()).unwrap_or_else(|e| {
            panic!("{what}: printed no JSON report ({e}); the script itself broke: {}", finished.describe())
        });
        Report { what, json, finished }
    }
}

/// What a scenario script reported.
///
/// ```json
/// {"sdk": "...", "scenario": "...",
///  "sections": [{"name": "...", "passed": ["check", ...], "failure": null | {"check", "error", "observed", ...}}],
///  "calls": [{"action", "access_key_id", "ok", "request_id", "code", "status", "wire": {...}}],
///  "facts": {...}}
/// ```
pub struct Report {
    pub what: String,
    pub json: Value,
    pub finished: Finished,
}

/// One SDK call as the script saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub access_key_id: String,
    pub ok: bool,
    /// The RequestId of the body the SDK read (the answer's, or the error's).
    pub request_id: String,
    /// The error code as the SDK raised it (empty on success).
    pub code: String,
    /// The error code as it came in the body (`Code`), before any SDK rewrote it.
    pub wire_code: String,
    pub status: i64,
    /// The User-Agent the SDK sent.
    pub user_agent: String,
    /// `kms`, or `cloudtrail` for CloudTrail's LookupEvents (AWS scripts; empty for Alibaba's).
    pub service: String,
    /// The request id the answer carried on the wire (`x-amzn-RequestId` for AWS, the body's for Alibaba).
    pub wire_request_id: String,
    /// The request ids of every HTTP attempt the call made (one unless the SDK retried).
    pub attempt_request_ids: Vec<String>,
}

impl Report {
    /// Every section passed; else panics naming each failed section, its check, and what the script saw.
    pub fn assert_all_passed(&self) {
        let sections = self.sections();
        assert!(!sections.is_empty(), "{}: reported no sections: {}", self.what, self.json);
        let failed: Vec<String> = sections
            .iter()
            .filter(|s| !s["failure"].is_null())
            .map(|s| {
                let failure = &s["failure"];
                if failure["check"] == NEEDS_EARLIER {
                    // Follows from an earlier failure: one line, not the whole story again.
                    return format!("  section {:?}: not run, it needs {}", s["name"], failure["observed"]["missing"]);
                }
                format!(
                    "  section {:?} failed at check {:?}:\n    {}",
                    s["name"].as_str().unwrap_or("?"),
                    failure["check"].as_str().unwrap_or("?"),
                    serde_json::to_string_pretty(failure).unwrap_or_default().replace('\n', "\n    ")
                )
            })
            .collect();
        if !failed.is_empty() {
            let stderr = tail(&self.finished.stderr, 30);
            panic!(
                "{}: {} of {} sections failed\n{}\n--- script stderr (tail) ---\n{stderr}",
                self.what,
                failed.len(),
                sections.len(),
                failed.join("\n")
            );
        }
        assert!(self.finished.success(), "{}: every section passed but {}", self.what, self.finished.describe());
    }

    pub fn sections(&self) -> Vec<Value> {
        self.json["sections"].as_array().cloned().unwrap_or_default()
    }

    /// The checks a section passed.
    pub fn passed(&self, section: &str) -> Vec<String> {
        let sections = self.sections();
        let found = sections
            .iter()
            .find(|s| s["name"] == section)
            .unwrap_or_else(|| panic!("{}: no section {section:?}", self.what));
        found["passed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    /// A value the script recorded for the test to assert on.
    pub fn fact(&self, name: &str) -> &Value {
        let fact = &self.json["facts"][name];
        assert!(!fact.is_null(), "{}: reported no fact {name:?}: {}", self.what, self.json["facts"]);
        fact
    }

    pub fn calls(&self) -> Vec<Call> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        self.json["calls"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no calls in the report", self.what))
            .iter()
            .map(|c| Call {
                action: text(&c["action"]),
                access_key_id: text(&c["access_key_id"]),
                ok: c["ok"].as_bool().unwrap_or(false),
                request_id: text(&c["request_id"]),
                code: text(&c["code"]),
                wire_code: text(&c["wire"]["code"]),
                status: c["wire"]["status"].as_i64().unwrap_or(0),
                user_agent: text(&c["wire"]["user_agent"]),
                service: text(&c["service"]),
                wire_request_id: text(&c["wire"]["request_id"]),
                attempt_request_ids: match c["wire"]["attempts"].as_array() {
                    Some(ids) => ids.iter().map(text).collect(),
                    None => vec![text(&c["wire"]["request_id"])],
                },
            })
            .collect()
    }
}
