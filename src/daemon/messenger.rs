//! The daemon's side of the messenger channel: deciding the chats that are due (a visitor
//! wrote, or an agent that failed is due again), as soon as the hub wakes it rather than at
//! the next poll; and, each cycle, reading the cases chats became (on handover or by a rule),
//! copying the people's public replies into the chat and forwarding a handed-over chat's
//! visitor messages to the case until it closes.

use std::sync::Arc;

use chrono::Utc;

use super::process::{Pending, event};
use super::{CycleReport, Daemon, DaemonError, EventKind};
use crate::channels::messenger::{self, Messenger, matching, mirror};
use crate::decide::Rules;
use crate::model::{AccountInfo, Action, AuthorKind, ContactInfo, Conversation, ConversationState, SalesforcePerson};
use crate::store::StoreError;

impl Daemon {
    /// Lets the daemon decide the messenger's conversations and carry their handovers.
    pub fn attach_messenger(&mut self, messenger: Arc<Messenger>) {
        self.messenger = Some(messenger);
    }

    pub fn messenger(&self) -> Option<&Arc<Messenger>> {
        self.messenger.as_ref()
    }

    /// Commits a conversation with its actions: a messenger conversation through its hub
    /// (which keeps what the visitor wrote meanwhile and tells the widget), a case directly.
    pub(super) fn commit(&self, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        match &self.messenger {
            Some(hub) if crate::model::is_messenger_id(&conv.id) => hub.commit(conv.clone(), actions)?,
            _ => {
                self.store.commit(conv, actions)?;
            }
        }
        Ok(())
    }

    /// Decides the messenger conversations that are due, then sends what they queued.
    pub async fn chat_round(&mut self) -> Result<CycleReport, DaemonError> {
        let mut report = CycleReport::default();
        if self.messenger.is_none() {
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
            self.know_visitor(&mut conv, rules.as_ref().as_ref(), &mut report).await?;
            if conv.messenger.as_ref().is_some_and(|m| m.lead_task_pending) {
                lead_tasks.push(conv.id.clone());
            }
            if let Some(unanswered) = self.settle_chat(&mut conv, &mut report)? {
                pending.push(Pending { conv, unanswered });
            }
        }
        self.decide_pending(pending, &rules, &mut report).await?;
        if self.store.outbox_len() > 0 {
            report.executed = self.executor.run_round().await?;
        }
        if !lead_tasks.is_empty() {
            // The leads just made are in Salesforce now: their Tasks follow.
            self.log_lead_tasks(&lead_tasks).await?;
            if self.store.outbox_len() > 0 {
                report.executed += self.executor.run_round().await?;
            }
        }
        report.api_calls = self.client.requests_sent() - calls;
        Ok(report)
    }

    /// Matches a visitor who gave an email to the org, once; a new visitor becomes a Lead
    /// when `messenger.create_leads` is on (queued with the conversation). A verified
    /// visitor's contact and account become the conversation's, for rules and templates;
    /// an unverified email is matched only to avoid a duplicate lead, and shows nothing.
    async fn know_visitor(
        &mut self,
        conv: &mut Conversation,
        rules: &dyn Rules,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let Some(hub) = self.messenger.clone() else { return Ok(()) };
        let Some(info) = conv.messenger.as_ref() else { return Ok(()) };
        let Some(email) = info.visitor.email.clone() else { return Ok(()) };
        if info.person.is_some() {
            return Ok(());
        }
        // An unverified email (anyone can type one) is looked up only to avoid a duplicate
        // lead, and only when leads are made: each lookup is two API calls.
        if !info.visitor.verified && !hub.settings().create_leads {
            return Ok(());
        }
        let person = match messenger::matching::find(&self.client, &email).await {
            Ok(p) => p,
            Err(e) => {
                // Tried again when the visitor next writes.
                tracing::warn!(error = %e, "Cannot match a messenger visitor in Salesforce.");
                return Ok(self.record_error(Some(&conv.id), "match_visitor", e.error_code(), &e.message())?);
            }
        };
        let verified = info.visitor.verified;
        if verified && let SalesforcePerson::User { contact_id, name, account_id, account_name, .. } = &person {
            conv.contact = Some(ContactInfo { id: contact_id.clone(), name: name.clone(), email: Some(email.clone()) });
            conv.account = account_id.as_ref().map(|id| AccountInfo { id: id.clone(), name: account_name.clone() });
        }
        let mut actions = self.log_tasks(conv, &person, verified).await?;
        let create = person == SalesforcePerson::Visitor && hub.settings().create_leads;
        let info = conv.messenger.as_mut().expect("checked above");
        info.person = Some(person);
        if !create || info.lead_queued {
            return self.commit(conv, actions);
        }
        // One Lead per email: an earlier chat's, when one made it (in this round, or before
        // Salesforce has it), else this chat's own.
        if let Some(earlier) = self.store.visitor_lead(&email)?.filter(|other| *other != conv.id) {
            self.share_lead(conv, earlier, rules)?;
            return self.commit(conv, actions);
        }
        actions.extend(self.make_lead(conv, rules)?);
        match self.commit(conv, actions) {
            // A person made one by hand for another chat with this email meanwhile.
            Err(DaemonError::Store(StoreError::LeadClaimed { claimant })) => {
                self.share_lead(conv, claimant, rules)?;
                self.commit(conv, Vec::new())
            }
            done => {
                let detail = "a new visitor left an email: a Lead is created".to_string();
                report.events.push(event(conv, EventKind::LeadCreated, detail.clone(), detail));
                done
            }
        }
    }

    /// Queues the Lead a new visitor with an email becomes, keyed by the conversation's id.
    fn make_lead(&mut self, conv: &mut Conversation, rules: &dyn Rules) -> Result<Option<Action>, DaemonError> {
        let Some(settings) = self.messenger.as_ref().map(|h| h.settings().clone()) else { return Ok(None) };
        let mapped = self.lead_mapping(conv, rules)?;
        let owner = self.lead_owner(conv);
        let Some(info) = conv.messenger.as_mut() else { return Ok(None) };
        info.lead_queued = true;
        info.lead_key = Some(conv.id.clone());
        // A verified visitor's conversation is logged on the lead once it exists.
        info.lead_task_pending = info.visitor.verified && settings.log_tasks;
        info.lead_fields = mapped.clone();
        Ok(matching::create_lead(conv, &settings.lead_source, &mapped, owner.as_deref()))
    }

    /// Makes the Lead conversation `earlier` queued for the same email this chat's too:
    /// later writes (changed mappings, owner, Tasks) go to it, by its key.
    fn share_lead(&mut self, conv: &mut Conversation, earlier: String, rules: &dyn Rules) -> Result<(), DaemonError> {
        let log_tasks = self.messenger.as_ref().is_some_and(|h| h.settings().log_tasks);
        let mapped = self.lead_mapping(conv, rules)?;
        let Some(info) = conv.messenger.as_mut() else { return Ok(()) };
        info.lead_queued = true;
        info.lead_key = Some(earlier);
        info.lead_task_pending = info.visitor.verified && log_tasks;
        info.lead_fields = mapped;
        Ok(())
    }

    /// The Tasks a matched visitor's conversation is logged as (`messenger.log_tasks`), and
    /// their keys noted in the conversation; only for a verified email.
    async fn log_tasks(
        &mut self,
        conv: &mut Conversation,
        person: &SalesforcePerson,
        verified: bool,
    ) -> Result<Vec<Action>, DaemonError> {
        let on = self.messenger.as_ref().is_some_and(|h| h.settings().log_tasks);
        // Only for a verified email: a Task on an unverified claim would file anyone's words
        // in a contact's or lead's history.
        if !verified {
            return Ok(Vec::new());
        }
        let contact = match person {
            SalesforcePerson::User { contact_id, .. } => Some(contact_id.clone()),
            SalesforcePerson::Visitor => return Ok(Vec::new()),
            SalesforcePerson::Lead { .. } => None,
        };
        if !on {
            return Ok(Vec::new());
        }
        let what = match &contact {
            Some(id) => match messenger::tasks::related_opportunity(&self.client, id).await {
                Ok(what) => what,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read the contact's opportunities; the Task is related to none.");
                    None
                }
            },
            None => None,
        };
        let logged = messenger::tasks::log(conv, person, what.as_deref(), self.lead_owner(conv).as_deref());
        let info = conv.messenger.as_mut().expect("a messenger conversation");
        info.tasks.extend(logged.iter().map(|(key, _)| key.clone()));
        Ok(logged.into_iter().map(|(_, action)| action).collect())
    }

    /// Settles a chat that needs no decision: closed, handed over (the visitor's messages go
    /// to the case), or nothing new; otherwise returns the messages to answer.
    fn settle_chat(
        &mut self,
        conv: &mut Conversation,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError> {
        conv.retry_at = None;
        let unanswered: Vec<String> = conv.unanswered().iter().map(|p| p.id.clone()).collect();
        let unhandled: Vec<String> = conv.unhandled_customer_parts().iter().map(|p| p.id.clone()).collect();
        match &conv.state {
            ConversationState::Open if !unanswered.is_empty() => return Ok(Some(unanswered)),
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
                    self.commit(conv, actions)?;
                    return Ok(None);
                }
            }
            _ => {}
        }
        self.commit(conv, Vec::new())?;
        Ok(None)
    }

    /// Reads the cases of chats that have one: links a new case to its chat, copies people's
    /// public replies into it, and closes a handed-over chat when its case closes. One query
    /// per 200 chats, for the cases changed since the oldest read.
    pub(super) async fn mirror_chats(&mut self, report: &mut CycleReport) -> Result<(), DaemonError> {
        if self.messenger.is_none() {
            return Ok(());
        }
        // Chats whose case was read before ask only for the cases changed since the last
        // pass (the newest `SystemModstamp` it saw, less the overlap); the others (a case
        // just made) are asked about on their own, so one new case never makes the rest be
        // read again. After a restart the first pass reads every case once.
        let mut read = Vec::new();
        let mut unread = Vec::new();
        for id in self.store.chats_with_cases()? {
            match self.store.conversation(&id)?.and_then(|c| c.messenger.and_then(|m| m.case.modstamp())) {
                Some(_) => read.push(id),
                None => unread.push(id),
            }
        }
        let overlap = chrono::Duration::from_std(self.settings.overlap).unwrap_or(chrono::Duration::minutes(1));
        let since = self.mirror_cursor.map(|c| super::floor_second(c - overlap));
        let (mut newest, mut complete) = (self.mirror_cursor, true);
        for chunk in read.chunks(mirror::CHUNK) {
            match self.mirror_chunk(chunk, since, report).await? {
                Some(stamp) => newest = newest.max(stamp),
                None => complete = false,
            }
        }
        for chunk in unread.chunks(mirror::CHUNK) {
            if let Some(stamp) = self.mirror_chunk(chunk, None, report).await? {
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
        ids: &[String],
        since: Option<chrono::DateTime<Utc>>,
        report: &mut CycleReport,
    ) -> Result<Option<Option<chrono::DateTime<Utc>>>, DaemonError> {
        let rows = match self.client.rows_at_once(&mirror::queries(ids, since, self.posts)).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the cases of messenger chats.");
                report.poll_error = Some(format!("messenger cases: {e}"));
                return Ok(None);
            }
        };
        let mut newest = None;
        for row in rows {
            match mirror::read(&row, &self.agent_user.id) {
                Ok(news) => {
                    newest = newest.max(Some(news.modstamp));
                    self.take_news(news, report).await?
                }
                Err(e) => self.record_error(Some(&e.case_id), "read_case", "UNREADABLE_CASE", &e.problem)?,
            }
        }
        Ok(Some(newest))
    }

    /// Applies what a chat's case says now to the chat.
    async fn take_news(&mut self, news: mirror::CaseNews, report: &mut CycleReport) -> Result<(), DaemonError> {
        let Some(mut conv) = self.store.conversation(&news.conversation_id)? else { return Ok(()) };
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
        let mut actions = Vec::new();
        // A handed-over chat ends with its case. A chat the agent still answers goes on: its
        // case (made by a rule, or closed by one at an earlier close) is a record of it.
        if news.closed && matches!(conv.state, ConversationState::HandedOver { .. }) {
            let rules = self.rules.load_full();
            let mut trace = crate::model::Trace::default();
            actions = self.close_chat(&mut conv, true, rules.as_ref().as_ref(), &mut trace, report).await?;
        }
        self.commit(&conv, actions)
    }
}
