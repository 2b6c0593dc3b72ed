//! Passage retrieval: BM25F over four fields of each passage — its article's title, its
//! article's summary, its own heading and its text — each weighted and length-normalised on
//! its own, so a word in a short title counts for more than the same word deep in a long
//! reference page. An article whose title the question names ("cargo check", "refunds")
//! gets a bonus in proportion to how much of the title the question covers.
//!
//! The weights were chosen on the real-content eval set (`tests/eval/`) and checked on the
//! demo's; `casebridge agent eval` measures any change to them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Article;
use super::analyze::terms;
use super::passages::Passage;
use super::semantic::PassageVectors;
use super::synonyms::Synonyms;

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;

/// Each field's weight and length normalisation (BM25's `b`).
const FIELDS: [(Field, f64, f64); 4] =
    [(Field::Title, 3.0, 0.5), (Field::Summary, 1.5, 0.5), (Field::Heading, 2.0, 0.5), (Field::Text, 1.0, 0.75)];

/// The most distinct terms of a question that are ranked (the first ones): a long email
/// still ranks in bounded time.
pub const MAX_QUERY_TERMS: usize = 256;

/// How much a question that names an article's whole title adds, in units of the
/// question's mean term weight.
const TITLE_BONUS: f64 = 1.0;

#[derive(Debug, Clone, Copy)]
enum Field {
    Title,
    Summary,
    Heading,
    Text,
}

/// One field of one passage: term counts and length.
#[derive(Debug, Clone, Default)]
struct FieldTerms {
    counts: HashMap<String, u32>,
    len: u32,
}

impl FieldTerms {
    fn of(text: &str, synonyms: &Synonyms) -> FieldTerms {
        let mut counts: HashMap<String, u32> = HashMap::new();
        let all = terms(text);
        for t in &all {
            *counts.entry(synonyms.read(t).to_string()).or_default() += 1;
        }
        FieldTerms { counts, len: all.len() as u32 }
    }
}

/// A passage as the index holds it.
#[derive(Debug, Clone)]
struct Entry {
    article: usize,
    passage: Passage,
    /// Title, summary, heading, text.
    fields: [FieldTerms; 4],
}

/// A ranked passage.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub article: &'a Article,
    pub passage: &'a Passage,
    pub score: f64,
    /// The share of the question's information (its terms, weighted by rarity) this
    /// passage matches, from 0 to 1. Terms the help centre never uses weigh the most, so a
    /// question about something it does not cover cannot look answered.
    pub coverage: f64,
    /// How many of the question's distinct terms it matches.
    pub matched: usize,
    /// The passage's place in the index: articles in order, each article's passages in its
    /// own order, so quotes from one article can be put back in reading order.
    pub order: usize,
    /// The passage's cosine with the question, when both have vectors.
    pub cosine: Option<f32>,
    /// The score the hits are ordered by: BM25F's, or fused with the cosine
    /// ([`super::semantic`]).
    pub fused: f64,
}

/// Articles and their passages, indexed for ranking.
#[derive(Debug, Clone)]
pub struct Index {
    articles: Vec<Article>,
    entries: Vec<Entry>,
    /// Term → the passages holding it in any field (ascending): a question scores only the
    /// passages that share a term with it, not the whole help centre.
    postings: HashMap<String, Vec<u32>>,
    avg_len: [f64; 4],
    synonyms: Synonyms,
    /// The passages' vectors, when a sentence-embedding model is configured.
    vectors: Option<Arc<PassageVectors>>,
}

impl Index {
    pub fn new(articles: Vec<Article>) -> Index {
        Index::with_synonyms(articles, Synonyms::default())
    }

    /// An index that reads every word of a synonym group as the group's first word.
    pub fn with_synonyms(articles: Vec<Article>, synonyms: Synonyms) -> Index {
        let mut entries = Vec::new();
        for (i, article) in articles.iter().enumerate() {
            let title = FieldTerms::of(&article.title, &synonyms);
            let summary = FieldTerms::of(&article.summary, &synonyms);
            for passage in super::passages::split(article) {
                let heading = FieldTerms::of(&passage.heading, &synonyms);
                let text = FieldTerms::of(&passage.text, &synonyms);
                let fields = [title.clone(), summary.clone(), heading, text];
                entries.push(Entry { article: i, passage, fields });
            }
        }
        let mut postings: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let distinct: HashSet<&String> = e.fields.iter().flat_map(|f| f.counts.keys()).collect();
            for t in distinct {
                postings.entry(t.clone()).or_default().push(i as u32);
            }
        }
        let n = entries.len().max(1) as f64;
        let avg_len = std::array::from_fn(|f| entries.iter().map(|e| e.fields[f].len as f64).sum::<f64>() / n);
        Index { articles, entries, postings, avg_len, synonyms, vectors: None }
    }

    /// The index with its passages' vectors (one a passage, in [`Index::passage_texts`]'s
    /// order).
    pub fn with_vectors(mut self, vectors: PassageVectors) -> Result<Index, String> {
        if vectors.len() != self.entries.len() {
            return Err(format!("{} vectors for {} passages", vectors.len(), self.entries.len()));
        }
        self.vectors = Some(Arc::new(vectors));
        Ok(self)
    }

    /// The passages' vectors, when the index has them.
    pub fn vectors(&self) -> Option<&PassageVectors> {
        self.vectors.as_deref()
    }

    /// The vector of the passage `id`, when the index has vectors.
    pub fn passage_vector(&self, id: &str) -> Option<&[f32]> {
        let vectors = self.vectors.as_deref()?;
        let i = self.entries.iter().position(|e| e.passage.id == id)?;
        Some(vectors.vector(i))
    }

    /// How many passages the index holds.
    pub fn passage_count(&self) -> usize {
        self.entries.len()
    }

    /// Each passage with its article, in the index's order.
    pub(super) fn entries_with_articles(&self) -> impl Iterator<Item = (&Article, &Passage)> {
        self.entries.iter().map(|e| (&self.articles[e.article], &e.passage))
    }

    pub fn synonyms(&self) -> &Synonyms {
        &self.synonyms
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    /// A term's rarity: BM25's idf, highest for terms no passage holds.
    fn idf(&self, term: &str) -> f64 {
        let n = self.entries.len() as f64;
        let df = self.postings.get(term).map_or(0, Vec::len) as f64;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Every passage that matches `question`, best first.
    pub fn search(&self, question: &str) -> Vec<Hit<'_>> {
        let mut seen = HashSet::new();
        let query: Vec<String> = super::analyze::question_terms(question)
            .into_iter()
            .map(|t| self.synonyms.read(&t).to_string())
            .filter(|t| seen.insert(t.clone()))
            .take(MAX_QUERY_TERMS)
            .collect();
        let weights: Vec<f64> = query.iter().map(|t| self.idf(t)).collect();
        let information: f64 = weights.iter().sum();
        let mean_weight = information / query.len().max(1) as f64;
        let mut candidates: Vec<u32> = query.iter().filter_map(|t| self.postings.get(t)).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut hits: Vec<Hit<'_>> = candidates
            .into_iter()
            .map(|i| (i as usize, &self.entries[i as usize]))
            .filter_map(|(order, e)| {
                let (mut score, mut covered, mut matched) = (0.0, 0.0, 0);
                for (t, w) in query.iter().zip(&weights) {
                    let tf = self.weighted_frequency(e, t);
                    if tf > 0.0 {
                        score += w * tf / (K1 + tf);
                        covered += w;
                        matched += 1;
                    }
                }
                if matched == 0 {
                    return None;
                }
                score += TITLE_BONUS * mean_weight * self.title_coverage(e, &query);
                let coverage = if information > 0.0 { (covered / information).min(1.0) } else { 0.0 };
                Some(Hit {
                    article: &self.articles[e.article],
                    passage: &e.passage,
                    score,
                    coverage,
                    matched,
                    order,
                    cosine: None,
                    fused: score,
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.passage.id.cmp(&b.passage.id)));
        hits
    }

    /// BM25F's pseudo term frequency: each field's count, weighted and normalised by that
    /// field's length.
    fn weighted_frequency(&self, e: &Entry, term: &str) -> f64 {
        FIELDS
            .iter()
            .map(|(field, weight, b)| {
                let f = &e.fields[*field as usize];
                let Some(&tf) = f.counts.get(term) else { return 0.0 };
                let norm = 1.0 - b + b * f.len as f64 / self.avg_len[*field as usize].max(1.0);
                weight * tf as f64 / norm
            })
            .sum()
    }

    /// The share of the article title's information the question names.
    fn title_coverage(&self, e: &Entry, query: &[String]) -> f64 {
        let title = &e.fields[Field::Title as usize].counts;
        let total: f64 = title.keys().map(|t| self.idf(t)).sum();
        if total == 0.0 {
            return 0.0;
        }
        title.keys().filter(|t| query.contains(t)).map(|t| self.idf(t)).sum::<f64>() / total
    }

    /// The articles that match `question`, best first, each with its best passage's score.
    pub fn ranked_articles(&self, question: &str) -> Vec<(&Article, f64)> {
        let mut seen = HashSet::new();
        self.search(question).into_iter().filter(|h| seen.insert(&h.article.id)).map(|h| (h.article, h.score)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, title: &str, body: &str) -> Article {
        Article {
            id: id.into(),
            title: title.into(),
            url: format!("https://help.example/{id}"),
            summary: String::new(),
            body: body.into(),
        }
    }

    fn index() -> Index {
        Index::new(vec![
            article(
                "check",
                "cargo-check",
                "## Description\nCheck a local package and all of its dependencies for errors.",
            ),
            article(
                "check-cfg",
                "Checking conditional configurations",
                "## Cargo\nWith cargo check and cargo build, unexpected cfg names are checked and reported.\n\n## Build\nThe build checks every cfg.",
            ),
            article("billing", "Invoices", "## Paying\nInvoices are sent monthly. Pay by card."),
        ])
    }

    #[test]
    fn a_question_that_names_a_title_ranks_that_article_first() {
        let index = index();
        let ranked = index.ranked_articles("what's the difference between cargo check and cargo build");
        assert_eq!(ranked[0].0.id, "check", "{:?}", ranked.iter().map(|r| &r.0.id).collect::<Vec<_>>());
    }

    #[test]
    fn coverage_weighs_words_the_help_centre_never_uses_the_most() {
        let index = index();
        let covered = &index.search("when are invoices sent")[0];
        assert_eq!(covered.passage.id, "billing#paying");
        let uncovered = &index.search("invoices for my drone delivery to antarctica")[0];
        assert!(covered.coverage > 0.9, "{}", covered.coverage);
        assert!(uncovered.coverage < 0.4, "{}", uncovered.coverage);
        assert_eq!(uncovered.matched, 1);
    }

    #[test]
    fn huge_questions_rank_in_bounded_time() {
        let index = index();
        let many_words: String = (0..200_000).map(|i| format!("w{i} ")).collect();
        assert!(index.search(&many_words).is_empty(), "only the first terms count, and none match");
        let hits = index.search(&format!("invoices sent {many_words}"));
        assert_eq!(hits[0].passage.id, "billing#paying");
        assert!(hits[0].coverage < 0.05, "the unmatched words still count against coverage");
    }

    #[test]
    fn nothing_matches_nothing() {
        let index = index();
        assert!(index.search("").is_empty());
        assert!(index.search("the and of").is_empty());
        assert!(Index::new(Vec::new()).search("anything").is_empty());
    }
}
