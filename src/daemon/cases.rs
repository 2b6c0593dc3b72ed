//! The Cases channel: the poll (what changed past the cursor, by the case's own stamp or a
//! new comment, email or post), the cases due for a retry, and each row built into its
//! conversation and settled when no decision is needed (assigned away, closed, nothing
//! new, or only the echo of our own reply); what needs one goes to the shared stages.

use std::collections::HashMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::Value as Json;

use super::process::{Pending, event};
use super::{ConversationEvent, CycleReport, Daemon, DaemonError, EventKind, ceil_second, floor_second};
use crate::channels::cases::build::{self, Authors, activity_stamp};
use crate::channels::cases::query::{case_query, changed_case_queries};
use crate::decide::RuleSnapshot;
use crate::model::{Action, Conversation, ConversationState};
use crate::salesforce::id;
use crate::salesforce::soql::Filter;
use crate::store::Cursor;

/// How many recently active open conversations the poll also watches for re-assignment.
const WATCHED_OPEN: usize = 100;

/// The Cases channel's own state.
#[derive(Default)]
pub(super) struct CasesChannel {
    /// Cases whose latest stamp was only the echo of our own reply, by that stamp: skipped
    /// by the next polls without reading their child pages. Entries go once the cursor
    /// passes them.
    echoes: HashMap<String, DateTime<Utc>>,
}

impl Daemon {
    fn poll_query(&self, filter: Filter) -> String {
        case_query(&self.rules.load().case_fields(), filter, self.posts)
    }

    /// Reads what changed since the cursor. The cursor is a watermark: every change
    /// stamped at or before it has been seen. It advances to the newest stamp seen, but
    /// never past `overlap` before this poll began, since Salesforce may still commit
    /// writes stamped a little in the past; so after a burst the next polls re-read only
    /// the burst's last `overlap` (plus the second it ends in), and an idle poll reads
    /// nothing (one API call).
    pub(super) async fn poll(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
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
        // The cases changed by their own stamp or by a new comment, email or post (an org
        // need not bump the case for those): four queries, one API call.
        let owned = Filter::eq("OwnerId", self.agent_user.id.as_str());
        let queries = changed_case_queries(&self.rules.load().case_fields(), owned, scope, cursor, self.posts);
        let mut newest = cursor;
        let mut seen = std::collections::HashSet::new();
        for mut pages in self.client.queries_at_once(&queries).await.map_err(DaemonError::Poll)? {
            while let Some(page) = pages.next_page().await.map_err(DaemonError::Poll)? {
                let mut batch = Vec::new();
                for row in page {
                    let id = row["Id"].as_str().unwrap_or_default().to_string();
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    report.rows += 1;
                    // Children past their first page may hold the newest stamp.
                    let row = self.client.with_all_children(row).await.map_err(DaemonError::Poll)?;
                    let stamp = activity_stamp(&row);
                    if let Some(stamp) = stamp {
                        newest = newest.max(stamp);
                    }
                    let stored = self.store.conversation(&id)?;
                    // Seen at this stamp already (the overlap): no decision.
                    if let Some(stamp) = stamp
                        && (self.cases.echoes.get(&id).is_some_and(|echo| *echo >= stamp)
                            || stored.as_ref().is_some_and(|c| c.modstamp >= stamp))
                    {
                        continue;
                    }
                    batch.push((row, stored));
                }
                self.process_rows(batch, false, report).await?;
            }
        }
        // SOQL datetime literals are whole seconds: the watermark is too. It may cover the
        // rest of the newest row's second only when that second is older than the overlap.
        let watermark = ceil_second(newest).min(floor_second(started - overlap)).max(cursor);
        self.cases.echoes.retain(|_, stamp| *stamp > watermark);
        if watermark > cursor {
            self.store.set_cursor(Cursor { modstamp: watermark })?;
        }
        Ok(())
    }

    /// Conversations whose agent failed earlier: read again by Id (which also shows
    /// whether they were re-assigned meanwhile) and decided again.
    pub(super) async fn retry_due(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        let due = self.store.due_retries(Utc::now())?;
        for chunk in due.chunks(200) {
            let soql = self.poll_query(Filter::is_in("Id", chunk.iter().cloned()));
            match self.client.query_with_children(soql).await {
                Ok(rows) => {
                    let mut batch = Vec::new();
                    for row in rows {
                        let stored = self.store.conversation(row["Id"].as_str().unwrap_or_default())?;
                        batch.push((row, stored));
                    }
                    self.process_rows(batch, true, report).await?;
                }
                Err(e) => tracing::warn!(error = %e, "Cannot re-read conversations due for a retry."),
            }
        }
        Ok(())
    }

    /// Builds, decides and commits a batch of rows, each a different case, with what the
    /// store holds for it (read by the caller). Without `force`, a row no newer than the
    /// store's is skipped.
    ///
    /// The agent is asked about up to `agent_concurrency` conversations at once (an AI
    /// service answers in seconds; one at a time, a burst of cases waits minutes). Each
    /// conversation is still decided once and committed with its actions in one store
    /// transaction, in the batch's order, so nothing the outbox guarantees changes: a crash
    /// before a conversation's commit leaves it to be decided again, as before.
    pub(super) async fn process_rows(
        &mut self,
        rows: Vec<(Json, Option<Conversation>)>,
        force: bool,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let rules = self.rules.load_full();
        let mut pending = Vec::new();
        for (row, stored) in rows {
            if let Some(p) = self.prepare(&row, stored, force, &rules, report)? {
                pending.push(p);
            }
        }
        self.decide_pending(pending, &rules, report).await
    }

    /// Builds the row's conversation on the stored one and settles it; returns it when it
    /// needs a decision.
    fn prepare(
        &mut self,
        row: &Json,
        stored: Option<Conversation>,
        force: bool,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Pending>, DaemonError> {
        let fresh = match build::from_case_row(row, &Authors { agent_user_id: &self.agent_user.id }) {
            Ok(c) => c,
            Err(e) => {
                self.record_error(Some(&e.case_id), "read_case", "UNREADABLE_CASE", &e.problem)?;
                report.events.push(ConversationEvent {
                    conversation_id: e.case_id.clone(),
                    case_number: String::new(),
                    kind: EventKind::Unreadable,
                    summary: "the case cannot be read (see casebridge errors)".into(),
                    detail: e.problem,
                });
                return Ok(None);
            }
        };
        let mut conv = match stored {
            Some(mut stored) => {
                if !force && fresh.modstamp <= stored.modstamp {
                    return Ok(None);
                }
                if !force && only_our_own_echo(&stored, &fresh) {
                    // Our reply bumped the case's stamp; nothing to decide or to keep.
                    self.cases.echoes.insert(fresh.id.clone(), fresh.modstamp);
                    return Ok(None);
                }
                stored.merge(fresh);
                stored
            }
            None => fresh,
        };
        Ok(self.settle(&mut conv, rules, report)?.map(|unanswered| Pending { conv, unanswered }))
    }

    /// Settles a conversation that needs no decision (assigned away, closed, nothing new)
    /// and commits it; otherwise returns the ids of the parts to answer.
    fn settle(
        &mut self,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError> {
        if !id::same(&conv.owner_id, &self.agent_user.id) {
            if conv.state == ConversationState::Open {
                conv.state = ConversationState::AssignedAway { owner_id: conv.owner_id.clone() };
                let detail = format!("now owned by {}", conv.owner_id);
                report.events.push(event(conv, EventKind::AssignedAway, detail.clone(), detail));
            }
            conv.retry_at = None;
            self.commit(conv, Vec::new())?;
            return Ok(None);
        }
        if conv.is_closed() {
            let mut actions = Vec::new();
            if conv.state != ConversationState::Closed {
                conv.state = ConversationState::Closed;
                // Mappings configured `on: [close]` write their fields now.
                let mut trace = crate::model::Trace::default();
                match rules.evaluate(conv).outbound(crate::model::Moment::Close, &mut trace) {
                    Ok(fields) if !fields.is_empty() => {
                        actions.push(Action::UpdateFields { case_id: conv.id.clone(), fields });
                    }
                    Ok(_) => {}
                    Err(e) => self.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?,
                }
                report.events.push(event(conv, EventKind::Closed, "the case is closed".into(), "closed".into()));
            }
            conv.retry_at = None;
            self.commit(conv, actions)?;
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
            self.commit(conv, Vec::new())?;
            return Ok(None);
        }
        Ok(Some(unanswered))
    }
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
