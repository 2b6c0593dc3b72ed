//! The agent's settings for ranking by meaning and for suggestions: which
//! sentence-embedding model, where its vectors are kept, and the bars between a stated
//! answer, articles offered, and a handover.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A sentence-embedding model (MiniLM-class, such as all-MiniLM-L6-v2) run in the daemon.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// The folder with the model's `config.json`, `tokenizer.json` and
    /// `model.safetensors` (a sentence-transformers folder as published).
    pub model: PathBuf,
    /// Where the help centre's passage vectors are kept (default: beside the store,
    /// `{store_path}.vectors`).
    #[serde(default)]
    pub cache: Option<PathBuf>,
}

/// The knowledge base's three outcomes: a stated answer when the evidence is strong,
/// up to `max` articles offered for the customer to confirm, or a handover at once.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestionsConfig {
    /// The most articles offered at once (1 to 5).
    #[serde(default = "default_suggestions_max")]
    #[schemars(range(min = 1, max = 5))]
    pub max: usize,
    /// The cosine a stated answer's passage needs (with a model); BM25F and the model
    /// must also put its article first. Default: chosen on the tuning halves of the eval
    /// sets.
    #[serde(default = "default_state_at")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub state_at: f64,
    /// How far the stated article's cosine must lead the next article's (with a model).
    #[serde(default = "default_state_margin")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub state_margin: f64,
    /// The cosine an article needs to be offered on its own (with a model).
    #[serde(default = "default_suggest_at")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub suggest_at: f64,
    /// The cosine an article needs to be offered when its words also cover half the
    /// question (with a model). Below both bars nothing is offered: a handover at once.
    #[serde(default = "default_suggest_with_words_at")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub suggest_with_words_at: f64,
    /// Without a model: the coverage a stated answer needs (below it, down to
    /// `min_confidence`, articles are offered). Default: none, nothing is stated by words
    /// alone (on the eval sets a full-coverage passage was still wrong one time in four).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub state_at_coverage: Option<f64>,
    /// What a customer's silence after suggestions means once `resolutions.quiet_after`
    /// passes: `soft_resolution` (as Fin counts it) or `handover`.
    #[serde(default)]
    pub on_silence: SilenceAfterSuggestions,
}

impl Default for SuggestionsConfig {
    fn default() -> Self {
        SuggestionsConfig {
            max: default_suggestions_max(),
            state_at: default_state_at(),
            state_margin: default_state_margin(),
            suggest_at: default_suggest_at(),
            suggest_with_words_at: default_suggest_with_words_at(),
            state_at_coverage: None,
            on_silence: SilenceAfterSuggestions::default(),
        }
    }
}

/// What silence after suggestions means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SilenceAfterSuggestions {
    /// A soft resolution, reported apart from confirmed ones.
    #[default]
    SoftResolution,
    /// A handover to the team, with the suggestions in the note.
    Handover,
}

fn default_suggestions_max() -> usize {
    3
}

fn default_state_at() -> f64 {
    0.6
}

fn default_state_margin() -> f64 {
    0.1
}

fn default_suggest_at() -> f64 {
    0.55
}

fn default_suggest_with_words_at() -> f64 {
    0.35
}
