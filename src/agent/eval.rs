//! Testing the agent the way rule sets are tested: an eval file lists questions as customers
//! ask them, each with the help articles that answer it or `cannot_help` where the help
//! centre has no answer (and the right outcome is a handover). `casebridge agent eval` runs
//! the configured agent (the knowledge base, or the model grounded in it) over them and
//! reports the figures of [`report`]: how often the right article ranks first, is stated,
//! is among the suggestions or the passages a model is sent, and how often something is
//! shown for a question the help centre does not cover; the file's thresholds make it
//! pass or fail.
//!
//! Each question may belong to a half: `tune` (where weights, bars and synonyms are
//! chosen) or `report` (the figures docs/agent.md states). A run measures one half, or all.

use std::path::Path;

use serde::{Deserialize, Serialize};

use futures_util::StreamExt;

use super::Agent;
use crate::knowledge::Index;
use crate::model::{AgentAnswer, Conversation, View};

pub use super::eval_report::{EvalReport, Thresholds};

/// The most questions one eval file may hold.
pub const MAX_QUESTIONS: usize = 10_000;
/// How many articles of each question's ranking a report lists (for tuning).
const CANDIDATES: usize = 10;

/// An eval file (`kind: agent_eval`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalFile {
    pub kind: String,
    /// The least (or, for `wrong_answers` and `shown_uncovered`, the most) each figure may
    /// be, from 0 to 1.
    #[serde(default)]
    pub thresholds: Thresholds,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub ask: String,
    pub expect: Expect,
    /// Which half the question belongs to; none: both runs count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half: Option<Half>,
}

/// The half of an eval set a question belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Half {
    /// Where weights, bars and synonyms are chosen.
    Tune,
    /// What is reported.
    Report,
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

/// What the agent did with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Given {
    /// An answer stated as the answer.
    Stated,
    /// Articles offered for the customer to confirm.
    Suggested,
    /// Nothing: a handover.
    Declined,
}

/// An article in a question's ranking, with what each ranker made of its best passage.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub article: String,
    /// BM25F's score (0 when no word matched).
    pub score: f64,
    pub coverage: f64,
    pub matched: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
}

/// What happened to one question.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    pub ask: String,
    /// The articles that answer it; `None`: not covered.
    pub expected: Option<Vec<String>>,
    /// The articles ranked first, best first (at most three).
    pub ranked: Vec<String>,
    pub given: Given,
    /// The article a stated answer came from.
    pub answered_from: Option<String>,
    /// The articles offered.
    pub suggested: Vec<String>,
    /// The articles of the passages retrieved (for a model: the passages it was sent).
    pub sent: Vec<String>,
    pub confidence: f64,
    /// Whether the outcome was right: stated from, or offering, an expected article, or
    /// nothing shown for a question the help centre does not cover.
    pub right: bool,
    /// The best articles by the fused ranking, with each ranker's view (for tuning).
    pub candidates: Vec<Candidate>,
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
    if let Some((name, value)) = file.thresholds.out_of_range() {
        return Err(format!("{}: thresholds.{name}: a number from 0 to 1, found {value}", path.display()));
    }
    Ok(file)
}

/// How many questions are put to the agent at once (an AI service answers in seconds).
const QUESTIONS_AT_ONCE: usize = 8;

/// Runs the agent over the questions of `file` in `half` (all of them for `None`): the
/// ranking, and the agent's answer (for a model, the article of the first passage it
/// cited). An agent without a help centre (a script) cannot be measured; an AI-service
/// failure stops the run.
pub async fn run(agent: &Agent, file: &EvalFile, half: Option<Half>) -> Result<EvalReport, String> {
    let Some(library) = agent.library() else {
        return Err(format!(
            "agent eval measures an agent that answers from a help centre; agent.backend is {}",
            agent.backend()
        ));
    };
    let index = library.current();
    let questions: Vec<&Question> =
        file.questions.iter().filter(|q| half.is_none() || q.half.is_none() || q.half == half).collect();
    if questions.is_empty() {
        return Err(format!("the eval file has no question in the {half:?} half"));
    }
    let answers: Vec<Result<AgentAnswer, String>> = futures_util::stream::iter(&questions)
        .map(|q| async move {
            let conversation = Conversation::from_question(&q.ask);
            agent.answer(View::of(&conversation)).await.map_err(|e| format!("{:?}: {e}", q.ask))
        })
        .buffered(QUESTIONS_AT_ONCE)
        .collect()
        .await;
    let mut results = Vec::new();
    for (q, answer) in questions.iter().zip(answers) {
        let answer = answer?;
        let vector = library.question_vector(&q.ask).map_err(|e| format!("{:?}: {e}", q.ask))?;
        results.push(result(&index, q, &answer, vector.as_deref()));
    }
    Ok(super::eval_report::report(results, &file.thresholds))
}

fn result(index: &Index, q: &Question, answer: &AgentAnswer, vector: Option<&[f32]>) -> QuestionResult {
    let expected = match &q.expect {
        Expect::Articles(a) => Some(a.clone()),
        Expect::Outcome(Outcome::CannotHelp) => None,
    };
    let ranking = index.rank(&q.ask, vector);
    let candidates: Vec<Candidate> = ranking
        .articles(CANDIDATES)
        .into_iter()
        .map(|h| Candidate {
            article: h.article.id.clone(),
            score: h.score,
            coverage: h.coverage,
            matched: h.matched,
            cosine: h.cosine,
        })
        .collect();
    let ranked = candidates.iter().take(3).map(|c| c.article.clone()).collect();
    let article_of = |passage: &str| passage.split('#').next().unwrap_or(passage).to_string();
    let suggested: Vec<String> = answer.suggestions.iter().map(|s| article_of(&s.passage)).collect();
    let given = match (&answer.text, suggested.is_empty()) {
        (None, _) => Given::Declined,
        (Some(_), true) => Given::Stated,
        (Some(_), false) => Given::Suggested,
    };
    let answered_from = (given == Given::Stated).then(|| answered_from(index, answer)).flatten();
    let mut sent: Vec<String> = Vec::new();
    for r in &answer.retrieved {
        let a = article_of(&r.passage);
        if !sent.contains(&a) {
            sent.push(a);
        }
    }
    let right = match (&expected, given) {
        (None, g) => g == Given::Declined,
        (Some(e), Given::Stated) => answered_from.as_ref().is_some_and(|a| e.contains(a)),
        (Some(e), Given::Suggested) => suggested.iter().any(|a| e.contains(a)),
        (Some(_), Given::Declined) => false,
    };
    QuestionResult {
        ask: q.ask.clone(),
        expected,
        ranked,
        given,
        answered_from,
        suggested,
        sent,
        confidence: answer.confidence,
        right,
        candidates,
    }
}

/// The article an answer came from: its first cited passage's, else its first link's.
fn answered_from(index: &Index, answer: &AgentAnswer) -> Option<String> {
    if let Some(passage) = answer.cited.first() {
        return Some(passage.split('#').next().unwrap_or(passage).to_string());
    }
    let url = &answer.sources.first()?.url;
    index.articles().iter().find(|a| &a.url == url).map(|a| a.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::kb::{Bars, KnowledgeBase};

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
        Question { ask: ask.into(), expect, half: None }
    }

    #[tokio::test]
    async fn each_figure_counts_what_it_says() {
        // Every answer above the confidence floor stated, none suggested.
        let kb = KnowledgeBase::from_articles(ARTICLES, "https://help.example", 0.35);
        let bars = Bars { state_at_coverage: Some(0.0), ..kb.bars() };
        let kb = Agent::KnowledgeBase(kb.with_bars(bars));
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
        let report = run(&kb, &file, None).await.unwrap();
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
    async fn suggestions_count_as_shown_and_halves_are_measured_apart() {
        // Nothing stated: every answer above the floor becomes suggestions.
        let kb = KnowledgeBase::from_articles(ARTICLES, "https://help.example", 0.35);
        let bars = Bars { state_at_coverage: None, ..kb.bars() };
        let kb = Agent::KnowledgeBase(kb.with_bars(bars));
        let articles = |a: &str| Expect::Articles(vec![a.into()]);
        let mut tuned = question("How do I recalibrate the gripper with the reset button?", articles("gripper"));
        tuned.half = Some(Half::Tune);
        let mut reported = question("Where can I download past invoices from the portal?", articles("billing"));
        reported.half = Some(Half::Report);
        let mut uncovered =
            question("Can invoices be emailed monthly by zeppelin?", Expect::Outcome(Outcome::CannotHelp));
        uncovered.half = Some(Half::Report);
        let file = EvalFile {
            kind: "agent_eval".into(),
            thresholds: Thresholds { shown_uncovered: Some(0.0), ..Thresholds::default() },
            questions: vec![tuned, reported, uncovered],
        };
        let report = run(&kb, &file, Some(Half::Report)).await.unwrap();
        assert_eq!((report.answerable, report.not_covered), (1, 1), "only the reported half");
        assert_eq!((report.stated, report.suggested), (0, 2));
        assert_eq!((report.shown_right, report.answered_right, report.shown_uncovered), (1.0, 0.0, 1.0));
        assert_eq!(report.results[0].suggested, ["billing"]);
        assert_eq!(report.failures, ["shown_uncovered: 1.00 > 0.00"]);
        assert_eq!(run(&kb, &file, Some(Half::Tune)).await.unwrap().answerable, 1);
        assert_eq!(run(&kb, &file, None).await.unwrap().answerable, 2);
    }

    #[tokio::test]
    async fn an_agent_without_a_help_centre_cannot_be_measured() {
        let fixed = Agent::Fixed(AgentAnswer::answered("fixed", "Hi".into(), 1.0, Vec::new()));
        let file = EvalFile {
            kind: "agent_eval".into(),
            thresholds: Thresholds::default(),
            questions: vec![question("Hi?", Expect::Outcome(Outcome::CannotHelp))],
        };
        assert!(run(&fixed, &file, None).await.unwrap_err().contains("agent.backend is fixed"));
    }
}
