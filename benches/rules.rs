//! Rule engine benchmarks (run with `cargo bench --bench rules`; figures go in the README):
//!
//! 1. Decisions per second on one core through the shipped rule set, the agent excluded
//!    (a fixed answer), over the shipped fixtures; and the 99th-percentile decision time.
//! 2. Reload latency: from a rule file being written (by rename, as editors save) to the new
//!    rule set being active, with the debounce `casebridge run` uses; and the load alone.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use casebridge::agent::{Agent, AgentAnswer};
use casebridge::decide;
use casebridge::rules::RuleSet;
use casebridge::rules::testing::load_fixture;
use casebridge::rules::watch::{Reloader, watch};
use casebridge::script::Limits;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn decisions() {
    let rules = RuleSet::load(&root().join("rules")).unwrap();
    let fixtures: Vec<_> = ["billing-question", "asks-for-human", "email-firmware", "high-priority"]
        .iter()
        .map(|f| load_fixture(&root().join(format!("rules/tests/fixtures/{f}.json"))).unwrap())
        .collect();
    let agent = Agent::Fixed(AgentAnswer {
        text: Some("You can download past invoices from the customer portal.".into()),
        confidence: 0.8,
        sources: Vec::new(),
        backend: "fixed".into(),
        note: None,
    });
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let n = 20_000;
    let mut times = Vec::with_capacity(n);
    // Warm up.
    for c in &fixtures {
        runtime.block_on(decide::decide(&rules, &agent, c)).unwrap();
    }
    let started = Instant::now();
    let mut evaluations = 0;
    for i in 0..n {
        let t = Instant::now();
        let d = runtime.block_on(decide::decide(&rules, &agent, &fixtures[i % fixtures.len()])).unwrap();
        times.push(t.elapsed());
        evaluations += d.trace.0.len();
        std::hint::black_box(d);
    }
    let total = started.elapsed();
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "decisions through the shipped rule set (one core, agent excluded): {:.0} decisions/s = {:.0} rule evaluations/s ({:.1} a decision); p50 {:?}, p99 {:?}, max {:?}",
        n as f64 / total.as_secs_f64(),
        evaluations as f64 / total.as_secs_f64(),
        evaluations as f64 / n as f64,
        p(0.50),
        p(0.99),
        times[times.len() - 1]
    );
}

fn reload() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    for f in [
        "mappings.yaml",
        "handover.yaml",
        "topics.yaml",
        "email.yaml",
        "templates/reply.txt.hbs",
        "templates/reply.html.hbs",
    ] {
        let to = rules.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join("rules").join(f), to).unwrap();
    }
    let loads: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            RuleSet::load(&rules).unwrap();
            t.elapsed()
        })
        .collect();
    let set = RuleSet::load(&rules).unwrap();
    let hash = set.hash.clone();
    let shared = decide::shared(Box::new(set));
    let reloader = Arc::new(Reloader::new(&rules, shared, hash, Limits::default()));
    let _watcher = watch(reloader.clone(), Duration::from_millis(250), Duration::from_secs(3600)).unwrap();
    let mut latencies = Vec::new();
    for i in 0..10 {
        let before = reloader.status().active;
        let text =
            std::fs::read_to_string(root().join("rules/topics.yaml")).unwrap() + format!("# edit {i}\n").as_str();
        let tmp = rules.join(".topics.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        let t = Instant::now();
        std::fs::rename(&tmp, rules.join("topics.yaml")).unwrap();
        while reloader.status().active == before {
            assert!(t.elapsed() < Duration::from_secs(10), "no reload");
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    latencies.sort();
    let mut sorted_loads = loads.clone();
    sorted_loads.sort();
    println!(
        "reload latency, file saved → new rule set active (250 ms debounce, as in `casebridge run`): median {:?}, max {:?}; loading and compiling the rule set alone: median {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        sorted_loads[sorted_loads.len() / 2]
    );
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if run("decisions") {
        decisions();
    }
    if run("reload") {
        reload();
    }
}
