//! Logging messenger conversations as Salesforce Tasks, as the seed does: a conversation
//! with a known contact becomes a Task on that contact (`WhoId`), related (`WhatId`) to the
//! contact's one open opportunity on which they have a role, and to none when there are
//! several (a guess would file it under the wrong deal); a conversation with a lead's email
//! becomes one Task on each such lead. The Task is logged when the visitor is matched and
//! completed, with the whole transcript, when the conversation closes. Each is upserted by
//! `Casebridge_Conversation__c` (an External ID on Activity) holding the conversation's id
//! (with the lead's for a lead's Task), so a resend after a crash never logs a second.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use super::plan::{CONVERSATION_FIELD, DESCRIPTION_MAX_CHARS, transcript};
use crate::model::{Action, Conversation, SalesforcePerson};
use crate::salesforce::soql::{Filter, Select};
use crate::salesforce::{Client, SalesforceError};

/// A Task's `Subject` holds 255 characters.
const SUBJECT_MAX_CHARS: usize = 255;

/// The contact's one open opportunity on which they have a role; `None` for none or several.
pub async fn related_opportunity(client: &Client, contact_id: &str) -> Result<Option<String>, SalesforceError> {
    let soql = Select::new(["OpportunityId"], "OpportunityContactRole")
        .filter(Filter::eq("ContactId", contact_id).and(Filter::eq("Opportunity.IsClosed", false)))
        .limit(200)
        .build()
        .map_err(|e| SalesforceError::Config(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    let open: BTreeSet<&str> = rows.iter().filter_map(|r| r["OpportunityId"].as_str()).collect();
    Ok(if open.len() == 1 { open.into_iter().next().map(str::to_string) } else { None })
}

/// The Tasks a conversation with `person` is logged as, each with its External ID value.
/// `owner`: the conversation's assignee, when Tasks follow it.
pub fn log(
    conv: &Conversation,
    person: &SalesforcePerson,
    what_id: Option<&str>,
    owner: Option<&str>,
) -> Vec<(String, Action)> {
    let mut fields: BTreeMap<String, Json> = BTreeMap::new();
    if let Some(owner) = owner {
        fields.insert("OwnerId".into(), json!(owner));
    }
    let subject: String = format!("Messenger conversation: {}", conv.subject).chars().take(SUBJECT_MAX_CHARS).collect();
    fields.insert("Subject".into(), json!(subject));
    fields.insert("Status".into(), json!("In Progress"));
    fields.insert("ActivityDate".into(), json!(conv.created_at.format("%Y-%m-%d").to_string()));
    fields.insert("Description".into(), json!(transcript(conv, DESCRIPTION_MAX_CHARS)));
    let whos: Vec<(String, String)> = match person {
        SalesforcePerson::User { contact_id, .. } => vec![(conv.id.clone(), contact_id.clone())],
        SalesforcePerson::Lead { lead_ids, .. } => {
            lead_ids.iter().map(|lead| (format!("{}:{lead}", conv.id), lead.clone())).collect()
        }
        SalesforcePerson::Visitor => Vec::new(),
    };
    whos.into_iter()
        .map(|(key, who)| {
            let mut fields = fields.clone();
            fields.insert("WhoId".into(), json!(who));
            if let (SalesforcePerson::User { .. }, Some(what)) = (person, what_id) {
                fields.insert("WhatId".into(), json!(what));
            }
            (key.clone(), upsert(conv, key, fields, false))
        })
        .collect()
}

/// The conversation's Tasks completed, with the transcript as it ends.
pub fn complete(conv: &Conversation) -> Vec<Action> {
    let Some(info) = &conv.messenger else { return Vec::new() };
    info.tasks
        .iter()
        .map(|key| {
            let fields = BTreeMap::from([
                ("Status".to_string(), json!("Completed")),
                ("Description".to_string(), json!(transcript(conv, DESCRIPTION_MAX_CHARS))),
            ]);
            upsert(conv, key.clone(), fields, true)
        })
        .collect()
}

/// The conversation's Tasks given to `owner` (its new assignee).
pub fn reassign(conv: &Conversation, owner: &str) -> Vec<Action> {
    let Some(info) = &conv.messenger else { return Vec::new() };
    info.tasks
        .iter()
        .map(|key| upsert(conv, key.clone(), BTreeMap::from([("OwnerId".into(), json!(owner))]), true))
        .collect()
}

/// A Task write by its External ID value; `update_only` for one logged before.
fn upsert(conv: &Conversation, key: String, fields: BTreeMap<String, Json>, update_only: bool) -> Action {
    Action::UpsertRecord {
        conversation_id: conv.id.clone(),
        object: "Task".into(),
        key_field: CONVERSATION_FIELD.into(),
        fields,
        key: Some(key),
        update_only,
    }
}
