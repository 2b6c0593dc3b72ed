//! Resolutions through the daemon with the shipped rules, on the simulator: an answer
//! awaits the customer, a confirmation is a hard resolution (no reply, no handover), a quiet
//! customer is a soft resolution (or abandoned after unhappy words) once `quiet_after` has
//! passed (time advanced in the store, not slept), a handover is routed to the team; the
//! case's AI_Resolution__c and AI_Involved__c follow, and the quiet timer reads nothing from
//! Salesforce.

mod common;

use casebridge::daemon::{Daemon, EventKind};
use casebridge::model::{Resolution, ResolutionState};
use common::*;
use serde_json::{Value, json};

const GRIPPER: &str = "My gripper drifts after every restart, how do I recalibrate it?";

async fn daemon(w: &World) -> Daemon {
    w.daemon_with_rules(load_rules(&root().join("rules"))).await
}

async fn customer_says(w: &World, case_id: &str, text: &str) {
    w.customer()
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": text, "IsPublished": true }))
        .await
        .unwrap();
}

async fn case_fields(w: &World, case_id: &str) -> Value {
    w.admin.get("Case", case_id, Some(&["AI_Resolution__c", "AI_Involved__c", "OwnerId"])).await.unwrap()
}

fn state(d: &Daemon, case_id: &str) -> Option<ResolutionState> {
    d.store().conversation(case_id).unwrap().unwrap().resolution
}

/// Moves a conversation's answer `hours` into the past, as if that much time had passed.
fn age(d: &Daemon, case_id: &str, hours: i64) {
    let mut conv = d.store().conversation(case_id).unwrap().unwrap();
    let r = conv.resolution.as_mut().unwrap();
    r.since -= chrono::Duration::hours(hours);
    d.store().commit(&conv, Vec::new()).unwrap();
}

#[tokio::test]
async fn a_confirmation_is_a_hard_resolution_with_no_reply_and_no_handover() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    assert_eq!(state(&d, &case).map(|r| r.state), Some(Resolution::AwaitingCustomer));
    let fields = case_fields(&w, &case).await;
    assert_eq!((&fields["AI_Resolution__c"], &fields["AI_Involved__c"]), (&json!("awaiting_customer"), &json!(true)));

    customer_says(&w, &case, "Thanks, that worked! The drift is gone.").await;
    let report = d.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case && e.kind == EventKind::Resolved),
        "{:?}",
        report.events
    );
    assert_eq!(state(&d, &case).map(|r| r.state), Some(Resolution::HardResolution));
    assert_eq!(w.agent_replies(&case).await, 1, "a thank-you gets no answer");
    let fields = case_fields(&w, &case).await;
    assert_eq!(fields["AI_Resolution__c"], "hard_resolution");
    assert_eq!(fields["OwnerId"], json!(w.id("agent")), "and no handover");
    let metrics = d.metrics().render();
    assert!(metrics.contains("casebridge_resolutions_total{state=\"hard_resolution\"} 1"), "{metrics}");
    // The trace says why.
    let conv = d.store().conversation(&case).unwrap().unwrap();
    let trace = &conv.decisions.last().unwrap().trace;
    assert!(trace.0.iter().any(|e| e.detail.contains("confirmed the answer")), "{trace:?}");
}

#[tokio::test]
async fn quiet_customers_are_soft_resolutions_or_abandoned_without_reading_salesforce() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let quiet = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    let unhappy = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    customer_says(&w, &unhappy, "This didn't work, the gripper still drifts after a restart. How do I recalibrate it?")
        .await;
    d.cycle().await.unwrap();
    let r = state(&d, &unhappy).unwrap();
    assert_eq!((r.state, r.unhappy), (Resolution::AwaitingCustomer, true));

    // Not quiet long enough yet: nothing changes, and an idle cycle is still one call.
    age(&d, &quiet, 23);
    let idle = d.cycle().await.unwrap();
    assert_eq!(idle.api_calls, 1, "{idle:?}");
    assert_eq!(state(&d, &quiet).map(|r| r.state), Some(Resolution::AwaitingCustomer));

    // A day without a word: the timer resolves both from the store; the only calls are the
    // poll and the one composite that writes the two fields.
    age(&d, &quiet, 2);
    age(&d, &unhappy, 25);
    let settled = d.cycle().await.unwrap();
    assert_eq!(state(&d, &quiet).map(|r| r.state), Some(Resolution::SoftResolution));
    assert_eq!(state(&d, &unhappy).map(|r| r.state), Some(Resolution::Abandoned));
    assert_eq!(settled.events.iter().filter(|e| e.kind == EventKind::Resolved).count(), 2, "{:?}", settled.events);
    assert_eq!(settled.api_calls, 2, "{settled:?}");

    // The admin API's figures per day: today, one soft resolution and one abandoned.
    let state = d.admin_state(None, casebridge::model::Secret::new("t"));
    let addr =
        casebridge::report::admin::serve("127.0.0.1:0".parse().unwrap(), state, std::future::pending()).await.unwrap();
    let figures = get_json(&format!("http://{addr}/api/resolutions?days=3"), "t").await;
    let days = figures["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    let today = &days[2];
    assert_eq!(today["states"], json!({ "abandoned": 1, "soft_resolution": 1 }), "{figures}");
    assert_eq!(today["resolution_rate"], json!(0.5));
    // Soft resolutions are reported apart from confirmed ones.
    assert_eq!((&today["confirmed_rate"], &today["soft_rate"]), (&json!(0.0), &json!(0.5)));
    assert_eq!(days[0]["resolution_rate"], Value::Null);
    assert_eq!(case_fields(&w, &quiet).await["AI_Resolution__c"], "soft_resolution");
    assert_eq!(case_fields(&w, &unhappy).await["AI_Resolution__c"], "abandoned");
    // Settled once: the next cycle has nothing to do.
    let after = d.cycle().await.unwrap();
    assert!(after.events.is_empty() && after.api_calls == 1, "{after:?}");
}

#[tokio::test]
async fn a_handover_after_an_answer_is_routed_to_the_team_and_one_before_any_is_not_counted() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let answered = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    let straight = w.case_for_agent(json!({ "Subject": "Help", "Description": "I want to talk to a human." })).await;
    d.cycle().await.unwrap();
    customer_says(&w, &answered, "Can I talk to a real person please?").await;
    d.cycle().await.unwrap();
    assert_eq!(state(&d, &answered).map(|r| r.state), Some(Resolution::RoutedToTeam));
    assert_eq!(case_fields(&w, &answered).await["AI_Resolution__c"], "routed_to_team");
    // Handed over before the agent was asked: the AI was not involved.
    assert_eq!(state(&d, &straight), None);
    let fields = case_fields(&w, &straight).await;
    assert_eq!((&fields["AI_Resolution__c"], &fields["AI_Involved__c"]), (&Value::Null, &json!(false)));
}

#[test]
fn confirmations_and_unhappiness_are_read_as_customers_write_them() {
    use casebridge::decide::{confirms_resolution, sounds_unhappy};
    for yes in [
        "Thanks, that worked!",
        "Perfect, thank you",
        "That fixed it.",
        "Problem solved, cheers",
        "That worked, the controller is back online. Thanks! Have a nice day.",
        "It works now. Thank you so much! Jane",
    ] {
        assert!(confirms_resolution(yes), "{yes}");
    }
    for no in [
        "Thanks, but that didn't work",
        "That worked for the arm. How do I reset the gripper?",
        "That fixed the drift, thanks! One more thing: the controller shows as offline in the app.",
        "It works now, but the arm makes a grinding noise when it starts",
        "The issue is unresolved.",
        "It still isn't resolved.",
        "That fixed it on my laptop but not on my phone.",
        "That worked. The arm now stops halfway through every cycle.",
        "That fixed it. Don't close the case yet.",
        "It is not resolved",
        "Thanks",
    ] {
        assert!(!confirms_resolution(no), "{no}");
    }
    assert!(sounds_unhappy("This is useless."));
    assert!(sounds_unhappy("It still doesn’t work"));
    assert!(!sounds_unhappy("Thanks, that worked"));
}

#[tokio::test]
async fn a_confirmation_after_another_unanswered_message_is_not_a_resolution() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    customer_says(&w, &case, "Now the firmware update fails with error E42 after the reset").await;
    customer_says(&w, &case, "Thanks, that worked!").await;
    let report = d.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
    assert_eq!(state(&d, &case).map(|r| r.state), Some(Resolution::AwaitingCustomer));
}

#[test]
fn only_a_conversation_waiting_on_nobody_but_the_customer_is_on_the_quiet_timer() {
    use casebridge::model::{Conversation, ConversationState};
    let dir = tempfile::tempdir().unwrap();
    let store = casebridge::store::Store::open(&dir.path().join("s")).unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(3);
    let mut c = Conversation::from_question("hi");
    c.handled.insert("question".into());
    c.resolution = Some(ResolutionState { state: Resolution::AwaitingCustomer, since: long_ago, unhappy: false });
    store.commit(&c, Vec::new()).unwrap();
    let due = || store.quiet_since(chrono::Utc::now(), 10).unwrap();
    assert_eq!(due(), ["question"]);
    // The customer wrote and the agent failed: waiting on a retry, not on the customer.
    c.retry_at = Some(chrono::Utc::now());
    store.commit(&c, Vec::new()).unwrap();
    assert!(due().is_empty());
    c.retry_at = None;
    c.state = ConversationState::AssignedAway { owner_id: "005".into() };
    store.commit(&c, Vec::new()).unwrap();
    assert!(due().is_empty(), "a person owns it now");
    c.state = ConversationState::Open;
    c.handled.clear();
    store.commit(&c, Vec::new()).unwrap();
    assert!(due().is_empty(), "an unanswered customer message");
}
