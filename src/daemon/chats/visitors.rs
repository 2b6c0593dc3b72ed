//! The visitors of chats: matching a visitor who gave an email to the org, their Lead (one
//! per email), and the Tasks a verified visitor's conversation is logged as.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::ChatChannel;
use crate::channels::messenger::{self, matching};
use crate::daemon::process::event;
use crate::daemon::shared::Shared;
use crate::daemon::{CycleReport, DaemonError, EventKind};
use crate::decide::Rules;
use crate::model::{AccountInfo, Action, ChatLead, ContactInfo, Conversation, SalesforcePerson};
use crate::store::StoreError;

impl ChatChannel {
    /// Matches a visitor who gave an email to the org, once; a new visitor becomes a Lead
    /// when `messenger.create_leads` is on (queued with the conversation). A verified
    /// visitor's contact and account become the conversation's, for rules and templates;
    /// an unverified email is matched only to avoid a duplicate lead, and shows nothing.
    pub(in crate::daemon) async fn know_visitor(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &dyn Rules,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let hub = self.hub.clone();
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
        let person = match messenger::matching::find(&shared.client, &email).await {
            Ok(p) => p,
            Err(e) => {
                // Tried again when the visitor next writes.
                tracing::warn!(error = %e, "Cannot match a messenger visitor in Salesforce.");
                return Ok(shared.record_error(Some(&conv.id), "match_visitor", e.error_code(), &e.message())?);
            }
        };
        let verified = info.visitor.verified;
        if verified && let SalesforcePerson::User { contact_id, name, account_id, account_name, .. } = &person {
            conv.contact = Some(ContactInfo { id: contact_id.clone(), name: name.clone(), email: Some(email.clone()) });
            conv.account = account_id.as_ref().map(|id| AccountInfo { id: id.clone(), name: account_name.clone() });
        }
        let mut actions = self.log_tasks(shared, conv, &person, verified).await?;
        let create = person == SalesforcePerson::Visitor && hub.settings().create_leads;
        let info = conv.messenger.as_mut().expect("checked above");
        info.person = Some(person);
        if !create || info.lead.exists() {
            return self.hub_commit(conv, actions);
        }
        // One Lead per email: an earlier chat's, when one made it (in this round, or before
        // Salesforce has it), else this chat's own.
        if let Some(earlier) = shared.store.visitor_lead(&email)?.filter(|other| *other != conv.id) {
            let mapped = self.lead_mapping(shared, conv, rules)?;
            self.share_lead(conv, earlier, mapped);
            return self.hub_commit(conv, actions);
        }
        actions.extend(self.make_lead(shared, conv, rules)?);
        match self.hub_commit(conv, actions) {
            // A person made one by hand for another chat with this email meanwhile.
            Err(DaemonError::Store(StoreError::LeadClaimed { claimant })) => {
                // The mapping `make_lead` evaluated stands (not evaluated twice).
                let mapped = conv.messenger.as_ref().map(|m| m.lead_fields.clone()).unwrap_or_default();
                self.share_lead(conv, claimant, mapped);
                self.hub_commit(conv, Vec::new())
            }
            done => {
                let detail = "a new visitor left an email: a Lead is created".to_string();
                report.events.push(event(conv, EventKind::LeadCreated, detail.clone(), detail));
                done
            }
        }
    }

    /// Queues the Lead a new visitor with an email becomes, keyed by the conversation's id.
    fn make_lead(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &dyn Rules,
    ) -> Result<Option<Action>, DaemonError> {
        let settings = self.hub.settings().clone();
        let mapped = self.lead_mapping(shared, conv, rules)?;
        let owner = self.lead_owner(conv);
        let Some(info) = conv.messenger.as_mut() else { return Ok(None) };
        // A verified visitor's conversation is logged on the lead once it exists.
        info.lead = ChatLead::Made { task_pending: info.visitor.verified && settings.log_tasks };
        info.lead_fields = mapped.clone();
        Ok(matching::create_lead(conv, &settings.lead_source, &mapped, owner.as_deref()))
    }

    /// Makes the Lead conversation `earlier` queued for the same email this chat's too:
    /// later writes (owner, Tasks, and a mapped value once it changes from `mapped`, its
    /// value now) go to it, by its key. The Lead keeps the values it was made with until
    /// then: written now, they would race the Lead's own create in the same round.
    fn share_lead(&self, conv: &mut Conversation, earlier: String, mapped: BTreeMap<String, Json>) {
        let log_tasks = self.hub.settings().log_tasks;
        let Some(info) = conv.messenger.as_mut() else { return };
        info.lead = ChatLead::Shared { key: earlier, task_pending: info.visitor.verified && log_tasks };
        info.lead_fields = mapped;
    }

    /// The Tasks a matched visitor's conversation is logged as (`messenger.log_tasks`), and
    /// their keys noted in the conversation; only for a verified email.
    async fn log_tasks(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        person: &SalesforcePerson,
        verified: bool,
    ) -> Result<Vec<Action>, DaemonError> {
        let on = self.hub.settings().log_tasks;
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
            Some(id) => match messenger::tasks::related_opportunity(&shared.client, id).await {
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
}
