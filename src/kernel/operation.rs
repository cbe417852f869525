//! What the kernel needs of an operation, whichever front end decoded it:
//! its catalogue entry, the parameters its audit record may keep, the
//! resources it names, and the work itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::admission::Fault;
use super::app::App;
use super::catalogue::OpSpec;
use crate::audit::trail::{Selectors, Trail};
use crate::context::CallContext;
use crate::engine::{KmsResult, Outcome};

/// One call's work, decoded from a front end's wire form.
pub trait Operation: Send + 'static {
    type Output: Send + 'static;

    /// Its entry in the catalogue.
    fn spec(&self) -> &'static OpSpec;

    /// The request parameters its audit record keeps: an allow-list, so that
    /// plaintext, ciphertext and anything secret never reach a record.
    fn audit_params(&self) -> Value;

    /// The resources the call names before it runs, for authorization.
    fn names(&self) -> Names;

    /// Does the work. Nothing it returns is visible to anyone until the kernel
    /// has committed it with the call's audit record.
    fn run(self, app: Arc<App>, cx: Arc<CallContext>) -> impl Future<Output = KmsResult<Ran<Self::Output>>> + Send;
}

/// An operation whose catalogue entry its type alone tells: what a front end
/// audits a call as when the call's parameters do not decode into it.
pub trait Described: Operation {
    const SPEC: &'static OpSpec;
}

/// The resources a call names up front, in its own request. Authorization
/// after the operation uses what it resolved instead (the key behind an
/// alias, the key a ciphertext names) and falls back to these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// A key by id, ARN or alias.
    pub key: Option<String>,
    /// An alias the call manages.
    pub alias: Option<String>,
    /// A secret by name.
    pub secret: Option<String>,
    /// Whether these are all the call touches, so that it can be authorized
    /// before it runs. False where the operation finds its resource only as
    /// it runs (Decrypt reads its key from the ciphertext).
    pub up_front: bool,
    /// The encryption context the request gives for its key (ReEncrypt: for
    /// its destination), which a grant's constraint is judged on.
    pub encryption_context: Option<BTreeMap<String, String>>,
    /// ReEncrypt's: the context its ciphertext was sealed under, for its source key.
    pub source_encryption_context: Option<BTreeMap<String, String>>,
}

impl Names {
    /// A call about no particular resource (listing, creating, a random number):
    /// authorized on everything of its product, before it runs.
    pub fn none() -> Names {
        Names { up_front: true, ..Names::default() }
    }

    /// A call whose resources are known only once it has run.
    pub fn found_while_running() -> Names {
        Names::default()
    }

    pub fn key(key: &str) -> Names {
        Names { key: non_empty(key), up_front: true, ..Names::default() }
    }

    /// An alias a call manages, and the key it points (or is to point) at.
    pub fn alias(alias: &str, key: &str) -> Names {
        Names { alias: non_empty(alias), ..Names::key(key) }
    }

    pub fn secret(name: &str) -> Names {
        Names { secret: non_empty(name), up_front: true, ..Names::default() }
    }

    /// These, with the encryption context the request gives for its key.
    pub fn with_context(self, context: &BTreeMap<String, String>) -> Names {
        Names { encryption_context: Some(context.clone()), ..self }
    }

    /// These, with the context a ReEncrypt's ciphertext was sealed under.
    pub fn with_source_context(self, context: &BTreeMap<String, String>) -> Names {
        Names { source_encryption_context: Some(context.clone()), ..self }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// What an operation did: the engine's outcome, and work that may happen only
/// once that outcome is committed.
pub struct Ran<T> {
    pub outcome: Outcome<T>,
    pub after_commit: Vec<AfterCommit>,
}

/// Work that follows a call's commit, done by the kernel before it answers, and
/// not at all if the commit fails or the call is refused.
pub enum AfterCommit {
    /// Put injected faults in force.
    InstallFaults(Vec<Fault>),
    /// Take faults out of force: one by id, or all with `None`.
    ClearFaults(Option<String>),
    /// Change what a trail mirrors.
    SelectEvents { trail: Arc<Trail>, selectors: Selectors },
    /// Do the work the call made due (a clock move, a sync asked for) so its
    /// caller sees the effects as soon as it has the answer.
    RunDueWork,
}

impl<T> Ran<T> {
    pub fn then(mut self, work: AfterCommit) -> Ran<T> {
        self.after_commit.push(work);
        self
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Ran<U> {
        Ran { outcome: self.outcome.map(f), after_commit: self.after_commit }
    }
}

impl<T> From<Outcome<T>> for Ran<T> {
    fn from(outcome: Outcome<T>) -> Ran<T> {
        Ran { outcome, after_commit: Vec::new() }
    }
}

/// What an operation's work may return: an engine outcome, or one with work to follow it.
pub trait IntoRan: Send {
    type Value: Send + 'static;
    fn into_ran(self) -> Ran<Self::Value>;
}

impl<T: Send + 'static> IntoRan for Outcome<T> {
    type Value = T;
    fn into_ran(self) -> Ran<T> {
        self.into()
    }
}

impl<T: Send + 'static> IntoRan for Ran<T> {
    type Value = T;
    fn into_ran(self) -> Ran<T> {
        self
    }
}
