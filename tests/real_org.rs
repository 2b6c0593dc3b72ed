//! What a real org does that a friendly simulator would hide, each switched on in the test
//! org (`tests/fixtures/org.yaml`) and met by casebridge: internal posts and draft emails
//! that must never count as a reply to the customer, assignment rules that would re-route
//! what casebridge assigns, duplicate rules, and new comments that need not bump their
//! case's stamp. (Internal Knowledge articles: `tests/knowledge_sync.rs`.)

mod common;

use casebridge::daemon::EventKind;
use casebridge::salesforce::{AssignmentRules, SubRequest};
use casebridge::sim::org::WriteCtx;
use chrono::Utc;
use common::*;
use serde_json::{Value, json};

/// Writes to the org as one of its users would from Salesforce's own UI (no API headers).
fn as_user(w: &World, key: &str, object: &str, body: Value) -> String {
    let ctx = WriteCtx { user_id: w.id(key), now: Utc::now(), allow_system_fields: false };
    w.sim.with_org(|org| org.create(object, body.as_object().unwrap(), &ctx).unwrap())
}

/// A person's post on the case feed is internal unless shared (Salesforce's default for an
/// internal user's record post), and a draft email was never sent: neither answers the
/// customer, neither is shown to the agent as the conversation, so the agent still replies.
#[tokio::test]
async fn internal_posts_and_draft_emails_are_no_reply_to_the_customer() {
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let case_id = w
        .new_case(
            json!({ "Subject": "Gripper drifts after restart", "Description": "How do I recalibrate the gripper?" }),
        )
        .await;
    // Before the agent sees it, a colleague notes something internal and drafts an email.
    as_user(
        &w,
        "human",
        "FeedItem",
        json!({ "ParentId": case_id, "Body": "Internal: customer is on the old firmware." }),
    );
    as_user(
        &w,
        "human",
        "EmailMessage",
        json!({ "ParentId": case_id, "Incoming": false, "Status": "5", "Subject": "Draft", "TextBody": "Draft reply, not sent." }),
    );
    let post = w.sim.with_org(|org| {
        org.all("FeedItem")
            .find(|f| f.str("ParentId") == Some(case_id.as_str()))
            .unwrap()
            .str("Visibility")
            .map(str::to_string)
    });
    assert_eq!(post.as_deref(), Some("InternalUsers"), "the simulator defaults as Salesforce does");
    let report = daemon.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
        "an internal post or a draft is no human answer: {:?}",
        report.events
    );
    let conversation = daemon.store().conversation(&case_id).unwrap().unwrap();
    assert!(
        conversation
            .parts
            .iter()
            .filter(|p| p.body.contains("old firmware") || p.body.contains("Draft reply"))
            .all(|p| !p.public)
    );

    // A post shared with the customer is a reply: the agent says nothing more.
    let follow_up = w
        .new_case(json!({ "Subject": "Gripper drifts again", "Description": "How do I recalibrate the gripper?" }))
        .await;
    as_user(
        &w,
        "human",
        "FeedItem",
        json!({ "ParentId": follow_up, "Body": "Hold SERVICE for ten seconds.", "Visibility": "AllUsers" }),
    );
    let report = daemon.cycle().await.unwrap();
    assert!(
        !report.events.iter().any(|e| e.conversation_id == follow_up && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
}

/// The test org's active assignment rule sends every Case it runs on back to the agent user
/// and every Lead to the admin. casebridge's writes say `Sforce-Auto-Assign: FALSE`, on
/// plain requests and on each composite subrequest, so owners stay as written; with
/// `assignment_rules: on_create` the rule picks a new record's owner, never an update's.
#[tokio::test]
async fn assignment_rules_never_move_what_casebridge_assigns_unless_asked_on_create() {
    let w = World::new().await;
    let queue = w.id("support_queue");
    let client = w.agent_client();
    let owner = |id: String| {
        let admin = w.admin.clone();
        async move { admin.get::<Value>("Case", &id, Some(&["OwnerId"])).await.unwrap()["OwnerId"].clone() }
    };
    let case_id = client.create("Case", &json!({ "Subject": "Route me", "OwnerId": queue })).await.unwrap();
    assert_eq!(owner(case_id.clone()).await, json!(queue), "a create keeps its owner");
    let subs = vec![SubRequest::update("h", "Case", &case_id, json!({ "OwnerId": w.id("human") }))];
    assert!(client.composite(false, subs).await.unwrap()[0].is_success());
    assert_eq!(owner(case_id.clone()).await, json!(w.id("human")), "a composite handover keeps its owner");

    // Without the header (a client that does not send it), the org's rule re-routes.
    let raw = reqwest::Client::new();
    let token = password_token(&raw, w.sim.url()).await["access_token"].as_str().unwrap().to_string();
    let url = format!("{}/services/data/v62.0/sobjects/Case/{case_id}", w.sim.url());
    let patched = raw.patch(&url).bearer_auth(&token).json(&json!({ "OwnerId": queue })).send().await.unwrap();
    assert_eq!(patched.status(), 204);
    assert_eq!(owner(case_id.clone()).await, json!(w.id("agent")), "the org's rule ran: back to the agent user");

    // on_create: the rule routes a new case, not an update.
    let credentials = casebridge::salesforce::Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(casebridge::model::Secret::new("test-secret")),
        refresh_token: casebridge::model::Secret::new("agent-refresh-token"),
    };
    let mut config = casebridge::salesforce::ClientConfig::new(w.sim.url(), credentials);
    config.assignment_rules = AssignmentRules::OnCreate;
    let routed = casebridge::salesforce::Client::new(config).unwrap();
    let made = routed.create("Case", &json!({ "Subject": "Route me", "OwnerId": queue })).await.unwrap();
    assert_eq!(owner(made.clone()).await, json!(w.id("agent")), "on a create the org's rule decides");
    routed.update("Case", &made, &json!({ "OwnerId": queue })).await.unwrap();
    assert_eq!(owner(made).await, json!(queue), "an update never runs it");
}

/// A duplicate rule refuses a second Lead with an email the org has, in Salesforce's shape.
#[tokio::test]
async fn a_duplicate_rule_refuses_a_second_lead_with_the_matching_records() {
    let w = World::new().await;
    let first = w
        .admin
        .create("Lead", &json!({ "LastName": "One", "Company": "A", "Email": "dup@leads.example" }))
        .await
        .unwrap();
    let e = w
        .admin
        .create("Lead", &json!({ "LastName": "Two", "Company": "B", "Email": "DUP@leads.example" }))
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), "DUPLICATES_DETECTED", "{e}");
    let raw = reqwest::Client::new();
    let token = password_token(&raw, w.sim.url()).await["access_token"].as_str().unwrap().to_string();
    let body: Value = raw
        .post(format!("{}/services/data/v62.0/sobjects/Lead", w.sim.url()))
        .bearer_auth(&token)
        .json(&json!({ "LastName": "Two", "Company": "B", "Email": "dup@leads.example" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let matched = &body[0]["duplicateResut"]["matchResults"][0]["matchRecords"][0]["record"]["Id"];
    assert_eq!(matched, &json!(first), "{body}");
}
