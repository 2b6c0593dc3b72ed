//! Plan: a decision becomes the actions that carry it out, in the order Salesforce should
//! see them — replies first (the agent user may lose access once the case changes owner),
//! then email, topics and fields, and the re-assignment last. Pure: the caller resolves the
//! handover's owner (an org lookup) beforehand.

use crate::act::email::new_message_id;
use crate::model::{
    Action, COMMENT_BODY_MAX_BYTES, Conversation, Decision, FEED_BODY_MAX_CHARS, OutgoingEmail, PartKind, ReplyChannel,
    split_reply,
};

/// Who a handover goes to, and the note left on the case.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoverTo {
    pub owner_id: String,
    pub note: String,
}

/// How replies are written.
#[derive(Debug, Clone, Copy)]
pub struct ReplySettings<'a> {
    pub channel: ReplyChannel,
    /// The sender of email replies (`smtp.from`), if SMTP is configured.
    pub email_from: Option<&'a str>,
}

/// The actions that carry out `decision` on `conv`'s case.
pub fn plan(
    conv: &Conversation,
    decision: &Decision,
    replies: ReplySettings<'_>,
    handover: Option<HandoverTo>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let case_id = conv.id.clone();
    if let Some(reply) = &decision.reply {
        let pieces = match replies.channel {
            ReplyChannel::Comment => split_reply(reply, COMMENT_BODY_MAX_BYTES),
            // Feed bodies are limited in characters; four bytes a character keeps it safe.
            ReplyChannel::Feed => split_reply(reply, FEED_BODY_MAX_CHARS),
        };
        for body in pieces {
            actions.push(Action::PostReply { case_id: case_id.clone(), body, channel: replies.channel });
        }
        if let (Some(email), Some(to)) = (&decision.email, &conv.customer_email) {
            let from = replies.email_from.unwrap_or_default().to_string();
            let domain = from.rsplit('@').next().unwrap_or("casebridge.local").trim_end_matches('>').to_string();
            let references: Vec<String> =
                conv.parts.iter().filter(|p| p.kind == PartKind::Email).filter_map(|p| p.message_id.clone()).collect();
            actions.push(Action::SendEmail {
                case_id: case_id.clone(),
                email: OutgoingEmail {
                    from,
                    to: to.clone(),
                    subject: email.subject.clone(),
                    text: email.text.clone(),
                    html: email.html.clone(),
                    message_id: new_message_id(&domain),
                    in_reply_to: conv.last_incoming_email().and_then(|p| p.message_id.clone()),
                    references,
                    smtp_accepted: false,
                },
            });
        }
    }
    let new_topics: Vec<String> = decision.topics.iter().filter(|t| !conv.topics.contains(*t)).cloned().collect();
    if !new_topics.is_empty() {
        actions.push(Action::AssignTopics { case_id: case_id.clone(), topics: new_topics });
    }
    if !decision.field_updates.is_empty() {
        actions.push(Action::UpdateFields { case_id: case_id.clone(), fields: decision.field_updates.clone() });
    }
    if let (Some(h), Some(to)) = (&decision.handover, handover) {
        actions.push(Action::InternalNote {
            case_id: case_id.clone(),
            body: format!("casebridge handed this case over (rule {}): {}", h.rule, to.note),
        });
        actions.push(Action::Reassign { case_id, owner_id: to.owner_id });
    }
    actions
}
