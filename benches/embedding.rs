//! What the sentence-embedding model costs (run with `cargo bench --bench embedding`;
//! figures go in docs/benchmarks.md). It needs the model: `scripts/install-model`, or
//! `CASEBRIDGE_TEST_MODEL=DIR`.
//!
//! 1. Loading the model, and the memory it adds (resident set before and after).
//! 2. Embedding one question, on one core (`RAYON_NUM_THREADS=1`, in a child process):
//!    p50 and p95 over the 197 questions of the two real eval sets.
//! 3. Indexing 2,500 passages (the Rust toolchain books' first 2,500) on two cores, with an
//!    empty vector cache; and the help centre at 500 and 1,000 passages, for how it grows.
//! 4. A restart with a warm cache: the model loaded and every passage's vector read back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use casebridge::embedding::{CachedEncoder, Encoder};
use casebridge::knowledge::{Embedder, Index, load_markdown_folder};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> PathBuf {
    let dir = std::env::var_os("CASEBRIDGE_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").is_file(), "no model in {}: run scripts/install-model", dir.display());
    dir
}

/// Resident memory, from /proc.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn questions() -> Vec<String> {
    let mut out = Vec::new();
    for set in ["rust-toolchain", "zulip-help"] {
        let file = casebridge::agent::eval::load(&root().join(format!("tests/eval/{set}.eval.yaml"))).unwrap();
        out.extend(file.questions.into_iter().map(|q| q.ask));
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Embeds each question alone (as a live question is), in this process.
fn question_latency(encoder: &Encoder) {
    let mut times: Vec<Duration> = questions()
        .iter()
        .map(|q| {
            let started = Instant::now();
            encoder.embed(q).unwrap();
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "one question, {} thread(s): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} questions)",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
        times.len()
    );
}

fn main() {
    let model = model();
    if std::env::args().any(|a| a == "--one-question") {
        let encoder = Encoder::load(&model).unwrap();
        encoder.embed("warm up").unwrap();
        question_latency(&encoder);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let before = rss_mib();
    let started = Instant::now();
    let encoder = Encoder::load(&model).unwrap();
    println!(
        "model load: {:.2} s; resident memory {before:.0} → {:.0} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    drop(encoder);

    // One core, in a child process (the thread count is read once, at start).
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--one-question")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&child.stdout));

    let articles =
        load_markdown_folder(&root().join("tests/eval/rust-toolchain"), "https://doc.rust-lang.org").unwrap();
    let texts = Index::new(articles).passage_texts();
    for n in [500, 1_000, 2_500] {
        let texts: Vec<String> = texts.iter().take(n).cloned().collect();
        let cache = tempfile::tempdir().unwrap();
        let encoder = CachedEncoder::open(&model, cache.path()).unwrap();
        let started = Instant::now();
        encoder.passage_vectors(&texts).unwrap();
        let cold = started.elapsed();
        println!(
            "index {} passages, empty cache, two cores: {:.1} s ({:.1} ms a passage); resident memory {:.0} MiB",
            texts.len(),
            cold.as_secs_f64(),
            cold.as_secs_f64() * 1e3 / texts.len() as f64,
            rss_mib()
        );
        drop(encoder);
        if n == 2_500 {
            let started = Instant::now();
            let encoder = CachedEncoder::open(&model, cache.path()).unwrap();
            encoder.passage_vectors(&texts).unwrap();
            let used = encoder.cache_use();
            println!(
                "restart with a warm cache: {:.2} s for the model and {} vectors ({} embedded); cache file {:.1} MiB",
                started.elapsed().as_secs_f64(),
                used.reused,
                used.embedded,
                std::fs::read_dir(cache.path())
                    .unwrap()
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len() as f64)
                    .sum::<f64>()
                    / 1048576.0
            );
        }
    }
}
