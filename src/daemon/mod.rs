//! The daemon's loop: each cycle syncs Salesforce Knowledge when due, polls the Cases
//! channel (`cases.rs`), reads the cases chats became and decides the due chats (`chats/`,
//! through `dispatch.rs`), resolves the quiet conversations (`resolution.rs`) and sends the
//! outbox; between polls the messenger's hub wakes it for a visitor's message. The stages
//! a decision goes through are `process.rs`'s; the state they lend a channel is
//! `shared.rs`'s. Every decision is committed with its actions in one store transaction
//! before anything is sent, and the poll's cursor moves only after every row of the poll is
//! committed, so a crash re-polls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;

use crate::act::email::Mailer;
use crate::act::executor::{Executor, RoundReport};
use crate::agent::Agent;
use crate::channels::cases::query::Posts;
use crate::decide::SharedRules;
use crate::model::ReplyChannel;
use crate::report::status::{LastCycle, Org, RECENT_ERRORS_IN_STATUS, Status};
use crate::salesforce::directory::{self, SetupError, Target};
use crate::salesforce::{Client, SalesforceError};
use crate::store::{Store, StoreError};

mod cases;
mod channel;
mod chats;
mod dispatch;
pub mod knowledge_sync;
mod process;
mod resolution;
mod retention;
mod shared;

/// How the daemon behaves (from the config).
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub poll_interval: Duration,
    pub overlap: Duration,
    pub initial_lookback: Duration,
    pub reply_channel: ReplyChannel,
    /// The sender of email replies; `None` when no SMTP server is configured.
    pub email_from: Option<String>,
    /// The agent user, by username or Id.
    pub agent_user: String,
    /// The default handover target, by name or Id.
    pub default_target: String,
    /// How many conversations the agent is asked about at once.
    pub agent_concurrency: usize,
    /// Articles from the org's Salesforce Knowledge, synced into the agent's help centre.
    pub salesforce_knowledge: Option<crate::config::SalesforceKnowledgeConfig>,
    /// What a customer's silence after suggestions means.
    pub silence_after_suggestions: crate::config::SilenceAfterSuggestions,
    /// How long the store keeps conversations and traces.
    pub retention: crate::config::RetentionConfig,
}

impl DaemonSettings {
    /// The settings a configuration with only `agent_user` and
    /// `handover.default_target` gives: the one place settings start from (`run` fills in
    /// the rest of its configuration; the demo, tests and benchmarks change what they need).
    pub fn new(agent_user: &str, default_target: &str) -> DaemonSettings {
        let poll = crate::config::PollConfig::default();
        DaemonSettings {
            poll_interval: poll.interval,
            overlap: poll.overlap,
            initial_lookback: poll.initial_lookback,
            reply_channel: ReplyChannel::default(),
            email_from: None,
            agent_user: agent_user.to_string(),
            default_target: default_target.to_string(),
            agent_concurrency: 1,
            salesforce_knowledge: None,
            silence_after_suggestions: Default::default(),
            retention: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("polling failed: {0}")]
    Poll(SalesforceError),
    /// The chat channel's task ended (it runs until the daemon stops).
    #[error("the chat channel's task failed: {0}")]
    ChatTask(String),
}

/// What happened to one conversation (a case or a chat) in a cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationEvent {
    pub conversation_id: String,
    pub case_number: String,
    pub kind: EventKind,
    /// What happened, for people watching (the demo): may quote the reply's first line or
    /// the handover reason, so it never goes to the log.
    pub detail: String,
    /// What happened without any message text or customer data: ids, rules, targets,
    /// sizes. This is what the log gets.
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A conversation the agent answered reached a resolution (soft, hard or abandoned).
    Resolved,
    /// A handed-over chat's case exists in Salesforce.
    CaseCreated,
    /// A person's public reply on a chat's case was copied into the chat.
    HumanReplied,
    /// A visitor's messages were added to their chat's case.
    Forwarded,
    /// A new messenger visitor became a Lead.
    LeadCreated,
    Replied,
    HandedOver,
    Resumed,
    AssignedAway,
    Closed,
    AgentFailed,
    Unreadable,
}

/// What one cycle did.
#[derive(Debug, Clone, Default)]
pub struct CycleReport {
    pub rows: usize,
    pub events: Vec<ConversationEvent>,
    pub executed: RoundReport,
    /// Salesforce API requests this cycle sent.
    pub api_calls: u64,
    pub poll_error: Option<String>,
    /// What the Salesforce Knowledge sync did, when one ran this cycle.
    pub knowledge: Option<knowledge_sync::SyncReport>,
}

pub struct Daemon {
    /// What the channels and the stages share, the chat channel's task included.
    shared: Arc<shared::Shared>,
    /// The Cases channel's own state.
    cases: cases::CasesChannel,
    /// The chat channel, when the messenger is on: its own task decides chats as they
    /// come, the daemon's loop only its quiet ones.
    chats: Option<Arc<tokio::sync::Mutex<chats::ChatChannel>>>,
    /// The messenger's hub, when it is on.
    hub: Option<Arc<crate::channels::messenger::Messenger>>,
    /// Where the status for `casebridge status` is written after each cycle.
    status_file: Option<std::path::PathBuf>,
    reloader: Option<Arc<crate::rules::watch::Reloader>>,
    /// The org as the session reported it: instance URL and org id.
    org: (String, String),
    /// The latest status, for the admin server.
    status_snapshot: Arc<std::sync::Mutex<Option<Status>>>,
    knowledge: Option<knowledge_sync::KnowledgeSync>,
    /// When the last retention pass ran, what it did, and the store's bytes on disk then.
    last_prune: Option<(std::time::Instant, crate::report::status::LastPrune, u64)>,
}

impl Daemon {
    /// Resolves the agent user and the default handover target in the org; fails with a
    /// message that says what to fix when either is unusable.
    pub async fn new(
        client: Client,
        store: Store,
        agent: Agent,
        rules: SharedRules,
        mailer: Option<Mailer>,
        settings: DaemonSettings,
    ) -> Result<Daemon, DaemonError> {
        let agent_user = directory::agent_user(&client, &settings.agent_user).await?;
        let session = client.session().await.map_err(SetupError::from)?;
        let org = (session.instance_url.clone(), session.org_id().unwrap_or_default().to_string());
        let default_target = directory::handover_target(&client, &settings.default_target).await?;
        let posts = Posts::of(&client).await.map_err(SetupError::from)?;
        if posts == Posts::Skipped {
            tracing::info!(
                "Feed posts have no Visibility in this org (no Digital Experiences): none is read as a reply."
            );
        }
        let metrics = Arc::new(crate::report::metrics::Metrics::default());
        let mut executor = Executor::new(client.clone(), store.clone(), mailer, agent_user.id.clone());
        executor.set_metrics(metrics.clone());
        let knowledge = match (&settings.salesforce_knowledge, agent.library()) {
            (Some(k), Some(library)) => {
                Some(knowledge_sync::KnowledgeSync::new(k.clone(), library.clone(), settings.overlap))
            }
            _ => None,
        };
        let cases = cases::CasesChannel::new(&settings);
        let shared = shared::Shared {
            client,
            store,
            metrics,
            rules,
            agent: Arc::new(agent),
            settings,
            agent_user,
            default_target,
            targets: Default::default(),
            executor: tokio::sync::Mutex::new(executor),
            posts,
        };
        Ok(Daemon {
            shared: Arc::new(shared),
            cases,
            chats: None,
            hub: None,
            status_file: None,
            reloader: None,
            org,
            status_snapshot: Arc::new(std::sync::Mutex::new(None)),
            knowledge,
            last_prune: None,
        })
    }

    pub fn agent_user(&self) -> &Target {
        &self.shared.agent_user
    }

    pub fn default_target(&self) -> &Target {
        &self.shared.default_target
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    pub fn metrics(&self) -> Arc<crate::report::metrics::Metrics> {
        self.shared.metrics.clone()
    }

    /// What the admin server reads of this daemon.
    pub fn admin_state(
        &self,
        reloader: Option<Arc<crate::rules::watch::Reloader>>,
        token: crate::model::Secret,
    ) -> crate::report::admin::AdminState {
        crate::report::admin::AdminState {
            store: self.store().clone(),
            metrics: self.metrics(),
            status: self.status_snapshot(),
            reloader,
            token,
            client: Some(self.shared.client.clone()),
            instance_url: self.org.0.clone(),
            default_owner: serde_json::json!({ "id": self.shared.default_target.id, "name": self.shared.default_target.name }),
            messenger: self.messenger().cloned(),
            embedder: self.shared.agent.library().and_then(|l| l.embedder()),
        }
    }

    /// The latest status (as `casebridge status` shows it), updated after every cycle.
    pub fn status_snapshot(&self) -> Arc<std::sync::Mutex<Option<Status>>> {
        self.status_snapshot.clone()
    }

    /// Writes a status file for `casebridge status` after every cycle.
    pub fn report_status(&mut self, path: std::path::PathBuf, reloader: Option<Arc<crate::rules::watch::Reloader>>) {
        self.status_file = Some(path);
        self.reloader = reloader;
    }

    /// What `casebridge status` shows (and `casebridge errors`, while the daemon runs).
    pub fn status(&self, last: &CycleReport) -> Status {
        Status {
            pid: std::process::id(),
            org: Org { instance_url: self.org.0.clone(), org_id: self.org.1.clone() },
            updated_at: Utc::now(),
            agent_user: self.shared.agent_user.clone(),
            handover_target: self.shared.default_target.clone(),
            cursor: self.store().cursor().ok().flatten().map(|c| c.modstamp),
            last_cycle: LastCycle {
                rows: last.rows,
                events: last.events.len(),
                actions_done: last.executed.done,
                actions_failed: last.executed.failed,
                api_calls: last.api_calls,
                poll_error: last.poll_error.clone(),
            },
            api_usage: self.client().api_usage(),
            conversations: self.store().conversation_count(),
            outbox_pending: self.store().outbox_len(),
            sync_errors: self.store().sync_error_count(),
            recent_sync_errors: self.store().recent_sync_errors(RECENT_ERRORS_IN_STATUS).unwrap_or_default(),
            rules: self.reloader.as_ref().map(|r| r.status()),
            store: Some(self.store_usage()),
        }
    }

    fn write_status(&self, last: &CycleReport) {
        let status = self.status(last);
        if let Some(path) = &self.status_file
            && let Err(e) = status.write(path)
        {
            tracing::warn!(error = %e, path = %path.display(), "Cannot write the status file.");
        }
        *self.status_snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
    }

    /// Runs cycles until `shutdown` resolves. Cancelling a cycle half-way is safe: every
    /// decision is committed with its actions before anything is sent, and actions in flight
    /// are checked in Salesforce before they are sent again.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        tokio::pin!(shutdown);
        // The chat channel runs on its own: a visitor's message never waits for a cycle.
        let mut chat_task = self.spawn_chat_task();
        let chat_task_ended = async {
            match chat_task.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(chat_task_ended);
        let result = loop {
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                ended = &mut chat_task_ended => break chat_task_result(ended),
                result = self.cycle_with(false) => match result {
                    Ok(report) => log_cycle(&report),
                    Err(DaemonError::Store(e)) => break Err(DaemonError::Store(e)),
                    Err(e) => tracing::error!(error = %e, "Cycle failed; trying again at the next poll."),
                },
            }
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                ended = &mut chat_task_ended => break chat_task_result(ended),
                _ = tokio::time::sleep(self.shared.settings.poll_interval) => {}
            }
        };
        if let Some(task) = chat_task {
            task.abort();
        }
        self.store().flush()?;
        tracing::info!("casebridge stopped; pending actions stay in the outbox.");
        result
    }

    /// One poll → decide → act cycle.
    pub async fn cycle(&mut self) -> Result<CycleReport, DaemonError> {
        self.cycle_with(true).await
    }

    /// A cycle, with the chat channel's part when it does not run on its own.
    async fn cycle_with(&mut self, chats: bool) -> Result<CycleReport, DaemonError> {
        let report = self.cycle_inner(chats).await?;
        self.count(&report);
        self.write_status(&report);
        Ok(report)
    }

    /// Updates the metrics after a cycle.
    fn count(&self, report: &CycleReport) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.shared.metrics;
        m.polls.fetch_add(1, Relaxed);
        if report.poll_error.is_some() {
            m.poll_errors.fetch_add(1, Relaxed);
        }
        m.emails_sent.fetch_add(report.executed.emails_sent as u64, Relaxed);
        m.outbox_pending.store(self.store().outbox_len() as u64, Relaxed);
        if let Some(usage) = self.client().api_usage() {
            m.api_used.store(usage.used, Relaxed);
            m.api_max.store(usage.max, Relaxed);
        }
        if let Some(r) = &self.reloader {
            let s = r.status();
            m.set_reloads(s.reloads_ok, s.reloads_failed);
        }
    }

    async fn cycle_inner(&mut self, chats: bool) -> Result<CycleReport, DaemonError> {
        let calls_before = self.client().requests_sent();
        let mut report = CycleReport::default();
        if !self.sync_knowledge(&mut report).await? {
            // The help centre never loaded: deciding now would hand every case over.
            report.executed = self.shared.send_outbox().await?;
            report.api_calls = self.client().requests_sent() - calls_before;
            return Ok(report);
        }
        self.cases_round(&mut report).await?;
        if chats {
            self.chats_cycle(&mut report).await?;
        }
        self.resolve_quiet(&mut report).await?;
        report.executed = self.shared.send_outbox().await?;
        report.api_calls = self.client().requests_sent() - calls_before;
        if self.prune_due() {
            self.prune().await?;
        }
        Ok(report)
    }

    /// Syncs Salesforce Knowledge when due; `false` while its articles never loaded.
    async fn sync_knowledge(&mut self, report: &mut CycleReport) -> Result<bool, DaemonError> {
        let Some(sync) = self.knowledge.as_mut() else { return Ok(true) };
        if !sync.due() {
            return Ok(true);
        }
        match sync.sync(&self.shared.client).await {
            Ok(r) => {
                if r.added_or_updated + r.removed > 0 {
                    tracing::info!(
                        articles = r.articles,
                        changed = r.added_or_updated,
                        removed = r.removed,
                        "Salesforce Knowledge synced."
                    );
                }
                report.knowledge = Some(r);
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot sync Salesforce Knowledge.");
                self.shared.record_error(None, "knowledge_sync", e.error_code(), &e.message())?;
                report.poll_error = Some(format!("Salesforce Knowledge: {e}"));
            }
        }
        Ok(self.knowledge.as_ref().is_none_or(|k| k.loaded()))
    }
}

/// What the chat channel's task ending means for the daemon: it runs until stopped, so an
/// end is a failure (its store error, or a panic), never a clean stop.
fn chat_task_result(ended: Result<Result<(), DaemonError>, tokio::task::JoinError>) -> Result<(), DaemonError> {
    match ended {
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Err(DaemonError::ChatTask("it stopped".into())),
        Err(e) => Err(DaemonError::ChatTask(e.to_string())),
    }
}

pub(super) fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

pub(super) fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor_second(t);
    if floor == t { t } else { floor + ChronoDuration::seconds(1) }
}

pub(super) fn log_cycle(report: &CycleReport) {
    for e in &report.events {
        tracing::info!(conversation_id = %e.conversation_id, case_number = %e.case_number, kind = ?e.kind, "{}", e.summary);
    }
    // Quiet when nothing happened: an idle poll re-reads the overlap window every cycle.
    if !report.events.is_empty() || report.executed.done > 0 || report.executed.failed > 0 {
        tracing::info!(
            rows = report.rows,
            done = report.executed.done,
            failed = report.executed.failed,
            api_calls = report.api_calls,
            "Cycle finished."
        );
    }
}
