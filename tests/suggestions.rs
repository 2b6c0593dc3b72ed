//! Suggestions a customer confirms, on Salesforce Cases through the daemon: when the
//! knowledge base's evidence is not strong enough to state an answer, it offers articles
//! and asks; "yes" is a hard resolution, "no" a handover whose note lists the articles,
//! and silence is the admin's choice (a soft resolution, or a handover).

mod common;

use casebridge::agent::Agent;
use casebridge::agent::kb::{Bars, KnowledgeBase};
use casebridge::config::SilenceAfterSuggestions;
use casebridge::daemon::Daemon;
use casebridge::model::Resolution;
use common::*;
use serde_json::json;

const GRIPPER: &str = "My gripper drifts after every restart, how do I recalibrate it?";

/// The demo help centre with nothing stated: every answer above the floor is offered.
fn suggesting_kb() -> Agent {
    let kb = KnowledgeBase::load(&root().join("examples/demo/help-center"), "https://help.example", 0.35).unwrap();
    let bars = Bars { state_at_coverage: None, ..kb.bars() };
    Agent::KnowledgeBase(kb.with_bars(bars))
}

async fn daemon(w: &World, silence: SilenceAfterSuggestions) -> Daemon {
    let settings = casebridge::daemon::DaemonSettings { silence_after_suggestions: silence, ..test_settings(None) };
    w.daemon_full(None, suggesting_kb(), load_rules(&root().join("rules")), settings).await
}

async fn customer_says(w: &World, case_id: &str, text: &str) {
    w.customer()
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": text, "IsPublished": true }))
        .await
        .unwrap();
}

fn resolution(d: &Daemon, case_id: &str) -> Option<Resolution> {
    d.store().conversation(case_id).unwrap().unwrap().resolution.map(|r| r.state)
}

async fn owner(w: &World, case_id: &str) -> String {
    let case: serde_json::Value = w.admin.get("Case", case_id, Some(&["OwnerId"])).await.unwrap();
    case["OwnerId"].as_str().unwrap().to_string()
}

/// Asks the gripper question and checks the reply offers the calibration article.
async fn offered(w: &World, d: &mut Daemon) -> String {
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    let replies = w.agent_comment_bodies(&case).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0]
            .contains("Calibrating the gripper — https://help.acme-robotics.example/articles/gripper-calibration"),
        "{}",
        replies[0]
    );
    assert!(replies[0].contains("Reply \"yes\""), "{}", replies[0]);
    let conv = d.store().conversation(&case).unwrap().unwrap();
    assert!(conv.resolution.is_some_and(|r| r.state == Resolution::AwaitingCustomer));
    assert_eq!(casebridge::decide::offered(&conv).map(<[_]>::len), Some(1), "the reply offered one article");
    case
}

#[tokio::test]
async fn yes_to_suggestions_is_a_hard_resolution() {
    let w = World::new().await;
    let mut d = daemon(&w, SilenceAfterSuggestions::SoftResolution).await;
    let case = offered(&w, &mut d).await;
    customer_says(&w, &case, "Yes").await;
    d.cycle().await.unwrap();
    assert_eq!(resolution(&d, &case), Some(Resolution::HardResolution));
    assert_eq!(w.agent_replies(&case).await, 1, "a yes gets no answer");
    assert_eq!(owner(&w, &case).await, w.id("agent"), "and no handover");
    let conv = d.store().conversation(&case).unwrap().unwrap();
    let trace = &conv.decisions.last().unwrap().trace;
    assert!(trace.0.iter().any(|e| e.rule == "suggestion_reply" && e.fired), "{trace:?}");
}

#[tokio::test]
async fn no_to_suggestions_hands_over_with_them_in_the_note() {
    let w = World::new().await;
    let mut d = daemon(&w, SilenceAfterSuggestions::SoftResolution).await;
    let case = offered(&w, &mut d).await;
    customer_says(&w, &case, "No, none of them").await;
    d.cycle().await.unwrap();
    assert_eq!(resolution(&d, &case), Some(Resolution::RoutedToTeam));
    assert_eq!(owner(&w, &case).await, w.id("support_queue"));
    let notes: Vec<String> = w
        .comments(&case)
        .await
        .iter()
        .filter(|c| c["IsPublished"] == json!(false))
        .filter_map(|c| c["CommentBody"].as_str().map(str::to_string))
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("suggestions_declined")
            && n.contains("Articles the AI agent suggested before:")
            && n.contains("Calibrating the gripper (https://help.acme-robotics.example/articles/gripper-calibration)")),
        "{notes:?}"
    );
}

/// Moves a conversation's answer `hours` into the past, as if that much time had passed.
fn age(d: &Daemon, case_id: &str, hours: i64) {
    let mut conv = d.store().conversation(case_id).unwrap().unwrap();
    conv.resolution.as_mut().unwrap().since -= chrono::Duration::hours(hours);
    d.store().commit(&conv, Vec::new()).unwrap();
}

#[tokio::test]
async fn silence_after_suggestions_is_a_soft_resolution_by_default() {
    let w = World::new().await;
    let mut d = daemon(&w, SilenceAfterSuggestions::SoftResolution).await;
    let case = offered(&w, &mut d).await;
    age(&d, &case, 48);
    d.cycle().await.unwrap();
    assert_eq!(resolution(&d, &case), Some(Resolution::SoftResolution));
    assert_eq!(owner(&w, &case).await, w.id("agent"));
}

#[tokio::test]
async fn silence_after_suggestions_hands_over_when_the_admin_says_so() {
    let w = World::new().await;
    let mut d = daemon(&w, SilenceAfterSuggestions::Handover).await;
    let case = offered(&w, &mut d).await;
    age(&d, &case, 48);
    d.cycle().await.unwrap();
    assert_eq!(resolution(&d, &case), Some(Resolution::RoutedToTeam));
    assert_eq!(owner(&w, &case).await, w.id("support_queue"));
    let notes: Vec<String> =
        w.comments(&case).await.iter().filter_map(|c| c["CommentBody"].as_str().map(str::to_string)).collect();
    assert!(
        notes.iter().any(|n| n.contains("suggestions_unanswered") && n.contains("Calibrating the gripper")),
        "{notes:?}"
    );
}

/// In the messenger: the agent's message carries the articles as data (the widget shows
/// links and two buttons); "No, talk to a person" hands the chat over and its case's note
/// lists them.
#[tokio::test]
async fn in_the_messenger_suggestions_are_data_and_no_hands_over() {
    use casebridge::channels::messenger::{Messenger, MessengerSettings, api};
    let w = World::new().await;
    let mut d = daemon(&w, SilenceAfterSuggestions::SoftResolution).await;
    let hub = Messenger::new(d.store().clone(), MessengerSettings::default()).unwrap();
    d.attach_messenger(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = api::serve_on(listener, hub, async move {
        let _ = stopped.await;
    })
    .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}/messenger/v1/conversations");
    let started: serde_json::Value =
        http.post(&base).json(&json!({ "message": GRIPPER })).send().await.unwrap().json().await.unwrap();
    let (id, token) = (started["conversation_id"].as_str().unwrap(), started["visitor_token"].as_str().unwrap());
    d.cycle().await.unwrap();
    let messages = |http: reqwest::Client| async move {
        let r: serde_json::Value = http
            .get(format!("{base}/{id}/messages?after=0"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["messages"].as_array().unwrap().clone()
    };
    let shown = messages(http.clone()).await;
    let agent = shown.iter().rfind(|m| m["author"] == "agent").unwrap();
    assert_eq!(agent["suggestions"][0]["title"], "Calibrating the gripper", "{agent}");
    assert_eq!(agent["suggestions"][0]["url"], "https://help.acme-robotics.example/articles/gripper-calibration");
    assert!(agent["suggestions"][0]["excerpt"].as_str().unwrap().starts_with("Recalibrate the gripper"), "{agent}");

    let r = http
        .post(format!("http://{addr}/messenger/v1/conversations/{id}/messages"))
        .bearer_auth(token)
        .json(&json!({ "body": "No, talk to a person" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    d.cycle().await.unwrap();
    d.cycle().await.unwrap();
    let conv = d.store().conversation(id).unwrap().unwrap();
    assert_eq!(conv.resolution.map(|r| r.state), Some(Resolution::RoutedToTeam));
    let handover = conv.decisions.iter().rev().find_map(|d| d.handover.clone()).expect("handed over");
    assert!(
        handover
            .reason
            .contains("Calibrating the gripper (https://help.acme-robotics.example/articles/gripper-calibration)"),
        "{handover:?}"
    );
}

/// The rules read the articles offered (`suggested`) beside the customer's reply: here a
/// topic tags a case whose customer said no to them.
#[tokio::test]
async fn rules_read_the_articles_offered() {
    let w = World::new().await;
    let (_dir, rules) = scratch_rules();
    let topics = std::fs::read_to_string(rules.join("topics.yaml")).unwrap()
        + "  - name: Suggestions declined\n    when: suggested.len() > 0 && contains_any(last_message, [\"no\"])\n";
    std::fs::write(rules.join("topics.yaml"), topics).unwrap();
    let settings = test_settings(None);
    let mut d = w.daemon_full(None, suggesting_kb(), load_rules(&rules), settings).await;
    let case = offered(&w, &mut d).await;
    let conv = d.store().conversation(&case).unwrap().unwrap();
    assert!(!conv.topics.contains("Suggestions declined"), "nothing was offered before the first reply");
    customer_says(&w, &case, "no").await;
    d.cycle().await.unwrap();
    let conv = d.store().conversation(&case).unwrap().unwrap();
    assert!(conv.topics.contains("Suggestions declined"), "{:?}", conv.topics);
}
