//! Evaluating a rule set: one [`RuleSetEvaluation`] a decision runs the stages over a scope
//! and template data built once ([`super::variables`]); expressions and hooks run in the
//! sandbox, their errors placed at the rule's file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::time::Instant;

use rhai::{Dynamic, Scope};
use serde_json::Value as Json;

use super::cases::{CompiledCaseRule, CompiledField};
use super::files::{CaseTrigger, Stage};
use super::variables::{Changed, Variables, View, agent_map, context_of, field_at, hook_view, set_reply, to_dynamic};
use super::{Expr, RuleSet, templates};
use crate::decide::{CaseMoment, Evaluation, Rules};
use crate::model::{
    AgentAnswer, AuthorKind, CaseRecord, Conversation, Feedback, Handover, Moment, RenderedEmail, RuleError, Trace,
    TraceStage, TraceText,
};
use crate::script;

/// How deeply arrays and maps may nest in a value a mapping gives (an attribute or a
/// field): the store reads records back with a nesting limit, and Salesforce fields are flat.
pub const MAX_VALUE_DEPTH: usize = 32;

/// Whether `value` holds arrays or maps nested more than `levels` deep; it looks no deeper
/// than that, so a value nested a million deep costs no more than one nested 33 deep.
fn nested_deeper_than(value: &Dynamic, levels: usize) -> bool {
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return levels == 0 || array.iter().any(|v| nested_deeper_than(v, levels - 1));
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        return levels == 0 || map.values().any(|v| nested_deeper_than(v, levels - 1));
    }
    false
}

impl RuleSet {
    fn call_hook(
        &self,
        name: &str,
        args: impl rhai::FuncArgs,
        trace: &mut Trace,
        stage: TraceStage,
    ) -> Result<Dynamic, RuleError> {
        let started = Instant::now();
        let result = script::call(&self.engine, &self.functions, &self.limits, name, args)
            .map_err(|e| RuleError { rule: format!("script hook {name}"), message: e.to_string() })?;
        trace.record(stage, format!("fn {name}"), !result.is_unit(), format!("returned {result}"), started);
        Ok(result)
    }

    /// Reads a handover hook's result: (), a reason string, or a map with target and reason.
    fn hook_handover(&self, name: &str, value: Dynamic) -> Result<Option<Handover>, RuleError> {
        if value.is_unit() {
            return Ok(None);
        }
        let bad = || RuleError {
            rule: format!("script hook {name}"),
            message: "must return (), a reason string, or #{ target: \"...\", reason: \"...\" }".into(),
        };
        if let Some(reason) = value.clone().try_cast::<String>() {
            return Ok(Some(Handover {
                target: crate::model::DEFAULT_TARGET.into(),
                reason,
                rule: format!("fn {name}"),
            }));
        }
        let map = value.try_cast::<rhai::Map>().ok_or_else(bad)?;
        let get = |k: &str| map.get(k).and_then(|v| v.clone().try_cast::<String>());
        let reason = get("reason").ok_or_else(bad)?;
        let target = get("target").unwrap_or_else(|| crate::model::DEFAULT_TARGET.into());
        Ok(Some(Handover { target, reason, rule: format!("fn {name}") }))
    }

    /// Evaluates `expr`; `rule` names it in errors (formatted only when there is one).
    fn eval(&self, expr: &Expr, scope: &mut Scope, rule: &dyn Display) -> Result<Dynamic, RuleError> {
        let len = scope.len();
        let result = script::eval(&self.engine, &expr.ast, &self.limits, scope);
        scope.rewind(len);
        result.map_err(|e| {
            // A position inside the expression is placed in its rule file; one inside a
            // script function in that function's script.
            let script = e.function.as_ref().and_then(|f| self.function_files.get(f));
            if let Some(script) = script {
                return RuleError {
                    rule: rule.to_string(),
                    message: format!("{script}:{}:{}: {} (in `{}`)", e.line, e.column, e.message, expr.text),
                };
            }
            let (line, column) = if e.file == expr.file && e.line > 0 {
                let column = if e.line == 1 { expr.column + e.column.saturating_sub(1) } else { e.column };
                (expr.line + e.line - 1, column)
            } else {
                (e.line, e.column)
            };
            RuleError {
                rule: rule.to_string(),
                message: format!("{}:{line}:{column}: {} (in `{}`)", e.file, e.message, expr.text),
            }
        })
    }

    fn eval_bool(&self, expr: &Expr, scope: &mut Scope, rule: &dyn Display) -> Result<bool, RuleError> {
        let v = self.eval(expr, scope, rule)?;
        v.as_bool().map_err(|t| RuleError {
            rule: rule.to_string(),
            message: format!("the condition `{}` gave a {t}, not true or false", expr.text),
        })
    }

    fn eval_json(&self, expr: &Expr, scope: &mut Scope, rule: &dyn Display) -> Result<Json, RuleError> {
        let v = self.eval(expr, scope, rule)?;
        if nested_deeper_than(&v, MAX_VALUE_DEPTH) {
            return Err(RuleError {
                rule: rule.to_string(),
                message: format!(
                    "{}:{}:{}: `{}` gave a value nested more than {MAX_VALUE_DEPTH} levels deep (arrays and maps in each other)",
                    expr.file, expr.line, expr.column, expr.text
                ),
            });
        }
        rhai::serde::from_dynamic(&v).map_err(|e| RuleError { rule: rule.to_string(), message: e.to_string() })
    }
}

impl Rules for RuleSet {
    fn id(&self) -> String {
        self.hash.clone()
    }

    fn case_fields(&self) -> Vec<String> {
        self.case_fields.iter().cloned().collect()
    }

    fn quiet_after(&self) -> std::time::Duration {
        self.quiet_after
    }

    fn evaluate<'r>(&'r self, conversation: &'r Conversation) -> Box<dyn Evaluation + 'r> {
        Box::new(RuleSetEvaluation {
            set: self,
            conversation,
            attributes: conversation.attributes.clone(),
            topics: conversation.topics.clone(),
            answer: None,
            shared: Shared::default(),
        })
    }
}

/// What the stages of one decision share, each built when first needed and brought up to
/// date only where a stage changed what it shows.
#[derive(Default)]
struct Shared {
    variables: Option<Variables>,
    /// What changed since `variables` was last brought up to date, in the order it changed.
    stale: Vec<Changed>,
    /// The templates' data, its reply set at each use.
    context: Option<handlebars::Context>,
}

impl Shared {
    fn scope(&mut self, view: View, answer: Option<&Dynamic>) -> &mut Scope<'static> {
        match &mut self.variables {
            Some(variables) => {
                for changed in self.stale.drain(..) {
                    variables.update(changed, view, answer);
                }
            }
            None => self.stale.clear(),
        }
        self.variables.get_or_insert_with(|| Variables::new(view, answer)).scope()
    }

    fn context(&mut self, view: View, reply: Option<&str>) -> &handlebars::Context {
        let context = self.context.get_or_insert_with(|| context_of(view, None).into());
        set_reply(context.data_mut(), reply);
        context
    }

    /// A stage changed the attributes, the topics or the answer.
    fn changed(&mut self, what: Changed) {
        if self.variables.is_some() && !self.stale.contains(&what) {
            self.stale.push(what);
        }
        if what != Changed::Answer {
            self.context = None;
        }
    }
}

/// The view of a [`RuleSetEvaluation`], borrowing its fields one by one (so that its
/// `shared` stays free to borrow mutably beside it).
macro_rules! view {
    ($evaluation:ident) => {
        View {
            conversation: $evaluation.conversation,
            attributes: &$evaluation.attributes,
            topics: &$evaluation.topics,
        }
    };
}

/// One decision's evaluation of a rule set.
struct RuleSetEvaluation<'r> {
    set: &'r RuleSet,
    conversation: &'r Conversation,
    /// The conversation's attributes and topics with those decided so far.
    attributes: BTreeMap<String, Json>,
    topics: BTreeSet<String>,
    /// The agent's answer as expressions see it (`agent`), once there is one.
    answer: Option<Dynamic>,
    shared: Shared,
}

impl RuleSetEvaluation<'_> {
    /// A fired `kind: cases` rule with its fields evaluated now.
    fn case_record(&mut self, rule: &CompiledCaseRule) -> Result<CaseRecord, RuleError> {
        let fields = self.record_values(&rule.fields, &format_args!("cases rule {}", rule.name))?;
        Ok(CaseRecord {
            rule: rule.name.clone(),
            update: rule.update,
            record_type: rule.record_type.clone(),
            owner: rule.owner.clone(),
            transcript_field: rule.transcript_field.clone(),
            fields,
            close_status: rule.close_status.clone(),
        })
    }

    /// The values of fields a rule writes on a record, evaluated now (empty ones left out).
    fn record_values(
        &mut self,
        fields: &[CompiledField],
        owner: &dyn Display,
    ) -> Result<BTreeMap<String, Json>, RuleError> {
        let mut values = BTreeMap::new();
        for f in fields {
            let value = match (&f.expr, &f.from) {
                (Some(expr), _) => {
                    let scope = self.shared.scope(view!(self), self.answer.as_ref());
                    self.set.eval_json(expr, scope, &format_args!("{owner}: field {}", f.field))?
                }
                (None, Some(attribute)) => self.attributes.get(attribute).cloned().unwrap_or(Json::Null),
                (None, None) => Json::Null,
            };
            if !value.is_null() {
                values.insert(f.field.clone(), value);
            }
        }
        Ok(values)
    }

    fn handover_at(&mut self, stage: Stage, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        let set = self.set;
        let trace_stage = if stage == Stage::Before { TraceStage::HandoverBefore } else { TraceStage::HandoverAfter };
        // Each rule's time runs from where the one before it was recorded: one clock read a rule.
        let mut started = Instant::now();
        for rule in set.handover.iter().filter(|r| r.stage == stage) {
            let scope = self.shared.scope(view!(self), self.answer.as_ref());
            let fired = set.eval_bool(&rule.when, scope, &rule.name)?;
            started = trace.record(trace_stage, &rule.label, fired, &rule.when_detail, started);
            if fired {
                let reason = templates::render_in(&set.text, &rule.reason, self.shared.context(view!(self), None))
                    .map_err(|message| RuleError { rule: rule.name.clone(), message })?;
                return Ok(Some(Handover { target: rule.target.clone(), reason, rule: rule.name.clone() }));
            }
        }
        match (stage, &self.answer) {
            (Stage::Before, _) if set.hooks.handover => {
                let value = set.call_hook("handover", (hook_view(view!(self)),), trace, trace_stage)?;
                set.hook_handover("handover", value)
            }
            (Stage::After, Some(answer)) if set.hooks.handover_after => {
                let args = (hook_view(view!(self)), answer.clone());
                let value = set.call_hook("handover_after", args, trace, trace_stage)?;
                set.hook_handover("handover_after", value)
            }
            _ => Ok(None),
        }
    }
}

impl Evaluation for RuleSetEvaluation<'_> {
    fn inbound(&mut self, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        let set = self.set;
        let mut out = BTreeMap::new();
        // Each rule's time runs from where the one before it was recorded: one clock read a rule.
        let mut started = Instant::now();
        for m in &set.inbound {
            let raw = m.from.as_deref().and_then(|f| field_at(&self.conversation.case_fields, f)).cloned();
            let value = match &m.expr {
                Some(expr) => {
                    let scope = self.shared.scope(view!(self), self.answer.as_ref());
                    let len = scope.len();
                    scope.push_dynamic("value", raw.as_ref().map_or(Dynamic::UNIT, to_dynamic));
                    let v = set.eval_json(expr, scope, &format_args!("attribute {}", m.attribute));
                    scope.rewind(len);
                    Some(v?).filter(|v| !v.is_null())
                }
                None => raw,
            };
            let value = value.or_else(|| m.default.clone());
            let detail = format!("{} = {}", m.attribute, value.as_ref().unwrap_or(&Json::Null));
            started = trace.record(TraceStage::Inbound, &m.label, value.is_some(), detail, started);
            if let Some(v) = value {
                out.insert(m.attribute.clone(), v);
            }
        }
        self.attributes.extend(out.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.shared.changed(Changed::Attributes);
        Ok(out)
    }

    fn topics(&mut self, trace: &mut Trace) -> Result<BTreeSet<String>, RuleError> {
        let set = self.set;
        let view = view!(self);
        let texts: Vec<&str> = std::iter::once(view.conversation.subject.as_str())
            .chain(view.conversation.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.body.as_str()))
            .collect();
        let mut out = BTreeSet::new();
        // Each rule's time runs from where the one before it was recorded: one clock read a rule.
        let mut started = Instant::now();
        for t in &set.topics {
            let keyword = t.keywords.iter().position(|k| texts.iter().any(|x| k.is_match(x)));
            let regex = match &t.regex {
                Some(r) => texts.iter().try_fold(false, |found, x| Ok(found || r.is_match(x)?)).map_err(
                    |message: String| RuleError {
                        rule: format!("topic {}", t.name),
                        message: format!("regex: {message}"),
                    },
                )?,
                None => false,
            };
            let when = match &t.when {
                Some(w) => {
                    let scope = self.shared.scope(view, self.answer.as_ref());
                    set.eval_bool(w, scope, &format_args!("topic {}", t.name))?
                }
                None => false,
            };
            let fired = keyword.is_some() || regex || when;
            let why: TraceText = match (keyword, regex, when) {
                (Some(k), _, _) => (&t.keyword_details[k]).into(),
                (_, true, _) => "regex".into(),
                (_, _, true) => "condition".into(),
                _ => "no match".into(),
            };
            started = trace.record(TraceStage::Topics, &t.label, fired, why, started);
            if fired {
                out.insert(t.name.clone());
            }
        }
        if set.hooks.topics {
            let value = set.call_hook("topics", (hook_view(view),), trace, TraceStage::Topics)?;
            if !value.is_unit() {
                let names = value.try_cast::<rhai::Array>().ok_or_else(|| RuleError {
                    rule: "script hook topics".into(),
                    message: "must return an array of topic names or ()".into(),
                })?;
                out.extend(names.into_iter().filter_map(|n| n.try_cast::<String>()));
            }
        }
        self.topics.extend(out.iter().cloned());
        self.shared.changed(Changed::Topics);
        Ok(out)
    }

    fn handover_before(&mut self, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        self.handover_at(Stage::Before, trace)
    }

    fn feedback(&mut self, text: &str, trace: &mut Trace) -> Result<Feedback, RuleError> {
        let set = self.set;
        let started = Instant::now();
        let builtin = crate::decide::builtin_feedback(text);
        let mut check = |expr: &Option<crate::rules::Expr>, name: &str, default: bool| match expr {
            Some(e) => {
                let scope = self.shared.scope(view!(self), self.answer.as_ref());
                set.eval_bool(e, scope, &format_args!("resolution {name}"))
            }
            None => Ok(default),
        };
        let confirmed = check(&set.confirmed_when, "confirmed_when", builtin.confirmed)?;
        let unhappy = check(&set.unhappy_when, "unhappy_when", builtin.unhappy)?;
        let feedback = Feedback { confirmed, unhappy };
        trace.record(
            TraceStage::Feedback,
            "resolution",
            confirmed || unhappy,
            crate::decide::feedback_detail(feedback),
            started,
        );
        Ok(feedback)
    }

    fn asks_rating(&mut self, trace: &mut Trace) -> Result<bool, RuleError> {
        let set = self.set;
        let Some(expr) = &set.ask_rating_when else { return Ok(false) };
        let started = Instant::now();
        let scope = self.shared.scope(view!(self), self.answer.as_ref());
        let asks = set.eval_bool(expr, scope, &format_args!("resolution ask_rating_when"))?;
        let detail = if asks { "the reply asks for a rating" } else { "no rating asked" };
        trace.record(TraceStage::Feedback, "ask_rating_when", asks, detail, started);
        Ok(asks)
    }

    fn decided(&self) -> (&BTreeMap<String, Json>, &BTreeSet<String>) {
        (&self.attributes, &self.topics)
    }

    fn handover_after(&mut self, answer: &AgentAnswer, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        self.answer = Some(agent_map(Some(answer)));
        self.shared.changed(Changed::Answer);
        self.handover_at(Stage::After, trace)
    }

    fn email(&mut self, reply: &str, trace: &mut Trace) -> Result<RenderedEmail, RuleError> {
        let set = self.set;
        // Each rule's time runs from where the one before it was recorded: one clock read a rule.
        let mut started = Instant::now();
        for t in &set.email {
            let chosen = match &t.when {
                Some(w) => {
                    let scope = self.shared.scope(view!(self), self.answer.as_ref());
                    set.eval_bool(w, scope, &format_args!("email template {}", t.name))?
                }
                None => true,
            };
            if !chosen {
                started = trace.record(TraceStage::Email, &t.label, false, "condition did not hold", started);
                continue;
            }
            let context = self.shared.context(view!(self), Some(reply));
            let render = |registry: &handlebars::Handlebars, name: &str| {
                templates::render_in(registry, name, context)
                    .map_err(|message| RuleError { rule: format!("email template {}", t.name), message })
            };
            let subject = render(&set.text, &t.subject)?;
            let html = t.html.as_ref().map(|n| render(&set.html, n)).transpose()?;
            let text = match (&t.text, &html) {
                (Some(n), _) => render(&set.text, n)?,
                (None, Some(h)) => crate::model::text::html_to_text(h),
                (None, None) => reply.to_string(),
            };
            trace.record(TraceStage::Email, &t.label, true, format!("subject: {subject}"), started);
            return Ok(RenderedEmail { subject, text, html });
        }
        // No template applies: the built-in plain reply.
        crate::decide::BuiltinRules::new("The support team").email(self.conversation, reply, trace)
    }

    fn outbound(&mut self, moment: Moment, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        let set = self.set;
        let mut out = BTreeMap::new();
        // Each rule's time runs from where the one before it was recorded: one clock read a rule.
        let mut started = Instant::now();
        for m in set.outbound.iter().filter(|m| m.on.contains(&moment)) {
            let value = match (&m.expr, &m.from) {
                (Some(expr), _) => {
                    let scope = self.shared.scope(view!(self), self.answer.as_ref());
                    set.eval_json(expr, scope, &format_args!("field {}", m.field))?
                }
                (None, Some(attr)) => self.attributes.get(attr).cloned().unwrap_or(Json::Null),
                (None, None) => Json::Null,
            };
            let current = self.conversation.case_fields.get(&m.field);
            // Write only what changes, so an unchanged case costs no API call.
            let changed = !value.is_null() && current != Some(&value);
            started = trace.record(TraceStage::Outbound, &m.label, changed, format!("{} = {value}", m.field), started);
            if changed {
                out.insert(m.field.clone(), value);
            }
        }
        Ok(out)
    }

    fn case(&mut self, moment: CaseMoment, trace: &mut Trace) -> Result<Option<CaseRecord>, RuleError> {
        let set = self.set;
        let mut started = Instant::now();
        for rule in set.cases.iter().filter(|r| r.update || !moment.has_case) {
            let (triggered, detail) = match rule.on {
                CaseTrigger::Handover => (moment.handover, "on: handover"),
                CaseTrigger::Start => (moment.start, "on: start"),
                CaseTrigger::Topic => (rule.topic.as_ref().is_some_and(|t| self.topics.contains(t)), "on: topic"),
                CaseTrigger::Condition => (true, "on: condition"),
            };
            let fired = triggered
                && match &rule.when {
                    Some(when) => {
                        let scope = self.shared.scope(view!(self), self.answer.as_ref());
                        set.eval_bool(when, scope, &format_args!("cases rule {}", rule.name))?
                    }
                    None => true,
                };
            started = trace.record(TraceStage::Case, &rule.label, fired, detail, started);
            if fired {
                return self.case_record(rule).map(Some);
            }
        }
        Ok(None)
    }

    fn lead(&mut self, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        let started = Instant::now();
        let values = self.record_values(&self.set.lead, &"lead mapping")?;
        if !self.set.lead.is_empty() {
            trace.record(
                TraceStage::Outbound,
                "lead",
                !values.is_empty(),
                format!("Lead: {} field(s)", values.len()),
                started,
            );
        }
        Ok(values)
    }

    fn case_rule(&mut self, name: &str, trace: &mut Trace) -> Result<Option<CaseRecord>, RuleError> {
        let Some(rule) = self.set.cases.iter().find(|r| r.name == name) else { return Ok(None) };
        let started = Instant::now();
        let record = self.case_record(rule)?;
        trace.record(TraceStage::Case, &rule.label, true, "the conversation closed", started);
        Ok(Some(record))
    }
}
