//! Shared set-up for the integration tests: an in-process simulator on a free loopback
//! port, clients signed in to it, the repository's files, and (in `world`) the `World` most
//! tests start from; `binary` runs the built `casebridge` and waits for what it does.
#![allow(dead_code)]

mod binary;
pub mod models;
pub mod webdriver;
mod world;

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use binary::*;
#[allow(unused_imports)]
pub use world::*;

use std::path::PathBuf;

use casebridge::model::Secret;
use casebridge::salesforce::{Client, ClientConfig, Credentials, RetryPolicy};
use casebridge::sim::{SimOptions, Simulator, seed};

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Starts the simulator on the test org.
pub async fn start_sim(options: SimOptions) -> Simulator {
    let seed = seed::load_file(&fixture("org.yaml")).expect("the test org loads");
    Simulator::start("127.0.0.1:0".parse().unwrap(), seed, options).await.expect("the simulator starts")
}

pub fn password_credentials(username: &str, password: &str) -> Credentials {
    Credentials::Password {
        client_id: "test-app".into(),
        client_secret: Secret::new("test-secret"),
        username: username.into(),
        password: Secret::new(password),
    }
}

/// Retries quick enough for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(50),
    }
}

/// A client signed in as the agent user through the refresh-token grant.
pub fn agent_client(sim: &Simulator) -> Client {
    let credentials = Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(Secret::new("test-secret")),
        refresh_token: Secret::new("agent-refresh-token"),
    };
    client_with(sim, credentials)
}

pub fn client_with(sim: &Simulator, credentials: Credentials) -> Client {
    let mut config = ClientConfig::new(sim.url(), credentials);
    config.retry = fast_retry();
    Client::new(config).expect("client builds")
}

/// Signs in to the simulator's test org as the agent user with the password grant, over
/// plain HTTP (no casebridge client), and returns the token response.
pub async fn password_token(http: &reqwest::Client, base: &str) -> serde_json::Value {
    http.post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "test-app"),
            ("client_secret", "test-secret"),
            ("username", "agent@test.example"),
            ("password", "agent-pw"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Reads the simulator's request log through its control API.
pub async fn sim_requests(sim: &Simulator) -> serde_json::Value {
    reqwest::get(format!("{}/__sim/requests", sim.url())).await.unwrap().json().await.unwrap()
}

pub async fn set_faults(sim: &Simulator, faults: serde_json::Value) {
    let r = reqwest::Client::new().post(format!("{}/__sim/faults", sim.url())).json(&faults).send().await.unwrap();
    assert_eq!(r.status(), 200, "faults accepted");
}

/// The knowledge-base agent on the demo help centre, stating its best passage whenever it
/// clears the confidence floor (`state_at_coverage: 0`), as an admin may set it: the tests
/// of the daemon's machinery read a quoted answer. The shipped default (articles offered,
/// nothing stated without a model) is tested in `tests/suggestions.rs`.
pub fn demo_kb() -> casebridge::agent::Agent {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb = casebridge::agent::kb::KnowledgeBase::load(
        &root.join("examples/demo/help-center"),
        "https://help.example",
        0.35,
    )
    .unwrap();
    let bars = casebridge::agent::kb::Bars { state_at_coverage: Some(0.0), ..kb.bars() };
    casebridge::agent::Agent::KnowledgeBase(kb.with_bars(bars))
}

/// A client signed in with a username and password of the test org.
pub fn user_client(sim: &Simulator, username: &str, password: &str) -> Client {
    client_with(sim, password_credentials(username, password))
}

/// The repository's root.
pub fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// Copies a folder and everything under it.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for file in walk(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// A copy of the shipped rule set in `to/rules`, to edit.
pub fn copy_rules(to: &std::path::Path) -> PathBuf {
    let dest = to.join("rules");
    copy_dir(&root().join("rules"), &dest);
    dest
}

/// A temporary directory with a copy of the shipped rule set in its `rules`, to edit.
pub fn scratch_rules() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rules(dir.path());
    (dir, rules)
}

/// A temporary directory with an empty `rules` folder, to write a rule set into.
pub fn empty_rules() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    (dir, rules)
}

/// A config for the demo org served by an in-process simulator at `url`.
pub fn demo_config(dir: &std::path::Path, url: &str, target: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("secret"), "demo-secret").unwrap();
    std::fs::write(dir.join("refresh"), "demo-refresh-token").unwrap();
    let text = format!(
        "org:\n  login_url: {url}\n  auth: {{grant: refresh_token, client_id: casebridge-demo, client_secret: {{file: secret}}, refresh_token: {{file: refresh}}}}\n\
         agent_user: fin@acme.example\nhandover: {{default_target: {target}}}\nstore_path: store\n\
         agent: {{backend: knowledge_base, dir: {root}/examples/demo/help-center}}\nrules_dir: {root}/rules\n",
        root = env!("CARGO_MANIFEST_DIR")
    );
    let path = dir.join("casebridge.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

pub async fn demo_sim() -> casebridge::sim::Simulator {
    let seed = casebridge::sim::seed::load(casebridge::sim::DEMO_ORG, "demo").unwrap();
    casebridge::sim::Simulator::start("127.0.0.1:0".parse().unwrap(), seed, Default::default()).await.unwrap()
}

/// GETs `url` with a bearer `token` and reads the JSON it answers.
pub async fn get_json(url: &str, token: &str) -> serde_json::Value {
    reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}
