//! The sentence-embedding model through the library's public API: loading and checking a
//! model folder (every refusal names its file), embedding, the passage-vector cache
//! across restarts, and the real all-MiniLM-L6-v2 against the Python reference.

mod common;

use casebridge::embedding::{CachedEncoder, Encoder};
use casebridge::knowledge::Embedder;
use common::models::{TINY_DIM, real_model, tiny_model};

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn a_tiny_model_loads_and_embeds_unit_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = Encoder::load(&tiny_model(dir.path())).unwrap();
    assert_eq!(encoder.dim(), TINY_DIM);
    let alone = encoder.embed("reset password").unwrap();
    assert_eq!(alone.len(), TINY_DIM);
    assert!((norm(&alone) - 1.0).abs() < 1e-5);
    // In a batch with a longer text (so padded), the vector is the same.
    let both = encoder.embed_all(&["printer invoice printer invoice printer", "reset password"]).unwrap();
    for (a, b) in alone.iter().zip(&both[1]) {
        assert!((a - b).abs() < 1e-5, "{alone:?} vs {:?}", both[1]);
    }
    // Empty, unknown and huge texts embed too (a huge one is cut, not refused).
    assert_eq!(encoder.embed("").unwrap().len(), TINY_DIM);
    assert_eq!(encoder.embed("zzz qqq").unwrap().len(), TINY_DIM);
    let huge = "printer ".repeat(200_000);
    assert_eq!(encoder.embed(&huge).unwrap().len(), TINY_DIM);
}

fn refusal(dir: &std::path::Path) -> String {
    Encoder::load(dir).expect_err("refused").to_string()
}

#[test]
fn broken_model_folders_are_refused_by_file() {
    let root = tempfile::tempdir().unwrap();
    let e = refusal(&root.path().join("missing"));
    assert!(e.contains("config.json"), "{e}");

    let dir = tiny_model(&root.path().join("bad-config"));
    std::fs::write(dir.join("config.json"), "{\n  \"hidden_size\": 8,\n  oops\n}").unwrap();
    let e = refusal(&dir);
    assert!(e.contains("config.json") && e.contains("line 3"), "{e}");

    for (field, value, says) in [
        ("hidden_act", serde_json::json!("relu"), "hidden_act"),
        ("num_attention_heads", serde_json::json!(3), "multiple of num_attention_heads"),
        ("num_hidden_layers", serde_json::json!(10_000), "num_hidden_layers"),
        ("model_type", serde_json::json!("gpt2"), "not a BERT encoder"),
        ("model_type", serde_json::json!("roberta"), "not a BERT encoder"),
        ("num_attention_heads", serde_json::json!(64), "num_attention_heads 64 is not between 1 and 32"),
        ("vocab_size", serde_json::json!(4), "vocab_size"),
    ] {
        let dir = tiny_model(&root.path().join(format!("bad-{field}")));
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        config[field] = value;
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let e = refusal(&dir);
        assert!(e.contains(says), "{field}: {e}");
        let file = if field == "vocab_size" { "tokenizer.json" } else { "config.json" };
        assert!(e.contains(file), "{field}: {e}");
    }

    let dir = tiny_model(&root.path().join("bad-tokenizer"));
    std::fs::write(dir.join("tokenizer.json"), "{\"model\": 1}").unwrap();
    let e = refusal(&dir);
    assert!(e.contains("tokenizer.json") && e.contains("not a tokenizer"), "{e}");

    let dir = tiny_model(&root.path().join("bad-weights"));
    std::fs::write(dir.join("model.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    let e = refusal(&dir);
    assert!(e.contains("model.safetensors") && e.contains("not safetensors"), "{e}");

    // Weights of another shape: a tensor missing.
    let dir = tiny_model(&root.path().join("missing-tensor"));
    let mut tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    tensors.remove("encoder.layer.0.output.dense.weight");
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let e = refusal(&dir);
    assert!(e.contains("model.safetensors") && e.contains("not a BERT encoder"), "{e}");

    // A FIFO where the weights should be is refused at once, never waited on.
    let dir = tiny_model(&root.path().join("fifo"));
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("model.safetensors").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let e = refusal(&dir);
    assert!(e.contains("model.safetensors") && e.contains("not a regular file"), "{e}");

    // Pooling the model does not do.
    let dir = tiny_model(&root.path().join("max-pooling"));
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::write(dir.join("1_Pooling/config.json"), r#"{"pooling_mode_max_tokens": true}"#).unwrap();
    let e = refusal(&dir);
    assert!(e.contains("1_Pooling") && e.contains("mean pooling"), "{e}");
}

fn texts(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn passage_vectors_are_kept_across_restarts_and_only_changes_are_embedded() {
    let root = tempfile::tempdir().unwrap();
    let model = tiny_model(&root.path().join("model"));
    let cache = root.path().join("cache");
    let help = texts(&["reset password", "printer", "invoice", "reset printer", "password invoice"]);

    let first = CachedEncoder::open(&model, &cache).unwrap();
    let made = first.passage_vectors(&help).unwrap();
    assert_eq!((first.cache_use().embedded, first.cache_use().reused), (5, 0));
    drop(first);

    // A restart: nothing embedded, the same vectors.
    let second = CachedEncoder::open(&model, &cache).unwrap();
    let again = second.passage_vectors(&help).unwrap();
    assert_eq!((second.cache_use().embedded, second.cache_use().reused), (0, 5));
    assert_eq!(format!("{made:?}"), format!("{again:?}"));

    // One passage changed: one embedded.
    let mut changed = help.clone();
    changed[2] = "invoice printer".into();
    second.passage_vectors(&changed).unwrap();
    assert_eq!((second.cache_use().embedded, second.cache_use().reused), (1, 9));
    drop(second);

    // A torn last record (a crash while appending) is dropped and embedded again.
    let file = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(len - 3).unwrap();
    let third = CachedEncoder::open(&model, &cache).unwrap();
    third.passage_vectors(&changed).unwrap();
    assert_eq!((third.cache_use().embedded, third.cache_use().reused), (1, 4));
    drop(third);

    // Garbage in the file is never trusted.
    std::fs::write(&file, b"not a cache at all").unwrap();
    let fourth = CachedEncoder::open(&model, &cache).unwrap();
    fourth.passage_vectors(&changed).unwrap();
    assert_eq!(fourth.cache_use().embedded, 5);
}

/// Two processes (a daemon and `casebridge agent ask`, say) on one cache: the first writes
/// it, the second only reads it and keeps what it embeds in memory.
#[test]
fn one_writer_at_a_time_the_others_only_read() {
    let root = tempfile::tempdir().unwrap();
    let model = tiny_model(&root.path().join("model"));
    let cache = root.path().join("cache");
    let writer = CachedEncoder::open(&model, &cache).unwrap();
    writer.passage_vectors(&texts(&["reset password", "printer"])).unwrap();
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "vectors"))
        .unwrap();
    let written = std::fs::metadata(&file).unwrap().len();

    let reader = CachedEncoder::open(&model, &cache).unwrap();
    reader.passage_vectors(&texts(&["reset password", "printer", "invoice"])).unwrap();
    assert_eq!((reader.cache_use().reused, reader.cache_use().embedded), (2, 1));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), written, "the reader wrote nothing");
    drop(reader);
    drop(writer);

    let next = CachedEncoder::open(&model, &cache).unwrap();
    next.passage_vectors(&texts(&["reset password", "printer", "invoice"])).unwrap();
    assert_eq!((next.cache_use().reused, next.cache_use().embedded), (2, 1));
    assert!(std::fs::metadata(&file).unwrap().len() > written, "the next writer appends");
}

#[test]
fn the_real_model_matches_the_python_reference() {
    let Some(dir) = real_model() else { return };
    let encoder = Encoder::load(&dir).unwrap();
    assert_eq!(encoder.dim(), 384);
    let v = encoder
        .embed_all(&[
            "How do I reset my password?",
            "I forgot my login credentials and cannot sign in.",
            "The firmware update stopped at 40% with error E42.",
        ])
        .unwrap();
    // From tests/eval/embedding-ranking.py's numpy MiniLM over the same files.
    let reference: [[f32; 6]; 3] = [
        [0.0069, -0.06302, -0.07204, -0.0325, -0.04271, 0.07043],
        [0.00123, -0.00984, 0.01058, 0.00166, 0.00582, 0.04206],
        [0.03481, 0.0616, 0.0178, -0.06193, 0.04471, -0.08185],
    ];
    for (got, want) in v.iter().zip(reference) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{:?} vs {want:?}", &got[..6]);
        }
    }
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!((cos(&v[0], &v[1]) - 0.67561).abs() < 1e-4);
    assert!((cos(&v[0], &v[2]) - 0.0196).abs() < 1e-4);
}

/// A help centre swapped in (a Salesforce Knowledge sync, say) embeds only the passages
/// that changed; the ranking then uses the new vectors.
#[test]
fn a_changed_help_centre_re_embeds_only_its_changed_passages() {
    use casebridge::knowledge::{Index, Library, parse_markdown};
    let root = tempfile::tempdir().unwrap();
    let model = tiny_model(&root.path().join("model"));
    let encoder = std::sync::Arc::new(CachedEncoder::open(&model, &root.path().join("cache")).unwrap());
    let article = |id: &str, text: &str| parse_markdown(id, text, &format!("https://help.example/{id}"));
    let first = vec![
        article("reset", "# Reset\n\n## Password\nReset password here.\n\n## Printer\nReset printer there."),
        article("billing", "# Billing\n\n## Invoice\nInvoice printer."),
    ];
    let library = Library::with_embedder(Index::new(first.clone()), encoder.clone()).unwrap();
    assert_eq!(encoder.cache_use().embedded, 3, "three passages: {:?}", encoder.cache_use());
    assert!(library.is_semantic() && library.current().vectors().is_some());

    let mut changed = first;
    changed[1] = article("billing", "# Billing\n\n## Invoice\nInvoice password printer, changed.");
    library.replace(Index::new(changed)).unwrap();
    assert_eq!((encoder.cache_use().embedded, encoder.cache_use().reused), (4, 2), "one passage changed");
    let vector = library.question_vector("reset password").unwrap().unwrap();
    let index = library.current();
    let ranking = index.rank("reset password", Some(&vector));
    assert!(ranking.is_semantic() && ranking.hits.iter().all(|h| h.cosine.is_some()));
}
