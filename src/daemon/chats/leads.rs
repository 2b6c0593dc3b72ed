//! What a messenger visitor's Lead and Tasks get after they are made: the lead mappings'
//! values written again when they change; on a handover to a user (with
//! `messenger.owner_follows_assignee`), that user as the owner of the lead and the Tasks; and
//! the Task on a Lead casebridge itself made for a verified visitor, logged once the lead's
//! id can be read back (one query per 200 conversations).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::ChatChannel;
use crate::channels::messenger::{self, plan::CONVERSATION_FIELD};
use crate::daemon::DaemonError;
use crate::daemon::shared::Shared;
use crate::decide::Rules;
use crate::model::{Action, Conversation, ConversationState, Decision, SalesforcePerson, Trace};
use crate::salesforce::soql::{Filter, Select};

/// How many conversations one lead query asks about.
const LEADS_PER_QUERY: usize = 200;

impl ChatChannel {
    /// The lead mappings' values for `conv` now; a failing mapping is a sync error and
    /// gives none.
    pub(super) fn lead_mapping(
        &mut self,
        shared: &Shared,
        conv: &Conversation,
        rules: &dyn Rules,
    ) -> Result<BTreeMap<String, Json>, DaemonError> {
        let evaluated = rules.evaluate(conv).lead(&mut Trace::default());
        match evaluated {
            Ok(values) => Ok(values),
            Err(e) => {
                shared.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?;
                Ok(BTreeMap::new())
            }
        }
    }

    /// The user a conversation's Lead and Tasks belong to: its assignee, when it was handed
    /// to a user and `messenger.owner_follows_assignee` is on.
    pub(super) fn lead_owner(&self, conv: &Conversation) -> Option<String> {
        let follows = self.hub.settings().owner_follows_assignee;
        match &conv.state {
            ConversationState::HandedOver { target_id, .. } if follows && is_user_id(target_id) => {
                Some(target_id.clone())
            }
            _ => None,
        }
    }

    /// A decided chat's writes to its Lead and Tasks: the lead mappings' changed values,
    /// and on a handover to a user who becomes their owner, that owner.
    pub(super) fn lead_follow_up(
        &mut self,
        conv: &mut Conversation,
        decision: &Decision,
        handover_owner: Option<&str>,
    ) -> Vec<Action> {
        let follows = self.hub.settings().owner_follows_assignee;
        let owner = handover_owner.filter(|id| follows && is_user_id(id));
        let Some(info) = conv.messenger.as_mut() else { return Vec::new() };
        let mut lead: BTreeMap<String, Json> = BTreeMap::new();
        if info.lead.exists() {
            for (field, value) in &decision.lead_fields {
                if info.lead_fields.get(field) != Some(value) {
                    lead.insert(field.clone(), value.clone());
                }
            }
            info.lead_fields.extend(lead.clone());
            if let Some(owner) = owner {
                lead.insert("OwnerId".into(), Json::from(owner));
            }
        }
        let mut actions = Vec::new();
        if !lead.is_empty() {
            actions.extend(messenger::plan::lead_update(conv, lead));
        }
        if let Some(owner) = owner {
            actions.extend(messenger::tasks::reassign(conv, owner));
        }
        actions
    }

    /// Logs the Task on each new Lead casebridge made for a verified visitor among
    /// `conversation_ids`, once Salesforce has the lead (found by the key it was upserted
    /// by, which chats with the same email share); a lead not there yet is tried again when
    /// the visitor next writes.
    pub(in crate::daemon) async fn log_lead_tasks(
        &mut self,
        shared: &Shared,
        conversation_ids: &[String],
    ) -> Result<(), DaemonError> {
        let mut chats_by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for id in conversation_ids {
            if let Some(key) = shared.store.conversation(id)?.as_ref().and_then(|c| c.lead_key().map(str::to_string)) {
                chats_by_key.entry(key).or_default().push(id.clone());
            }
        }
        let keys: Vec<String> = chats_by_key.keys().cloned().collect();
        for chunk in keys.chunks(LEADS_PER_QUERY) {
            for (lead_id, key) in self.leads_by_key(shared, chunk).await {
                for id in chats_by_key.get(&key).into_iter().flatten() {
                    self.log_lead_task(shared, id, &lead_id)?;
                }
            }
        }
        Ok(())
    }

    /// The Leads upserted by `keys`, as (lead id, key); none when they cannot be read now.
    async fn leads_by_key(&self, shared: &Shared, keys: &[String]) -> Vec<(String, String)> {
        let soql = Select::new(["Id", CONVERSATION_FIELD], "Lead")
            .filter(Filter::is_in(CONVERSATION_FIELD, keys.iter().cloned()))
            .limit(LEADS_PER_QUERY)
            .build();
        let rows: Vec<Json> = match soql {
            Ok(soql) => match shared.client.query(soql).collect_all().await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read back new leads; their Tasks wait.");
                    Vec::new()
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "Cannot build the new leads' query.");
                Vec::new()
            }
        };
        rows.iter()
            .filter_map(|row| Some((row["Id"].as_str()?.to_string(), row[CONVERSATION_FIELD].as_str()?.to_string())))
            .collect()
    }

    /// Logs conversation `id`'s Task on the Lead `lead_id`, when it still waits for it.
    fn log_lead_task(&mut self, shared: &Shared, id: &str, lead_id: &str) -> Result<(), DaemonError> {
        let Some(mut conv) = shared.store.conversation(id)? else { return Ok(()) };
        if !conv.messenger.as_ref().is_some_and(|m| m.lead.task_pending()) {
            return Ok(());
        }
        let person =
            SalesforcePerson::Lead { lead_ids: vec![lead_id.to_string()], name: None, company: None, owner_id: None };
        let logged = messenger::tasks::log(&conv, &person, None, self.lead_owner(&conv).as_deref());
        let info = conv.messenger.as_mut().expect("checked above");
        info.lead = std::mem::take(&mut info.lead).task_logged();
        info.tasks.extend(logged.iter().map(|(key, _)| key.clone()));
        self.hub_commit(&conv, logged.into_iter().map(|(_, action)| action).collect())
    }
}

/// Whether a Salesforce id is a User's (key prefix `005`); queues are `00G`.
fn is_user_id(id: &str) -> bool {
    id.starts_with("005")
}
