//! The YAML rule files admins write. Each file says its `kind`; the types below are the
//! documentation (their `///` comments go into the JSON Schemas under `schema/`).
//!
//! Conditions and computed values are Rhai expressions. In scope:
//! `fields` (the case's fields as read: `fields.Priority`, `fields.Contact.Email`,
//! `fields.Account.Name`; `case` is a reserved word in Rhai),
//! `attributes`, `topics`, `last_message`, `turns` (customer messages so far),
//! `replies` (AI replies so far), `hours_open`, `origin`, `subject`, and after the agent has
//! answered `agent` (`agent.answered`, `agent.confidence`, `agent.text`). Functions: those the
//! rule set's `*.rhai` files define, plus `asks_for_human(text)`,
//! `contains_any(text, ["a", "b"])`, `matches(text, "regex")`, and
//! `business_hours(utc_offset, from_hour, to_hour)` (Monday to Friday), `local_hour(utc_offset)`
//! and `weekday(utc_offset)` ("Mon".."Sun").
//!
//! Scripts may also define hooks, called after the YAML rules of their stage:
//! `fn handover(conversation)` and `fn handover_after(conversation, agent)` return (), a
//! reason, or `#{ target: "...", reason: "..." }`; `fn topics(conversation)` returns more
//! topic names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Which kind of rule file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Mappings,
    Handover,
    Topics,
    Email,
    Tests,
    Resolution,
    Cases,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Mappings, Kind::Handover, Kind::Topics, Kind::Email, Kind::Tests, Kind::Resolution, Kind::Cases];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Mappings => "mappings",
            Kind::Handover => "handover",
            Kind::Topics => "topics",
            Kind::Email => "email",
            Kind::Tests => "tests",
            Kind::Resolution => "resolution",
            Kind::Cases => "cases",
        }
    }
}

/// How a conversation the agent answered is resolved: what counts as the customer
/// confirming (a hard resolution) or being unhappy, and how long a quiet customer takes to
/// count as resolved (soft) or, when unhappy, as abandoned. One file a rule set.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionFile {
    /// Always `resolution`.
    pub kind: Kind,
    /// A condition on the customer's message after an answer (`last_message`): it
    /// confirms the answer solved the problem. Default: `confirms_resolution(last_message)`.
    #[serde(default)]
    pub confirmed_when: Option<String>,
    /// A condition: the customer is unhappy. Default: `sounds_unhappy(last_message)`.
    #[serde(default)]
    pub unhappy_when: Option<String>,
    /// How long the customer may stay quiet after an answer before it counts as resolved
    /// (10m to 30d; default 24h).
    #[serde(default)]
    pub quiet_after: Option<String>,
    /// A condition, after the agent's reply to a messenger visitor who has not rated the
    /// conversation: it holds, and the reply asks "How did we do?" (a rating of 1 to 5).
    /// Default: never (a closing chat asks anyway, unless `messenger.ask_rating` is false).
    #[serde(default)]
    pub ask_rating_when: Option<String>,
}

/// When messenger conversations become Salesforce Cases (beyond a handover, which always
/// makes one). Rules are tried in order; the first whose trigger fires decides. A
/// conversation has one case, upserted by its id in `Casebridge_Conversation__c`, whichever
/// rule makes it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// Always `cases`.
    pub kind: Kind,
    pub cases: Vec<CaseRule>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRule {
    /// A name for traces and the conversation's record; unique in the rule set.
    pub name: String,
    /// What makes the case: `handover` (the conversation is handed over), `start` (its first
    /// decision), `topic` (the topic `topic` names is on it) or `condition` (`when` holds).
    #[serde(default)]
    pub on: CaseTrigger,
    /// The topic, with `on: topic`.
    #[serde(default)]
    pub topic: Option<String>,
    /// A Rhai condition: the trigger with `on: condition`; with any other trigger, it must
    /// hold as well.
    #[serde(default)]
    pub when: Option<String>,
    /// `create`: a conversation that already has a case is left alone. `update`: it is
    /// written again (the mapped fields and the transcript) each time the trigger fires.
    #[serde(default)]
    pub action: CaseAction,
    /// The record type, by name or developer name; none: the org's default.
    #[serde(default)]
    pub record_type: Option<String>,
    /// Who owns a case made before any handover: a queue (name, developer name or Id), a
    /// user (username or Id), or `default` (the configured default handover target). On a
    /// handover the handover target owns it. Never the agent user.
    #[serde(default = "default_target")]
    pub owner: String,
    /// The long-text Case field that gets the transcript (default `Description`).
    #[serde(default = "description")]
    pub transcript_field: String,
    /// Case fields from the conversation's attributes, written when the case is made and
    /// again each time the conversation closes.
    #[serde(default)]
    pub fields: Vec<RecordField>,
    /// Close the case when the conversation closes (default: leave it open).
    #[serde(default)]
    pub close_with_conversation: bool,
    /// The Case `Status` a closed case gets (default `Closed`).
    #[serde(default = "closed")]
    pub closed_status: String,
}

fn description() -> String {
    "Description".into()
}

fn closed() -> String {
    "Closed".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseTrigger {
    #[default]
    Handover,
    Start,
    Topic,
    Condition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseAction {
    #[default]
    Create,
    Update,
}

/// A field of a record casebridge writes for a messenger conversation (its case, its lead).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordField {
    /// The field (API name).
    pub field: String,
    /// The attribute whose value is written.
    #[serde(default)]
    pub from: Option<String>,
    /// A Rhai expression computing the value instead.
    #[serde(default)]
    pub expr: Option<String>,
}

/// Attribute mappings: case fields → conversation attributes, and back.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingsFile {
    /// Always `mappings`.
    pub kind: Kind,
    /// Case, contact and account fields → conversation attributes, on every update.
    #[serde(default)]
    pub inbound: Vec<InboundMapping>,
    /// Conversation attributes → case fields.
    #[serde(default)]
    pub outbound: Vec<OutboundMapping>,
    /// Conversation attributes → the fields of the Lead a messenger visitor becomes: written
    /// when the lead is made, and again whenever a value changes.
    #[serde(default)]
    pub lead: Vec<RecordField>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundMapping {
    /// The attribute to set.
    pub attribute: String,
    /// A field path on the case: `Product__c`, `Contact.Email`, `Account.Support_Tier__c`.
    /// casebridge reads these fields in its poll query.
    #[serde(default)]
    pub from: Option<String>,
    /// A Rhai expression computing the value instead (or from `value`, the field's value).
    #[serde(default)]
    pub expr: Option<String>,
    /// The value when the field is empty.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<Json>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundMapping {
    /// The case field to write (API name).
    pub field: String,
    /// The attribute whose value is written.
    #[serde(default)]
    pub from: Option<String>,
    /// A Rhai expression computing the value instead.
    #[serde(default)]
    pub expr: Option<String>,
    /// When to write: `sync` (every update), `handover`, `close` (default: all three), or
    /// `rating` (a messenger visitor rated the chat: onto the case it became).
    #[serde(default = "all_moments")]
    pub on: Vec<crate::model::Moment>,
}

fn all_moments() -> Vec<crate::model::Moment> {
    use crate::model::Moment;
    vec![Moment::Sync, Moment::Handover, Moment::Close]
}

/// Handover conditions, evaluated in order; the first that holds decides.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverFile {
    /// Always `handover`.
    pub kind: Kind,
    pub rules: Vec<HandoverRule>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverRule {
    /// A name for traces and notes; unique in the rule set.
    pub name: String,
    /// `before` the agent answers, or `after` it has (when `agent` is in scope).
    #[serde(default)]
    pub stage: Stage,
    /// A Rhai condition.
    pub when: String,
    /// A queue (name, developer name or Id), a user (username or Id), or `default` for the
    /// configured default target.
    #[serde(default = "default_target")]
    pub target: String,
    /// Why, for the internal note on the case. Handlebars, with the same values in scope.
    pub reason: String,
}

fn default_target() -> String {
    crate::model::DEFAULT_TARGET.into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Before,
    After,
}

/// Topics to tag cases with.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicsFile {
    /// Always `topics`.
    pub kind: Kind,
    pub topics: Vec<TopicRule>,
}

/// A topic applies when any of its keywords, its regular expression, or its condition
/// matches the subject or a customer message.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    /// The Salesforce topic name (created if missing).
    pub name: String,
    /// Words or phrases, matched whole and ignoring case.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// A regular expression (Rust syntax; `(?i)` for case-insensitive).
    #[serde(default)]
    pub regex: Option<String>,
    /// A Rhai condition.
    #[serde(default)]
    pub when: Option<String>,
}

/// Email templates for replies to email-origin cases.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailFile {
    /// Always `email`.
    pub kind: Kind,
    /// The first template whose `when` holds (or that has none) is used.
    pub templates: Vec<EmailTemplate>,
}

/// A handlebars template. In scope: `case` (`case.subject`, `case.number`, `case.fields`),
/// `contact` (`name`, `first_name`, `email`), `account`, `attributes`, `topics`,
/// `conversation` (`turns`, `replies`, `last_message`), `reply` (the answer text) and
/// `reply_html` (the answer as HTML paragraphs). Values are HTML-escaped in the
/// HTML part; a variable that does not exist is an error when the rule set loads.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplate {
    pub name: String,
    /// A Rhai condition choosing this template.
    #[serde(default)]
    pub when: Option<String>,
    pub subject: String,
    /// The plain-text body (inline); derived from the HTML body when absent.
    #[serde(default)]
    pub text: Option<String>,
    /// The plain-text body from a `.hbs` file of the rule set.
    #[serde(default)]
    pub text_file: Option<PathBuf>,
    /// The HTML body (inline).
    #[serde(default)]
    pub html: Option<String>,
    /// The HTML body from a `.hbs` file of the rule set.
    #[serde(default)]
    pub html_file: Option<PathBuf>,
}

/// Fixture tests for the rule set (`casebridge rules test`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestsFile {
    /// Always `tests`.
    pub kind: Kind,
    pub tests: Vec<RuleTest>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    /// A recorded case (see `casebridge record`), relative to this file.
    pub fixture: PathBuf,
    /// What the agent answers in this test (agents are not part of rule tests).
    #[serde(default)]
    pub agent: AgentStub,
    pub expect: Expectations,
}

/// The agent's answer for a test: `answer` text with a `confidence`, or no answer.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentStub {
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default = "full_confidence")]
    pub confidence: f64,
}

fn full_confidence() -> f64 {
    1.0
}

/// What must come out. Only what is given is checked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Whether the agent's reply is posted.
    #[serde(default)]
    pub reply: Option<bool>,
    /// The handover target as the rule names it, or `none`.
    #[serde(default)]
    pub handover: Option<String>,
    /// The rule that must hand over: a handover rule's name, `fn handover` or `fn
    /// handover_after`. Required with `handover` (other than `none`), so that the error
    /// fallback (rule `fallback`, when a rule fails at run time) never passes for a real rule.
    #[serde(default)]
    pub handover_rule: Option<String>,
    /// The exact set of topics.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
    /// Attribute values.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub attributes: Option<BTreeMap<String, Json>>,
    /// Case field updates.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub fields: Option<BTreeMap<String, Json>>,
    #[serde(default)]
    pub email: Option<EmailExpectation>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailExpectation {
    /// Text the subject contains.
    #[serde(default)]
    pub subject_contains: Option<String>,
    /// Fragments the plain-text body contains.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// Fragments the HTML body contains.
    #[serde(default)]
    pub html_contains: Vec<String>,
}

/// The JSON Schema of one kind of rule file.
pub fn json_schema(kind: Kind) -> Json {
    let schema = match kind {
        Kind::Mappings => schemars::schema_for!(MappingsFile),
        Kind::Handover => schemars::schema_for!(HandoverFile),
        Kind::Topics => schemars::schema_for!(TopicsFile),
        Kind::Email => schemars::schema_for!(EmailFile),
        Kind::Tests => schemars::schema_for!(TestsFile),
        Kind::Resolution => schemars::schema_for!(ResolutionFile),
        Kind::Cases => schemars::schema_for!(CasesFile),
    };
    serde_json::to_value(schema).expect("schemas serialise")
}
