//! Articles split into passages: the pieces retrieval ranks, quotes and (for a model)
//! cites. A passage is one section of an article (under a `##`, `###` or `####` heading),
//! cut further at paragraph boundaries when it is long, so a quote or a model's context
//! holds what answers and little else.
//!
//! Passage ids are stable: `{article id}#{heading slug}`, with `-2`, `-3` for a repeated
//! heading or the later pieces of a long section. Editing one section leaves every other
//! passage's id unchanged, so citations in stored traces keep pointing at the same text.

use super::Article;

/// The most characters a passage holds before it is cut at a paragraph boundary (a single
/// longer paragraph stays whole).
pub const PASSAGE_MAX_CHARS: usize = 1_500;

/// One searchable piece of an article.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// `{article id}#{heading slug}[-n]`.
    pub id: String,
    /// The section heading, empty for the text before the first heading.
    pub heading: String,
    pub text: String,
}

/// Splits an article's markdown body into passages. Headings inside fenced code blocks
/// (a `# comment` in a shell example) are code, not sections.
pub fn split(article: &Article) -> Vec<Passage> {
    let mut sections: Vec<(String, Vec<&str>)> = vec![(String::new(), Vec::new())];
    let mut in_fence = false;
    for line in article.body.lines() {
        if is_fence(line) {
            in_fence = !in_fence;
        } else if !in_fence && let Some(heading) = section_heading(line) {
            sections.push((heading.to_string(), Vec::new()));
            continue;
        }
        if let Some(last) = sections.last_mut() {
            last.1.push(line);
        }
    }
    let mut used = std::collections::HashSet::new();
    let mut passages = Vec::new();
    for (heading, lines) in sections {
        let body = lines.join("\n");
        let slug = slug(if heading.is_empty() { "intro" } else { &heading });
        for piece in pieces(body.trim()) {
            let mut id = format!("{}#{slug}", article.id);
            let mut n = 1;
            while !used.insert(id.clone()) {
                n += 1;
                id = format!("{}#{slug}-{n}", article.id);
            }
            passages.push(Passage { id, heading: heading.clone(), text: piece });
        }
    }
    passages
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The text of a `##`, `###` or `####` heading line.
fn section_heading(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    if !(2..=4).contains(&hashes) {
        return None;
    }
    line[hashes..].strip_prefix(' ').map(str::trim).filter(|h| !h.is_empty())
}

/// Paragraph groups of at most [`PASSAGE_MAX_CHARS`] characters.
fn pieces(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for paragraph in body.split("\n\n").map(|p| p.trim_matches('\n')).filter(|p| !p.trim().is_empty()) {
        let length = current.chars().count() + 2 + paragraph.chars().count();
        if !current.is_empty() && length > PASSAGE_MAX_CHARS {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(paragraph);
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Lowercase letters and digits, other runs as one `-`: "Failed updates?" → "failed-updates".
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 80 {
            break;
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() { "section".to_string() } else { out.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(body: &str) -> Article {
        Article {
            id: "reset".into(),
            title: "Resetting".into(),
            url: "https://help.example/reset".into(),
            summary: String::new(),
            body: body.into(),
        }
    }

    #[test]
    fn one_passage_per_section_with_stable_ids() {
        let a =
            article("Lead text.\n\n## When to reset\nAfter drift.\n\n### Steps\nHold the button.\n\n## Steps\nAgain.");
        let ids: Vec<String> = split(&a).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["reset#intro", "reset#when-to-reset", "reset#steps", "reset#steps-2"]);
    }

    #[test]
    fn headings_inside_code_fences_are_code() {
        let a = article("## Setup\n```sh\n# not a heading\n## nor this\necho hi\n```\nDone.");
        let passages = split(&a);
        assert_eq!(passages.len(), 1);
        assert!(passages[0].text.contains("## nor this"), "{:?}", passages[0].text);
    }

    #[test]
    fn long_sections_are_cut_at_paragraphs_and_nothing_is_lost() {
        let paragraph = "word ".repeat(100); // 500 characters
        let body = format!("## Long\n{}", [paragraph.trim(); 7].join("\n\n"));
        let passages = split(&article(&body));
        assert!(passages.len() >= 3, "{}", passages.len());
        assert!(passages.iter().all(|p| p.text.chars().count() <= PASSAGE_MAX_CHARS));
        assert_eq!(passages[1].id, "reset#long-2");
        let words: usize = passages.iter().map(|p| p.text.split_whitespace().count()).sum();
        assert_eq!(words, 700);
    }

    #[test]
    fn slugs_are_plain_and_bounded() {
        assert_eq!(slug("Failed updates?"), "failed-updates");
        assert_eq!(slug("  ¿Qué pasa? "), "qué-pasa");
        assert_eq!(slug("!!!"), "section");
        assert!(slug(&"a".repeat(10_000)).len() <= 80);
    }

    #[test]
    fn empty_and_heading_only_articles_have_no_passages() {
        assert!(split(&article("")).is_empty());
        assert!(split(&article("## Only a heading\n\n## Another")).is_empty());
    }
}
