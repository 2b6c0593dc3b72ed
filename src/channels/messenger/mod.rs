//! The web messenger channel: conversations that start on the company's website, in a chat
//! widget, rather than in Salesforce. The same rules and agent answer them; on handover a
//! conversation becomes a Salesforce Case owned by the handover target, and from then on the
//! person's public replies on the case reach the chat and the visitor's messages reach the
//! case, until it closes.
//!
//! [`Messenger`] is the channel's hub, shared by its HTTP API (`api`), where visitors write,
//! and the daemon, which decides: both write a messenger conversation only through it, one
//! write at a time, so a visitor's message that arrives while the agent thinks is merged,
//! never lost. Each write is committed (flushed) before it is acknowledged or published to
//! the conversation's Server-Sent Events stream. A visitor's message makes the conversation
//! due (the store's due index) and wakes the daemon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::model::{AuthorKind, Conversation, ConversationState, MESSENGER_ID_PREFIX, Part, Visitor};
use crate::store::{Store, StoreError};

pub mod api;
mod feedback;
pub mod limits;
pub mod matching;
pub mod mirror;
mod parts;
pub mod plan;
pub mod tasks;
pub mod token;
pub mod widget;

use limits::RateLimiter;
use token::Tokens;

/// The longest visitor name kept, in characters.
pub const NAME_MAX_CHARS: usize = 200;
pub use crate::model::text::EMAIL_MAX_CHARS;
/// How many events a slow stream may fall behind before it is told to read them again.
const STREAM_BUFFER: usize = 64;
/// How many event streams one conversation may hold open (a few browser tabs).
pub const STREAMS_PER_CONVERSATION: usize = 8;

/// How the messenger behaves (from `messenger` in the config).
#[derive(Debug, Clone)]
pub struct MessengerSettings {
    pub max_message_chars: usize,
    pub per_visitor_per_minute: u32,
    pub per_address_per_minute: u32,
    /// Count the last `X-Forwarded-For` address, not the connection's (behind a proxy).
    pub behind_proxy: bool,
    pub handover_message: String,
    pub ask_rating: bool,
    pub rating_question: String,
    /// When the team answers; `None`: visitors are told nothing of reply times.
    pub office_hours: Option<crate::config::office_hours::Schedule>,
    pub reply_time_message: String,
    pub away_message: String,
    pub case_origin: String,
    pub case_record_type: Option<String>,
    pub transcript_field: String,
    pub create_leads: bool,
    pub log_tasks: bool,
    pub lead_source: String,
    pub owner_follows_assignee: bool,
    pub allowed_origins: Vec<String>,
    /// The secret websites sign visitors' emails with; `None`: no email is ever verified.
    pub identity_secret: Option<crate::model::Secret>,
    /// The widget's texts by language, as JSON for its script.
    pub texts_json: String,
}

impl From<&crate::config::MessengerConfig> for MessengerSettings {
    fn from(c: &crate::config::MessengerConfig) -> Self {
        MessengerSettings {
            max_message_chars: c.max_message_chars,
            per_visitor_per_minute: c.per_visitor_per_minute,
            per_address_per_minute: c.per_address_per_minute,
            behind_proxy: c.behind_proxy,
            handover_message: c.handover_message.clone(),
            ask_rating: c.ask_rating,
            rating_question: c.rating_question.clone(),
            // Checked with the rest of the config before the daemon starts.
            office_hours: c.office_hours.as_ref().and_then(|o| o.schedule().ok()),
            reply_time_message: c.reply_time_message.clone(),
            away_message: c.away_message.clone(),
            case_origin: c.case_origin.clone(),
            case_record_type: c.case_record_type.clone(),
            transcript_field: c.transcript_field.clone(),
            create_leads: c.create_leads,
            log_tasks: c.log_tasks,
            lead_source: c.lead_source.clone(),
            owner_follows_assignee: c.owner_follows_assignee,
            allowed_origins: c.allowed_origins.clone(),
            identity_secret: None,
            texts_json: crate::config::widget_texts::script_json(&c.texts),
        }
    }
}

impl Default for MessengerSettings {
    fn default() -> Self {
        MessengerSettings::from(&crate::config::MessengerConfig::default())
    }
}

/// Why a visitor's request was refused; each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    #[error("there is no such conversation")]
    NotFound,
    #[error("the visitor token is missing")]
    NoToken,
    #[error("the visitor token is not this conversation's")]
    BadToken,
    #[error("the message is empty")]
    Empty,
    #[error("the message is longer than {max} characters")]
    TooLong { max: usize },
    #[error("{0}")]
    Invalid(String),
    #[error("the email's identity hash does not verify")]
    Identity,
    #[error("the conversation is closed")]
    Closed,
    #[error("too many messages; wait a minute")]
    RateLimited,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One message as the widget shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Its place in the conversation, from 1; `after=N` reads those past N.
    pub seq: usize,
    /// `visitor`, `agent` (the AI) or `human` (a person on the case).
    pub author: &'static str,
    pub name: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Articles the agent offered for the visitor to confirm (the widget shows them as
    /// links and asks with two buttons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<crate::model::Suggestion>,
    /// The articles an answer drew on (the widget links their titles).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::model::Source>,
    /// The message asks the visitor to rate the conversation (the widget shows 1 to 5).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub asks_rating: bool,
    /// The message asks an anonymous visitor for an email (the widget shows a form).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub asks_email: bool,
}

/// What a conversation's event stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A new message.
    Message(Message),
    /// The agent is working on an answer: show it for at most this many seconds (or until
    /// the next message).
    Typing { seconds: u64 },
}

/// A conversation's event stream as it opens: the messages so far, what comes next, and
/// whether the agent is working on an answer (for how many more seconds, at most).
pub struct Subscription {
    pub backlog: Vec<Message>,
    pub receiver: broadcast::Receiver<StreamEvent>,
    pub typing: Option<u64>,
}

/// How long the widget shows the agent typing, at most, in seconds: a bound for a reply
/// that fails or is handed over without a message.
pub const TYPING_MAX_SECS: u64 = 30;

/// A new conversation's id and the visitor's token for it.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub conversation_id: String,
    pub visitor_token: String,
    pub messages: Vec<Message>,
}

/// What a visitor gives when starting a conversation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The website's HMAC of `email` (identity verification).
    #[serde(default)]
    pub user_hash: Option<String>,
    pub message: String,
}

/// The channel's hub: see the module documentation.
pub struct Messenger {
    store: Store,
    settings: MessengerSettings,
    tokens: Tokens,
    per_visitor: RateLimiter,
    per_address: RateLimiter,
    /// Held while a messenger conversation is read, changed and committed.
    writes: Mutex<()>,
    streams: Mutex<HashMap<String, broadcast::Sender<StreamEvent>>>,
    /// Conversations the agent is working on, until when: a stream opened meanwhile (the
    /// widget opens its stream after its first message) is told at once.
    typing_until: Mutex<HashMap<String, std::time::Instant>>,
    /// What counts a rating, once a daemon attaches the hub (its metrics).
    on_rating: std::sync::OnceLock<Box<dyn Fn(u8) + Send + Sync>>,
    wake: Notify,
}

impl Messenger {
    /// The hub over `store`; the visitor-token key is made once and kept in the store.
    pub fn new(store: Store, settings: MessengerSettings) -> Result<Arc<Messenger>, StoreError> {
        const KEY: &str = "messenger_token_key";
        let key: Vec<u8> = match store.meta::<Vec<u8>>(KEY)? {
            Some(k) if k.len() >= 32 => k,
            _ => {
                let k: [u8; 32] = rand::random();
                store.set_meta(KEY, &k.to_vec())?;
                k.to_vec()
            }
        };
        Ok(Arc::new(Messenger {
            tokens: Tokens::new(&key),
            per_visitor: RateLimiter::new(settings.per_visitor_per_minute),
            per_address: RateLimiter::new(settings.per_address_per_minute),
            store,
            settings,
            writes: Mutex::new(()),
            streams: Mutex::new(HashMap::new()),
            typing_until: Mutex::new(HashMap::new()),
            on_rating: std::sync::OnceLock::new(),
            wake: Notify::new(),
        }))
    }

    pub fn settings(&self) -> &MessengerSettings {
        &self.settings
    }

    /// Has `count` told of each rating a visitor gives (the daemon counts them in metrics).
    pub fn on_rating(&self, count: impl Fn(u8) + Send + Sync + 'static) {
        let _ = self.on_rating.set(Box::new(count));
    }

    /// The store the hub writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves when a visitor wrote (the daemon waits on it between polls).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Starts a conversation with the visitor's first message; `address` is the network
    /// address it came from (for the rate limit).
    pub fn start(&self, request: StartRequest, address: &str) -> Result<Started, MessengerError> {
        let body = self.checked_body(&request.message)?;
        let visitor = self.visitor(&request)?;
        if !self.per_address.allow(address) {
            return Err(MessengerError::RateLimited);
        }
        let now = Utc::now();
        let id = format!("{MESSENGER_ID_PREFIX}{}", random_suffix());
        let mut conv = new_conversation(&id, visitor, now);
        conv.subject = subject_of(&body);
        left_email(&mut conv, &body);
        conv.parts.push(visitor_part(self.part_id("v")?, body, now));
        conv.retry_at = Some(now);
        let _write = lock(&self.writes);
        self.store.commit(&conv, Vec::new())?;
        drop(_write);
        self.wake.notify_one();
        Ok(Started { visitor_token: self.tokens.issue(&id), messages: messages_of(&conv, 0), conversation_id: id })
    }

    /// Adds a visitor's message; returns it as the widget shows it.
    pub fn post(&self, id: &str, token: Option<&str>, text: &str, address: &str) -> Result<Message, MessengerError> {
        self.authorise(id, token)?;
        let body = self.checked_body(text)?;
        if !self.per_visitor.allow(id) || !self.per_address.allow(address) {
            return Err(MessengerError::RateLimited);
        }
        let message = {
            let _write = lock(&self.writes);
            let mut conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
            if conv.state == ConversationState::Closed {
                // A chat whose case a person closed is over; one the agent resolved reopens.
                if conv.messenger.as_ref().is_none_or(|m| m.ended_by_case) {
                    return Err(MessengerError::Closed);
                }
                conv.state = ConversationState::Open;
            }
            let now = Utc::now();
            left_email(&mut conv, &body);
            conv.parts.push(visitor_part(self.part_id("v")?, body, now));
            conv.modstamp = now;
            conv.retry_at = Some(conv.retry_at.map_or(now, |at| at.min(now)));
            self.store.commit(&conv, Vec::new())?;
            let message = messages_of(&conv, conv.parts.len() - 1).pop().expect("the part just added");
            // Published in commit order (under the lock), or a stream could see a later
            // message first and then skip this one as already seen.
            self.publish(id, std::slice::from_ref(&message));
            message
        };
        self.wake.notify_one();
        Ok(message)
    }

    /// The conversation's messages past `after`.
    pub fn messages(&self, id: &str, token: Option<&str>, after: usize) -> Result<Vec<Message>, MessengerError> {
        self.authorise(id, token)?;
        let conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
        Ok(messages_of(&conv, after))
    }

    /// A stream of the conversation's new messages, with those past `after` so far.
    pub fn subscribe(&self, id: &str, token: Option<&str>, after: usize) -> Result<Subscription, MessengerError> {
        self.authorise(id, token)?;
        // Subscribed before reading, so nothing committed in between is missed (a message
        // in both is skipped by its seq).
        let receiver = {
            let mut streams = lock(&self.streams);
            streams.retain(|_, s| s.receiver_count() > 0);
            let sender = streams.entry(id.to_string()).or_insert_with(|| broadcast::channel(STREAM_BUFFER).0);
            if sender.receiver_count() >= STREAMS_PER_CONVERSATION {
                return Err(MessengerError::RateLimited);
            }
            sender.subscribe()
        };
        let conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
        let typing = lock(&self.typing_until)
            .get(id)
            .and_then(|until| until.checked_duration_since(std::time::Instant::now()))
            .map(|left| left.as_secs().max(1));
        Ok(Subscription { backlog: messages_of(&conv, after), receiver, typing })
    }

    /// Commits the daemon's version of a messenger conversation: parts the visitor added
    /// since the daemon read it are kept (after what the store has, before the daemon's
    /// own), the conversation stays due while any visitor message is unanswered, and the
    /// new messages are published.
    pub fn commit(&self, mut conv: Conversation, actions: Vec<crate::model::Action>) -> Result<(), StoreError> {
        {
            let _write = lock(&self.writes);
            let stored = self.store.conversation(&conv.id)?;
            let before = stored.as_ref().map_or(0, |s| s.parts.len());
            if let Some(stored) = stored {
                // What the admin page did meanwhile: a lead queued, a case linked (and the
                // chat handed over to its owner, which a decision on the older copy keeps).
                if let (Some(mine), Some(theirs)) = (conv.messenger.as_mut(), stored.messenger.as_ref()) {
                    mine.lead = std::mem::take(&mut mine.lead).later(&theirs.lead);
                    mine.case = std::mem::take(&mut mine.case).later(&theirs.case);
                }
                // A visitor who wrote while the daemon closed the chat (a resolution) reopens
                // it, as writing after the close would.
                let mine: std::collections::BTreeSet<&str> = conv.parts.iter().map(|p| p.id.as_str()).collect();
                let wrote_meanwhile =
                    stored.parts.iter().any(|p| p.author == AuthorKind::User && !mine.contains(p.id.as_str()));
                let resolved = conv.state == ConversationState::Closed
                    && conv.messenger.as_ref().is_some_and(|m| !m.ended_by_case);
                if wrote_meanwhile && resolved {
                    conv.state = ConversationState::Open;
                }
                // A handover made meanwhile (by hand) stands, unless the chat ends with its case.
                let ends_with_case = conv.messenger.as_ref().is_some_and(|m| m.ended_by_case);
                if matches!(stored.state, ConversationState::HandedOver { .. })
                    && !matches!(conv.state, ConversationState::HandedOver { .. })
                    && !ends_with_case
                {
                    conv.state = stored.state.clone();
                }
                // An email the visitor left in a message meanwhile.
                if let (Some(mine), Some(theirs)) = (conv.messenger.as_mut(), stored.messenger.as_ref())
                    && mine.visitor.email.is_none()
                {
                    mine.visitor.email = theirs.visitor.email.clone();
                    conv.customer_email = conv.customer_email.take().or(stored.customer_email.clone());
                }
                // A rating the visitor gave meanwhile stands (the daemon's copy is older), and
                // the chat stays due to write it; the same rating keeps the daemon's mark.
                let newer = match (&conv.csat, &stored.csat) {
                    (None, Some(_)) => true,
                    (Some(mine), Some(theirs)) => theirs.at > mine.at,
                    _ => false,
                };
                if newer {
                    conv.csat = stored.csat.clone();
                    conv.retry_at = match (conv.retry_at, stored.retry_at) {
                        (Some(mine), Some(theirs)) => Some(mine.min(theirs)),
                        (mine, theirs) => mine.or(theirs),
                    };
                }
                // The store's parts in its order (the visitor may have added some), then the
                // daemon's new ones.
                let known: std::collections::BTreeSet<&str> = stored.parts.iter().map(|p| p.id.as_str()).collect();
                let new: Vec<Part> = conv.parts.iter().filter(|p| !known.contains(p.id.as_str())).cloned().collect();
                conv.parts = stored.parts.clone();
                conv.parts.extend(new);
                conv.modstamp = conv.modstamp.max(stored.modstamp);
            }
            // Due while the agent owes an answer, or a message awaits forwarding to the case.
            // (The same tests the daemon's settling uses: a person's reply answers what came
            // before it in a chat the agent answers.)
            let waiting = match conv.state {
                ConversationState::Open => !conv.unanswered().is_empty(),
                ConversationState::HandedOver { .. } => {
                    conv.case_id().is_some() && !conv.unhandled_customer_parts().is_empty()
                }
                _ => false,
            };
            if waiting && conv.retry_at.is_none() {
                conv.retry_at = Some(Utc::now());
            }
            self.store.commit(&conv, actions)?;
            self.publish(&conv.id, &messages_of(&conv, before));
        }
        if conv.retry_at.is_some_and(|at| at <= Utc::now()) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Links a case a person made by hand to its conversation, with a note for the support
    /// team (not shown to the visitor): from then on the conversation is handed over to
    /// the case's owner, as after a handover (the AI stays quiet, replies flow both ways).
    pub fn link_case(&self, id: &str, case_id: &str, owner_id: &str, note: &str) -> Result<(), MessengerError> {
        let _write = lock(&self.writes);
        let mut conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
        let mut part = daemon_part(self.part_id("n")?, AuthorKind::Admin, Some("admin page".into()), note.to_string());
        part.public = false;
        conv.parts.push(part);
        if let Some(info) = conv.messenger.as_mut() {
            info.case = std::mem::take(&mut info.case).linked(case_id.to_string());
        }
        if conv.state != ConversationState::Closed {
            let reason = "a person made a case for it from the admin page".to_string();
            conv.state = ConversationState::HandedOver { target_id: owner_id.to_string(), reason };
        }
        self.store.commit(&conv, Vec::new())?;
        Ok(())
    }

    /// Queues a Lead a person asked for from the admin page, through the outbox with the
    /// conversation (so a crash never loses or doubles it): `lead` builds it from the
    /// conversation as stored, or says why there is none.
    pub fn queue_lead(
        &self,
        id: &str,
        lead: impl FnOnce(&Conversation) -> Result<crate::model::Action, String>,
    ) -> Result<Result<(), String>, MessengerError> {
        let _write = lock(&self.writes);
        let mut conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
        let action = match lead(&conv) {
            Ok(action) => action,
            Err(why) => return Ok(Err(why)),
        };
        if let Some(info) = conv.messenger.as_mut() {
            info.lead = crate::model::ChatLead::Made { task_pending: false };
        }
        // The store refuses a second Lead for one email (another chat made it first).
        match self.store.commit(&conv, vec![action]) {
            Err(StoreError::LeadClaimed { claimant }) => {
                return Ok(Err(format!("conversation {claimant} already made this visitor's Lead")));
            }
            other => other?,
        };
        Ok(Ok(()))
    }

    /// Ends every event stream (at shutdown).
    pub fn close_streams(&self) {
        lock(&self.streams).clear();
    }

    /// How many event streams are open.
    pub fn open_streams(&self) -> usize {
        lock(&self.streams).values().map(|s| s.receiver_count()).sum()
    }

    fn publish(&self, id: &str, messages: &[Message]) {
        if messages.is_empty() {
            return;
        }
        if messages.iter().any(|m| m.author != "visitor") {
            lock(&self.typing_until).remove(id);
        }
        let streams = lock(&self.streams);
        if let Some(sender) = streams.get(id) {
            for m in messages {
                let _ = sender.send(StreamEvent::Message(m.clone()));
            }
        }
    }

    /// Tells the conversation's open streams that the agent is working on an answer.
    pub fn typing(&self, id: &str) {
        let seconds = std::time::Duration::from_secs(TYPING_MAX_SECS);
        {
            let mut typing = lock(&self.typing_until);
            let now = std::time::Instant::now();
            typing.retain(|_, until| *until > now);
            typing.insert(id.to_string(), now + seconds);
        }
        if let Some(sender) = lock(&self.streams).get(id) {
            let _ = sender.send(StreamEvent::Typing { seconds: TYPING_MAX_SECS });
        }
    }

    fn authorise(&self, id: &str, token: Option<&str>) -> Result<(), MessengerError> {
        if !crate::model::is_messenger_id(id) || id.len() > 64 {
            return Err(MessengerError::NotFound);
        }
        let token = token.ok_or(MessengerError::NoToken)?;
        if !self.tokens.check(id, token) {
            return Err(MessengerError::BadToken);
        }
        Ok(())
    }

    fn checked_body(&self, text: &str) -> Result<String, MessengerError> {
        let max = self.settings.max_message_chars;
        if text.chars().count() > max {
            return Err(MessengerError::TooLong { max });
        }
        let body: String = text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
        let body = body.trim().to_string();
        if body.is_empty() {
            return Err(MessengerError::Empty);
        }
        Ok(body)
    }

    fn visitor(&self, request: &StartRequest) -> Result<Visitor, MessengerError> {
        let name = request.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.chars().count() > NAME_MAX_CHARS || n.chars().any(char::is_control)) {
            return Err(MessengerError::Invalid(format!("name: at most {NAME_MAX_CHARS} characters, one line")));
        }
        let email = request.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email
            && !is_email(e)
        {
            return Err(MessengerError::Invalid(format!("email: not an email address: {e:?}")));
        }
        let verified = match (email, request.user_hash.as_deref(), &self.settings.identity_secret) {
            (Some(e), Some(hash), Some(secret)) => {
                if !token::identity_verified(secret.expose().as_bytes(), e, hash) {
                    return Err(MessengerError::Identity);
                }
                true
            }
            (_, Some(_), None) => {
                return Err(MessengerError::Invalid("user_hash: this messenger has no identity secret".into()));
            }
            (None, Some(_), _) => return Err(MessengerError::Invalid("user_hash: given without an email".into())),
            _ => false,
        };
        Ok(Visitor { name: name.map(str::to_string), email: email.map(str::to_lowercase), verified })
    }

    fn part_id(&self, prefix: &str) -> Result<String, StoreError> {
        Ok(format!("{prefix}{}", self.store.new_id()?))
    }
}

/// A lock, even one a panicking holder poisoned (what it guards is committed or not at all).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

pub use crate::model::text::is_email;
pub use parts::{daemon_part, messages_of};
use parts::{left_email, new_conversation, random_suffix, subject_of, visitor_part};
