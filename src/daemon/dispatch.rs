//! Where the daemon turns to a conversation's channel, the one place that asks which it
//! is: the `ConversationChannel` calls (how a decision is carried out, how a conversation
//! is committed, what a customer's silence ends) made on the right component, and each
//! channel's round: the Cases channel's poll and retries, and the chats due (between polls
//! too, when the hub wakes the daemon because a visitor wrote).

use std::sync::Arc;

use chrono::Utc;

use super::cases::Row;
use super::channel::ConversationChannel;
use super::chats::ChatChannel;
use super::process::Pending;
use super::{Channels, CycleReport, Daemon, DaemonError};
use crate::act::plan::HandoverTo;
use crate::channels::messenger::Messenger;
use crate::decide::RuleSnapshot;
use crate::model::{Action, Channel, Conversation, Decision, Trace};

impl Daemon {
    /// Lets the daemon decide the messenger's conversations and carry their handovers.
    pub fn attach_messenger(&mut self, messenger: Arc<Messenger>) {
        self.chats = Some(ChatChannel::new(messenger));
    }

    pub fn messenger(&self) -> Option<&Arc<Messenger>> {
        self.chats.as_ref().map(ChatChannel::hub)
    }

    /// Commits a conversation with its actions, as its channel does: a chat through the
    /// chat channel's hub, a case directly to the store. (A chat read while the messenger
    /// is off is written as a case is.)
    pub(super) fn commit(&mut self, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        match (self.parts(), conv.channel) {
            ((shared, Channels { chats: Some(chats), .. }), Channel::Messenger) => chats.commit(&shared, conv, actions),
            ((shared, Channels { cases, .. }), _) => cases.commit(&shared, conv, actions),
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
        match (self.parts(), conv.channel) {
            ((mut shared, Channels { cases, .. }), Channel::Case) => {
                cases.plan(&mut shared, conv, decision, rules, handover, report).await
            }
            ((mut shared, Channels { chats: Some(chats), .. }), Channel::Messenger) => {
                chats.plan(&mut shared, conv, decision, rules, handover, report).await
            }
            (_, Channel::Messenger) => Ok(Vec::new()),
        }
    }

    /// What the conversation's channel writes when the customer's silence resolves it.
    pub(super) async fn close_on_silence(
        &mut self,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        trace: &mut Trace,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        match (self.parts(), conv.channel) {
            ((mut shared, Channels { cases, .. }), Channel::Case) => {
                cases.close_on_silence(&mut shared, conv, rules, trace, report).await
            }
            ((mut shared, Channels { chats: Some(chats), .. }), Channel::Messenger) => {
                chats.close_on_silence(&mut shared, conv, rules, trace, report).await
            }
            (_, Channel::Messenger) => Ok(Vec::new()),
        }
    }

    /// The Cases channel's round: its poll, page by page (every row of a page committed
    /// before the next is read; the cursor moves once the poll is through), then the cases
    /// due for a retry. A poll that fails is recorded and leaves the cursor where it was.
    pub(super) async fn cases_round(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        if let Err(e) = self.poll_cases(report).await {
            let DaemonError::Poll(err) = e else { return Err(e) };
            tracing::warn!(error = %err, "Polling failed.");
            self.record_error(None, "poll", err.error_code(), &err.message())?;
            report.poll_error = Some(err.to_string());
        }
        let due = self.store.due_retries(Utc::now())?;
        for ids in due.chunks(200) {
            let rows = {
                let (shared, channels) = self.parts();
                channels.cases.retry_rows(&shared, ids).await?
            };
            if let Some(rows) = rows {
                self.decide_rows(rows, true, report).await?;
            }
        }
        Ok(())
    }

    async fn poll_cases(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let mut poll = {
            let (shared, channels) = self.parts();
            channels.cases.begin_poll(&shared).await?
        };
        loop {
            let rows = {
                let (shared, channels) = self.parts();
                channels.cases.next_rows(&shared, &mut poll, report).await?
            };
            let Some(rows) = rows else { break };
            self.decide_rows(rows, false, report).await?;
        }
        let (shared, channels) = self.parts();
        channels.cases.end_poll(&shared, poll)
    }

    /// Builds, settles, decides and commits a batch of case rows, each a different case,
    /// on one snapshot of the rule set. Without `force`, a row no newer than the store's
    /// is skipped.
    async fn decide_rows(&mut self, rows: Vec<Row>, force: bool, report: &mut CycleReport) -> Result<(), DaemonError> {
        let rules = self.rules.load_full();
        let mut pending = Vec::new();
        for row in rows {
            let (mut shared, channels) = self.parts();
            if let Some(p) = channels.cases.prepare(&mut shared, row, force, &rules, report)? {
                pending.push(p);
            }
        }
        self.decide_pending(pending, &rules, report).await
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
            let (mut shared, Channels { chats: Some(chats), .. }) = self.parts() else { break };
            chats.know_visitor(&mut shared, &mut conv, rules.as_ref().as_ref(), &mut report).await?;
            if conv.messenger.as_ref().is_some_and(|m| m.lead.task_pending()) {
                lead_tasks.push(conv.id.clone());
            }
            if let Some(unanswered) = chats.settle(&mut shared, &mut conv, &rules, &mut report)? {
                pending.push(Pending { conv, unanswered });
            }
        }
        self.decide_pending(pending, &rules, &mut report).await?;
        if self.store.outbox_len() > 0 {
            report.executed = self.executor.run_round().await?;
        }
        if !lead_tasks.is_empty() {
            // The leads just made are in Salesforce now: their Tasks follow.
            if let (mut shared, Channels { chats: Some(chats), .. }) = self.parts() {
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
