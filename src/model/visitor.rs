//! A messenger visitor: who is chatting, whether the website vouched for their email, and
//! who that email is in Salesforce (a contact, leads, or nobody yet).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::chat_case::{ChatCase, LegacyCaseFlags};
use super::chat_lead::ChatLead;

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
#[serde(from = "StoredMessengerInfo")]
pub struct MessengerInfo {
    pub visitor: Visitor,
    /// The Salesforce Case the conversation became (on handover, by a `kind: cases` rule,
    /// or by a person's hand), as a lifecycle.
    pub case: ChatCase,
    /// Who the visitor's email matched in Salesforce, once looked up.
    pub person: Option<SalesforcePerson>,
    /// The visitor's Lead (they matched nobody and left an email), as a lifecycle: made by
    /// this chat, or shared with the earlier chat that made one for the same email (a
    /// visitor's identity is the org's, not the chat's).
    pub lead: ChatLead,
    /// The Tasks logged for this conversation, by their External ID values: completed, with
    /// the transcript, when the conversation closes.
    pub tasks: Vec<String>,
    /// The `kind: cases` rule that made the conversation's case, when one did: its fields
    /// are written again each time the conversation closes.
    pub case_rule: Option<String>,
    /// The lead mappings' values as this conversation last wrote or found them on its Lead
    /// (for a Lead an earlier chat made: their values when it joined): a value that changes
    /// is written again.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lead_fields: std::collections::BTreeMap<String, serde_json::Value>,
    /// Whether the conversation ended because its case closed: a visitor who writes again
    /// is told it is over. A conversation closed by its resolution reopens instead.
    pub ended_by_case: bool,
}

/// A messenger conversation's state as stored, by this version or an older one (whose
/// case was six flags, and whose `case_closed` is today's `ended_by_case`).
#[derive(Deserialize)]
struct StoredMessengerInfo {
    visitor: Visitor,
    #[serde(default)]
    case: Option<ChatCase>,
    #[serde(default)]
    person: Option<SalesforcePerson>,
    #[serde(default)]
    lead: Option<ChatLead>,
    #[serde(default)]
    lead_queued: bool,
    #[serde(default)]
    tasks: Vec<String>,
    #[serde(default)]
    case_rule: Option<String>,
    #[serde(default)]
    lead_fields: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    lead_task_pending: bool,
    /// Records from before resolutions closed chats lack it: only a case closed them then.
    #[serde(default = "ended_by_case", alias = "case_closed")]
    ended_by_case: bool,
    #[serde(default)]
    case_id: Option<String>,
    #[serde(default)]
    case_number: Option<String>,
    #[serde(default)]
    case_modstamp: Option<DateTime<Utc>>,
    #[serde(default)]
    case_queued: bool,
    #[serde(default)]
    case_is_closed: bool,
    #[serde(default)]
    case_closed_by_rule: bool,
}

fn ended_by_case() -> bool {
    true
}

impl From<StoredMessengerInfo> for MessengerInfo {
    fn from(s: StoredMessengerInfo) -> MessengerInfo {
        let case = s.case.unwrap_or_else(|| {
            ChatCase::from_flags(LegacyCaseFlags {
                id: s.case_id,
                number: s.case_number,
                modstamp: s.case_modstamp,
                queued: s.case_queued,
                is_closed: s.case_is_closed,
                closed_by_rule: s.case_closed_by_rule,
            })
        });
        MessengerInfo {
            visitor: s.visitor,
            case,
            person: s.person,
            // Records from before the lifecycle: a queued Lead was the chat's own.
            lead: s.lead.unwrap_or(match s.lead_queued {
                true => ChatLead::Made { task_pending: s.lead_task_pending },
                false => ChatLead::None,
            }),
            tasks: s.tasks,
            case_rule: s.case_rule,
            lead_fields: s.lead_fields,
            ended_by_case: s.ended_by_case,
        }
    }
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
