//! The admin HTTP server over a daemon working on the simulator: token, health, readiness,
//! metrics, status, conversations with their traces, and sync errors with retry.

mod common;

use casebridge::model::Action;
use casebridge::model::Secret;
use casebridge::report::admin::serve;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn the_admin_api_shows_what_the_daemon_did_and_retries_failures() {
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let answered =
        w.case_for_agent(json!({ "Subject": "Gripper", "Description": "How do I recalibrate the gripper?" })).await;
    let handed = w
        .case_for_agent(json!({ "Subject": "Zeppelin", "Description": "Do you deliver by zeppelin to Antarctica?" }))
        .await;
    daemon.cycle().await.unwrap();

    let state = daemon.admin_state(None, Secret::new("s3cret-token"));
    let addr = serve("127.0.0.1:0".parse().unwrap(), state, std::future::pending()).await.unwrap();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let ok = Some("s3cret-token");

    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
    for path in ["/api/status", "/metrics", "/readyz", "/api/conversations", "/api/sync-errors"] {
        assert_eq!(get(path, None).await.unwrap().status(), 401, "{path} without a token");
        assert_eq!(get(path, Some("s3cret-tokeN")).await.unwrap().status(), 401, "{path} with a wrong token");
    }
    assert_eq!(get("/readyz", ok).await.unwrap().status(), 200);

    let status: Value = get("/api/status", ok).await.unwrap().json().await.unwrap();
    assert_eq!(status["agent_user"]["handle"], "agent@test.example");
    assert_eq!(status["org"]["instance_url"], json!(w.sim.url()));
    assert_eq!(status["org"]["org_id"].as_str().unwrap().len(), 18);
    assert_eq!(status["handover_target"]["name"], "Support Queue");
    assert!(status["cursor"].is_string());
    assert!(status["api_usage"]["used"].as_u64().unwrap() > 0);

    let metrics = get("/metrics", ok).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("casebridge_replies_total 1"), "{metrics}");
    assert!(
        metrics.contains(r#"casebridge_handovers_total{target="Support Queue",rule="agent_cannot_help"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("casebridge_decision_seconds_count 2"), "{metrics}");
    assert!(metrics.contains("casebridge_salesforce_api_remaining"), "{metrics}");

    let list: Value = get("/api/conversations?state=handed_over", ok).await.unwrap().json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["conversations"][0]["case_id"], json!(handed));
    let all: Value = get("/api/conversations?per_page=1&page=2", ok).await.unwrap().json().await.unwrap();
    assert_eq!(all["conversations"].as_array().unwrap().len(), 1);
    let one: Value = get(&format!("/api/conversations/{}", &answered[..15]), ok).await.unwrap().json().await.unwrap();
    assert_eq!(one["id"], json!(answered));
    let trace = &one["decisions"][0]["trace"];
    assert!(trace.as_array().unwrap().iter().any(|t| t["stage"] == "agent" && t["fired"] == true), "{trace}");
    assert_eq!(get("/api/conversations/500Dn0000000zzzAAA", ok).await.unwrap().status(), 404);

    // A refused action shows up with Salesforce's code, and can be retried.
    let mut bad = std::collections::BTreeMap::new();
    bad.insert("Product__c".to_string(), json!("Spaceship"));
    daemon.store().enqueue(Action::UpdateFields { case_id: answered.clone(), fields: bad }).unwrap();
    daemon.cycle().await.unwrap();
    let errors: Value = get("/api/sync-errors", ok).await.unwrap().json().await.unwrap();
    let error =
        errors["sync_errors"].as_array().unwrap().iter().find(|e| e["operation"] == "update_fields").unwrap().clone();
    assert_eq!(error["code"], "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert_eq!(error["case_id"], json!(answered));
    let metrics = get("/metrics", ok).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"casebridge_sync_errors_total{code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"} 1"#),
        "{metrics}"
    );

    let id = error["id"].as_u64().unwrap();
    let retried =
        http.post(format!("{base}/api/sync-errors/{id}/retry")).bearer_auth("s3cret-token").send().await.unwrap();
    assert_eq!(retried.status(), 202);
    assert_eq!(daemon.store().outbox_len(), 1, "the action is queued again");
    let find =
        |store: &casebridge::store::Store, id: u64| store.sync_errors().unwrap().into_iter().find(|e| e.id == id);
    let kept = find(daemon.store(), id).expect("the error stays until its retry goes through");
    assert_eq!((kept.retries, kept.attempts), (1, 1));
    // The retry fails again: the same error (same id), with one more attempt and its history.
    daemon.cycle().await.unwrap();
    let again = find(daemon.store(), id).expect("still the same error");
    assert_eq!((again.retries, again.attempts, again.history.len()), (1, 2, 1));
    assert_eq!(daemon.store().sync_errors().unwrap().iter().filter(|e| e.operation == "update_fields").count(), 1);
    assert_eq!(
        http.post(format!("{base}/api/sync-errors/999999/retry"))
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn readiness_and_status_say_when_the_rules_on_disk_are_broken() {
    use casebridge::rules::RuleSet;
    use casebridge::rules::watch::Reloader;
    let w = World::new().await;
    let rules = w.rules_dir();
    std::fs::write(rules.join("topics.yaml"), "kind: topics\ntopics:\n  - name: Billing\n    keywords: [invoice]\n")
        .unwrap();
    let set = RuleSet::load(&rules).unwrap();
    let hash = set.hash.clone();
    let shared = casebridge::decide::shared(Box::new(set));
    let mut daemon = w.daemon_with_rules(shared.clone()).await;
    let reloader =
        std::sync::Arc::new(Reloader::new(&rules, shared, hash.clone(), casebridge::script::Limits::default()));
    daemon.report_status(w.path().join("status.json"), Some(reloader.clone()));
    daemon.cycle().await.unwrap();
    let state = daemon.admin_state(Some(reloader.clone()), Secret::new("t"));
    let addr = serve("127.0.0.1:0".parse().unwrap(), state, std::future::pending()).await.unwrap();
    let http = reqwest::Client::new();
    let ready = http.get(format!("http://{addr}/readyz")).bearer_auth("t").send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // A broken edit: the running rule set stays, and readiness and status say so.
    std::fs::write(rules.join("topics.yaml"), "kind: topics\ntopics: [\n").unwrap();
    assert!(reloader.reload().is_err());
    daemon.cycle().await.unwrap();
    let ready = http.get(format!("http://{addr}/readyz")).bearer_auth("t").send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    let problems = body["problems"].to_string();
    assert!(problems.contains("do not load") && problems.contains(&hash), "{body}");
    let status: Value =
        http.get(format!("http://{addr}/api/status")).bearer_auth("t").send().await.unwrap().json().await.unwrap();
    assert_eq!(status["rules"]["on_disk"], "broken", "{status}");
    assert!(status["rules"]["last_errors"][0].as_str().unwrap().contains("topics.yaml:"), "{status}");
    assert_eq!(status["rules"]["active"], json!(hash));
}
