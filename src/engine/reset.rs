//! Emptying kmsim between tests: every key (with its versions, aliases and
//! import tokens) and every secret goes, in every region, in one commit. What
//! is not a KMS resource stays: KMS instances, users, AccessKeys and policies
//! (so a suite's credentials survive), event subscriptions, the clock (which
//! never runs backwards) and the audit trail, which records the reset itself.

use super::{Change, Engine, Outcome, read_lock};
use crate::context::CallContext;

/// What a reset removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Emptied {
    pub keys: usize,
    pub aliases: usize,
    pub secrets: usize,
}

impl Engine {
    /// The changes that remove every key, alias and secret. Taken under the seed gate, so a
    /// reset and a seed never interleave.
    pub async fn reset(&self, _cx: &CallContext) -> Outcome<Emptied> {
        let gate = self.seed_gate.clone().lock_owned().await;
        let (emptied, changes) = self.emptying_changes();
        Outcome::write(emptied, changes, vec![gate])
    }

    /// What a reset would remove now (a reset to a seed counts it before planning the seed).
    pub fn emptied_by_reset(&self) -> Emptied {
        self.emptying_changes().0
    }

    /// What removing every key, alias and secret takes. The caller holds the seed gate.
    pub(super) fn emptying_changes(&self) -> (Emptied, Vec<Change>) {
        let aliases: Vec<Change> = read_lock(&self.aliases)
            .keys()
            .map(|(region, alias_name)| Change::RemoveAlias { region: region.clone(), alias_name: alias_name.clone() })
            .collect();
        let keys: Vec<Change> = read_lock(&self.keys)
            .keys()
            .map(|(region, key_id)| Change::DeleteKey { region: region.clone(), key_id: key_id.clone() })
            .collect();
        let secrets: Vec<Change> = read_lock(&self.secrets)
            .keys()
            .map(|(region, secret_name)| Change::DeleteSecret {
                region: region.clone(),
                secret_name: secret_name.clone(),
            })
            .collect();
        let emptied = Emptied { keys: keys.len(), aliases: aliases.len(), secrets: secrets.len() };
        (emptied, aliases.into_iter().chain(keys).chain(secrets).collect())
    }
}
