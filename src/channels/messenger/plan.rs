//! What a decision does to a messenger conversation. The agent's reply is a message in the
//! chat (written into the conversation, no outbox: the visitor reads it from the store). A
//! handover tells the visitor and makes the Salesforce Case, as does a `kind: cases` rule:
//! upserted by the conversation's id in `Casebridge_Conversation__c`, so a resend after a
//! crash never makes a second case, owned by the handover target (or the rule's owner), with
//! the transcript in `Description` (or the field the rule or `messenger.transcript_field`
//! names). While a handed-over case is open, the visitor's new messages are added to it as
//! comments; when the conversation closes, its rule's fields are written again.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::{MessengerSettings, daemon_part};
use crate::model::{
    Action, AuthorKind, COMMENT_BODY_MAX_BYTES, CaseRecord, Conversation, Decision, Part, ReplyChannel, split_reply,
};

/// The External ID field on Case that holds the messenger conversation's id.
pub const CONVERSATION_FIELD: &str = "Casebridge_Conversation__c";
/// A Case `Description` holds 32,000 characters; the transcript keeps the latest that fit.
pub const DESCRIPTION_MAX_CHARS: usize = 32_000;
/// A Case `Subject` holds 255 characters.
const SUBJECT_MAX_CHARS: usize = 255;
/// The name the agent's messages carry in the chat.
pub const AGENT_NAME: &str = "AI agent";

/// The case a decision makes or writes again, as the daemon resolved it: the handover
/// target (or the `kind: cases` rule's owner), the record type's id, the transcript field
/// and the mapped fields.
#[derive(Debug, Clone, Default)]
pub struct CasePlan {
    /// The owner to give the case: on its creation and on handover; `None` when a rule
    /// writes a case made before (a person may have taken it meanwhile).
    pub owner_id: Option<String>,
    pub record_type_id: Option<String>,
    pub transcript_field: String,
    /// The most characters the transcript field holds (32,000, or less as described).
    pub transcript_max_chars: usize,
    pub fields: BTreeMap<String, Json>,
    /// The `Status` that reopens a closed case.
    pub reopen_status: Option<String>,
    /// The `kind: cases` rule that fired, when one did.
    pub rule: Option<String>,
    /// The case was queued before: this write only updates it.
    pub update_only: bool,
}

/// Carries out `decision` on a messenger conversation: its reply (and, on handover, the
/// notice) become messages in `conv`; the returned actions make the case `case` describes.
/// `new_id` makes part ids.
pub fn plan(
    conv: &mut Conversation,
    decision: &Decision,
    case: Option<CasePlan>,
    settings: &MessengerSettings,
    mut new_id: impl FnMut() -> String,
) -> Vec<Action> {
    if let Some(reply) = &decision.reply {
        let mut part = daemon_part(new_id(), AuthorKind::Bot, Some(AGENT_NAME.into()), reply.clone());
        part.suggestions = decision.agent.as_ref().map(|a| a.suggestions.clone()).unwrap_or_default();
        if part.suggestions.is_empty() {
            part.sources = decision.agent.as_ref().map(|a| a.sources.clone()).unwrap_or_default();
        }
        part.asks_rating = decision.asks_rating;
        conv.parts.push(part);
    }
    if decision.handover.is_some() {
        let notice = match &settings.office_hours {
            Some(hours) => {
                let expect =
                    hours.expectation(chrono::Utc::now(), &settings.reply_time_message, &settings.away_message);
                format!("{} {expect}", settings.handover_message)
            }
            None => settings.handover_message.clone(),
        };
        let mut part = daemon_part(new_id(), AuthorKind::Bot, Some(AGENT_NAME.into()), notice);
        // An anonymous visitor is asked how to reach them if they leave before the reply.
        part.asks_email = conv.messenger.as_ref().is_some_and(|m| m.visitor.email.is_none());
        conv.parts.push(part);
    }
    case.map(|case| vec![upsert_case(conv, case, settings)]).unwrap_or_default()
}

/// The case a conversation becomes (or, when it has one, its new values): upserted by the
/// conversation's id.
fn upsert_case(conv: &Conversation, case: CasePlan, settings: &MessengerSettings) -> Action {
    let visitor = conv.messenger.as_ref().map(|m| m.visitor.clone()).unwrap_or_default();
    let mut fields = BTreeMap::new();
    // What a new case starts with; a case made before keeps what people changed since.
    if !case.update_only {
        let subject: String = conv.subject.chars().take(SUBJECT_MAX_CHARS).collect();
        fields.insert("Subject".into(), json!(subject));
        fields.insert("Origin".into(), json!(settings.case_origin));
        if let Some(name) = &visitor.name {
            fields.insert("SuppliedName".into(), json!(name.chars().take(80).collect::<String>()));
        }
        if let Some(email) = &visitor.email {
            fields.insert("SuppliedEmail".into(), json!(email));
        }
    }
    // The admin's mapped fields over those defaults; owner, record type and transcript are
    // the rule's own settings.
    fields.extend(case.fields);
    fields.insert(case.transcript_field, json!(transcript(conv, case.transcript_max_chars)));
    // A case Salesforce has keeps its record type.
    match case.record_type_id.filter(|_| !case.update_only) {
        Some(id) => fields.insert("RecordTypeId".into(), json!(id)),
        None => fields.remove("RecordTypeId"),
    };
    if let Some(owner) = case.owner_id {
        fields.insert("OwnerId".into(), json!(owner));
    }
    if let Some(status) = case.reopen_status {
        fields.insert("Status".into(), json!(status));
    }
    by_conversation(conv, "Case", fields, case.update_only)
}

/// A write to the `object` record made for `conv`, upserted by the conversation's id in
/// `Casebridge_Conversation__c` (`update_only`: one made before, never a new one).
pub fn by_conversation(conv: &Conversation, object: &str, fields: BTreeMap<String, Json>, update_only: bool) -> Action {
    Action::UpsertRecord {
        conversation_id: conv.id.clone(),
        object: object.into(),
        key_field: CONVERSATION_FIELD.into(),
        fields,
        key: None,
        update_only,
    }
}

/// A later write to the visitor's Lead (`None` before one was queued): upserted, update
/// only, by the Lead's key, which an earlier chat with the same email may hold.
pub fn lead_update(conv: &Conversation, fields: BTreeMap<String, Json>) -> Option<Action> {
    let key = conv.lead_key()?;
    let mut action = by_conversation(conv, "Lead", fields, true);
    if let Action::UpsertRecord { key: k, .. } = &mut action
        && key != conv.id
    {
        *k = Some(key.to_string());
    }
    Some(action)
}

/// What the conversation's closing writes to its case: a `kind: cases` rule's mapped fields
/// again, the transcript, and the closed status when the rule closes the case with the
/// conversation (and the case is still open). An update by the conversation's id, so it
/// needs no case id and follows the create in the outbox.
pub fn close_case(conv: &Conversation, record: &CaseRecord, case_open: bool, transcript_max_chars: usize) -> Action {
    let mut fields = record.fields.clone();
    fields.insert(record.transcript_field.clone(), json!(transcript(conv, transcript_max_chars)));
    if let Some(status) = record.close_status.as_ref().filter(|_| case_open) {
        fields.insert("Status".into(), json!(status));
    }
    by_conversation(conv, "Case", fields, true)
}

/// The visitor's messages as comments on the conversation's case, in order.
pub fn forward(conv: &Conversation, case_id: &str, parts: &[&Part]) -> Vec<Action> {
    let who = conv.messenger.as_ref().and_then(|m| m.visitor.name.clone()).unwrap_or_else(|| "The visitor".into());
    parts
        .iter()
        .flat_map(|p| split_reply(&format!("{who} wrote in the messenger:\n\n{}", p.body), COMMENT_BODY_MAX_BYTES))
        .map(|body| Action::PostReply { case_id: case_id.to_string(), body, channel: ReplyChannel::Comment })
        .collect()
}

/// The conversation as text, oldest first; when it is longer than `max_chars`, the oldest
/// messages give way (the latest matter most to the person picking it up).
pub fn transcript(conv: &Conversation, max_chars: usize) -> String {
    const CUT: &str = "(earlier messages left out)\n\n";
    let visitor = conv.messenger.as_ref().and_then(|m| m.visitor.name.clone()).unwrap_or_else(|| "Visitor".into());
    let lines: Vec<String> = conv
        .parts
        .iter()
        .filter(|p| p.public)
        .map(|p| {
            let who = match p.author {
                AuthorKind::User => visitor.clone(),
                _ => p.author_name.clone().unwrap_or_else(|| "Support".into()),
            };
            format!("{who} ({}):\n{}\n", p.created_at.format("%Y-%m-%d %H:%M UTC"), p.body)
        })
        .collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut used = 0;
    for line in lines.iter().rev() {
        let n = line.chars().count() + 1;
        if used + n + CUT.len() > max_chars {
            break;
        }
        used += n;
        kept.push(line);
    }
    kept.reverse();
    let text = kept.join("\n");
    if kept.len() < lines.len() {
        if kept.is_empty() {
            // One message longer than the whole field: its end.
            let last = lines.last().map(String::as_str).unwrap_or_default();
            let tail: String =
                last.chars().rev().take(max_chars - CUT.len()).collect::<Vec<_>>().into_iter().rev().collect();
            return format!("{CUT}{tail}");
        }
        return format!("{CUT}{text}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, MessengerInfo, PartKind};

    fn chat(messages: &[(&str, AuthorKind)]) -> Conversation {
        let mut c = Conversation::from_question("");
        c.channel = Channel::Messenger;
        c.id = "msg_x".into();
        c.subject = "Where is my order?".into();
        c.messenger = Some(MessengerInfo::default());
        c.parts = messages
            .iter()
            .enumerate()
            .map(|(i, (body, author))| {
                Part::new(format!("p{i}"), PartKind::Chat, *author, body.to_string(), chrono::Utc::now())
            })
            .collect();
        c
    }

    #[test]
    fn a_long_transcript_keeps_the_latest_messages_within_the_field() {
        let long = "x".repeat(10_000);
        let bodies: Vec<(&str, AuthorKind)> = (0..6).map(|_| (long.as_str(), AuthorKind::User)).collect();
        let mut c = chat(&bodies);
        c.parts.last_mut().unwrap().body = "the last one".into();
        let t = transcript(&c, DESCRIPTION_MAX_CHARS);
        assert!(t.chars().count() <= DESCRIPTION_MAX_CHARS, "{}", t.chars().count());
        assert!(t.starts_with("(earlier messages left out)"));
        assert!(t.trim_end().ends_with("the last one"));
        let huge = "y".repeat(50_000);
        let t = transcript(&chat(&[(huge.as_str(), AuthorKind::User)]), DESCRIPTION_MAX_CHARS);
        assert!(t.chars().count() <= DESCRIPTION_MAX_CHARS);
    }

    #[test]
    fn a_visitors_long_message_is_forwarded_in_comments_that_fit() {
        let c = chat(&[(&"z".repeat(9_000), AuthorKind::User)]);
        let parts: Vec<&Part> = c.parts.iter().collect();
        let actions = forward(&c, "500A", &parts);
        assert!(actions.len() >= 3);
        for a in &actions {
            let Action::PostReply { body, .. } = a else { panic!() };
            assert!(body.len() <= COMMENT_BODY_MAX_BYTES);
        }
    }
}
