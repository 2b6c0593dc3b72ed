//! The outbox executor after a crash: entries left in flight are checked in Salesforce
//! before anything is sent again.

mod common;

use casebridge::act::executor::Executor;
use casebridge::act::{Action, ReplyChannel};
use casebridge::salesforce::Client;
use casebridge::sim::SimOptions;
use casebridge::store::{EntryStatus, Store};
use chrono::Utc;
use common::*;
use serde_json::{Value, json};

const BODY: &str = "Power-cycle the controller and run the update again over USB.";

async fn agent_comments(client: &Client, case_id: &str) -> usize {
    let me = client.session().await.unwrap().user_id().unwrap().to_string();
    let soql = format!(
        "SELECT Id FROM CaseComment WHERE ParentId = '{case_id}' AND IsPublished = true AND CreatedById = '{me}'"
    );
    client.query::<Value>(soql).collect_all().await.unwrap().len()
}

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
    let sim = start_sim(SimOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let client = agent_client(&sim);
    let agent = sim.id_of("agent").unwrap();
    let case_id = sim.id_of("case1").unwrap();
    let mut executor = Executor::new(client.clone(), store.clone(), None, agent);

    // The first reply goes out normally and is confirmed.
    store
        .enqueue(Action::PostReply { case_id: case_id.clone(), body: BODY.into(), channel: ReplyChannel::Comment })
        .unwrap();
    executor.run_round().await.unwrap();
    assert_eq!(agent_comments(&client, &case_id).await, 1);

    // The same answer again, left in flight by a crash before it was sent: the existing
    // identical comment is the first reply's, so this one must still be posted.
    in_flight_reply(&store, &case_id);
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.verified_already_applied, 0);
    assert_eq!(agent_comments(&client, &case_id).await, 2, "not mistaken for the earlier identical reply");

    // And once more, but this time Salesforce applied it before the crash: not again.
    in_flight_reply(&store, &case_id);
    client
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": BODY, "IsPublished": true }))
        .await
        .unwrap();
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.verified_already_applied, 1);
    assert_eq!(agent_comments(&client, &case_id).await, 3, "applied before the crash, so not sent again");
    assert_eq!(store.outbox_len(), 0);
}
