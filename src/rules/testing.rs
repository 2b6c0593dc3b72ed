//! Fixture tests for rule sets (`casebridge rules test`) and decision traces
//! (`casebridge rules explain`).
//!
//! A fixture is a recorded case as the poll query returns it (Salesforce REST JSON: the
//! case with its contact, account, comments and emails), wrapped with the agent user's id
//! so authors are classified as in production: `{"agent_user_id": "005...", "case": {...}}`.
//! Each test runs the real decision — the same `decide()` the daemon uses — with the
//! agent's answer given by the test, and compares what comes out with what it expects.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::files::{AgentStub, Expectations};
use super::{LoadedTest, RuleSet};
use crate::agent::Agent;
use crate::channels::cases::build::{self, Authors};
use crate::decide;
use crate::model::AgentAnswer;
use crate::model::Conversation;
use crate::model::Decision;

/// Reads a fixture file into a conversation.
pub fn load_fixture(path: &Path) -> Result<Conversation, String> {
    let text = super::source::read_regular(path, super::source::MAX_FIXTURE_BYTES)
        .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))?;
    parse_fixture(&text, &path.display().to_string())
}

/// A fixture's text into a conversation; `name` names it in errors.
pub fn parse_fixture(text: &str, name: &str) -> Result<Conversation, String> {
    let fixture: Json = serde_json::from_str(text).map_err(|e| format!("{name}:{}:{}: {e}", e.line(), e.column()))?;
    let agent_user_id = fixture["agent_user_id"].as_str().unwrap_or_default();
    let case = if fixture.get("case").is_some() { &fixture["case"] } else { &fixture };
    build::from_case_row(case, &Authors { agent_user_id }).map_err(|e| format!("{name}: {e}"))
}

fn stub_answer(stub: &AgentStub) -> AgentAnswer {
    match &stub.answer {
        Some(text) => AgentAnswer::answered("fixed", text.clone(), stub.confidence, Vec::new()),
        None => AgentAnswer::cannot_help("fixed", stub.confidence.min(0.0), "the test's agent gives no answer"),
    }
}

/// Runs the rules over a conversation with a canned agent answer, and the resolution step
/// the daemon runs after every decision (its mappings traced in the decision).
pub async fn decide_with(rules: &RuleSet, conversation: &Conversation, stub: &AgentStub) -> Decision {
    let agent = Agent::Fixed(stub_answer(stub));
    let mut decision = match decide::decide(rules, &agent, conversation).await {
        Ok(d) => d,
        // A fixed agent cannot fail.
        Err(e) => unreachable!("the fixed agent failed: {e}"),
    };
    // What the daemon does next with every decision: the resolution, and the mappings again
    // when it moved (a failing mapping shows in the trace, as it does in the daemon's).
    let mut after = conversation.clone();
    if let (_, Err(e)) = decide::resolution::resolve(rules, &mut after, &mut decision, chrono::Utc::now()) {
        decision.trace.0.push(crate::model::TraceEntry {
            stage: crate::model::TraceStage::Error,
            rule: e.rule.clone().into(),
            fired: true,
            detail: e.message.clone().into(),
            micros: 0,
        });
    }
    decision
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    pub name: String,
    pub file: String,
    pub failures: Vec<String>,
    pub micros: u64,
    pub decision: Option<Decision>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the rule set's tests whose name contains `filter`.
pub async fn run(rules: &RuleSet, filter: Option<&str>) -> Vec<TestOutcome> {
    let mut outcomes = Vec::new();
    for LoadedTest { file, test } in rules.tests.iter().filter(|t| filter.is_none_or(|f| t.test.name.contains(f))) {
        let started = Instant::now();
        let text = super::source::read_inside(&rules.dir, file, &test.fixture, super::source::MAX_FIXTURE_BYTES)
            .map_err(|e| format!("cannot read fixture {e}"));
        let outcome = match text.and_then(|t| parse_fixture(&t, &test.fixture.display().to_string())) {
            Ok(conversation) => {
                let decision = decide_with(rules, &conversation, &test.agent).await;
                let failures = compare(&test.expect, &decision);
                TestOutcome {
                    name: test.name.clone(),
                    file: file.display().to_string(),
                    failures,
                    micros: started.elapsed().as_micros() as u64,
                    decision: Some(decision),
                }
            }
            Err(e) => TestOutcome {
                name: test.name.clone(),
                file: file.display().to_string(),
                failures: vec![e],
                micros: started.elapsed().as_micros() as u64,
                decision: None,
            },
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// What differs between the expectation and the decision, one line each.
pub fn compare(expect: &Expectations, d: &Decision) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(reply) = expect.reply
        && reply != d.reply.is_some()
    {
        failures.push(format!("reply: expected {}, got {}", yes_no(reply), yes_no(d.reply.is_some())));
    }
    if let Some(target) = &expect.handover {
        let actual = d.handover.as_ref().map_or("none", |h| h.target.as_str());
        if !target.eq_ignore_ascii_case(actual) {
            let rule = d.handover.as_ref().map(|h| format!(" (rule {})", h.rule)).unwrap_or_default();
            failures.push(format!("handover: expected {target}, got {actual}{rule}"));
        }
    }
    if let Some(rule) = &expect.handover_rule {
        let actual = d.handover.as_ref().map_or("none", |h| h.rule.as_str());
        if rule != actual {
            failures.push(format!("handover rule: expected {rule}, got {actual}"));
        }
    }
    if let Some(topics) = &expect.topics {
        let want: std::collections::BTreeSet<&str> = topics.iter().map(String::as_str).collect();
        let got: std::collections::BTreeSet<&str> = d.topics.iter().map(String::as_str).collect();
        if want != got {
            failures.push(format!("topics: expected {want:?}, got {got:?}"));
        }
    }
    for (name, wanted, actual) in
        [("attributes", &expect.attributes, &d.attributes), ("fields", &expect.fields, &d.field_updates)]
    {
        if let Some(wanted) = wanted {
            for (k, v) in wanted {
                if actual.get(k) != Some(v) {
                    failures.push(format!(
                        "{name}.{k}: expected {v}, got {}",
                        actual.get(k).cloned().unwrap_or(Json::Null)
                    ));
                }
            }
        }
    }
    if let Some(e) = &expect.email {
        match &d.email {
            None => failures.push("email: expected an email, got none".into()),
            Some(email) => {
                if let Some(s) = &e.subject_contains
                    && !email.subject.contains(s)
                {
                    failures.push(format!("email subject: expected it to contain {s:?}, got {:?}", email.subject));
                }
                for fragment in &e.body_contains {
                    if !email.text.contains(fragment) {
                        failures.push(format!("email body: expected it to contain {fragment:?}, got {:?}", email.text));
                    }
                }
                for fragment in &e.html_contains {
                    if !email.html.as_deref().unwrap_or_default().contains(fragment) {
                        failures.push(format!("email html: expected it to contain {fragment:?}, got {:?}", email.html));
                    }
                }
            }
        }
    }
    failures
}

fn yes_no(b: bool) -> &'static str {
    if b { "a reply" } else { "no reply" }
}

/// The decision trace, for people.
pub fn explain(decision: &Decision) -> String {
    let mut out = String::new();
    out.push_str(&format!("rule set {}\n", decision.rules));
    for t in &decision.trace.0 {
        out.push_str(&format!(
            "  {:<16} {:<28} {:<5} {:>6} µs  {}\n",
            t.stage,
            t.rule,
            if t.fired { "FIRED" } else { "-" },
            t.micros,
            t.detail
        ));
    }
    out.push_str(&format!("attributes: {}\n", json!(decision.attributes)));
    out.push_str(&format!("topics: {:?}\n", decision.topics));
    match &decision.handover {
        Some(h) => out.push_str(&format!("handover: to {} by rule {}: {}\n", h.target, h.rule, h.reason)),
        None => out.push_str("handover: none\n"),
    }
    out.push_str(&format!("reply: {}\n", decision.reply.as_deref().map_or("none".to_string(), |r| format!("{r:?}"))));
    if let Some(e) = &decision.email {
        out.push_str(&format!("email subject: {}\n", e.subject));
    }
    out.push_str(&format!("field updates: {}\n", json!(decision.field_updates)));
    out
}

/// JUnit XML for CI systems.
pub fn junit(outcomes: &[TestOutcome]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let failures = outcomes.iter().filter(|o| !o.passed()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"casebridge rules\" tests=\"{}\" failures=\"{failures}\">\n",
        outcomes.len()
    );
    for o in outcomes {
        out.push_str(&format!(
            "  <testcase name=\"{}\" classname=\"{}\" time=\"{:.6}\"",
            esc(&o.name),
            esc(&o.file),
            o.micros as f64 / 1e6
        ));
        if o.passed() {
            out.push_str("/>\n");
        } else {
            out.push_str(&format!(
                ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                esc(&o.failures[0]),
                esc(&o.failures.join("\n"))
            ));
        }
    }
    out.push_str("</testsuite>\n");
    out
}
