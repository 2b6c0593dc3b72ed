//! Unanswered questions grouped by similarity: what customers asked that the agent could
//! not answer, so the admin sees which articles to write next.
//!
//! Without the embedding model, questions meet on the words they share (the help centre's
//! own analysis: stop words dropped, stems): a question joins the group whose core words
//! (those at least half its questions have) it shares most, when it shares at least
//! [`SHARED_WORDS`] of them, or [`SHARED_SHARE`] of the fewer of its own words and the
//! group's core words. With it, they meet on meaning: a question joins the group whose
//! mean vector is nearest, when the cosine reaches [`MEANING_THRESHOLD`] (chosen on the
//! tuning half of a labelled set; `tests/question_groups.rs` reports the other half).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::knowledge::Embedder;
use crate::knowledge::analyze::question_terms;

/// How many words a question must share with a group to join it (or the share below).
pub const SHARED_WORDS: usize = 2;
/// The share of a question's words that, shared with a group, is enough to join it.
pub const SHARED_SHARE: f64 = 0.5;
/// How many groups the report lists, the largest first.
pub const QUESTION_GROUPS: usize = 20;
/// How many examples a group shows.
pub const GROUP_EXAMPLES: usize = 3;
/// How many questions are grouped, at most: the period's newest (the older are left out).
pub const QUESTIONS_GROUPED: usize = 5_000;
/// How many questions are grouped by meaning, at most, the newest: they are embedded when
/// the report is asked for (about 12 ms a question on one core, run in batches).
pub const QUESTIONS_EMBEDDED: usize = 500;
/// The cosine between a question and a group's mean vector at which it joins the group.
pub const MEANING_THRESHOLD: f32 = 0.35;

/// How questions meet in groups.
#[derive(Clone, Copy)]
pub enum Grouping<'a> {
    /// On the words they share.
    Words,
    /// On meaning, through the embedding model, joining at a cosine of `threshold`.
    Meaning { embedder: &'a dyn Embedder, threshold: f32 },
}

impl Grouping<'_> {
    /// What the report says its groups were made by.
    pub fn name(&self) -> &'static str {
        match self {
            Grouping::Words => "words",
            Grouping::Meaning { .. } => "meaning",
        }
    }
}

/// Questions that belong together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionGroup {
    pub count: u64,
    /// The words most of its questions share, most shared first.
    pub words: Vec<String>,
    /// A few of its questions, as customers wrote them.
    pub examples: Vec<String>,
}

struct Building {
    count: u64,
    /// Each word with how many of the group's questions have it.
    words: Vec<(String, u64)>,
    examples: Vec<String>,
    /// The sum of its questions' unit vectors (grouping by meaning).
    vector_sum: Vec<f32>,
}

impl Building {
    fn new() -> Building {
        Building { count: 0, words: Vec::new(), examples: Vec::new(), vector_sum: Vec::new() }
    }

    /// Counts `question` (with its words) in.
    fn add(&mut self, question: &str, terms: BTreeSet<String>) {
        self.count += 1;
        for term in terms {
            match self.words.iter_mut().find(|(w, _)| *w == term) {
                Some((_, n)) => *n += 1,
                None => self.words.push((term, 1)),
            }
        }
        if self.examples.len() < GROUP_EXAMPLES && !self.examples.iter().any(|e| e == question) {
            self.examples.push(question.to_string());
        }
    }

    /// The cosine between a unit vector and the group's mean.
    fn cosine(&self, vector: &[f32]) -> f32 {
        let dot: f32 = self.vector_sum.iter().zip(vector).map(|(a, b)| a * b).sum();
        let norm = self.vector_sum.iter().map(|a| a * a).sum::<f32>().sqrt();
        if norm == 0.0 { 0.0 } else { dot / norm }
    }

    /// How many words at least half of its questions have.
    fn core(&self) -> usize {
        self.words.iter().filter(|(_, n)| *n * 2 >= self.count).count()
    }

    /// How many of its core words `terms` has.
    fn shared(&self, terms: &BTreeSet<String>) -> usize {
        self.words.iter().filter(|(w, n)| terms.contains(w) && *n * 2 >= self.count).count()
    }
}

/// Groups `questions` (in the order given) as `grouping` says; the largest groups first.
/// Grouping by meaning falls back to words when the model fails.
pub fn group(questions: &[String], grouping: Grouping<'_>) -> (Vec<QuestionGroup>, &'static str) {
    match grouping {
        Grouping::Words => (group_questions(questions), Grouping::Words.name()),
        Grouping::Meaning { embedder, threshold } => match group_by_meaning(questions, embedder, threshold) {
            Ok(groups) => (groups, grouping.name()),
            Err(e) => {
                tracing::warn!(error = %e, "Grouping questions by meaning failed; grouped by their words.");
                (group_questions(questions), Grouping::Words.name())
            }
        },
    }
}

/// Groups `questions` (in the order given) by the words they share; the largest first.
pub fn group_questions(questions: &[String]) -> Vec<QuestionGroup> {
    finish(by_words(questions).0)
}

/// Which group each question joined (`None`: it has no words, or is past the bound), by
/// `grouping`: what an evaluation against labelled questions compares.
pub fn assignments(questions: &[String], grouping: Grouping<'_>) -> Result<Vec<Option<usize>>, String> {
    Ok(match grouping {
        Grouping::Words => by_words(questions).1,
        Grouping::Meaning { embedder, threshold } => by_meaning(questions, embedder, threshold)?.1,
    })
}

fn by_words(questions: &[String]) -> (Vec<Building>, Vec<Option<usize>>) {
    let mut groups: Vec<Building> = Vec::new();
    let mut joined = vec![None; questions.len()];
    // The newest (questions come oldest first): what to write next is what is asked now.
    let first = questions.len().saturating_sub(QUESTIONS_GROUPED);
    for (n, question) in questions.iter().enumerate().skip(first) {
        let terms: BTreeSet<String> = question_terms(question).into_iter().collect();
        if terms.is_empty() {
            continue;
        }
        let best = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.shared(&terms), g.core(), i))
            .filter(|(shared, core, _)| {
                *shared > 0
                    && (*shared >= SHARED_WORDS || *shared as f64 >= SHARED_SHARE * terms.len().min(*core) as f64)
            })
            .map(|(shared, _, i)| (shared, i))
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        let at = place(&mut groups, best.map(|(_, i)| i));
        groups[at].add(question, terms);
        joined[n] = Some(at);
    }
    (groups, joined)
}

/// Groups `questions` (in the order given, the newest [`QUESTIONS_EMBEDDED`]) by meaning:
/// each joins the group whose mean vector is nearest, when the cosine reaches `threshold`.
pub fn group_by_meaning(
    questions: &[String],
    embedder: &dyn Embedder,
    threshold: f32,
) -> Result<Vec<QuestionGroup>, String> {
    Ok(finish(by_meaning(questions, embedder, threshold)?.0))
}

fn by_meaning(
    questions: &[String],
    embedder: &dyn Embedder,
    threshold: f32,
) -> Result<(Vec<Building>, Vec<Option<usize>>), String> {
    let mut groups: Vec<Building> = Vec::new();
    let mut joined = vec![None; questions.len()];
    let first = questions.len().saturating_sub(QUESTIONS_EMBEDDED);
    // Each distinct question embedded once, all in one pass of the model (it batches).
    let mut distinct: Vec<&str> = questions[first..].iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let vectors = embedder.text_vectors(&distinct)?;
    if vectors.len() != distinct.len() {
        return Err(format!("the model gave {} vectors for {} questions", vectors.len(), distinct.len()));
    }
    for (n, question) in questions.iter().enumerate().skip(first) {
        let terms: BTreeSet<String> = question_terms(question).into_iter().collect();
        if terms.is_empty() {
            continue;
        }
        let at = distinct.binary_search(&question.as_str()).map_err(|_| "a question was not embedded".to_string())?;
        let vector = &vectors[at];
        let best = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.cosine(vector), i))
            .filter(|(cosine, _)| cosine.is_finite() && *cosine >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        let at = place(&mut groups, best.map(|(_, i)| i));
        let group = &mut groups[at];
        if group.vector_sum.is_empty() {
            group.vector_sum = vec![0.0; vector.len()];
        }
        for (sum, v) in group.vector_sum.iter_mut().zip(vector) {
            *sum += v;
        }
        group.add(question, terms);
        joined[n] = Some(at);
    }
    Ok((groups, joined))
}

/// The group a question joins: the best one found, else a new one.
fn place(groups: &mut Vec<Building>, best: Option<usize>) -> usize {
    best.unwrap_or_else(|| {
        groups.push(Building::new());
        groups.len() - 1
    })
}

/// The groups as the report shows them: the largest first, with their shared words.
fn finish(mut groups: Vec<Building>) -> Vec<QuestionGroup> {
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
        .into_iter()
        .take(QUESTION_GROUPS)
        .map(|mut g| {
            g.words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            // The words at least half of its questions share (both, in a pair).
            let half = g.count.div_ceil(2).max(g.count.min(2));
            QuestionGroup {
                count: g.count,
                words: g.words.into_iter().filter(|(_, n)| *n >= half).map(|(w, _)| w).take(5).collect(),
                examples: g.examples,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_sharing_their_words_are_grouped_and_others_stand_apart() {
        let questions: Vec<String> = [
            "How do I export my invoices to PDF?",
            "Can I export invoices as PDF files?",
            "Exporting an invoice to pdf fails",
            "The robot arm squeaks at night",
            "Do you ship to Iceland?",
            "Shipping to Iceland: how long does it take?",
        ]
        .map(String::from)
        .to_vec();
        let groups = group_questions(&questions);
        let counts: Vec<u64> = groups.iter().map(|g| g.count).collect();
        assert_eq!(counts, vec![3, 2, 1], "{groups:#?}");
        assert!(groups[0].words.contains(&"export".to_string()) && groups[0].words.contains(&"invoic".to_string()));
        assert_eq!(groups[0].examples.len(), 3);
        assert_eq!(groups[1].words, vec!["icelan".to_string()], "{:?}", groups[1]);
    }

    /// Vectors by the first word a question has of a few: questions meet on it alone.
    #[derive(Debug)]
    struct ByKeyword;

    impl Embedder for ByKeyword {
        fn passage_vectors(&self, _: &[String]) -> Result<crate::knowledge::PassageVectors, String> {
            unreachable!()
        }
        fn question_vector(&self, question: &str) -> Result<Vec<f32>, String> {
            let q = question.to_lowercase();
            let axis = ["refund", "password", "invoice"].iter().position(|k| q.contains(k));
            match (axis, q.contains("broken model")) {
                (_, true) => Err("the model failed".into()),
                (Some(i), _) => Ok((0..4).map(|d| if d == i { 1.0 } else { 0.0 }).collect()),
                (None, _) => Ok(vec![0.0, 0.0, 0.0, 1.0]),
            }
        }
        fn text_vectors(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            texts.iter().map(|t| self.question_vector(t)).collect()
        }
    }

    #[test]
    fn by_meaning_questions_without_a_shared_word_meet_and_a_failing_model_falls_back_to_words() {
        let questions: Vec<String> = [
            "I want my money back, refund please",
            "Where is my refund?",
            "Can I get a refund for last month",
            "Reset my password",
            "password reset email never arrives",
        ]
        .map(String::from)
        .to_vec();
        let grouping = Grouping::Meaning { embedder: &ByKeyword, threshold: 0.9 };
        let (groups, by) = group(&questions, grouping);
        assert_eq!(by, "meaning");
        assert_eq!(groups.iter().map(|g| g.count).collect::<Vec<_>>(), vec![3, 2], "{groups:#?}");
        assert_eq!(assignments(&questions, grouping).unwrap(), vec![Some(0), Some(0), Some(0), Some(1), Some(1)]);
        // By words the refunds split: "Where is my refund?" shares one word with the others.
        assert!(group_questions(&questions).len() > 2);
        let mut broken = questions.clone();
        broken.push("the broken model question".into());
        let (groups, by) = group(&broken, grouping);
        assert_eq!(by, "words", "{groups:?}");
    }

    #[test]
    fn empty_and_wordless_questions_make_no_group() {
        assert!(group_questions(&[]).is_empty());
        assert!(group_questions(&["?!".to_string(), "   ".to_string()]).is_empty());
    }
}
