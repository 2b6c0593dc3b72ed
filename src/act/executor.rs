//! The executor: sends what waits in the outbox, in as few Salesforce calls as it can.
//!
//! Each round reads the due entries in queue order, `ROUND_BATCH` at a time; for each batch:
//! 1. Entries left in flight by a crash (or a request that timed out) are checked in
//!    Salesforce before anything is resent: a reply whose comment already exists is marked
//!    done, never posted again. Idempotent actions (owner, fields, topics) are simply resent.
//! 2. Emails go to the SMTP server; each accepted one is recorded in the store at once.
//! 3. Topic names are resolved to ids (one query; missing topics created).
//! 4. Everything else is packed, across cases, into composite calls of up to 25
//!    subrequests (`allOrNone: false`, so one bad case never blocks the others). Entries
//!    are marked in flight, durably, before the call goes out.
//! 5. Each entry's result is handled on its own: done, retried later with backoff, or a
//!    sync error with Salesforce's code and message.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{Value as Json, json};

use super::email::Mailer;
use crate::channels::cases::deliver;
use crate::model::Action;
use crate::salesforce::client::COMPOSITE_MAX;
use crate::salesforce::soql::{Filter, Select};
use crate::salesforce::{Client, SalesforceError, SubRequest};
use crate::store::{EntryStatus, OutboxEntry, OutboxScan, Store, StoreError, SyncError};

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub done: usize,
    pub retried_later: usize,
    pub failed: usize,
    pub verified_already_applied: usize,
    pub emails_sent: usize,
    pub api_calls: usize,
    /// Outbox entries the round read to find the due ones (each read once a round).
    pub entries_read: usize,
}

/// How many due entries the executor holds at once: a round reads the outbox in batches of
/// this many, so its memory does not grow with the outbox.
pub const ROUND_BATCH: usize = 200;

impl std::ops::AddAssign for RoundReport {
    /// Two rounds of one cycle, counted together.
    fn add_assign(&mut self, other: RoundReport) {
        self.done += other.done;
        self.retried_later += other.retried_later;
        self.failed += other.failed;
        self.verified_already_applied += other.verified_already_applied;
        self.emails_sent += other.emails_sent;
        self.api_calls += other.api_calls;
        self.entries_read += other.entries_read;
    }
}

/// The longest wait between retries of one action.
const MAX_BACKOFF_SECS: i64 = 900;
/// After this many failed attempts a transient failure becomes a sync error.
const MAX_ATTEMPTS: u32 = 8;

pub struct Executor {
    pub(super) client: Client,
    pub(super) store: Store,
    mailer: Option<Mailer>,
    agent_user_id: String,
    topic_ids: HashMap<String, String>,
    /// Objects' `describe`, read once each, to check writes before they are sent.
    pub(super) describes: HashMap<String, crate::salesforce::SObjectDescribe>,
    pub(super) metrics: Option<std::sync::Arc<crate::report::metrics::Metrics>>,
}

/// How one entry's attempt ended.
enum Outcome {
    Done,
    Retry(String),
    Failed {
        code: String,
        message: String,
    },
    /// The org's duplicate rule refused a new record: link to the one it matched.
    Duplicate {
        record_id: String,
        rule: String,
    },
}

impl Executor {
    pub fn new(client: Client, store: Store, mailer: Option<Mailer>, agent_user_id: String) -> Executor {
        let topic_ids = store.meta("topic_ids").ok().flatten().unwrap_or_default();
        Executor { client, store, mailer, agent_user_id, topic_ids, describes: HashMap::new(), metrics: None }
    }

    /// Counts sync errors by code.
    pub fn set_metrics(&mut self, metrics: std::sync::Arc<crate::report::metrics::Metrics>) {
        self.metrics = Some(metrics);
    }

    /// Sends everything that is due, a batch of at most `ROUND_BATCH` entries at a time
    /// read in queue order (never the whole outbox at once). Store failures end the round;
    /// Salesforce and SMTP failures are handled per entry.
    pub async fn run_round(&mut self) -> Result<RoundReport, StoreError> {
        let mut report = RoundReport::default();
        let now = Utc::now();
        let mut scan = OutboxScan::default();
        while !scan.finished() {
            let due = self.store.due_entries(&mut scan, now, ROUND_BATCH)?;
            if !due.is_empty() {
                self.send_batch(due, &mut report).await?;
            }
        }
        report.entries_read = scan.read;
        Ok(report)
    }

    /// Sends one batch of due entries: those a crash left in flight verified first, then
    /// emails over SMTP, then the rest in composite calls.
    async fn send_batch(&mut self, mut due: Vec<OutboxEntry>, report: &mut RoundReport) -> Result<(), StoreError> {
        self.verify_in_flight(&mut due, report).await?;
        // Emails first: the SMTP send, then the record on the case goes with the rest.
        self.send_emails(&mut due, report).await?;
        // An email not accepted waits for a later round, or failed and left the outbox.
        due.retain(|e| !matches!(&e.action, Action::SendEmail { email, .. } if !email.smtp_accepted));

        if let Err(e) = self.resolve_topics(&due, report).await {
            tracing::warn!(error = %e, "Cannot resolve topics; topic assignments wait for the next round.");
            due.retain(|e| !matches!(e.action, Action::AssignTopics { .. }));
        }

        let due = self.validate(due, report).await?;

        // Pack entries, in order, into composite calls.
        let mut chunk: Vec<(OutboxEntry, Vec<SubRequest>)> = Vec::new();
        let mut chunk_len = 0;
        for entry in due {
            let subrequests = deliver::subrequests(&format!("e{}", entry.id), &entry.action, &self.topic_ids);
            if subrequests.is_empty() {
                self.store.complete_entries(&[(entry.id, None)])?;
                report.done += 1;
                continue;
            }
            if chunk_len + subrequests.len() > COMPOSITE_MAX && !chunk.is_empty() {
                self.send_chunk(std::mem::take(&mut chunk), report).await?;
                chunk_len = 0;
            }
            chunk_len += subrequests.len();
            chunk.push((entry, subrequests));
        }
        if !chunk.is_empty() {
            self.send_chunk(chunk, report).await?;
        }
        Ok(())
    }

    /// Entries a crash left in flight: checked in Salesforce, those applied already are
    /// confirmed and leave `due`; the rest are sent again.
    async fn verify_in_flight(
        &mut self,
        due: &mut Vec<OutboxEntry>,
        report: &mut RoundReport,
    ) -> Result<(), StoreError> {
        let in_flight: Vec<OutboxEntry> =
            due.iter().filter(|e| matches!(e.status, EntryStatus::InFlight { .. })).cloned().collect();
        if !in_flight.is_empty() {
            let applied = self.verify(&in_flight, report).await;
            let (confirmed, resend): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
                in_flight.into_iter().partition(|e| applied.contains(&e.id));
            report.verified_already_applied += confirmed.len();
            report.done += confirmed.len();
            self.store
                .complete_entries(&confirmed.iter().map(|e| (e.id, e.action.confirmation_key())).collect::<Vec<_>>())?;
            let resend: Vec<OutboxEntry> = resend
                .into_iter()
                .map(|mut e| {
                    e.status = EntryStatus::Pending;
                    e
                })
                .collect();
            self.store.update_entries(&resend)?;
            due.retain(|e| !confirmed.iter().any(|c| c.id == e.id));
            for e in due.iter_mut() {
                e.status = EntryStatus::Pending;
            }
        }
        Ok(())
    }

    /// Sends the emails due over SMTP (their record on the case goes with the rest).
    async fn send_emails(&mut self, due: &mut [OutboxEntry], report: &mut RoundReport) -> Result<(), StoreError> {
        for entry in due.iter_mut() {
            if let Action::SendEmail { email, .. } = &mut entry.action
                && !email.smtp_accepted
            {
                let Some(mailer) = &self.mailer else {
                    self.fail(entry, "SMTP_NOT_CONFIGURED", "an email reply is due but no SMTP server is configured")?;
                    report.failed += 1;
                    continue;
                };
                // Decided without a sender (no SMTP then): the sender configured now.
                if email.from.trim().is_empty() {
                    email.from = mailer.from().to_string();
                }
                match mailer.send(email).await {
                    Ok(()) => {
                        email.smtp_accepted = true;
                        report.emails_sent += 1;
                        self.store.update_entries(std::slice::from_ref(entry))?;
                    }
                    Err(e) if e.is_transient() => {
                        self.retry_later(entry, &e.to_string())?;
                        report.retried_later += 1;
                    }
                    Err(e) => {
                        self.fail(entry, "SMTP_ERROR", &e.to_string())?;
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(())
    }

    async fn send_chunk(
        &mut self,
        chunk: Vec<(OutboxEntry, Vec<SubRequest>)>,
        report: &mut RoundReport,
    ) -> Result<(), StoreError> {
        let since = Utc::now();
        let marked: Vec<OutboxEntry> = chunk
            .iter()
            .map(|(e, _)| {
                let mut e = e.clone();
                // Attempts count failures, not sends: a send cut short by a crash is no
                // fault of the action, and counting it would stretch the next backoff (and,
                // after enough restarts, give the action up) though nothing ever failed.
                e.status = EntryStatus::InFlight { since };
                e
            })
            .collect();
        // Durably in flight before anything leaves: a crash from here on is verified.
        self.store.update_entries(&marked)?;
        let subrequests: Vec<SubRequest> = chunk.iter().flat_map(|(_, s)| s.clone()).collect();
        report.api_calls += 1;
        let results = match self.client.composite(false, subrequests).await {
            Ok(r) => r,
            Err(e) => {
                // The call may or may not have been applied; the entries stay in flight and
                // are verified next round. Entries the call surely did not reach go back.
                let unsent = matches!(
                    e,
                    SalesforceError::LimitExceeded { .. } | SalesforceError::Auth { .. } | SalesforceError::Config(_)
                ) || e.status().is_some_and(|s| s == 503);
                tracing::warn!(error = %e, entries = marked.len(), "Composite call failed.");
                let back: Vec<OutboxEntry> = marked
                    .into_iter()
                    .map(|mut entry| {
                        if unsent {
                            entry.status = EntryStatus::Pending;
                        }
                        entry.attempts += 1;
                        entry.last_error = Some(e.to_string());
                        entry.not_before = Utc::now() + backoff(entry.attempts);
                        entry
                    })
                    .collect();
                report.retried_later += back.len();
                return self.store.update_entries(&back);
            }
        };
        let by_ref: HashMap<&str, &crate::salesforce::SubResponse> =
            results.iter().map(|r| (r.reference_id.as_str(), r)).collect();
        let mut done = Vec::new();
        for ((_, subs), entry) in chunk.into_iter().zip(marked) {
            let outcome = entry_outcome(&entry, &subs, &by_ref);
            if let Some(confirmed) = self.after_send(entry, outcome, report).await? {
                done.push(confirmed);
            }
        }
        report.done += done.len();
        self.store.complete_entries(&done)
    }

    /// What becomes of an entry after its composite call: done (returned, to be confirmed
    /// with the rest), tried again later, failed for good, or linked to the duplicate the
    /// org matched.
    async fn after_send(
        &mut self,
        mut entry: OutboxEntry,
        outcome: Outcome,
        report: &mut RoundReport,
    ) -> Result<Option<(u64, Option<String>)>, StoreError> {
        match outcome {
            Outcome::Done => return Ok(Some((entry.id, entry.action.confirmation_key()))),
            Outcome::Retry(why) => {
                report.retried_later += 1;
                entry.attempts += 1;
                if entry.attempts >= MAX_ATTEMPTS {
                    self.fail(&entry, "RETRIES_EXHAUSTED", &why)?;
                    report.failed += 1;
                } else {
                    entry.status = EntryStatus::Pending;
                    entry.last_error = Some(why);
                    entry.not_before = Utc::now() + backoff(entry.attempts);
                    self.store.update_entries(&[entry])?;
                }
            }
            Outcome::Failed { code, message } => {
                entry.attempts += 1;
                self.fail(&entry, &code, &message)?;
                report.failed += 1;
            }
            Outcome::Duplicate { record_id, rule } => {
                report.api_calls += 2;
                match super::duplicates::link(&self.client, &entry.action, &record_id, &rule).await {
                    Ok(linked) => {
                        tracing::info!(record = %linked.record_id, reason = %linked.message, "Linked to an existing record.");
                        self.store.record_error(SyncError::new(
                            Some(entry.action.case_id()),
                            "link_duplicate",
                            "DUPLICATES_DETECTED",
                            &linked.message,
                        ))?;
                        return Ok(Some((entry.id, entry.action.confirmation_key())));
                    }
                    // Refused (the rule may act on edits too): a sync error, never a loop.
                    Err(why) if !why.is_transient() => {
                        entry.attempts += 1;
                        let message = format!(
                            "the org's duplicate rule {rule} matched {record_id}, which could not be linked: {}",
                            why.message()
                        );
                        self.fail(&entry, why.error_code(), &message)?;
                        report.failed += 1;
                    }
                    Err(why) => {
                        report.retried_later += 1;
                        entry.status = EntryStatus::Pending;
                        self.retry_later(&mut entry, &format!("linking to {record_id}: {why}"))?;
                    }
                }
            }
        }
        Ok(None)
    }

    /// Records a sync error for the entry and takes it out of the outbox.
    pub(super) fn fail(&self, entry: &OutboxEntry, code: &str, message: &str) -> Result<(), StoreError> {
        tracing::warn!(
            case_id = entry.action.case_id(),
            operation = entry.action.operation(),
            code,
            reason = message,
            "Action failed."
        );
        if let Some(m) = &self.metrics {
            m.sync_error(code);
        }
        self.store.record_error(SyncError {
            id: entry.retry_of.unwrap_or(0),
            attempts: entry.attempts.max(1),
            action: Some(entry.action.clone()),
            ..SyncError::new(Some(entry.action.case_id()), entry.action.operation(), code, message)
        })?;
        self.store.remove_entries(&[entry.id])
    }

    fn retry_later(&self, entry: &mut OutboxEntry, why: &str) -> Result<(), StoreError> {
        entry.attempts += 1;
        if entry.attempts >= MAX_ATTEMPTS {
            return self.fail(entry, "RETRIES_EXHAUSTED", why);
        }
        entry.last_error = Some(why.to_string());
        entry.not_before = Utc::now() + backoff(entry.attempts);
        self.store.update_entries(std::slice::from_ref(entry))
    }

    /// Finds the topics the due entries need, creating missing ones, in at most two calls.
    async fn resolve_topics(&mut self, due: &[OutboxEntry], report: &mut RoundReport) -> Result<(), SalesforceError> {
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for e in due {
            if let Action::AssignTopics { topics, .. } = &e.action {
                for t in topics {
                    if !self.topic_ids.contains_key(&t.to_lowercase()) {
                        wanted.insert(t.to_lowercase(), t.clone());
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let soql = Select::new(["Id", "Name"], "Topic").filter(Filter::is_in("Name", wanted.values().cloned())).build();
        let soql = soql.map_err(|e| SalesforceError::Config(e.to_string()))?;
        report.api_calls += 1;
        let found: Vec<Json> = self.client.query(soql).collect_all().await?;
        for row in found {
            if let (Some(id), Some(name)) = (row["Id"].as_str(), row["Name"].as_str()) {
                self.topic_ids.insert(name.to_lowercase(), id.to_string());
            }
        }
        let missing: Vec<String> =
            wanted.into_iter().filter(|(k, _)| !self.topic_ids.contains_key(k)).map(|(_, v)| v).collect();
        for batch in missing.chunks(COMPOSITE_MAX) {
            let subs: Vec<SubRequest> = batch
                .iter()
                .enumerate()
                .map(|(i, name)| SubRequest::create(&format!("t{i}"), "Topic", json!({ "Name": name })))
                .collect();
            report.api_calls += 1;
            for (name, result) in batch.iter().zip(self.client.composite(false, subs).await?) {
                if let Some(id) = result.created_id() {
                    self.topic_ids.insert(name.to_lowercase(), id.to_string());
                }
            }
        }
        let _ = self.store.set_meta("topic_ids", &self.topic_ids);
        Ok(())
    }

    /// Which in-flight entries already reached Salesforce. Replies and notes are counted:
    /// an entry was applied when Salesforce holds more of the agent user's posts with its
    /// exact body on its case than the store has confirmed (identical replies on one case
    /// are common, so finding one is not enough). Email records are found by their unique
    /// Message-ID. Anything idempotent is simply resent. At most one query per kind.
    async fn verify(&self, entries: &[OutboxEntry], report: &mut RoundReport) -> std::collections::HashSet<u64> {
        let mut applied = std::collections::HashSet::new();
        let mut sorted: Vec<&OutboxEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.id);
        // Posts grouped by the record they leave: one query a kind of record.
        let mut posts: BTreeMap<(&str, &str), Vec<&OutboxEntry>> = BTreeMap::new();
        for e in &sorted {
            if let Some(record) = deliver::post_record(&e.action) {
                posts.entry(record).or_default().push(e);
            }
        }
        let emails: Vec<&OutboxEntry> =
            sorted.iter().copied().filter(|e| matches!(e.action, Action::SendEmail { .. })).collect();

        for ((object, body_field), group) in &posts {
            let (object, body_field) = (*object, *body_field);
            let cases: std::collections::BTreeSet<String> =
                group.iter().map(|e| e.action.case_id().to_string()).collect();
            let soql = Select::new(["Id", "ParentId", "CreatedDate", body_field], object)
                .filter(Filter::is_in("ParentId", cases))
                .filter(Filter::eq("CreatedById", self.agent_user_id.as_str()))
                .build();
            let Ok(soql) = soql else { continue };
            report.api_calls += 1;
            let rows: Vec<Json> = match self.client.query::<Json>(soql).collect_all().await {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "Cannot verify in-flight posts; they stay in flight.");
                    continue;
                }
            };
            // Entries matched during this verification, per key.
            let mut claimed: HashMap<String, u64> = HashMap::new();
            for e in group {
                let (case_id, body) = match &e.action {
                    Action::PostReply { case_id, body, .. } | Action::InternalNote { case_id, body } => (case_id, body),
                    _ => continue,
                };
                let Some(key) = e.action.confirmation_key() else { continue };
                // A conversation pruned before took its confirmations with it: only posts made
                // since count.
                let pruned_at = self.store.prune_mark(case_id).ok().flatten().map(|m| m.pruned_at);
                let in_salesforce = rows
                    .iter()
                    .filter(|r| r["ParentId"].as_str().is_some_and(|p| crate::salesforce::id::same(p, case_id)))
                    .filter(|r| r[body_field].as_str() == Some(body.as_str()))
                    .filter(|r| pruned_at.is_none_or(|at| created_after(r, at)))
                    .count() as u64;
                let accounted = self.store.confirmed_count(&key).unwrap_or(0) + claimed.get(&key).copied().unwrap_or(0);
                if in_salesforce > accounted {
                    applied.insert(e.id);
                    *claimed.entry(key).or_default() += 1;
                }
            }
        }
        if !emails.is_empty() {
            let ids: Vec<String> = emails
                .iter()
                .filter_map(|e| match &e.action {
                    Action::SendEmail { email, .. } => Some(email.message_id.clone()),
                    _ => None,
                })
                .collect();
            if let Ok(soql) = Select::new(["Id", "MessageIdentifier"], "EmailMessage")
                .filter(Filter::is_in("MessageIdentifier", ids))
                .build()
            {
                report.api_calls += 1;
                if let Ok(rows) = self.client.query::<Json>(soql).collect_all().await {
                    for e in &emails {
                        if let Action::SendEmail { email, .. } = &e.action
                            && rows.iter().any(|r| r["MessageIdentifier"].as_str() == Some(email.message_id.as_str()))
                        {
                            applied.insert(e.id);
                        }
                    }
                }
            }
        }
        applied
    }
}

/// How an entry's subrequests ended.
fn entry_outcome(
    entry: &OutboxEntry,
    subs: &[SubRequest],
    by_ref: &HashMap<&str, &crate::salesforce::SubResponse>,
) -> Outcome {
    for sub in subs {
        let Some(result) = by_ref.get(sub.reference_id.as_str()) else {
            return Outcome::Retry(format!("no result for subrequest {}", sub.reference_id));
        };
        if let Err(e) = result.result() {
            // A topic already assigned is what we wanted.
            if matches!(entry.action, Action::AssignTopics { .. }) && e.error_code() == "DUPLICATE_VALUE" {
                continue;
            }
            if e.is_transient() || e.error_code() == "PROCESSING_HALTED" {
                return Outcome::Retry(e.to_string());
            }
            // A new record the org's duplicate rule refused: linked, not made twice.
            if let Action::UpsertRecord { update_only: false, object, .. } = &entry.action
                && e.error_code() == "DUPLICATES_DETECTED"
                && let Some((ids, rule)) = super::duplicates::matches(result.body.as_ref(), object)
            {
                return Outcome::Duplicate { record_id: ids[0].clone(), rule };
            }
            return Outcome::Failed { code: e.error_code().to_string(), message: e.message() };
        }
    }
    Outcome::Done
}

fn backoff(attempts: u32) -> ChronoDuration {
    let secs = (5i64 << attempts.min(10)).min(MAX_BACKOFF_SECS);
    ChronoDuration::seconds(secs)
}

/// Whether a record was created after `at` (one without a readable `CreatedDate` counts, so
/// that a doubt never sends a reply twice).
fn created_after(record: &Json, at: chrono::DateTime<Utc>) -> bool {
    record["CreatedDate"]
        .as_str()
        .and_then(|d| chrono::DateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%S%.3f%z").ok())
        .is_none_or(|created| created.with_timezone(&Utc) > at)
}
