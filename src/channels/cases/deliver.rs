//! Delivering to the Salesforce Cases channel: which Salesforce records carry out each
//! action (a `CaseComment` for a reply, an `EmailMessage` recording an email sent, an update
//! of the `Case` for a new owner or mapped fields, `TopicAssignment`s for topics), and which
//! record a post leaves behind, so that a post sent before a crash can be found again.
//! The outbox executor (`act/executor.rs`) decides when and in which batch they go.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::json;

use crate::model::{Action, ReplyChannel};
use crate::salesforce::SubRequest;

/// The composite subrequests that carry out `action`; `reference` names them in the batch
/// (a suffix `_0`, `_1`, ... is added). Topics are looked up in `topic_ids` (lowercased
/// name → Topic id), so they must be resolved first; one not found is left out.
pub fn subrequests(reference: &str, action: &Action, topic_ids: &HashMap<String, String>) -> Vec<SubRequest> {
    let r = |n: usize| format!("{reference}_{n}");
    match action {
        Action::PostReply { case_id, body, channel: ReplyChannel::Comment } => vec![SubRequest::create(
            &r(0),
            "CaseComment",
            json!({ "ParentId": case_id, "CommentBody": body, "IsPublished": true }),
        )],
        Action::PostReply { case_id, body, channel: ReplyChannel::Feed } => vec![SubRequest::create(
            &r(0),
            "FeedItem",
            json!({ "ParentId": case_id, "Body": body, "Type": "TextPost", "Visibility": "AllUsers" }),
        )],
        Action::InternalNote { case_id, body } => vec![SubRequest::create(
            &r(0),
            "CaseComment",
            json!({ "ParentId": case_id, "CommentBody": body, "IsPublished": false }),
        )],
        Action::SendEmail { case_id, email } => vec![SubRequest::create(
            &r(0),
            "EmailMessage",
            json!({
                "ParentId": case_id,
                "Incoming": false,
                "Status": "3",
                "Subject": email.subject,
                "TextBody": email.text,
                "HtmlBody": email.html,
                "FromAddress": address_only(&email.from),
                "ToAddress": email.to,
                "MessageIdentifier": email.message_id,
                "MessageDate": Utc::now().to_rfc3339(),
            }),
        )],
        Action::Reassign { case_id, owner_id } => {
            vec![SubRequest::update(&r(0), "Case", case_id, json!({ "OwnerId": owner_id }))]
        }
        Action::UpdateFields { case_id, fields } => {
            if fields.is_empty() {
                return Vec::new();
            }
            vec![SubRequest::update(&r(0), "Case", case_id, json!(fields))]
        }
        Action::UpsertRecord { conversation_id, object, key_field, fields, key, update_only } => vec![SubRequest {
            method: "PATCH".into(),
            url: format!(
                "sobjects/{object}/{key_field}/{}{}",
                url_segment(key.as_deref().unwrap_or(conversation_id)),
                if *update_only { "?updateOnly=true" } else { "" }
            ),
            reference_id: r(0),
            body: Some(json!(fields)),
            http_headers: Default::default(),
        }],
        Action::AssignTopics { case_id, topics } => topics
            .iter()
            .filter_map(|t| topic_ids.get(&t.to_lowercase()))
            .enumerate()
            .map(|(n, topic_id)| {
                SubRequest::create(&r(n), "TopicAssignment", json!({ "TopicId": topic_id, "EntityId": case_id }))
            })
            .collect(),
    }
}

/// The record a post leaves on the case, as (sObject, body field), for posts that are not
/// idempotent (a reply or a note posted twice is seen twice); `None` for every other action.
pub fn post_record(action: &Action) -> Option<(&'static str, &'static str)> {
    match action {
        Action::PostReply { channel: ReplyChannel::Comment, .. } | Action::InternalNote { .. } => {
            Some(("CaseComment", "CommentBody"))
        }
        // Read back through the case's feed: FeedItem itself answers only a query by Id to a
        // user without View All Data.
        Action::PostReply { channel: ReplyChannel::Feed, .. } => Some(("CaseFeed", "Body")),
        _ => None,
    }
}

/// A value as one URL path segment: unreserved characters, `:` and `@` as they are, every
/// other byte percent-encoded.
fn url_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Acme Support <support@acme.example>` → `support@acme.example`.
pub fn address_only(mailbox: &str) -> String {
    match (mailbox.find('<'), mailbox.find('>')) {
        (Some(s), Some(e)) if e > s => mailbox[s + 1..e].to_string(),
        _ => mailbox.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_becomes_the_records_that_carry_it_out() {
        let reply = Action::PostReply { case_id: "500A".into(), body: "Hi".into(), channel: ReplyChannel::Comment };
        let [sub] = subrequests("e7", &reply, &HashMap::new()).try_into().unwrap();
        assert_eq!(
            (sub.method.as_str(), sub.url.as_str(), sub.reference_id.as_str()),
            ("POST", "sobjects/CaseComment", "e7_0")
        );
        assert_eq!(sub.body.unwrap()["IsPublished"], true);
        assert_eq!(post_record(&reply), Some(("CaseComment", "CommentBody")));

        let topics = Action::AssignTopics { case_id: "500A".into(), topics: vec!["Billing".into(), "Unknown".into()] };
        let ids = HashMap::from([("billing".to_string(), "0TO1".to_string())]);
        let subs = subrequests("e8", &topics, &ids);
        assert_eq!(subs.len(), 1, "a topic not resolved is left out");
        assert_eq!(post_record(&topics), None);

        let nothing = Action::UpdateFields { case_id: "500A".into(), fields: Default::default() };
        assert!(subrequests("e9", &nothing, &HashMap::new()).is_empty());
    }

    #[test]
    fn a_mailbox_gives_its_address() {
        assert_eq!(address_only("Acme Support <support@acme.example>"), "support@acme.example");
        assert_eq!(address_only(" support@acme.example "), "support@acme.example");
        assert_eq!(address_only("broken > <"), "broken > <");
    }
}
