//! Where the daemon turns to a conversation's channel, the one place that asks which it
//! is: how a decision is carried out (the actions it plans), how a conversation is
//! committed, and what a customer's silence ends; and the chat channel's rounds between
//! polls, when the hub wakes the daemon because a visitor wrote.

use std::sync::Arc;

use chrono::Utc;

use super::chats::ChatChannel;
use super::process::Pending;
use super::{CycleReport, Daemon, DaemonError};
use crate::act::plan::{HandoverTo, ReplySettings, plan};
use crate::channels::messenger::Messenger;
use crate::decide::{RuleSnapshot, Rules};
use crate::model::{Action, Channel, Conversation, ConversationState, Decision, Trace};

impl Daemon {
    /// Lets the daemon decide the messenger's conversations and carry their handovers.
    pub fn attach_messenger(&mut self, messenger: Arc<Messenger>) {
        self.chats = Some(ChatChannel::new(messenger));
    }

    pub fn messenger(&self) -> Option<&Arc<Messenger>> {
        self.chats.as_ref().map(ChatChannel::hub)
    }

    /// Commits a conversation with its actions, as its channel does: a chat through the
    /// chat channel, a case directly to the store.
    pub(super) fn commit(&self, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        match (&self.chats, conv.channel) {
            (Some(chats), Channel::Messenger) => chats.commit(conv, actions),
            _ => Ok(self.store.commit(conv, actions).map(|_| ())?),
        }
    }

    /// The actions that carry out `decision` in the conversation's channel: a case's reply,
    /// note, email, owner and fields; a chat's message, its case and Lead, its closing.
    pub(super) async fn plan_by_channel(
        &mut self,
        conv: &mut Conversation,
        decision: &mut Decision,
        rules: &RuleSnapshot,
        handover: Option<HandoverTo>,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        match conv.channel {
            Channel::Case => {
                let settings = &self.settings;
                let replies =
                    ReplySettings { channel: settings.reply_channel, email_from: settings.email_from.as_deref() };
                Ok(plan(conv, decision, replies, handover))
            }
            Channel::Messenger => {
                let target_id = handover.as_ref().map(|h| h.owner_id.clone());
                let (mut shared, Some(chats)) = self.parts() else { return Ok(Vec::new()) };
                let rules = rules.as_ref().as_ref();
                chats.plan_chat(&mut shared, conv, decision, rules, target_id.as_deref(), report).await
            }
        }
    }

    /// What the conversation's channel writes when the customer's silence resolves it: a
    /// chat the agent answered closes (it reopens if the visitor writes again); a case
    /// stays as it is.
    pub(super) async fn close_on_silence(
        &mut self,
        conv: &mut Conversation,
        rules: &dyn Rules,
        trace: &mut Trace,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        match (conv.channel, self.parts()) {
            (Channel::Messenger, (mut shared, Some(chats))) if conv.state == ConversationState::Open => {
                chats.close_chat(&mut shared, conv, false, rules, trace, report).await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Decides the messenger conversations that are due, then sends what they queued.
    pub async fn chat_round(&mut self) -> Result<CycleReport, DaemonError> {
        let mut report = CycleReport::default();
        if self.chats.is_none() {
            return Ok(report);
        }
        let calls = self.client.requests_sent();
        let due: Vec<String> = self.store.due_chats(Utc::now())?;
        // One snapshot of the rule set for the round: the visitors' leads and every decision.
        let rules = self.rules.load_full();
        let mut pending = Vec::new();
        let mut lead_tasks = Vec::new();
        for id in due {
            let Some(mut conv) = self.store.conversation(&id)? else { continue };
            let (mut shared, Some(chats)) = self.parts() else { break };
            chats.know_visitor(&mut shared, &mut conv, rules.as_ref().as_ref(), &mut report).await?;
            if conv.messenger.as_ref().is_some_and(|m| m.lead.task_pending()) {
                lead_tasks.push(conv.id.clone());
            }
            if let Some(unanswered) = chats.settle_chat(&mut conv, &mut report)? {
                pending.push(Pending { conv, unanswered });
            }
        }
        self.decide_pending(pending, &rules, &mut report).await?;
        if self.store.outbox_len() > 0 {
            report.executed = self.executor.run_round().await?;
        }
        if !lead_tasks.is_empty() {
            // The leads just made are in Salesforce now: their Tasks follow.
            if let (mut shared, Some(chats)) = self.parts() {
                chats.log_lead_tasks(&mut shared, &lead_tasks).await?;
            }
            if self.store.outbox_len() > 0 {
                report.executed += self.executor.run_round().await?;
            }
        }
        report.api_calls = self.client.requests_sent() - calls;
        Ok(report)
    }
}
