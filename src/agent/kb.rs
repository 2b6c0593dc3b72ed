//! The built-in knowledge-base agent: answers from the help centre ([`crate::knowledge`])
//! without a model, by quoting the best-ranked passage and linking its article.
//!
//! Its confidence is the best passage's coverage of the question: the share of the
//! question's information (its terms, weighted by rarity, words the help centre never uses
//! weighing the most) that the passage matches. It reads the same whatever the question's
//! length. Below the configured threshold, or with fewer than two of the question's terms
//! matched, the agent says it cannot help, which the shipped `low_confidence` rule turns
//! into a handover.

use std::path::Path;
use std::sync::Arc;

use super::AgentError;
use crate::knowledge::{self, Article, Hit, Index, Library};
use crate::model::{AgentAnswer, Retrieved, Source};

/// The most characters of passage text a reply quotes.
const QUOTE_MAX_CHARS: usize = 1_500;
/// The fewest distinct question terms a passage must match to be quoted: one word in
/// common ("work" in "It doesn't work.") is a coincidence, not an answer.
const MIN_MATCHED_TERMS: usize = 2;
/// How many retrieved passages an answer records for the trace.
const RETRIEVED_IN_TRACE: usize = 3;

/// A loaded help centre.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    library: Arc<Library>,
    min_confidence: f64,
}

impl KnowledgeBase {
    /// Loads every `*.md` file in `dir`. An article may start with a front-matter line
    /// `url: https://...`; otherwise its link is `{base_url}/{file stem}`.
    pub fn load(dir: &Path, base_url: &str, min_confidence: f64) -> Result<KnowledgeBase, AgentError> {
        let articles = knowledge::load_markdown_folder(dir, base_url).map_err(|e| AgentError::Config(e.0))?;
        Ok(Self::new(articles, min_confidence))
    }

    /// Builds a knowledge base from articles given as (file stem, markdown) pairs, such as
    /// the demo's built-in help centre.
    pub fn from_articles(articles: &[(&str, &str)], base_url: &str, min_confidence: f64) -> KnowledgeBase {
        let base_url = base_url.trim_end_matches('/');
        let articles = articles
            .iter()
            .map(|(id, text)| knowledge::parse_markdown(id, text, &format!("{base_url}/{id}")))
            .collect();
        Self::new(articles, min_confidence)
    }

    pub fn new(articles: Vec<Article>, min_confidence: f64) -> KnowledgeBase {
        KnowledgeBase::with_index(Index::new(articles), min_confidence)
    }

    /// A knowledge base over a ready index (with the admin's synonyms, say).
    pub fn with_index(index: Index, min_confidence: f64) -> KnowledgeBase {
        KnowledgeBase { library: Library::new(index), min_confidence }
    }

    /// The help centre it answers from (a Salesforce Knowledge sync replaces its index).
    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    /// Answers `question` from the best passage, or says it cannot help.
    pub fn answer(&self, question: &str) -> AgentAnswer {
        let index = self.library.current();
        let hits = index.search(question);
        let Some(best) = hits.first() else {
            return AgentAnswer::cannot_help("knowledge_base", 0.0, "no help article matches the question");
        };
        let source = Source { title: best.article.title.clone(), url: best.article.url.clone() };
        if best.coverage < self.min_confidence || best.matched < MIN_MATCHED_TERMS {
            let why = if best.matched < MIN_MATCHED_TERMS {
                format!("best match \"{}\" shares only {} word with the question", best.article.title, best.matched)
            } else {
                format!("best match \"{}\" is below the confidence threshold", best.article.title)
            };
            let mut a = AgentAnswer::cannot_help("knowledge_base", best.coverage, &why);
            a.sources.push(source);
            a.retrieved = retrieved(&hits, RETRIEVED_IN_TRACE);
            return a;
        }
        // Quote every strongly matching passage of the best article, in the article's
        // order: "when to" and "how to" usually belong together.
        let mut chosen: Vec<&Hit<'_>> =
            hits.iter().filter(|h| h.score >= best.score * 0.5 && h.article.id == best.article.id).take(3).collect();
        chosen.sort_by_key(|h| h.order);
        let body = chosen.iter().map(|h| h.passage.text.as_str()).collect::<Vec<_>>().join("\n\n");
        let text = format!(
            "{}\n\nYou can read more in our help article \"{}\": {}",
            excerpt(&body, QUOTE_MAX_CHARS),
            best.article.title,
            best.article.url
        );
        let mut answer = AgentAnswer::answered("knowledge_base", text, best.coverage, vec![source]);
        answer.cited = chosen.iter().map(|h| h.passage.id.clone()).collect();
        answer.retrieved = retrieved(&hits, RETRIEVED_IN_TRACE);
        answer
    }
}

/// The best `n` hits as the trace records them.
pub fn retrieved(hits: &[Hit<'_>], n: usize) -> Vec<Retrieved> {
    hits.iter()
        .take(n)
        .map(|h| Retrieved { passage: h.passage.id.clone(), score: h.score, coverage: h.coverage })
        .collect()
}

/// The start of `text`, cut at a paragraph (or sentence) boundary near `max` characters.
fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let end = cut.rfind("\n\n").or_else(|| cut.rfind(". ").map(|i| i + 1)).unwrap_or(cut.len());
    format!("{}…", cut[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb() -> KnowledgeBase {
        let articles = [
            (
                "gripper",
                "url: https://help.example/gripper\n# Calibrating the gripper\n\n## When to recalibrate\nIf the gripper drifts after a restart, recalibrate it.\n\n## Steps\nHold the reset button for five seconds, then run the calibration wizard.",
            ),
            ("invoices", "# Paying invoices\n\nInvoices are sent monthly. Pay by card or bank transfer."),
            (
                "firmware",
                "# Firmware updates\n\n## Failed updates\nIf a firmware update stops, the controller shows E42. Power-cycle it and retry the update over USB.",
            ),
        ];
        KnowledgeBase::from_articles(&articles, "https://help.example", 0.3)
    }

    #[test]
    fn answers_from_the_best_section_with_a_link() {
        let a = kb().answer("My gripper drifts after every restart, how do I recalibrate?");
        let text = a.text.expect("answered");
        assert!(text.contains("recalibrate"), "{text}");
        assert!(text.contains("https://help.example/gripper"), "{text}");
        assert_eq!(a.sources[0].title, "Calibrating the gripper");
        assert!(a.confidence >= 0.3 && a.confidence <= 1.0, "{}", a.confidence);
    }

    #[test]
    fn firmware_question_finds_the_firmware_article() {
        let a = kb().answer("The firmware update stopped at 40% and shows error E42");
        assert_eq!(a.sources[0].title, "Firmware updates");
        assert!(a.text.is_some());
    }

    #[test]
    fn unrelated_questions_get_no_answer() {
        let a = kb().answer("Can you ship to Antarctica by drone?");
        assert!(a.text.is_none());
        assert!(a.confidence < 0.3);
    }

    #[test]
    fn one_word_in_common_is_not_an_answer() {
        // "wizard" alone matches the gripper article fully, and still is not an answer.
        let a = kb().answer("It doesn't work, the wizard.");
        assert!(a.text.is_none(), "{a:?}");
        assert!(a.note.as_deref().unwrap_or_default().contains("shares only 1 word"), "{a:?}");
    }

    #[test]
    fn the_quote_keeps_the_article_order() {
        let text =
            kb().answer("the gripper drifts: when to recalibrate and what are the steps").text.expect("answered");
        let (when, steps) = (text.find("drifts").unwrap(), text.find("Hold the reset").unwrap());
        assert!(when < steps, "{text}");
    }
}
