//! A conversation: a customer's exchange with support, whichever channel it came by, as
//! the later stages see it — its parts (messages) with their authors classified as the
//! customer, a human agent, or our own agent user (`bot`), its attributes and topics, and
//! the decisions made about it. Parts written by the agent user are never answered, or
//! casebridge would loop on its own writes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use super::visitor::{MessengerInfo, SalesforcePerson, Visitor};

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
    /// A message typed in the web messenger.
    Chat,
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
    /// The articles an agent's message offered to confirm (a messenger reply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<super::Suggestion>,
    /// The articles an agent's answer drew on (a messenger reply shows them as links).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<super::Source>,
    /// The message asks the customer to rate the conversation (the widget shows 1 to 5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asks_rating: bool,
    /// The message asks an anonymous visitor for an email to reach them by (a handover).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asks_email: bool,
}

impl Part {
    /// A public part with no author id or name, offering nothing and asking nothing: what
    /// the other fields of most parts are (struct update syntax sets those that differ).
    pub fn new(id: String, kind: PartKind, author: AuthorKind, body: String, created_at: DateTime<Utc>) -> Part {
        Part {
            id,
            kind,
            author,
            author_id: None,
            author_name: None,
            body,
            public: true,
            created_at,
            message_id: None,
            suggestions: Vec::new(),
            sources: Vec::new(),
            asks_rating: false,
            asks_email: false,
        }
    }
}

/// The longest comment a rating keeps, in characters.
pub const CSAT_COMMENT_MAX_CHARS: usize = 1_000;

/// A customer's rating of a conversation: 1 (very poor) to 5 (excellent), with what they
/// wrote beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Csat {
    pub rating: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    /// Whether the `on: [rating]` mappings ran for it (their writes queued).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mapped: bool,
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

/// How a messenger conversation's id starts; no Salesforce id has an underscore.
pub const MESSENGER_ID_PREFIX: &str = "msg_";

/// Whether `id` names a messenger conversation rather than a case.
pub fn is_messenger_id(id: &str) -> bool {
    id.starts_with(MESSENGER_ID_PREFIX)
}

/// Where a conversation takes place: the channel it came in by and its answers go out by.
/// Rules see it as `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A Salesforce Case: its comments, emails and feed posts.
    #[default]
    Case,
    /// A chat in the web messenger; it becomes a Salesforce Case only on handover.
    Messenger,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Case => "case",
            Channel::Messenger => "messenger",
        }
    }
}

/// A conversation: one case (or one messenger chat) and everything casebridge knows and
/// decided about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Conversations stored before channels existed were all cases.
    #[serde(default)]
    pub channel: Channel,
    /// The conversation's key: a case's Id, or a messenger conversation's id (`msg_...`).
    /// Stored conversations written before channels existed call it `case_id`.
    #[serde(alias = "case_id")]
    pub id: String,
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
    pub decisions: Vec<super::Decision>,
    /// Whether the AI agent was asked about this conversation (answered or not).
    #[serde(default)]
    pub ai_involved: bool,
    /// What became of it, once the agent took part.
    #[serde(default)]
    pub resolution: Option<super::ResolutionState>,
    /// When the agent first replied (an answer or articles offered), for the time to
    /// first reply the report reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reply_at: Option<DateTime<Utc>>,
    /// How the customer rated the conversation (CSAT), once they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csat: Option<Csat>,
    /// Whether the team is in by its office hours, as of the decision being made: set by
    /// the daemon for that decision, never stored (`None`: no office hours, or not asked).
    #[serde(skip)]
    pub team_in: Option<bool>,
    /// What only a messenger conversation has: its visitor and the case it became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messenger: Option<MessengerInfo>,
}

impl Conversation {
    /// How many decisions (with their traces) are kept per conversation.
    pub const MAX_DECISIONS: usize = 10;

    /// The Salesforce Case this conversation is, or (a messenger chat handed over) has
    /// become, once known.
    pub fn case_id(&self) -> Option<&str> {
        match self.channel {
            Channel::Case => Some(&self.id),
            Channel::Messenger => self.messenger.as_ref().and_then(|m| m.case.id()),
        }
    }

    /// The External ID the visitor's Lead is upserted by, once one was queued for this
    /// conversation (see `ChatLead`).
    pub fn lead_key(&self) -> Option<&str> {
        self.messenger.as_ref()?.lead.key(&self.id)
    }

    pub fn is_closed(&self) -> bool {
        self.case_fields.get("IsClosed").and_then(|v| v.as_bool()).unwrap_or(false)
            || self.status.as_deref() == Some("Closed")
    }

    /// A conversation of one customer message and nothing else, for asking the agent
    /// outside any channel (`casebridge agent ask`, `agent eval`).
    pub fn from_question(question: &str) -> Conversation {
        let now = Utc::now();
        Conversation {
            channel: Channel::Case,
            id: "question".into(),
            case_number: String::new(),
            subject: String::new(),
            origin: None,
            status: None,
            owner_id: String::new(),
            contact: None,
            account: None,
            customer_email: None,
            case_fields: BTreeMap::new(),
            parts: vec![Part::new("question".into(), PartKind::Opening, AuthorKind::User, question.to_string(), now)],
            attributes: BTreeMap::new(),
            topics: BTreeSet::new(),
            state: ConversationState::Open,
            handled: BTreeSet::new(),
            replies_sent: 0,
            created_at: now,
            modstamp: now,
            retry_at: None,
            agent_failures: 0,
            decisions: Vec::new(),
            ai_involved: false,
            resolution: None,
            first_reply_at: None,
            csat: None,
            team_in: None,
            messenger: None,
        }
    }

    pub fn push_decision(&mut self, decision: super::Decision) {
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

    /// Counts every customer part written at or before `at` as handled: for a
    /// conversation built again after it was pruned, whose history was dealt with then.
    pub fn handled_until(&mut self, at: DateTime<Utc>) {
        let old = self.parts.iter().filter(|p| p.author == AuthorKind::User && p.created_at <= at);
        let ids: Vec<String> = old.map(|p| p.id.clone()).collect();
        self.handled.extend(ids);
    }

    /// Customer parts not yet handled (answered, forwarded or handed over), oldest first,
    /// whatever a human wrote after them: what a handed-over chat forwards to its case.
    pub fn unhandled_customer_parts(&self) -> Vec<&Part> {
        self.parts.iter().filter(|p| p.author == AuthorKind::User && !self.handled.contains(&p.id)).collect()
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

/// The conversation as a decision's stages see it: as stored, with the attributes and
/// topics decided so far in place of its own. Borrowed, so that a decision copies nothing
/// of the conversation (its parts and case row can be large).
#[derive(Clone, Copy)]
pub struct View<'c> {
    pub conversation: &'c Conversation,
    pub attributes: &'c BTreeMap<String, Json>,
    pub topics: &'c BTreeSet<String>,
}

impl<'c> View<'c> {
    /// The conversation as stored.
    pub fn of(conversation: &'c Conversation) -> View<'c> {
        View { conversation, attributes: &conversation.attributes, topics: &conversation.topics }
    }

    /// An owned copy of what the view shows, without the decision history (the part that
    /// grows): for those that need a whole value, such as a script's argument.
    pub fn to_conversation(&self) -> Conversation {
        let c = self.conversation;
        Conversation {
            channel: c.channel,
            id: c.id.clone(),
            case_number: c.case_number.clone(),
            subject: c.subject.clone(),
            origin: c.origin.clone(),
            status: c.status.clone(),
            owner_id: c.owner_id.clone(),
            contact: c.contact.clone(),
            account: c.account.clone(),
            customer_email: c.customer_email.clone(),
            case_fields: c.case_fields.clone(),
            parts: c.parts.clone(),
            attributes: self.attributes.clone(),
            topics: self.topics.clone(),
            state: c.state.clone(),
            handled: c.handled.clone(),
            replies_sent: c.replies_sent,
            created_at: c.created_at,
            modstamp: c.modstamp,
            retry_at: c.retry_at,
            agent_failures: c.agent_failures,
            decisions: Vec::new(),
            ai_involved: c.ai_involved,
            resolution: c.resolution,
            first_reply_at: c.first_reply_at,
            csat: c.csat.clone(),
            team_in: c.team_in,
            messenger: c.messenger.clone(),
        }
    }
}
