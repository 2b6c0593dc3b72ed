//! The messenger's crash story, with `casebridge run` killed with SIGKILL at random moments
//! while visitors chat: every message the API acknowledged (201) is kept, every visitor
//! message is answered or forwarded exactly once, and every chat handed over has exactly
//! one Salesforce Case — however often the daemon died between deciding, committing and
//! sending.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use casebridge::model::{AuthorKind, ConversationState};
use casebridge::sim::value::Value as SimValue;
use common::*;
use rand::Rng;
use serde_json::{Value, json};

fn spawn(config: &std::path::Path) -> Child {
    bin()
        .args(["run", "--config"])
        .arg(config)
        .env("CASEBRIDGE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("casebridge run starts")
}

/// Cases made for chats, by the chat they were made for.
fn chat_cases(w: &World) -> BTreeMap<String, usize> {
    w.sim.with_org(|org| {
        let mut counts = BTreeMap::new();
        for c in org.all("Case") {
            if let SimValue::Str(chat) = c.get("Casebridge_Conversation__c") {
                *counts.entry(chat.clone()).or_insert(0) += 1;
            }
        }
        counts
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_visitors_chat_loses_no_message_and_makes_no_second_case() {
    let w = World::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = w.config(
        "100ms",
        &format!(
            "messenger: {{listen: 127.0.0.1:{port}, per_visitor_per_minute: 1000, per_address_per_minute: 10000}}\n"
        ),
    );
    // Every Salesforce call takes a while, so kills land while case upserts are in flight.
    set_faults(&w.sim, json!({ "latency_ms": 20 })).await;
    let base = format!("http://127.0.0.1:{port}/messenger/v1/conversations");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut rng = rand::rng();
    // Every acknowledged message, by conversation (texts are unique), and the tokens.
    let mut acknowledged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    let mut n = 0;
    for round in 0..12 {
        let mut child = spawn(&config);
        let up = Instant::now();
        while http.get(format!("http://127.0.0.1:{port}/messenger.js")).send().await.is_err() {
            assert!(up.elapsed() < Duration::from_secs(30), "the daemon did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let kill_at = Instant::now() + Duration::from_millis(rng.random_range(50..600));
        while Instant::now() < kill_at {
            n += 1;
            // New chats (every third asks for a person) and follow-ups to earlier ones.
            let text = if n % 3 == 0 {
                format!("Can I talk to a human please? (#{n})")
            } else {
                format!("How do I recalibrate the gripper after a restart? (#{n})")
            };
            let existing =
                tokens.iter().nth(rng.random_range(0..tokens.len().max(1))).map(|(i, t)| (i.clone(), t.clone()));
            let sent = match existing.filter(|_| n % 2 == 0) {
                Some((id, token)) => http
                    .post(format!("{base}/{id}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({ "body": text }))
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 201)
                    .map(|_| id),
                None => match http.post(&base).json(&json!({ "message": text })).send().await {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = r.json().await.unwrap_or_default();
                        v["conversation_id"].as_str().map(|id| {
                            tokens.insert(id.to_string(), v["visitor_token"].as_str().unwrap_or_default().to_string());
                            id.to_string()
                        })
                    }
                    _ => None,
                },
            };
            if let Some(id) = sent {
                acknowledged.entry(id).or_default().push(text);
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if round == 11 {
            break;
        }
    }
    set_faults(&w.sim, json!({})).await;
    // A last run until nothing is left to do, then a clean stop.
    let mut child = spawn(&config);
    tokio::time::sleep(Duration::from_secs(4)).await;
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success(), "a clean stop");

    let store = casebridge::store::Store::open(&w.path().join("store")).unwrap();
    assert_eq!(store.outbox_len(), 0, "everything was sent");
    let cases = chat_cases(&w);
    let mut handed_over = 0;
    for (id, texts) in &acknowledged {
        let conv = store.conversation(id).unwrap().unwrap_or_else(|| panic!("acknowledged chat {id} was lost"));
        let bodies: BTreeSet<&str> =
            conv.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.body.as_str()).collect();
        for t in texts {
            assert!(bodies.contains(t.as_str()), "{id}: acknowledged message {t:?} was lost");
        }
        // (A message whose answer the kill cut off may be stored without its 201: more is
        // fine, twice is not.)
        assert_eq!(
            conv.parts.iter().filter(|p| p.author == AuthorKind::User).count(),
            bodies.len(),
            "{id}: each message stored once"
        );
        assert!(conv.unanswered().is_empty(), "{id}: a visitor message was neither answered nor forwarded");
        if matches!(conv.state, ConversationState::HandedOver { .. }) {
            handed_over += 1;
            assert_eq!(cases.get(id), Some(&1), "{id}: a handed-over chat has exactly one case");
        }
    }
    assert!(cases.values().all(|&c| c == 1), "no chat has two cases: {cases:?}");
    assert!(handed_over >= 3, "handovers were part of the run ({handed_over})");
    assert!(acknowledged.len() >= 10, "chats were part of the run ({})", acknowledged.len());
}
