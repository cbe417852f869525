//! Trails: mirrors of committed audit records to JSON-lines files, one record
//! per line in a chosen format, for pipelines that tail files (a SIEM agent,
//! `jq`, …).
//!
//! Each trail has event selectors, as CloudTrail does: it can leave out
//! read-only events, or all cryptographic ones. Records reach a trail only
//! after they are committed, through an unbounded queue drained by the
//! trail's own writer task, so a slow disk never delays a KMS call.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::formats::{Format, describe};
use super::json::Text;
use super::record::AuditRecord;

/// What a trail leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selectors {
    pub exclude_read_only: bool,
    pub exclude_cryptographic: bool,
}

impl Selectors {
    pub fn admits(&self, record: &AuditRecord) -> bool {
        !(self.exclude_read_only && record.event_rw == "Read"
            || self.exclude_cryptographic && record.is_cryptographic())
    }
}

/// How a trail is configured at start.
#[derive(Debug, Clone)]
pub struct TrailSpec {
    pub path: PathBuf,
    pub format: Format,
    pub selectors: Selectors,
}

pub struct Trail {
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    selectors: RwLock<Selectors>,
    /// Taken away when the trail closes, which lets its writer finish.
    queue: Mutex<Option<mpsc::UnboundedSender<Arc<AuditRecord>>>>,
}

impl Trail {
    pub fn selectors(&self) -> Selectors {
        *self.selectors.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_selectors(&self, selectors: Selectors) {
        *self.selectors.write().unwrap_or_else(|p| p.into_inner()) = selectors;
    }
}

/// Every trail of the server, named `trail-1`, `trail-2`, … in the order given.
#[derive(Default)]
pub struct Trails {
    trails: Vec<Arc<Trail>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl Trails {
    /// Opens (appending to) each trail's file and starts its writer.
    pub fn open(specs: Vec<TrailSpec>) -> std::io::Result<Trails> {
        let mut trails = Vec::new();
        let mut writers = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            if let Some(dir) = spec.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            // Records name identities, source IPs and encryption contexts: a new trail is its owner's alone.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&spec.path)?;
            let (queue, records) = mpsc::unbounded_channel();
            let trail = Arc::new(Trail {
                name: format!("trail-{}", i + 1),
                path: spec.path,
                format: spec.format,
                selectors: RwLock::new(spec.selectors),
                queue: Mutex::new(Some(queue)),
            });
            writers.push(tokio::spawn(write_lines(trail.clone(), file, records)));
            trails.push(trail);
        }
        Ok(Trails { trails, writers: Mutex::new(writers) })
    }

    pub fn is_empty(&self) -> bool {
        self.trails.is_empty()
    }

    pub fn all(&self) -> &[Arc<Trail>] {
        &self.trails
    }

    pub fn find(&self, name: &str) -> Option<&Arc<Trail>> {
        self.trails.iter().find(|t| t.name == name)
    }

    /// Hands committed records to every trail whose selectors admit them.
    pub fn mirror(&self, records: &[Arc<AuditRecord>]) {
        for trail in &self.trails {
            let selectors = trail.selectors();
            let queue = trail.queue.lock().unwrap_or_else(|p| p.into_inner());
            let Some(queue) = queue.as_ref() else { continue };
            for record in records.iter().filter(|r| selectors.admits(r)) {
                let _ = queue.send(record.clone());
            }
        }
    }

    /// Stops taking records and waits until every file has what it was given.
    pub async fn close(&self) {
        for trail in &self.trails {
            trail.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|p| p.into_inner()));
        for writer in writers {
            let _ = writer.await;
        }
    }
}

/// A trail's writer: appends each record as one line, flushing whenever the queue runs dry.
async fn write_lines(trail: Arc<Trail>, file: std::fs::File, mut records: mpsc::UnboundedReceiver<Arc<AuditRecord>>) {
    let mut out = std::io::BufWriter::new(file);
    let mut line = String::new();
    while let Some(first) = records.recv().await {
        let mut next = Some(first);
        while let Some(record) = next {
            if let Err(e) = write_line(&mut out, &record, trail.format, &mut line) {
                tracing::error!(trail = %trail.name, path = %trail.path.display(), error = %e, "trail write failed");
            }
            next = records.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            tracing::error!(trail = %trail.name, path = %trail.path.display(), error = %e, "trail flush failed");
        }
    }
}

/// One record as one line of `format`, written straight from the record
/// ([`describe`]) into `line`, a buffer kept from one line to the next.
fn write_line(out: &mut impl Write, record: &AuditRecord, format: Format, line: &mut String) -> std::io::Result<()> {
    let mut text = Text::reusing(std::mem::take(line));
    describe(record, format, &mut text);
    *line = text.into_string();
    line.push('\n');
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_leave_out_reads_or_cryptographic_calls() {
        let record = |action: &str, rw: &str| AuditRecord {
            action: action.into(),
            event_rw: rw.into(),
            ..serde_json::from_value(serde_json::json!({
                "eventId": "e", "eventTime": 0, "eventName": "", "action": "", "eventRw": "", "eventType": "",
                "serviceName": "", "region": "", "accountId": "", "resourceType": "", "keyId": "", "keyArn": "",
                "keySpec": "", "keyVersionId": "", "outcome": "Success", "errorCode": "", "errorMessage": "",
                "httpStatus": 200, "requestBytes": 0, "responseBytes": 0, "plaintextBytes": null,
                "ciphertextBytes": null, "clientIp": "", "clientPort": 0, "userAgent": "", "accessKeyId": "",
                "requestId": "", "latencyUs": 0, "requestParameters": {}, "responseElements": {}, "referencedKeys": []
            }))
            .unwrap()
        };
        let (encrypt, describe, disable) =
            (record("kms.encrypt", "Read"), record("kms.describe_key", "Read"), record("kms.disable_key", "Write"));
        let all = Selectors::default();
        assert!(all.admits(&encrypt) && all.admits(&describe) && all.admits(&disable));
        let writes = Selectors { exclude_read_only: true, ..Selectors::default() };
        assert!(!writes.admits(&encrypt) && !writes.admits(&describe) && writes.admits(&disable));
        let management = Selectors { exclude_cryptographic: true, ..Selectors::default() };
        assert!(!management.admits(&encrypt) && management.admits(&describe) && management.admits(&disable));
    }
}
