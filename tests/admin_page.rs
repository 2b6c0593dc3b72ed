//! The admin web page in a real headless browser (Debian's chromium): it signs in with the
//! token from the URL fragment, shows the daemon's status, the sync errors with their retry
//! buttons, recent conversations, and one conversation's decision trace. CI installs
//! chromium (`.ci/run`); elsewhere the test says how and skips.

mod common;

use std::process::Command;

use casebridge::model::Action;
use casebridge::model::Secret;
use casebridge::report::admin::serve;
use common::*;
use serde_json::json;

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_status_errors_conversations_and_traces_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium (see .ci/run)");
        eprintln!("skipped: apt-get install chromium to run this test");
        return;
    };
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let case = w
        .case_for_agent(
            json!({ "Subject": "Gripper <b>drift</b>", "Description": "How do I recalibrate the gripper?" }),
        )
        .await;
    daemon.cycle().await.unwrap();
    let mut bad = std::collections::BTreeMap::new();
    bad.insert("Product__c".to_string(), json!("Spaceship"));
    daemon.store().enqueue(Action::UpdateFields { case_id: case.clone(), fields: bad }).unwrap();
    daemon.cycle().await.unwrap();
    let state = daemon.admin_state(None, Secret::new("page-token"));
    let addr = serve("127.0.0.1:0".parse().unwrap(), state, std::future::pending()).await.unwrap();
    let open = |url: &str| {
        let profile = tempfile::tempdir().unwrap();
        let out = tokio::task::block_in_place(|| {
            Command::new(browser)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                .args(["--disable-component-update", "--disable-sync", "--no-first-run"])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .args(["--virtual-time-budget=5000", "--dump-dom", url])
                .output()
                .expect("chromium runs")
        });
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let dom = open(&format!("http://{addr}/#token=page-token&case={case}"));
    assert!(dom.contains("agent@test.example"), "status shown: {dom}");
    assert!(dom.contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), "sync error shown");
    assert!(dom.contains(">Retry</button>"), "with a retry button");
    assert!(dom.contains("Gripper &lt;b&gt;drift&lt;/b&gt;"), "subjects are shown as text, never as HTML");
    assert!(dom.contains("customer_asks_for_a_human"), "the decision trace is shown");
    assert!(dom.contains(">fired<"), "with what fired");
    // A wrong token gets the sign-in form, not data.
    let dom = open(&format!("http://{addr}/#token=wrong"));
    assert!(dom.contains("That token was refused.") && !dom.contains("INVALID_OR_NULL"), "{dom}");
}
