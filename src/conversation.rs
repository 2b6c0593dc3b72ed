//! Conversations: our model of a case's exchange, built from what the poll query returns.
//!
//! A case becomes a [`Conversation`]: its subject and description are the customer's first
//! message, and its comments, emails and text feed posts are [`Part`]s whose authors are
//! classified as the customer, a human agent, or our own agent user (`bot`). Parts written
//! by the agent user are never answered, or casebridge would loop on its own writes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::salesforce::soql::parse_datetime;

/// Who wrote a part, in the words of the design: `user` is the customer, `admin` a human
/// agent, `bot` our own agent user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    User,
    Admin,
    Bot,
}

/// Where a part came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// The case's subject and description.
    Opening,
    Comment,
    Email,
    FeedPost,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The Salesforce record id (the case id for the opening message).
    pub id: String,
    pub kind: PartKind,
    pub author: AuthorKind,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    /// Plain text (HTML email bodies are converted).
    pub body: String,
    pub public: bool,
    pub created_at: DateTime<Utc>,
    /// For emails: the Message-ID, so replies can thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Where a conversation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ConversationState {
    /// Owned by the agent user: the AI answers.
    Open,
    /// casebridge handed it to a human or queue.
    HandedOver {
        target_id: String,
        reason: String,
    },
    /// Someone else re-assigned it away from the agent user; answering stops until it is
    /// assigned back.
    AssignedAway {
        owner_id: String,
    },
    Closed,
}

/// A case's contact, as the poll query reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContactInfo {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// A case's account, as the poll query reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AccountInfo {
    pub id: String,
    pub name: Option<String>,
}

/// A conversation: one case and everything casebridge knows and decided about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub case_id: String,
    pub case_number: String,
    pub subject: String,
    pub origin: Option<String>,
    pub status: Option<String>,
    pub owner_id: String,
    pub contact: Option<ContactInfo>,
    pub account: Option<AccountInfo>,
    /// The customer's address for email replies (the contact's, or the web-to-case one).
    pub customer_email: Option<String>,
    /// The case's fields as last read (for attribute mappings).
    pub case_fields: BTreeMap<String, Json>,
    pub parts: Vec<Part>,
    pub attributes: BTreeMap<String, Json>,
    pub topics: BTreeSet<String>,
    pub state: ConversationState,
    /// Customer parts that have been answered, handed over, or seen by a human.
    pub handled: BTreeSet<String>,
    pub replies_sent: u32,
    pub created_at: DateTime<Utc>,
    /// The case's `SystemModstamp` when last read.
    pub modstamp: DateTime<Utc>,
    /// When the agent failed, the conversation is tried again from this time.
    #[serde(default)]
    pub retry_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub agent_failures: u32,
    /// The latest decisions, newest last (at most [`Conversation::MAX_DECISIONS`]).
    #[serde(default)]
    pub decisions: Vec<crate::decide::Decision>,
}

impl Conversation {
    /// How many decisions (with their traces) are kept per conversation.
    pub const MAX_DECISIONS: usize = 10;

    pub fn is_closed(&self) -> bool {
        self.case_fields.get("IsClosed").and_then(|v| v.as_bool()).unwrap_or(false)
            || self.status.as_deref() == Some("Closed")
    }

    pub fn push_decision(&mut self, decision: crate::decide::Decision) {
        self.decisions.push(decision);
        let excess = self.decisions.len().saturating_sub(Self::MAX_DECISIONS);
        self.decisions.drain(..excess);
    }

    /// Whether the case came in by email, so replies must also be emailed.
    pub fn is_email_origin(&self) -> bool {
        self.origin.as_deref() == Some("Email")
            || self.parts.iter().any(|p| p.kind == PartKind::Email && p.author == AuthorKind::User)
    }

    /// Customer parts nobody has answered yet, oldest first.
    pub fn unanswered(&self) -> Vec<&Part> {
        // A public answer from a human also answers what came before it.
        let last_human =
            self.parts.iter().filter(|p| p.author == AuthorKind::Admin && p.public).map(|p| p.created_at).max();
        self.parts
            .iter()
            .filter(|p| p.author == AuthorKind::User && !self.handled.contains(&p.id))
            .filter(|p| last_human.is_none_or(|h| p.created_at > h))
            .collect()
    }

    /// The latest customer message, for rules and the agent.
    pub fn last_customer_message(&self) -> Option<&Part> {
        self.parts.iter().rev().find(|p| p.author == AuthorKind::User)
    }

    /// The customer's turns so far.
    pub fn customer_turns(&self) -> usize {
        self.parts.iter().filter(|p| p.author == AuthorKind::User).count()
    }

    /// The email to reply to: the latest incoming email part.
    pub fn last_incoming_email(&self) -> Option<&Part> {
        self.parts.iter().rev().find(|p| p.kind == PartKind::Email && p.author == AuthorKind::User)
    }

    /// Merges a freshly read case into the stored conversation: new parts are added
    /// (deduplicated by id), case fields refreshed; decisions already made are kept.
    pub fn merge(&mut self, fresh: Conversation) {
        let known: BTreeSet<String> = self.parts.iter().map(|p| p.id.clone()).collect();
        for part in fresh.parts {
            if !known.contains(&part.id) {
                self.parts.push(part);
            }
        }
        self.parts.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        self.case_number = fresh.case_number;
        self.subject = fresh.subject;
        self.origin = fresh.origin;
        self.status = fresh.status;
        self.owner_id = fresh.owner_id;
        self.contact = fresh.contact;
        self.account = fresh.account;
        self.customer_email = fresh.customer_email;
        self.case_fields = fresh.case_fields;
        self.modstamp = fresh.modstamp;
    }
}

/// Who the agent user is, and how to tell customers from staff.
pub struct Authors<'a> {
    pub agent_user_id: &'a str,
}

/// Portal and community user types: people outside the company, i.e. customers.
const CUSTOMER_USER_TYPES: &[&str] =
    &["PowerCustomerSuccess", "CustomerSuccess", "CspLitePortal", "PowerPartner", "Guest", "CsnOnly"];

impl Authors<'_> {
    fn classify(&self, created_by_id: Option<&str>, user_type: Option<&str>) -> AuthorKind {
        match created_by_id {
            Some(id) if crate::salesforce::id::same(id, self.agent_user_id) => AuthorKind::Bot,
            _ if user_type.is_some_and(|t| CUSTOMER_USER_TYPES.contains(&t)) => AuthorKind::User,
            _ => AuthorKind::Admin,
        }
    }
}

/// The fields the poll query reads for each case and its children. Kept here, beside the
/// code that reads them, so the two cannot disagree.
pub mod fields {
    pub const CASE: &[&str] = &[
        "Id",
        "CaseNumber",
        "Subject",
        "Description",
        "Status",
        "IsClosed",
        "Origin",
        "Priority",
        "OwnerId",
        "CreatedDate",
        "SystemModstamp",
        "SuppliedEmail",
        "SuppliedName",
        "ContactId",
        "Contact.Name",
        "Contact.Email",
        "AccountId",
        "Account.Name",
    ];
    pub const COMMENT: &[&str] =
        &["Id", "CommentBody", "IsPublished", "CreatedById", "CreatedBy.Name", "CreatedBy.UserType", "CreatedDate"];
    pub const EMAIL: &[&str] = &[
        "Id",
        "Incoming",
        "FromAddress",
        "FromName",
        "Subject",
        "TextBody",
        "HtmlBody",
        "MessageIdentifier",
        "CreatedById",
        "CreatedDate",
    ];
    pub const FEED: &[&str] =
        &["Id", "Body", "Type", "CreatedById", "CreatedBy.Name", "CreatedBy.UserType", "CreatedDate"];
}

/// Why a case row could not be read.
#[derive(Debug, thiserror::Error)]
#[error("case {case_id}: {problem}")]
pub struct BuildError {
    pub case_id: String,
    pub problem: String,
}

/// Builds a conversation from one row of the poll query (see [`fields`]).
pub fn from_case_row(row: &Json, authors: &Authors<'_>) -> Result<Conversation, BuildError> {
    let case_id = row["Id"].as_str().unwrap_or_default().to_string();
    let bad = |problem: &str| BuildError { case_id: case_id.clone(), problem: problem.to_string() };
    if case_id.is_empty() {
        return Err(bad("the row has no Id"));
    }
    let text = |v: &Json| v.as_str().map(str::to_string);
    let date = |v: &Json| v.as_str().and_then(parse_datetime);
    let created_at = date(&row["CreatedDate"]).ok_or_else(|| bad("CreatedDate is missing or malformed"))?;
    let modstamp = date(&row["SystemModstamp"]).ok_or_else(|| bad("SystemModstamp is missing or malformed"))?;
    let subject = text(&row["Subject"]).unwrap_or_default();
    let description = text(&row["Description"]).unwrap_or_default();

    let mut parts = Vec::new();
    let opening = match (subject.trim(), description.trim()) {
        ("", d) => d.to_string(),
        (s, "") => s.to_string(),
        (s, d) => format!("{s}\n\n{d}"),
    };
    parts.push(Part {
        id: case_id.clone(),
        kind: PartKind::Opening,
        author: AuthorKind::User,
        author_id: text(&row["ContactId"]),
        author_name: text(&row["SuppliedName"]).or_else(|| text(&row["Contact"]["Name"])),
        body: opening,
        public: true,
        created_at,
        message_id: None,
    });
    for c in children(&row["CaseComments"]) {
        let Some(at) = date(&c["CreatedDate"]) else { continue };
        parts.push(Part {
            id: text(&c["Id"]).unwrap_or_default(),
            kind: PartKind::Comment,
            author: authors.classify(c["CreatedById"].as_str(), c["CreatedBy"]["UserType"].as_str()),
            author_id: text(&c["CreatedById"]),
            author_name: text(&c["CreatedBy"]["Name"]),
            body: text(&c["CommentBody"]).unwrap_or_default(),
            public: c["IsPublished"].as_bool().unwrap_or(false),
            created_at: at,
            message_id: None,
        });
    }
    for e in children(&row["EmailMessages"]) {
        let Some(at) = date(&e["CreatedDate"]) else { continue };
        let incoming = e["Incoming"].as_bool().unwrap_or(false);
        let body = match (e["TextBody"].as_str(), e["HtmlBody"].as_str()) {
            (Some(t), _) if !t.trim().is_empty() => t.to_string(),
            (_, Some(h)) => html_to_text(h),
            _ => String::new(),
        };
        parts.push(Part {
            id: text(&e["Id"]).unwrap_or_default(),
            kind: PartKind::Email,
            author: if incoming { AuthorKind::User } else { authors.classify(e["CreatedById"].as_str(), None) },
            author_id: if incoming { text(&e["FromAddress"]) } else { text(&e["CreatedById"]) },
            author_name: text(&e["FromName"]),
            body: strip_quoted_reply(&body),
            public: true,
            created_at: at,
            message_id: text(&e["MessageIdentifier"]),
        });
    }
    for f in children(&row["Feeds"]) {
        if f["Type"].as_str().is_some_and(|t| t != "TextPost") {
            continue;
        }
        let Some(at) = date(&f["CreatedDate"]) else { continue };
        parts.push(Part {
            id: text(&f["Id"]).unwrap_or_default(),
            kind: PartKind::FeedPost,
            author: authors.classify(f["CreatedById"].as_str(), f["CreatedBy"]["UserType"].as_str()),
            author_id: text(&f["CreatedById"]),
            author_name: text(&f["CreatedBy"]["Name"]),
            body: html_to_text(f["Body"].as_str().unwrap_or_default()),
            public: true,
            created_at: at,
            message_id: None,
        });
    }
    // Email-to-Case copies the first email's text into the Description: that message is the
    // email, not a second one.
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let described = squash(&description);
    if !described.is_empty()
        && parts
            .iter()
            .any(|p| p.kind == PartKind::Email && p.author == AuthorKind::User && squash(&p.body) == described)
    {
        parts.retain(|p| p.kind != PartKind::Opening);
    }
    parts.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));

    let contact = row["Contact"].as_object().map(|_| ContactInfo {
        id: text(&row["ContactId"]).unwrap_or_default(),
        name: text(&row["Contact"]["Name"]),
        email: text(&row["Contact"]["Email"]),
    });
    let account = row["Account"]
        .as_object()
        .map(|_| AccountInfo { id: text(&row["AccountId"]).unwrap_or_default(), name: text(&row["Account"]["Name"]) });
    let customer_email = contact.as_ref().and_then(|c| c.email.clone()).or_else(|| text(&row["SuppliedEmail"]));
    let case_fields = row
        .as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| !matches!(k.as_str(), "attributes" | "CaseComments" | "EmailMessages" | "Feeds"))
        })
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Conversation {
        case_number: text(&row["CaseNumber"]).unwrap_or_default(),
        subject,
        origin: text(&row["Origin"]),
        status: text(&row["Status"]),
        owner_id: text(&row["OwnerId"]).unwrap_or_default(),
        contact,
        account,
        customer_email,
        case_fields,
        parts,
        attributes: BTreeMap::new(),
        topics: BTreeSet::new(),
        state: ConversationState::Open,
        handled: BTreeSet::new(),
        replies_sent: 0,
        created_at,
        modstamp,
        retry_at: None,
        agent_failures: 0,
        decisions: Vec::new(),
        case_id,
    })
}

fn children(value: &Json) -> impl Iterator<Item = &Json> {
    value["records"].as_array().into_iter().flatten()
}

/// Plain text from an HTML body: block structure kept as line breaks, no markup.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') {
        return html.to_string();
    }
    match html2text::from_read(html.as_bytes(), 10_000) {
        Ok(text) => text.trim().to_string(),
        Err(_) => html.to_string(),
    }
}

/// Drops the quoted history of an email reply ("On ... wrote:" and `>` lines), so that the
/// agent sees what the customer wrote this time.
pub fn strip_quoted_reply(body: &str) -> String {
    let mut kept = Vec::new();
    for line in body.lines() {
        let t = line.trim_start();
        if t.starts_with('>') {
            continue;
        }
        if (t.starts_with("On ") && t.trim_end().ends_with("wrote:")) || t.starts_with("-----Original Message-----") {
            break;
        }
        kept.push(line);
    }
    let text = kept.join("\n").trim().to_string();
    if text.is_empty() { body.trim().to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AGENT: &str = "005Dn0000000003IAA";

    fn row() -> Json {
        json!({
            "Id": "500Dn000000000IIAQ", "CaseNumber": "00001001", "Subject": "Gripper drift",
            "Description": "It drifts 2mm.", "Status": "New", "Origin": "Web", "OwnerId": AGENT,
            "CreatedDate": "2024-05-01T12:00:00.000+0000", "SystemModstamp": "2024-05-01T12:30:00.000+0000",
            "ContactId": "003Dn000000000FIAQ", "Contact": { "Name": "Jane Doe", "Email": "jane@customer.example" },
            "AccountId": null, "Account": null,
            "CaseComments": { "totalSize": 3, "done": true, "records": [
                { "Id": "00aDn0000000001AAA", "CommentBody": "Still drifting", "IsPublished": true, "CreatedById": "005Dn0000000008IAA",
                  "CreatedBy": { "Name": "Jane Doe", "UserType": "PowerCustomerSuccess" }, "CreatedDate": "2024-05-01T12:10:00.000+0000" },
                { "Id": "00aDn0000000002AAA", "CommentBody": "Try recalibrating", "IsPublished": true, "CreatedById": AGENT,
                  "CreatedBy": { "Name": "Fin Agent", "UserType": "Standard" }, "CreatedDate": "2024-05-01T12:11:00.000+0000" },
                { "Id": "00aDn0000000003AAA", "CommentBody": "internal", "IsPublished": false, "CreatedById": "005Dn0000000004IAA",
                  "CreatedBy": { "Name": "Maria", "UserType": "Standard" }, "CreatedDate": "2024-05-01T12:12:00.000+0000" }
            ]},
            "EmailMessages": { "totalSize": 1, "done": true, "records": [
                { "Id": "02sDn0000000001AAA", "Incoming": true, "FromAddress": "jane@customer.example", "TextBody": null,
                  "HtmlBody": "<p>Hello <b>team</b></p><p>Second line</p>", "MessageIdentifier": "<m1@x>",
                  "CreatedDate": "2024-05-01T12:20:00.000+0000" }
            ]},
            "Feeds": null
        })
    }

    #[test]
    fn classifies_authors_and_orders_parts() {
        let c = from_case_row(&row(), &Authors { agent_user_id: AGENT }).unwrap();
        let authors: Vec<AuthorKind> = c.parts.iter().map(|p| p.author).collect();
        assert_eq!(authors, [AuthorKind::User, AuthorKind::User, AuthorKind::Bot, AuthorKind::Admin, AuthorKind::User]);
        assert_eq!(c.parts[0].body, "Gripper drift\n\nIt drifts 2mm.");
        assert_eq!(c.customer_email.as_deref(), Some("jane@customer.example"));
        assert!(c.is_email_origin(), "an incoming email makes replies go by email");
        let email = c.parts.last().unwrap();
        assert!(email.body.contains("Hello") && !email.body.contains('<'), "{}", email.body);
        assert_eq!(email.message_id.as_deref(), Some("<m1@x>"));
    }

    #[test]
    fn unanswered_skips_handled_and_what_a_human_answered() {
        let mut c = from_case_row(&row(), &Authors { agent_user_id: AGENT }).unwrap();
        assert_eq!(c.unanswered().len(), 3);
        c.handled.insert(c.parts[0].id.clone());
        assert_eq!(c.unanswered().len(), 2);
        // A public human answer after the first two customer parts covers them.
        c.parts.insert(
            3,
            Part {
                id: "00aHuman".into(),
                kind: PartKind::Comment,
                author: AuthorKind::Admin,
                author_id: None,
                author_name: None,
                body: "done".into(),
                public: true,
                created_at: parse_datetime("2024-05-01T12:15:00.000+0000").unwrap(),
                message_id: None,
            },
        );
        let ids: Vec<&str> = c.unanswered().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["02sDn0000000001AAA"]);
    }

    #[test]
    fn an_email_to_case_description_is_not_a_second_message() {
        let mut r = row();
        r["Description"] = json!("Hello team\n\nSecond line");
        r["EmailMessages"]["records"][0]["HtmlBody"] = json!(null);
        r["EmailMessages"]["records"][0]["TextBody"] = json!("Hello team\nSecond line");
        let c = from_case_row(&r, &Authors { agent_user_id: AGENT }).unwrap();
        assert!(c.parts.iter().all(|p| p.kind != PartKind::Opening), "{:?}", c.parts);
        assert_eq!(c.parts.iter().filter(|p| p.author == AuthorKind::User).count(), 2);
    }

    #[test]
    fn quoted_history_is_dropped() {
        let body = "Thanks, that worked!\n\nOn Tue, May 1, 2024 at 12:00 Support wrote:\n> Try this\n> and that";
        assert_eq!(strip_quoted_reply(body), "Thanks, that worked!");
        assert_eq!(strip_quoted_reply("> only quoted"), "> only quoted");
    }
}
