//! Testing the agent the way rule sets are tested: an eval file lists questions as customers
//! ask them, each with the help articles that answer it or `cannot_help` where the help
//! centre has no answer (and the right outcome is a handover). `casebridge agent eval` runs
//! the configured agent (the knowledge base, or the model grounded in it) over them and
//! reports how often the right article ranks first (hit@1)
//! or in the top three (hit@3), how often the agent answered from a right article, and how
//! many of its answers were wrong; the file's thresholds make it pass or fail.

use std::path::Path;

use serde::{Deserialize, Serialize};

use futures_util::StreamExt;

use super::Agent;
use crate::knowledge::Index;
use crate::model::{AgentAnswer, Conversation, View};

/// The most questions one eval file may hold.
pub const MAX_QUESTIONS: usize = 10_000;

/// An eval file (`kind: agent_eval`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalFile {
    pub kind: String,
    /// The least (or, for `wrong_answers`, the most) each figure may be, from 0 to 1.
    #[serde(default)]
    pub thresholds: Thresholds,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub hit_at_1: Option<f64>,
    pub hit_at_3: Option<f64>,
    pub answered_right: Option<f64>,
    pub wrong_answers: Option<f64>,
    pub declined_right: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub ask: String,
    pub expect: Expect,
}

/// The articles (by id: a markdown article's file name without `.md`) that answer a
/// question, or `cannot_help`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Expect {
    Articles(Vec<String>),
    Outcome(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    CannotHelp,
}

/// What happened to one question.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    pub ask: String,
    /// The articles ranked first, best first (at most three).
    pub ranked: Vec<String>,
    /// The article the agent answered from, or `None` when it declined.
    pub answered_from: Option<String>,
    pub confidence: f64,
    /// Whether the outcome was right: answered from an expected article, or declined a
    /// question the help centre does not cover.
    pub right: bool,
}

/// The figures of one eval run.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub answerable: usize,
    pub not_covered: usize,
    /// Answerable questions whose first-ranked article is an expected one.
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    /// Answerable questions answered from an expected article.
    pub answered_right: f64,
    /// Answers given (to any question) from an article not expected, over answers given.
    pub wrong_answers: f64,
    /// Questions the help centre does not cover that the agent declined.
    pub declined_right: f64,
    pub results: Vec<QuestionResult>,
    /// Each threshold the figures miss, as "name: figure < threshold".
    pub failures: Vec<String>,
}

/// Reads an eval file, with the file, line and column of what is wrong.
pub fn load(path: &Path) -> Result<EvalFile, String> {
    let text = crate::bounded_file::read(path, 16 << 20).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: EvalFile = serde_yaml::from_str(&text).map_err(|e| match e.location() {
        Some(at) => format!("{}:{}:{}: {e}", path.display(), at.line(), at.column()),
        None => format!("{}: {e}", path.display()),
    })?;
    if file.kind != "agent_eval" {
        return Err(format!("{}: kind must be agent_eval, not {:?}", path.display(), file.kind));
    }
    if file.questions.is_empty() || file.questions.len() > MAX_QUESTIONS {
        return Err(format!("{}: an eval file holds 1 to {MAX_QUESTIONS} questions", path.display()));
    }
    Ok(file)
}

/// How many questions are put to the agent at once (an AI service answers in seconds).
const QUESTIONS_AT_ONCE: usize = 8;

/// Runs the agent over every question of `file`: the knowledge base's ranking, and the
/// agent's answer (for a model, the article of the first passage it cited). An agent
/// without a help centre (a script) cannot be measured; an AI-service failure stops the run.
pub async fn run(agent: &Agent, file: &EvalFile) -> Result<EvalReport, String> {
    let Some(index) = agent.library().map(|l| l.current()) else {
        return Err(format!(
            "agent eval measures an agent that answers from a help centre; agent.backend is {}",
            agent.backend()
        ));
    };
    let answers: Vec<Result<AgentAnswer, String>> = futures_util::stream::iter(&file.questions)
        .map(|q| async move {
            let conversation = Conversation::from_question(&q.ask);
            agent.answer(View::of(&conversation)).await.map_err(|e| format!("{:?}: {e}", q.ask))
        })
        .buffered(QUESTIONS_AT_ONCE)
        .collect()
        .await;
    let mut results: Vec<(QuestionResult, Option<&[String]>)> = Vec::new();
    for (q, answer) in file.questions.iter().zip(answers) {
        let answer = answer?;
        let expected = match &q.expect {
            Expect::Articles(a) => Some(a.as_slice()),
            Expect::Outcome(Outcome::CannotHelp) => None,
        };
        let ranked: Vec<String> =
            index.ranked_articles(&q.ask).into_iter().take(3).map(|(a, _)| a.id.clone()).collect();
        let answered_from = answer.text.as_ref().and_then(|_| answered_from(&index, &answer));
        let right = match (expected, &answered_from) {
            (Some(e), Some(a)) => e.contains(a),
            (None, None) => true,
            _ => false,
        };
        let result = QuestionResult { ask: q.ask.clone(), ranked, answered_from, confidence: answer.confidence, right };
        results.push((result, expected));
    }
    Ok(report(results, &file.thresholds))
}

/// The article an answer came from: its first cited passage's, else its first link's.
fn answered_from(index: &Index, answer: &AgentAnswer) -> Option<String> {
    if let Some(passage) = answer.cited.first() {
        return Some(passage.split('#').next().unwrap_or(passage).to_string());
    }
    let url = &answer.sources.first()?.url;
    index.articles().iter().find(|a| &a.url == url).map(|a| a.id.clone())
}

fn report(results: Vec<(QuestionResult, Option<&[String]>)>, thresholds: &Thresholds) -> EvalReport {
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let answerable: Vec<_> = results.iter().filter_map(|(r, e)| e.map(|e| (r, e))).collect();
    let not_covered: Vec<_> = results.iter().filter(|(_, e)| e.is_none()).map(|(r, _)| r).collect();
    let hit = |k: usize| answerable.iter().filter(|(r, e)| r.ranked.iter().take(k).any(|a| e.contains(a))).count();
    let answers: Vec<_> = results.iter().filter(|(r, _)| r.answered_from.is_some()).collect();
    let mut report = EvalReport {
        answerable: answerable.len(),
        not_covered: not_covered.len(),
        hit_at_1: share(hit(1), answerable.len()),
        hit_at_3: share(hit(3), answerable.len()),
        answered_right: share(answerable.iter().filter(|(r, _)| r.right).count(), answerable.len()),
        wrong_answers: share(answers.iter().filter(|(r, _)| !r.right).count(), answers.len()),
        declined_right: share(not_covered.iter().filter(|r| r.right).count(), not_covered.len()),
        results: results.into_iter().map(|(r, _)| r).collect(),
        failures: Vec::new(),
    };
    report.failures = failures(&report, thresholds);
    report
}

fn failures(report: &EvalReport, t: &Thresholds) -> Vec<String> {
    let mut out = Vec::new();
    let mut at_least = |name: &str, figure: f64, threshold: Option<f64>| {
        if let Some(min) = threshold.filter(|min| figure < *min) {
            out.push(format!("{name}: {figure:.2} < {min:.2}"));
        }
    };
    at_least("hit_at_1", report.hit_at_1, t.hit_at_1);
    at_least("hit_at_3", report.hit_at_3, t.hit_at_3);
    at_least("answered_right", report.answered_right, t.answered_right);
    at_least("declined_right", report.declined_right, t.declined_right);
    if let Some(max) = t.wrong_answers.filter(|max| report.wrong_answers > *max) {
        out.push(format!("wrong_answers: {:.2} > {max:.2}", report.wrong_answers));
    }
    out
}

impl EvalReport {
    /// JUnit XML: a test case per question (failed when the outcome was wrong) and one per
    /// threshold the file sets (failed when missed), so CI systems show both.
    pub fn junit(&self) -> String {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        let wrong = self.results.iter().filter(|r| !r.right).count();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"casebridge agent eval\" tests=\"{}\" failures=\"{}\">\n",
            self.results.len() + 1,
            wrong + usize::from(!self.failures.is_empty())
        );
        for r in &self.results {
            out.push_str(&format!("  <testcase name=\"{}\" classname=\"questions\"", esc(&r.ask)));
            if r.right {
                out.push_str("/>\n");
            } else {
                let answered = r.answered_from.as_deref().unwrap_or("(declined)");
                let message =
                    format!("answered from {answered} at {:.2}; ranked {}", r.confidence, r.ranked.join(", "));
                out.push_str(&format!(">\n    <failure message=\"{}\"/>\n  </testcase>\n", esc(&message)));
            }
        }
        out.push_str("  <testcase name=\"thresholds\" classname=\"figures\"");
        if self.failures.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(&format!(">\n    <failure message=\"{}\"/>\n  </testcase>\n", esc(&self.failures.join("; "))));
        }
        out.push_str("</testsuite>\n");
        out
    }

    /// The report as text: one line a question that went wrong, then the figures.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in self.results.iter().filter(|r| !r.right) {
            let answered = r.answered_from.as_deref().unwrap_or("(declined)");
            out.push_str(&format!(
                "wrong  {:?}\n       answered from {answered} at {:.2}; ranked {}\n",
                r.ask,
                r.confidence,
                r.ranked.join(", ")
            ));
        }
        out.push_str(&format!(
            "{} answerable questions: hit@1 {:.2}, hit@3 {:.2}, answered from a right article {:.2}\n\
             {} questions the help centre does not cover: declined {:.2}\n\
             wrong answers: {:.2} of the answers given\n",
            self.answerable,
            self.hit_at_1,
            self.hit_at_3,
            self.answered_right,
            self.not_covered,
            self.declined_right,
            self.wrong_answers
        ));
        for f in &self.failures {
            out.push_str(&format!("below the file's threshold: {f}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::kb::KnowledgeBase;

    const ARTICLES: &[(&str, &str)] = &[
        (
            "gripper",
            "# Calibrating the gripper\n\n## How to recalibrate\nHold the gripper reset button for five seconds, then run the calibration wizard.",
        ),
        (
            "billing",
            "# Billing and invoices\n\n## Invoices\nInvoices are emailed monthly; download past invoices from the customer portal.",
        ),
    ];

    fn question(ask: &str, expect: Expect) -> Question {
        Question { ask: ask.into(), expect }
    }

    #[tokio::test]
    async fn each_figure_counts_what_it_says() {
        let kb = Agent::KnowledgeBase(KnowledgeBase::from_articles(ARTICLES, "https://help.example", 0.35));
        let articles = |a: &str| Expect::Articles(vec![a.into()]);
        let file = EvalFile {
            kind: "agent_eval".into(),
            thresholds: Thresholds { wrong_answers: Some(0.4), declined_right: Some(0.6), ..Thresholds::default() },
            questions: vec![
                // Answered from the right article.
                question("How do I recalibrate the gripper with the reset button?", articles("gripper")),
                // Answered, from an article the file does not expect: a wrong answer.
                question("Where can I download past invoices from the portal?", articles("gripper")),
                // Not covered and declined: right.
                question("Do you deliver by zeppelin?", Expect::Outcome(Outcome::CannotHelp)),
                // Not covered, yet answered: wrong.
                question(
                    "Can I get invoices emailed monthly from the customer portal?",
                    Expect::Outcome(Outcome::CannotHelp),
                ),
            ],
        };
        let report = run(&kb, &file).await.unwrap();
        let outcomes: Vec<_> = report.results.iter().map(|r| (r.answered_from.as_deref(), r.right)).collect();
        assert_eq!(
            outcomes,
            [(Some("gripper"), true), (Some("billing"), false), (None, true), (Some("billing"), false)],
            "{}",
            report.render()
        );
        assert_eq!((report.answerable, report.not_covered), (2, 2));
        assert_eq!((report.hit_at_1, report.hit_at_3, report.answered_right), (0.5, 0.5, 0.5));
        assert_eq!((report.declined_right, report.wrong_answers), (0.5, 2.0 / 3.0));
        assert_eq!(report.failures, ["declined_right: 0.50 < 0.60", "wrong_answers: 0.67 > 0.40"]);
        let junit = report.junit();
        assert!(junit.contains("tests=\"5\" failures=\"3\""), "{junit}");
        assert!(
            junit.contains("<failure message=\"declined_right: 0.50 &lt; 0.60; wrong_answers: 0.67 &gt; 0.40\"/>"),
            "{junit}"
        );
    }

    #[tokio::test]
    async fn an_agent_without_a_help_centre_cannot_be_measured() {
        let fixed = Agent::Fixed(AgentAnswer::answered("fixed", "Hi".into(), 1.0, Vec::new()));
        let file = EvalFile {
            kind: "agent_eval".into(),
            thresholds: Thresholds::default(),
            questions: vec![question("Hi?", Expect::Outcome(Outcome::CannotHelp))],
        };
        assert!(run(&fixed, &file).await.unwrap_err().contains("agent.backend is fixed"));
    }
}
