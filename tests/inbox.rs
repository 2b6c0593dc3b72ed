//! The admin server's messenger side, through its HTTP API on the simulator: the inbox, the
//! live Salesforce panel of a verified contact (contact, account, open opportunities, open
//! cases, links) and of an unverified claim (nothing), the New case form from the org's
//! describe, a case made by hand (refused with every problem named, or made and noted in
//! the conversation), and sync errors grouped by object and code with a bulk retry.

mod common;

use std::sync::Arc;

use casebridge::channels::messenger::{Messenger, MessengerSettings, token};
use casebridge::daemon::Daemon;
use casebridge::model::{Action, Secret};
use casebridge::report::admin::serve;
use common::*;
use serde_json::{Value, json};

struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth("t").send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth("t").json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

async fn setup(w: &World) -> (Daemon, Arc<Messenger>, Admin) {
    let mut d = w.daemon_with_rules(load_rules(&root().join("rules"))).await;
    let settings = MessengerSettings { identity_secret: Some(Secret::new("s")), ..MessengerSettings::default() };
    let hub = Messenger::new(d.store().clone(), settings).unwrap();
    d.attach_messenger(hub.clone());
    let addr = serve("127.0.0.1:0".parse().unwrap(), d.admin_state(None, Secret::new("t")), std::future::pending())
        .await
        .unwrap();
    (d, hub, Admin { base: format!("http://{addr}"), http: reqwest::Client::new() })
}

fn start(hub: &Messenger, email: &str, verified: bool) -> (String, String) {
    let request = casebridge::channels::messenger::StartRequest {
        name: Some("Jane".into()),
        email: Some(email.into()),
        user_hash: verified.then(|| token::identity_hash(b"s", email)),
        message: "How do I recalibrate the gripper?".into(),
    };
    let started = hub.start(request, "127.0.0.1").unwrap();
    (started.conversation_id, started.visitor_token)
}

/// An email typed in that matches a contact (looked up to avoid a duplicate lead) is
/// labelled for what is known: unverified, not a user.
#[tokio::test]
async fn an_unverified_claim_of_a_contacts_email_is_labelled_unverified() {
    let w = World::new().await;
    let mut d = w.daemon_with_rules(load_rules(&root().join("rules"))).await;
    let settings = MessengerSettings {
        identity_secret: Some(Secret::new("s")),
        create_leads: true,
        ..MessengerSettings::default()
    };
    let hub = Messenger::new(d.store().clone(), settings).unwrap();
    d.attach_messenger(hub.clone());
    let addr = serve("127.0.0.1:0".parse().unwrap(), d.admin_state(None, Secret::new("t")), std::future::pending())
        .await
        .unwrap();
    let admin = Admin { base: format!("http://{addr}"), http: reqwest::Client::new() };
    let (jane, _) = start(&hub, "jane@customer.example", true);
    let (claim, _) = start(&hub, "jane@customer.example", false);
    d.chat_round().await.unwrap();
    let stored = d.store().conversation(&claim).unwrap().unwrap();
    assert!(matches!(stored.messenger.unwrap().person, Some(casebridge::model::SalesforcePerson::User { .. })));
    let (_, inbox) = admin.get("/api/inbox").await;
    let kind = |id: &str| {
        inbox["conversations"].as_array().unwrap().iter().find(|c| c["id"] == json!(id)).unwrap()["kind"].clone()
    };
    assert_eq!(kind(&jane), "user", "{inbox}");
    assert_eq!(kind(&claim), "unverified", "{inbox}");
}

#[tokio::test]
async fn the_inbox_shows_a_verified_contacts_live_salesforce_data_and_nothing_of_a_claim() {
    let w = World::new().await;
    let (mut d, hub, admin) = setup(&w).await;
    let (jane, _) = start(&hub, "jane@customer.example", true);
    let (claim, _) = start(&hub, "jane@customer.example", false);
    d.chat_round().await.unwrap();

    let (status, inbox) = admin.get("/api/inbox").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> =
        inbox["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(listed.contains(&jane.as_str()) && listed.contains(&claim.as_str()), "{inbox}");

    let (status, panel) = admin.get(&format!("/api/inbox/{jane}/salesforce")).await;
    assert_eq!(status, 200, "{panel}");
    assert_eq!(panel["kind"], "user");
    assert_eq!(panel["contact"]["name"], "Jane Doe");
    assert!(
        panel["contact"]["link"].as_str().unwrap().ends_with(&format!("/lightning/r/Contact/{}/view", w.id("jane")))
    );
    assert_eq!(panel["account"]["name"], "Acme O'Brien & Co");
    let opportunities = panel["opportunities"].as_array().unwrap();
    assert_eq!(opportunities.len(), 1);
    assert_eq!((&opportunities[0]["name"], &opportunities[0]["stage"]), (&json!("Acme grippers"), &json!("Proposal")));
    assert!(panel["open_cases"].as_array().unwrap().iter().any(|c| c["id"] == json!(w.id("case1"))), "{panel}");

    let (_, panel) = admin.get(&format!("/api/inbox/{claim}/salesforce")).await;
    assert_eq!(panel["kind"], "", "an unverified email is not even looked up (no leads are made here)");
    assert!(
        panel.get("contact").is_none() && panel.get("account").is_none(),
        "an unverified claim shows nothing: {panel}"
    );
    assert_eq!(admin.get("/api/inbox/msg_nosuch/salesforce").await.0, 404);
    assert_eq!(admin.get(&format!("/api/inbox/{}/salesforce", w.id("case1"))).await.0, 404, "a case is no chat");
}

#[tokio::test]
async fn a_case_made_by_hand_is_checked_first_and_noted_in_the_conversation() {
    let w = World::new().await;
    let (mut d, hub, admin) = setup(&w).await;
    let (jane, visitor_token) = start(&hub, "jane@customer.example", true);
    d.chat_round().await.unwrap();

    let (status, form) = admin.get("/api/case-form").await;
    assert_eq!(status, 200);
    let fields = form["fields"].as_array().unwrap();
    let field = |name: &str| fields.iter().find(|f| f["name"] == name).cloned();
    assert!(field("Subject").is_some());
    assert!(field("CaseNumber").is_none(), "read-only fields are not on the form");
    assert!(field("Casebridge_Conversation__c").is_none(), "casebridge's own key is not on the form");
    assert!(field("Origin").unwrap()["values"].as_array().unwrap().contains(&json!("Web")));
    assert_eq!(form["default_owner"]["id"], json!(w.id("support_queue")));
    let types: Vec<&str> =
        form["record_types"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(types, ["Sales Inquiry", "Support"]);

    let cases = || async {
        w.admin
            .query::<Value>(format!(
                "SELECT Id, Subject, ContactId FROM Case WHERE Casebridge_Conversation__c = '{jane}'"
            ))
            .collect_all()
            .await
            .unwrap()
    };
    let (status, refused) = admin
        .post(
            &format!("/api/inbox/{jane}/case"),
            json!({ "fields": { "Subject": "x".repeat(300), "Product__c": "Spaceship", "CaseNumber": "1" } }),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let codes: Vec<&str> =
        refused["problems"].as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 3, "{refused}");
    assert!(codes.contains(&"STRING_TOO_LONG") && codes.contains(&"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"));
    assert!(cases().await.is_empty(), "nothing was sent");

    let (status, made) = admin
        .post(
            &format!("/api/inbox/{jane}/case"),
            json!({ "fields": { "Subject": "Gripper drift", "ContactId": w.id("jane"), "Origin": "Web", "Product__c": "", "Score__c": "12.5" } }),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let made_cases = cases().await;
    assert_eq!(made_cases.len(), 1);
    assert_eq!(made_cases[0]["ContactId"], json!(w.id("jane")));
    let score: Vec<Value> = w
        .admin
        .query(format!("SELECT Score__c FROM Case WHERE Id = '{}'", made["id"].as_str().unwrap()))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(score[0]["Score__c"], json!(12.5), "a number typed into the form is sent as a number");
    assert_eq!(made["id"], made_cases[0]["Id"]);
    let conv = d.store().conversation(&jane).unwrap().unwrap();
    assert_eq!(conv.case_id(), made["id"].as_str(), "the case is the chat's: replies flow both ways");
    assert!(
        matches!(&conv.state, casebridge::model::ConversationState::HandedOver { target_id, .. } if *target_id == w.id("support_queue")),
        "owned by the default handover target, never the agent user: {:?}",
        conv.state
    );
    let note = conv.parts.iter().find(|p| !p.public).expect("a note");
    assert!(note.body.contains(made["link"].as_str().unwrap()), "{}", note.body);
    let shown = hub.messages(&jane, Some(&visitor_token), 0).unwrap();
    assert!(shown.iter().all(|m| !m.body.contains("made by hand")), "the note is not the visitor's to read");

    assert_eq!(admin.post(&format!("/api/inbox/{jane}/case"), json!({ "nope": 1 })).await.0, 400);
    assert_eq!(admin.post("/api/inbox/msg_nosuch/case", json!({ "fields": { "Subject": "x" } })).await.0, 404);
}

#[tokio::test]
async fn sync_errors_are_grouped_by_object_and_code_and_retried_together() {
    let w = World::new().await;
    let (mut d, _hub, admin) = setup(&w).await;
    let other = w.case_for_agent(json!({ "Subject": "Other" })).await;
    for case in [w.id("case1"), other.clone()] {
        let fields = [("Product__c".to_string(), json!("Spaceship"))].into_iter().collect();
        d.store().enqueue(Action::UpdateFields { case_id: case, fields }).unwrap();
    }
    d.cycle().await.unwrap();
    let (status, groups) = admin.get("/api/sync-errors/groups").await;
    assert_eq!(status, 200);
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["code"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
        .cloned()
        .unwrap_or_else(|| panic!("{groups}"));
    assert_eq!(
        (group["object"].as_str(), group["count"].as_u64(), group["retryable"].as_u64()),
        (Some("Cases"), Some(2), Some(2))
    );
    let conversations = group["conversations"].as_array().unwrap();
    assert!(conversations.contains(&json!(other)) && conversations.contains(&json!(w.id("case1"))));

    let (status, retried) = admin.post("/api/sync-errors/retry", json!({ "ids": group["ids"], })).await;
    assert_eq!(status, 202);
    assert_eq!(retried["queued"], 2);
    assert_eq!(d.store().outbox_len(), 2);
    let (_, none) = admin.post("/api/sync-errors/retry", json!({ "ids": [999_999] })).await;
    assert_eq!(none["missing"], json!([999_999]));
    assert_eq!(admin.post("/api/sync-errors/retry", json!({ "ids": "all" })).await.0, 400);
}
