//! The baseline casebridge's decisions are measured against: the shipped rules run through
//! Rhai directly, as lean as a hand-written program can make them, doing the same work a
//! decision does and nothing more.
//!
//! The same engine with the same limits and helpers (`rules_engine`), the same expressions
//! compiled once, one scope per decision built straight from the case row, keywords and
//! the regex matched with the same kind of compiled patterns, the same handlebars templates
//! for reasons and emails rendered from one context a decision. What it leaves out is what
//! casebridge adds around that: the trace, error placement, the rule-set abstraction and
//! the decision budget.

use std::collections::BTreeMap;
use std::path::Path;

use casebridge::model::{AgentAnswer, AuthorKind, Conversation};
use casebridge::rules::host::rules_engine;
use casebridge::rules::template_context;
use casebridge::rules::variables::{agent_map, to_dynamic};
use casebridge::script::Limits;
use regex::Regex;
use rhai::{AST, Dynamic, Engine, Scope};
use serde_json::Value as Json;

/// An inbound mapping: attribute, field path, expression, default.
type Inbound = (String, Option<String>, Option<AST>, Option<Json>);
/// A topic: name, keywords, regex, condition.
type Topic = (String, Vec<Regex>, Option<Regex>, Option<AST>);

/// The shipped rule set, compiled for the baseline.
pub struct Lean {
    engine: Engine,
    inbound: Vec<Inbound>,
    topics: Vec<Topic>,
    /// (before the agent?, condition, reason template name)
    handover: Vec<(bool, AST, String)>,
    /// Outbound mappings: case field, expression.
    outbound: Vec<(String, AST)>,
    text: handlebars::Handlebars<'static>,
    html: handlebars::Handlebars<'static>,
}

/// What a baseline decision produces, so the optimiser cannot drop the work.
#[derive(Debug, Default)]
pub struct LeanDecision {
    pub attributes: BTreeMap<String, Json>,
    pub topics: Vec<String>,
    pub handover: Option<String>,
    pub email: Option<(String, String, String)>,
    pub field_updates: BTreeMap<String, Json>,
}

fn yaml(dir: &Path, file: &str) -> Json {
    serde_yaml::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
}

fn strings(v: &Json) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Json::as_str)
}

impl Lean {
    /// Compiles the shipped files of `dir` (mappings, topics, handover, email).
    pub fn load(dir: &Path) -> Lean {
        let engine = rules_engine(&Limits::default());
        let mut names = Scope::new();
        for v in casebridge::rules::VARIABLES {
            names.push_dynamic(*v, Dynamic::UNIT);
        }
        let compile = |e: &Json| e.as_str().map(|e| engine.compile_expression_with_scope(&names, e).unwrap());
        let mappings = yaml(dir, "mappings.yaml");
        let inbound = mappings["inbound"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let default = Some(m["default"].clone()).filter(|d| !d.is_null());
                (
                    m["attribute"].as_str().unwrap().to_string(),
                    m["from"].as_str().map(String::from),
                    compile(&m["expr"]),
                    default,
                )
            })
            .collect();
        let outbound = mappings["outbound"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["field"].as_str().unwrap().to_string(), compile(&m["expr"]).expect("outbound by expr")))
            .collect();
        let topics = yaml(dir, "topics.yaml")["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let keywords = strings(&t["keywords"])
                    .map(|k| Regex::new(&format!(r"(?i)\b{}\b", regex::escape(k))).unwrap())
                    .collect();
                let regex = t["regex"].as_str().map(|r| Regex::new(r).unwrap());
                (t["name"].as_str().unwrap().to_string(), keywords, regex, compile(&t["when"]))
            })
            .collect();
        let mut text = handlebars::Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        let mut html = handlebars::Handlebars::new();
        let handover = yaml(dir, "handover.yaml")["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let name = r["name"].as_str().unwrap().to_string();
                text.register_template_string(&name, r["reason"].as_str().unwrap()).unwrap();
                (r["stage"].as_str() != Some("after"), compile(&r["when"]).unwrap(), name)
            })
            .collect();
        let email = &yaml(dir, "email.yaml")["templates"][0];
        text.register_template_string("subject", email["subject"].as_str().unwrap()).unwrap();
        let read = |key: &str| std::fs::read_to_string(dir.join(email[key].as_str().unwrap())).unwrap();
        text.register_template_string("text", read("text_file")).unwrap();
        html.register_template_string("html", read("html_file")).unwrap();
        Lean { engine, inbound, topics, handover, outbound, text, html }
    }

    /// One decision: inbound mappings, topics, handover before, the (fixed) answer,
    /// handover after, the email for an email-origin case.
    pub fn decide(&self, c: &Conversation, answer: &AgentAnswer) -> LeanDecision {
        let mut out = LeanDecision::default();
        let mut scope = Scope::new();
        let last = c.last_customer_message().map(|p| p.body.clone()).unwrap_or_default();
        let fields = c.case_fields.iter().map(|(k, v)| (k.as_str().into(), to_dynamic(v))).collect();
        scope.push_constant_dynamic("fields", Dynamic::from_map(fields));
        scope.push_constant("last_message", last);
        scope.push_constant("turns", c.customer_turns() as rhai::INT);
        scope.push_constant("replies", c.replies_sent as rhai::INT);
        let hours = (chrono::Utc::now() - c.created_at).num_minutes() as rhai::FLOAT / 60.0;
        scope.push_constant("hours_open", hours);
        scope.push_constant("channel", c.channel.as_str().to_string());
        scope.push_constant("origin", c.origin.clone().unwrap_or_default());
        scope.push_constant("subject", c.subject.clone());
        scope.push_constant("resolution", c.resolution.map_or("", |r| r.state.as_str()).to_string());
        scope.push_constant("ai_involved", c.ai_involved);
        for (attribute, from, expr, default) in &self.inbound {
            let raw = from.as_deref().and_then(|f| {
                let mut path = f.split('.');
                let first = c.case_fields.get(path.next()?)?;
                path.try_fold(first, |v, k| v.get(k))
            });
            let raw = raw.filter(|v| !v.is_null()).cloned();
            let value = match expr {
                Some(expr) => {
                    let len = scope.len();
                    scope.push_dynamic("value", raw.map_or(Dynamic::UNIT, |v| to_dynamic(&v)));
                    let v: Dynamic = self.engine.eval_ast_with_scope(&mut scope, expr).unwrap();
                    scope.rewind(len);
                    Some(rhai::serde::from_dynamic::<Json>(&v).unwrap()).filter(|v| !v.is_null())
                }
                None => raw,
            };
            if let Some(v) = value.or_else(|| default.clone()) {
                out.attributes.insert(attribute.clone(), v);
            }
        }
        let attributes = out.attributes.iter().map(|(k, v)| (k.as_str().into(), to_dynamic(v))).collect();
        scope.push_constant_dynamic("attributes", Dynamic::from_map(attributes));
        let texts: Vec<&str> = std::iter::once(c.subject.as_str())
            .chain(c.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.body.as_str()))
            .collect();
        for (name, keywords, regex, when) in &self.topics {
            let hit = |re: &Regex| texts.iter().any(|t| re.is_match(t));
            if keywords.iter().any(hit)
                || regex.as_ref().is_some_and(hit)
                || when.as_ref().is_some_and(|w| self.engine.eval_ast_with_scope::<bool>(&mut scope, w).unwrap())
            {
                out.topics.push(name.clone());
            }
        }
        scope.push_constant_dynamic(
            "topics",
            out.topics.iter().map(|t| Dynamic::from(t.clone())).collect::<Vec<_>>().into(),
        );
        scope.push_constant_dynamic("agent", agent_map(Some(answer)));
        let context = handlebars::Context::from(template_context(c, answer.text.as_deref()));
        for (_, when, name) in self.handover.iter().filter(|h| h.0).chain(self.handover.iter().filter(|h| !h.0)) {
            if self.engine.eval_ast_with_scope::<bool>(&mut scope, when).unwrap() {
                out.handover = Some(self.text.render_with_context(name, &context).unwrap());
                break;
            }
        }
        // Outbound mappings run on handover too (their default moments: sync, handover, close).
        if out.handover.is_none() && c.is_email_origin() && c.customer_email.is_some() {
            out.email = Some((
                self.text.render_with_context("subject", &context).unwrap(),
                self.text.render_with_context("text", &context).unwrap(),
                self.html.render_with_context("html", &context).unwrap(),
            ));
        }
        for (field, expr) in &self.outbound {
            let v: Dynamic = self.engine.eval_ast_with_scope(&mut scope, expr).unwrap();
            let value: Json = rhai::serde::from_dynamic(&v).unwrap();
            if !value.is_null() && c.case_fields.get(field) != Some(&value) {
                out.field_updates.insert(field.clone(), value);
            }
        }
        out
    }
}
