//! The built-in knowledge-base agent: answers from the help centre ([`crate::knowledge`])
//! without a language model, in one of three ways.
//!
//! - **A stated answer**, quoting the best passage and linking its article, only when the
//!   evidence is strong: with a sentence-embedding model, BM25F and the model put the
//!   same article first, its cosine clears `state_at` and leads the next article's by
//!   `state_margin`; without one, never unless the admin sets `state_at_coverage` (words
//!   alone could not tell a right article from a wrong one on the eval sets).
//! - **Suggestions**: up to `max` articles (title, link, the passage's first lines) and a
//!   question: did one of them answer it? The customer's "yes" is a hard resolution, their
//!   "no" a handover with the suggestions in the note (the decide stage reads the reply).
//! - **Nothing**, and a handover at once, below the retrieval bar: with a model, an article
//!   is offered when its cosine clears `suggest_at`, or `suggest_with_words_at` with its
//!   words covering half the question; without one, when its coverage clears
//!   `min_confidence`.
//!
//! Coverage is the share of the question's information (its terms, weighted by rarity)
//! that a passage matches; the bars' defaults were chosen on the tuning halves of the
//! eval sets (`tests/eval/`), and docs/agent.md reports the other halves.

use std::path::Path;
use std::sync::Arc;

use super::AgentError;
use crate::knowledge::{self, Article, Hit, Index, Library, Ranking};
use crate::model::{AgentAnswer, Retrieved, Source, Suggestion};

/// The most characters of passage text a reply quotes.
const QUOTE_MAX_CHARS: usize = 1_500;
/// The most characters of a suggestion's excerpt.
const EXCERPT_MAX_CHARS: usize = 200;
/// The fewest distinct question terms a passage must match to be quoted: one word in
/// common ("work" in "It doesn't work.") is a coincidence, not an answer.
const MIN_MATCHED_TERMS: usize = 2;
/// The share of the question's information an article's words must cover to be offered
/// at the lower cosine bar (`suggest_with_words_at`).
pub const WORDS_COVERAGE: f64 = 0.5;
/// How many retrieved passages an answer records for the trace.
const RETRIEVED_IN_TRACE: usize = 3;

/// When the agent states an answer, offers articles, or hands over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bars {
    /// Without a model: below this coverage nothing is offered.
    pub min_confidence: f64,
    /// Without a model: the coverage a stated answer needs (`None`: nothing is stated).
    pub state_at_coverage: Option<f64>,
    /// With a model: the cosine a stated answer's article needs.
    pub state_at: f64,
    /// With a model: how far that cosine must lead the next article's.
    pub state_margin: f64,
    /// With a model: the cosine an article needs to be offered on its own.
    pub suggest_at: f64,
    /// With a model: the cosine an article needs to be offered when its words cover
    /// [`WORDS_COVERAGE`] of the question.
    pub suggest_with_words_at: f64,
    /// The most articles offered.
    pub max_suggestions: usize,
}

impl Bars {
    /// The defaults, with `min_confidence` as given.
    pub fn with_min_confidence(min_confidence: f64) -> Bars {
        let d = crate::config::SuggestionsConfig::default();
        Bars {
            min_confidence,
            state_at_coverage: d.state_at_coverage,
            state_at: d.state_at,
            state_margin: d.state_margin,
            suggest_at: d.suggest_at,
            suggest_with_words_at: d.suggest_with_words_at,
            max_suggestions: d.max,
        }
    }
}

/// A loaded help centre.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    library: Arc<Library>,
    bars: Bars,
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
        KnowledgeBase::with_library(Library::new(index), Bars::with_min_confidence(min_confidence))
    }

    /// A knowledge base over a library (ranked by meaning too when it has an embedder).
    pub fn with_library(library: Arc<Library>, bars: Bars) -> KnowledgeBase {
        KnowledgeBase { library, bars }
    }

    /// The same help centre with other bars.
    pub fn with_bars(self, bars: Bars) -> KnowledgeBase {
        KnowledgeBase { bars, ..self }
    }

    /// The help centre it answers from (a Salesforce Knowledge sync replaces its index).
    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    pub fn bars(&self) -> Bars {
        self.bars
    }

    /// Answers `question`: a stated answer, suggestions, or that it cannot help. With a
    /// model this embeds the question (milliseconds of CPU): call it off the async threads.
    pub fn answer(&self, question: &str) -> AgentAnswer {
        let index = self.library.current();
        let (vector, model_failed) = match self.library.question_vector(question) {
            Ok(v) => (v, None),
            Err(e) => (None, Some(e)),
        };
        let ranking = index.rank(question, vector.as_deref());
        let mut answer = self.decide(&ranking);
        answer.retrieved = retrieved(&ranking.hits, RETRIEVED_IN_TRACE);
        if let Some(why) = model_failed {
            let note = answer.note.take().map_or_else(String::new, |n| format!("{n}; "));
            answer.note = Some(format!("{note}ranked by words alone: the embedding model failed: {why}"));
        }
        answer
    }

    fn decide(&self, ranking: &Ranking<'_>) -> AgentAnswer {
        let Some(best) = ranking.hits.first() else {
            return AgentAnswer::cannot_help("knowledge_base", 0.0, "no help article matches the question");
        };
        let b = &self.bars;
        let confidence = best.cosine.map_or(best.coverage, |c| c.max(0.0) as f64);
        let source = Source { title: best.article.title.clone(), url: best.article.url.clone() };
        let stated = match ranking.semantic_best {
            Some((semantic, cosine)) => {
                if (cosine as f64) < b.suggest_at.min(b.suggest_with_words_at) {
                    let why = format!(
                        "best match \"{}\" is below the retrieval bar (cosine {cosine:.2} < {:.2})",
                        best.article.title,
                        b.suggest_at.min(b.suggest_with_words_at)
                    );
                    let mut a = AgentAnswer::cannot_help("knowledge_base", confidence, &why);
                    a.sources.push(source);
                    return a;
                }
                let lead = (cosine - ranking.semantic_runner_up.unwrap_or(-1.0)) as f64;
                ranking.lexical_best == Some(best.article.id.as_str())
                    && semantic == best.article.id
                    && cosine as f64 >= b.state_at
                    && lead >= b.state_margin
                    && best.matched >= MIN_MATCHED_TERMS
            }
            None => {
                if best.coverage < b.min_confidence || best.matched < MIN_MATCHED_TERMS {
                    let why = if best.matched < MIN_MATCHED_TERMS {
                        format!(
                            "best match \"{}\" shares only {} word with the question",
                            best.article.title, best.matched
                        )
                    } else {
                        format!("best match \"{}\" is below the confidence threshold", best.article.title)
                    };
                    let mut a = AgentAnswer::cannot_help("knowledge_base", best.coverage, &why);
                    a.sources.push(source);
                    return a;
                }
                b.state_at_coverage.is_some_and(|bar| best.coverage >= bar)
            }
        };
        if stated { self.stated(ranking, best, confidence, source) } else { self.suggested(ranking, confidence) }
    }

    /// Quotes every strongly matching passage of the best article, in the article's order:
    /// "when to" and "how to" usually belong together.
    fn stated(&self, ranking: &Ranking<'_>, best: &Hit<'_>, confidence: f64, source: Source) -> AgentAnswer {
        let mut chosen: Vec<&Hit<'_>> = ranking
            .hits
            .iter()
            .filter(|h| h.fused >= best.fused * 0.5 && h.article.id == best.article.id)
            .take(3)
            .collect();
        chosen.sort_by_key(|h| h.order);
        let body = chosen.iter().map(|h| h.passage.text.as_str()).collect::<Vec<_>>().join("\n\n");
        let text = format!(
            "{}\n\nYou can read more in our help article \"{}\": {}",
            excerpt(&body, QUOTE_MAX_CHARS),
            best.article.title,
            best.article.url
        );
        let mut answer = AgentAnswer::answered("knowledge_base", text, confidence, vec![source]);
        answer.cited = chosen.iter().map(|h| h.passage.id.clone()).collect();
        answer
    }

    /// Up to `max_suggestions` articles, each above the retrieval bar, and the question
    /// whether one answered it.
    fn suggested(&self, ranking: &Ranking<'_>, confidence: f64) -> AgentAnswer {
        let b = &self.bars;
        let offered: Vec<&Hit<'_>> = ranking
            .articles(b.max_suggestions)
            .into_iter()
            .filter(|h| {
                let words = h.matched >= MIN_MATCHED_TERMS;
                match h.cosine.map(f64::from) {
                    Some(c) => {
                        c >= b.suggest_at || (c >= b.suggest_with_words_at && words && h.coverage >= WORDS_COVERAGE)
                    }
                    None => words && h.coverage >= b.min_confidence,
                }
            })
            .collect();
        if offered.is_empty() {
            let why = "no article clears the retrieval bar among the best-ranked";
            return AgentAnswer::cannot_help("knowledge_base", confidence, why);
        }
        let suggestions: Vec<Suggestion> = offered
            .iter()
            .map(|h| Suggestion {
                title: h.article.title.clone(),
                url: h.article.url.clone(),
                excerpt: excerpt(&first_lines(&h.passage.text), EXCERPT_MAX_CHARS),
                passage: h.passage.id.clone(),
            })
            .collect();
        let sources = suggestions.iter().map(|s| Source { title: s.title.clone(), url: s.url.clone() }).collect();
        let mut answer = AgentAnswer::answered("knowledge_base", suggestions_text(&suggestions), confidence, sources);
        answer.suggestions = suggestions;
        answer
    }
}

/// The reply that offers suggestions: plain text, read the same in a comment, an email or
/// the messenger (which shows the articles as links and the question as buttons).
pub fn suggestions_text(suggestions: &[Suggestion]) -> String {
    let mut text = String::from(if suggestions.len() == 1 {
        "This help article may answer your question:\n"
    } else {
        "These help articles may answer your question:\n"
    });
    for (i, s) in suggestions.iter().enumerate() {
        text.push_str(&format!("\n{}. {} — {}\n   {}\n", i + 1, s.title, s.url, s.excerpt));
    }
    text.push_str(if suggestions.len() == 1 {
        "\nDid it answer your question? Reply \"yes\" if it did, or \"no\" to talk to a person."
    } else {
        "\nDid one of them answer your question? Reply \"yes\" if one did, or \"no\" to talk to a person."
    });
    text
}

/// The best `n` hits as the trace records them.
pub fn retrieved(hits: &[Hit<'_>], n: usize) -> Vec<Retrieved> {
    hits.iter()
        .take(n)
        .map(|h| Retrieved { passage: h.passage.id.clone(), score: h.score, coverage: h.coverage, cosine: h.cosine })
        .collect()
}

/// A passage's prose on one line: code fences, headings and list marks left out.
fn first_lines(text: &str) -> String {
    let mut in_fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(t.trim_start_matches(['-', '*', '>', ' ']));
    }
    out.join(" ")
}

/// The start of `text`, cut at a paragraph (or sentence) boundary near `max` characters.
fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let end = cut.rfind("\n\n").or_else(|| cut.rfind(". ").map(|i| i + 1)).unwrap_or(cut.len());
    let end = if end == 0 { cut.len() } else { end };
    format!("{}…", cut[..end].trim_end())
}
