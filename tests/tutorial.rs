//! `docs/tutorial.md` is a test: every `$ ` command of its ```console blocks runs, in order and in one `sh`
//! (so shell variables carry ids from step to step), against a real `kmsim serve` started with the tutorial's
//! own command line, and what each command prints (stdout and stderr) must be what the tutorial shows. So is the
//! README's five-minute transcript, against the `serve --in-memory` it tells the reader to start.
//!
//! Values that differ from run to run (UUIDs, RFC 3339 times, base64 blobs, version numbers in user agents,
//! durations) become placeholders in both texts before the comparison; everything else (field names, states,
//! error codes, HTTP statuses, event names, counts) must match exactly. Each distinct UUID becomes a numbered
//! placeholder across the whole transcript, so the tutorial's claims about identity (the same key, the old
//! version decrypting the old ciphertext, a new version after rotation) are checked too.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const TUTORIAL: &str = include_str!("../docs/tutorial.md");
const README: &str = include_str!("../README.md");

const STEP_MARK: &str = "@@kmsim-tutorial-step";
const STATUS_MARK: &str = "@@kmsim-tutorial-status";

/// One `$ ` command of a ```console block and the output shown after it.
#[derive(Debug, Clone)]
struct Step {
    /// 1-based line of the command in the tutorial.
    line: usize,
    command: String,
    expected: String,
}

/// What a step printed (stdout and stderr together) and its exit status.
#[derive(Debug, Clone)]
struct Ran {
    output: String,
    status: i32,
}

/// Every `$ ` command of every ```console block, in order. A command line ending in `\` continues on the next.
fn console_steps(doc: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut in_other_fence = false;
    let mut continuing = false;
    for (index, line) in doc.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if fence {
            assert!(
                !line.starts_with(' ') || !line.contains("console"),
                "tutorial line {}: an indented ```console fence is not recognised; start it at column 0",
                index + 1
            );
            if in_console {
                in_console = false;
                continuing = false;
            } else if in_other_fence {
                in_other_fence = false;
            } else if line.trim() == "```console" {
                in_console = true;
            } else {
                in_other_fence = true;
            }
            continue;
        }
        if !in_console {
            continue;
        }
        if continuing {
            let step = steps.last_mut().expect("a command to continue");
            step.command.push('\n');
            step.command.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step { line: index + 1, command: command.to_owned(), expected: String::new() });
            continuing = command.ends_with('\\');
        } else {
            let step = steps.last_mut().unwrap_or_else(|| {
                panic!("tutorial line {}: output in a ```console block before any `$ ` command", index + 1)
            });
            step.expected.push_str(line);
            step.expected.push('\n');
        }
    }
    assert!(!in_console, "the tutorial ends inside a ```console block");
    steps
}

/// The tutorial's `kmsim serve ...` command line, split into its arguments after `serve`.
fn serve_args(doc: &str) -> Vec<String> {
    let line = doc
        .lines()
        .map(|l| l.trim().trim_start_matches("$ "))
        .find(|l| l.starts_with("kmsim serve "))
        .expect("the tutorial starts the server with a `kmsim serve ...` line");
    let line = line.split(" #").next().unwrap_or(line);
    assert!(!line.contains(['\'', '"', '\\', '$']), "keep the serve line free of quoting: {line}");
    line.split_whitespace().skip(2).map(str::to_owned).collect()
}

/// The serve arguments with `--listen` and `--data-dir` replaced by a free port and `data_dir`.
fn test_serve_args(tutorial_args: &[String], data_dir: &Path) -> Vec<String> {
    let mut args = tutorial_args.to_vec();
    for (flag, value) in [("--listen", "127.0.0.1:0"), ("--data-dir", data_dir.to_str().expect("a UTF-8 temp path"))] {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("the tutorial's serve line has no {flag}: {tutorial_args:?}"));
        assert!(at + 1 < args.len(), "{flag} has no value in the tutorial's serve line");
        args[at + 1] = value.to_owned();
    }
    args
}

/// A `kmsim serve` child process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[String]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kmsim"));
        command.arg("serve").args(args);
        clear_kmsim_env(&mut command);
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kmsim serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reads the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from kmsim serve: {line:?}"))
            .to_owned();
        // Keep draining stdout so the server never writes into a closed or full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes every `KMSIM_*` variable and `RUST_LOG`, so the caller's environment cannot change what runs.
fn clear_kmsim_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("KMSIM_") || name_text == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
}

/// The shell script that runs every step, each between markers that carry its index and exit status.
fn script(steps: &[Step]) -> String {
    let mut script = String::from("exec 2>&1 </dev/null\n");
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&format!("printf '\\n{STEP_MARK} {i}@@\\n'\n"));
        script.push_str(&step.command);
        script.push('\n');
        script.push_str(&format!("printf '\\n{STATUS_MARK} {i} %s@@\\n' \"$?\"\n"));
    }
    script
}

/// Runs `steps` in one `sh` in `work_dir`, with `kmsim` first on PATH and KMSIM_ENDPOINT set to `endpoint`.
fn run_steps(steps: &[Step], work_dir: &Path, endpoint: &str) -> Vec<Ran> {
    let script_path = work_dir.join("tutorial.sh");
    std::fs::write(&script_path, script(steps)).expect("writes the script");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kmsim")).parent().expect("the binary's directory").to_owned();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&path))).expect("a PATH");
    let mut command = Command::new("sh");
    command.arg(&script_path);
    clear_kmsim_env(&mut command);
    let mut child = command
        .current_dir(work_dir)
        .env("PATH", path)
        .env("KMSIM_ENDPOINT", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let mut transcript = String::new();
    child.stdout.take().unwrap().read_to_string(&mut transcript).expect("reads the transcript");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).expect("reads sh's stderr");
    let status = child.wait().expect("sh ends");
    assert!(status.success() || steps.is_empty(), "sh itself failed ({status}): {stderr}\n{transcript}");
    split_transcript(&transcript, steps.len())
}

/// Cuts the transcript into each step's output and status, by the markers `script` printed.
fn split_transcript(transcript: &str, steps: usize) -> Vec<Ran> {
    (0..steps)
        .map(|i| {
            let start_mark = format!("\n{STEP_MARK} {i}@@\n");
            let status_mark = format!("\n{STATUS_MARK} {i} ");
            let start = transcript
                .find(&start_mark)
                .unwrap_or_else(|| panic!("no output marker for step {i} in:\n{transcript}"))
                + start_mark.len();
            let end = start
                + transcript[start..]
                    .find(&status_mark)
                    .unwrap_or_else(|| panic!("no status marker for step {i} in:\n{transcript}"));
            let status_text = &transcript[end + status_mark.len()..];
            let status_text = &status_text[..status_text.find("@@").expect("the status marker's end")];
            Ran { output: transcript[start..end].to_owned(), status: status_text.parse().expect("a numeric status") }
        })
        .collect()
}

/// Replaces what legitimately differs from run to run with placeholders. One normaliser walks one whole
/// transcript (the tutorial's, or the run's), so the same UUID gets the same number wherever it appears.
#[derive(Default)]
struct Normaliser {
    uuids: HashMap<String, usize>,
}

impl Normaliser {
    /// The output's lines, normalised, with runs of blanks collapsed (table columns are padded to their
    /// widest value) and without trailing blank lines.
    fn output(&mut self, text: &str) -> Vec<String> {
        let mut lines: Vec<String> =
            text.lines().map(|line| self.line(line).split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    fn line(&mut self, line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let after_word_char = i > 0 && chars[i - 1].is_ascii_alphanumeric();
            if !after_word_char {
                if let Some(len) = uuid_at(&chars[i..]) {
                    let uuid: String = chars[i..i + len].iter().collect::<String>().to_ascii_lowercase();
                    let next = self.uuids.len() + 1;
                    let n = *self.uuids.entry(uuid).or_insert(next);
                    out.push_str(&format!("<uuid-{n}>"));
                    i += len;
                    continue;
                }
                if let Some(len) = timestamp_at(&chars[i..]) {
                    out.push_str("<time>");
                    i += len;
                    continue;
                }
                if i > 0
                    && chars[i - 1] == '/'
                    && let Some(len) = version_at(&chars[i..])
                {
                    out.push_str("<version>");
                    i += len;
                    continue;
                }
                if let Some(len) = duration_at(&chars[i..]) {
                    out.push_str("<duration>");
                    i += len;
                    continue;
                }
            }
            let after_base64_char = i > 0 && is_base64_char(chars[i - 1]);
            if !after_base64_char && let Some(len) = base64_at(&chars[i..]) {
                out.push_str("<base64>");
                i += len;
                continue;
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }
}

/// The length of a UUID (8-4-4-4-12 hex digits) at the start of `s` that no hex digit follows.
fn uuid_at(s: &[char]) -> Option<usize> {
    const LEN: usize = 36;
    if s.len() < LEN || s.get(LEN).is_some_and(char::is_ascii_alphanumeric) {
        return None;
    }
    let fits = s[..LEN].iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == '-',
        _ => c.is_ascii_hexdigit(),
    });
    fits.then_some(LEN)
}

/// The length of digits at the start of `s` (at least `min`, at most `max`).
fn digits(s: &[char], min: usize, max: usize) -> Option<usize> {
    let n = s.iter().take(max).take_while(|c| c.is_ascii_digit()).count();
    (n >= min).then_some(n)
}

/// The length of an RFC 3339 date-time (`2026-11-22T01:05:44Z`, `…44.669Z`, `…44+08:00`) at the start of `s`.
fn timestamp_at(s: &[char]) -> Option<usize> {
    let shape = "dddd-dd-ddTdd:dd:dd";
    if s.len() < shape.len() {
        return None;
    }
    let fits = shape.chars().zip(s).all(|(want, got)| if want == 'd' { got.is_ascii_digit() } else { want == *got });
    if !fits {
        return None;
    }
    let mut i = shape.len();
    if s.get(i) == Some(&'.') {
        i += 1 + digits(&s[i + 1..], 1, usize::MAX)?;
    }
    match s.get(i) {
        Some('Z') => Some(i + 1),
        Some('+' | '-') => {
            let zone = s.get(i + 1..i + 6)?;
            let fits = zone.iter().enumerate().all(|(j, c)| if j == 2 { *c == ':' } else { c.is_ascii_digit() });
            fits.then_some(i + 6)
        }
        _ => None,
    }
}

/// The length of a dotted version (`0.14.9`) at the start of `s`, as in a user agent's `tonic/0.14.9`.
fn version_at(s: &[char]) -> Option<usize> {
    let mut i = digits(s, 1, usize::MAX)?;
    let mut dots = 0;
    while s.get(i) == Some(&'.') && s.get(i + 1).is_some_and(char::is_ascii_digit) {
        i += 1 + digits(&s[i + 1..], 1, usize::MAX)?;
        dots += 1;
    }
    (dots >= 1 && !s.get(i).is_some_and(char::is_ascii_alphanumeric)).then_some(i)
}

/// The length of a measured duration (`12ms`, `3.5µs`, `870us`, `41ns`) at the start of `s`.
fn duration_at(s: &[char]) -> Option<usize> {
    let mut i = digits(s, 1, usize::MAX)?;
    if s.get(i) == Some(&'.') {
        i += 1 + digits(&s[i + 1..], 1, usize::MAX)?;
    }
    let unit = ["ms", "µs", "us", "ns"].iter().find(|unit| {
        let unit: Vec<char> = unit.chars().collect();
        s.get(i..i + unit.len()) == Some(&unit[..])
    })?;
    let end = i + unit.chars().count();
    (!s.get(end).is_some_and(char::is_ascii_alphanumeric)).then_some(end)
}

fn is_base64_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

/// The length of a base64 blob at the start of `s`: at least 24 characters of the alphabet, with upper and
/// lower case letters and digits (so words, numbers and account ids stay), and its `=` padding.
fn base64_at(s: &[char]) -> Option<usize> {
    let n = s.iter().take_while(|c| is_base64_char(**c)).count();
    let body = &s[..n];
    let mixed = body.iter().any(char::is_ascii_uppercase)
        && body.iter().any(char::is_ascii_lowercase)
        && body.iter().any(char::is_ascii_digit);
    if n < 24 || !mixed {
        return None;
    }
    let padding = s[n..].iter().take(2).take_while(|c| **c == '=').count();
    Some(n + padding)
}

/// Whether a shown output is a failure as the CLI prints it: `Code (HTTP status): message`.
fn is_failure(expected: &str) -> bool {
    let first = expected.lines().next().unwrap_or_default();
    let Some((code, rest)) = first.split_once(" (") else {
        return false;
    };
    let code_like = !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    let status = rest.get(..5).unwrap_or_default();
    code_like && status.len() == 5 && status[..3].chars().all(|c| c.is_ascii_digit()) && &status[3..] == "):"
}

/// Every difference between what `doc` shows and what ran, one message per step.
fn compare(doc: &str, steps: &[Step], ran: &[Ran]) -> Vec<String> {
    assert_eq!(steps.len(), ran.len(), "one result per step");
    let mut shown = Normaliser::default();
    let mut actual = Normaliser::default();
    let mut problems = Vec::new();
    for (i, (step, ran)) in steps.iter().zip(ran).enumerate() {
        let want = shown.output(&step.expected);
        let got = actual.output(&ran.output);
        let what = format!("step {i} ({doc} line {}): `$ {}`", step.line, step.command);
        if want != got {
            let at = want.iter().zip(&got).position(|(w, g)| w != g).unwrap_or(want.len().min(got.len()));
            problems.push(format!(
                "{what}: the output differs from {doc} at output line {}\n  \
                 shown  (normalised): {:?}\n  actual (normalised): {:?}\n\
                 --- {doc} shows:\n{}--- the command printed:\n{}---",
                at + 1,
                want.get(at).map(String::as_str).unwrap_or("<no more lines>"),
                got.get(at).map(String::as_str).unwrap_or("<no more lines>"),
                step.expected,
                ran.output,
            ));
        }
        let should_fail = is_failure(&step.expected);
        if should_fail != (ran.status != 0) {
            problems.push(format!(
                "{what}: exit status {} but {doc} shows {}",
                ran.status,
                if should_fail { "a failure" } else { "success" },
            ));
        }
    }
    problems
}

#[test]
fn every_command_of_the_tutorial_prints_what_the_tutorial_shows() {
    let steps = console_steps(TUTORIAL);
    assert!(!steps.is_empty(), "the tutorial has no ```console commands");
    if let Some(serve) = steps.iter().find(|s| s.command.trim_start().starts_with("kmsim serve")) {
        panic!("line {}: `kmsim serve` would block the script; show it outside ```console blocks", serve.line);
    }
    let temp = tempfile::tempdir().expect("a temp dir");
    let data_dir = temp.path().join("data");
    let work_dir = temp.path().join("work");
    std::fs::create_dir_all(&work_dir).expect("creates the work dir");
    let server = Server::start(&test_serve_args(&serve_args(TUTORIAL), &data_dir));
    let ran = run_steps(&steps, &work_dir, &format!("http://{}", server.addr));
    drop(server);
    let problems = compare("docs/tutorial.md", &steps, &ran);
    assert!(
        problems.is_empty(),
        "docs/tutorial.md does not match the product ({} problems):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The README's "Five minutes with the CLI" is real output, not an abridgement: its ```console block (the
/// README's only one) runs against the server the README starts, `serve --in-memory`, and prints what it shows.
#[test]
fn the_readme_transcript_is_what_the_cli_prints() {
    let steps = console_steps(README);
    assert!(steps.len() >= 10, "the README's five-minute transcript has {} commands", steps.len());
    assert!(README.contains("(`cargo run --release -- serve --in-memory`)"), "the README starts an in-memory server");
    let temp = tempfile::tempdir().expect("a temp dir");
    let server = Server::start(&["--in-memory".to_owned(), "--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let ran = run_steps(&steps, temp.path(), &format!("http://{}", server.addr));
    drop(server);
    let problems = compare("README.md", &steps, &ran);
    assert!(
        problems.is_empty(),
        "README.md's transcript does not match the product ({} problems):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_tutorial_walks_a_key_through_its_whole_life() {
    let steps = console_steps(TUTORIAL);
    let position = |needle: &str| {
        steps
            .iter()
            .position(|s| s.command.contains(needle))
            .unwrap_or_else(|| panic!("the tutorial runs no `{needle}` command"))
    };
    let order = [
        "kmsim key create",
        "kmsim encrypt",
        "kmsim decrypt",
        "kmsim key rotate",
        "kmsim key versions",
        "kmsim key disable",
        "kmsim audit query",
        "kmsim key schedule-deletion",
        "kmsim clock advance",
        "kmsim events list",
        "kmsim key history",
    ];
    let positions: Vec<usize> = order.iter().map(|needle| position(needle)).collect();
    assert!(positions.is_sorted(), "the steps come in the order of a key's life: {order:?} at {positions:?}");
    let audit = &steps[position("kmsim audit query")].command;
    assert!(
        audit.contains(r#"* AND (event.serviceName: "Kms") AND (event.errorCode:"Rejected.Disabled")"#),
        "the audit step uses the seed's query for failed calls: {audit}"
    );
    let shown = |needle: &str| {
        assert!(steps.iter().any(|s| s.expected.contains(needle)), "the tutorial never shows {needle:?}");
    };
    shown("Rejected.Disabled (409): ");
    shown("PendingDeletion");
    shown("Key:DeleteKey:ScheduleDeletion");
    shown("Key:DeleteKey:ActualDeletion");
    shown("Forbidden.KeyNotFound (404): ");
    let args = serve_args(TUTORIAL);
    assert!(args.contains(&"--listen".to_owned()) && args.contains(&"--data-dir".to_owned()), "{args:?}");
}

// --- the harness's own checks: the comparison is strict where it must be ---

fn step(command: &str, expected: &str) -> Step {
    Step { line: 1, command: command.to_owned(), expected: expected.to_owned() }
}

fn ran(output: &str, status: i32) -> Ran {
    Ran { output: output.to_owned(), status }
}

#[test]
fn the_normaliser_keeps_fixed_text_and_replaces_what_varies() {
    let mut n = Normaliser::default();
    let fixed = [
        "Rejected.Disabled (409): The request was rejected because the key state is Disabled.",
        "Forbidden.KeyNotFound (404): The specified Key is not found.",
        "keyState PendingDeletion",
        "keySpec Aliyun_AES_256",
        "offsetSeconds 691200",
        "totalCount 2",
        "rotationInterval 2592000s",
        "plaintextBase64 aGVsbG8sIGttcw==",
        "eventTime eventName action outcome errorCode keyId clientIp userAgent accessKeyId requestId",
        "WARN Key:DeleteKey:ActualDeletion",
    ];
    for line in fixed {
        assert_eq!(n.output(line), [line], "kept as it is");
    }
    let line = "2026-11-29T01:05:44.669Z  WARN   Key:DeleteKey:ActualDeletion    \
                acs:kms:cn-hangzhou:1192853035118460:key/95ca24cd-cf2d-4c2e-a5ff-1584abb5818e";
    assert_eq!(
        n.output(line),
        ["<time> WARN Key:DeleteKey:ActualDeletion acs:kms:cn-hangzhou:1192853035118460:key/<uuid-1>"]
    );
    assert_eq!(
        n.output("deleteDate  2026-11-29T01:05:44Z\nnow 2026-11-22T09:05:44+08:00"),
        ["deleteDate <time>", "now <time>"]
    );
    let blob = "ciphertextBlob  ASQ5NWNhMjRjZC1jZjJkLTRjMmUtYTVmZi0xNTg0YWJiNTgxOGUtujEDAyxLkYJKD1a5vC6Jx8QDQ==";
    assert_eq!(n.output(blob), ["ciphertextBlob <base64>"]);
    assert_eq!(
        n.output("127.0.0.1  kmsim-cli/0.1.0 tonic/0.14.9  took 12ms"),
        ["127.0.0.1 kmsim-cli/<version> tonic/<version> took <duration>"]
    );
    assert_eq!(
        n.output("keyId 95CA24CD-CF2D-4C2E-A5FF-1584ABB5818E\nx 0c1d2e3f-0000-4000-8000-000000000000"),
        ["keyId <uuid-1>", "x <uuid-2>"]
    );
    assert_eq!(n.output("a\n\nb\n\n\n"), ["a", "", "b"], "inner blank lines count, trailing ones do not");
}

#[test]
fn the_comparison_fails_on_any_change_of_fixed_text() {
    let key = "95ca24cd-cf2d-4c2e-a5ff-1584abb5818e";
    let other = "0d603b4a-1c2d-4e5f-8a9b-0c1d2e3f71be";
    let shown = [
        step("KEY=$(kmsim key create --query keyId)", ""),
        step(
            "kmsim key describe $KEY",
            &format!("keyId     {key}\nkeyState  PendingDeletion\ndeleteDate  2026-11-29T01:05:44Z\n"),
        ),
        step("kmsim encrypt --key-id $KEY --plaintext x", "Rejected.Disabled (409): The key state is Disabled.\n"),
    ];
    let good = [
        ran("", 0),
        ran(&format!("keyId {other}\nkeyState PendingDeletion\ndeleteDate  2031-01-01T00:00:00Z\n\n"), 0),
        ran("Rejected.Disabled (409): The key state is Disabled.\n", 1),
    ];
    assert_eq!(compare("docs/tutorial.md", &shown, &good), Vec::<String>::new(), "only ids and times differ");

    let changed = |index: usize, from: &str, to: &str| {
        let mut runs = good.to_vec();
        runs[index].output = runs[index].output.replace(from, to);
        assert_ne!(runs[index].output, good[index].output, "{from} is in the output");
        let problems = compare("docs/tutorial.md", &shown, &runs);
        assert_eq!(problems.len(), 1, "changing {from:?} to {to:?} is caught: {problems:?}");
        assert!(problems[0].contains("step "), "the message names the step: {}", problems[0]);
    };
    changed(1, "PendingDeletion", "Disabled");
    changed(1, "PendingDeletion", "Enabled");
    changed(1, "keyState", "state");
    changed(2, "Rejected.Disabled", "Rejected.PendingDeletion");
    changed(2, "(409)", "(400)");
    changed(1, "deleteDate  2031-01-01T00:00:00Z\n", "");

    // The same key in the tutorial must be the same key in the run.
    let mut two_keys = shown.to_vec();
    two_keys.push(step("kmsim key describe $KEY", &format!("keyId {key}\n")));
    let mut runs = good.to_vec();
    runs.push(ran(&format!("keyId {other}\n"), 0));
    assert!(compare("docs/tutorial.md", &two_keys, &runs).is_empty());
    runs[3].output = format!("keyId {key}\n");
    assert_eq!(
        compare("docs/tutorial.md", &two_keys, &runs).len(),
        1,
        "a different key where the tutorial shows the same one"
    );

    // A failure the tutorial shows must fail, and a success must succeed.
    let mut runs = good.to_vec();
    runs[2].status = 0;
    assert_eq!(compare("docs/tutorial.md", &shown, &runs).len(), 1);
    let mut runs = good.to_vec();
    runs[0].status = 1;
    assert_eq!(compare("docs/tutorial.md", &shown, &runs).len(), 1);
}

#[test]
fn the_parser_takes_commands_outputs_and_continuations_from_console_blocks_only() {
    let doc = "Intro\n\n```sh\nkmsim serve --listen 127.0.0.1:9595 --data-dir kmsim-tutorial\n```\n\n\
               ```console\n$ KEY=$(kmsim key create --query keyId)\n$ kmsim key describe $KEY \\\n  \
               --output json\n{\n  \"keyState\": \"Enabled\"\n}\n\n$ kmsim clock advance 8d\n```\n\n\
               ```sh\n$ not a step\n```\n";
    let steps = console_steps(doc);
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "KEY=$(kmsim key create --query keyId)",
            "kmsim key describe $KEY \\\n  --output json",
            "kmsim clock advance 8d"
        ]
    );
    assert_eq!(steps[0].expected, "");
    assert_eq!(steps[1].expected, "{\n  \"keyState\": \"Enabled\"\n}\n\n");
    assert_eq!(steps[1].line, 9);
    assert_eq!(serve_args(doc), ["--listen", "127.0.0.1:9595", "--data-dir", "kmsim-tutorial"]);
    let args = test_serve_args(&serve_args(doc), Path::new("/tmp/x"));
    assert_eq!(args, ["--listen", "127.0.0.1:0", "--data-dir", "/tmp/x"]);
    assert!(is_failure("Forbidden.KeyNotFound (404): The specified Key is not found.\n"));
    assert!(!is_failure("keyId  95ca24cd\n"));
    assert!(!is_failure(""));
}
