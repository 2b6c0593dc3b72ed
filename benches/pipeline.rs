//! Pipeline benchmarks (run with `cargo bench --bench pipeline`; figures go in the README):
//!
//! 1. Salesforce API calls per processed case update, with 50 cases updated per cycle, and
//!    the cost of an idle cycle — counted by the simulator.
//! 2. Throughput of the whole pipeline (poll → decide → store → composite writes) on 10,000
//!    cases, in cases per second.
//! 3. The daemon's resident memory (a `casebridge run` process) while idle and while holding
//!    100,000 conversations (`BENCH_CONVERSATIONS` to change).

use std::path::Path;
use std::time::{Duration, Instant};

use casebridge::agent::Agent;
use casebridge::agent::kb::KnowledgeBase;
use casebridge::daemon::{Daemon, DaemonSettings};
use casebridge::decide::BuiltinRules;
use casebridge::salesforce::{Client, ClientConfig, Credentials, Secret};
use casebridge::sim::org::WriteCtx;
use casebridge::sim::value::Value;
use casebridge::sim::{SimOptions, Simulator, seed};
use casebridge::store::Store;
use chrono::Utc;
use serde_json::json;

const QUESTIONS: &[&str] = &[
    "The gripper drifts after every restart. How do I recalibrate the gripper?",
    "The firmware update stopped and the controller shows error E42.",
    "A joint of the arm makes a grinding noise. Does it need lubrication?",
    "The controller shows as offline in the app. How do I connect it to the network?",
    "Where can I download past invoices from the customer portal?",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn sim() -> Simulator {
    let seed = seed::load_file(&root().join("tests/fixtures/org.yaml")).unwrap();
    Simulator::start("127.0.0.1:0".parse().unwrap(), seed, SimOptions::default()).await.unwrap()
}

fn create_cases(sim: &Simulator, n: usize) {
    let admin = sim.id_of("admin").unwrap();
    let agent = sim.id_of("agent").unwrap();
    sim.with_org(|org| {
        let ctx = WriteCtx { user_id: admin, now: Utc::now(), allow_system_fields: false };
        for i in 0..n {
            let body = json!({ "Subject": format!("Question {i}"), "Description": QUESTIONS[i % QUESTIONS.len()], "OwnerId": agent });
            org.create("Case", body.as_object().unwrap(), &ctx).unwrap();
        }
    });
}

fn agent_replies(sim: &Simulator) -> usize {
    let agent = sim.id_of("agent").unwrap();
    sim.with_org(|org| {
        org.all("CaseComment")
            .filter(|c| c.str("CreatedById") == Some(agent.as_str()) && c.get("IsPublished") == &Value::Bool(true))
            .count()
    })
}

async fn daemon(sim: &Simulator, dir: &Path) -> Daemon {
    let credentials = Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(Secret::new("test-secret")),
        refresh_token: Secret::new("agent-refresh-token"),
    };
    let client = Client::new(ClientConfig::new(sim.url(), credentials)).unwrap();
    let kb = KnowledgeBase::load(&root().join("examples/demo/help-center"), "https://help.example", 0.35).unwrap();
    let settings = DaemonSettings {
        poll_interval: Duration::from_millis(10),
        overlap: Duration::from_secs(60),
        initial_lookback: Duration::from_secs(3600),
        reply_channel: Default::default(),
        email_from: None,
        agent_user: "agent@test.example".into(),
        default_target: "Support Queue".into(),
    };
    let store = Store::open(&dir.join("store")).unwrap();
    Daemon::new(
        client,
        store,
        Agent::KnowledgeBase(kb),
        casebridge::decide::shared(Box::new(BuiltinRules::new("Bench"))),
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

async fn throughput(n: usize) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon(&sim, dir.path()).await;
    d.cycle().await.unwrap();
    let base = agent_replies(&sim);
    create_cases(&sim, n);
    let started = Instant::now();
    while agent_replies(&sim) < base + n {
        d.cycle().await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {n} cases answered in {secs:.1} s = {:.0} cases/s (daemon and simulator in one process)",
        n as f64 / secs
    );
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
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
        throughput(10_000).await;
    }
    if run("memory") {
        memory(conversations).await;
    }
}
