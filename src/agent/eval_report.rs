//! The figures of an agent eval run ([`super::eval`]), the file's thresholds over them,
//! and the report as text, JSON and JUnit XML.
//!
//! The goals the figures are held to (issue 21), on reported halves: the right article
//! shown (stated or suggested) for 0.85 of answerable questions, something shown for at
//! most 0.05 of uncovered ones, stated answers wrong at most 0.02, and the right article
//! among the passages a model is sent for 0.95.

use serde::{Deserialize, Serialize};

use super::eval::{Given, QuestionResult};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub hit_at_1: Option<f64>,
    pub hit_at_3: Option<f64>,
    pub answered_right: Option<f64>,
    /// The most: stated answers from a wrong article, over stated answers.
    pub wrong_answers: Option<f64>,
    pub declined_right: Option<f64>,
    pub shown_right: Option<f64>,
    /// The most: uncovered questions for which anything was shown.
    pub shown_uncovered: Option<f64>,
    pub passage_recall: Option<f64>,
}

impl Thresholds {
    /// The first threshold outside 0 to 1, by name.
    pub fn out_of_range(&self) -> Option<(&'static str, f64)> {
        [
            ("hit_at_1", self.hit_at_1),
            ("hit_at_3", self.hit_at_3),
            ("answered_right", self.answered_right),
            ("wrong_answers", self.wrong_answers),
            ("declined_right", self.declined_right),
            ("shown_right", self.shown_right),
            ("shown_uncovered", self.shown_uncovered),
            ("passage_recall", self.passage_recall),
        ]
        .into_iter()
        .find_map(|(name, v)| v.filter(|v| !(0.0..=1.0).contains(v)).map(|v| (name, v)))
    }
}

/// The figures of one eval run.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub answerable: usize,
    pub not_covered: usize,
    /// Answerable questions whose first-ranked article is an expected one.
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    /// Answerable questions given a stated answer from an expected article.
    pub answered_right: f64,
    /// Answerable questions shown an expected article: stated, or among the suggestions.
    pub shown_right: f64,
    /// Stated answers given (to any question).
    pub stated: usize,
    /// Stated answers from an article not expected, over stated answers.
    pub wrong_answers: f64,
    /// Questions given suggestions.
    pub suggested: usize,
    /// Uncovered questions for which anything was shown (a stated answer or suggestions).
    pub shown_uncovered: f64,
    /// Uncovered questions declined (nothing shown).
    pub declined_right: f64,
    /// Answerable questions with an expected article among the passages retrieved (for a
    /// model: the passages it was sent).
    pub passage_recall: f64,
    pub results: Vec<QuestionResult>,
    /// Each threshold the figures miss, as "name: figure < threshold".
    pub failures: Vec<String>,
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// The figures over `results`, checked against `thresholds`.
pub fn report(results: Vec<QuestionResult>, thresholds: &Thresholds) -> EvalReport {
    let answerable: Vec<(&QuestionResult, &Vec<String>)> =
        results.iter().filter_map(|r| r.expected.as_ref().map(|e| (r, e))).collect();
    let not_covered: Vec<&QuestionResult> = results.iter().filter(|r| r.expected.is_none()).collect();
    let hit = |k: usize| answerable.iter().filter(|(r, e)| r.ranked.iter().take(k).any(|a| e.contains(a))).count();
    let stated: Vec<&QuestionResult> = results.iter().filter(|r| r.given == Given::Stated).collect();
    let stated_right = |r: &QuestionResult, e: &[String]| r.answered_from.as_ref().is_some_and(|a| e.contains(a));
    let stated_wrong = stated.iter().filter(|r| !r.expected.as_ref().is_some_and(|e| stated_right(r, e))).count();
    let shown_uncovered = not_covered.iter().filter(|r| r.given != Given::Declined).count();
    let mut report = EvalReport {
        answerable: answerable.len(),
        not_covered: not_covered.len(),
        hit_at_1: share(hit(1), answerable.len()),
        hit_at_3: share(hit(3), answerable.len()),
        answered_right: share(answerable.iter().filter(|(r, e)| stated_right(r, e)).count(), answerable.len()),
        shown_right: share(answerable.iter().filter(|(r, _)| r.right).count(), answerable.len()),
        stated: stated.len(),
        wrong_answers: share(stated_wrong, stated.len()),
        suggested: results.iter().filter(|r| r.given == Given::Suggested).count(),
        shown_uncovered: share(shown_uncovered, not_covered.len()),
        declined_right: share(not_covered.len() - shown_uncovered, not_covered.len()),
        passage_recall: share(
            answerable.iter().filter(|(r, e)| r.sent.iter().any(|a| e.contains(a))).count(),
            answerable.len(),
        ),
        results: Vec::new(),
        failures: Vec::new(),
    };
    report.results = results;
    report.failures = failures(&report, thresholds);
    report
}

fn failures(report: &EvalReport, t: &Thresholds) -> Vec<String> {
    let mut out = Vec::new();
    // A figure over no question (a half without uncovered ones, say) holds any threshold.
    let (answerable, uncovered, stated) = (report.answerable > 0, report.not_covered > 0, report.stated > 0);
    let t = Thresholds {
        hit_at_1: t.hit_at_1.filter(|_| answerable),
        hit_at_3: t.hit_at_3.filter(|_| answerable),
        answered_right: t.answered_right.filter(|_| answerable),
        shown_right: t.shown_right.filter(|_| answerable),
        passage_recall: t.passage_recall.filter(|_| answerable),
        declined_right: t.declined_right.filter(|_| uncovered),
        shown_uncovered: t.shown_uncovered.filter(|_| uncovered),
        wrong_answers: t.wrong_answers.filter(|_| stated),
    };
    let mut at_least = |name: &str, figure: f64, threshold: Option<f64>| {
        if let Some(min) = threshold.filter(|min| figure < *min) {
            out.push(format!("{name}: {figure:.2} < {min:.2}"));
        }
    };
    at_least("hit_at_1", report.hit_at_1, t.hit_at_1);
    at_least("hit_at_3", report.hit_at_3, t.hit_at_3);
    at_least("answered_right", report.answered_right, t.answered_right);
    at_least("shown_right", report.shown_right, t.shown_right);
    at_least("declined_right", report.declined_right, t.declined_right);
    at_least("passage_recall", report.passage_recall, t.passage_recall);
    let mut at_most = |name: &str, figure: f64, threshold: Option<f64>| {
        if let Some(max) = threshold.filter(|max| figure > *max) {
            out.push(format!("{name}: {figure:.2} > {max:.2}"));
        }
    };
    at_most("wrong_answers", report.wrong_answers, t.wrong_answers);
    at_most("shown_uncovered", report.shown_uncovered, t.shown_uncovered);
    out
}

/// What went wrong with one question, in a line.
fn what_happened(r: &QuestionResult) -> String {
    let given = match r.given {
        Given::Stated => format!("stated from {}", r.answered_from.as_deref().unwrap_or("?")),
        Given::Suggested => format!("suggested {}", r.suggested.join(", ")),
        Given::Declined => "declined".into(),
    };
    format!("{given} at {:.2}; ranked {}", r.confidence, r.ranked.join(", "))
}

impl EvalReport {
    /// JUnit XML: a test case per question (failed when the outcome was wrong) and one per
    /// threshold the file sets (failed when missed), so CI systems show both.
    pub fn junit(&self) -> String {
        // XML 1.0 allows no control characters but tab and line breaks.
        let esc = |s: &str| {
            s.chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                .collect::<String>()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
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
                out.push_str(&format!(">\n    <failure message=\"{}\"/>\n  </testcase>\n", esc(&what_happened(r))));
            }
        }
        out.push_str(&format!(
            "  <testcase name=\"thresholds\" classname=\"figures\"><system-out>{}</system-out>",
            esc(&self.figures())
        ));
        if self.failures.is_empty() {
            out.push_str("</testcase>\n");
        } else {
            out.push_str(&format!("\n    <failure message=\"{}\"/>\n  </testcase>\n", esc(&self.failures.join("; "))));
        }
        out.push_str("</testsuite>\n");
        out
    }

    /// The figures, one a line.
    fn figures(&self) -> String {
        format!(
            "{} answerable questions: hit@1 {:.2}, hit@3 {:.2}; the right article shown {:.2} (stated {:.2}); \
             among the passages retrieved {:.2}\n\
             {} stated answers: wrong {:.2}; {} suggestions\n\
             {} questions the help centre does not cover: something shown {:.2}, declined {:.2}\n",
            self.answerable,
            self.hit_at_1,
            self.hit_at_3,
            self.shown_right,
            self.answered_right,
            self.passage_recall,
            self.stated,
            self.wrong_answers,
            self.suggested,
            self.not_covered,
            self.shown_uncovered,
            self.declined_right,
        )
    }

    /// The report as text: one line a question that went wrong, then the figures.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in self.results.iter().filter(|r| !r.right) {
            out.push_str(&format!("wrong  {:?}\n       {}\n", r.ask, what_happened(r)));
        }
        out.push_str(&self.figures());
        for f in &self.failures {
            out.push_str(&format!("below the file's threshold: {f}\n"));
        }
        out
    }
}
