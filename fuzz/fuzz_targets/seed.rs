//! The seed file (src/seed/mod.rs): `kmsim::seed::parse` on arbitrary text. An error must name a line of the
//! text, and every line kept for a parsed value must be one too.

#![no_main]

use kmsim::seed::{self, line_of};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Lines as YAML counts them: LF, CR and CRLF each end one. A line may be reported just past the last line
    // break (the end of the document).
    let line_breaks = text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    let lines = 1..=line_breaks as u64 + 1;
    let check =
        |line: u64, what: &str| assert!(lines.contains(&line), "{what} at line {line}, outside 1..={}", lines.end());
    match seed::parse(text) {
        Ok(doc) => {
            let spans = [
                doc.instances.iter().map(line_of).collect::<Vec<_>>(),
                doc.keys.iter().map(line_of).collect(),
                doc.secrets.iter().map(line_of).collect(),
                doc.policies.iter().map(line_of).collect(),
                doc.users.iter().map(line_of).collect(),
                doc.faults.iter().map(line_of).collect(),
            ];
            spans.iter().flatten().for_each(|&line| check(line, "an item"));
            for key in &doc.keys {
                check(line_of(&key.value.id), "a key id");
                key.value.versions.iter().map(line_of).for_each(|line| check(line, "a key version"));
            }
            doc.secrets.iter().map(|secret| line_of(&secret.value.name)).for_each(|line| check(line, "a secret"));
        }
        Err(error) => check(error.line, &format!("error {:?}", error.reason)),
    }
});
