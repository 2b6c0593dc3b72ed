//! A messenger visitor: who is chatting, whether the website vouched for their email, and
//! who that email is in Salesforce (a contact, leads, or nobody yet).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who is chatting in the messenger, as far as casebridge knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Visitor {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Whether the website vouched for the email (identity verification): only then is
    /// the visitor matched to Salesforce records and shown their data.
    #[serde(default)]
    pub verified: bool,
}

/// A messenger conversation's own state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessengerInfo {
    pub visitor: Visitor,
    /// The Salesforce Case the conversation became on handover, once Salesforce has it.
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub case_number: Option<String>,
    /// The linked case's `SystemModstamp` when last read, so only its news is read again.
    #[serde(default)]
    pub case_modstamp: Option<DateTime<Utc>>,
    /// Who the visitor's email matched in Salesforce, once looked up.
    #[serde(default)]
    pub person: Option<SalesforcePerson>,
    /// Whether a Lead was queued for this visitor (they matched nobody and left an email);
    /// it is upserted by the conversation's id, so it is found by that.
    #[serde(default)]
    pub lead_queued: bool,
    /// The External ID the visitor's Lead is upserted by: this conversation's id when it
    /// made the Lead, an earlier conversation's when that one made a Lead for the same
    /// email (a visitor's identity is the org's, not the chat's). `None` in records from
    /// before it was kept: the conversation's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_key: Option<String>,
    /// The Tasks logged for this conversation, by their External ID values: completed, with
    /// the transcript, when the conversation closes.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The `kind: cases` rule that made the conversation's case, when one did: its fields
    /// are written again each time the conversation closes.
    #[serde(default)]
    pub case_rule: Option<String>,
    /// Whether a case was queued for the conversation (by a rule or a handover).
    #[serde(default)]
    pub case_queued: bool,
    /// The lead mappings' values last written to the conversation's Lead: a value that
    /// changes is written again.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lead_fields: std::collections::BTreeMap<String, serde_json::Value>,
    /// A verified visitor became a new Lead and Tasks are logged: the Task waits for the
    /// lead's id, read back once Salesforce has made it.
    #[serde(default)]
    pub lead_task_pending: bool,
    /// Whether the conversation's case was closed when last read: a handover or rule that
    /// writes it again reopens it.
    #[serde(default)]
    pub case_is_closed: bool,
    /// Whether casebridge closed the case when the conversation closed (a rule's
    /// `close_with_conversation`): a later handover or rule reopens it.
    #[serde(default)]
    pub case_closed_by_rule: bool,
    /// Whether the conversation closed because its case closed: a visitor who writes again
    /// is told it is over. A conversation closed by its resolution reopens instead. Records
    /// from before resolutions closed chats lack it: only a case closed them then.
    #[serde(default = "closed_by_case")]
    pub case_closed: bool,
}

fn closed_by_case() -> bool {
    true
}

/// An email as the org matches it (Salesforce compares emails without regard to case):
/// the key under which one visitor's Lead is found, whichever chat gave the email.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Who a visitor's email is in Salesforce, as the seed maps it: an email that matches a
/// Contact is a user (its Account is the company); one that matches only Leads is a lead;
/// none is a new visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SalesforcePerson {
    User {
        contact_id: String,
        name: Option<String>,
        account_id: Option<String>,
        account_name: Option<String>,
        owner_id: Option<String>,
    },
    Lead {
        /// Every open lead with the email, oldest first.
        lead_ids: Vec<String>,
        name: Option<String>,
        company: Option<String>,
        owner_id: Option<String>,
    },
    Visitor,
}

impl MessengerInfo {
    /// What the admin inbox calls the visitor, saying only what is known: `user` for a
    /// verified contact's email; `unverified` for an email typed in that matches a contact
    /// (anyone can type one); `lead`, `visitor`, or empty before the visitor is matched.
    pub fn person_label(&self) -> &'static str {
        match &self.person {
            Some(SalesforcePerson::User { .. }) if !self.visitor.verified => "unverified",
            Some(p) => p.kind(),
            None => "",
        }
    }
}

impl SalesforcePerson {
    /// `user`, `lead` or `visitor`: what rules read as `visitor.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            SalesforcePerson::User { .. } => "user",
            SalesforcePerson::Lead { .. } => "lead",
            SalesforcePerson::Visitor => "visitor",
        }
    }
}
