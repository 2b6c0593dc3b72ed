//! The company's own knowledge, which the agent answers from: help articles from a folder
//! of markdown files (and, later in the flow, Salesforce Knowledge), split into
//! [`passages`] with stable ids and ranked by [`index`].
//!
//! Nothing here talks to the customer or a model: an article is data, and retrieval is a
//! pure function of the articles and the question.

pub mod analyze;
pub mod index;
pub mod passages;
pub mod semantic;
pub mod synonyms;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use index::{Hit, Index};
pub use passages::Passage;
pub use semantic::{PassageVectors, Ranking};
pub use synonyms::Synonyms;

/// The most articles one help-centre folder may hold.
pub const MAX_ARTICLES: usize = 10_000;
/// The largest article file read, in bytes.
pub const MAX_ARTICLE_BYTES: u64 = 1024 * 1024;
/// The longest summary taken from an article's first paragraph, in characters.
const SUMMARY_MAX_CHARS: usize = 300;

/// One help article.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Stable across syncs: a markdown file's name without `.md`.
    pub id: String,
    pub title: String,
    /// Where a customer reads it; replies link here.
    pub url: String,
    /// A sentence or two on what the article answers.
    pub summary: String,
    /// Markdown, without the title line and front matter.
    pub body: String,
}

/// Turns texts into unit vectors by meaning: the sentence-embedding model, seen from here
/// (it lives in the `embedding` module, which does the I/O: model files, the vector cache).
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// The vectors of an index's passages, in [`Index::passage_texts`]'s order.
    fn passage_vectors(&self, texts: &[String]) -> Result<PassageVectors, String>;
    /// A question's vector.
    fn question_vector(&self, question: &str) -> Result<Vec<f32>, String>;
    /// Vectors of short texts (an answer's statements), in one pass.
    fn text_vectors(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// The help centre as the agent sees it now. A sync (Salesforce Knowledge) builds a new
/// index and swaps it in whole, so an answer being made keeps the index it started with.
/// With an [`Embedder`], every index swapped in carries its passages' vectors.
#[derive(Debug)]
pub struct Library {
    current: ArcSwap<Index>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl Library {
    pub fn new(index: Index) -> Arc<Library> {
        Arc::new(Library { current: ArcSwap::from_pointee(index), embedder: None })
    }

    /// The embedding model, when the library has one.
    pub fn embedder(&self) -> Option<Arc<dyn Embedder>> {
        self.embedder.clone()
    }

    /// A library whose indexes are ranked by meaning too: `index`'s passages are embedded
    /// (or read from the embedder's cache) before it is served.
    pub fn with_embedder(index: Index, embedder: Arc<dyn Embedder>) -> Result<Arc<Library>, String> {
        let index = embedded(index, embedder.as_ref())?;
        Ok(Arc::new(Library { current: ArcSwap::from_pointee(index), embedder: Some(embedder) }))
    }

    pub fn current(&self) -> Arc<Index> {
        self.current.load_full()
    }

    /// Swaps in `index`, embedded first when the library has an embedder. Embedding is CPU
    /// work (seconds for a changed help centre): call it off the async threads. When the
    /// model fails, the new articles are still served, ranked by words alone, and the
    /// error says why.
    pub fn replace(&self, index: Index) -> Result<(), String> {
        let Some(embedder) = &self.embedder else {
            self.current.store(Arc::new(index));
            return Ok(());
        };
        match embedder.passage_vectors(&index.passage_texts()) {
            Ok(vectors) if vectors.len() == index.passage_count() => {
                self.current.store(Arc::new(index.with_vectors(vectors)?));
                Ok(())
            }
            Ok(vectors) => {
                let why = format!("{} vectors for {} passages", vectors.len(), index.passage_count());
                self.current.store(Arc::new(index));
                Err(why)
            }
            Err(e) => {
                self.current.store(Arc::new(index));
                Err(e)
            }
        }
    }

    /// The question's vector, when the library ranks by meaning; `Err` when the model
    /// failed (the caller ranks by words alone and says so).
    pub fn question_vector(&self, question: &str) -> Result<Option<Vec<f32>>, String> {
        match &self.embedder {
            Some(embedder) => embedder.question_vector(question).map(Some),
            None => Ok(None),
        }
    }

    /// Vectors of short texts, when the library has a model.
    pub fn text_vectors(&self, texts: &[&str]) -> Option<Result<Vec<Vec<f32>>, String>> {
        self.embedder.as_ref().map(|e| e.text_vectors(texts))
    }

    /// Whether passages are ranked by meaning too.
    pub fn is_semantic(&self) -> bool {
        self.embedder.is_some()
    }
}

fn embedded(index: Index, embedder: &dyn Embedder) -> Result<Index, String> {
    let vectors = embedder.passage_vectors(&index.passage_texts())?;
    index.with_vectors(vectors)
}

/// Why a help centre could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Reads every `*.md` file of `dir` (not its subfolders), in name order. Links default to
/// `{base_url}/{file stem}`.
pub fn load_markdown_folder(dir: &Path, base_url: &str) -> Result<Vec<Article>, LoadError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LoadError(format!("cannot read the knowledge base folder {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "md")).collect();
    if files.len() > MAX_ARTICLES {
        return Err(LoadError(format!(
            "the knowledge base folder {} holds {} articles; the limit is {MAX_ARTICLES}",
            dir.display(),
            files.len()
        )));
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError(format!("the knowledge base folder {} holds no .md articles", dir.display())));
    }
    let base_url = base_url.trim_end_matches('/');
    files
        .iter()
        .map(|path| {
            let text = crate::bounded_file::read(path, MAX_ARTICLE_BYTES)
                .map_err(|e| LoadError(format!("cannot read {}: {e}", path.display())))?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("article");
            Ok(parse_markdown(stem, &text, &format!("{base_url}/{stem}")))
        })
        .collect()
}

/// An article from markdown: front-matter lines `url: ...` and `summary: ...` before the
/// title, the first `# ` line as the title (else the id, dashes as spaces), and the rest as
/// the body. Without a `summary:` line the summary is the body's first paragraph of prose.
pub fn parse_markdown(id: &str, text: &str, default_url: &str) -> Article {
    let mut url = default_url.to_string();
    let mut summary = None;
    let mut title = None;
    let mut body = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~");
        if title.is_none() && !in_fence {
            if let Some(u) = line.strip_prefix("url:") {
                url = u.trim().to_string();
                continue;
            }
            if let Some(s) = line.strip_prefix("summary:") {
                summary = Some(s.trim().to_string());
                continue;
            }
            if let Some(t) = line.strip_prefix("# ") {
                title = Some(t.trim().to_string());
                continue;
            }
        }
        in_fence ^= fence;
        body.push(line);
    }
    let body = body.join("\n").trim().to_string();
    let summary = summary.unwrap_or_else(|| first_prose_paragraph(&body));
    let title = title.unwrap_or_else(|| id.replace('-', " "));
    Article { id: id.to_string(), title, url, summary, body }
}

/// The first paragraph that is neither a heading nor code, cut to [`SUMMARY_MAX_CHARS`].
fn first_prose_paragraph(body: &str) -> String {
    let mut in_fence = false;
    for paragraph in body.split("\n\n") {
        let p = paragraph.trim();
        let fences =
            p.lines().filter(|l| l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~")).count();
        let was_in_fence = in_fence;
        in_fence ^= fences % 2 == 1;
        if was_in_fence || p.is_empty() || p.starts_with("```") || p.starts_with("~~~") {
            continue;
        }
        let prose: Vec<&str> = p.lines().filter(|l| !l.starts_with('#')).collect();
        if !prose.is_empty() {
            return prose.join(" ").chars().take(SUMMARY_MAX_CHARS).collect();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_title_and_summary() {
        let a = parse_markdown(
            "reset",
            "url: https://help.example/r\nsummary: Resetting the arm.\n# Resetting\n\n## Steps\nHold it.",
            "https://d/reset",
        );
        assert_eq!(
            (a.url.as_str(), a.title.as_str(), a.summary.as_str()),
            ("https://help.example/r", "Resetting", "Resetting the arm.")
        );
        assert_eq!(a.body, "## Steps\nHold it.");
    }

    #[test]
    fn defaults_when_the_file_names_nothing() {
        let a = parse_markdown(
            "paying-invoices",
            "```sh\n# a comment, not a title\n```\n\n## Cards\nPay by card.",
            "https://d/p",
        );
        assert_eq!(a.title, "paying invoices");
        assert_eq!(a.url, "https://d/p");
        assert_eq!(a.summary, "Pay by card.");
        assert!(a.body.contains("# a comment"));
    }

    #[test]
    fn folder_errors_name_the_folder_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_markdown_folder(dir.path(), "https://d").unwrap_err().to_string();
        assert!(e.contains("holds no .md articles"), "{e}");
        std::fs::write(dir.path().join("big.md"), vec![b'a'; MAX_ARTICLE_BYTES as usize + 1]).unwrap();
        let e = load_markdown_folder(dir.path(), "https://d").unwrap_err().to_string();
        assert!(e.contains("big.md") && e.contains("larger than"), "{e}");
        let e = load_markdown_folder(&dir.path().join("missing"), "https://d").unwrap_err().to_string();
        assert!(e.contains("cannot read the knowledge base folder"), "{e}");
    }
}
