//! The outbox executor after a crash: entries left in flight are checked in Salesforce
//! before anything is sent again.

mod common;

use casebridge::act::executor::Executor;
use casebridge::model::{Action, ReplyChannel};
use casebridge::store::{EntryStatus, Store};
use chrono::Utc;
use common::*;
use serde_json::{Value, json};

const BODY: &str = "Power-cycle the controller and run the update again over USB.";

/// Queues a reply and leaves it in flight, as a crash right after marking it would.
fn in_flight_reply(store: &Store, case_id: &str) {
    let conversation = store.conversation(case_id).unwrap();
    assert!(conversation.is_none(), "the executor alone is under test");
    store
        .enqueue(Action::PostReply { case_id: case_id.into(), body: BODY.into(), channel: ReplyChannel::Comment })
        .unwrap();
    let mut entries = store.outbox().unwrap();
    for e in entries.iter_mut() {
        e.status = EntryStatus::InFlight { since: Utc::now() };
        e.attempts = 1;
    }
    store.update_entries(&entries).unwrap();
}

#[tokio::test]
async fn identical_replies_on_one_case_are_told_apart_after_a_crash() {
    let w = World::new().await;
    let store = w.store();
    let client = w.agent_client();
    let agent = w.id("agent");
    let case_id = w.id("case1");
    let mut executor = Executor::new(client.clone(), store.clone(), None, agent);

    // The first reply goes out normally and is confirmed.
    store
        .enqueue(Action::PostReply { case_id: case_id.clone(), body: BODY.into(), channel: ReplyChannel::Comment })
        .unwrap();
    executor.run_round().await.unwrap();
    assert_eq!(w.agent_replies(&case_id).await, 1);

    // The same answer again, left in flight by a crash before it was sent: the existing
    // identical comment is the first reply's, so this one must still be posted.
    in_flight_reply(&store, &case_id);
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.verified_already_applied, 0);
    assert_eq!(w.agent_replies(&case_id).await, 2, "not mistaken for the earlier identical reply");

    // And once more, but this time Salesforce applied it before the crash: not again.
    in_flight_reply(&store, &case_id);
    client
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": BODY, "IsPublished": true }))
        .await
        .unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.verified_already_applied, 1);
    assert_eq!(w.agent_replies(&case_id).await, 3, "applied before the crash, so not sent again");
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_cut_short_by_crashes_do_not_count_as_failed_attempts() {
    let w = World::new().await;
    let store = w.store();
    let case_id = w.id("case1");
    let mut executor = Executor::new(w.agent_client(), store.clone(), None, w.id("agent"));
    store
        .enqueue(Action::PostReply { case_id: case_id.clone(), body: BODY.into(), channel: ReplyChannel::Comment })
        .unwrap();
    // Every call is slow, and every round is cut short as a SIGKILL would cut it: the first
    // after the entry is marked in flight and before Salesforce answers, the later ones
    // while they check in Salesforce whether it landed.
    set_faults(&w.sim, json!({ "latency_ms": 400 })).await;
    for _ in 0..6 {
        let cut = tokio::time::timeout(std::time::Duration::from_millis(150), executor.run_round()).await;
        assert!(cut.is_err(), "the round was cut short");
        let entry = store.outbox().unwrap().pop().expect("still queued");
        assert!(matches!(entry.status, EntryStatus::InFlight { .. }) || entry.status == EntryStatus::Pending);
        assert_eq!(entry.attempts, 0, "a cut-short send is not a failed attempt");
        assert!(entry.not_before <= Utc::now(), "and it waits for no backoff");
    }
    set_faults(&w.sim, json!({})).await;
    // The interrupted send may have landed; the check finds it or sends it: the entry is
    // done without a sync error.
    executor.run_round().await.unwrap();
    assert_eq!(store.outbox_len(), 0);
    assert!(w.agent_replies(&case_id).await >= 1);
    assert!(store.sync_errors().unwrap().is_empty());
}

#[tokio::test]
async fn topics_are_created_when_missing_and_assigned_once() {
    let w = World::new().await;
    let store = w.store();
    let client = w.agent_client();
    let case_id = w.id("case1");
    client.create("Topic", &json!({ "Name": "Fire" })).await.unwrap();
    let mut executor = Executor::new(client.clone(), store.clone(), None, w.id("agent"));
    let topics = vec!["Fire".to_string(), "Printers".to_string()];
    store.enqueue(Action::AssignTopics { case_id: case_id.clone(), topics: topics.clone() }).unwrap();
    executor.run_round().await.unwrap();
    // Again: the assignments exist already, which is what was wanted.
    store.enqueue(Action::AssignTopics { case_id: case_id.clone(), topics }).unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!((report.done, report.failed), (1, 0));
    let soql = format!("SELECT Topic.Name FROM TopicAssignment WHERE EntityId = '{case_id}' ORDER BY Topic.Name");
    let rows: Vec<Value> = client.query(soql).collect_all().await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["Topic"]["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Fire", "Printers"]);
    let created: Vec<Value> = client.query("SELECT Id FROM Topic WHERE Name = 'Printers'").collect_all().await.unwrap();
    assert_eq!(created.len(), 1, "a missing topic is created once");
}

#[tokio::test]
async fn a_refused_action_becomes_a_sync_error_and_blocks_nothing_else() {
    let w = World::new().await;
    let store = w.store();
    let client = w.agent_client();
    let case_id = w.id("case1");
    let other = client.create("Case", &json!({ "Subject": "Other" })).await.unwrap();
    let mut executor = Executor::new(client.clone(), store.clone(), None, w.id("agent"));
    let mut bad = std::collections::BTreeMap::new();
    bad.insert("Product__c".to_string(), json!("Spaceship"));
    let mut good = std::collections::BTreeMap::new();
    good.insert("Product__c".to_string(), json!("Gripper"));
    store.enqueue(Action::UpdateFields { case_id: case_id.clone(), fields: bad }).unwrap();
    store.enqueue(Action::UpdateFields { case_id: other.clone(), fields: good }).unwrap();
    store
        .enqueue(Action::PostReply { case_id: other.clone(), body: "Done.".into(), channel: ReplyChannel::Comment })
        .unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!(
        (report.done, report.failed, report.api_calls),
        (2, 1, 2),
        "Case described once (the bad value is caught before sending), one composite call for the rest"
    );
    let updated: Value = client.get("Case", &other, Some(&["Product__c"])).await.unwrap();
    assert_eq!(updated["Product__c"], "Gripper");
    let errors = store.sync_errors().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].case_id.as_deref(), Some(case_id.as_str()));
    assert_eq!(errors[0].operation, "update_fields");
    assert_eq!(errors[0].code, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert!(errors[0].message.contains("Spaceship"), "{}", errors[0].message);
    assert!(matches!(errors[0].action, Some(Action::UpdateFields { .. })), "kept for a retry");
    assert_eq!(store.outbox_len(), 0);
    // The describe is read once: the next write costs one call.
    let mut more = std::collections::BTreeMap::new();
    more.insert("Product__c".to_string(), json!("Arm"));
    store.enqueue(Action::UpdateFields { case_id: other.clone(), fields: more }).unwrap();
    assert_eq!(executor.run_round().await.unwrap().api_calls, 1);
}

/// Where the seed fails, we don't: a mapped field that Salesforce would refuse (read-only,
/// unknown, too long, not in a restricted picklist, not an email) is left out of a case's
/// creation with a sync error each, and the case is still made with the rest; a create that
/// lacks a required field is refused before it is sent.
#[tokio::test]
async fn bad_fields_are_left_out_of_a_write_and_the_record_is_still_made() {
    let w = World::new().await;
    let store = w.store();
    let client = w.agent_client();
    let mut executor = Executor::new(client.clone(), store.clone(), None, w.id("agent"));
    let fields: std::collections::BTreeMap<String, Value> = [
        ("Subject", json!("Help with my order")),
        ("CaseNumber", json!("99999999")),
        ("IsClosed", json!(true)),
        ("Product__c", json!("Spaceship")),
        ("SuppliedEmail", json!("not an email")),
        ("Origin", json!("x".repeat(300))),
        ("No_Such_Field__c", json!("x")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    store
        .enqueue(Action::UpsertRecord {
            conversation_id: "msg_validation".into(),
            object: "Case".into(),
            key_field: "Casebridge_Conversation__c".into(),
            fields,
            key: None,
            update_only: false,
        })
        .unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.done, 1);
    let rows: Vec<Value> = client
        .query("SELECT Id, Subject, Product__c FROM Case WHERE Casebridge_Conversation__c = 'msg_validation'")
        .collect_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the case is made with the fields that were right");
    assert_eq!(rows[0]["Subject"], "Help with my order");
    let mut codes: Vec<String> = store.sync_errors().unwrap().into_iter().map(|e| e.code).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "INVALID_EMAIL_ADDRESS",
            "INVALID_FIELD",
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "STRING_TOO_LONG"
        ],
        "IsClosed and CaseNumber are read-only: one error names the first of them, then the same error grows"
    );

    // A Lead without LastName cannot be saved: refused whole, before sending.
    store
        .enqueue(Action::UpsertRecord {
            conversation_id: "msg_lead".into(),
            object: "Lead".into(),
            key_field: "Casebridge_Conversation__c".into(),
            fields: [("Company".to_string(), json!("Acme"))].into_iter().collect(),
            key: None,
            update_only: false,
        })
        .unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!((report.failed, report.api_calls), (1, 1), "only Lead's describe was read");
    let error = store.sync_errors().unwrap().into_iter().find(|e| e.code == "REQUIRED_FIELD_MISSING").unwrap();
    assert!(error.message.contains("LastName"), "{}", error.message);
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test]
async fn an_email_reply_without_smtp_is_a_sync_error_not_a_silent_drop() {
    let w = World::new().await;
    let store = w.store();
    let client = w.agent_client();
    let mut executor = Executor::new(client, store.clone(), None, w.id("agent"));
    store
        .enqueue(Action::SendEmail {
            case_id: w.id("case1"),
            email: casebridge::model::OutgoingEmail {
                from: "support@acme.example".into(),
                to: "jane@customer.example".into(),
                subject: "Re: fire".into(),
                text: "Out soon.".into(),
                html: None,
                message_id: "<m@acme.example>".into(),
                in_reply_to: None,
                references: vec![],
                smtp_accepted: false,
            },
        })
        .unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(store.sync_errors().unwrap()[0].code, "SMTP_NOT_CONFIGURED");
}

/// A later write to a record made by upsert (an `updateOnly` update) waits while the create
/// it follows waits to be retried: sent first, it would find nothing and fail for good.
#[tokio::test]
async fn an_update_never_overtakes_the_create_it_follows() {
    let w = World::new().await;
    let store = w.store();
    let client = w.agent_client();
    let mut executor = Executor::new(client.clone(), store.clone(), None, w.id("agent"));
    let lead = |fields: Vec<(&str, Value)>, update_only: bool| Action::UpsertRecord {
        conversation_id: "msg_order".into(),
        object: "Lead".into(),
        key_field: "Casebridge_Conversation__c".into(),
        fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        key: None,
        update_only,
    };
    store.enqueue(lead(vec![("LastName", json!("Doe")), ("Company", json!("Acme"))], false)).unwrap();
    let mut waiting = store.outbox().unwrap().remove(0);
    waiting.not_before = chrono::Utc::now() + chrono::Duration::hours(1);
    store.update_entries(&[waiting.clone()]).unwrap();
    store.enqueue(lead(vec![("Rating", json!("Warm"))], true)).unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!((report.done, report.failed), (0, 0), "the update waits for its create");
    assert!(store.sync_errors().unwrap().is_empty());

    waiting.not_before = chrono::Utc::now();
    store.update_entries(&[waiting]).unwrap();
    executor.run_round().await.unwrap();
    executor.run_round().await.unwrap();
    assert_eq!(store.outbox_len(), 0);
    let rows: Vec<Value> = client
        .query("SELECT Rating, LastName FROM Lead WHERE Casebridge_Conversation__c = 'msg_order'")
        .collect_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0]["LastName"], &rows[0]["Rating"]), (&json!("Doe"), &json!("Warm")));
}
