//! Actions: the effects a decision has on the outside world (a comment, an email, an owner
//! change, topics, field updates), kept in the outbox until Salesforce (or the SMTP server)
//! confirms them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Where public replies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyChannel {
    /// A public `CaseComment` (the default).
    #[default]
    Comment,
    /// A `FeedItem` text post on the case.
    Feed,
}

/// An email to the customer, and its record on the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingEmail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Our Message-ID, also stored as the `EmailMessage.MessageIdentifier`.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Set once the SMTP server accepted the message, so a retry only records it.
    #[serde(default)]
    pub smtp_accepted: bool,
}

/// One effect on the outside world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A public reply as the agent user.
    PostReply { case_id: String, body: String, channel: ReplyChannel },
    /// An internal (non-public) comment, such as why a case was handed over.
    InternalNote { case_id: String, body: String },
    /// An email to the customer, then an outgoing `EmailMessage` on the case.
    SendEmail { case_id: String, email: OutgoingEmail },
    /// A new owner: a user or a queue.
    Reassign { case_id: String, owner_id: String },
    /// Topics, created if missing, assigned to the case.
    AssignTopics { case_id: String, topics: Vec<String> },
    /// Mapped fields written back to the case.
    UpdateFields { case_id: String, fields: BTreeMap<String, Json> },
    /// A record made for a conversation (a messenger chat's case on handover): upserted by
    /// the External ID field `key_field` holding the conversation's id, so a resend after a
    /// crash updates the record it made instead of making a second.
    UpsertRecord {
        conversation_id: String,
        object: String,
        key_field: String,
        fields: BTreeMap<String, Json>,
        /// The External ID value when it is not the conversation's id (one Task a lead:
        /// `{conversation}:{lead}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// Only update a record that exists (`updateOnly=true`): later writes to a record
        /// made earlier, which must neither make a new one nor need what a create needs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        update_only: bool,
    },
}

impl Action {
    /// The record the action is about: the case, or for a record made for a conversation,
    /// the conversation (sync errors and logs name it).
    pub fn case_id(&self) -> &str {
        match self {
            Action::UpsertRecord { conversation_id, .. } => conversation_id,
            Action::PostReply { case_id, .. }
            | Action::InternalNote { case_id, .. }
            | Action::SendEmail { case_id, .. }
            | Action::Reassign { case_id, .. }
            | Action::AssignTopics { case_id, .. }
            | Action::UpdateFields { case_id, .. } => case_id,
        }
    }

    /// The record an upsert writes, by object and external key (a chat's case, Lead, Task):
    /// writes to one such record go one at a time, in order.
    pub fn upserted_record(&self) -> Option<(&str, &str)> {
        match self {
            Action::UpsertRecord { object, conversation_id, key, .. } => {
                Some((object.as_str(), key.as_deref().unwrap_or(conversation_id)))
            }
            _ => None,
        }
    }

    /// For posts that are not idempotent (replies, notes): a key naming the case and the
    /// exact body, under which the store counts confirmed posts. Two identical replies on
    /// one case (a customer asking the same thing twice) share a key, and the count tells
    /// them apart when an in-flight post is verified after a crash.
    pub fn confirmation_key(&self) -> Option<String> {
        let (case_id, kind, body) = match self {
            Action::PostReply { case_id, body, channel } => (case_id, format!("{channel:?}"), body),
            Action::InternalNote { case_id, body } => (case_id, "note".to_string(), body),
            _ => return None,
        };
        // FNV-1a: stable across builds, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in kind.bytes().chain([0]).chain(body.bytes()) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Some(format!("{case_id}:{hash:016x}"))
    }

    /// The name used in logs, metrics and sync errors.
    pub fn operation(&self) -> &'static str {
        match self {
            Action::PostReply { .. } => "post_reply",
            Action::InternalNote { .. } => "internal_note",
            Action::SendEmail { .. } => "send_email",
            Action::Reassign { .. } => "reassign",
            Action::AssignTopics { .. } => "assign_topics",
            Action::UpdateFields { .. } => "update_fields",
            Action::UpsertRecord { object, .. } if object == "Case" => "create_case",
            Action::UpsertRecord { object, .. } if object == "Lead" => "create_lead",
            Action::UpsertRecord { object, .. } if object == "Task" => "log_task",
            Action::UpsertRecord { .. } => "upsert_record",
        }
    }
}

/// The most a `CaseComment.CommentBody` holds, in bytes.
pub const COMMENT_BODY_MAX_BYTES: usize = 4_000;
/// The most a `FeedItem.Body` holds, in characters.
pub const FEED_BODY_MAX_CHARS: usize = 10_000;

/// Splits a reply into pieces that fit `max_bytes`, at paragraph, then line, then sentence,
/// then word boundaries; pieces after the first are marked "(continued)" so the customer can
/// follow. Text that fits is returned whole.
pub fn split_reply(text: &str, max_bytes: usize) -> Vec<String> {
    const MARK: &str = "(continued)\n";
    if text.len() <= max_bytes {
        return vec![text.to_string()];
    }
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let budget = if pieces.is_empty() { max_bytes } else { max_bytes - MARK.len() };
        let cut = if rest.len() <= budget { rest.len() } else { best_cut(rest, budget) };
        let (head, tail) = rest.split_at(cut);
        let head = head.trim_end();
        pieces.push(if pieces.is_empty() { head.to_string() } else { format!("{MARK}{head}") });
        rest = tail.trim_start();
    }
    pieces
}

/// The byte index at which to cut `text` so the head fits `budget` bytes.
fn best_cut(text: &str, budget: usize) -> usize {
    let mut limit = budget.min(text.len());
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    let window = &text[..limit];
    // Prefer a boundary in the second half of the window, so pieces are not tiny.
    for sep in ["\n\n", "\n", ". ", " "] {
        if let Some(i) = window.rfind(sep)
            && i >= limit / 2
        {
            return i + sep.len();
        }
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_replies_stay_whole() {
        assert_eq!(split_reply("hello", 4000), ["hello"]);
    }

    #[test]
    fn long_replies_split_at_paragraphs_within_the_byte_limit() {
        let para = "é".repeat(900); // 1,800 bytes
        let text = [para.as_str(); 5].join("\n\n");
        let pieces = split_reply(&text, COMMENT_BODY_MAX_BYTES);
        assert!(pieces.len() >= 3, "{}", pieces.len());
        for p in &pieces {
            assert!(p.len() <= COMMENT_BODY_MAX_BYTES, "{}", p.len());
        }
        assert!(pieces[1].starts_with("(continued)"));
        let rejoined: String =
            pieces.iter().map(|p| p.trim_start_matches("(continued)\n")).collect::<Vec<_>>().join("");
        assert_eq!(rejoined.chars().filter(|c| *c == 'é').count(), 4500, "nothing is lost");
    }

    #[test]
    fn a_single_huge_word_is_cut_on_a_char_boundary() {
        let text = "ü".repeat(5000);
        let pieces = split_reply(&text, 4000);
        assert!(pieces.iter().all(|p| p.len() <= 4000));
        assert_eq!(pieces.iter().map(|p| p.matches('ü').count()).sum::<usize>(), 5000);
    }
}
