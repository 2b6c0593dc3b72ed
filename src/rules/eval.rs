//! Evaluating a rule set: the Rhai scope a conversation becomes, expressions and hooks
//! run in the sandbox (their errors placed at the rule's file, line and column), and the
//! decision points of [`crate::decide::Rules`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::Utc;
use rhai::{Dynamic, Scope};
use serde_json::{Value as Json, json};

use super::files::Stage;
use super::{Expr, RuleSet, templates};
use crate::decide::Rules;
use crate::model::{AgentAnswer, AuthorKind, Conversation, Handover, Moment, RenderedEmail, RuleError, Trace};
use crate::script;

impl RuleSet {
    /// Builds the variables expressions see.
    fn scope(&self, conversation: &Conversation, agent: Option<&AgentAnswer>) -> Scope<'static> {
        let mut scope = Scope::new();
        fn to_dyn<T: serde::Serialize + ?Sized>(value: &T) -> Dynamic {
            rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
        }
        scope.push_constant_dynamic("fields", to_dyn(&conversation.case_fields));
        scope.push_constant_dynamic("attributes", to_dyn(&conversation.attributes));
        scope.push_constant_dynamic("topics", to_dyn(&conversation.topics));
        let last = conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default();
        scope.push_constant("last_message", last);
        scope.push_constant("turns", conversation.customer_turns() as rhai::INT);
        scope.push_constant("replies", conversation.replies_sent as rhai::INT);
        let hours = (Utc::now() - conversation.created_at).num_minutes() as rhai::FLOAT / 60.0;
        scope.push_constant("hours_open", hours);
        scope.push_constant("origin", conversation.origin.clone().unwrap_or_default());
        scope.push_constant("subject", conversation.subject.clone());
        let agent = match agent {
            Some(a) => {
                json!({ "answered": a.text.is_some(), "confidence": a.confidence, "text": a.text.clone().unwrap_or_default() })
            }
            None => json!({ "answered": false, "confidence": 0.0, "text": "" }),
        };
        scope.push_constant_dynamic("agent", to_dyn(&agent));
        scope.push_constant_dynamic("value", Dynamic::UNIT);
        scope
    }

    /// What hooks receive as `conversation`.
    fn hook_view(conversation: &Conversation) -> Dynamic {
        let parts: Vec<Json> = conversation
            .parts
            .iter()
            .map(|p| json!({ "author": p.author, "kind": p.kind, "body": p.body, "public": p.public, "created_at": p.created_at }))
            .collect();
        let view = json!({
            "case_id": conversation.case_id,
            "case_number": conversation.case_number,
            "subject": conversation.subject,
            "origin": conversation.origin,
            "status": conversation.status,
            "fields": conversation.case_fields,
            "attributes": conversation.attributes,
            "topics": conversation.topics,
            "parts": parts,
            "last_message": conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default(),
            "turns": conversation.customer_turns(),
            "replies": conversation.replies_sent,
        });
        rhai::serde::to_dynamic(&view).unwrap_or(Dynamic::UNIT)
    }

    fn call_hook(
        &self,
        name: &str,
        args: impl rhai::FuncArgs,
        trace: &mut Trace,
        stage: &str,
    ) -> Result<Dynamic, RuleError> {
        let started = Instant::now();
        let result = script::call(&self.engine, &self.functions, &self.limits, name, args)
            .map_err(|e| RuleError { rule: format!("script hook {name}"), message: e.to_string() })?;
        trace.record(stage, &format!("fn {name}"), !result.is_unit(), format!("returned {result}"), started);
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

    fn eval(&self, expr: &Expr, scope: &mut Scope, rule: &str) -> Result<Dynamic, RuleError> {
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

    fn eval_bool(&self, expr: &Expr, scope: &mut Scope, rule: &str) -> Result<bool, RuleError> {
        let v = self.eval(expr, scope, rule)?;
        v.as_bool().map_err(|t| RuleError {
            rule: rule.to_string(),
            message: format!("the condition `{}` gave a {t}, not true or false", expr.text),
        })
    }

    fn eval_json(&self, expr: &Expr, scope: &mut Scope, rule: &str) -> Result<Json, RuleError> {
        let v = self.eval(expr, scope, rule)?;
        rhai::serde::from_dynamic(&v).map_err(|e| RuleError { rule: rule.to_string(), message: e.to_string() })
    }

    fn handover_at(
        &self,
        stage: Stage,
        conversation: &Conversation,
        agent: Option<&AgentAnswer>,
        trace: &mut Trace,
    ) -> Result<Option<Handover>, RuleError> {
        let mut scope = self.scope(conversation, agent);
        let stage_name = if stage == Stage::Before { "handover_before" } else { "handover_after" };
        for rule in self.handover.iter().filter(|r| r.stage == stage) {
            let started = Instant::now();
            let fired = self.eval_bool(&rule.when, &mut scope, &rule.name)?;
            trace.record(stage_name, &rule.name, fired, format!("when: {}", rule.when.text), started);
            if fired {
                let reason = templates::render(&self.text, &rule.reason, &template_context(conversation, None))
                    .map_err(|message| RuleError { rule: rule.name.clone(), message })?;
                return Ok(Some(Handover { target: rule.target.clone(), reason, rule: rule.name.clone() }));
            }
        }
        match (stage, agent) {
            (Stage::Before, _) if self.hooks.handover => {
                let value = self.call_hook("handover", (Self::hook_view(conversation),), trace, stage_name)?;
                self.hook_handover("handover", value)
            }
            (Stage::After, Some(a)) if self.hooks.handover_after => {
                let agent = json!({ "answered": a.text.is_some(), "confidence": a.confidence, "text": a.text.clone().unwrap_or_default() });
                let agent = rhai::serde::to_dynamic(&agent).unwrap_or(Dynamic::UNIT);
                let value =
                    self.call_hook("handover_after", (Self::hook_view(conversation), agent), trace, stage_name)?;
                self.hook_handover("handover_after", value)
            }
            _ => Ok(None),
        }
    }
}

/// What email templates and reasons see.
pub fn template_context(conversation: &Conversation, reply: Option<&str>) -> Json {
    let contact_name = conversation.contact.as_ref().and_then(|c| c.name.clone()).unwrap_or_default();
    let first_name = contact_name.split_whitespace().next().unwrap_or("there").to_string();
    let reply = reply.unwrap_or_default();
    let reply_html: String = reply
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", html_escape(p).replace('\n', "<br>")))
        .collect::<Vec<_>>()
        .join("\n");
    json!({
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
        "attributes": conversation.attributes,
        "topics": conversation.topics,
        "conversation": {
            "turns": conversation.customer_turns(),
            "replies": conversation.replies_sent,
            "last_message": conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default(),
        },
        "reply": reply,
        "reply_html": reply_html,
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Reads a field path (`Account.Name`) from the case row.
fn field_at<'a>(fields: &'a BTreeMap<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.split('.');
    let mut current = fields.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current).filter(|v| !v.is_null())
}

impl Rules for RuleSet {
    fn id(&self) -> String {
        self.hash.clone()
    }

    fn case_fields(&self) -> Vec<String> {
        self.case_fields.iter().cloned().collect()
    }

    fn inbound(&self, conversation: &Conversation, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        let mut out = BTreeMap::new();
        let mut scope = self.scope(conversation, None);
        for m in &self.inbound {
            let started = Instant::now();
            let raw = m.from.as_deref().and_then(|f| field_at(&conversation.case_fields, f)).cloned();
            let value = match &m.expr {
                Some(expr) => {
                    let len = scope.len();
                    scope.push_dynamic(
                        "value",
                        raw.as_ref()
                            .map(|v| rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT))
                            .unwrap_or(Dynamic::UNIT),
                    );
                    let v = self.eval_json(expr, &mut scope, &format!("attribute {}", m.attribute));
                    scope.rewind(len);
                    Some(v?).filter(|v| !v.is_null())
                }
                None => raw,
            };
            let value = value.or_else(|| m.default.clone());
            trace.record(
                "inbound",
                &m.attribute,
                value.is_some(),
                format!("{} = {}", m.attribute, value.clone().unwrap_or(Json::Null)),
                started,
            );
            if let Some(v) = value {
                out.insert(m.attribute.clone(), v);
            }
        }
        Ok(out)
    }

    fn topics(&self, conversation: &Conversation, trace: &mut Trace) -> Result<BTreeSet<String>, RuleError> {
        let texts: Vec<&str> = std::iter::once(conversation.subject.as_str())
            .chain(conversation.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.body.as_str()))
            .collect();
        let mut scope = self.scope(conversation, None);
        let mut out = BTreeSet::new();
        for t in &self.topics {
            let started = Instant::now();
            let keyword = t.keywords.iter().find(|k| texts.iter().any(|x| k.is_match(x)));
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
                Some(w) => self.eval_bool(w, &mut scope, &format!("topic {}", t.name))?,
                None => false,
            };
            let fired = keyword.is_some() || regex || when;
            let why = match (keyword, regex, when) {
                (Some(k), _, _) => {
                    format!("keyword {}", k.as_str().trim_start_matches("(?i)\\b").trim_end_matches("\\b"))
                }
                (_, true, _) => "regex".into(),
                (_, _, true) => "condition".into(),
                _ => "no match".into(),
            };
            trace.record("topics", &t.name, fired, why, started);
            if fired {
                out.insert(t.name.clone());
            }
        }
        if self.hooks.topics {
            let value = self.call_hook("topics", (Self::hook_view(conversation),), trace, "topics")?;
            if !value.is_unit() {
                let names = value.try_cast::<rhai::Array>().ok_or_else(|| RuleError {
                    rule: "script hook topics".into(),
                    message: "must return an array of topic names or ()".into(),
                })?;
                out.extend(names.into_iter().filter_map(|n| n.try_cast::<String>()));
            }
        }
        Ok(out)
    }

    fn handover_before(&self, conversation: &Conversation, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        self.handover_at(Stage::Before, conversation, None, trace)
    }

    fn handover_after(
        &self,
        conversation: &Conversation,
        answer: &AgentAnswer,
        trace: &mut Trace,
    ) -> Result<Option<Handover>, RuleError> {
        self.handover_at(Stage::After, conversation, Some(answer), trace)
    }

    fn email(&self, conversation: &Conversation, reply: &str, trace: &mut Trace) -> Result<RenderedEmail, RuleError> {
        let mut scope = self.scope(conversation, None);
        let context = template_context(conversation, Some(reply));
        for t in &self.email {
            let started = Instant::now();
            let chosen = match &t.when {
                Some(w) => self.eval_bool(w, &mut scope, &format!("email template {}", t.name))?,
                None => true,
            };
            if !chosen {
                trace.record("email", &t.name, false, "condition did not hold", started);
                continue;
            }
            let render = |registry: &handlebars::Handlebars, name: &str| {
                templates::render(registry, name, &context)
                    .map_err(|message| RuleError { rule: format!("email template {}", t.name), message })
            };
            let subject = render(&self.text, &t.subject)?;
            let html = t.html.as_ref().map(|n| render(&self.html, n)).transpose()?;
            let text = match (&t.text, &html) {
                (Some(n), _) => render(&self.text, n)?,
                (None, Some(h)) => crate::model::text::html_to_text(h),
                (None, None) => reply.to_string(),
            };
            trace.record("email", &t.name, true, format!("subject: {subject}"), started);
            return Ok(RenderedEmail { subject, text, html });
        }
        // No template applies: the built-in plain reply.
        crate::decide::BuiltinRules::new("The support team").email(conversation, reply, trace)
    }

    fn outbound(
        &self,
        conversation: &Conversation,
        moment: Moment,
        trace: &mut Trace,
    ) -> Result<BTreeMap<String, Json>, RuleError> {
        let mut out = BTreeMap::new();
        let mut scope = self.scope(conversation, None);
        for m in self.outbound.iter().filter(|m| m.on.contains(&moment)) {
            let started = Instant::now();
            let value = match (&m.expr, &m.from) {
                (Some(expr), _) => self.eval_json(expr, &mut scope, &format!("field {}", m.field))?,
                (None, Some(attr)) => conversation.attributes.get(attr).cloned().unwrap_or(Json::Null),
                (None, None) => Json::Null,
            };
            let current = conversation.case_fields.get(&m.field);
            // Write only what changes, so an unchanged case costs no API call.
            let changed = !value.is_null() && current != Some(&value);
            trace.record("outbound", &m.field, changed, format!("{} = {value}", m.field), started);
            if changed {
                out.insert(m.field.clone(), value);
            }
        }
        Ok(out)
    }
}
