//! The agent report from outside: cases decided by a real daemon on the simulator (the
//! shipped rules, the knowledge-base agent), then `/api/report` over HTTP and the admin
//! page's report in a real headless browser (its figures, its charts, the questions the
//! help centre could not answer), checked with axe-core. The figures themselves are checked
//! against a hand-counted mix in `report::agent`'s unit tests.

mod common;

use casebridge::agent::Agent;
use casebridge::agent::kb::KnowledgeBase;
use casebridge::model::Secret;
use casebridge::report::admin::serve;
use common::webdriver::{self, Browser};
use common::*;
use serde_json::{Value, json};

const ICELAND: &str = "Do you ship replacement grippers to Iceland?";

/// The knowledge-base agent on the demo help centre (without the embedding model).
fn demo_agent() -> Agent {
    let kb = KnowledgeBase::load(&root().join("examples/demo/help-center"), "https://help.example", 0.35).unwrap();
    Agent::KnowledgeBase(kb)
}

/// A daemon that decided four new cases (two the help centre covers, one asking for a
/// person, one it cannot answer) beside the test org's own. Returns the admin server's
/// base address and how many conversations the daemon holds.
async fn decided(w: &World, agent: Agent) -> (String, u64) {
    let mut daemon = w.daemon_full(None, agent, load_rules(&root().join("rules")), test_settings(None)).await;
    for (subject, question) in [
        ("Gripper drifts", "My gripper drifts after every restart, how do I recalibrate it?"),
        ("Firmware", "The firmware update stopped with error E42. How do I update the firmware?"),
        ("A person please", "I want to talk to a human agent please."),
        ("Shipping", ICELAND),
    ] {
        w.case_for_agent(json!({ "Subject": subject, "Description": question, "Origin": "Web" })).await;
    }
    daemon.cycle().await.unwrap();
    let state = daemon.admin_state(None, Secret::new("report-token"));
    let addr = serve("127.0.0.1:0".parse().unwrap(), state, std::future::pending()).await.unwrap();
    (format!("http://{addr}"), daemon.store().conversation_count() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_what_the_daemon_decided_and_lists_what_it_could_not_answer() {
    let w = World::new().await;
    let (base, held) = decided(&w, demo_agent()).await;
    assert!(held >= 4);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth("report-token").send();

    let report: Value = get("/api/report").await.unwrap().json().await.unwrap();
    let overall = &report["overall"];
    assert_eq!(overall["conversations"], held, "every conversation began in the last 30 days: {report:#}");
    assert_eq!(report["by_channel"]["case"]["conversations"], held);
    assert!(overall["routed"].as_u64().unwrap() >= 1, "the person asked for was routed: {overall}");
    let asked: Vec<&str> = report["unanswered"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["examples"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    assert!(asked.iter().any(|q| q.contains("Iceland")), "the uncovered question is listed: {asked:?}");
    assert_eq!(report["unanswered_grouped_by"], "words", "this agent has no embedding model");
    assert!(!asked.iter().any(|q| q.contains("recalibrate")), "a covered one is not: {asked:?}");
    let articles = report["articles"].as_array().unwrap();
    assert!(articles.iter().any(|a| a["title"] == "Calibrating the gripper"), "{articles:?}");
    assert!(report["charts"]["by_day"].as_str().unwrap().contains(&format!("{held} conversations over 30 days.")));

    // Periods that are not periods are refused, saying which parameter and why.
    let bad = get("/api/report?from=yesterday").await.unwrap();
    assert_eq!(bad.status(), 400);
    let why: Value = bad.json().await.unwrap();
    assert!(why["error"].as_str().unwrap().starts_with("from: a date as YYYY-MM-DD"), "{why}");
    let long = get("/api/report?from=2000-01-01&to=2026-01-01").await.unwrap();
    assert_eq!(long.status(), 400);
    let empty: Value = get("/api/report?from=2001-01-01&to=2001-01-02").await.unwrap().json().await.unwrap();
    assert_eq!(empty["overall"]["conversations"], 0);
    let refused = http.get(format!("{base}/api/report")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the report needs the admin token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_shows_the_report_with_its_charts_in_a_browser() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let w = World::new().await;
    let (base, held) = decided(&w, demo_agent()).await;
    let b = Browser::start(chromium, driver).await;
    b.resize(1280, 1600).await;
    b.open(&format!("{base}/#token=report-token")).await;
    b.wait_for_text("#report-figures td", "all").await;
    let first_row =
        b.script("return [...document.querySelectorAll('#report-figures tr')[0].cells].map(c => c.textContent)").await;
    assert_eq!(first_row[0], "all");
    assert_eq!(first_row[1], held.to_string(), "{first_row}");
    let chart = b.find("#report-days svg").await;
    assert_eq!(b.attribute(&chart, "role").await.as_deref(), Some("img"));
    let described = b.script("return document.querySelector('#report-days svg desc').textContent").await;
    assert!(described.as_str().unwrap().starts_with(&format!("{held} conversations over 30 days.")), "{described}");
    b.wait_for_text("#report-questions td", "Iceland").await;
    b.wait_for_text("#report-articles a", "Calibrating the gripper").await;
    b.script("document.getElementById('report').scrollIntoView(); return true").await;
    b.screenshot("admin-report").await;

    // Another period, chosen in the form.
    b.script(
        "document.getElementById('report-from').value = '2001-01-01';
         document.getElementById('report-to').value = '2001-01-31';
         document.querySelector('#report-form button').click(); return true",
    )
    .await;
    b.wait_for_text("#report-questions td", "every question in this period").await;

    if let Some(axe) = webdriver::axe_or_skip() {
        let found = b.accessibility_violations(&axe, "body").await;
        assert!(found.is_empty(), "axe-core: {found:#?}");
    }
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_embedding_model_the_report_groups_the_questions_by_meaning() {
    use casebridge::knowledge::{Index, Library, Synonyms, load_markdown_folder};
    let Some(model) = common::models::real_model() else { return };
    let w = World::new().await;
    let articles = load_markdown_folder(&root().join("examples/demo/help-center"), "https://help.example").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let encoder = casebridge::embedding::CachedEncoder::open(&model, cache.path()).unwrap();
    let library =
        Library::with_embedder(Index::with_synonyms(articles, Synonyms::default()), std::sync::Arc::new(encoder));
    let bars = casebridge::agent::kb::Bars::with_min_confidence(0.35);
    let agent = Agent::KnowledgeBase(KnowledgeBase::with_library(library.unwrap(), bars));
    let (base, _) = decided(&w, agent).await;
    let report = get_json(&format!("{base}/api/report"), "report-token").await;
    assert_eq!(report["unanswered_grouped_by"], "meaning", "{report:#}");
    let asked = report["unanswered"].to_string();
    assert!(asked.contains("Iceland"), "{asked}");
}
