//! The built-in knowledge-base agent: answers from a folder of markdown help articles.
//!
//! Each article is split into sections (`## ` headings); sections are ranked with BM25
//! against the customer's unanswered messages. The answer quotes the best section and links
//! its article. The confidence is the best score over the highest score the query could
//! reach (every query term at saturation), so it reads the same whatever the query length;
//! below the configured threshold the agent says it cannot help, which rules can turn into
//! a handover.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::AgentError;
use crate::model::{AgentAnswer, Source};

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// One searchable section of an article.
#[derive(Debug, Clone)]
struct Section {
    /// The article's id: its file name without `.md`.
    article: String,
    article_title: String,
    url: String,
    text: String,
    /// Term → count.
    terms: HashMap<String, u32>,
    len: u32,
}

/// A loaded help centre.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    sections: Vec<Section>,
    /// Term → number of sections containing it.
    doc_freq: HashMap<String, u32>,
    avg_len: f64,
    min_confidence: f64,
}

impl KnowledgeBase {
    /// Loads every `*.md` file in `dir`. An article may start with a front-matter line
    /// `url: https://...`; otherwise its link is `{base_url}/{file stem}`.
    pub fn load(dir: &Path, base_url: &str, min_confidence: f64) -> Result<KnowledgeBase, AgentError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| AgentError::Config(format!("cannot read the knowledge base folder {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(AgentError::Config(format!(
                "the knowledge base folder {} holds no .md articles",
                dir.display()
            )));
        }
        let mut sections = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| AgentError::Config(format!("cannot read {}: {e}", path.display())))?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("article");
            sections.extend(split_article(stem, &text, &format!("{}/{stem}", base_url.trim_end_matches('/'))));
        }
        Ok(Self::index(sections, min_confidence))
    }

    /// Builds a knowledge base from articles given as (file stem, markdown) pairs, such as
    /// the demo's built-in help centre.
    pub fn from_articles(articles: &[(&str, &str)], base_url: &str, min_confidence: f64) -> KnowledgeBase {
        let sections = articles
            .iter()
            .flat_map(|(stem, text)| split_article(stem, text, &format!("{}/{stem}", base_url.trim_end_matches('/'))))
            .collect();
        Self::index(sections, min_confidence)
    }

    fn index(sections: Vec<Section>, min_confidence: f64) -> KnowledgeBase {
        let mut doc_freq: HashMap<String, u32> = HashMap::new();
        for s in &sections {
            for term in s.terms.keys() {
                *doc_freq.entry(term.clone()).or_default() += 1;
            }
        }
        let avg_len = sections.iter().map(|s| s.len as f64).sum::<f64>() / sections.len().max(1) as f64;
        KnowledgeBase { sections, doc_freq, avg_len, min_confidence }
    }

    fn idf(&self, term: &str) -> f64 {
        let n = self.sections.len() as f64;
        let df = *self.doc_freq.get(term).unwrap_or(&0) as f64;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Ranks sections for `question`; returns (section index, score) best first and the
    /// highest score any section could reach for this question.
    fn rank(&self, question: &str) -> (Vec<(usize, f64)>, f64) {
        let query: HashSet<String> = tokenize(question).into_iter().collect();
        // The question's information: every term's idf, words the help centre never uses
        // at the highest idf, so a question about uncovered things cannot look answered.
        let ceiling: f64 = query.iter().map(|t| self.idf(t)).sum();
        let mut scored: Vec<(usize, f64)> = self
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let norm = K1 * (1.0 - B + B * s.len as f64 / self.avg_len.max(1.0));
                let score = query
                    .iter()
                    .filter_map(|t| s.terms.get(t).map(|&tf| (t, tf as f64)))
                    .map(|(t, tf)| self.idf(t) * tf * (K1 + 1.0) / (tf + norm))
                    .sum::<f64>();
                (i, score)
            })
            .filter(|(_, score)| *score > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        (scored, ceiling)
    }

    /// The articles that match `question`, best first, each scored by its best section.
    pub fn ranked_articles(&self, question: &str) -> Vec<(String, f64)> {
        let (ranked, _) = self.rank(question);
        let mut seen = HashSet::new();
        ranked
            .into_iter()
            .filter(|(i, _)| seen.insert(self.sections[*i].article.as_str()))
            .map(|(i, score)| (self.sections[i].article.clone(), score))
            .collect()
    }

    /// The id of the article a link points at (the links answers carry).
    pub fn article_of(&self, url: &str) -> Option<&str> {
        self.sections.iter().find(|s| s.url == url).map(|s| s.article.as_str())
    }

    /// Answers `question` from the best section, or says it cannot help.
    pub fn answer(&self, question: &str) -> AgentAnswer {
        let (ranked, ceiling) = self.rank(question);
        let Some(&(best, score)) = ranked.first() else {
            return AgentAnswer::cannot_help("knowledge_base", 0.0, "no help article matches the question");
        };
        let section = &self.sections[best];
        let query: HashSet<String> = tokenize(question).into_iter().collect();
        let matched: Vec<&String> = query.iter().filter(|t| section.terms.contains_key(*t)).collect();
        // Confidence is coverage: the share of the question's information the best section
        // matches (BM25 ranks; coverage is comparable across question lengths).
        let covered: f64 = matched.iter().map(|t| self.idf(t)).sum();
        let confidence = if ceiling > 0.0 { (covered / ceiling).min(1.0) } else { 0.0 };
        let _ = score;
        let matched = matched.len();
        let source = Source { title: section.article_title.clone(), url: section.url.clone() };
        if confidence < self.min_confidence || matched < 2 {
            let mut a = AgentAnswer::cannot_help(
                "knowledge_base",
                confidence,
                &format!("best match \"{}\" is below the confidence threshold", section.article_title),
            );
            a.sources.push(source);
            return a;
        }
        // Quote every strongly matching section of the best article, in the article's
        // order: "when to" and "how to" usually belong together.
        let mut chosen: Vec<usize> = ranked
            .iter()
            .filter(|(i, s)| *s >= score * 0.5 && self.sections[*i].url == section.url)
            .map(|(i, _)| *i)
            .take(3)
            .collect();
        chosen.sort_unstable();
        let body = chosen.iter().map(|&i| self.sections[i].text.as_str()).collect::<Vec<_>>().join("\n\n");
        let text = format!(
            "{}\n\nYou can read more in our help article \"{}\": {}",
            excerpt(&body, 1_500),
            section.article_title,
            section.url
        );
        AgentAnswer {
            text: Some(text),
            confidence,
            sources: vec![source],
            backend: "knowledge_base".into(),
            note: None,
        }
    }
}

/// Splits an article into its sections. The first `# ` line is the title.
fn split_article(article: &str, text: &str, default_url: &str) -> Vec<Section> {
    let mut url = default_url.to_string();
    let mut title = None;
    let mut sections: Vec<(Option<String>, Vec<&str>)> = vec![(None, Vec::new())];
    for line in text.lines() {
        if let Some(u) = line.strip_prefix("url:") {
            url = u.trim().to_string();
        } else if let Some(t) = line.strip_prefix("# ") {
            title.get_or_insert_with(|| t.trim().to_string());
        } else if let Some(h) = line.strip_prefix("## ") {
            sections.push((Some(h.trim().to_string()), Vec::new()));
        } else if let Some(last) = sections.last_mut() {
            last.1.push(line);
        }
    }
    let title = title.unwrap_or_else(|| default_url.rsplit('/').next().unwrap_or("Help").replace('-', " "));
    sections
        .into_iter()
        .filter_map(|(heading, lines)| {
            let body = lines.join("\n").trim().to_string();
            if body.is_empty() {
                return None;
            }
            // The title and heading count toward the match, as a reader would expect.
            let searchable = format!("{title} {} {body}", heading.as_deref().unwrap_or(""));
            let tokens = tokenize(&searchable);
            let mut terms: HashMap<String, u32> = HashMap::new();
            for t in &tokens {
                *terms.entry(t.clone()).or_default() += 1;
            }
            Some(Section {
                article: article.to_string(),
                article_title: title.clone(),
                url: url.clone(),
                text: body,
                len: tokens.len() as u32,
                terms,
            })
        })
        .collect()
}

/// Words of at least two letters, lowercased, stop words dropped, with a light stemmer.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// A crude stemmer: common suffixes off, then at most seven letters, which folds word
/// families together ("calibration", "calibrating", "calibrate" → "calibra").
fn stem(word: &str) -> String {
    let mut base = word;
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(b) = word.strip_suffix(suffix)
            && b.chars().count() >= 3
        {
            base = b;
            break;
        }
    }
    base.chars().take(7).collect()
}

const STOP_WORDS: &[&str] = &[
    "&[",
    "&str",
    ";",
    "=",
    "a",
    "about",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "another",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "bit",
    "but",
    "by",
    "can",
    "could",
    "do",
    "does",
    "even",
    "fine",
    "for",
    "from",
    "get",
    "got",
    "great",
    "had",
    "has",
    "have",
    "hello",
    "hi",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "like",
    "lot",
    "many",
    "maybe",
    "me",
    "more",
    "much",
    "my",
    "need",
    "no",
    "not",
    "now",
    "of",
    "ok",
    "okay",
    "on",
    "one",
    "or",
    "other",
    "our",
    "please",
    "quite",
    "really",
    "same",
    "see",
    "seems",
    "should",
    "so",
    "some",
    "something",
    "still",
    "sure",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "then",
    "there",
    "thing",
    "things",
    "this",
    "to",
    "tried",
    "try",
    "us",
    "very",
    "want",
    "was",
    "way",
    "we",
    "well",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "yet",
    "you",
    "your",
];

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
            "url: https://help.example/gripper\n# Calibrating the gripper\n\n## When to recalibrate\nIf the gripper drifts after a restart, recalibrate it.\n\n## Steps\nHold the reset button for five seconds, then run the calibration wizard.",
            "# Paying invoices\n\nInvoices are sent monthly. Pay by card or bank transfer.",
            "# Firmware updates\n\n## Failed updates\nIf a firmware update stops, the controller shows E42. Power-cycle it and retry the update over USB.",
        ];
        let sections = articles
            .iter()
            .enumerate()
            .flat_map(|(i, a)| split_article(&format!("a{i}"), a, &format!("https://help.example/a{i}")))
            .collect();
        KnowledgeBase::index(sections, 0.3)
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
    fn tokenizer_drops_stop_words_and_stems() {
        assert_eq!(tokenize("How do I reset the Grippers?"), ["reset", "gripper"]);
        assert_eq!(tokenize("calibration calibrating calibrate"), ["calibra", "calibra", "calibra"]);
    }
}
