//! What a channel is to the daemon's stages: the calls every channel answers once its
//! conversations are found (by the Cases channel's poll, by a chat's due queue). The
//! stages between them (decide, resolve, apply) are the same for every channel; only these
//! calls differ, and only `dispatch.rs` picks which channel's to make.

use std::future::Future;

use super::shared::Shared;
use super::{CycleReport, DaemonError};
use crate::act::plan::HandoverTo;
use crate::decide::RuleSnapshot;
use crate::model::{Action, Conversation, Decision, Trace};

/// A channel of conversations, as the stages call it. Each implementation owns its own
/// state and borrows what the stages share ([`Shared`]) for the length of a call.
pub(super) trait ConversationChannel {
    /// Finishes a conversation that needs no decision and commits it (assigned away,
    /// closed, nothing new; a handed-over chat's messages forwarded to its case); otherwise
    /// returns the ids of the customer's parts a decision answers.
    fn settle(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError>;

    /// The actions that carry out `decision` in this channel. `handover` is where the
    /// decision's handover goes, its target already looked up.
    fn plan(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        decision: &mut Decision,
        rules: &RuleSnapshot,
        handover: Option<HandoverTo>,
        report: &mut CycleReport,
    ) -> impl Future<Output = Result<Vec<Action>, DaemonError>> + Send;

    /// Writes a conversation with its actions in one store transaction.
    fn commit(&self, shared: &Shared, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError>;

    /// What this channel writes when the customer's silence resolves a conversation
    /// (evaluations traced in `trace`).
    fn close_on_silence(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        trace: &mut Trace,
        report: &mut CycleReport,
    ) -> impl Future<Output = Result<Vec<Action>, DaemonError>> + Send;
}
