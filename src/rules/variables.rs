//! What rules see of a conversation: the Rhai scope of expressions, the map hooks receive,
//! and the data templates render from. Each is built once a decision and brought up to date
//! only where a stage changed it (the attributes, topics and the agent's answer), since
//! building them from the case row is most of a decision's cost otherwise.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use rhai::{Dynamic, Scope};
use serde_json::{Value as Json, json};

use crate::model::{AgentAnswer, Conversation};

/// The conversation as a decision's stages see it: as stored, with the attributes and
/// topics decided so far in place of its own.
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
}

/// A JSON value as Rhai sees it: objects become maps, whole numbers `INT`, the rest `FLOAT`.
/// Direct, without serde's visitor (the case row is converted once a decision).
pub fn to_dynamic(value: &Json) -> Dynamic {
    match value {
        Json::Null => Dynamic::UNIT,
        Json::Bool(b) => Dynamic::from_bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => text(s),
        Json::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic).collect()),
        Json::Object(map) => Dynamic::from_map(map.iter().map(|(k, v)| (k.as_str().into(), to_dynamic(v))).collect()),
    }
}

fn text(s: &str) -> Dynamic {
    Dynamic::from(rhai::ImmutableString::from(s))
}

fn map_to_dynamic(map: &BTreeMap<String, Json>) -> Dynamic {
    Dynamic::from_map(map.iter().map(|(k, v)| (k.as_str().into(), to_dynamic(v))).collect())
}

/// What `agent` holds in expressions: whether it answered, its confidence and its text.
pub fn agent_map(answer: Option<&AgentAnswer>) -> Dynamic {
    let mut map = rhai::Map::new();
    map.insert("answered".into(), Dynamic::from_bool(answer.is_some_and(|a| a.text.is_some())));
    map.insert("confidence".into(), Dynamic::from_float(answer.map_or(0.0, |a| a.confidence)));
    let text = answer.and_then(|a| a.text.as_deref()).unwrap_or_default();
    map.insert("text".into(), self::text(text));
    Dynamic::from_map(map)
}

/// The scope of rule expressions (names in [`super::VARIABLES`]), all constants: the case's
/// own values first, built once, then the ones the stages change, in the order they
/// change (so that a change rebuilds only what comes after it).
pub struct Variables {
    scope: Scope<'static>,
    /// Where `attributes`, `topics` and `agent` are in the scope.
    attributes_at: usize,
}

/// What a stage changed, and so what the scope rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Changed {
    Attributes,
    Topics,
    Answer,
}

impl Variables {
    /// The scope for `view`.
    pub fn new(view: View, answer: Option<&Dynamic>) -> Variables {
        let conversation = view.conversation;
        let mut scope = Scope::new();
        scope.push_constant("channel", rhai::ImmutableString::from(conversation.channel.as_str()));
        scope.push_constant_dynamic("fields", map_to_dynamic(&conversation.case_fields));
        let last = conversation.last_customer_message().map(|p| p.body.as_str()).unwrap_or_default();
        scope.push_constant("last_message", rhai::ImmutableString::from(last));
        scope.push_constant("turns", conversation.customer_turns() as rhai::INT);
        scope.push_constant("replies", conversation.replies_sent as rhai::INT);
        let hours = (Utc::now() - conversation.created_at).num_minutes() as rhai::FLOAT / 60.0;
        scope.push_constant("hours_open", hours);
        scope.push_constant("origin", rhai::ImmutableString::from(conversation.origin.as_deref().unwrap_or_default()));
        scope.push_constant("subject", rhai::ImmutableString::from(conversation.subject.as_str()));
        scope.push_constant_dynamic("value", Dynamic::UNIT);
        let attributes_at = scope.len();
        let mut variables = Variables { scope, attributes_at };
        variables.update(Changed::Attributes, view, answer);
        variables
    }

    /// Rebuilds what changed and what comes after it: attributes, topics, the agent's answer.
    pub fn update(&mut self, changed: Changed, view: View, answer: Option<&Dynamic>) {
        self.scope.rewind(self.attributes_at + changed as usize);
        if changed <= Changed::Attributes {
            self.scope.push_constant_dynamic("attributes", map_to_dynamic(view.attributes));
        }
        if changed <= Changed::Topics {
            let topics: rhai::Array = view.topics.iter().map(|t| text(t)).collect();
            self.scope.push_constant_dynamic("topics", Dynamic::from_array(topics));
        }
        let agent = answer.cloned().unwrap_or_else(|| agent_map(None));
        self.scope.push_constant_dynamic("agent", agent);
    }

    pub fn scope(&mut self) -> &mut Scope<'static> {
        &mut self.scope
    }
}

/// What hooks receive as `conversation`.
pub fn hook_view(view: View) -> Dynamic {
    let conversation = view.conversation;
    let parts: Vec<Json> = conversation
        .parts
        .iter()
        .map(|p| json!({ "author": p.author, "kind": p.kind, "body": p.body, "public": p.public, "created_at": p.created_at }))
        .collect();
    let view = json!({
        "channel": conversation.channel,
        "case_id": conversation.case_id,
        "case_number": conversation.case_number,
        "subject": conversation.subject,
        "origin": conversation.origin,
        "status": conversation.status,
        "fields": conversation.case_fields,
        "attributes": view.attributes,
        "topics": view.topics,
        "parts": parts,
        "last_message": conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default(),
        "turns": conversation.customer_turns(),
        "replies": conversation.replies_sent,
    });
    to_dynamic(&view)
}

/// What email templates and reasons see.
pub fn template_context(conversation: &Conversation, reply: Option<&str>) -> Json {
    context_of(View::of(conversation), reply)
}

/// What email templates and reasons see of `view`.
pub fn context_of(view: View, reply: Option<&str>) -> Json {
    let conversation = view.conversation;
    let contact_name = conversation.contact.as_ref().and_then(|c| c.name.clone()).unwrap_or_default();
    let first_name = contact_name.split_whitespace().next().unwrap_or("there").to_string();
    let mut context = json!({
        "channel": conversation.channel,
        "case": {
            "id": conversation.case_id,
            "number": conversation.case_number,
            "subject": conversation.subject,
            "status": conversation.status,
            "origin": conversation.origin,
            "fields": conversation.case_fields,
        },
        "contact": {
            "name": if contact_name.is_empty() { "there".to_string() } else { contact_name.clone() },
            "first_name": first_name,
            "email": conversation.customer_email,
        },
        "account": { "name": conversation.account.as_ref().and_then(|a| a.name.clone()) },
        "attributes": view.attributes,
        "topics": view.topics,
        "conversation": {
            "turns": conversation.customer_turns(),
            "replies": conversation.replies_sent,
            "last_message": conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default(),
        },
    });
    set_reply(&mut context, reply);
    context
}

/// Puts `reply` (and its HTML paragraphs) into a template context.
pub fn set_reply(context: &mut Json, reply: Option<&str>) {
    let reply = reply.unwrap_or_default();
    if reply.is_empty() && context["reply"] == "" {
        return;
    }
    let reply_html: String = reply
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", html_escape(p).replace('\n', "<br>")))
        .collect::<Vec<_>>()
        .join("\n");
    context["reply"] = Json::String(reply.to_string());
    context["reply_html"] = Json::String(reply_html);
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Reads a field path (`Account.Name`) from the case row.
pub fn field_at<'a>(fields: &'a BTreeMap<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.split('.');
    let mut current = fields.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_the_same_dynamic_as_through_serde() {
        let value = json!({ "a": [1, 2.5, "x", null, true], "b": { "c": -3 } });
        let direct = to_dynamic(&value);
        let serde = rhai::serde::to_dynamic(&value).unwrap();
        assert_eq!(direct.to_string(), serde.to_string());
        let back: Json = rhai::serde::from_dynamic(&direct).unwrap();
        assert_eq!(back["a"], value["a"]);
        assert_eq!(back["b"]["c"], -3);
    }
}
