//! AWS's key-state table: what each AWS operation on a key answers in each of
//! the key states AWS keys have, as AWS's developer guide states it ("Key
//! states of AWS KMS keys"). kmsim's engine enforces its own state table (the
//! reference's, which Alibaba shares with AWS cell for cell) and this front
//! end names the outcome in AWS's words ([`super::vocabulary::exception`]);
//! this table is the contract the two must meet together, written once, walked
//! whole by `tests/aws_sdk.rs` through boto3, and printed in docs/aws.md.

use serde_json::{Value, json};

use crate::engine::key::KeyState;

/// What a call answers in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Ok,
    /// DisabledException.
    Disabled,
    /// KMSInvalidStateException.
    InvalidState,
    /// UnsupportedOperationException: AWS refuses the operation for the kind of key that can be in the state
    /// (a key whose material is imported does not rotate).
    Unsupported,
    /// No key of the row's kind can be in the state (kmsim imports no asymmetric material, and makes no
    /// multi-Region key with imported material).
    NotApplicable,
}

impl Cell {
    /// The answer as the walker and the docs name it: `Ok`, an exception, or `N/A`.
    pub fn answer(self) -> &'static str {
        match self {
            Cell::Ok => "Ok",
            Cell::Disabled => "DisabledException",
            Cell::InvalidState => "KMSInvalidStateException",
            Cell::Unsupported => "UnsupportedOperationException",
            Cell::NotApplicable => "N/A",
        }
    }
}

/// The key a row is walked with: its spec, and where its material comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// SYMMETRIC_DEFAULT made by kmsim; its PendingImport cell uses an EXTERNAL one whose material was deleted.
    Symmetric,
    /// HMAC_256, likewise.
    Hmac,
    /// RSA_2048 SIGN_VERIFY (never PendingImport).
    RsaSign,
    /// ECC_NIST_P256 KEY_AGREEMENT (never PendingImport).
    EcAgreement,
    /// SYMMETRIC_DEFAULT with imported material in every column.
    External,
    /// A SYMMETRIC_DEFAULT multi-Region primary key, with a replica in another region while it can have one
    /// (a primary pending deletion has none); never PendingImport (kmsim makes no EXTERNAL multi-Region key).
    MultiRegion,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            KeyKind::Symmetric => "symmetric",
            KeyKind::Hmac => "hmac",
            KeyKind::RsaSign => "rsa-sign",
            KeyKind::EcAgreement => "ec-agree",
            KeyKind::External => "external",
            KeyKind::MultiRegion => "multi-region",
        }
    }
}

/// The states of the table's columns, in its order.
pub const STATES: [KeyState; 4] =
    [KeyState::Enabled, KeyState::Disabled, KeyState::PendingImport, KeyState::PendingDeletion];

/// One operation's row.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub operation: &'static str,
    pub key: KeyKind,
    /// In the order of [`STATES`].
    pub cells: [Cell; 4],
}

const fn row(operation: &'static str, key: KeyKind, cells: [Cell; 4]) -> Row {
    Row { operation, key, cells }
}

use Cell::{Disabled as D, InvalidState as I, NotApplicable as NA, Ok as Y, Unsupported as U};
use KeyKind::{EcAgreement, External, Hmac, MultiRegion, RsaSign, Symmetric};

/// Cryptographic use: refused by a disabled key, and by one pending import or deletion.
const USE: [Cell; 4] = [Y, D, I, I];
/// Changes to what describes a key: refused only while it waits to be deleted.
const DESCRIBE_CHANGE: [Cell; 4] = [Y, Y, Y, I];
/// Reading about a key: every state.
const READ: [Cell; 4] = [Y, Y, Y, Y];
/// Rotation settings: a key with imported material does not rotate.
const ROTATION: [Cell; 4] = [Y, D, U, I];

/// AWS's key-state table, for every operation this front end offers on an existing key.
pub const STATE_TABLE: &[Row] = &[
    row("CancelKeyDeletion", Symmetric, [I, I, I, Y]),
    row("CreateAlias", Symmetric, DESCRIBE_CHANGE),
    row("CreateGrant", Symmetric, USE),
    row("Decrypt", Symmetric, USE),
    row("DeleteAlias", Symmetric, READ),
    row("DeleteImportedKeyMaterial", External, DESCRIBE_CHANGE),
    row("DeriveSharedSecret", EcAgreement, [Y, D, NA, I]),
    row("DescribeKey", Symmetric, READ),
    row("DisableKey", Symmetric, [Y, Y, I, I]),
    row("DisableKeyRotation", Symmetric, ROTATION),
    row("EnableKey", Symmetric, [Y, Y, I, I]),
    row("EnableKeyRotation", Symmetric, ROTATION),
    row("Encrypt", Symmetric, USE),
    row("GenerateDataKey", Symmetric, USE),
    row("GenerateDataKeyPair", Symmetric, USE),
    row("GenerateDataKeyPairWithoutPlaintext", Symmetric, USE),
    row("GenerateDataKeyWithoutPlaintext", Symmetric, USE),
    row("GenerateMac", Hmac, USE),
    row("GetKeyLastUsage", Symmetric, READ),
    row("GetKeyPolicy", Symmetric, READ),
    row("GetKeyRotationStatus", Symmetric, [Y, Y, U, Y]),
    row("GetParametersForImport", External, DESCRIBE_CHANGE),
    row("GetPublicKey", RsaSign, [Y, D, NA, I]),
    row("ImportKeyMaterial", External, DESCRIBE_CHANGE),
    row("ListAliases", Symmetric, READ),
    row("ListGrants", Symmetric, READ),
    row("ListKeyPolicies", Symmetric, READ),
    row("ListKeyRotations", Symmetric, READ),
    row("ListResourceTags", Symmetric, READ),
    row("PutKeyPolicy", Symmetric, READ),
    row("ReEncrypt", Symmetric, USE),
    row("RetireGrant", Symmetric, READ),
    row("RevokeGrant", Symmetric, READ),
    row("ReplicateKey", MultiRegion, [Y, Y, NA, I]),
    row("RotateKeyOnDemand", Symmetric, ROTATION),
    row("ScheduleKeyDeletion", Symmetric, DESCRIBE_CHANGE),
    row("Sign", RsaSign, [Y, D, NA, I]),
    row("TagResource", Symmetric, DESCRIBE_CHANGE),
    row("UntagResource", Symmetric, DESCRIBE_CHANGE),
    row("UpdateAlias", Symmetric, DESCRIBE_CHANGE),
    row("UpdateKeyDescription", Symmetric, DESCRIBE_CHANGE),
    row("UpdatePrimaryRegion", MultiRegion, [Y, Y, NA, I]),
    row("Verify", RsaSign, [Y, D, NA, I]),
    row("VerifyMac", Hmac, USE),
];

/// The table as the walker reads it: `[{operation, key, cells: {state: answer}}]`.
pub fn table_json() -> Value {
    let rows: Vec<Value> = STATE_TABLE
        .iter()
        .map(|row| {
            let cells: serde_json::Map<String, Value> = STATES
                .iter()
                .zip(row.cells)
                .map(|(state, cell)| (state.as_str().to_owned(), json!(cell.answer())))
                .collect();
            json!({ "operation": row.operation, "key": row.key.name(), "cells": cells })
        })
        .collect();
    Value::Array(rows)
}

/// The table as docs/aws.md prints it.
pub fn table_markdown() -> String {
    let mut text =
        String::from("| Operation | Enabled | Disabled | PendingImport | PendingDeletion |\n|---|---|---|---|---|\n");
    for row in STATE_TABLE {
        let cells: Vec<&str> = row.cells.iter().map(|cell| cell.answer()).collect();
        text.push_str(&format!("| {} | {} |\n", row.operation, cells.join(" | ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontends::aws::operations::OFFERED;

    /// Operations that name no existing key, so have no row.
    const KEYLESS: &[&str] = &["CreateKey", "ListKeys", "GenerateRandom", "LookupEvents", "ListRetirableGrants"];

    #[test]
    fn every_offered_operation_on_a_key_has_a_row_and_every_row_is_offered() {
        for row in STATE_TABLE {
            assert!(OFFERED.contains(&row.operation), "{} is in the table but not offered", row.operation);
        }
        for operation in OFFERED.iter().filter(|op| !KEYLESS.contains(op)) {
            assert!(STATE_TABLE.iter().any(|row| row.operation == *operation), "{operation} has no row");
        }
        let mut names: Vec<&str> = STATE_TABLE.iter().map(|row| row.operation).collect();
        names.dedup();
        assert_eq!(names.len(), STATE_TABLE.len(), "one row per operation, in order");
    }

    #[test]
    fn only_rows_of_keys_that_cannot_be_pending_import_have_no_pending_import_column() {
        for row in STATE_TABLE {
            let never_imported = matches!(row.key, KeyKind::RsaSign | KeyKind::EcAgreement | KeyKind::MultiRegion);
            assert_eq!(row.cells[2] == Cell::NotApplicable, never_imported, "{}", row.operation);
        }
    }

    #[test]
    fn docs_print_the_table_as_it_is() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/aws.md")).unwrap();
        assert!(
            docs.contains(&table_markdown()),
            "docs/aws.md's state table differs from STATE_TABLE:\n{}",
            table_markdown()
        );
    }
}
