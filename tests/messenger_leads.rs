//! A messenger visitor's Lead and Tasks after they are made, on the simulator: the lead
//! mappings written when the lead is made and again when a value changes; a verified new
//! visitor's conversation logged as a Task on the lead casebridge made; a handover to a
//! user giving that user the lead and the Tasks (`owner_follows_assignee`); and a lead made
//! by hand from the admin page, checked first and queued through the outbox.

mod common;

use std::path::Path;
use std::sync::Arc;

use casebridge::channels::messenger::{Messenger, MessengerSettings, StartRequest, token};
use casebridge::daemon::Daemon;
use casebridge::model::Secret;
use casebridge::report::admin::serve;
use common::*;
use serde_json::{Value, json};

const LEAD_MAPPINGS: &str = r#"
kind: mappings
lead:
  - field: Company
    expr: 'if contains_any(last_message, ["Globex"]) { "Globex" } else { () }'
  - field: Rating
    expr: 'if turns > 1 { "Warm" } else { "Cold" }'
"#;

const TO_HUGO: &str = r#"
kind: handover
rules:
  - name: to-hugo
    when: 'contains_any(last_message, ["sales person"])'
    target: human@test.example
    reason: "Wants sales."
"#;

fn rules(dir: &Path) -> casebridge::decide::SharedRules {
    let rules = copy_rules(dir);
    std::fs::write(rules.join("lead.yaml"), LEAD_MAPPINGS).unwrap();
    std::fs::write(rules.join("to-hugo.yaml"), TO_HUGO).unwrap();
    load_rules(&rules)
}

fn settings() -> MessengerSettings {
    MessengerSettings {
        identity_secret: Some(Secret::new("s")),
        create_leads: true,
        log_tasks: true,
        owner_follows_assignee: true,
        ..MessengerSettings::default()
    }
}

async fn setup(w: &World, dir: &Path, settings: MessengerSettings) -> (Daemon, Arc<Messenger>) {
    let mut d = w.daemon_with_rules(rules(dir)).await;
    let hub = Messenger::new(d.store().clone(), settings).unwrap();
    d.attach_messenger(hub.clone());
    (d, hub)
}

fn start(hub: &Messenger, email: Option<&str>, verified: bool, message: &str) -> (String, String) {
    let request = StartRequest {
        name: Some("Sam Newman".into()),
        email: email.map(str::to_string),
        user_hash: email.filter(|_| verified).map(|e| token::identity_hash(b"s", e)),
        message: message.into(),
    };
    let started = hub.start(request, "127.0.0.1").unwrap();
    (started.conversation_id, started.visitor_token)
}

async fn rows(w: &World, soql: String) -> Vec<Value> {
    w.admin.query(soql).collect_all().await.unwrap()
}

#[tokio::test]
async fn lead_mappings_are_written_when_the_lead_is_made_and_again_when_they_change() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub) = setup(&w, tmp.path(), settings()).await;
    let (id, token) = start(&hub, Some("sam@newco.example"), false, "How do I recalibrate the gripper?");
    d.chat_round().await.unwrap();
    let lead_of = |id: String| {
        format!("SELECT Id, Company, Rating, LastName, OwnerId FROM Lead WHERE Casebridge_Conversation__c = '{id}'")
    };
    let leads = rows(&w, lead_of(id.clone())).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["Company"], "[not provided]", "no mapped value yet: the placeholder");
    assert_eq!(leads[0]["Rating"], "Cold");

    hub.post(&id, Some(&token), "We are Globex, by the way. How often should the arm joints be greased?", "1").unwrap();
    d.chat_round().await.unwrap();
    let leads = rows(&w, lead_of(id.clone())).await;
    assert_eq!(leads.len(), 1);
    assert_eq!((&leads[0]["Company"], &leads[0]["Rating"]), (&json!("Globex"), &json!("Warm")), "updated");
    hub.post(&id, Some(&token), "Thanks! How do I recalibrate the gripper again?", "1").unwrap();
    let report = d.chat_round().await.unwrap();
    assert_eq!(report.api_calls, 0, "unchanged values are not written again");
}

#[tokio::test]
async fn a_verified_new_visitor_gets_a_task_on_their_new_lead_and_a_handover_to_a_user_gives_them_both() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub) = setup(&w, tmp.path(), settings()).await;
    let (id, token) = start(&hub, Some("sam@newco.example"), true, "How do I recalibrate the gripper?");
    d.chat_round().await.unwrap();
    let lead = rows(&w, format!("SELECT Id, OwnerId FROM Lead WHERE Casebridge_Conversation__c = '{id}'")).await;
    let lead_id = lead[0]["Id"].as_str().unwrap().to_string();
    let tasks = |id: String| {
        format!("SELECT Id, WhoId, OwnerId, Status FROM Task WHERE Casebridge_Conversation__c LIKE '{id}%'")
    };
    let logged = rows(&w, tasks(id.clone())).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["WhoId"], json!(lead_id), "the Task is on the lead casebridge made");
    assert_ne!(logged[0]["OwnerId"], json!(w.id("human")));

    hub.post(&id, Some(&token), "Can I talk to a sales person?", "1").unwrap();
    d.chat_round().await.unwrap();
    let hugo = json!(w.id("human"));
    let lead = rows(&w, format!("SELECT OwnerId FROM Lead WHERE Id = '{lead_id}'")).await;
    assert_eq!(lead[0]["OwnerId"], hugo, "the lead follows the assignee");
    let logged = rows(&w, tasks(id.clone())).await;
    assert_eq!(logged[0]["OwnerId"], hugo, "so does the Task");
    let case = rows(&w, format!("SELECT OwnerId FROM Case WHERE Casebridge_Conversation__c = '{id}'")).await;
    assert_eq!(case[0]["OwnerId"], hugo);
}

#[tokio::test]
async fn a_handover_to_a_queue_leaves_the_lead_and_tasks_where_they_are() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub) = setup(&w, tmp.path(), settings()).await;
    let (id, _) = start(&hub, Some("jane@customer.example"), true, "I'd like to talk to a human please");
    d.chat_round().await.unwrap();
    let logged = rows(&w, format!("SELECT OwnerId FROM Task WHERE Casebridge_Conversation__c = '{id}'")).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["OwnerId"], json!(w.id("agent")), "a Task cannot belong to a queue: not given to it");
    assert!(d.store().sync_errors().unwrap().is_empty(), "nor tried: {:?}", d.store().sync_errors().unwrap());
}

#[tokio::test]
async fn a_lead_made_by_hand_is_checked_first_and_queued_through_the_outbox() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let plain = MessengerSettings { create_leads: false, ..settings() };
    let (mut d, hub) = setup(&w, tmp.path(), plain).await;
    let addr = serve("127.0.0.1:0".parse().unwrap(), d.admin_state(None, Secret::new("t")), std::future::pending())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let request = http.post(format!("http://{addr}{path}")).bearer_auth("t").json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    w.admin
        .create("Lead", &json!({ "LastName": "Known", "Company": "Widgets", "Email": "known@lead.example" }))
        .await
        .unwrap();
    let (known, _) = start(&hub, Some("known@lead.example"), true, "How do I recalibrate the gripper?");
    // An unverified claim of that email is never looked up by the daemon (leads are off): the
    // page looks it up before making a second lead.
    let (claimed, _) = start(&hub, Some("known@lead.example"), false, "How do I recalibrate the gripper?");
    let (sam, _) = start(&hub, Some("sam@newco.example"), false, "How do I recalibrate the gripper?");
    let (anonymous, _) = start(&hub, None, false, "How do I recalibrate the gripper?");
    let (jane, _) = start(&hub, Some("jane@customer.example"), true, "How do I recalibrate the gripper?");
    d.chat_round().await.unwrap();
    assert!(rows(&w, format!("SELECT Id FROM Lead WHERE Casebridge_Conversation__c = '{sam}'")).await.is_empty());

    // A body that is no JSON, or fields that are no object, are refused before anything.
    let raw = http.post(format!("http://{addr}/api/inbox/{sam}/lead")).bearer_auth("t").body("{\"fields\":").send();
    assert_eq!(raw.await.unwrap().status(), 400);
    assert_eq!(post(format!("/api/inbox/{sam}/lead"), json!({ "fields": [1, 2] })).await.0, 400);
    let (status, answer) = post(format!("/api/inbox/{anonymous}/lead"), json!({})).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("no email"));
    let (status, answer) = post(format!("/api/inbox/{jane}/lead"), json!({})).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (409, "this visitor is a contact in Salesforce"));
    for visitor in [&known, &claimed] {
        let (status, answer) = post(format!("/api/inbox/{visitor}/lead"), json!(null)).await;
        assert_eq!((status, answer["error"].as_str().unwrap()), (409, "this visitor already is a lead in Salesforce"));
    }
    let (status, answer) =
        post(format!("/api/inbox/{sam}/lead"), json!({ "fields": { "Id": "00Q000000000001AAA" } })).await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = post(format!("/api/inbox/{sam}/lead"), json!({ "fields": { "Rating": "Boiling" } })).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["problems"][0]["field"], "Rating", "{answer}");
    assert_eq!(d.store().outbox_len(), 0, "nothing queued");

    let (status, answer) = post(format!("/api/inbox/{sam}/lead"), json!({ "fields": { "Company": "NewCo" } })).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(post(format!("/api/inbox/{sam}/lead"), json!({})).await.0, 409, "once");
    d.cycle().await.unwrap();
    let leads =
        rows(&w, format!("SELECT Company, Email, LastName FROM Lead WHERE Casebridge_Conversation__c = '{sam}'")).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!((&leads[0]["Company"], &leads[0]["Email"]), (&json!("NewCo"), &json!("sam@newco.example")));
    assert_eq!(leads[0]["LastName"], "Newman");
}

#[tokio::test]
async fn chats_that_give_the_same_new_email_share_one_lead() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub) = setup(&w, tmp.path(), settings()).await;
    // Decided in the same round: neither finds a Lead in Salesforce when it looks.
    let (first, _) = start(&hub, Some("sam@newco.example"), false, "How do I recalibrate the gripper?");
    let (second, second_token) = start(&hub, Some("Sam@NewCo.example"), false, "How do I recalibrate the gripper?");
    let (verified, _) = start(&hub, Some("sam@newco.example"), true, "How do I recalibrate the gripper?");
    d.chat_round().await.unwrap();
    let leads =
        rows(&w, "SELECT Id, Casebridge_Conversation__c FROM Lead WHERE Email = 'sam@newco.example'".into()).await;
    assert_eq!(leads.len(), 1, "one visitor, one Lead: {leads:?}");
    // Keyed by whichever chat was decided first; the others write to it by that key.
    let key = leads[0]["Casebridge_Conversation__c"].as_str().unwrap().to_string();
    assert!([&first, &second, &verified].contains(&&key), "{key}");
    for id in [&first, &second, &verified] {
        let conv = d.store().conversation(id).unwrap().unwrap();
        assert_eq!(conv.lead_key(), Some(key.as_str()), "{id} writes to the one Lead");
    }
    let lead_id = leads[0]["Id"].as_str().unwrap().to_string();
    let tasks = rows(&w, format!("SELECT WhoId FROM Task WHERE Casebridge_Conversation__c LIKE '{verified}%'")).await;
    assert_eq!(tasks.len(), 1, "the verified chat's Task waits for the shared Lead, then is logged on it: {tasks:?}");
    assert_eq!(tasks[0]["WhoId"], json!(lead_id));

    // The second chat's changed mapping goes to the same Lead.
    hub.post(&second, Some(&second_token), "We are Globex. How often should the arm joints be greased?", "1").unwrap();
    d.chat_round().await.unwrap();
    let leads = rows(&w, "SELECT Company FROM Lead WHERE Email = 'sam@newco.example'".into()).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["Company"], "Globex");
    assert!(d.store().sync_errors().unwrap().is_empty(), "{:?}", d.store().sync_errors().unwrap());

    // A later chat: Salesforce has the Lead now, found by its email.
    let (later, _) = start(&hub, Some("sam@newco.example"), false, "How do I recalibrate the gripper?");
    d.chat_round().await.unwrap();
    let leads = rows(&w, "SELECT Id FROM Lead WHERE Email = 'sam@newco.example'".into()).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert!(d.store().conversation(&later).unwrap().unwrap().lead_key().is_none(), "a known lead is matched, not made");
}

#[tokio::test]
async fn a_lead_queued_by_hand_is_the_one_every_chat_with_that_email_writes() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub) = setup(&w, tmp.path(), settings()).await;
    let addr = serve("127.0.0.1:0".parse().unwrap(), d.admin_state(None, Secret::new("t")), std::future::pending())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let make_lead = |id: String| {
        let request = http.post(format!("http://{addr}/api/inbox/{id}/lead")).bearer_auth("t").json(&json!({}));
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (first, _) = start(&hub, Some("kim@newco.example"), false, "How do I recalibrate the gripper?");
    let (second, token) = start(&hub, None, false, "How do I recalibrate the gripper?");
    hub.post(&second, Some(&token), "It's KIM@newco.example, by the way.", "1").unwrap();
    // Queued, not yet in Salesforce: the second request must not queue another.
    assert_eq!(make_lead(first.clone()).await.0, 202);
    let (status, body) = make_lead(second.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains(&first), "{body}");

    // The daemon decides all three before the outbox is sent: the others share the Lead.
    let (third, _) = start(&hub, Some("kim@newco.example"), false, "How do I recalibrate the gripper?");
    d.chat_round().await.unwrap();
    let leads =
        rows(&w, "SELECT Id, Casebridge_Conversation__c FROM Lead WHERE Email = 'kim@newco.example'".into()).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["Casebridge_Conversation__c"], json!(first));
    for id in [&second, &third] {
        assert_eq!(d.store().conversation(id).unwrap().unwrap().lead_key(), Some(first.as_str()), "{id}");
    }
}
