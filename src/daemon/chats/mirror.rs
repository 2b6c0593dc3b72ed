//! Reading the cases chats became: one query per 200 chats for the cases changed since
//! the last complete read, linking a new case to its chat, copying people's public replies
//! into it, and ending a handed-over chat when its case closes.

use chrono::Utc;

use super::ChatChannel;
use crate::channels::messenger::mirror;
use crate::daemon::process::event;
use crate::daemon::shared::Shared;
use crate::daemon::{CycleReport, DaemonError, EventKind};
use crate::model::{AuthorKind, ConversationState};

impl ChatChannel {
    /// Reads the cases of chats that have one: links a new case to its chat, copies people's
    /// public replies into it, and closes a handed-over chat when its case closes. One query
    /// per 200 chats, for the cases changed since the oldest read.
    pub(in crate::daemon) async fn mirror_chats(
        &mut self,
        shared: &Shared,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        // Chats whose case was read before ask only for the cases changed since the last
        // pass (the newest `SystemModstamp` it saw, less the overlap); the others (a case
        // just made) are asked about on their own, so one new case never makes the rest be
        // read again. After a restart the first pass reads every case once.
        let mut read = Vec::new();
        let mut unread = Vec::new();
        for id in shared.store.chats_with_cases()? {
            match shared.store.conversation(&id)?.and_then(|c| c.messenger.and_then(|m| m.case.modstamp())) {
                Some(_) => read.push(id),
                None => unread.push(id),
            }
        }
        let overlap = chrono::Duration::from_std(shared.settings.overlap).unwrap_or(chrono::Duration::minutes(1));
        let since = self.mirror_cursor.map(|c| crate::daemon::floor_second(c - overlap));
        let (mut newest, mut complete) = (self.mirror_cursor, true);
        for chunk in read.chunks(mirror::CHUNK) {
            match self.mirror_chunk(shared, chunk, since, report).await? {
                Some(stamp) => newest = newest.max(stamp),
                None => complete = false,
            }
        }
        for chunk in unread.chunks(mirror::CHUNK) {
            if let Some(stamp) = self.mirror_chunk(shared, chunk, None, report).await? {
                newest = newest.max(stamp);
            }
        }
        // A pass with a failed query is read again from the same point.
        if complete {
            self.mirror_cursor = newest;
        }
        Ok(())
    }

    /// Reads the cases of `ids` changed after `since` and applies their news; returns the
    /// newest stamp read (`Some(None)`: nothing changed), or `None` when the query failed.
    async fn mirror_chunk(
        &mut self,
        shared: &Shared,
        ids: &[String],
        since: Option<chrono::DateTime<Utc>>,
        report: &mut CycleReport,
    ) -> Result<Option<Option<chrono::DateTime<Utc>>>, DaemonError> {
        let rows = match shared.client.rows_at_once(&mirror::queries(ids, since, shared.posts)).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the cases of messenger chats.");
                report.poll_error = Some(format!("messenger cases: {e}"));
                return Ok(None);
            }
        };
        let mut newest = None;
        for row in rows {
            match mirror::read(&row, &shared.agent_user.id) {
                Ok(news) => {
                    newest = newest.max(Some(news.modstamp));
                    self.take_news(shared, news, report).await?
                }
                Err(e) => shared.record_error(Some(&e.case_id), "read_case", "UNREADABLE_CASE", &e.problem)?,
            }
        }
        Ok(Some(newest))
    }

    /// Applies what a chat's case says now to the chat.
    async fn take_news(
        &mut self,
        shared: &Shared,
        news: mirror::CaseNews,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let Some(mut conv) = shared.store.conversation(&news.conversation_id)? else { return Ok(()) };
        let Some(info) = conv.messenger.as_mut() else { return Ok(()) };
        let linked = info.case.id().is_none();
        // Reopened by a person since the rule closed it: theirs to keep (`read` says so).
        let (id, number) = (news.case_id.clone(), news.case_number.clone());
        info.case = std::mem::take(&mut info.case).read(id, number, news.modstamp, news.closed);
        conv.case_number = news.case_number.clone();
        let known: std::collections::BTreeSet<String> = conv.parts.iter().map(|p| p.id.clone()).collect();
        let mut copied = 0;
        let mut latest_reply = None;
        for mut reply in news.replies.into_iter().filter(|p| !known.contains(&p.id)) {
            reply.author = AuthorKind::Admin;
            latest_reply = latest_reply.max(Some(reply.created_at));
            conv.parts.push(reply);
            copied += 1;
        }
        // A person's public reply answers what the visitor wrote before it: handled, so a
        // chat the agent answers is not due again for it (a handed-over chat forwards them).
        if let Some(at) = latest_reply.filter(|_| conv.state == ConversationState::Open) {
            let answered: Vec<String> = conv
                .parts
                .iter()
                .filter(|p| p.author == AuthorKind::User && p.created_at <= at)
                .map(|p| p.id.clone())
                .collect();
            conv.handled.extend(answered);
        }
        if linked {
            let detail = format!("became case {}", news.case_number);
            report.events.push(event(&conv, EventKind::CaseCreated, detail.clone(), detail));
        }
        if copied > 0 {
            let detail = format!("{copied} reply(ies) from case {} copied to the chat", news.case_number);
            report.events.push(event(&conv, EventKind::HumanReplied, detail.clone(), detail));
        }
        let rules = shared.rules.load_full();
        // A rating given before the chat had a case (one linked by hand) goes onto it now.
        let mut actions = self.map_rating(shared, &mut conv, rules.as_ref().as_ref())?;
        // A handed-over chat ends with its case. A chat the agent still answers goes on: its
        // case (made by a rule, or closed by one at an earlier close) is a record of it.
        if news.closed && matches!(conv.state, ConversationState::HandedOver { .. }) {
            let mut trace = crate::model::Trace::default();
            actions
                .extend(self.close_chat(shared, &mut conv, true, rules.as_ref().as_ref(), &mut trace, report).await?);
        }
        self.hub_commit(&conv, actions)
    }
}
