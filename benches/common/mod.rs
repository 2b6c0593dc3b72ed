//! What the benchmarks share: the test org on an in-process simulator, cases made in it
//! straight (no API call), the agent user's replies counted, a client signed in as the
//! agent user, and a process's resident memory and CPU time from `/proc`.

#![allow(dead_code)] // each benchmark uses some of it

use std::path::Path;

use casebridge::model::Secret;
use casebridge::salesforce::{Client, ClientConfig, Credentials};
use casebridge::sim::org::WriteCtx;
use casebridge::sim::value::Value;
use casebridge::sim::{SimOptions, Simulator, seed};
use chrono::Utc;
use serde_json::json;

pub const QUESTIONS: &[&str] = &[
    "The gripper drifts after every restart. How do I recalibrate the gripper?",
    "The firmware update stopped and the controller shows error E42.",
    "A joint of the arm makes a grinding noise. Does it need lubrication?",
    "The controller shows as offline in the app. How do I connect it to the network?",
    "Where can I download past invoices from the customer portal?",
];

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub async fn sim() -> Simulator {
    let seed = seed::load_file(&root().join("tests/fixtures/org.yaml")).unwrap();
    Simulator::start("127.0.0.1:0".parse().unwrap(), seed, SimOptions::default()).await.unwrap()
}

pub fn create_cases(sim: &Simulator, n: usize) {
    create_cases_owned_by(sim, "agent", n)
}

pub fn create_cases_owned_by(sim: &Simulator, owner: &str, n: usize) {
    let admin = sim.id_of("admin").unwrap();
    let agent = sim.id_of(owner).unwrap();
    sim.with_org(|org| {
        let ctx = WriteCtx { user_id: admin, now: Utc::now(), allow_system_fields: false };
        for i in 0..n {
            let body = json!({ "Subject": format!("Question {i}"), "Description": QUESTIONS[i % QUESTIONS.len()], "OwnerId": agent });
            org.create("Case", body.as_object().unwrap(), &ctx).unwrap();
        }
    });
}

pub fn agent_replies(sim: &Simulator) -> usize {
    let agent = sim.id_of("agent").unwrap();
    sim.with_org(|org| {
        org.all("CaseComment")
            .filter(|c| c.str("CreatedById") == Some(agent.as_str()) && c.get("IsPublished") == &Value::Bool(true))
            .count()
    })
}

pub fn client(sim: &Simulator) -> Client {
    let credentials = Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(Secret::new("test-secret")),
        refresh_token: Secret::new("agent-refresh-token"),
    };
    Client::new(ClientConfig::new(sim.url(), credentials)).unwrap()
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}
