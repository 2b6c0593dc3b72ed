//! Unanswered questions grouped by similarity: what customers asked that the agent could
//! not answer, so the admin sees which articles to write next. Questions meet on the words
//! they share (the help centre's own analysis: stop words dropped, stems). A question
//! joins the group whose core words (those at least half its questions have) it shares
//! most, when it shares at least [`SHARED_WORDS`] of them, or [`SHARED_SHARE`] of the
//! fewer of its own words and the group's core words.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::knowledge::analyze::question_terms;

/// How many words a question must share with a group to join it (or the share below).
pub const SHARED_WORDS: usize = 2;
/// The share of a question's words that, shared with a group, is enough to join it.
pub const SHARED_SHARE: f64 = 0.5;
/// How many groups the report lists, the largest first.
pub const QUESTION_GROUPS: usize = 20;
/// How many examples a group shows.
pub const GROUP_EXAMPLES: usize = 3;
/// How many questions are grouped, at most (the rest are counted as ungrouped).
pub const QUESTIONS_GROUPED: usize = 5_000;

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
}

impl Building {
    /// How many words at least half of its questions have.
    fn core(&self) -> usize {
        self.words.iter().filter(|(_, n)| *n * 2 >= self.count).count()
    }

    /// How many of its core words `terms` has.
    fn shared(&self, terms: &BTreeSet<String>) -> usize {
        self.words.iter().filter(|(w, n)| terms.contains(w) && *n * 2 >= self.count).count()
    }
}

/// Groups `questions` (in the order given); the largest groups first.
pub fn group_questions(questions: &[String]) -> Vec<QuestionGroup> {
    let mut groups: Vec<Building> = Vec::new();
    for question in questions.iter().take(QUESTIONS_GROUPED) {
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
        let group = match best {
            Some((_, i)) => &mut groups[i],
            None => {
                groups.push(Building { count: 0, words: Vec::new(), examples: Vec::new() });
                groups.last_mut().expect("just pushed")
            }
        };
        group.count += 1;
        for term in terms {
            match group.words.iter_mut().find(|(w, _)| *w == term) {
                Some((_, n)) => *n += 1,
                None => group.words.push((term, 1)),
            }
        }
        if group.examples.len() < GROUP_EXAMPLES && !group.examples.contains(question) {
            group.examples.push(question.clone());
        }
    }
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

    #[test]
    fn empty_and_wordless_questions_make_no_group() {
        assert!(group_questions(&[]).is_empty());
        assert!(group_questions(&["?!".to_string(), "   ".to_string()]).is_empty());
    }
}
