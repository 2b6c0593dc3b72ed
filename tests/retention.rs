//! Retention through the daemon, on the simulator: a conversation inactive past
//! `retention.conversations` is pruned with everything that belongs to it and leaves a
//! mark; when its case comes back, only what the customer wrote since is answered, and a
//! reply left in flight by a crash is checked against the posts made since the mark (the
//! old identical reply does not count). What is pending is never pruned, and the status
//! says what the store takes and what retention frees.

mod common;

use casebridge::daemon::Daemon;
use casebridge::model::{Action, ReplyChannel};
use casebridge::store::{EntryStatus, OutboxScan};
use common::*;
use serde_json::json;

const GRIPPER: &str = "My gripper drifts after every restart, how do I recalibrate it?";

async fn daemon(w: &World) -> Daemon {
    w.daemon_with_rules(load_rules(&root().join("rules"))).await
}

/// Moves a conversation's last activity `days` into the past, as if that much time had
/// passed since.
fn age(d: &Daemon, id: &str, days: i64) {
    let mut conv = d.store().conversation(id).unwrap().unwrap();
    conv.modstamp -= chrono::Duration::days(days);
    d.store().commit(&conv, Vec::new()).unwrap();
}

/// The customer writes a new question on the case, through the portal.
async fn customer_asks_about_firmware(w: &World, case_id: &str) {
    let text = "The firmware update stopped and the controller shows error E42.";
    let comment = json!({ "ParentId": case_id, "IsPublished": true, "CommentBody": text });
    w.customer().create("CaseComment", &comment).await.unwrap();
}

async fn close(w: &World, case_id: &str) {
    w.admin.update("Case", case_id, &json!({ "Status": "Closed" })).await.unwrap();
}

#[tokio::test]
async fn a_pruned_case_that_comes_back_is_answered_once_and_its_history_never_again() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    let other = w.case_for_agent(json!({ "Subject": "Gripper too", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    assert_eq!((w.agent_replies(&case).await, w.agent_replies(&other).await), (1, 1));
    close(&w, &case).await;
    d.cycle().await.unwrap();
    let count = d.store().conversation_count();

    // 200 days on: the closed conversation goes; the one awaiting its customer stays.
    age(&d, &case, 200);
    age(&d, &other, 200);
    let report = d.prune().await.unwrap();
    assert_eq!((report.pruned, report.kept_pending), (1, 1), "{report:?}");
    assert!(d.store().conversation(&case).unwrap().is_none());
    assert!(d.store().prune_mark(&case).unwrap().is_some(), "it leaves its mark");
    assert_eq!(d.store().conversation_count(), count - 1);
    let status = d.status(&Default::default());
    let store = status.store.unwrap();
    assert!(store.bytes_on_disk > 0);
    assert_eq!(store.keep_conversations, "180d");
    assert_eq!(store.last_prune.unwrap().pruned, 1);
    assert!(d.status(&Default::default()).render().contains("keeps conversations 180d"));

    // The case is opened again: nothing new from the customer, so nothing to answer (its
    // history was dealt with before the prune).
    w.admin.update("Case", &case, &json!({ "Status": "New" })).await.unwrap();
    d.cycle().await.unwrap();
    assert_eq!(w.agent_replies(&case).await, 1, "the old question is not answered again");
    // The customer writes again: only the new question is answered.
    customer_asks_about_firmware(&w, &case).await;
    d.cycle().await.unwrap();
    assert_eq!(w.agent_replies(&case).await, 2, "{:?}", w.agent_comment_bodies(&case).await);
    let conv = d.store().conversation(&case).unwrap().unwrap();
    assert_eq!(conv.decisions.len(), 1, "one decision: the new question's");
}

#[tokio::test]
async fn a_reply_in_flight_after_a_prune_is_checked_against_the_posts_made_since() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    let first = w.agent_comment_bodies(&case).await.remove(0);
    close(&w, &case).await;
    d.cycle().await.unwrap();
    age(&d, &case, 200);
    assert_eq!(d.prune().await.unwrap().pruned, 1);

    // The case comes back and the same reply is decided again; the daemon stops after the
    // composite call left, before it was confirmed: the entry is in flight, and the post
    // never reached Salesforce.
    w.admin.update("Case", &case, &json!({ "Status": "New" })).await.unwrap();
    let mut conv = d.store().conversation(&case).unwrap().unwrap_or_else(|| {
        casebridge::channels::cases::build::from_case_row(
            &json!({ "Id": case, "CaseNumber": "1", "Subject": "Gripper", "CreatedDate": "2026-01-01T10:00:00.000+0000",
                     "SystemModstamp": "2026-01-01T10:00:00.000+0000", "OwnerId": w.id("agent") }),
            &casebridge::channels::cases::build::Authors { agent_user_id: &w.id("agent") },
        )
        .unwrap()
    });
    conv.modstamp = chrono::Utc::now();
    let reply = Action::PostReply { case_id: case.clone(), body: first.clone(), channel: ReplyChannel::Comment };
    d.store().commit(&conv, vec![reply]).unwrap();
    let mut entries = d.store().due_entries(&mut OutboxScan::default(), chrono::Utc::now(), 10).unwrap();
    for e in entries.iter_mut() {
        e.status = EntryStatus::InFlight { since: chrono::Utc::now() };
    }
    d.store().update_entries(&entries).unwrap();

    d.cycle().await.unwrap();
    let same = w.agent_comment_bodies(&case).await.into_iter().filter(|b| *b == first).count();
    assert_eq!(same, 2, "the old identical reply is history: the one in flight is sent");
    assert_eq!(d.store().outbox_len(), 0);
}

#[test]
fn retention_settings_out_of_range_are_refused_naming_the_setting() {
    let minimal = "org:\n  auth: {grant: refresh_token, client_id: a, refresh_token: {env: X}}\nagent_user: a\nhandover: {default_target: q}\n";
    let cases = [
        ("retention: {conversations: 0s}\n", "retention.conversations: from 1s to 3650d"),
        (
            "retention: {conversations: 40000d}\n",
            "retention.conversations: \"40000d\" is longer than any setting allows",
        ),
        ("retention: {conversations: 30d, traces: 60d}\n", "retention.traces: from 1s to 30d"),
        ("retention: {traces: soon}\n", "retention.traces"),
        ("retention: {keep: 30d}\n", "keep"),
    ];
    for (snippet, expected) in cases {
        let text = format!("{minimal}{snippet}");
        let error = casebridge::config::Config::parse(&text, "c.yaml", &[]).unwrap_err().to_string();
        assert!(error.contains(expected), "{snippet}: {error}");
    }
    let text = format!("{minimal}retention: {{conversations: 365d, traces: 7d}}\n");
    let config = casebridge::config::Config::parse(&text, "c.yaml", &[]).unwrap();
    assert_eq!(config.retention.traces, std::time::Duration::from_secs(7 * 86_400));
}

#[tokio::test]
async fn a_message_written_just_before_the_prune_is_still_answered() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let case = w.case_for_agent(json!({ "Subject": "Gripper", "Description": GRIPPER })).await;
    d.cycle().await.unwrap();
    close(&w, &case).await;
    d.cycle().await.unwrap();
    age(&d, &case, 200);
    // The customer writes, and the case is opened again, between two polls: the prune comes
    // first.
    w.admin.update("Case", &case, &json!({ "Status": "New" })).await.unwrap();
    customer_asks_about_firmware(&w, &case).await;
    assert_eq!(d.prune().await.unwrap().pruned, 1);
    d.cycle().await.unwrap();
    assert_eq!(w.agent_replies(&case).await, 2, "written after what it had seen: answered");
}
