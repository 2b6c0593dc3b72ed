//! The parts of a messenger conversation as the hub writes and shows them: the visitor's
//! and the daemon's messages, a new conversation, its case's subject, the messages as the
//! widget reads them, and the random ids nobody guesses.

use chrono::{DateTime, Utc};

use super::Message;
use crate::model::{AuthorKind, Channel, Conversation, MessengerInfo, Part, PartKind, Visitor};

/// A visitor who gave no email but writes one in a message has left it (unverified).
pub(super) fn left_email(conv: &mut Conversation, body: &str) {
    let Some(info) = conv.messenger.as_mut() else { return };
    if info.visitor.email.is_none()
        && let Some(email) = super::matching::email_in(body)
    {
        info.visitor.email = Some(email.clone());
        conv.customer_email = Some(email);
    }
}

/// A part the daemon writes into a messenger conversation (the agent's reply, a notice, a
/// person's reply from the case).
pub fn daemon_part(id: String, author: AuthorKind, name: Option<String>, body: String) -> Part {
    Part { author_name: name, ..Part::new(id, PartKind::Chat, author, body, Utc::now()) }
}

pub(super) fn visitor_part(id: String, body: String, at: DateTime<Utc>) -> Part {
    Part::new(id, PartKind::Chat, AuthorKind::User, body, at)
}

pub(super) fn new_conversation(id: &str, visitor: Visitor, now: DateTime<Utc>) -> Conversation {
    let mut conv = Conversation::from_question("");
    conv.channel = Channel::Messenger;
    conv.id = id.to_string();
    conv.parts.clear();
    conv.origin = Some("Messenger".into());
    conv.customer_email = visitor.email.clone();
    conv.contact = None;
    conv.created_at = now;
    conv.modstamp = now;
    conv.messenger = Some(MessengerInfo { visitor, ..MessengerInfo::default() });
    conv
}

/// The subject a conversation's case gets: the first line of the first message.
pub(super) fn subject_of(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default();
    if line.chars().count() > 80 { format!("{}…", line.chars().take(80).collect::<String>()) } else { line.into() }
}

/// The public messages of `conv` past `after`, as the widget shows them.
pub fn messages_of(conv: &Conversation, after: usize) -> Vec<Message> {
    conv.parts
        .iter()
        .enumerate()
        .skip(after)
        .filter(|(_, p)| p.public)
        .map(|(i, p)| Message {
            seq: i + 1,
            author: match p.author {
                AuthorKind::User => "visitor",
                AuthorKind::Bot => "agent",
                AuthorKind::Admin => "human",
            },
            name: if p.author == AuthorKind::User { None } else { p.author_name.clone() },
            body: p.body.clone(),
            created_at: p.created_at,
            suggestions: p.suggestions.clone(),
            sources: p.sources.clone(),
            asks_rating: p.asks_rating && conv.csat.is_none(),
            asks_email: p.asks_email && conv.messenger.as_ref().is_some_and(|m| m.visitor.email.is_none()),
        })
        .collect()
}

/// 26 characters of a 128-bit random number (lowercase base32): ids nobody guesses.
pub(super) fn random_suffix() -> String {
    const DIGITS: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut n: u128 = rand::random();
    (0..26)
        .map(|_| {
            let d = DIGITS[(n & 31) as usize] as char;
            n >>= 5;
            d
        })
        .collect()
}
