//! The web messenger under load (run with `cargo bench --bench messenger`; figures go in
//! docs/benchmarks.md): a `casebridge run` process (release build) with the shipped rules and the
//! grounded OpenAI-compatible agent against a local model stub that takes 1 s an answer
//! (`agent.concurrency` 64), on the simulator. The benchmark opens N visitors' conversations,
//! each with its Server-Sent Events stream open (a first question, answered), then, while they
//! stay open, starts 50 new chats a second for 20 s, and measures for each the time from
//! its first POST to the agent's answer arriving on its own stream; and the daemon's
//! resident memory idle, with the streams open, and after. N is 100, 500 and 1,000
//! (`BENCH_VISITORS` to change), each on a fresh daemon.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casebridge::sim::model::{ModelBehaviour, ModelStub};
use casebridge::sim::{SimOptions, Simulator, seed};
use common::{root, rss_kib};
use serde_json::{Value, json};

const RATE_PER_SECOND: u64 = 50;
const SENDING: Duration = Duration::from_secs(20);

/// Kills the daemon however the benchmark ends.
struct Guard(std::process::Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// When each conversation's agent replies arrived, by conversation: the reply count so far.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// Reads one conversation's event stream, noting when each agent message arrives.
async fn watch(http: reqwest::Client, url: String, id: String, arrivals: Arrivals) {
    let Ok(mut response) = http.get(url).send().await else { return };
    let mut pending = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if event.contains("\"author\":\"agent\"") {
                arrivals.lock().unwrap().entry(id.clone()).or_default().push(Instant::now());
            }
        }
    }
}

async fn visitors(n: usize) {
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        seed::load_file(&root().join("tests/fixtures/org.yaml")).unwrap(),
        SimOptions::default(),
    )
    .await
    .unwrap();
    let stub =
        ModelStub::start(ModelBehaviour { latency: Duration::from_secs(1), ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "test-secret").unwrap();
    std::fs::write(dir.path().join("refresh"), "agent-refresh-token").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "org:\n  login_url: {}\n  auth: {{grant: refresh_token, client_id: test-app, client_secret: {{file: secret}}, refresh_token: {{file: refresh}}}}\n\
         agent_user: agent@test.example\nhandover: {{default_target: Support Queue}}\npoll: {{interval: 2s}}\n\
         agent: {{backend: openai, base_url: {}, model: stub, concurrency: 64, knowledge: {{dir: {}}}}}\n\
         messenger: {{listen: 127.0.0.1:{port}, per_visitor_per_minute: 100, per_address_per_minute: 10000}}\n\
         store_path: store\nrules_dir: {}\n",
        sim.url(),
        stub.url,
        root().join("examples/demo/help-center").display(),
        root().join("rules").display()
    );
    std::fs::write(dir.path().join("casebridge.yaml"), config).unwrap();
    let child = Guard(
        std::process::Command::new(env!("CARGO_BIN_EXE_casebridge"))
            .args(["run", "--config"])
            .arg(dir.path().join("casebridge.yaml"))
            .env("CASEBRIDGE_LOG", "error")
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let base = format!("http://127.0.0.1:{port}/messenger/v1/conversations");
    let http = reqwest::Client::builder().pool_max_idle_per_host(2 * n).build().unwrap();
    let started = Instant::now();
    while http.get(format!("http://127.0.0.1:{port}/messenger.js")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(pid);

    // N visitors, each with a conversation and its event stream open, their first question
    // answered; the timed chats come after.
    let arrivals: Arrivals = Arc::default();
    let mut conversations = Vec::new();
    for i in 0..n {
        let body = json!({ "name": format!("Visitor {i}"), "message": "Does the arm need lubrication?" });
        let v: Value = http.post(&base).json(&body).send().await.unwrap().json().await.unwrap();
        let id = v["conversation_id"].as_str().unwrap().to_string();
        let token = v["visitor_token"].as_str().unwrap().to_string();
        let url = format!("{base}/{id}/events?token={token}");
        tokio::spawn(watch(http.clone(), url, id.clone(), arrivals.clone()));
        conversations.push((id, token));
    }
    let settle = Instant::now();
    while arrivals.lock().unwrap().values().map(Vec::len).sum::<usize>() < n {
        assert!(settle.elapsed() < Duration::from_secs(300), "first questions unanswered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let with_streams = rss_kib(pid);

    // 50 new chats a second while those streams stay open: each starts with a question
    // and waits on its own stream for the answer. (The shipped rules hand a conversation to
    // a person after three answers, so new chats, not more messages to the same ones.)
    let questions = [
        "How do I recalibrate the gripper after a restart?",
        "The firmware update failed with error E42.",
        "Where can I download past invoices?",
    ];
    let total = (RATE_PER_SECOND * SENDING.as_secs()) as usize;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let tick = Duration::from_micros(1_000_000 / RATE_PER_SECOND);
    let sending = Instant::now();
    for k in 0..total {
        let (http, base, tx) = (http.clone(), base.clone(), tx.clone());
        let text = questions[k % questions.len()];
        tokio::spawn(async move {
            let at = Instant::now();
            let Ok(r) = http.post(&base).json(&json!({ "message": text })).send().await else { return };
            let Ok(v) = r.json::<Value>().await else { return };
            let (Some(id), Some(token)) = (v["conversation_id"].as_str(), v["visitor_token"].as_str()) else { return };
            let Ok(mut events) = http.get(format!("{base}/{id}/events?token={token}")).send().await else { return };
            let mut text = String::new();
            while let Ok(Some(chunk)) = events.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if text.contains("\"author\":\"agent\"") {
                    let _ = tx.send(at.elapsed());
                    return;
                }
            }
        });
        tokio::time::sleep_until((sending + tick * (k as u32 + 1)).into()).await;
    }
    drop(tx);
    let mut latencies = Vec::new();
    let waiting = Instant::now();
    while latencies.len() < total {
        match tokio::time::timeout(Duration::from_secs(120).saturating_sub(waiting.elapsed()), rx.recv()).await {
            Ok(Some(d)) => latencies.push(d),
            _ => break,
        }
    }
    let after = rss_kib(pid);
    drop(child);
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let secs = |d: Option<&Duration>| d.map_or(f64::NAN, Duration::as_secs_f64);
    println!(
        "messenger, {n} visitors with open event streams, {RATE_PER_SECOND} new chats/s for {} s against a 1 s model: \
         {} of {total} answered; reply latency p50 {:.2} s, p95 {:.2} s, max {:.2} s; daemon RSS idle {:.1} MiB, \
         with the streams {:.1} MiB, after {:.1} MiB",
        SENDING.as_secs(),
        latencies.len(),
        secs(pct(0.5)),
        secs(pct(0.95)),
        secs(latencies.last()),
        idle as f64 / 1024.0,
        with_streams as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_VISITORS")
        .unwrap_or_else(|_| "100,500,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for n in sizes {
        visitors(n).await;
    }
}
