//! The channels do not wait on each other, and a burst does not wait on a guess. Under
//! `Daemon::run` the chat channel has a task of its own: with a slow model, a visitor's
//! question reaches the model while a case's decision is still in flight (the stub holds
//! both at once), and the case is answered too, once. Against a service that refuses
//! requests past a concurrency limit, a burst finds that level by itself (few refusals,
//! nothing failed).

mod common;

use std::time::Duration;

use casebridge::agent::Agent;
use casebridge::agent::openai::{Grounding, OpenAiAgent};
use casebridge::channels::messenger::{Messenger, MessengerSettings, api};
use casebridge::knowledge::{Index, Library, load_markdown_folder};
use casebridge::model::{AuthorKind, Secret};
use casebridge::sim::model::{ModelBehaviour, ModelStub};
use common::*;
use serde_json::{Value, json};

const GRIPPER: &str = "My gripper drifts after every restart, how do I recalibrate it?";

fn slow_model_agent(stub: &ModelStub) -> Agent {
    let articles = load_markdown_folder(&root().join("examples/demo/help-center"), "https://help.example").unwrap();
    let library = Library::new(Index::new(articles));
    let timeout = Duration::from_secs(20);
    let agent = OpenAiAgent::new(
        &stub.url,
        "stub-model",
        Some(Secret::new("sk-test")),
        None,
        timeout,
        library,
        Grounding::default(),
    );
    Agent::OpenAi(agent.unwrap())
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_is_decided_while_a_slow_case_decision_is_in_flight() {
    let w = World::new().await;
    let stub =
        ModelStub::start(ModelBehaviour { latency: Duration::from_secs(3), ..Default::default() }).await.unwrap();
    let mut d = w.daemon_with_agent(slow_model_agent(&stub)).await;
    let hub = Messenger::new(d.store().clone(), MessengerSettings::default()).unwrap();
    d.attach_messenger(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = api::serve_on(listener, hub.clone(), async move {
        let _ = api_stopped.await;
    })
    .unwrap();
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    let store = d.store().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(d.run(async move {
        let _ = stopped.await;
    }));

    // The case's decision is with the model; a visitor asks meanwhile.
    wait_until("the case's question at the model", async || stub.requests().len() == 1).await;
    let http = reqwest::Client::new();
    let started: Value = http
        .post(format!("http://{addr}/messenger/v1/conversations"))
        .json(&json!({ "name": "Sam Visitor", "message": "The firmware update stopped with error E42, what now?" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id = started["conversation_id"].as_str().unwrap().to_string();
    wait_until("the chat's question at the model", async || stub.requests().len() == 2).await;
    assert_eq!(stub.peak_concurrency(), 2, "the chat reached the model while the case's decision was in flight");
    assert_eq!(w.agent_replies(&case).await, 0, "and before the case was answered");

    wait_until("the chat's answer", async || {
        store.conversation(&chat_id).unwrap().is_some_and(|c| c.parts.iter().any(|p| p.author == AuthorKind::Bot))
    })
    .await;
    wait_until("the case's answer", async || w.agent_replies(&case).await == 1).await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    let _ = stop_api.send(());
    assert_eq!(w.agent_replies(&case).await, 1, "answered once");
}

/// Creates `n` cases owned by the agent user, straight in the org.
fn create_cases(w: &World, n: usize) -> Vec<String> {
    let (admin, agent) = (w.id("admin"), w.id("agent"));
    w.sim.with_org(|org| {
        let ctx = casebridge::sim::org::WriteCtx { user_id: admin, now: chrono::Utc::now(), allow_system_fields: false };
        (0..n)
            .map(|i| {
                let body = json!({ "Subject": format!("Gripper {i}"), "Description": GRIPPER, "OwnerId": agent, "Origin": "Web" });
                org.create("Case", body.as_object().unwrap(), &ctx).unwrap()
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_finds_the_services_level_and_fails_nothing() {
    let w = World::new().await;
    let behaviour = ModelBehaviour { latency: Duration::from_millis(300), max_concurrent: 6, ..Default::default() };
    let stub = ModelStub::start(behaviour).await.unwrap();
    let ceiling = casebridge::config::DEFAULT_AGENT_CONCURRENCY;
    let Agent::OpenAi(agent) = slow_model_agent(&stub) else { unreachable!() };
    let settings = casebridge::daemon::DaemonSettings { agent_concurrency: ceiling, ..test_settings(None) };
    let mut d = w.daemon_full(None, Agent::OpenAi(agent.with_ceiling(ceiling)), builtin_rules(), settings).await;
    let cases = create_cases(&w, 60);
    let report = d.cycle().await.unwrap();
    let failed: Vec<_> =
        report.events.iter().filter(|e| e.kind == casebridge::daemon::EventKind::AgentFailed).collect();
    assert!(failed.is_empty(), "nothing fails: {failed:?}");
    for case in &cases {
        assert_eq!(w.agent_replies(case).await, 1, "{case} answered once");
    }
    assert!(stub.overloaded() > 0, "the level was found by reaching it");
    assert!(stub.overloaded() <= 30, "and then kept under it: {} refused for 60 answers", stub.overloaded());
    assert!(d.store().sync_errors().unwrap().is_empty());
}
