//! What years of history cost a running daemon: stores of 10,000, 100,000 (and, with
//! `BENCH_HISTORY_SIZES=1000000`, a million) conversations, built through the store's bulk
//! path from conversations a real daemon decided on the simulator (the shipped rules, the
//! knowledge-base agent), their last activity spread over two years. On each, a
//! `casebridge run` process (release build): start-up (spawn to its first poll), resident
//! memory and CPU after an idle window, after a burst of cases answered and after a
//! restart; the API calls of the first cycle after the restart; then the store's size on
//! disk before and after a retention pass prunes what is older than 180 days, and after
//! `casebridge compact` (`Store::compact`) gives the freed space back.
//!
//! `cargo bench --bench history` (`BENCH_HISTORY_IDLE_SECS`, 60 by default, sets the idle
//! windows; `BENCH_HISTORY_BURST`, 500, the burst).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use casebridge::agent::Agent;
use casebridge::agent::kb::KnowledgeBase;
use casebridge::daemon::{Daemon, DaemonSettings};
use casebridge::model::{Conversation, ConversationState};
use casebridge::rules::RuleSet;
use casebridge::sim::Simulator;
use casebridge::store::Store;
use chrono::Utc;
use common::*;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Conversations a real daemon decided: the templates the bulk path copies.
async fn decided_conversations(sim: &Simulator, dir: &Path) -> Vec<Conversation> {
    let client = client(sim);
    let kb = KnowledgeBase::load(&root().join("examples/demo/help-center"), "https://help.example", 0.35).unwrap();
    let agent = Agent::KnowledgeBase(kb);
    let rules = casebridge::decide::shared(Box::new(RuleSet::load(&root().join("rules")).unwrap()));
    let store = Store::open(&dir.join("templates")).unwrap();
    let settings = DaemonSettings {
        initial_lookback: Duration::from_secs(3600),
        ..DaemonSettings::new("agent@test.example", "Support Queue")
    };
    let mut d = Daemon::new(client, store, agent, rules, None, settings).await.unwrap();
    create_cases(sim, 50);
    d.cycle().await.unwrap();
    let templates: Vec<Conversation> = d.store().conversations().map(Result::unwrap).collect();
    assert!(!templates.is_empty());
    templates
}

/// Builds a store of `n` conversations copied from `templates`, closed, their last
/// activity spread over the two years before now.
fn build_store(path: &Path, templates: &[Conversation], n: usize) -> Duration {
    let started = Instant::now();
    let store = Store::open(path).unwrap();
    let now = Utc::now();
    let span = chrono::Duration::days(730).num_seconds();
    let batch = 10_000;
    for start in (0..n).step_by(batch) {
        let conversations: Vec<Conversation> = (start..(start + batch).min(n))
            .map(|i| {
                let mut c = templates[i % templates.len()].clone();
                c.id = format!("500H{i:011}AAA");
                c.case_number = format!("H{i:09}");
                c.state = ConversationState::Closed;
                c.resolution = None;
                c.modstamp = now - chrono::Duration::seconds(span * (i as i64) / (n as i64).max(1));
                c
            })
            .collect();
        store.import(&conversations).unwrap();
    }
    store.flush().unwrap();
    started.elapsed()
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A `casebridge run` process, killed however the benchmark ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(dir: &Path, sim: &Simulator, store: &Path) -> PathBuf {
    std::fs::write(dir.join("secret"), "test-secret").unwrap();
    std::fs::write(dir.join("refresh"), "agent-refresh-token").unwrap();
    let text = format!(
        "org:\n  login_url: {}\n  auth: {{grant: refresh_token, client_id: test-app, client_secret: {{file: secret}}, refresh_token: {{file: refresh}}}}\n\
         agent_user: agent@test.example\nhandover: {{default_target: Support Queue}}\npoll: {{interval: 1s}}\n\
         agent: {{backend: knowledge_base, dir: {}, base_url: https://help.example}}\nstore_path: {}\nrules_dir: {}\n",
        sim.url(),
        root().join("examples/demo/help-center").display(),
        store.display(),
        root().join("rules").display()
    );
    let path = dir.join("casebridge.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the daemon; returns it with the time to its first poll.
async fn start(sim: &Simulator, config: &Path) -> (Running, Duration) {
    let polls_before = sim.api_requests().iter().filter(|r| r.path.ends_with("/composite")).count();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["run", "--config"])
        .arg(config)
        .env("CASEBRIDGE_LOG", "error")
        .spawn()
        .unwrap();
    let mut running = Running(child);
    while sim.api_requests().iter().filter(|r| r.path.ends_with("/composite")).count() <= polls_before {
        assert!(started.elapsed() < Duration::from_secs(600), "the daemon did not start");
        if let Ok(Some(status)) = running.0.try_wait() {
            panic!("the daemon stopped before its first poll: {status}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (running, started.elapsed())
}

/// RSS (MiB) and CPU seconds over an idle window.
async fn idle(pid: u32, window: Duration) -> (f64, f64) {
    let cpu = cpu_seconds(pid);
    tokio::time::sleep(window).await;
    (rss_kib(pid) as f64 / 1024.0, cpu_seconds(pid) - cpu)
}

async fn one_size(n: usize, templates: &[Conversation], idle_window: Duration, burst: usize) {
    // An org of its own: a fresh store would take an earlier size's burst for new cases.
    let sim = &sim().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let built = build_store(&store, templates, n);
    let disk = dir_bytes(&store);
    let config = config(dir.path(), sim, &store);

    let (mut daemon, startup) = start(sim, &config).await;
    let pid = daemon.0.id();
    let (rss_idle, cpu_idle) = idle(pid, idle_window).await;
    let done = agent_replies(sim) + burst;
    create_cases(sim, burst);
    let burst_started = Instant::now();
    while agent_replies(sim) < done {
        assert!(burst_started.elapsed() < Duration::from_secs(1800), "the burst was not answered");
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!("the daemon stopped during the burst: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let burst_took = burst_started.elapsed();
    let (rss_burst, _) = idle(pid, idle_window).await;
    drop(daemon);

    let calls_before = sim.api_requests().len();
    let (daemon, restart) = start(sim, &config).await;
    let pid = daemon.0.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first_calls = sim.api_requests().len() - calls_before;
    let (rss_restart, cpu_restart) = idle(pid, idle_window).await;
    drop(daemon);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The retention pass, run to the end on the stopped daemon's store.
    let store_handle = Store::open(&store).unwrap();
    let disk_before = dir_bytes(&store);
    let cutoff = Utc::now() - chrono::Duration::days(180);
    let prune_started = Instant::now();
    let mut pruned = 0;
    loop {
        let report = store_handle.prune(cutoff, cutoff, 10_000).unwrap();
        pruned += report.pruned;
        if !report.more {
            break;
        }
    }
    let prune_took = prune_started.elapsed();
    store_handle.flush().unwrap();
    drop(store_handle);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let disk_after = dir_bytes(&store);
    let compact_started = Instant::now();
    Store::compact(&store).unwrap();
    let compact_took = compact_started.elapsed();
    let disk_compacted = dir_bytes(&store);

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "| {n} | {:.1} s | {:.0} MiB | {:.2} s | {rss_idle:.1} MiB, {cpu_idle:.2} CPU s | {burst} cases in {:.1} s, then {rss_burst:.1} MiB | {:.2} s, {first_calls} calls in its first 2 s, {rss_restart:.1} MiB, {cpu_restart:.2} CPU s | {pruned} pruned in {:.1} s: {:.0} → {:.0} MiB; compacted in {:.1} s: {:.0} MiB |",
        built.as_secs_f64(),
        mib(disk),
        startup.as_secs_f64(),
        burst_took.as_secs_f64(),
        restart.as_secs_f64(),
        prune_took.as_secs_f64(),
        mib(disk_before),
        mib(disk_after),
        compact_took.as_secs_f64(),
        mib(disk_compacted),
    );
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_HISTORY_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let idle_window = Duration::from_secs(env_number("BENCH_HISTORY_IDLE_SECS", 60));
    let burst = env_number("BENCH_HISTORY_BURST", 500) as usize;
    let templates_dir = tempfile::tempdir().unwrap();
    let templates = decided_conversations(&sim().await, templates_dir.path()).await;
    println!(
        "| conversations held | store built in | on disk | start-up (spawn to first poll) | after an idle {} s | a burst, then idle | a restart, then idle | retention 180d, then compaction |",
        idle_window.as_secs()
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        one_size(n, &templates, idle_window, burst).await;
    }
}
