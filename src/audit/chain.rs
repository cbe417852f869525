//! Tamper evidence for the audit trail.
//!
//! Every record is linked to the one committed before it: its link is
//! SHA-256 over a domain tag, the previous link, its sequence number and the
//! canonical encoding of the record (its JSON, as `serde_json` writes a
//! `Value`, fields in record order). Changing, removing, inserting or moving
//! a record breaks every link from that point on. So that the whole chain
//! cannot simply be recomputed, the store signs a [`Digest`] of the head of the
//! chain at intervals with an Ed25519 key kept in the data directory.
//!
//! [`Verifier`] walks records oldest first and names the first one that does
//! not fit; it serves both the data directory and exported files, and the
//! store's own check at start of what it is about to extend.
//!
//! What the evidence is worth rests on what is kept outside the data
//! directory: the signing key lives inside it, so whoever can write the
//! database can also re-sign a rewritten trail. A public key pinned by the
//! verifier stops a forger who replaces the key; a digest kept from an earlier
//! verification ([`Verifier::keeping`]) stops one who holds it, for every record
//! up to that digest.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The link before the first record ever written.
pub const GENESIS: [u8; 32] = [0; 32];

const LINK_TAG: &[u8] = b"kmsim-audit-link-v1";
const DIGEST_TAG: &[u8] = b"kmsim-audit-digest-v1";

/// The bytes a record is hashed over.
pub fn canonical(record: &Value) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

/// The link of record `seq` whose canonical encoding is `record`, after `previous`.
pub fn link(previous: &[u8; 32], seq: i64, record: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(LINK_TAG);
    hash.update(previous);
    hash.update(seq.to_be_bytes());
    hash.update(record);
    hash.finalize().into()
}

/// A signed statement that the chain's link at `seq` was `link` at `time_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub seq: i64,
    pub time_ms: i64,
    #[serde(with = "hex_bytes")]
    pub link: [u8; 32],
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

impl Digest {
    pub fn sign(key: &SigningKey, seq: i64, time_ms: i64, link: [u8; 32]) -> Digest {
        let signature = key.sign(&digest_message(seq, time_ms, &link)).to_bytes();
        Digest { seq, time_ms, link, signature }
    }

    pub fn is_signed_by(&self, key: &VerifyingKey) -> bool {
        key.verify(&digest_message(self.seq, self.time_ms, &self.link), &Signature::from_bytes(&self.signature)).is_ok()
    }
}

fn digest_message(seq: i64, time_ms: i64, link: &[u8; 32]) -> Vec<u8> {
    [DIGEST_TAG, &seq.to_be_bytes(), &time_ms.to_be_bytes(), link].concat()
}

/// What a verification found wrong first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The sequence number of the first record (or digest) that does not fit.
    pub seq: i64,
    pub event_id: String,
    pub reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.event_id.as_str() {
            "" => write!(f, "record {}: {}", self.seq, self.reason),
            id => write!(f, "record {} (event {id}): {}", self.seq, self.reason),
        }
    }
}

/// What a clean verification covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub digests: u64,
    /// Records after the last signed digest: chained, but not yet signed.
    pub unsigned_tail: u64,
    /// The first and last record checked; both 0 when there were none.
    pub first_seq: i64,
    pub last_seq: i64,
    /// The newest signed digest among the records checked: every record up to
    /// its `seq` is signed. Kept outside the data directory and handed back to
    /// a later verification ([`Verifier::keeping`]), it proves that nothing up to
    /// it changed since, even to someone who holds the signing key.
    pub last_digest: Option<Digest>,
    /// Whether the data directory's store was stopped cleanly, which signs its
    /// head; `None` where that does not apply (a running server's own check, an
    /// export) or was not recorded (a store last written by an older kmsim).
    pub stopped_cleanly: Option<bool>,
}

/// What may follow the last signed digest once every record has been fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// A store that is open, or was not stopped cleanly, signs its head only
    /// from time to time: records after the last digest are chained but
    /// unsigned, and reported as such.
    MayBeUnsigned,
    /// A store that was stopped cleanly signed its head as it stopped.
    SignedAtStop,
    /// An export signs everything it carries before it begins.
    SignedForExport,
}

/// Checks records fed oldest first against the chain and the signed digests.
pub struct Verifier {
    key: VerifyingKey,
    previous: [u8; 32],
    next_seq: i64,
    digests: BTreeMap<i64, Digest>,
    /// A digest kept outside the store, which the trail must reach and agree with.
    kept: Option<Digest>,
    verified: Verified,
}

impl Verifier {
    /// `anchor` is the link of the record before the first one fed (after
    /// retention pruned older ones, or before an export's first record), with
    /// that record's sequence number. A digest among `digests` at the anchor
    /// signs it: the walk then starts from a signed point.
    pub fn new(key: VerifyingKey, anchor: ([u8; 32], i64), digests: Vec<Digest>) -> Result<Verifier, Violation> {
        let mut by_seq = BTreeMap::new();
        for digest in digests {
            if !digest.is_signed_by(&key) {
                return Err(Violation {
                    seq: digest.seq,
                    event_id: String::new(),
                    reason: "its digest's signature is not valid".into(),
                });
            }
            by_seq.insert(digest.seq, digest);
        }
        let (previous, before) = anchor;
        // A trail cut at a digest (by retention, or a start checking what follows its last one) is signed up to it.
        let last_digest = by_seq.get(&before).filter(|digest| digest.link == previous).cloned();
        let verified = Verified { last_digest, ..Verified::default() };
        Ok(Verifier { key, previous, next_seq: before + 1, digests: by_seq, kept: None, verified })
    }

    /// Also requires the trail to reach `kept` and agree with it: a digest an
    /// operator kept outside the data directory after an earlier verification.
    /// It is checked against the trusted key, so a copy taken from another
    /// trail (or mistyped) is refused rather than silently agreeing with nothing.
    pub fn keeping(mut self, kept: Digest) -> Result<Verifier, Violation> {
        let violation = |reason: String| Violation { seq: kept.seq, event_id: String::new(), reason };
        if !kept.is_signed_by(&self.key) {
            return Err(violation("the kept digest for it is not signed by the trusted key".into()));
        }
        let anchor = self.next_seq - 1;
        if kept.seq < anchor {
            return Err(violation(format!(
                "the kept digest for it can no longer be checked: the trail now begins after record {anchor} \
                 (cut there by retention, or by someone else); verify with a later kept digest"
            )));
        }
        if kept.seq == anchor && kept.link != self.previous {
            return Err(violation("the trail no longer starts from the link the kept digest signed".into()));
        }
        self.kept = Some(kept);
        Ok(self)
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The last record fed (or the anchor) and its link.
    pub fn head(&self) -> (i64, [u8; 32]) {
        (self.next_seq - 1, self.previous)
    }

    /// Feeds the next record with the link kept beside it. Every record of a
    /// chained trail carries its link, so one without is a violation: links are
    /// never filled in after the fact.
    pub fn feed(&mut self, seq: i64, record: &Value, stored: Option<&[u8; 32]>) -> Result<(), Violation> {
        let event_id = record["eventId"].as_str().unwrap_or_default().to_owned();
        let violation = |reason: &str| Violation { seq, event_id: event_id.clone(), reason: reason.to_owned() };
        let expected = self.next_seq;
        if seq > expected {
            return Err(violation(&format!("records {expected} to {} before it are missing", seq - 1)));
        }
        if seq < expected {
            return Err(violation("it is out of order or duplicated"));
        }
        let computed = link(&self.previous, seq, &canonical(record));
        match stored {
            None => return Err(violation("it has no chain link: its link was removed")),
            Some(stored) if stored != &computed => {
                return Err(violation("it does not match its chain link: it was changed, or inserted, or moved"));
            }
            Some(_) => {}
        }
        if let Some(digest) = self.digests.get(&seq)
            && digest.link != computed
        {
            return Err(violation(
                "it does not match the signed digest for its position: it or an earlier record was changed",
            ));
        }
        if let Some(kept) = &self.kept
            && kept.seq == seq
            && kept.link != computed
        {
            return Err(violation(
                "it does not match the digest kept outside the store for its position: it or an earlier record \
                 was changed, and the store's own digests were re-signed or removed",
            ));
        }
        if let Some(digest) = self.digests.get(&seq) {
            self.verified.digests += 1;
            self.verified.unsigned_tail = 0;
            self.verified.last_digest = Some(digest.clone());
        } else {
            self.verified.unsigned_tail += 1;
        }
        if self.verified.records == 0 {
            self.verified.first_seq = seq;
        }
        self.verified.last_seq = seq;
        self.previous = computed;
        self.next_seq = seq + 1;
        self.verified.records += 1;
        Ok(())
    }

    /// Ends the walk: a signed digest (or the kept one) beyond the last record
    /// means records were cut off the end, and where `tail` says the head was
    /// signed, records after the last digest mean digests were removed or
    /// records appended.
    pub fn finish(self, tail: Tail) -> Result<Verified, Violation> {
        let last = self.next_seq - 1;
        let beyond = self.digests.range(last + 1..).next().map(|(&seq, _)| seq);
        if let Some(seq) = beyond {
            return Err(Violation {
                seq: last + 1,
                event_id: String::new(),
                reason: format!("it is missing: a signed digest covers records up to {seq}"),
            });
        }
        if let Some(kept) = self.kept.as_ref().filter(|kept| kept.seq > last) {
            return Err(Violation {
                seq: last + 1,
                event_id: String::new(),
                reason: format!("it is missing: the digest kept outside the store covers records up to {}", kept.seq),
            });
        }
        let unsigned = self.verified.unsigned_tail;
        let why = match tail {
            Tail::MayBeUnsigned => None,
            Tail::SignedAtStop => Some("the store was stopped cleanly, which signs its head"),
            Tail::SignedForExport => Some("an export signs everything it carries"),
        };
        if let (Some(why), true) = (why, unsigned > 0) {
            let first = last - i64::try_from(unsigned).unwrap_or(i64::MAX) + 1;
            let covered = match &self.verified.last_digest {
                Some(digest) => format!("the last signed digest covers records up to {}", digest.seq),
                None => "no signed digest covers any of them".to_owned(),
            };
            return Err(Violation {
                seq: first,
                event_id: String::new(),
                reason: format!(
                    "records {first} to {last} are not covered by a signed digest, yet {why}: {covered}, so digests \
                     were removed or records appended"
                ),
            });
        }
        Ok(self.verified)
    }
}

/// Verifies a native export (JSON lines as `ExportAuditEvents` writes them:
/// a `kmsimAuditExport` header, records each carrying its `auditChain`, and a
/// `kmsimAuditDigests` trailer). `pinned` is the public key to trust; without
/// it the header's key is used, which proves integrity only against someone
/// who did not also replace the key. `kept` is a digest kept from an earlier
/// verification, which the export must reach and agree with. Every record must
/// be covered by a signed digest: the links alone are unkeyed, so records
/// after the last digest (or an export with no digests) could have been
/// rewritten by anyone. The outer error is a file that is not an export at all.
pub fn verify_export(
    text: &str,
    pinned: Option<VerifyingKey>,
    kept: Option<Digest>,
) -> Result<Result<Verified, Violation>, String> {
    let lines: Vec<(usize, Value)> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map(|v| (i + 1, v)).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect::<Result<_, _>>()?;
    let header = lines
        .iter()
        .find_map(|(_, v)| v.get("kmsimAuditExport"))
        .ok_or("no kmsimAuditExport header line: only native exports carry the chain")?;
    let key = match pinned {
        Some(key) => key,
        None => header["publicKey"]
            .as_str()
            .and_then(unhex::<32>)
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .ok_or("the header's publicKey is not an Ed25519 key")?,
    };
    let anchor_link =
        header["anchor"]["link"].as_str().and_then(unhex::<32>).ok_or("the header's anchor is malformed")?;
    let anchor_seq = header["anchor"]["seq"].as_i64().ok_or("the header's anchor is malformed")?;
    let digests: Vec<Digest> = match lines.iter().find_map(|(_, v)| v.get("kmsimAuditDigests")) {
        Some(digests) => {
            serde_json::from_value(digests.clone()).map_err(|e| format!("the digests are malformed: {e}"))?
        }
        None => return Err("no kmsimAuditDigests trailer line: the export is cut short".into()),
    };
    let verifier = Verifier::new(key, (anchor_link, anchor_seq), digests);
    let mut verifier = match verifier.and_then(|verifier| match kept {
        Some(kept) => verifier.keeping(kept),
        None => Ok(verifier),
    }) {
        Ok(verifier) => verifier,
        Err(violation) => return Ok(Err(violation)),
    };
    for (line, value) in lines {
        let Value::Object(mut record) = value else { return Err(format!("line {line}: not a JSON object")) };
        if record.contains_key("kmsimAuditExport") || record.contains_key("kmsimAuditDigests") {
            continue;
        }
        let Some(link) = record.shift_remove("auditChain") else {
            let event_id = record.get("eventId").and_then(Value::as_str).unwrap_or_default().to_owned();
            return Ok(Err(Violation { seq: 0, event_id, reason: format!("line {line} has no auditChain") }));
        };
        let seq = link["seq"].as_i64().ok_or(format!("line {line}: auditChain.seq is missing"))?;
        let stored = link["link"].as_str().and_then(unhex::<32>);
        if let Err(violation) = verifier.feed(seq, &Value::Object(record), stored.as_ref()) {
            return Ok(Err(violation));
        }
    }
    Ok(verifier.finish(Tail::SignedForExport))
}

/// Hex in JSON for fixed-size byte arrays.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        super::unhex(&text).ok_or_else(|| serde::de::Error::custom("expected hex bytes"))
    }
}

/// A public key as SubjectPublicKeyInfo PEM (RFC 8410).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    use base64::Engine as _;
    const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    let der = [&ED25519_SPKI_PREFIX[..], key.as_bytes()].concat();
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
}

pub use crate::engine::crypto::hex;

pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn records(n: i64) -> Vec<Value> {
        (1..=n).map(|i| json!({"eventId": format!("e{i}"), "eventName": "Encrypt", "n": i})).collect()
    }

    /// The links of `records` from genesis, as the store writes them.
    fn chain(records: &[Value]) -> Vec<[u8; 32]> {
        let mut previous = GENESIS;
        records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                previous = link(&previous, i as i64 + 1, &canonical(r));
                previous
            })
            .collect()
    }

    fn verify(
        records: &[(i64, Value)],
        links: &[[u8; 32]],
        digests: Vec<Digest>,
        key: &SigningKey,
    ) -> Result<Verified, Violation> {
        let mut verifier = Verifier::new(key.verifying_key(), (GENESIS, 0), digests)?;
        for ((seq, record), stored) in records.iter().zip(links) {
            verifier.feed(*seq, record, Some(stored))?;
        }
        verifier.finish(Tail::MayBeUnsigned)
    }

    #[test]
    fn an_untouched_chain_verifies_and_each_kind_of_tampering_names_the_first_bad_record() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let originals = records(6);
        let links = chain(&originals);
        let digest = Digest::sign(&key, 4, 1_000, links[3]);
        let numbered: Vec<(i64, Value)> =
            originals.iter().cloned().enumerate().map(|(i, r)| (i as i64 + 1, r)).collect();
        let clean = verify(&numbered, &links, vec![digest.clone()], &key).unwrap();
        let expected = Verified {
            records: 6,
            digests: 1,
            unsigned_tail: 2,
            first_seq: 1,
            last_seq: 6,
            last_digest: Some(digest.clone()),
            stopped_cleanly: None,
        };
        assert_eq!(clean, expected);

        let mut modified = numbered.clone();
        modified[2].1["eventName"] = json!("Decrypt");
        assert_eq!(verify(&modified, &links, vec![digest.clone()], &key).unwrap_err().seq, 3);

        let mut deleted = numbered.clone();
        deleted.remove(1);
        let deleted_links: Vec<_> = links.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| *l).collect();
        let violation = verify(&deleted, &deleted_links, vec![digest.clone()], &key).unwrap_err();
        assert_eq!((violation.seq, violation.reason.contains("missing")), (3, true));

        let mut swapped = numbered.clone();
        swapped.swap(3, 4);
        let mut swapped_links = links.clone();
        swapped_links.swap(3, 4);
        assert_eq!(verify(&swapped, &swapped_links, vec![digest.clone()], &key).unwrap_err().seq, 5);

        // A forger who recomputes every link after changing record 2 is caught by the signed digest at 4.
        let mut forged = numbered.clone();
        forged[1].1["eventName"] = json!("ExportKey");
        let forged_links = chain(&forged.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>());
        let violation = verify(&forged, &forged_links, vec![digest.clone()], &key).unwrap_err();
        assert_eq!(violation.seq, 4);

        let truncated = verify(&numbered[..3], &links[..3], vec![digest.clone()], &key).unwrap_err();
        assert_eq!(truncated.seq, 4);

        let mut bad_signature = digest;
        bad_signature.signature[0] ^= 1;
        assert!(verify(&numbered, &links, vec![bad_signature], &key).is_err());
    }

    /// Walks `records` (numbered from 1) with their `links` through a verifier that may keep a digest.
    fn walk(
        records: &[Value],
        links: &[[u8; 32]],
        digests: Vec<Digest>,
        key: &SigningKey,
        (kept, tail): (Option<Digest>, Tail),
    ) -> Result<Verified, Violation> {
        let mut verifier = Verifier::new(key.verifying_key(), (GENESIS, 0), digests)?;
        if let Some(kept) = kept {
            verifier = verifier.keeping(kept)?;
        }
        for (i, (record, stored)) in records.iter().zip(links).enumerate() {
            verifier.feed(i as i64 + 1, record, Some(stored))?;
        }
        verifier.finish(tail)
    }

    #[test]
    fn a_record_without_its_link_is_a_violation_never_a_record_to_link_again() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let originals = records(3);
        let links = chain(&originals);
        let mut verifier = Verifier::new(key.verifying_key(), (GENESIS, 0), Vec::new()).unwrap();
        verifier.feed(1, &originals[0], Some(&links[0])).unwrap();
        let violation = verifier.feed(2, &originals[1], None).unwrap_err();
        assert_eq!((violation.seq, violation.reason.contains("no chain link")), (2, true), "{violation}");
    }

    #[test]
    fn where_the_head_was_signed_records_after_the_last_digest_are_a_violation() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let originals = records(6);
        let links = chain(&originals);
        let at_4 = Digest::sign(&key, 4, 1_000, links[3]);
        let at_6 = Digest::sign(&key, 6, 1_000, links[5]);
        let open = walk(&originals, &links, vec![at_4.clone()], &key, (None, Tail::MayBeUnsigned)).unwrap();
        assert_eq!((open.unsigned_tail, open.last_digest.map(|d| d.seq)), (2, Some(4)));
        for tail in [Tail::SignedAtStop, Tail::SignedForExport] {
            let violation = walk(&originals, &links, vec![at_4.clone()], &key, (None, tail)).unwrap_err();
            assert_eq!(violation.seq, 5, "{violation}");
            assert!(violation.reason.contains("records 5 to 6"), "{violation}");
            // No digest at all is the same thing, from the first record.
            let violation = walk(&originals, &links, Vec::new(), &key, (None, tail)).unwrap_err();
            assert_eq!(violation.seq, 1, "{violation}");
            assert!(violation.reason.contains("no signed digest"), "{violation}");
            let signed = walk(&originals, &links, vec![at_4.clone(), at_6.clone()], &key, (None, tail)).unwrap();
            assert_eq!((signed.unsigned_tail, signed.first_seq, signed.last_seq), (0, 1, 6));
        }
        // Nothing to sign is nothing missing.
        assert_eq!(walk(&[], &[], Vec::new(), &key, (None, Tail::SignedAtStop)).unwrap(), Verified::default());
    }

    /// The signing key is where the trail is: only a digest kept elsewhere
    /// catches a forger who holds it and re-signs.
    #[test]
    fn a_kept_digest_catches_a_forger_who_re_signs_and_a_trail_cut_back_before_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let originals = records(6);
        let links = chain(&originals);
        let kept = Digest::sign(&key, 4, 1_000, links[3]);
        let honest = (Some(kept.clone()), Tail::SignedAtStop);
        let digests = vec![kept.clone(), Digest::sign(&key, 6, 1_000, links[5])];
        assert!(walk(&originals, &links, digests, &key, honest.clone()).is_ok());

        let mut forged = originals.clone();
        forged[1]["eventName"] = json!("ExportKey");
        let forged_links = chain(&forged);
        let resigned = vec![Digest::sign(&key, 6, 1_000, forged_links[5])];
        assert!(walk(&forged, &forged_links, resigned.clone(), &key, (None, Tail::SignedAtStop)).is_ok());
        let violation = walk(&forged, &forged_links, resigned, &key, honest.clone()).unwrap_err();
        assert_eq!(violation.seq, 4, "{violation}");
        assert!(violation.reason.contains("kept outside"), "{violation}");

        // Cut back to a signed point before the kept digest, with the later digests gone.
        let cut = vec![Digest::sign(&key, 3, 1_000, links[2])];
        assert!(walk(&originals[..3], &links[..3], cut.clone(), &key, (None, Tail::SignedAtStop)).is_ok());
        let violation = walk(&originals[..3], &links[..3], cut, &key, honest).unwrap_err();
        assert_eq!(violation.seq, 4, "{violation}");

        let other = SigningKey::from_bytes(&[8; 32]);
        let foreign = Digest::sign(&other, 4, 1_000, links[3]);
        assert!(walk(&originals, &links, Vec::new(), &key, (Some(foreign), Tail::MayBeUnsigned)).is_err());

        // A trail that now begins after the kept digest cannot vouch for it.
        let verifier = Verifier::new(key.verifying_key(), (links[4], 5), Vec::new()).unwrap();
        assert!(verifier.keeping(kept).is_err());
    }

    /// The store hashes a record's JSON text as written; the verifier hashes the
    /// canonical encoding of what it parses back. They must be the same bytes.
    #[test]
    fn a_stored_record_is_its_own_canonical_encoding() {
        use crate::audit::{AuditRecord, PayloadSizes};
        use crate::context::CallContext;
        use crate::kernel::OpSpec;
        let cx = CallContext::internal("cn-hangzhou", "1192853035118460", crate::clock::SimTime(1_700_000_000_123));
        let params = json!({"KeyId": "k", "EncryptionContext": {"b": "2", "a": "é\u{1}\""}});
        let mut record = AuditRecord::for_call(&OpSpec::ENCRYPT, &cx, params, PayloadSizes::default(), None);
        record.plaintext_bytes = Some(u64::MAX);
        let stored = serde_json::to_string(&record).unwrap();
        let parsed: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(canonical(&parsed), stored.as_bytes());
    }

    #[test]
    fn digests_round_trip_through_json() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let digest = Digest::sign(&key, 12, 34, [5; 32]);
        let text = serde_json::to_string(&digest).unwrap();
        let back: Digest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, digest);
        assert!(back.is_signed_by(&key.verifying_key()));
    }
}
