//! Pipeline benchmarks (run with `cargo bench --bench pipeline`; figures go in docs/benchmarks.md):
//!
//! 1. Salesforce API calls per processed case update, with 50 cases updated per cycle, and
//!    the cost of an idle cycle — counted by the simulator.
//! 2. Throughput of the whole pipeline (poll → decide → store → composite writes), with the
//!    shipped rule set and the knowledge-base agent, in cases per second: at 1, 50 and
//!    1,000 new cases a cycle, and on a burst of 10,000.
//! 3. The daemon's resident memory (a `casebridge run` process) while idle and while holding
//!    100,000 conversations (`BENCH_CONVERSATIONS` to change).
//! 4. `idle`: the API calls and rows of each cycle after a 10,000-case burst, in-process
//!    (`Daemon::cycle`): right after the burst while the overlap still covers it, then idle
//!    cycles once it has passed; with a 2 s overlap, and with the default 60 s overlap polled
//!    every 10 s as the example config does.
//! 5. `cpu`: idle CPU seconds per minute of a `casebridge run` process (release binary, the
//!    demo org and the shipped `rules/`, as `examples/demo/casebridge.yaml`) after it has
//!    handled a burst of 1,000 cases and then 10,000 in all, three minutes each: the first
//!    (the default 60 s overlap still covers the burst), and the idle ones after it; with
//!    `poll.interval` 10 s (the example config's) and 1 s (`BENCH_CPU_INTERVALS`,
//!    `BENCH_CPU_BURSTS` to change).
//! 6. `agent`: 20 cases arriving at once, answered by the grounded OpenAI-compatible agent
//!    against a local model stub that takes 1 s per answer, with the agent asked about 1, 8
//!    and 32 conversations at once (`agent.concurrency`); and a burst of 100 at 32.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use casebridge::agent::Agent;
use casebridge::agent::kb::KnowledgeBase;
use casebridge::daemon::{Daemon, DaemonSettings};
use casebridge::model::Secret;
use casebridge::rules::RuleSet;
use casebridge::salesforce::{Client, ClientConfig, Credentials};
use casebridge::sim::value::Value;
use casebridge::sim::{SimOptions, Simulator, seed};
use casebridge::store::Store;
use common::*;

/// Time for `cases` cases arriving together to be answered through a model stub that
/// takes `latency` per answer (and refuses calls past `service_limit` at once, 0: none),
/// with `concurrency` the most calls at once (the level under it found by the agent).
async fn agent_burst(cases: usize, latency: Duration, concurrency: usize, service_limit: usize) {
    use casebridge::agent::openai::{Grounding, OpenAiAgent};
    use casebridge::sim::model::{ModelBehaviour, ModelStub};
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let behaviour = ModelBehaviour { latency, max_concurrent: service_limit, ..Default::default() };
    let stub = ModelStub::start(behaviour).await.unwrap();
    let articles =
        casebridge::knowledge::load_markdown_folder(&root().join("examples/demo/help-center"), "https://help.example")
            .unwrap();
    let agent = OpenAiAgent::new(
        &stub.url,
        "stub",
        None,
        None,
        Duration::from_secs(30),
        casebridge::knowledge::Library::new(casebridge::knowledge::Index::new(articles)),
        Grounding::default(),
    )
    .unwrap()
    .with_ceiling(concurrency);
    let settings = DaemonSettings {
        poll_interval: Duration::from_millis(10),
        initial_lookback: Duration::from_secs(3600),
        agent_concurrency: concurrency,
        ..DaemonSettings::new("agent@test.example", "Support Queue")
    };
    let mut d = Daemon::new(
        client(&sim),
        Store::open(&dir.path().join("store")).unwrap(),
        Agent::OpenAi(agent),
        casebridge::decide::shared(Box::new(RuleSet::load(&root().join("rules")).unwrap())),
        None,
        settings,
    )
    .await
    .unwrap();
    d.cycle().await.unwrap();
    let done = cases_done(&sim) + cases;
    create_cases(&sim, cases);
    let started = Instant::now();
    while cases_done(&sim) < done {
        assert!(started.elapsed() < Duration::from_secs(600), "cases left undone");
        d.cycle().await.unwrap();
    }
    let limit = if service_limit == 0 { "no limit".to_string() } else { format!("429 past {service_limit} at once") };
    println!(
        "agent burst: {cases} cases at once, model stub {:.1} s an answer ({limit}), agent.concurrency {concurrency}: all answered in {:.1} s (peak {} calls at once, {} refused)",
        latency.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        stub.peak_concurrency(),
        stub.overloaded()
    );
}

async fn daemon(sim: &Simulator, dir: &Path) -> Daemon {
    daemon_with_overlap(sim, dir, Duration::from_secs(60)).await
}

async fn daemon_with_overlap(sim: &Simulator, dir: &Path, overlap: Duration) -> Daemon {
    let credentials = Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(Secret::new("test-secret")),
        refresh_token: Secret::new("agent-refresh-token"),
    };
    let client = Client::new(ClientConfig::new(sim.url(), credentials)).unwrap();
    let kb = KnowledgeBase::load(&root().join("examples/demo/help-center"), "https://help.example", 0.35).unwrap();
    let settings = DaemonSettings {
        poll_interval: Duration::from_millis(10),
        overlap,
        initial_lookback: Duration::from_secs(3600),
        ..DaemonSettings::new("agent@test.example", "Support Queue")
    };
    let store = Store::open(&dir.join("store")).unwrap();
    Daemon::new(
        client,
        store,
        Agent::KnowledgeBase(kb),
        casebridge::decide::shared(Box::new(RuleSet::load(&root().join("rules")).unwrap())),
        None,
        settings,
    )
    .await
    .unwrap()
}

async fn api_requests(sim: &Simulator) -> u64 {
    sim.api_requests().len() as u64
}

async fn calls_per_update() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon(&sim, dir.path()).await;
    d.cycle().await.unwrap(); // the fixture's own case
    let mut calls = 0;
    let mut updates = 0;
    for _ in 0..5 {
        create_cases(&sim, 50);
        let before = api_requests(&sim).await;
        d.cycle().await.unwrap();
        calls += api_requests(&sim).await - before;
        updates += 50;
    }
    let before = api_requests(&sim).await;
    d.cycle().await.unwrap();
    let idle = api_requests(&sim).await - before;
    println!(
        "api calls per case update (50 updates a cycle): {:.3}  ({calls} calls for {updates} updates; the seed's integration: up to ~10)",
        calls as f64 / updates as f64
    );
    println!("api calls per idle cycle: {idle}");
}

/// Cases the agent is done with: answered (a public comment by the agent user) or handed
/// over (no longer owned by it).
fn cases_done(sim: &Simulator) -> usize {
    let agent = sim.id_of("agent").unwrap();
    let handed_over = sim.with_org(|org| org.all("Case").filter(|c| c.str("OwnerId") != Some(agent.as_str())).count());
    agent_replies(sim) + handed_over
}

/// `batches` batches of `batch` new cases, each created at once and cycled until done.
async fn throughput(batch: usize, batches: usize) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon(&sim, dir.path()).await;
    d.cycle().await.unwrap();
    let mut done = cases_done(&sim);
    let mut cycles = 0;
    let started = Instant::now();
    for _ in 0..batches {
        create_cases(&sim, batch);
        done += batch;
        while cases_done(&sim) < done {
            assert!(started.elapsed() < Duration::from_secs(900), "cases left undone");
            d.cycle().await.unwrap();
            cycles += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = batch * batches;
    println!(
        "throughput, {batch} new case(s) a cycle: {n} cases done in {secs:.2} s = {:.0} cases/s ({cycles} cycles, {:.1} ms a cycle; shipped rules, knowledge-base agent, daemon and simulator in one process)",
        n as f64 / secs,
        secs * 1000.0 / cycles as f64
    );
}

async fn memory(n: usize) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "test-secret").unwrap();
    std::fs::write(dir.path().join("refresh"), "agent-refresh-token").unwrap();
    let config = format!(
        "org:\n  login_url: {}\n  auth: {{grant: refresh_token, client_id: test-app, client_secret: {{file: secret}}, refresh_token: {{file: refresh}}}}\n\
         agent_user: agent@test.example\nhandover: {{default_target: Support Queue}}\npoll: {{interval: 200ms}}\n\
         agent: {{backend: knowledge_base, dir: {}, base_url: https://help.example}}\nstore_path: store\nrules_dir: {}\n",
        sim.url(),
        root().join("examples/demo/help-center").display(),
        root().join("tests/fixtures/rules").display()
    );
    std::fs::write(dir.path().join("casebridge.yaml"), config).unwrap();
    /// Kills the daemon however the benchmark ends.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["run", "--config"])
        .arg(dir.path().join("casebridge.yaml"))
        .env("CASEBRIDGE_LOG", "error")
        .spawn()
        .unwrap();
    let child = Guard(child);
    let pid = child.0.id();
    // Wait for the daemon's first poll.
    let started = Instant::now();
    while !sim.api_requests().iter().any(|r| r.path.ends_with("/query")) {
        assert!(started.elapsed() < Duration::from_secs(60), "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(pid);
    let base = agent_replies(&sim);
    eprintln!("  creating {n} cases in the simulator…");
    create_cases(&sim, n);
    eprintln!("  created; waiting for the daemon to answer them");
    let started = Instant::now();
    let mut peak = 0;
    let mut last_report = Instant::now();
    loop {
        let done = agent_replies(&sim) - base;
        if done >= n {
            break;
        }
        peak = peak.max(rss_kib(pid));
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("  … {done} of {n} answered, daemon RSS {:.1} MiB", rss_kib(pid) as f64 / 1024.0);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(1800), "the run took too long");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holding = rss_kib(pid);
    drop(child);
    println!("daemon resident memory, idle: {:.1} MiB", idle as f64 / 1024.0);
    println!(
        "daemon resident memory, holding {n} conversations: {:.1} MiB idle after, {:.1} MiB peak while answering them ({:.0} s, {:.0} cases/s as a separate process)",
        holding as f64 / 1024.0,
        peak as f64 / 1024.0,
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
}

/// One cycle's cost, as the daemon counts it and as the simulator does.
async fn measured_cycle(sim: &Simulator, d: &mut Daemon) -> (u64, u64, usize, Duration) {
    let before = api_requests(sim).await;
    let t = Instant::now();
    let r = d.cycle().await.unwrap();
    let took = t.elapsed();
    (r.api_calls, api_requests(sim).await - before, r.rows, took)
}

/// API calls and rows of each cycle after a burst of `n` cases: while `overlap` still
/// covers the burst (a cycle every `every`), then idle cycles once it has passed.
async fn idle_after_burst(n: usize, overlap: Duration, every: Duration) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon_with_overlap(&sim, dir.path(), overlap).await;
    d.cycle().await.unwrap(); // the fixture's own case
    let base = agent_replies(&sim);
    create_cases(&sim, n);
    let started = Instant::now();
    let (mut cycles, mut calls, mut rows) = (0, 0, 0);
    while agent_replies(&sim) < base + n {
        let r = d.cycle().await.unwrap();
        cycles += 1;
        calls += r.api_calls;
        rows += r.rows;
    }
    println!(
        "after a {n}-case burst, overlap {overlap:?}: the burst answered in {cycles} cycles, {calls} calls, {rows} rows read, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let answered = Instant::now();
    println!(
        "  cycles right after it, one every {every:?} (calls by the daemon / by the simulator, rows read, cycle time):"
    );
    while answered.elapsed() < overlap + Duration::from_secs(2) + every * 2 {
        let at = answered.elapsed();
        let (calls, sim_calls, rows, took) = measured_cycle(&sim, &mut d).await;
        println!(
            "    +{:>5.1} s: {calls} / {sim_calls} calls, {rows} rows, {:.1} ms",
            at.as_secs_f64(),
            took.as_secs_f64() * 1e3
        );
        tokio::time::sleep(every.saturating_sub(answered.elapsed() - at)).await;
    }
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(measured_cycle(&sim, &mut d).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut times: Vec<Duration> = idle.iter().map(|c| c.3).collect();
    times.sort();
    println!(
        "  idle cycles once the overlap has passed: {} cycles, calls per cycle {}..{} (the simulator counted {}..{}), rows read {}..{}, cycle time median {:.2} ms, max {:.2} ms",
        idle.len(),
        idle.iter().map(|c| c.0).min().unwrap(),
        idle.iter().map(|c| c.0).max().unwrap(),
        idle.iter().map(|c| c.1).min().unwrap(),
        idle.iter().map(|c| c.1).max().unwrap(),
        idle.iter().map(|c| c.2).min().unwrap(),
        idle.iter().map(|c| c.2).max().unwrap(),
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
}

/// User plus system CPU time of a process, in seconds.
/// Bench cases the demo's agent user has dealt with: answered, or handed to someone else.
fn handled(sim: &Simulator) -> usize {
    let agent = sim.id_of("fin").unwrap();
    sim.with_org(|org| {
        let answered: std::collections::HashSet<&str> = org
            .all("CaseComment")
            .filter(|c| c.str("CreatedById") == Some(agent.as_str()) && c.get("IsPublished") == &Value::Bool(true))
            .filter_map(|c| c.str("ParentId"))
            .collect();
        org.all("Case")
            .filter(|c| c.str("Subject").is_some_and(|s| s.starts_with("Question ")))
            .filter(|c| c.str("OwnerId") != Some(agent.as_str()) || c.str("Id").is_some_and(|id| answered.contains(id)))
            .count()
    })
}

/// Idle CPU of a `casebridge run` process with the example config's settings (the demo org,
/// the shipped rules, the knowledge base agent) at `interval`, after bursts of cases.
async fn idle_cpu(interval: &str, bursts: &[usize]) {
    let seed = seed::load_file(&root().join("examples/demo/org.yaml")).unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), seed, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "demo-secret").unwrap();
    std::fs::write(dir.path().join("refresh"), "demo-refresh-token").unwrap();
    let config = format!(
        "org:\n  login_url: {}\n  auth: {{grant: refresh_token, client_id: casebridge-demo, client_secret: {{file: secret}}, refresh_token: {{file: refresh}}}}\n\
         agent_user: fin@acme.example\nhandover: {{default_target: Tier 2 Support}}\npoll: {{interval: {interval}}}\n\
         agent: {{backend: knowledge_base, dir: {}, base_url: https://help.acme-robotics.example/articles, min_confidence: 0.35}}\n\
         store_path: store\nrules_dir: {}\n",
        sim.url(),
        root().join("examples/demo/help-center").display(),
        root().join("rules").display()
    );
    std::fs::write(dir.path().join("casebridge.yaml"), config).unwrap();
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Guard(
        std::process::Command::new(env!("CARGO_BIN_EXE_casebridge"))
            .args(["run", "--config"])
            .arg(dir.path().join("casebridge.yaml"))
            .env("CASEBRIDGE_LOG", "error")
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let started = Instant::now();
    while !sim.api_requests().iter().any(|r| r.path.ends_with("/query")) {
        assert!(started.elapsed() < Duration::from_secs(60), "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut created = 0;
    for &total in bursts {
        create_cases_owned_by(&sim, "fin", total - created);
        created = total;
        let burst = Instant::now();
        while handled(&sim) < total {
            assert!(burst.elapsed() < Duration::from_secs(1800), "the burst took too long");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let took = burst.elapsed().as_secs_f64();
        let mut minutes = Vec::new();
        for _ in 0..3 {
            let (cpu, calls) = (cpu_seconds(pid), sim.api_requests().len());
            tokio::time::sleep(Duration::from_secs(60)).await;
            minutes.push(format!(
                "{:.2} CPU s ({} API calls)",
                cpu_seconds(pid) - cpu,
                sim.api_requests().len() - calls
            ));
        }
        println!(
            "idle CPU of `casebridge run` (poll.interval {interval}, shipped rules/, demo org) holding {total} handled cases (handled in {took:.0} s), \
             minute by minute after (the first while the 60 s overlap still covers the burst): {}; RSS {:.1} MiB",
            minutes.join(", "),
            rss_kib(pid) as f64 / 1024.0
        );
    }
    drop(child);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes flags such as --bench; only an explicit filter word selects.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let conversations: usize =
        std::env::var("BENCH_CONVERSATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    if run("calls") {
        calls_per_update().await;
    }
    if run("throughput") {
        throughput(1, 200).await;
        throughput(50, 20).await;
        throughput(1_000, 5).await;
        throughput(10_000, 1).await;
    }
    if run("memory") {
        memory(conversations).await;
    }
    if run("idle") {
        idle_after_burst(10_000, Duration::from_secs(2), Duration::from_millis(250)).await;
        idle_after_burst(10_000, Duration::from_secs(60), Duration::from_secs(10)).await;
    }
    if run("agent") {
        for concurrency in [1, 8, 32] {
            agent_burst(20, Duration::from_secs(1), concurrency, 0).await;
        }
        // At the default ceiling: a service without a limit, and services that refuse
        // calls past 20 and past 8 at once (the level is found, nothing fails).
        for service_limit in [0, 20, 8] {
            agent_burst(100, Duration::from_secs(1), casebridge::config::DEFAULT_AGENT_CONCURRENCY, service_limit)
                .await;
        }
    }
    if run("cpu") {
        let bursts: Vec<usize> = std::env::var("BENCH_CPU_BURSTS")
            .unwrap_or_else(|_| "1000,10000".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        for interval in std::env::var("BENCH_CPU_INTERVALS").unwrap_or_else(|_| "10s,1s".into()).split(',') {
            idle_cpu(interval.trim(), &bursts).await;
        }
    }
}
