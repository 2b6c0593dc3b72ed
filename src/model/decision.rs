//! A decision: what the rules and the agent decided about one conversation update
//! (attributes, topics, a reply and its email, a handover, field updates), with the trace of
//! every rule evaluated and the agent's answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The handover target that means "the default target from the configuration".
pub const DEFAULT_TARGET: &str = "default";

/// Hand the case to a human or queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    /// A user or queue by name or id, or [`DEFAULT_TARGET`].
    pub target: String,
    /// Becomes the internal note on the case.
    pub reason: String,
    /// The rule that decided it.
    pub rule: String,
}

/// An email reply, rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Where in a decision a trace entry was made, in the order a decision runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStage {
    Inbound,
    Topics,
    /// The customer's message after an answer: a confirmation, or unhappy.
    Feedback,
    HandoverBefore,
    Agent,
    HandoverAfter,
    Email,
    Outbound,
    /// A `kind: cases` rule: whether a messenger conversation becomes (or updates) a case.
    Case,
    /// A rule failed; the decision fell back to a handover.
    Error,
}

impl TraceStage {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceStage::Inbound => "inbound",
            TraceStage::Topics => "topics",
            TraceStage::Feedback => "feedback",
            TraceStage::HandoverBefore => "handover_before",
            TraceStage::Agent => "agent",
            TraceStage::HandoverAfter => "handover_after",
            TraceStage::Email => "email",
            TraceStage::Outbound => "outbound",
            TraceStage::Case => "case",
            TraceStage::Error => "error",
        }
    }
}

impl std::fmt::Display for TraceStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Text in a trace entry (a rule's name, a detail): written as it is in the rule set when
/// it is the same every time, so that recording it copies nothing, or owned when it was
/// just made. Reads, compares and serialises as a plain string.
#[derive(Clone)]
pub enum TraceText {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
}

impl std::ops::Deref for TraceText {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            TraceText::Static(s) => s,
            TraceText::Shared(s) => s,
            TraceText::Owned(s) => s,
        }
    }
}

impl TraceText {
    pub fn as_str(&self) -> &str {
        self
    }
}

impl Default for TraceText {
    fn default() -> Self {
        TraceText::Static("")
    }
}

impl From<&'static str> for TraceText {
    fn from(s: &'static str) -> Self {
        TraceText::Static(s)
    }
}

impl From<String> for TraceText {
    fn from(s: String) -> Self {
        TraceText::Owned(s)
    }
}

impl From<&Arc<str>> for TraceText {
    fn from(s: &Arc<str>) -> Self {
        TraceText::Shared(s.clone())
    }
}

impl PartialEq for TraceText {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<str> for TraceText {
    fn eq(&self, other: &str) -> bool {
        &**self == other
    }
}

impl PartialEq<&str> for TraceText {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl std::fmt::Debug for TraceText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::fmt::Display for TraceText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self)
    }
}

impl Serialize for TraceText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(TraceText::Owned)
    }
}

/// One rule evaluation, for the decision trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    pub stage: TraceStage,
    pub rule: TraceText,
    pub fired: bool,
    pub detail: TraceText,
    pub micros: u64,
}

/// The trace being written during a decision.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace(pub Vec<TraceEntry>);

impl Trace {
    /// Records a rule evaluated since `started`; returns when it recorded, where the next
    /// rule's time starts.
    pub fn record(
        &mut self,
        stage: TraceStage,
        rule: impl Into<TraceText>,
        fired: bool,
        detail: impl Into<TraceText>,
        started: Instant,
    ) -> Instant {
        let now = Instant::now();
        self.0.push(TraceEntry {
            stage,
            rule: rule.into(),
            fired,
            detail: detail.into(),
            micros: now.saturating_duration_since(started).as_micros() as u64,
        });
        now
    }
}

/// When outbound mappings run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    Sync,
    Handover,
    Close,
    /// A visitor rated the conversation (`csat` holds it); only mappings that name it.
    Rating,
}

/// The longest question a decision keeps, in characters.
pub const QUESTION_MAX_CHARS: usize = 500;

/// What the rules and the agent decided for one conversation update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub attributes: BTreeMap<String, Json>,
    pub topics: BTreeSet<String>,
    pub reply: Option<String>,
    pub email: Option<RenderedEmail>,
    pub handover: Option<Handover>,
    pub field_updates: BTreeMap<String, Json>,
    pub agent: Option<AgentAnswer>,
    /// The customer confirmed the agent's last answer: a hard resolution, nothing to reply.
    #[serde(default)]
    pub confirmed: bool,
    /// The customer's message sounded unhappy.
    #[serde(default)]
    pub unhappy: bool,
    /// The case a `kind: cases` rule makes (or updates) for a messenger conversation.
    #[serde(default)]
    pub case: Option<CaseRecord>,
    /// A messenger visitor's Lead fields from the lead mappings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lead_fields: BTreeMap<String, Json>,
    /// What the customer asked, as the agent was given it (at most
    /// [`QUESTION_MAX_CHARS`]): the report's unanswered questions come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// The customer said the suggested articles did not answer their question.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declined: bool,
    /// The reply asks a messenger visitor to rate the conversation ("How did we do?"):
    /// the rule set's `ask_rating_when` held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asks_rating: bool,
    pub trace: Trace,
    /// The rule set that decided (its content hash, or `builtin`).
    pub rules: String,
}

impl Decision {
    /// A decision that does nothing, by the rule set `rules`.
    pub fn empty(rules: &str) -> Decision {
        Decision {
            attributes: BTreeMap::new(),
            topics: BTreeSet::new(),
            reply: None,
            email: None,
            handover: None,
            field_updates: BTreeMap::new(),
            agent: None,
            confirmed: false,
            unhappy: false,
            case: None,
            lead_fields: BTreeMap::new(),
            question: None,
            declined: false,
            asks_rating: false,
            trace: Trace::default(),
            rules: rules.to_string(),
        }
    }
}

/// What a `kind: cases` rule asks of a messenger conversation's case: upserted by the
/// conversation's id, so there is one case a conversation whichever rule makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The rule that fired.
    pub rule: String,
    /// Whether a case the conversation already has is written again (`update`) or left
    /// as it is (`create`).
    pub update: bool,
    /// The record type's name or developer name; `None`: the org's default.
    pub record_type: Option<String>,
    /// The owner as the rule names it (a queue or user, or `default`); on handover the
    /// handover target owns the case instead.
    pub owner: String,
    /// The long-text field that gets the transcript.
    pub transcript_field: String,
    /// The rule's mapped fields, evaluated now.
    pub fields: BTreeMap<String, Json>,
    /// The `Status` the case gets when the conversation closes; `None`: it stays open.
    pub close_status: Option<String>,
}

/// A rule that failed while running, named for the admin.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rule {rule} failed: {message}")]
pub struct RuleError {
    pub rule: String,
    pub message: String,
}

/// A help article the answer drew on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub title: String,
    pub url: String,
}

/// A passage retrieval found for a question, as the trace records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrieved {
    /// The passage's stable id, `{article}#{section}`.
    pub passage: String,
    pub score: f64,
    /// The share of the question's information it matches, 0 to 1.
    pub coverage: f64,
    /// Its cosine with the question, when a sentence-embedding model ranked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
}

/// An article offered for the customer to confirm, when the evidence was not strong
/// enough to state an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub title: String,
    pub url: String,
    /// The first lines of the passage that matched.
    pub excerpt: String,
    /// The passage's stable id.
    pub passage: String,
}

/// What one call to an AI service cost, as the service reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What the agent made of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAnswer {
    /// The reply, or `None` when the agent cannot help.
    pub text: Option<String>,
    /// 0 to 1.
    pub confidence: f64,
    pub sources: Vec<Source>,
    pub backend: String,
    /// Why it could not help, for the decision trace.
    pub note: Option<String>,
    /// The passages retrieval ranked highest, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retrieved: Vec<Retrieved>,
    /// The passages the answer is drawn from (for a model: the ones it cited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cited: Vec<String>,
    /// Articles offered for the customer to confirm: the reply lists them and asks
    /// whether one answered the question. Empty for a stated answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// The characters sent to an AI service (prompt, passages and conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_chars: Option<u64>,
    /// Tokens the AI service reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// How long the AI service took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

impl AgentAnswer {
    pub fn cannot_help(backend: &str, confidence: f64, why: &str) -> AgentAnswer {
        AgentAnswer {
            text: None,
            confidence,
            sources: Vec::new(),
            backend: backend.to_string(),
            note: Some(why.to_string()),
            retrieved: Vec::new(),
            cited: Vec::new(),
            suggestions: Vec::new(),
            request_chars: None,
            usage: None,
            latency_ms: None,
        }
    }

    /// An answer with nothing but its text, confidence, sources and backend.
    pub fn answered(backend: &str, text: String, confidence: f64, sources: Vec<Source>) -> AgentAnswer {
        AgentAnswer { text: Some(text), note: None, sources, confidence, ..AgentAnswer::cannot_help(backend, 0.0, "") }
    }

    /// One line for the decision trace: the outcome, what retrieval found, what the
    /// service was sent and what it cost.
    pub fn trace_detail(&self) -> String {
        let mut detail = match &self.text {
            Some(_) if !self.suggestions.is_empty() => format!(
                "offered {} article(s) to confirm: {}",
                self.suggestions.len(),
                self.suggestions.iter().map(|s| s.passage.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Some(_) => format!("answered with confidence {:.2}", self.confidence),
            None => self.note.clone().unwrap_or_else(|| "cannot help".into()),
        };
        if !self.cited.is_empty() {
            detail.push_str(&format!("; from {}", self.cited.join(", ")));
        }
        if let Some(best) = self.retrieved.first() {
            detail.push_str(&format!(
                "; retrieved {} passage(s), best {} (score {:.2}, coverage {:.2})",
                self.retrieved.len(),
                best.passage,
                best.score,
                best.coverage
            ));
        }
        if let Some(chars) = self.request_chars {
            detail.push_str(&format!("; sent {chars} characters"));
        }
        if let Some(u) = self.usage {
            detail.push_str(&format!("; {} prompt + {} completion tokens", u.prompt_tokens, u.completion_tokens));
        }
        if let Some(ms) = self.latency_ms {
            detail.push_str(&format!("; {ms} ms"));
        }
        detail
    }
}
