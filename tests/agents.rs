//! The OpenAI-compatible and Rhai script agents, through the daemon.

mod common;

use std::time::Duration;

use casebridge::agent::Agent;
use casebridge::agent::openai::{Grounding, OpenAiAgent};
use casebridge::agent::script::ScriptAgent;
use casebridge::daemon::EventKind;
use casebridge::knowledge::{Index, Library, load_markdown_folder};
use casebridge::model::Secret;
use casebridge::script::Limits;
use casebridge::sim::model::{ModelBehaviour, ModelStub};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn openai_compatible_agent_answers_and_hands_over_and_survives_an_outage() {
    let w = World::new().await;
    let stub = ModelStub::start(ModelBehaviour::default()).await.unwrap();
    let knowledge =
        Library::new(Index::new(load_markdown_folder(&root().join("examples/demo/help-center"), "https://h").unwrap()));
    let agent = OpenAiAgent::new(
        &stub.url,
        "stub-model",
        Some(Secret::new("sk-test")),
        Some("Be brief.".into()),
        Duration::from_secs(5),
        knowledge,
        Grounding::default(),
    )
    .unwrap();
    let mut daemon = w.daemon_with_agent(Agent::OpenAi(agent)).await;
    let agent_id = w.id("agent");
    let answerable =
        w.case_for_agent(json!({ "Subject": "Firmware", "Description": "How do I update the firmware?" })).await;
    let refund = w.case_for_agent(json!({ "Subject": "Money", "Description": "I want a refund for my invoice" })).await;
    let report = daemon.cycle().await.unwrap();
    let kind = |id: &str| report.events.iter().find(|e| e.conversation_id == id).map(|e| e.kind);
    assert_eq!(kind(&answerable), Some(EventKind::Replied));
    assert_eq!(kind(&refund), Some(EventKind::HandedOver));
    {
        let requests = stub.requests();
        let request = requests.iter().find(|r| r.body.to_string().contains("update the firmware")).unwrap();
        assert_eq!(request.authorization.as_deref(), Some("Bearer sk-test"));
        assert_eq!(request.body["model"], "stub-model");
        let system = request.body["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("Be brief.\n\n"), "the admin's prompt, then the grounding rules: {system}");
        assert_eq!(request.body["messages"].as_array().unwrap().last().unwrap()["role"], "user");
    }

    // The service goes down: the case is not handed over, it waits and is tried again.
    stub.set(|b| b.down = true);
    let outage =
        w.case_for_agent(json!({ "Subject": "Firmware", "Description": "How do firmware updates work?" })).await;
    let report = daemon.cycle().await.unwrap();
    assert!(report.events.iter().any(|e| e.conversation_id == outage && e.kind == EventKind::AgentFailed));
    let case: Value = w.admin.get("Case", &outage, Some(&["OwnerId"])).await.unwrap();
    assert_eq!(case["OwnerId"], json!(agent_id), "an outage is no reason to hand over");
    assert!(daemon.store().sync_errors().unwrap().iter().any(|e| e.code == "AGENT_ERROR"));
    stub.set(|b| b.down = false);
    let mut conv = daemon.store().conversation(&outage).unwrap().unwrap();
    conv.retry_at = Some(chrono::Utc::now());
    daemon.store().commit(&conv, vec![]).unwrap();
    let report = daemon.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == outage && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
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
