//! The daemon's cycle: poll → build → decide → act.
//!
//! One SOQL query per cycle finds the cases owned by the agent user whose `SystemModstamp`
//! is past the persisted cursor (minus a small overlap), with their comments, emails and
//! text feed posts in child subqueries. Rows already processed are recognised by their
//! `SystemModstamp` and skipped, so the overlap costs nothing. Each updated case is merged
//! into its stored conversation and decided; the decision's actions are committed with the
//! new conversation state in one store transaction, then the executor sends the outbox.
//! The cursor only moves after every row of the poll is committed, so a crash re-polls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use serde_json::Value as Json;

use crate::act::email::Mailer;
use crate::act::executor::{Executor, RoundReport};
use crate::act::plan::{HandoverTo, ReplySettings, plan};
use crate::agent::Agent;
use crate::channels::cases::build::{self, Authors};
use crate::channels::cases::query::case_query;
use crate::decide::{self, DecideError, SharedRules};
use crate::model::{Action, Conversation, ConversationState, DEFAULT_TARGET, Decision, ReplyChannel, RuleError};
use crate::report::status::{LastCycle, Org, RECENT_ERRORS_IN_STATUS, Status};
use crate::salesforce::directory::{self, SetupError, Target};
use crate::salesforce::soql::Filter;
use crate::salesforce::{Client, SalesforceError, id};
use crate::store::{Cursor, Store, StoreError, SyncError};

/// How many recently active open conversations the poll also watches for re-assignment.
const WATCHED_OPEN: usize = 100;

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
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("polling failed: {0}")]
    Poll(SalesforceError),
}

/// What happened to one case in a cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseEvent {
    pub case_id: String,
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
    pub events: Vec<CaseEvent>,
    pub executed: RoundReport,
    /// Salesforce API requests this cycle sent.
    pub api_calls: u64,
    pub poll_error: Option<String>,
}

pub struct Daemon {
    client: Client,
    store: Store,
    agent: Arc<Agent>,
    rules: SharedRules,
    executor: Executor,
    settings: DaemonSettings,
    agent_user: Target,
    default_target: Target,
    /// Handover targets named by rules, resolved to ids.
    targets: HashMap<String, String>,
    /// Cases whose latest stamp was only the echo of our own reply, by that stamp: skipped
    /// by the next polls without reading their child pages. Entries go once the cursor
    /// passes them.
    echoes: HashMap<String, DateTime<Utc>>,
    /// Where the status for `casebridge status` is written after each cycle.
    status_file: Option<std::path::PathBuf>,
    reloader: Option<Arc<crate::rules::watch::Reloader>>,
    metrics: Arc<crate::report::metrics::Metrics>,
    /// The org as the session reported it: instance URL and org id.
    org: (String, String),
    /// The latest status, for the admin server.
    status_snapshot: Arc<std::sync::Mutex<Option<Status>>>,
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
        let metrics = Arc::new(crate::report::metrics::Metrics::default());
        let mut executor = Executor::new(client.clone(), store.clone(), mailer, agent_user.id.clone());
        executor.set_metrics(metrics.clone());
        Ok(Daemon {
            client,
            store,
            agent: Arc::new(agent),
            rules,
            executor,
            settings,
            agent_user,
            default_target,
            targets: HashMap::new(),
            echoes: HashMap::new(),
            status_file: None,
            reloader: None,
            metrics,
            org,
            status_snapshot: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    pub fn agent_user(&self) -> &Target {
        &self.agent_user
    }

    pub fn default_target(&self) -> &Target {
        &self.default_target
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn metrics(&self) -> Arc<crate::report::metrics::Metrics> {
        self.metrics.clone()
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
            agent_user: self.agent_user.clone(),
            handover_target: self.default_target.clone(),
            cursor: self.store.cursor().ok().flatten().map(|c| c.modstamp),
            last_cycle: LastCycle {
                rows: last.rows,
                events: last.events.len(),
                actions_done: last.executed.done,
                actions_failed: last.executed.failed,
                api_calls: last.api_calls,
                poll_error: last.poll_error.clone(),
            },
            api_usage: self.client.api_usage(),
            conversations: self.store.conversation_count(),
            outbox_pending: self.store.outbox_len(),
            sync_errors: self.store.sync_error_count(),
            recent_sync_errors: self.store.recent_sync_errors(RECENT_ERRORS_IN_STATUS).unwrap_or_default(),
            rules: self.reloader.as_ref().map(|r| r.status()),
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
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                result = self.cycle() => match result {
                    Ok(report) => log_cycle(&report),
                    Err(DaemonError::Store(e)) => return Err(DaemonError::Store(e)),
                    Err(e) => tracing::error!(error = %e, "Cycle failed; trying again at the next poll."),
                },
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        self.store.flush()?;
        tracing::info!("casebridge stopped; pending actions stay in the outbox.");
        Ok(())
    }

    /// One poll → decide → act cycle.
    pub async fn cycle(&mut self) -> Result<CycleReport, DaemonError> {
        let report = self.cycle_inner().await?;
        self.count(&report);
        self.write_status(&report);
        Ok(report)
    }

    /// Updates the metrics after a cycle.
    fn count(&self, report: &CycleReport) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.metrics;
        m.polls.fetch_add(1, Relaxed);
        if report.poll_error.is_some() {
            m.poll_errors.fetch_add(1, Relaxed);
        }
        m.emails_sent.fetch_add(report.executed.emails_sent as u64, Relaxed);
        m.outbox_pending.store(self.store.outbox_len() as u64, Relaxed);
        if let Some(usage) = self.client.api_usage() {
            m.api_used.store(usage.used, Relaxed);
            m.api_max.store(usage.max, Relaxed);
        }
        if let Some(r) = &self.reloader {
            let s = r.status();
            m.set_reloads(s.reloads_ok, s.reloads_failed);
        }
    }

    async fn cycle_inner(&mut self) -> Result<CycleReport, DaemonError> {
        let calls_before = self.client.requests_sent();
        let mut report = CycleReport::default();
        if let Err(e) = self.poll(&mut report).await {
            match e {
                DaemonError::Poll(err) => {
                    tracing::warn!(error = %err, "Polling failed.");
                    self.record_error(None, "poll", err.error_code(), &err.message())?;
                    report.poll_error = Some(err.to_string());
                }
                other => return Err(other),
            }
        }
        self.retry_due(&mut report).await?;
        report.executed = self.executor.run_round().await?;
        report.api_calls = self.client.requests_sent() - calls_before;
        Ok(report)
    }

    fn poll_query(&self, filter: Filter) -> String {
        case_query(&self.rules.load().case_fields(), filter)
    }

    /// Reads what changed since the cursor. The cursor is a watermark: every change
    /// stamped at or before it has been seen. It advances to the newest stamp seen, but
    /// never past `overlap` before this poll began, since Salesforce may still commit
    /// writes stamped a little in the past; so after a burst the next polls re-read only
    /// the burst's last `overlap` (plus the second it ends in), and an idle poll reads
    /// nothing (one API call).
    async fn poll(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let started = Utc::now();
        let overlap = ChronoDuration::from_std(self.settings.overlap).unwrap_or(ChronoDuration::minutes(1));
        let cursor = self.store.cursor()?.map(|c| c.modstamp).unwrap_or_else(|| {
            started - ChronoDuration::from_std(self.settings.initial_lookback).unwrap_or(ChronoDuration::days(1))
        });
        // The agent user's cases, and the recently active open conversations whichever owner
        // they have now: a case someone re-assigned away comes back with its new owner and
        // is recorded as such, at no extra API call.
        let owned = Filter::eq("OwnerId", self.agent_user.id.as_str());
        let watched = self.store.recently_open(WATCHED_OPEN)?;
        let scope = if watched.is_empty() { owned } else { owned.or(Filter::is_in("Id", watched)) };
        let soql = self.poll_query(Filter::gt("SystemModstamp", cursor).and(scope));
        let mut newest = cursor;
        let mut pages = self.client.query::<Json>(soql);
        while let Some(page) = pages.next_page().await.map_err(DaemonError::Poll)? {
            for row in page {
                report.rows += 1;
                let stamp = row["SystemModstamp"].as_str().and_then(crate::salesforce::soql::parse_datetime);
                if let Some(stamp) = stamp {
                    newest = newest.max(stamp);
                }
                let id = row["Id"].as_str().unwrap_or_default();
                let stored = self.store.conversation(id)?;
                // Seen at this stamp already (the overlap): no child pages, no decision.
                if let Some(stamp) = stamp
                    && (self.echoes.get(id).is_some_and(|echo| *echo >= stamp)
                        || stored.as_ref().is_some_and(|c| c.modstamp >= stamp))
                {
                    continue;
                }
                let row = self.client.with_all_children(row).await.map_err(DaemonError::Poll)?;
                self.process_row(&row, stored, false, report).await?;
            }
        }
        // SOQL datetime literals are whole seconds: the watermark is too. It may cover the
        // rest of the newest row's second only when that second is older than the overlap.
        let watermark = ceil_second(newest).min(floor_second(started - overlap)).max(cursor);
        self.echoes.retain(|_, stamp| *stamp > watermark);
        if watermark > cursor {
            self.store.set_cursor(Cursor { modstamp: watermark })?;
        }
        Ok(())
    }

    /// Conversations whose agent failed earlier: read again by Id (which also shows
    /// whether they were re-assigned meanwhile) and decided again.
    async fn retry_due(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let due = self.store.due_retries(Utc::now())?;
        for chunk in due.chunks(200) {
            let soql = self.poll_query(Filter::is_in("Id", chunk.iter().cloned()));
            match self.client.query_with_children(soql).await {
                Ok(rows) => {
                    for row in rows {
                        let stored = self.store.conversation(row["Id"].as_str().unwrap_or_default())?;
                        self.process_row(&row, stored, true, report).await?;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Cannot re-read conversations due for a retry."),
            }
        }
        Ok(())
    }

    /// Builds the row's conversation on what the store holds for it (`stored`, read by the
    /// caller), decides and commits. Without `force`, a row no newer than the store's is skipped.
    async fn process_row(
        &mut self,
        row: &Json,
        stored: Option<Conversation>,
        force: bool,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let fresh = match build::from_case_row(row, &Authors { agent_user_id: &self.agent_user.id }) {
            Ok(c) => c,
            Err(e) => {
                self.record_error(Some(&e.case_id), "read_case", "UNREADABLE_CASE", &e.problem)?;
                report.events.push(CaseEvent {
                    case_id: e.case_id.clone(),
                    case_number: String::new(),
                    kind: EventKind::Unreadable,
                    summary: "the case cannot be read (see casebridge errors)".into(),
                    detail: e.problem,
                });
                return Ok(());
            }
        };
        let mut conv = match stored {
            Some(mut stored) => {
                if !force && fresh.modstamp <= stored.modstamp {
                    return Ok(());
                }
                if !force && only_our_own_echo(&stored, &fresh) {
                    // Our reply bumped the case's stamp; nothing to decide or to keep.
                    self.echoes.insert(fresh.case_id.clone(), fresh.modstamp);
                    return Ok(());
                }
                stored.merge(fresh);
                stored
            }
            None => fresh,
        };
        let Some(unanswered) = self.settle(&mut conv, report)? else {
            return Ok(());
        };
        let Some(decision) = self.decide(&mut conv, report).await? else {
            return Ok(());
        };
        let handover = match &decision.handover {
            Some(h) => Some(self.handover_to(&conv.case_id, h).await),
            None => None,
        };
        let replies =
            ReplySettings { channel: self.settings.reply_channel, email_from: self.settings.email_from.as_deref() };
        let actions = plan(&conv, &decision, replies, handover);
        self.apply(conv, decision, actions, unanswered, report)
    }

    /// Settles a conversation that needs no decision (assigned away, closed, nothing new)
    /// and commits it; otherwise returns the ids of the parts to answer.
    fn settle(
        &mut self,
        conv: &mut Conversation,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError> {
        if !id::same(&conv.owner_id, &self.agent_user.id) {
            if conv.state == ConversationState::Open {
                conv.state = ConversationState::AssignedAway { owner_id: conv.owner_id.clone() };
                let detail = format!("now owned by {}", conv.owner_id);
                report.events.push(event(conv, EventKind::AssignedAway, detail.clone(), detail));
            }
            conv.retry_at = None;
            self.store.commit(conv, Vec::new())?;
            return Ok(None);
        }
        if conv.is_closed() {
            let mut actions = Vec::new();
            if conv.state != ConversationState::Closed {
                conv.state = ConversationState::Closed;
                // Mappings configured `on: [close]` write their fields now.
                let mut trace = crate::model::Trace::default();
                match self.rules.load().outbound(conv, crate::model::Moment::Close, &mut trace) {
                    Ok(fields) if !fields.is_empty() => {
                        actions.push(Action::UpdateFields { case_id: conv.case_id.clone(), fields });
                    }
                    Ok(_) => {}
                    Err(e) => self.record_error(Some(&conv.case_id), "rules", "RULE_ERROR", &e.to_string())?,
                }
                report.events.push(event(conv, EventKind::Closed, "the case is closed".into(), "closed".into()));
            }
            conv.retry_at = None;
            self.store.commit(conv, actions)?;
            return Ok(None);
        }
        if conv.state != ConversationState::Open {
            conv.state = ConversationState::Open;
            let detail = "assigned back to the agent user".to_string();
            report.events.push(event(conv, EventKind::Resumed, detail.clone(), detail));
        }
        let unanswered: Vec<String> = conv.unanswered().iter().map(|p| p.id.clone()).collect();
        if unanswered.is_empty() {
            conv.retry_at = None;
            self.store.commit(conv, Vec::new())?;
            return Ok(None);
        }
        Ok(Some(unanswered))
    }

    /// Decides a conversation. An agent that failed for now leaves it to be tried again
    /// later (committed, no decision); one that failed for good is a handover.
    async fn decide(
        &mut self,
        conv: &mut Conversation,
        report: &mut CycleReport,
    ) -> Result<Option<Decision>, DaemonError> {
        let rules = self.rules.load_full();
        let decide_started = std::time::Instant::now();
        let decided = decide::decide(rules.as_ref().as_ref(), &self.agent, conv).await;
        self.metrics.decision_seconds(decide_started.elapsed().as_secs_f64());
        self.metrics.cases_processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match decided {
            Ok(d) => Ok(Some(d)),
            Err(DecideError::Agent(e)) if e.is_transient() => {
                conv.agent_failures += 1;
                let wait = ChronoDuration::seconds((30i64 << conv.agent_failures.min(6)).min(1800));
                conv.retry_at = Some(Utc::now() + wait);
                self.record_error(Some(&conv.case_id), "agent", "AGENT_ERROR", &e.to_string())?;
                let detail = format!("{e}; trying again in {}s", wait.num_seconds());
                report.events.push(event(conv, EventKind::AgentFailed, detail.clone(), detail));
                self.store.commit(conv, Vec::new())?;
                Ok(None)
            }
            Err(DecideError::Agent(e)) => {
                self.record_error(Some(&conv.case_id), "agent", "AGENT_ERROR", &e.to_string())?;
                let base = Decision {
                    attributes: Default::default(),
                    topics: Default::default(),
                    reply: None,
                    email: None,
                    handover: None,
                    field_updates: Default::default(),
                    agent: None,
                    trace: Default::default(),
                    rules: rules.id(),
                };
                let error = RuleError { rule: "agent".into(), message: e.to_string() };
                Ok(Some(decide::fallback(base, Default::default(), error)))
            }
        }
    }

    /// Applies a decision to its conversation (answered parts, attributes, topics, state),
    /// reports it, and commits the conversation with the decision's actions.
    fn apply(
        &mut self,
        mut conv: Conversation,
        decision: Decision,
        actions: Vec<Action>,
        unanswered: Vec<String>,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let new_topics: Vec<&str> =
            decision.topics.iter().filter(|t| !conv.topics.contains(*t)).map(String::as_str).collect();
        let tagged =
            if new_topics.is_empty() { String::new() } else { format!(" [topics: {}]", new_topics.join(", ")) };
        if let Some(error) = decision.trace.0.iter().find(|t| t.stage == "error") {
            // A rule failed: the case was handed over (the fallback), and admins see why.
            self.record_error(
                Some(&conv.case_id),
                "rules",
                "RULE_ERROR",
                &format!("{}: {}", error.rule, error.detail),
            )?;
        }
        self.metrics.topics_assigned.fetch_add(new_topics.len() as u64, std::sync::atomic::Ordering::Relaxed);
        conv.handled.extend(unanswered);
        conv.attributes.extend(decision.attributes.clone());
        conv.topics.extend(decision.topics.iter().cloned());
        conv.retry_at = None;
        conv.agent_failures = 0;
        if let Some(reply) = &decision.reply {
            self.metrics.replies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            conv.replies_sent += 1;
            let backend = decision.agent.as_ref().map_or("", |a| a.backend.as_str());
            let detail = format!("{}{tagged} ({backend})", first_line(reply));
            let summary = format!("replied, {} characters{tagged} ({backend})", reply.chars().count());
            report.events.push(event(&conv, EventKind::Replied, detail, summary));
        }
        if let Some(h) = &decision.handover {
            let target_id = actions
                .iter()
                .find_map(|a| match a {
                    Action::Reassign { owner_id, .. } => Some(owner_id.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            conv.state = ConversationState::HandedOver { target_id: target_id.clone(), reason: h.reason.clone() };
            let target = self.target_name(&target_id);
            self.metrics.handover(&target, &h.rule);
            report.events.push(event(
                &conv,
                EventKind::HandedOver,
                format!("to {target} by rule {}: {}{tagged}", h.rule, h.reason),
                format!("handed over to {target} by rule {}{tagged}", h.rule),
            ));
        }
        conv.push_decision(decision);
        self.store.commit(&conv, actions)?;
        Ok(())
    }

    /// Where a decision's handover goes: the rule's target when the org has it, else the
    /// default target with a note saying why (and a sync error for the admin).
    async fn handover_to(&mut self, case_id: &str, handover: &crate::model::Handover) -> HandoverTo {
        match self.resolve_target(&handover.target).await {
            Ok(owner_id) => HandoverTo { owner_id, note: handover.reason.clone() },
            Err(e) => {
                let problem = format!(
                    "rule {} names handover target {:?}, which cannot be used: {e}",
                    handover.rule, handover.target
                );
                if let Err(store) = self.record_error(Some(case_id), "handover", "HANDOVER_TARGET_NOT_FOUND", &problem)
                {
                    tracing::warn!(error = %store, "Cannot record a sync error.");
                }
                HandoverTo {
                    owner_id: self.default_target.id.clone(),
                    note: format!(
                        "{}\n(The rule's target {:?} could not be used: {e}; handed to the default target.)",
                        handover.reason, handover.target
                    ),
                }
            }
        }
    }

    /// A target's name for people, where it is known.
    fn target_name(&self, id: &str) -> String {
        if id == self.default_target.id {
            return self.default_target.name.clone();
        }
        self.targets.iter().find(|(_, v)| v.as_str() == id).map_or_else(|| id.to_string(), |(k, _)| k.clone())
    }

    async fn resolve_target(&mut self, target: &str) -> Result<String, SetupError> {
        if target == DEFAULT_TARGET {
            return Ok(self.default_target.id.clone());
        }
        if let Some(id) = self.targets.get(target) {
            return Ok(id.clone());
        }
        let resolved = directory::handover_target(&self.client, target).await?;
        self.targets.insert(target.to_string(), resolved.id.clone());
        Ok(resolved.id)
    }

    fn record_error(
        &self,
        case_id: Option<&str>,
        operation: &str,
        code: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.metrics.sync_error(code);
        let now: DateTime<Utc> = Utc::now();
        self.store
            .record_error(SyncError {
                id: 0,
                case_id: case_id.map(str::to_string),
                operation: operation.into(),
                code: code.into(),
                message: message.into(),
                attempts: 1,
                first_seen: now,
                last_seen: now,
                action: None,
                retries: 0,
                last_retry: None,
                history: Vec::new(),
            })
            .map(|_| ())
    }
}

/// A case's event for the cycle report.
fn event(conv: &Conversation, kind: EventKind, detail: String, summary: String) -> CaseEvent {
    CaseEvent { case_id: conv.case_id.clone(), case_number: conv.case_number.clone(), kind, detail, summary }
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor_second(t);
    if floor == t { t } else { floor + ChronoDuration::seconds(1) }
}

/// Whether `fresh` differs from `stored` only by parts our own agent user wrote (the echo
/// of our replies), with the same owner and status: nothing to decide, nothing to store.
fn only_our_own_echo(stored: &Conversation, fresh: &Conversation) -> bool {
    let known: std::collections::BTreeSet<&str> = stored.parts.iter().map(|p| p.id.as_str()).collect();
    let new_parts: Vec<_> = fresh.parts.iter().filter(|p| !known.contains(p.id.as_str())).collect();
    !new_parts.is_empty()
        && new_parts.iter().all(|p| p.author == crate::model::AuthorKind::Bot)
        && stored.owner_id == fresh.owner_id
        && stored.status == fresh.status
        && stored.state == ConversationState::Open
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}

fn log_cycle(report: &CycleReport) {
    for e in &report.events {
        tracing::info!(case_id = %e.case_id, case_number = %e.case_number, kind = ?e.kind, "{}", e.summary);
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
