//! Ranking passages by meaning beside BM25F. Each passage has a unit vector from a
//! sentence-embedding model (made outside this module, by the `embedding` module), and a
//! question's vector is compared with all of them; the two rankings are fused into one.
//!
//! Why fuse rather than pick one: on the tuning halves of the eval sets (`tests/eval/`),
//! BM25F finds the article whose title the question names and the model finds the one
//! written in other words; the fused score puts the right article first more often than
//! either alone. The weight and the bars the knowledge-base agent reads were chosen on
//! those tuning halves only, and docs/agent.md reports the other halves.

use super::index::{Hit, Index};

/// The cosine's share of the fused score; BM25F (as a share of the question's best
/// passage score) has the rest.
pub const COSINE_WEIGHT: f64 = 0.6;
/// The most passages one ranking returns.
const MAX_HITS: usize = 50;

/// The vectors of an index's passages, in the index's order, made by one model.
#[derive(Debug, Clone)]
pub struct PassageVectors {
    /// The model's fingerprint.
    pub model: String,
    dim: usize,
    flat: Vec<f32>,
}

impl PassageVectors {
    /// Vectors of width `dim`, one a passage; `None` when one has another width.
    pub fn new(model: &str, dim: usize, vectors: Vec<Vec<f32>>) -> Option<PassageVectors> {
        if vectors.iter().any(|v| v.len() != dim) {
            return None;
        }
        Some(PassageVectors { model: model.to_string(), dim, flat: vectors.concat() })
    }

    pub fn len(&self) -> usize {
        self.flat.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.flat.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `i`th passage's vector.
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.flat[i * self.dim..(i + 1) * self.dim]
    }

    fn cosine(&self, i: usize, question: &[f32]) -> f32 {
        self.vector(i).iter().zip(question).map(|(a, b)| a * b).sum()
    }
}

/// The text of a passage the model embeds: its article's title, its heading and its text.
pub fn passage_text(title: &str, heading: &str, text: &str) -> String {
    format!("{title}. {heading}. {text}")
}

/// A question's passages by both rankers, fused.
#[derive(Debug, Clone)]
pub struct Ranking<'a> {
    /// Best first by the fused score (by BM25F alone without vectors).
    pub hits: Vec<Hit<'a>>,
    /// The article BM25F alone puts first.
    pub lexical_best: Option<&'a str>,
    /// The article the model alone puts first, with its best passage's cosine.
    pub semantic_best: Option<(&'a str, f32)>,
    /// The best cosine of any other article.
    pub semantic_runner_up: Option<f32>,
}

impl Ranking<'_> {
    /// Whether the question was ranked by meaning too.
    pub fn is_semantic(&self) -> bool {
        self.semantic_best.is_some()
    }

    /// The best cosine of any passage (`None` without vectors).
    pub fn best_cosine(&self) -> Option<f32> {
        self.semantic_best.map(|(_, c)| c)
    }

    /// The first hit of each of the best `n` articles, in fused order.
    pub fn articles(&self, n: usize) -> Vec<&Hit<'_>> {
        let mut seen = std::collections::HashSet::new();
        self.hits.iter().filter(|h| seen.insert(h.article.id.as_str())).take(n).collect()
    }
}

impl Index {
    /// The text of each passage the model embeds, in the index's order.
    pub fn passage_texts(&self) -> Vec<String> {
        self.entries_with_articles().map(|(a, p)| passage_text(&a.title, &p.heading, &p.text)).collect()
    }

    /// `question` ranked by BM25F and, with the index's vectors and the question's own,
    /// by meaning too.
    pub fn rank(&self, question: &str, question_vector: Option<&[f32]>) -> Ranking<'_> {
        let lexical = self.search(question);
        let lexical_best = lexical.first().map(|h| h.article.id.as_str());
        let (Some(vectors), Some(q)) = (self.vectors(), question_vector) else {
            return Ranking { hits: lexical, lexical_best, semantic_best: None, semantic_runner_up: None };
        };
        if q.len() != vectors.dim() {
            return Ranking { hits: lexical, lexical_best, semantic_best: None, semantic_runner_up: None };
        }
        let top = lexical.first().map_or(0.0, |h| h.score).max(f64::MIN_POSITIVE);
        let mut by_order: Vec<Option<Hit<'_>>> = vec![None; vectors.len()];
        for hit in lexical {
            let order = hit.order;
            by_order[order] = Some(hit);
        }
        let mut hits: Vec<Hit<'_>> = self
            .entries_with_articles()
            .enumerate()
            .map(|(i, (article, passage))| {
                let cosine = vectors.cosine(i, q);
                let mut hit = by_order[i].take().unwrap_or(Hit {
                    article,
                    passage,
                    score: 0.0,
                    coverage: 0.0,
                    matched: 0,
                    order: i,
                    cosine: None,
                    fused: 0.0,
                });
                hit.cosine = Some(cosine);
                hit.fused = COSINE_WEIGHT * cosine as f64 + (1.0 - COSINE_WEIGHT) * hit.score / top;
                hit
            })
            .collect();
        let semantic_best = hits
            .iter()
            .max_by(|a, b| a.cosine.unwrap_or(-1.0).total_cmp(&b.cosine.unwrap_or(-1.0)))
            .map(|h| (h.article.id.as_str(), h.cosine.unwrap_or(-1.0)));
        let semantic_runner_up = semantic_best.and_then(|(best, _)| {
            hits.iter().filter(|h| h.article.id != best).filter_map(|h| h.cosine).max_by(f32::total_cmp)
        });
        hits.sort_by(|a, b| b.fused.total_cmp(&a.fused).then_with(|| a.order.cmp(&b.order)));
        hits.truncate(MAX_HITS);
        Ranking { hits, lexical_best, semantic_best, semantic_runner_up }
    }
}
