//! The OpenAI-compatible and Rhai script agents, through the daemon.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use casebridge::agent::Agent;
use casebridge::agent::openai::OpenAiAgent;
use casebridge::agent::script::ScriptAgent;
use casebridge::daemon::EventKind;
use casebridge::model::Secret;
use casebridge::script::Limits;
use common::*;
use serde_json::{Value, json};

/// A local stand-in for an OpenAI-compatible service: answers, or says CANNOT_HELP when
/// the customer mentions a refund, or fails while `down` is set.
#[derive(Default)]
struct Stub {
    requests: Mutex<Vec<(Option<String>, Value)>>,
    down: Mutex<bool>,
}

async fn completions(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    stub.requests.lock().unwrap().push((auth, body.clone()));
    if *stub.down.lock().unwrap() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": { "message": "overloaded" } })));
    }
    let last = body["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_lowercase();
    let content = if last.contains("refund") { "CANNOT_HELP".to_string() } else { format!("Stub answer to: {last}") };
    (
        StatusCode::OK,
        Json(json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": content } }] })),
    )
}

async fn start_stub() -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub::default());
    let app =
        axum::Router::new().route("/v1/chat/completions", axum::routing::post(completions)).with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, stub)
}

#[tokio::test]
async fn openai_compatible_agent_answers_and_hands_over_and_survives_an_outage() {
    let w = World::new().await;
    let (url, stub) = start_stub().await;
    let agent = OpenAiAgent::new(
        &url,
        "stub-model",
        Some(Secret::new("sk-test")),
        Some("Be brief.".into()),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut daemon = w.daemon_with_agent(Agent::OpenAi(agent)).await;
    let agent_id = w.id("agent");
    let answerable = w.case_for_agent(json!({ "Subject": "Widget", "Description": "How do widgets work?" })).await;
    let refund = w.case_for_agent(json!({ "Subject": "Money", "Description": "I want a refund" })).await;
    let report = daemon.cycle().await.unwrap();
    let kind = |id: &str| report.events.iter().find(|e| e.case_id == id).map(|e| e.kind);
    assert_eq!(kind(&answerable), Some(EventKind::Replied));
    assert_eq!(kind(&refund), Some(EventKind::HandedOver));
    {
        let requests = stub.requests.lock().unwrap();
        let (auth, body) = requests.iter().find(|(_, b)| b.to_string().contains("widgets")).unwrap();
        assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
        assert_eq!(body["model"], "stub-model");
        assert_eq!(body["messages"][0], json!({ "role": "system", "content": "Be brief." }));
        assert_eq!(body["messages"][1]["role"], "user");
    }

    // The service goes down: the case is not handed over, it waits and is tried again.
    *stub.down.lock().unwrap() = true;
    let outage = w.case_for_agent(json!({ "Subject": "Gadget", "Description": "How do gadgets work?" })).await;
    let report = daemon.cycle().await.unwrap();
    assert!(report.events.iter().any(|e| e.case_id == outage && e.kind == EventKind::AgentFailed));
    let case: Value = w.admin.get("Case", &outage, Some(&["OwnerId"])).await.unwrap();
    assert_eq!(case["OwnerId"], json!(agent_id), "an outage is no reason to hand over");
    assert!(daemon.store().sync_errors().unwrap().iter().any(|e| e.code == "AGENT_ERROR"));
    *stub.down.lock().unwrap() = false;
    let mut conv = daemon.store().conversation(&outage).unwrap().unwrap();
    conv.retry_at = Some(chrono::Utc::now());
    daemon.store().commit(&conv, vec![]).unwrap();
    let report = daemon.cycle().await.unwrap();
    assert!(report.events.iter().any(|e| e.case_id == outage && e.kind == EventKind::Replied), "{:?}", report.events);
}

#[tokio::test]
async fn script_agent_answers_and_long_replies_are_split_within_commentbody_limits() {
    let w = World::new().await;
    let script = w.path().join("agent.rhai");
    std::fs::write(
        &script,
        r#"
        fn answer(conversation) {
            let last = conversation.parts[conversation.parts.len() - 1].body;
            if last.contains("essay") {
                let para = "";
                for i in 0..60 { para += "This sentence makes the answer long. "; }
                let text = "";
                for i in 0..4 { text += para + "\n\n"; }
                return #{ text: text, confidence: 0.9 };
            }
            if last.contains("password") { return "Use the 'Forgot password' link."; }
            ()
        }
        "#,
    )
    .unwrap();
    let agent = ScriptAgent::load(&script, Limits::default()).unwrap();
    let mut daemon = w.daemon_with_agent(Agent::Script(agent)).await;
    let short = w.case_for_agent(json!({ "Subject": "Login", "Description": "I forgot my password" })).await;
    let long = w.case_for_agent(json!({ "Subject": "Essay", "Description": "Write me an essay" })).await;
    let report = daemon.cycle().await.unwrap();
    assert_eq!(report.executed.failed, 0, "nothing refused by Salesforce");
    assert_eq!(w.agent_comment_bodies(&short).await, ["Use the 'Forgot password' link."]);
    let pieces = w.agent_comment_bodies(&long).await;
    assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|p| p.len() <= 4000));
    assert!(pieces[1].starts_with("(continued)"));
}

#[test]
fn a_script_without_answer_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("agent.rhai");
    std::fs::write(&script, "fn reply(c) { () }").unwrap();
    let err = ScriptAgent::load(&script, Limits::default()).err().unwrap().to_string();
    assert!(err.contains("agent.rhai") && err.contains("fn answer(conversation)"), "{err}");
}
