//! Deciding what to do about a conversation: the rules and the agent turn it into a
//! [`Decision`](crate::model::Decision) — attributes, topics, an optional reply (and email), an optional handover,
//! field updates — with a trace of every rule evaluated.
//!
//! The decision points sit behind one interface, [`Rules`], which the rule engine fills in
//! from the admin's files. [`BuiltinRules`] are the defaults when no rule set says
//! otherwise: hand over when the customer asks for a person or the agent cannot help.
//!
//! Fallback: when a rule fails at run time, the case is handed to the default target with
//! the error in the note and the trace, so a broken rule never leaves a customer unanswered.

pub mod resolution;
mod suggestions;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::Value as Json;

use crate::agent::{Agent, AgentError};
use crate::model::{
    AgentAnswer, AuthorKind, CaseRecord, Conversation, DEFAULT_TARGET, Decision, Feedback, Handover, MessengerInfo,
    Moment, RenderedEmail, Resolution, RuleError, Trace, TraceEntry, TraceStage, View,
};
use suggestions::read_suggestion_reply;
pub use suggestions::{offered, suggestion_reply, with_suggestions};

/// The decision points an admin controls.
pub trait Rules: Send + Sync {
    /// Identifies the rule set in traces (a content hash).
    fn id(&self) -> String;
    /// Case fields beyond the standard ones that the rules read (added to the poll query).
    fn case_fields(&self) -> Vec<String> {
        Vec::new()
    }
    /// How long a customer may stay quiet after an answer before it counts as resolved.
    fn quiet_after(&self) -> std::time::Duration {
        DEFAULT_QUIET_AFTER
    }
    /// Starts one decision over `conversation`. What every stage needs (the script scope,
    /// the template data) is built once a decision, not once a stage, and the conversation
    /// is borrowed, not copied.
    fn evaluate<'r>(&'r self, conversation: &'r Conversation) -> Box<dyn Evaluation + 'r>;
}

/// The rule evaluations of one decision, stage by stage in the order [`decide`] calls
/// them. Each stage sees what the earlier ones decided: the attributes and topics, and
/// after `handover_after` the agent's answer.
pub trait Evaluation: Send {
    /// Case, contact and account fields → conversation attributes.
    fn inbound(&mut self, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError>;
    /// Topics to tag the case with.
    fn topics(&mut self, trace: &mut Trace) -> Result<BTreeSet<String>, RuleError>;
    /// What the customer's message after an answer says: a confirmation that it solved
    /// their problem (a hard resolution), or unhappiness. Without a rule set's own
    /// `kind: resolution` file: [`confirms_resolution`] and [`sounds_unhappy`].
    fn feedback(&mut self, text: &str, trace: &mut Trace) -> Result<Feedback, RuleError> {
        let started = Instant::now();
        let feedback = builtin_feedback(text);
        trace.record(
            TraceStage::Feedback,
            "builtin_feedback",
            feedback.confirmed || feedback.unhappy,
            feedback_detail(feedback),
            started,
        );
        Ok(feedback)
    }
    /// Handover decided before the agent answers (a VIP, an angry customer, "a human please").
    fn handover_before(&mut self, trace: &mut Trace) -> Result<Option<Handover>, RuleError>;
    /// Handover decided after the agent answered (it could not help).
    fn handover_after(&mut self, answer: &AgentAnswer, trace: &mut Trace) -> Result<Option<Handover>, RuleError>;
    /// The email for a reply to an email-origin case.
    fn email(&mut self, reply: &str, trace: &mut Trace) -> Result<RenderedEmail, RuleError>;
    /// The conversation's attributes and topics with those decided so far.
    fn decided(&self) -> (&BTreeMap<String, Json>, &BTreeSet<String>);
    /// Conversation attributes → case fields.
    fn outbound(&mut self, moment: Moment, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError>;
    /// The first `kind: cases` rule whose trigger fires for a messenger conversation now,
    /// with its fields evaluated. Without such rules: none.
    fn case(&mut self, moment: CaseMoment, trace: &mut Trace) -> Result<Option<CaseRecord>, RuleError> {
        let _ = (moment, trace);
        Ok(None)
    }
    /// The fields of a messenger visitor's Lead from the rule set's lead mappings.
    fn lead(&mut self, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        let _ = trace;
        Ok(BTreeMap::new())
    }
    /// The `kind: cases` rule called `name`, evaluated as when it fires (the conversation
    /// closes: its fields are written again); none when the rule set no longer has it.
    fn case_rule(&mut self, name: &str, trace: &mut Trace) -> Result<Option<CaseRecord>, RuleError> {
        let _ = (name, trace);
        Ok(None)
    }
    /// Whether the reply asks a messenger visitor for a rating (`ask_rating_when`).
    /// Without the condition: never.
    fn asks_rating(&mut self, trace: &mut Trace) -> Result<bool, RuleError> {
        let _ = trace;
        Ok(false)
    }
}

/// What a decision brings about, for `kind: cases` triggers.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseMoment {
    /// The conversation's first decision.
    pub start: bool,
    /// The decision hands the conversation over.
    pub handover: bool,
    /// The conversation has a case already: `action: create` rules are passed over.
    pub has_case: bool,
}

/// The running rule set, swapped whole on reload: each decision takes one snapshot, so it
/// sees one rule set, never a mix.
pub type SharedRules = std::sync::Arc<arc_swap::ArcSwap<Box<dyn Rules>>>;

/// One snapshot of the running rule set: what a decision reads from its first rule to the
/// last write it plans (a reload meanwhile is the next decision's).
pub type RuleSnapshot = std::sync::Arc<Box<dyn Rules>>;

/// Wraps a rule set for sharing and hot swapping.
pub fn shared(rules: Box<dyn Rules>) -> SharedRules {
    std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(rules))
}

/// Why no decision could be made now.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The agent failed; try the conversation again later.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// Runs CPU-bound rule evaluation (Rhai) without stalling the async workers: on the
/// multi-thread runtime the daemon uses, other tasks move off this worker meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs the rules and the agent over a conversation.
pub async fn decide(rules: &dyn Rules, agent: &Agent, conversation: &Conversation) -> Result<Decision, DecideError> {
    // Room for the shipped rules' entries, so that recording them does not regrow the list.
    let mut trace = Trace(Vec::with_capacity(16));
    let mut decision = Decision::empty(&rules.id());
    let mut rules = rules.evaluate(conversation);
    // All the rule evaluations below share one wall-clock budget.
    let mut budget = crate::script::DecisionBudget::default();
    // After an answer, the customer's next words may close it: a confirmation is a hard
    // resolution (no reply, no handover), unhappiness is remembered.
    let after_answer = conversation.resolution.is_some_and(|r| r.state != Resolution::RoutedToTeam);
    let outcome: Result<(), RuleError> = blocking(|| {
        budget.spend(|| {
            decision.attributes = rules.inbound(&mut trace)?;
            decision.topics = rules.topics(&mut trace)?;
            let mut declined = false;
            if after_answer {
                let text = crate::agent::question(conversation);
                let feedback = rules.feedback(&text, &mut trace)?;
                // A confirmation closes the conversation only when it is all the customer
                // wrote since the answer: an earlier message would go unanswered.
                let mut confirmed = feedback.confirmed && conversation.unanswered().len() == 1;
                if let Some(offered) = offered(conversation) {
                    // Each message since the suggestions is read (a button clicked twice
                    // sends two): all yes, or any no.
                    let reply = read_suggestion_reply(conversation, offered, &mut trace);
                    confirmed |= reply == Some(true);
                    declined = reply == Some(false);
                }
                decision.confirmed = confirmed;
                decision.unhappy = feedback.unhappy;
            }
            if !decision.confirmed {
                decision.handover = rules.handover_before(&mut trace)?;
            }
            decision.declined = declined;
            if declined {
                let offered = offered(conversation).unwrap_or_default();
                let handover = decision.handover.take().unwrap_or_else(|| Handover {
                    target: DEFAULT_TARGET.into(),
                    reason: "The customer said the suggested articles did not answer their question.".into(),
                    rule: "suggestions_declined".into(),
                });
                decision.handover = Some(with_suggestions(handover, offered));
            }
            Ok(())
        })
    });
    if let Err(e) = outcome {
        return Ok(fallback(decision, trace, e));
    }
    let answer = match decision.handover {
        _ if decision.confirmed => None,
        Some(_) => None,
        None => {
            let started = Instant::now();
            // The agent sees what the rules decided so far (not the decision history).
            let (attributes, topics) = rules.decided();
            let question = crate::agent::question(conversation);
            decision.question = Some(question.chars().take(crate::model::QUESTION_MAX_CHARS).collect());
            let answer = agent.answer(View { conversation, attributes, topics }).await?;
            trace.record(TraceStage::Agent, agent.backend(), answer.text.is_some(), answer.trace_detail(), started);
            Some(answer)
        }
    };
    // The rules after the agent, in one step of the budget.
    let outcome = blocking(|| {
        budget.spend(|| rules_after_agent(rules.as_mut(), conversation, &answer, &mut decision, &mut trace))
    });
    decision.agent = answer;
    if let Err(e) = outcome {
        return Ok(fallback(decision, trace, e));
    }
    decision.trace = trace;
    Ok(decision)
}

/// The rules after the agent: a handover it calls for, the reply and its email, the
/// fields to write, and a chat's case and Lead.
fn rules_after_agent(
    rules: &mut dyn Evaluation,
    conversation: &Conversation,
    answer: &Option<AgentAnswer>,
    decision: &mut Decision,
    trace: &mut Trace,
) -> Result<(), RuleError> {
    if let Some(answer) = answer {
        decision.handover = rules.handover_after(answer, trace)?;
        if decision.handover.is_none()
            && let Some(text) = &answer.text
        {
            decision.reply = Some(text.clone());
            if conversation.is_email_origin() && conversation.customer_email.is_some() {
                decision.email = Some(rules.email(text, trace)?);
            }
        }
    }
    let moment = if decision.handover.is_some() { Moment::Handover } else { Moment::Sync };
    decision.field_updates = rules.outbound(moment, trace)?;
    if let Some(info) = conversation.messenger.as_ref() {
        chat_records(rules, conversation, info, decision, trace)?;
        if decision.reply.is_some() && conversation.csat.is_none() {
            decision.asks_rating = rules.asks_rating(trace)?;
        }
    }
    Ok(())
}

/// A chat's records: the case a `kind: cases` rule makes, and its Lead's mapped fields.
fn chat_records(
    rules: &mut dyn Evaluation,
    conversation: &Conversation,
    info: &MessengerInfo,
    decision: &mut Decision,
    trace: &mut Trace,
) -> Result<(), RuleError> {
    let start = !conversation.parts.iter().any(|p| p.author == AuthorKind::Bot);
    let moment = CaseMoment { start, handover: decision.handover.is_some(), has_case: info.case.exists() };
    decision.case = rules.case(moment, trace)?;
    // Only a lead made before is written again; a failing lead mapping is the admin's to
    // see (a sync error), not a reason to hand the chat over.
    if info.lead.exists() {
        match rules.lead(trace) {
            Ok(fields) => decision.lead_fields = fields,
            Err(e) => trace.0.push(TraceEntry {
                stage: TraceStage::Error,
                rule: e.rule.clone().into(),
                fired: true,
                detail: e.message.clone().into(),
                micros: 0,
            }),
        }
    }
    Ok(())
}

/// The documented fallback for a failing rule: no reply, hand over with the error.
pub fn fallback(mut decision: Decision, mut trace: Trace, error: RuleError) -> Decision {
    trace.0.push(TraceEntry {
        stage: TraceStage::Error,
        rule: error.rule.clone().into(),
        fired: true,
        detail: error.message.clone().into(),
        micros: 0,
    });
    decision.reply = None;
    decision.email = None;
    decision.handover = Some(Handover {
        target: DEFAULT_TARGET.into(),
        reason: format!("casebridge handed this case over because a rule failed: {error}"),
        rule: "fallback".into(),
    });
    decision.trace = trace;
    decision
}

/// The defaults: hand over when the customer asks for a person, or when the agent cannot
/// help; plain email replies; no mappings or topics.
pub struct BuiltinRules {
    email: handlebars::Handlebars<'static>,
    agent_name: String,
}

const HUMAN_PHRASES: &[&str] = &[
    "human",
    "real person",
    "speak to someone",
    "talk to someone",
    "speak to a person",
    "talk to a person",
    "representative",
    "live agent",
    "real agent",
    "someone real",
];

const DEFAULT_SUBJECT: &str = "Re: {{subject}} [Case {{case_number}}]";
const DEFAULT_TEXT: &str = "Hi {{customer_name}},\n\n{{reply}}\n\n{{agent_name}}";

impl BuiltinRules {
    pub fn new(agent_name: &str) -> BuiltinRules {
        let mut email = handlebars::Handlebars::new();
        email.register_escape_fn(handlebars::no_escape);
        email.set_strict_mode(true);
        email.register_template_string("subject", DEFAULT_SUBJECT).expect("the built-in subject template compiles");
        email.register_template_string("text", DEFAULT_TEXT).expect("the built-in text template compiles");
        BuiltinRules { email, agent_name: agent_name.to_string() }
    }
}

/// How long a customer may stay quiet after an answer before it counts as resolved,
/// unless the rule set's `kind: resolution` file says otherwise.
pub const DEFAULT_QUIET_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Phrases with which customers confirm an answer solved their problem.
const CONFIRM_PHRASES: &[&str] = &[
    "is gone",
    "are gone",
    "back online",
    "working again",
    "works again",
    "back to normal",
    "that worked",
    "that works",
    "it worked",
    "it works now",
    "works now",
    "working now",
    "fixed it",
    "that fixed",
    "problem solved",
    "issue solved",
    "solved it",
    "resolved",
    "that did it",
    "that did the trick",
    "that helped",
    "that helps",
    "all good now",
    "all sorted",
    "sorted now",
    "issue is gone",
    "problem is gone",
    "perfect, thank",
    "great, thank",
    "awesome, thank",
];

/// Phrases of a customer the answer did not help, or who is upset.
const UNHAPPY_PHRASES: &[&str] = &[
    "not helpful",
    "unhelpful",
    "useless",
    "doesn't help",
    "does not help",
    "didn't help",
    "did not help",
    "didn't work",
    "did not work",
    "doesn't work",
    "does not work",
    "not working",
    "still broken",
    "still doesn't",
    "still does not",
    "not solved",
    "not resolved",
    "waste of time",
    "ridiculous",
    "terrible",
    "frustrat",
    "annoy",
    "unacceptable",
    "not what i asked",
    "you don't understand",
    "you do not understand",
];

/// Whether a message confirms that an answer solved the problem and asks nothing more: a
/// sentence with a confirming phrase and no negation, every other sentence a short
/// pleasantry ("Thanks!", "Have a nice day", a name), no question, no "but", nothing
/// unhappy. When in doubt it is not a confirmation: a wrong "no" costs one more reply, a
/// wrong "yes" leaves the customer unanswered.
pub fn confirms_resolution(text: &str) -> bool {
    let lower = text.to_lowercase().replace('’', "'");
    if lower.contains('?') || sounds_unhappy(&lower) {
        return false;
    }
    if words(&lower).iter().any(|w| CONTRAST_WORDS.contains(w)) {
        return false;
    }
    let sentences: Vec<&str> =
        lower.split(['.', '!', ';', ':', '\n']).map(str::trim).filter(|s| !s.is_empty()).collect();
    let negated = |s: &str| words(s).iter().any(|w| NEGATIONS.contains(w) || w.ends_with("n't"));
    let confirms = |s: &&str| CONFIRM_PHRASES.iter().any(|p| s.contains(p)) && !negated(s);
    let pleasantry = |s: &&str| {
        let w = words(s);
        w.len() <= 2 || (w.len() <= 5 && w.iter().any(|w| PLEASANTRY_WORDS.contains(w)))
    };
    sentences.iter().any(confirms) && sentences.iter().all(|s| confirms(s) || pleasantry(s))
}

/// A sentence's words: letters, digits and apostrophes ("isn't" stays one word).
fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).collect()
}

/// Words that turn a confirmation into something else ("it works, but ...").
const CONTRAST_WORDS: &[&str] = &["but", "however", "although", "though", "except", "unless"];
/// Words that negate a confirming phrase ("not resolved", "never worked"); any "n't" too.
const NEGATIONS: &[&str] = &["not", "never", "no", "unresolved", "nothing", "hardly"];
/// Words of a pleasantry beside a confirmation.
const PLEASANTRY_WORDS: &[&str] = &[
    "thanks",
    "thank",
    "thx",
    "cheers",
    "great",
    "perfect",
    "awesome",
    "excellent",
    "brilliant",
    "wonderful",
    "appreciated",
    "appreciate",
    "nice",
    "day",
    "bye",
    "regards",
    "best",
    "kind",
    "much",
    "lot",
    "again",
    "help",
    "helping",
];

/// Whether a message sounds like the customer is unhappy or was not helped.
pub fn sounds_unhappy(text: &str) -> bool {
    let lower = text.to_lowercase().replace('’', "'");
    UNHAPPY_PHRASES.iter().any(|p| lower.contains(p))
}

/// The built-in reading of a customer's message after an answer.
pub fn builtin_feedback(text: &str) -> Feedback {
    Feedback { confirmed: confirms_resolution(text), unhappy: sounds_unhappy(text) }
}

/// The trace detail of a feedback reading.
pub fn feedback_detail(f: Feedback) -> &'static str {
    match (f.confirmed, f.unhappy) {
        (true, _) => "the customer confirmed the answer solved it",
        (false, true) => "the customer sounds unhappy",
        (false, false) => "neither a confirmation nor unhappy",
    }
}

/// Whether a message asks for a person.
pub fn asks_for_human(text: &str) -> bool {
    let lower = text.to_lowercase();
    HUMAN_PHRASES.iter().any(|p| lower.contains(p))
}

impl BuiltinRules {
    /// The built-in email: "Hi {first name}," the reply, the agent's name.
    pub fn email(
        &self,
        conversation: &Conversation,
        reply: &str,
        trace: &mut Trace,
    ) -> Result<RenderedEmail, RuleError> {
        let started = Instant::now();
        let customer_name = conversation
            .contact
            .as_ref()
            .and_then(|c| c.name.clone())
            .or_else(|| conversation.parts.first().and_then(|p| p.author_name.clone()))
            .and_then(|n| n.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "there".into());
        let data = serde_json::json!({
            "subject": conversation.subject,
            "case_number": conversation.case_number,
            "customer_name": customer_name,
            "reply": reply,
            "agent_name": self.agent_name,
        });
        let render = |name: &str| {
            self.email
                .render(name, &data)
                .map_err(|e| RuleError { rule: format!("builtin email {name}"), message: e.to_string() })
        };
        let email = RenderedEmail { subject: render("subject")?, text: render("text")?, html: None };
        trace.record(TraceStage::Email, "builtin", true, format!("subject: {}", email.subject), started);
        Ok(email)
    }
}

impl Rules for BuiltinRules {
    fn id(&self) -> String {
        "builtin".into()
    }

    fn evaluate<'r>(&'r self, conversation: &'r Conversation) -> Box<dyn Evaluation + 'r> {
        Box::new(BuiltinEvaluation { rules: self, conversation })
    }
}

/// One decision under the built-in rules.
struct BuiltinEvaluation<'r> {
    rules: &'r BuiltinRules,
    conversation: &'r Conversation,
}

impl Evaluation for BuiltinEvaluation<'_> {
    fn inbound(&mut self, _: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        Ok(BTreeMap::new())
    }

    fn topics(&mut self, _: &mut Trace) -> Result<BTreeSet<String>, RuleError> {
        Ok(BTreeSet::new())
    }

    fn decided(&self) -> (&BTreeMap<String, Json>, &BTreeSet<String>) {
        (&self.conversation.attributes, &self.conversation.topics)
    }

    fn handover_before(&mut self, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        let started = Instant::now();
        let asked = self.conversation.unanswered().iter().any(|p| asks_for_human(&p.body));
        trace.record(
            TraceStage::HandoverBefore,
            "customer_asks_for_a_human",
            asked,
            "looks for phrases such as \"human\"",
            started,
        );
        Ok(asked.then(|| Handover {
            target: DEFAULT_TARGET.into(),
            reason: "The customer asked to talk to a person.".into(),
            rule: "customer_asks_for_a_human".into(),
        }))
    }

    fn handover_after(&mut self, answer: &AgentAnswer, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        let started = Instant::now();
        let cannot = answer.text.is_none();
        let note = answer.note.clone().unwrap_or_default();
        trace.record(TraceStage::HandoverAfter, "agent_cannot_help", cannot, note, started);
        Ok(cannot.then(|| Handover {
            target: DEFAULT_TARGET.into(),
            reason: format!(
                "The AI agent could not answer this case ({}).",
                answer.note.as_deref().unwrap_or("no confident answer")
            ),
            rule: "agent_cannot_help".into(),
        }))
    }

    fn email(&mut self, reply: &str, trace: &mut Trace) -> Result<RenderedEmail, RuleError> {
        self.rules.email(self.conversation, reply, trace)
    }

    fn outbound(&mut self, _: Moment, _: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        Ok(BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_requests_for_a_person() {
        assert!(asks_for_human("Can I please talk to a HUMAN?"));
        assert!(asks_for_human("I want a representative"));
        assert!(!asks_for_human("The gripper drifts after restarts"));
    }
}
