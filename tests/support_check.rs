//! The check that a model's answer says what its cited passages say
//! (`casebridge::agent::support`), measured on a real help centre (Zulip's, `tests/eval/`):
//! each passage's own opening statements, cited for it, must pass; another article's,
//! cited for it, must be stopped. By words alone, and with the embedding model. The figures
//! are docs/agent.md's.

mod common;

use casebridge::agent::support::{Cited, check, statements};
use casebridge::knowledge::{Index, Library, load_markdown_folder};

struct Figures {
    own_passed: f64,
    foreign_stopped: f64,
    pairs: usize,
}

/// Every passage with two statements or more: its own first two, and the first two of the
/// passage seven articles on, each checked against it.
fn measure(library: &Library) -> Figures {
    let index = library.current();
    let texts = index.passage_texts();
    let passages: Vec<(usize, String, String)> = index
        .articles()
        .iter()
        .enumerate()
        .flat_map(|(a, article)| {
            casebridge::knowledge::passages::split(article).into_iter().map(move |p| (a, p.id, p.text))
        })
        .collect();
    assert_eq!(passages.len(), texts.len());
    let opening = |text: &str| statements(text).into_iter().take(2).collect::<Vec<_>>().join(" ");
    let (mut own, mut foreign, mut pairs) = (0, 0, 0);
    let articles = index.articles().len();
    for (article, id, text) in &passages {
        if statements(text).len() < 2 {
            continue;
        }
        let Some((_, _, other)) =
            passages.iter().find(|(a, _, t)| *a == (article + 7) % articles && statements(t).len() >= 2)
        else {
            continue;
        };
        pairs += 1;
        let vector = index.passage_vector(id);
        let cited = [Cited { text, vector }];
        let embed = |s: &[&str]| library.text_vectors(s).unwrap_or_else(|| Err("no model".into()));
        let embed: Option<casebridge::agent::support::EmbedStatements<'_>> =
            if library.is_semantic() { Some(&embed) } else { None };
        own += usize::from(check(&opening(text), &cited, embed).is_ok());
        foreign += usize::from(check(&opening(other), &cited, embed).is_err());
    }
    Figures { own_passed: own as f64 / pairs as f64, foreign_stopped: foreign as f64 / pairs as f64, pairs }
}

fn zulip() -> Index {
    Index::new(load_markdown_folder(&common::root().join("tests/eval/zulip-help"), "https://zulip.com/help").unwrap())
}

#[test]
fn by_words_alone_own_statements_pass_and_another_article_s_are_stopped() {
    let f = measure(&Library::new(zulip()));
    println!("by words: {} pairs, own passed {:.2}, foreign stopped {:.2}", f.pairs, f.own_passed, f.foreign_stopped);
    assert!(f.pairs > 300, "{}", f.pairs);
    assert!(f.own_passed >= 0.99, "{:.3}", f.own_passed);
    assert!(f.foreign_stopped >= 0.96, "{:.3}", f.foreign_stopped);
}

#[test]
fn with_the_model_own_statements_pass_and_another_article_s_are_stopped() {
    let Some(model) = common::models::real_model() else { return };
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-vectors").join("zulip-help");
    let encoder = casebridge::embedding::CachedEncoder::open(&model, &cache).unwrap();
    let library = Library::with_embedder(zulip(), std::sync::Arc::new(encoder)).unwrap();
    let f = measure(&library);
    println!(
        "with the model: {} pairs, own passed {:.2}, foreign stopped {:.2}",
        f.pairs, f.own_passed, f.foreign_stopped
    );
    assert!(f.own_passed >= 0.99, "{:.3}", f.own_passed);
    assert!(f.foreign_stopped >= 0.89, "{:.3}", f.foreign_stopped);
}
