//! The sentence-embedding model: a MiniLM-class BERT encoder, loaded from the files an
//! admin points at (`config.json`, `tokenizer.json`, `model.safetensors`, and the
//! sentence-transformers files beside them when present) and run in this process on the
//! CPU, in pure Rust (candle). A text becomes a unit vector; two texts' dot product is
//! their cosine, which [`crate::knowledge`] ranks passages by beside BM25F.
//!
//! Everything read is checked at load, and every refusal names the file. Vectors of the
//! help centre's passages are kept on disk by [`cache`], keyed by the model's fingerprint
//! and each passage's text.

mod bert;
pub mod cache;

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use tokenizers::{Tokenizer, TruncationParams};

use bert::{Bert, BertShape};

/// The largest `model.safetensors` read, in bytes.
pub const MAX_WEIGHTS_BYTES: u64 = 512 * 1024 * 1024;
/// The largest `tokenizer.json` read, in bytes.
pub const MAX_TOKENIZER_BYTES: u64 = 32 * 1024 * 1024;
/// The largest JSON settings file (`config.json` and the sentence-transformers files).
const MAX_SETTINGS_BYTES: u64 = 64 * 1024;
/// The most tokens of one text the model reads (sentence-transformers' `max_seq_length`
/// may lower it); the rest of a longer text is not embedded.
pub const MAX_TOKENS: usize = 512;
/// The most characters of one text handed to the tokenizer: a text past this many
/// characters has more tokens than the model reads anyway, so a huge message costs
/// no more than a long one.
const MAX_TEXT_CHARS: usize = 8 * MAX_TOKENS;
/// The sizes a `config.json` may give (a MiniLM is 384 wide, 6 deep, 30,522 words).
const MAX_HIDDEN: usize = 4096;
const MAX_LAYERS: usize = 48;
const MAX_VOCAB: usize = 1_000_000;
/// Attention heads: each holds a tokens × tokens matrix a text in a batch (32 heads of 512
/// tokens, 16 texts: 512 MiB).
const MAX_HEADS: usize = 32;
/// Texts embedded in one forward pass.
const BATCH: usize = 16;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    /// A file of the model is missing, unreadable or not what a BERT encoder needs.
    #[error("embedding model: {file}: {why}")]
    File { file: PathBuf, why: String },
    /// The forward pass failed (out of memory, say).
    #[error("embedding model: {0}")]
    Run(String),
}

fn file_error(file: &Path, why: impl ToString) -> EmbeddingError {
    EmbeddingError::File { file: file.to_path_buf(), why: why.to_string() }
}

/// How the token vectors become one vector, from `1_Pooling/config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

/// A loaded model, ready to embed.
pub struct Encoder {
    bert: Bert,
    tokenizer: Tokenizer,
    pooling: Pooling,
    dim: usize,
    fingerprint: String,
    dir: PathBuf,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("dir", &self.dir).field("fingerprint", &self.fingerprint).finish()
    }
}

impl Encoder {
    /// Loads and checks the model in `dir`.
    pub fn load(dir: &Path) -> Result<Encoder, EmbeddingError> {
        let config_path = dir.join("config.json");
        let (shape, config_bytes) = read_shape(&config_path)?;
        let max_tokens = read_max_tokens(dir, &shape)?;
        let pooling = read_pooling(dir)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_bytes = crate::bounded_file::read_bytes(&tokenizer_path, MAX_TOKENIZER_BYTES)
            .map_err(|e| file_error(&tokenizer_path, e))?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_bytes)
            .map_err(|e| file_error(&tokenizer_path, format!("not a tokenizer: {e}")))?;
        let largest_id = tokenizer.get_vocab(true).into_values().max().unwrap_or(0) as usize;
        if largest_id >= shape.vocab_size {
            return Err(file_error(
                &tokenizer_path,
                format!("its token ids reach {largest_id}, past config.json's vocab_size {}", shape.vocab_size),
            ));
        }
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| file_error(&tokenizer_path, e))?;
        tokenizer.with_padding(None);

        let weights_path = dir.join("model.safetensors");
        let weights = crate::bounded_file::read_bytes(&weights_path, MAX_WEIGHTS_BYTES)
            .map_err(|e| file_error(&weights_path, e))?;
        let device = bert::cpu();
        let tensors = candle_core::safetensors::load_buffer(&weights, &device)
            .map_err(|e| file_error(&weights_path, format!("not safetensors: {e}")))?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &device);
        let bert = Bert::load(vb, &shape).map_err(|e| file_error(&weights_path, format!("not a BERT encoder: {e}")))?;

        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for bytes in [config_bytes, tokenizer_bytes, weights] {
            hash.update(&(bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
        hash.update(format!("{max_tokens} {pooling:?}").as_bytes());
        let fingerprint = hash.finish().as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Encoder { bert, tokenizer, pooling, dim: shape.hidden_size, fingerprint, dir: dir.to_path_buf() })
    }

    /// The width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model's files and settings, hashed: vectors made by another model never mix.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One unit vector.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EmbeddingError> {
        Ok(self.embed_all(&[text])?.pop().unwrap_or_default())
    }

    /// One unit vector a text, in order. Texts of like length are run together, so little
    /// of each pass is padding.
    pub fn embed_all(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let cut: Vec<&str> = texts.iter().map(|t| cut_chars(t, MAX_TEXT_CHARS)).collect();
        let encodings = self.tokenizer.encode_batch(cut, true).map_err(|e| EmbeddingError::Run(e.to_string()))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut vectors = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
            let batch = self.run(&rows).map_err(|e| EmbeddingError::Run(e.to_string()))?;
            for (&i, v) in chunk.iter().zip(batch) {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }

    fn run(&self, rows: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let tokens = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; rows.len() * tokens];
        let mut mask = vec![0f32; rows.len() * tokens];
        for (r, row) in rows.iter().enumerate() {
            ids[r * tokens..r * tokens + row.len()].copy_from_slice(row);
            mask[r * tokens..r * tokens + row.len()].fill(1.0);
        }
        let device = bert::cpu();
        let ids = Tensor::from_vec(ids, (rows.len(), tokens), &device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), tokens), &device)?;
        let hidden = self.bert.forward(&ids, &mask)?;
        let pooled = match self.pooling {
            Pooling::Mean => bert::mean_pool_normalized(&hidden, &mask)?,
            Pooling::Cls => {
                let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                let length = cls.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
                cls.broadcast_div(&length)?
            }
        };
        pooled.to_vec2::<f32>()
    }
}

/// The cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cut_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, EmbeddingError> {
    Ok(read_json_bytes(path)?.0)
}

/// A JSON settings file, and its bytes (for the model's fingerprint).
fn read_json_bytes(path: &Path) -> Result<(serde_json::Value, Vec<u8>), EmbeddingError> {
    let text = crate::bounded_file::read(path, MAX_SETTINGS_BYTES).map_err(|e| file_error(path, e))?;
    let json = serde_json::from_str(&text)
        .map_err(|e| file_error(path, format!("line {} column {}: {e}", e.line(), e.column())))?;
    Ok((json, text.into_bytes()))
}

fn read_shape(path: &Path) -> Result<(BertShape, Vec<u8>), EmbeddingError> {
    let (json, bytes) = read_json_bytes(path)?;
    // RoBERTa-style models number positions from the padding index on: not this network.
    if let Some(kind) = json.get("model_type").and_then(|v| v.as_str())
        && kind != "bert"
    {
        return Err(file_error(path, format!("model_type \"{kind}\" is not a BERT encoder")));
    }
    if let Some(act) = json.get("hidden_act").and_then(|v| v.as_str())
        && act != "gelu"
    {
        return Err(file_error(path, format!("hidden_act \"{act}\" is not supported (only gelu)")));
    }
    let shape: BertShape = serde_json::from_value(json).map_err(|e| file_error(path, e))?;
    let bad = |why: String| Err(file_error(path, why));
    if shape.hidden_size == 0 || shape.hidden_size > MAX_HIDDEN {
        return bad(format!("hidden_size {} is not between 1 and {MAX_HIDDEN}", shape.hidden_size));
    }
    if shape.num_attention_heads == 0 || shape.num_attention_heads > MAX_HEADS {
        return bad(format!("num_attention_heads {} is not between 1 and {MAX_HEADS}", shape.num_attention_heads));
    }
    if !shape.hidden_size.is_multiple_of(shape.num_attention_heads) {
        return bad(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            shape.hidden_size, shape.num_attention_heads
        ));
    }
    if shape.num_hidden_layers == 0 || shape.num_hidden_layers > MAX_LAYERS {
        return bad(format!("num_hidden_layers {} is not between 1 and {MAX_LAYERS}", shape.num_hidden_layers));
    }
    if shape.vocab_size == 0 || shape.vocab_size > MAX_VOCAB {
        return bad(format!("vocab_size {} is not between 1 and {MAX_VOCAB}", shape.vocab_size));
    }
    if shape.intermediate_size == 0 || shape.intermediate_size > 8 * MAX_HIDDEN {
        return bad(format!("intermediate_size {} is out of range", shape.intermediate_size));
    }
    if shape.max_position_embeddings == 0 || shape.type_vocab_size == 0 {
        return bad("max_position_embeddings and type_vocab_size must be at least 1".into());
    }
    Ok((shape, bytes))
}

/// sentence-transformers' `max_seq_length` where the folder has it, within what the
/// network's positions allow and [`MAX_TOKENS`].
fn read_max_tokens(dir: &Path, shape: &BertShape) -> Result<usize, EmbeddingError> {
    let path = dir.join("sentence_bert_config.json");
    let configured = if path.exists() {
        read_json(&path)?.get("max_seq_length").and_then(|v| v.as_u64()).map(|n| n as usize)
    } else {
        None
    };
    Ok(configured.unwrap_or(256).min(shape.max_position_embeddings).clamp(1, MAX_TOKENS))
}

/// Mean pooling unless `1_Pooling/config.json` asks for the first token's vector.
fn read_pooling(dir: &Path) -> Result<Pooling, EmbeddingError> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.exists() {
        return Ok(Pooling::Mean);
    }
    let json = read_json(&path)?;
    let on = |key: &str| json.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
    match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(file_error(&path, "only mean pooling or the CLS token alone is supported")),
    }
}

/// The model with its vector cache: what the help centre's library embeds with.
#[derive(Debug)]
pub struct CachedEncoder {
    encoder: Encoder,
    cache: std::sync::Mutex<cache::VectorCache>,
    used: std::sync::Mutex<cache::CacheUse>,
}

impl CachedEncoder {
    /// The model in `model_dir`, its vectors kept in `cache_dir`.
    pub fn open(model_dir: &Path, cache_dir: &Path) -> Result<CachedEncoder, EmbeddingError> {
        let encoder = Encoder::load(model_dir)?;
        let cache = cache::VectorCache::open(cache_dir, &encoder)?;
        Ok(CachedEncoder { encoder, cache: std::sync::Mutex::new(cache), used: Default::default() })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Passage vectors read from the cache and computed, since the start.
    pub fn cache_use(&self) -> cache::CacheUse {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl crate::knowledge::Embedder for CachedEncoder {
    fn passage_vectors(&self, texts: &[String]) -> Result<crate::knowledge::PassageVectors, String> {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (vectors, used) = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.vectors(&self.encoder, &texts).map_err(|e| e.to_string())?
        };
        tracing::info!(reused = used.reused, embedded = used.embedded, "help centre passages embedded");
        {
            let mut total = self.used.lock().unwrap_or_else(|p| p.into_inner());
            total.reused += used.reused;
            total.embedded += used.embedded;
        }
        crate::knowledge::PassageVectors::new(self.encoder.fingerprint(), self.encoder.dim(), vectors)
            .ok_or_else(|| "the model gave vectors of another width".to_string())
    }

    fn question_vector(&self, question: &str) -> Result<Vec<f32>, String> {
        self.encoder.embed(question).map_err(|e| e.to_string())
    }

    fn text_vectors(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.encoder.embed_all(texts).map_err(|e| e.to_string())
    }
}
