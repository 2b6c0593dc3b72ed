//! Where the daemon turns to a channel, the one place that names them: each channel's
//! round (the Cases channel's poll and retries; the chats due and the reads of the cases
//! chats became), the quiet timer's conversations handed to their own channel, and the
//! chat channel's own task, which decides a visitor's message as it arrives, whatever the
//! cases channel is doing.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Mutex;

use super::cases::Row;
use super::channel::ConversationChannel;
use super::chats::ChatChannel;
use super::process::Pending;
use super::resolution::QUIET_PER_CYCLE;
use super::shared::Shared;
use super::{CycleReport, Daemon, DaemonError, log_cycle};
use crate::channels::messenger::Messenger;

impl Daemon {
    /// Lets the daemon decide the messenger's conversations and carry their handovers.
    pub fn attach_messenger(&mut self, messenger: Arc<Messenger>) {
        let metrics = self.shared.metrics.clone();
        messenger.on_rating(move |rating| metrics.rating(rating));
        self.chats = Some(Arc::new(Mutex::new(ChatChannel::new(messenger.clone()))));
        self.hub = Some(messenger);
    }

    pub fn messenger(&self) -> Option<&Arc<Messenger>> {
        self.hub.as_ref()
    }

    /// The Cases channel's round: its poll, page by page (every row of a page committed
    /// before the next is read; the cursor moves once the poll is through), then the cases
    /// due for a retry. A poll that fails is recorded and leaves the cursor where it was.
    pub(super) async fn cases_round(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        if let Err(e) = self.poll_cases(report).await {
            let DaemonError::Poll(err) = e else { return Err(e) };
            tracing::warn!(error = %err, "Polling failed.");
            self.shared.record_error(None, "poll", err.error_code(), &err.message())?;
            report.poll_error = Some(err.to_string());
        }
        let due = self.shared.store.due_retries(Utc::now())?;
        for ids in due.chunks(200) {
            if let Some(rows) = self.cases.retry_rows(&self.shared, ids).await? {
                self.decide_rows(rows, true, report).await?;
            }
        }
        Ok(())
    }

    async fn poll_cases(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let mut poll = self.cases.begin_poll(&self.shared).await?;
        while let Some(rows) = self.cases.next_rows(&self.shared, &mut poll, report).await? {
            self.decide_rows(rows, false, report).await?;
        }
        self.cases.end_poll(&self.shared, poll)
    }

    /// Builds, settles, decides and commits a batch of case rows, each a different case,
    /// on one snapshot of the rule set. Without `force`, a row no newer than the store's
    /// is skipped.
    async fn decide_rows(&mut self, rows: Vec<Row>, force: bool, report: &mut CycleReport) -> Result<(), DaemonError> {
        let rules = self.shared.rules.load_full();
        let mut pending = Vec::new();
        for row in rows {
            if let Some(p) = self.cases.prepare(&self.shared, row, force, &rules, report)? {
                pending.push(p);
            }
        }
        self.shared.decide_pending(&mut self.cases, pending, &rules, report).await
    }

    /// The quiet timer: each conversation whose customer stayed quiet, resolved through
    /// its own channel. Reads only those due.
    pub(super) async fn resolve_quiet(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let rules = self.shared.rules.load_full();
        let quiet = chrono::Duration::from_std(rules.quiet_after()).unwrap_or(chrono::Duration::hours(24));
        let cutoff = Utc::now() - quiet;
        for id in self.shared.store.quiet_since(cutoff, QUIET_PER_CYCLE)? {
            match (crate::model::is_messenger_id(&id), &self.chats) {
                (true, Some(chats)) => {
                    // Read under the chat channel's lock: its task may have answered the
                    // visitor since the index was read.
                    let mut chats = chats.lock().await;
                    let Some(conv) = self.shared.store.conversation(&id)? else { continue };
                    self.shared.resolve_quiet(&mut *chats, conv, cutoff, &rules, report).await?;
                }
                _ => {
                    let Some(conv) = self.shared.store.conversation(&id)? else { continue };
                    self.shared.resolve_quiet(&mut self.cases, conv, cutoff, &rules, report).await?;
                }
            }
        }
        Ok(())
    }

    /// Decides the chats that are due, then sends what they queued (as the chat channel's
    /// task does whenever a visitor writes).
    pub async fn chat_round(&mut self) -> Result<CycleReport, DaemonError> {
        match &self.chats {
            Some(chats) => chat_round(&self.shared, &mut *chats.lock().await).await,
            None => Ok(CycleReport::default()),
        }
    }

    /// The chat channel's part of a cycle run in the daemon's own loop (tests and the demo
    /// step through cycles): the cases chats became read, then the chats due.
    pub(super) async fn chats_cycle(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let Some(chats) = &self.chats else { return Ok(()) };
        let mut chats = chats.lock().await;
        chats.mirror_chats(&self.shared, report).await?;
        let round = chat_round(&self.shared, &mut chats).await?;
        report.events.extend(round.events);
        Ok(())
    }

    /// Starts the chat channel's own task, when the messenger is on: it runs until it fails
    /// on the store (its result) or is aborted.
    pub(super) fn spawn_chat_task(&self) -> Option<tokio::task::JoinHandle<Result<(), DaemonError>>> {
        let (chats, hub) = (self.chats.clone()?, self.hub.clone()?);
        Some(tokio::spawn(chat_task(self.shared.clone(), chats, hub)))
    }
}

/// The chat channel on its own: a visitor's message is decided as soon as the hub wakes
/// it, and every poll interval the cases chats became are read; the cases channel's
/// cycle never holds it up (they meet only at the executor, one round at a time).
async fn chat_task(
    shared: Arc<Shared>,
    chats: Arc<Mutex<ChatChannel>>,
    hub: Arc<Messenger>,
) -> Result<(), DaemonError> {
    let every = shared.settings.poll_interval;
    let mut next_read = tokio::time::Instant::now();
    loop {
        let read_cases = tokio::select! {
            _ = hub.woken() => false,
            _ = tokio::time::sleep_until(next_read) => true,
        };
        if read_cases {
            next_read = tokio::time::Instant::now() + every;
        }
        let mut channel = chats.lock().await;
        let mut report = CycleReport::default();
        let result = async {
            if read_cases {
                channel.mirror_chats(&shared, &mut report).await?;
            }
            let round = chat_round(&shared, &mut channel).await?;
            report.events.extend(round.events);
            report.executed += round.executed;
            Ok::<_, DaemonError>(())
        }
        .await;
        match result {
            Ok(()) => log_cycle(&report),
            Err(DaemonError::Store(e)) => return Err(DaemonError::Store(e)),
            Err(e) => tracing::error!(error = %e, "Deciding chats failed; trying again at the next poll."),
        }
    }
}

/// Decides the messenger conversations that are due, then sends what they queued.
async fn chat_round(shared: &Shared, chats: &mut ChatChannel) -> Result<CycleReport, DaemonError> {
    let mut report = CycleReport::default();
    let calls = shared.client.requests_sent();
    let due: Vec<String> = shared.store.due_chats(Utc::now())?;
    // One snapshot of the rule set for the round: the visitors' leads and every decision.
    let rules = shared.rules.load_full();
    let mut pending = Vec::new();
    let mut lead_tasks = Vec::new();
    for id in due {
        let Some(mut conv) = shared.store.conversation(&id)? else { continue };
        chats.know_visitor(shared, &mut conv, rules.as_ref().as_ref(), &mut report).await?;
        if conv.messenger.as_ref().is_some_and(|m| m.lead.task_pending()) {
            lead_tasks.push(conv.id.clone());
        }
        // Rules read whether the team is in as of this decision (`team_in`).
        conv.team_in = chats.team_in(Utc::now());
        if let Some(unanswered) = chats.settle(shared, &mut conv, &rules, &mut report)? {
            pending.push(Pending { conv, unanswered });
        }
    }
    shared.decide_pending(chats, pending, &rules, &mut report).await?;
    if shared.store.outbox_len() > 0 {
        report.executed = shared.send_outbox().await?;
    }
    if !lead_tasks.is_empty() {
        // The leads just made are in Salesforce now: their Tasks follow.
        chats.log_lead_tasks(shared, &lead_tasks).await?;
        if shared.store.outbox_len() > 0 {
            report.executed += shared.send_outbox().await?;
        }
    }
    report.api_calls = shared.client.requests_sent() - calls;
    Ok(report)
}
