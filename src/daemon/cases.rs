//! The Cases channel as a component: its poll (what changed past the cursor, by the case's
//! own stamp or a new comment, email or post, read a page at a time), the cases due for a
//! retry, each row built into its conversation and settled when no decision is needed
//! (assigned away, closed, nothing new, or only the echo of our own reply), and the
//! channel's side of the stages (`ConversationChannel`): a case's actions and commit. The
//! daemon drives it (`dispatch.rs`); what needs a decision goes to the shared stages.

use std::collections::HashSet;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::Value as Json;

use super::channel::ConversationChannel;
use super::process::{Pending, event};
use super::shared::Shared;
use super::{ConversationEvent, CycleReport, DaemonError, DaemonSettings, EventKind, ceil_second, floor_second};
use crate::act::plan::{HandoverTo, ReplySettings, plan};
use crate::channels::cases::build::{self, Authors, activity_stamp};
use crate::channels::cases::query::{case_query, changed_case_queries};
use crate::decide::RuleSnapshot;
use crate::model::{Action, Conversation, ConversationState, Decision, ReplyChannel, Trace};
use crate::salesforce::QueryPages;
use crate::salesforce::id;
use crate::salesforce::soql::Filter;
use crate::store::Cursor;

/// How many recently active open conversations the poll also watches for re-assignment.
const WATCHED_OPEN: usize = 100;

/// The Cases channel's own settings. The echoes of our own replies (cases whose newest
/// stamp was only our reply's, skipped by the polls that re-read them) are in the store.
pub(super) struct CasesChannel {
    /// How far back the first poll reads, before there is a cursor.
    initial_lookback: std::time::Duration,
    reply_channel: ReplyChannel,
    /// The sender of email replies; `None` without SMTP.
    email_from: Option<String>,
}

/// One poll under way: its queries' pages, read one at a time, and what it saw so far.
pub(super) struct CasePoll {
    started: DateTime<Utc>,
    cursor: DateTime<Utc>,
    newest: DateTime<Utc>,
    /// Case ids already read by an earlier query of this poll.
    seen: HashSet<String>,
    queries: std::vec::IntoIter<QueryPages<Json>>,
    current: Option<QueryPages<Json>>,
}

/// A case row with what the store holds for it.
pub(super) type Row = (Json, Option<Conversation>);

impl CasesChannel {
    pub(super) fn new(settings: &DaemonSettings) -> CasesChannel {
        CasesChannel {
            initial_lookback: settings.initial_lookback,
            reply_channel: settings.reply_channel,
            email_from: settings.email_from.clone(),
        }
    }

    fn query(shared: &Shared, filter: Filter) -> String {
        case_query(&shared.rules.load().case_fields(), filter, shared.posts)
    }

    /// Starts a poll of what changed since the cursor. The cursor is a watermark: every
    /// change stamped at or before it has been seen. It advances to the newest stamp seen,
    /// but never past `overlap` before this poll began, since Salesforce may still commit
    /// writes stamped a little in the past; so after a burst the next polls re-read only
    /// the burst's last `overlap` (plus the second it ends in), and an idle poll reads
    /// nothing (one API call).
    pub(super) async fn begin_poll(&self, shared: &Shared) -> Result<CasePoll, DaemonError> {
        let started = Utc::now();
        let lookback = ChronoDuration::from_std(self.initial_lookback).unwrap_or(ChronoDuration::days(1));
        let cursor = shared.store.cursor()?.map(|c| c.modstamp).unwrap_or(started - lookback);
        // The agent user's cases, and the recently active open conversations whichever owner
        // they have now: a case someone re-assigned away comes back with its new owner and
        // is recorded as such, at no extra API call.
        let owned = Filter::eq("OwnerId", shared.agent_user.id.as_str());
        let watched = shared.store.recently_open(WATCHED_OPEN)?;
        let scope = if watched.is_empty() { owned } else { owned.or(Filter::is_in("Id", watched)) };
        // The cases changed by their own stamp or by a new comment, email or post (an org
        // need not bump the case for those): four queries, one API call.
        let owned = Filter::eq("OwnerId", shared.agent_user.id.as_str());
        let fields = shared.rules.load().case_fields();
        let queries = changed_case_queries(&fields, owned, scope, cursor, shared.posts);
        let pages = shared.client.queries_at_once(&queries).await.map_err(DaemonError::Poll)?;
        Ok(CasePoll {
            started,
            cursor,
            newest: cursor,
            seen: HashSet::new(),
            queries: pages.into_iter(),
            current: None,
        })
    }

    /// The poll's next page of rows that may need work, each with what the store holds;
    /// `None` once every query is read. A row seen at its stamp already (the overlap, or
    /// the echo of our own reply) is left out.
    pub(super) async fn next_rows(
        &self,
        shared: &Shared,
        poll: &mut CasePoll,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<Row>>, DaemonError> {
        let page = loop {
            let pages = match poll.current.as_mut() {
                Some(pages) => pages,
                None => match poll.queries.next() {
                    Some(next) => poll.current.insert(next),
                    None => return Ok(None),
                },
            };
            match pages.next_page().await.map_err(DaemonError::Poll)? {
                Some(page) => break page,
                None => poll.current = None,
            }
        };
        let mut rows = Vec::new();
        for row in page {
            let id = row["Id"].as_str().unwrap_or_default().to_string();
            if !poll.seen.insert(id.clone()) {
                continue;
            }
            report.rows += 1;
            // Children past their first page may hold the newest stamp.
            let row = shared.client.with_all_children(row).await.map_err(DaemonError::Poll)?;
            let stamp = activity_stamp(&row);
            if let Some(stamp) = stamp {
                poll.newest = poll.newest.max(stamp);
            }
            // The echo of our own reply is skipped before its conversation is even read.
            if let Some(stamp) = stamp
                && shared.store.echo(&id)?.is_some_and(|echo| echo >= stamp)
            {
                continue;
            }
            let stored = shared.store.conversation(&id)?;
            if let Some(stamp) = stamp
                && stored.as_ref().is_some_and(|c| c.modstamp >= stamp)
            {
                continue;
            }
            rows.push((row, stored));
        }
        Ok(Some(rows))
    }

    /// Ends a poll whose every row is committed: the cursor moves to its watermark.
    pub(super) fn end_poll(&mut self, shared: &Shared, poll: CasePoll) -> Result<(), DaemonError> {
        let overlap = ChronoDuration::from_std(shared.settings.overlap).unwrap_or(ChronoDuration::minutes(1));
        // SOQL datetime literals are whole seconds: the watermark is too. It may cover the
        // rest of the newest row's second only when that second is older than the overlap.
        let watermark = ceil_second(poll.newest).min(floor_second(poll.started - overlap)).max(poll.cursor);
        shared.store.forget_echoes_through(watermark)?;
        if watermark > poll.cursor {
            shared.store.set_cursor(Cursor { modstamp: watermark })?;
        }
        Ok(())
    }

    /// Cases whose agent failed earlier, read again by Id (which also shows whether they
    /// were re-assigned meanwhile); `None` when the org cannot be read now (logged).
    pub(super) async fn retry_rows(&self, shared: &Shared, ids: &[String]) -> Result<Option<Vec<Row>>, DaemonError> {
        let soql = Self::query(shared, Filter::is_in("Id", ids.iter().cloned()));
        match shared.client.query_with_children(soql).await {
            Ok(rows) => {
                let mut batch = Vec::new();
                for row in rows {
                    let stored = shared.store.conversation(row["Id"].as_str().unwrap_or_default())?;
                    batch.push((row, stored));
                }
                Ok(Some(batch))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot re-read conversations due for a retry.");
                Ok(None)
            }
        }
    }

    /// Builds the row's conversation on the stored one and settles it; returns it when it
    /// needs a decision. Without `force`, a row no newer than the store's is skipped.
    pub(super) fn prepare(
        &mut self,
        shared: &Shared,
        (row, stored): Row,
        force: bool,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Pending>, DaemonError> {
        let fresh = match build::from_case_row(&row, &Authors { agent_user_id: &shared.agent_user.id }) {
            Ok(c) => c,
            Err(e) => {
                shared.record_error(Some(&e.case_id), "read_case", "UNREADABLE_CASE", &e.problem)?;
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
                    shared.store.set_echo(&fresh.id, fresh.modstamp)?;
                    return Ok(None);
                }
                stored.merge(fresh);
                stored
            }
            None => {
                let mut fresh = fresh;
                // A case whose conversation was pruned comes back: what it had seen is
                // history, dealt with then; anything written since is new.
                if let Some(mark) = shared.store.prune_mark(&fresh.id)? {
                    fresh.handled_until(mark.seen_until);
                }
                fresh
            }
        };
        Ok(self.settle(shared, &mut conv, rules, report)?.map(|unanswered| Pending { conv, unanswered }))
    }
}

impl ConversationChannel for CasesChannel {
    fn settle(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError> {
        if !id::same(&conv.owner_id, &shared.agent_user.id) {
            if conv.state == ConversationState::Open {
                conv.state = ConversationState::AssignedAway { owner_id: conv.owner_id.clone() };
                let detail = format!("now owned by {}", conv.owner_id);
                report.events.push(event(conv, EventKind::AssignedAway, detail.clone(), detail));
            }
            conv.retry_at = None;
            self.commit(shared, conv, Vec::new())?;
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
                    Err(e) => shared.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?,
                }
                report.events.push(event(conv, EventKind::Closed, "the case is closed".into(), "closed".into()));
            }
            conv.retry_at = None;
            self.commit(shared, conv, actions)?;
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
            self.commit(shared, conv, Vec::new())?;
            return Ok(None);
        }
        Ok(Some(unanswered))
    }

    /// A case's reply (comment, post or email), note, owner and fields.
    async fn plan(
        &mut self,
        _shared: &Shared,
        conv: &mut Conversation,
        decision: &mut Decision,
        _rules: &RuleSnapshot,
        handover: Option<HandoverTo>,
        _report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        let replies = ReplySettings { channel: self.reply_channel, email_from: self.email_from.as_deref() };
        Ok(plan(conv, decision, replies, handover))
    }

    fn commit(&self, shared: &Shared, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        Ok(shared.store.commit(conv, actions).map(|_| ())?)
    }

    /// A case stays as it is: the people who own it decide when it closes.
    async fn close_on_silence(
        &mut self,
        _shared: &Shared,
        _conv: &mut Conversation,
        _rules: &RuleSnapshot,
        _trace: &mut Trace,
        _report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        Ok(Vec::new())
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
