//! What rules see of a conversation: the Rhai scope of expressions, the map hooks receive,
//! and the data templates render from. Each is built once a decision and brought up to date
//! only where a stage changed it (the attributes, topics and the agent's answer), since
//! building them from the case row is most of a decision's cost otherwise.

use std::collections::BTreeMap;

use chrono::Utc;
use rhai::{Dynamic, Scope};
use serde_json::{Value as Json, json};

pub use crate::model::View;
use crate::model::{AgentAnswer, Conversation};

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
/// own values, built once, then the ones the stages change. A change pushes the new value
/// after the old one, which it shadows (names are looked up from the end), so that
/// changing one rebuilds nothing else.
pub struct Variables {
    scope: Scope<'static>,
}

/// What a stage changed, and so what the scope pushes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        let resolution = conversation.resolution.map_or("", |r| r.state.as_str());
        scope.push_constant("resolution", rhai::ImmutableString::from(resolution));
        scope.push_constant("ai_involved", conversation.ai_involved);
        // Without office hours the team counts as in: rules written for them still read well.
        scope.push_constant("team_in", conversation.team_in.unwrap_or(true));
        scope.push_constant("csat", conversation.csat.as_ref().map_or(0, |c| rhai::INT::from(c.rating)));
        scope.push_constant_dynamic("suggested", to_dynamic(&json!(suggested_titles(conversation))));
        scope.push_constant_dynamic("visitor", to_dynamic(&visitor_map(conversation)));
        let mut variables = Variables { scope };
        for changed in [Changed::Attributes, Changed::Topics, Changed::Answer] {
            variables.update(changed, view, answer);
        }
        variables
    }

    /// Pushes the new value of what changed, shadowing the old one.
    pub fn update(&mut self, changed: Changed, view: View, answer: Option<&Dynamic>) {
        match changed {
            Changed::Attributes => self.scope.push_constant_dynamic("attributes", map_to_dynamic(view.attributes)),
            Changed::Topics => {
                let topics: rhai::Array = view.topics.iter().map(|t| text(t)).collect();
                self.scope.push_constant_dynamic("topics", Dynamic::from_array(topics))
            }
            Changed::Answer => {
                let agent = answer.cloned().unwrap_or_else(|| agent_map(None));
                self.scope.push_constant_dynamic("agent", agent)
            }
        };
    }

    pub fn scope(&mut self) -> &mut Scope<'static> {
        &mut self.scope
    }
}

/// What rules read as `visitor`: a messenger visitor's name and email, whether the website
/// verified it, who it is in Salesforce (`kind`: `user`, `lead`, `visitor`, or empty until
/// matched) and, for a verified user, their contact and account. Empty for cases.
pub fn visitor_map(conversation: &Conversation) -> Json {
    let Some(info) = &conversation.messenger else { return json!({}) };
    let v = &info.visitor;
    let mut map = json!({
        "name": v.name, "email": v.email, "verified": v.verified,
        "kind": info.person.as_ref().map_or("", |p| p.kind()),
    });
    if v.verified
        && let Some(crate::model::SalesforcePerson::User { contact_id, account_id, account_name, .. }) = &info.person
    {
        map["contact_id"] = json!(contact_id);
        map["account_id"] = json!(account_id);
        map["account_name"] = json!(account_name);
    }
    map
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
        "id": conversation.id,
        "case_id": conversation.case_id(),
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
        "resolution": conversation.resolution.map_or("", |r| r.state.as_str()),
        "ai_involved": conversation.ai_involved,
        "team_in": conversation.team_in.unwrap_or(true),
        "csat": conversation.csat.as_ref().map_or(0, |c| c.rating),
        "suggested": suggested_titles(conversation),
        "visitor": visitor_map(conversation),
    });
    to_dynamic(&view)
}

/// What email templates and reasons see.
pub fn template_context(conversation: &Conversation, reply: Option<&str>) -> Json {
    context_of(View::of(conversation), reply)
}

/// What email templates and reasons see of `view`. Built value by value rather than through
/// `json!`, which would serialise the case row (and every map in it) key by key again.
pub fn context_of(view: View, reply: Option<&str>) -> Json {
    let conversation = view.conversation;
    // A messenger visitor not matched to a contact is addressed by the name they gave.
    let visitor_name = conversation.messenger.as_ref().and_then(|m| m.visitor.name.as_deref());
    let contact_name =
        conversation.contact.as_ref().and_then(|c| c.name.as_deref()).or(visitor_name).unwrap_or_default();
    let first_name = contact_name.split_whitespace().next().unwrap_or("there");
    let string = |s: Option<&str>| s.map_or(Json::Null, |s| Json::String(s.to_string()));
    let case = object([
        ("id", string(conversation.case_id())),
        ("number", Json::String(conversation.case_number.clone())),
        ("subject", Json::String(conversation.subject.clone())),
        ("status", string(conversation.status.as_deref())),
        ("origin", string(conversation.origin.as_deref())),
        ("fields", Json::Object(conversation.case_fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect())),
    ]);
    let contact = object([
        ("name", Json::String(if contact_name.is_empty() { "there" } else { contact_name }.to_string())),
        ("first_name", Json::String(first_name.to_string())),
        ("email", string(conversation.customer_email.as_deref())),
    ]);
    let account = object([("name", string(conversation.account.as_ref().and_then(|a| a.name.as_deref())))]);
    let last_message = conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default();
    let turns = object([
        ("turns", Json::from(conversation.customer_turns())),
        ("replies", Json::from(conversation.replies_sent)),
        ("last_message", Json::String(last_message)),
    ]);
    let mut context = object([
        ("channel", Json::String(conversation.channel.as_str().to_string())),
        ("case", case),
        ("contact", contact),
        ("account", account),
        ("attributes", Json::Object(view.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect())),
        ("topics", Json::Array(view.topics.iter().map(|t| Json::String(t.clone())).collect())),
        ("conversation", turns),
    ]);
    set_reply(&mut context, reply);
    context
}

fn object<const N: usize>(entries: [(&str, Json); N]) -> Json {
    Json::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
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

/// The titles of the articles the agent's latest reply offered to confirm (empty when it
/// stated an answer or offered none): rules read a customer's reply to them.
fn suggested_titles(conversation: &Conversation) -> Vec<String> {
    crate::decide::offered(conversation).unwrap_or_default().iter().map(|s| s.title.clone()).collect()
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

    #[test]
    fn template_data_built_by_hand_is_what_serde_would_build() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/tests/fixtures/email-firmware.json");
        let mut conversation = crate::rules::testing::load_fixture(std::path::Path::new(path)).unwrap();
        conversation.attributes.insert("tier".into(), json!({ "name": "gold", "since": [2020, 1] }));
        conversation.topics.insert("billing".into());
        let c = &conversation;
        let expected = json!({
            "channel": c.channel,
            "case": {
                "id": c.id, "number": c.case_number, "subject": c.subject, "status": c.status,
                "origin": c.origin, "fields": c.case_fields,
            },
            "contact": {
                "name": c.contact.as_ref().and_then(|c| c.name.clone()),
                "first_name": c.contact.as_ref().and_then(|c| c.name.clone()).unwrap().split(' ').next(),
                "email": c.customer_email,
            },
            "account": { "name": c.account.as_ref().and_then(|a| a.name.clone()) },
            "attributes": c.attributes,
            "topics": c.topics,
            "conversation": {
                "turns": c.customer_turns(), "replies": c.replies_sent,
                "last_message": c.last_customer_message().unwrap().body,
            },
            "reply": "Hi\n\nthere",
            "reply_html": "<p>Hi</p>\n<p>there</p>",
        });
        assert_eq!(template_context(c, Some("Hi\n\nthere")), expected);
        assert!(c.contact.as_ref().unwrap().name.is_some() && !c.case_fields.is_empty(), "the fixture shows it all");
    }
}
