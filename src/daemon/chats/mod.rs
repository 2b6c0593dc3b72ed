//! The chat channel's side of the daemon: a component with its own state (the messenger's
//! hub, the cursor of its cases' reads, Case's describe and record types, looked up once)
//! that the daemon's loop and stages call with the state they share ([`Shared`]). It knows
//! the visitors (matching them to the org, their Lead and Tasks: `visitors.rs`,
//! `leads.rs`), settles a chat that needs no decision (here), knows what a decision does to
//! a chat and its case, and what its closing writes (`cases.rs`), reads the cases chats
//! became (`mirror.rs`), and writes a visitor's rating onto their case (`rating.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::channel::ConversationChannel;
use super::process::event;
use super::shared::Shared;
use super::{CycleReport, DaemonError, EventKind};
use crate::act::plan::HandoverTo;
use crate::channels::messenger::{self, Messenger};
use crate::decide::RuleSnapshot;
use crate::model::{Action, Conversation, ConversationState, Decision, Trace};
use crate::salesforce::client::SObjectDescribe;

mod cases;
mod leads;
mod mirror;
mod rating;
mod visitors;

/// The chat channel's state in the daemon: its hub and what it looked up or read once.
pub struct ChatChannel {
    hub: Arc<Messenger>,
    /// Case record types by the name a setting or rule gives, once looked up (`None`: the
    /// org lacks it).
    case_record_types: HashMap<String, Option<String>>,
    /// Case's describe, read once: the Status picklist's default (to reopen a case) and
    /// the transcript fields' lengths.
    case_describe: Option<SObjectDescribe>,
    /// The newest `SystemModstamp` the last complete read of chats' cases saw: the next
    /// read asks only for cases changed since (less the overlap). In memory: after a
    /// restart the first read takes every case once.
    mirror_cursor: Option<DateTime<Utc>>,
}

impl ChatChannel {
    pub fn new(hub: Arc<Messenger>) -> ChatChannel {
        ChatChannel { hub, case_record_types: HashMap::new(), case_describe: None, mirror_cursor: None }
    }

    /// Commits a chat with its actions through its hub, which keeps what the visitor wrote
    /// meanwhile and tells the widget.
    /// Whether the team is in by the messenger's office hours (`None` without them).
    pub(in crate::daemon) fn team_in(&self, now: chrono::DateTime<chrono::Utc>) -> Option<bool> {
        self.hub.settings().office_hours.as_ref().map(|hours| hours.team_in(now))
    }

    fn hub_commit(&self, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        Ok(self.hub.commit(conv.clone(), actions)?)
    }
}

impl ConversationChannel for ChatChannel {
    /// Settles a chat that needs no decision: closed, handed over (the visitor's messages go
    /// to the case), or nothing new; otherwise returns the messages to answer.
    fn settle(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError> {
        conv.retry_at = None;
        // A rating the visitor just gave goes onto the chat's case (`on: [rating]` mappings).
        let rating_writes = self.map_rating(shared, conv, rules.as_ref().as_ref())?;
        if !rating_writes.is_empty() {
            self.hub_commit(conv, rating_writes)?;
        }
        let unanswered: Vec<String> = conv.unanswered().iter().map(|p| p.id.clone()).collect();
        let unhandled: Vec<String> = conv.unhandled_customer_parts().iter().map(|p| p.id.clone()).collect();
        match &conv.state {
            ConversationState::Open if !unanswered.is_empty() => {
                // The visitor sees the agent at work while it decides.
                self.hub.typing(&conv.id);
                return Ok(Some(unanswered));
            }
            ConversationState::HandedOver { .. } if !unhandled.is_empty() => {
                let unanswered = unhandled;
                // Without its case yet, the messages wait: the case's first read makes the
                // conversation due again.
                if let Some(case_id) = conv.case_id().map(str::to_string) {
                    let parts: Vec<&crate::model::Part> =
                        conv.parts.iter().filter(|p| unanswered.contains(&p.id)).collect();
                    let actions = messenger::plan::forward(conv, &case_id, &parts);
                    conv.handled.extend(unanswered);
                    let detail = format!("{} message(s) added to case {case_id}", parts.len());
                    report.events.push(event(conv, EventKind::Forwarded, detail.clone(), detail));
                    self.hub_commit(conv, actions)?;
                    return Ok(None);
                }
            }
            _ => {}
        }
        self.hub_commit(conv, Vec::new())?;
        Ok(None)
    }

    /// A chat's reply (a message in the conversation), its case and Lead, its closing
    /// (`cases.rs`).
    async fn plan(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        decision: &mut Decision,
        rules: &RuleSnapshot,
        handover: Option<HandoverTo>,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        let target_id = handover.map(|h| h.owner_id);
        let mut actions =
            self.plan_chat(shared, conv, decision, rules.as_ref().as_ref(), target_id.as_deref(), report).await?;
        // A rating given before the chat had a case goes onto the one just queued.
        actions.extend(self.map_rating(shared, conv, rules.as_ref().as_ref())?);
        Ok(actions)
    }

    fn commit(&self, _shared: &Shared, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        self.hub_commit(conv, actions)
    }

    /// A chat the agent answered closes (it reopens if the visitor writes again).
    async fn close_on_silence(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        trace: &mut Trace,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        if conv.state != ConversationState::Open {
            return Ok(Vec::new());
        }
        self.close_chat(shared, conv, false, rules.as_ref().as_ref(), trace, report).await
    }
}
