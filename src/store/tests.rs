//! The store's indexes and counts, through its public methods.

use super::*;
use crate::channels::cases::build::{Authors, from_case_row};
use crate::model::{Action, ConversationState};

/// Opens a store again: the one just dropped released its file at once.
pub(super) fn reopen(path: &std::path::Path) -> Store {
    Store::open(path).unwrap()
}

fn conversation(id: &str, stamp: &str) -> Conversation {
    let row = serde_json::json!({
        "Id": id, "CaseNumber": id, "Subject": "s", "CreatedDate": stamp, "SystemModstamp": stamp, "OwnerId": "005000000000001AAA"
    });
    from_case_row(&row, &Authors { agent_user_id: "005000000000001AAA" }).unwrap()
}

#[test]
fn recent_conversations_come_newest_first_filtered_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let mut a = conversation("500000000000001AAA", "2026-01-01T10:00:00.000+0000");
    let b = conversation("500000000000002AAA", "2026-01-01T11:00:00.000+0000");
    let mut c = conversation("500000000000003AAA", "2026-01-01T12:00:00.000+0000");
    c.state = ConversationState::Closed;
    for conv in [&a, &b, &c] {
        store.commit(conv, Vec::new()).unwrap();
    }
    let ids = |list: Vec<Conversation>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let (page, total) = store.recent_conversations(None, 0, 2).unwrap();
    assert_eq!((ids(page), total), (vec![c.id.clone(), b.id.clone()], 3));
    let (page, total) = store.recent_conversations(Some("open"), 1, 5).unwrap();
    assert_eq!((ids(page), total), (vec![a.id.clone()], 2));
    // An update moves the conversation, without leaving its old place behind.
    a.modstamp = "2026-01-01T13:00:00.000+0000".parse::<chrono::DateTime<chrono::FixedOffset>>().unwrap().into();
    store.commit(&a, Vec::new()).unwrap();
    let (page, total) = store.recent_conversations(None, 0, 10).unwrap();
    assert_eq!((ids(page)[0].clone(), total), (a.id.clone(), 3));

    // A store written before the index existed gets one when opened.
    store.activity.clear().unwrap();
    drop(store);
    let reopened = reopen(&dir.path().join("s"));
    assert_eq!(reopened.recent_conversations(None, 0, 10).unwrap().1, 3);
}

#[test]
fn chats_and_cases_are_due_in_queues_of_their_own_and_older_stores_are_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    let now = chrono::Utc::now();
    let mut case = conversation("500000000000001AAA", "2026-01-01T10:00:00.000+0000");
    case.retry_at = Some(now);
    let mut chat = conversation("msg_chat1", "2026-01-01T10:00:00.000+0000");
    chat.channel = crate::model::Channel::Messenger;
    chat.retry_at = Some(now);
    store.commit(&case, Vec::new()).unwrap();
    store.commit(&chat, Vec::new()).unwrap();
    assert_eq!(store.due_retries(now).unwrap(), vec![case.id.clone()]);
    assert_eq!(store.due_chats(now).unwrap(), vec![chat.id.clone()]);
    chat.retry_at = None;
    store.commit(&chat, Vec::new()).unwrap();
    assert!(store.due_chats(now).unwrap().is_empty(), "answered: no longer due");

    // A store from before the chats' queue kept a chat among the cases' retries.
    store.retries.insert(b"msg_old", serde_json::to_vec(&now).unwrap()).unwrap();
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.due_retries(now).unwrap(), vec![case.id.clone()], "no chat among the cases");
    assert_eq!(store.due_chats(now).unwrap(), vec!["msg_old".to_string()]);
}

#[test]
fn opening_reads_no_conversation_and_the_counts_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    for n in 0..30 {
        let fields = [("Status".to_string(), serde_json::json!("Working"))].into();
        let conv = conversation(&format!("5000000000000{n:02}AAA"), "2026-01-01T10:00:00.000+0000");
        store.commit(&conv, vec![Action::UpdateFields { case_id: conv.id.clone(), fields }]).unwrap();
    }
    // A second commit of the same conversation counts it once.
    store.commit(&conversation("500000000000000AAA", "2026-01-01T10:00:00.000+0000"), Vec::new()).unwrap();
    assert_eq!((store.conversation_count(), store.outbox_len()), (30, 30));
    let first = store.due_entries(&mut OutboxScan::default(), Utc::now(), 10).unwrap();
    store.complete_entries(&first.iter().map(|e| (e.id, None)).collect::<Vec<_>>()).unwrap();
    store.remove_entries(&[first[0].id, u64::MAX]).unwrap();
    assert_eq!(store.outbox_len(), 20, "removing what is gone already changes nothing");
    drop(store);

    let store = reopen(&path);
    assert_eq!((store.conversation_count(), store.outbox_len(), store.conversations_read()), (30, 20, 0));
    // A store from before the count was kept is counted once, by key.
    store.meta.remove(COUNT_KEY).unwrap();
    drop(store);
    let store = reopen(&path);
    assert_eq!((store.conversation_count(), store.conversations_read()), (30, 0));
    assert!(store.meta.get(COUNT_KEY).unwrap().is_some(), "and kept from then on");
}

fn upsert(conversation_id: &str) -> Action {
    Action::UpsertRecord {
        conversation_id: conversation_id.into(),
        object: "Lead".into(),
        key_field: "Casebridge_Conversation__c".into(),
        fields: Default::default(),
        key: None,
        update_only: false,
    }
}

#[test]
fn the_executor_reads_only_what_is_due_and_an_update_waits_for_its_create() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let later = Utc::now() + chrono::Duration::hours(1);
    // 500 entries backing off (as after an outage), and three due.
    let mut waiting = Vec::new();
    for n in 0..500 {
        let id = store.enqueue(Action::UpdateFields { case_id: format!("c{n}"), fields: Default::default() }).unwrap();
        waiting.push(id);
    }
    let mut entries = store.due_entries(&mut OutboxScan::default(), Utc::now(), 1000).unwrap();
    for e in entries.iter_mut() {
        e.not_before = later;
    }
    store.update_entries(&entries).unwrap();
    let create = store.enqueue(upsert("msg_a")).unwrap();
    let update = store.enqueue(upsert("msg_a")).unwrap();
    let other = store.enqueue(upsert("msg_b")).unwrap();
    let mut scan = OutboxScan::default();
    let due = store.due_entries(&mut scan, Utc::now(), 200).unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![create, other], "the update waits");
    assert!(scan.finished());
    assert_eq!(scan.read, 3, "entries backing off are not read");

    // The create backs off: its update still waits, due or not.
    let mut backing_off = due[0].clone();
    backing_off.not_before = later;
    store.update_entries(&[backing_off]).unwrap();
    let due = store.due_entries(&mut OutboxScan::default(), Utc::now(), 200).unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![other]);
    // Done: the update is next.
    store.complete_entries(&[(create, None), (other, None)]).unwrap();
    let due = store.due_entries(&mut OutboxScan::default(), Utc::now(), 200).unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![update]);

    // Batches: a scan goes on from where the last batch ended.
    let mut scan = OutboxScan::default();
    let all_due = store.due_entries(&mut scan, later + chrono::Duration::seconds(1), 200).unwrap();
    assert_eq!((all_due.len(), scan.finished()), (200, false));
    let rest = store.due_entries(&mut scan, later + chrono::Duration::seconds(1), 1000).unwrap();
    assert_eq!((rest.len(), scan.finished()), (301, true));
}

#[test]
fn an_entry_this_build_cannot_read_is_set_aside_whole_and_the_rest_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    let ids: Vec<u64> = (0..3).map(|n| store.enqueue(upsert(&format!("msg_{n}"))).unwrap()).collect();
    // What a newer build's action kind looks like to this one.
    let future = br#"{"id":0,"action":{"kind":"send_sms","to":"+1"},"status":{"status":"pending"}}"#;
    store.outbox.insert(ids[1].to_be_bytes(), future.as_slice()).unwrap();
    let due = store.due_entries(&mut OutboxScan::default(), Utc::now(), 10).unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[0], ids[2]], "the others are sent");
    assert_eq!(store.quarantined().unwrap(), vec![(ids[1], future.to_vec())], "kept whole");
    assert_eq!(store.outbox_len(), 2);
    let errors = store.sync_errors().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "UNREADABLE_ENTRY");
    assert!(errors[0].message.contains(&format!("Outbox entry {}", ids[1])), "{}", errors[0].message);
    // One queued before this build's open (its indexes rebuilt then) is set aside there.
    store.outbox.insert(ids[2].to_be_bytes(), b"\xff not json".as_slice()).unwrap();
    store.outbox_cases.clear().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.quarantined().unwrap().len(), 2);
    assert_eq!(store.outbox().unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(store.outbox_len(), 1);
}

#[test]
fn a_conversation_active_again_since_the_pass_read_the_index_is_not_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let mut closed = conversation("500000000000009AAA", "2025-01-01T10:00:00.000+0000");
    closed.state = ConversationState::Closed;
    store.commit(&closed, Vec::new()).unwrap();
    let (old_key, old_value) = store.activity.iter().next().unwrap().unwrap();
    // The customer wrote since: the pass works from the index entry it read before.
    closed.modstamp = Utc::now();
    store.commit(&closed, Vec::new()).unwrap();
    store.activity.insert(&old_key, &old_value).unwrap();
    let cutoff = Utc::now() - chrono::Duration::days(30);
    let report = store.prune(cutoff, cutoff, 100).unwrap();
    assert_eq!(report.pruned, 0, "{report:?}");
    assert_eq!(store.conversation(&closed.id).unwrap().as_ref(), Some(&closed));
}

#[test]
fn pruning_takes_a_conversation_with_every_entry_of_it_and_keeps_what_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let old = "2025-01-01T10:00:00.000+0000";
    let mut closed = conversation("500000000000001AAA", old);
    closed.state = ConversationState::Closed;
    let reply = Action::PostReply {
        case_id: closed.id.clone(),
        body: "hi".into(),
        channel: crate::model::ReplyChannel::Comment,
    };
    store.commit(&closed, vec![reply]).unwrap();
    let sent = store.due_entries(&mut OutboxScan::default(), Utc::now(), 10).unwrap();
    store.complete_entries(&sent.iter().map(|e| (e.id, e.action.confirmation_key())).collect::<Vec<_>>()).unwrap();
    let key = sent[0].action.confirmation_key().unwrap();
    assert_eq!(store.confirmed_count(&key).unwrap(), 1);
    store.record_error(SyncError::new(Some(&closed.id), "topics", "INVALID_FIELD", "old")).unwrap();
    store.record_error(SyncError::new(None, "poll", "SERVER_UNAVAILABLE", "org down")).unwrap();
    // A chat that claimed its visitor's email, handed over.
    let mut chat = conversation("msg_old", old);
    chat.channel = crate::model::Channel::Messenger;
    chat.state = ConversationState::HandedOver { target_id: "00G".into(), reason: "r".into() };
    let visitor = crate::model::visitor::Visitor { email: Some("Ann@Example.com".into()), ..Default::default() };
    chat.messenger = Some(crate::model::visitor::MessengerInfo {
        visitor,
        lead: crate::model::ChatLead::Made { task_pending: false },
        ..Default::default()
    });
    store.commit(&chat, Vec::new()).unwrap();
    // Pending: an action waiting, a retry.
    let waiting = conversation("500000000000002AAA", old);
    store
        .commit(&waiting, vec![Action::UpdateFields { case_id: waiting.id.clone(), fields: Default::default() }])
        .unwrap();
    let mut retrying = conversation("500000000000003AAA", old);
    retrying.retry_at = Some(Utc::now());
    store.commit(&retrying, Vec::new()).unwrap();
    let recent = conversation("500000000000004AAA", "2026-11-30T10:00:00.000+0000");
    store.commit(&recent, Vec::new()).unwrap();
    assert_eq!(store.visitor_lead("ann@example.com").unwrap().as_deref(), Some("msg_old"));

    let cutoff = "2026-06-01T00:00:00Z".parse().unwrap();
    let report = store.prune(cutoff, cutoff, 100).unwrap();
    assert_eq!((report.pruned, report.kept_pending, report.more), (2, 2, false), "{report:?}");
    for gone in [&closed.id, &chat.id] {
        assert!(store.conversation(gone).unwrap().is_none());
        assert!(store.prune_mark(gone).unwrap().is_some());
        assert!(store.activity_key.get(gone).unwrap().is_none());
    }
    assert_eq!(store.activity.len().unwrap(), 3, "the activity index holds the three kept");
    assert_eq!(store.confirmed_count(&key).unwrap(), 0, "its confirmations went with it");
    let errors: Vec<String> = store.sync_errors().unwrap().into_iter().map(|e| e.operation).collect();
    assert_eq!((errors, store.sync_error_count()), (vec!["poll".to_string()], 1), "its sync errors too");
    assert!(store.chats_with_cases().unwrap().is_empty());
    assert_eq!(store.visitor_lead("ann@example.com").unwrap(), None, "its email is free again");
    assert_eq!(store.conversation_count(), 3);
    assert_eq!(store.due_retries(Utc::now()).unwrap(), vec![retrying.id.clone()]);
    drop(store);
    let store = reopen(&dir.path().join("s"));
    assert_eq!(store.conversation_count(), 3, "the kept count went down with it");
}

#[test]
fn traces_are_cleared_once_past_their_window_and_the_decisions_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let mut conv = conversation("500000000000001AAA", "2026-01-01T10:00:00.000+0000");
    let mut decision = crate::model::Decision::empty("rules");
    decision.reply = Some("hello".into());
    decision.trace.record(crate::model::TraceStage::Agent, "kb", true, "answered", std::time::Instant::now());
    conv.push_decision(decision);
    store.commit(&conv, Vec::new()).unwrap();
    let far_past = "2020-01-01T00:00:00Z".parse().unwrap();
    let report = store.prune(far_past, "2026-06-01T00:00:00Z".parse().unwrap(), 10).unwrap();
    assert_eq!((report.pruned, report.traces_cleared), (0, 1));
    let kept = store.conversation(&conv.id).unwrap().unwrap();
    assert_eq!(kept.decisions[0].reply.as_deref(), Some("hello"), "the decision stays");
    assert!(kept.decisions[0].trace.0.is_empty());
    // The next pass starts where this one ended: nothing to read again.
    let report = store.prune(far_past, "2026-06-01T00:00:00Z".parse().unwrap(), 10).unwrap();
    assert_eq!(report.traces_cleared, 0);
}

#[test]
fn a_repeated_sync_error_is_found_by_its_key_and_the_count_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    let first = store.record_error(SyncError::new(Some("500A"), "post_reply", "FIELD_X", "one")).unwrap();
    let again = store.record_error(SyncError::new(Some("500A"), "post_reply", "FIELD_X", "two")).unwrap();
    let other = store.record_error(SyncError::new(Some("500B"), "post_reply", "FIELD_X", "three")).unwrap();
    assert_eq!(first, again, "a repeat counts on the first");
    assert_ne!(first, other);
    assert_eq!(store.sync_error_count(), 2);
    let kept = store.sync_errors().unwrap().into_iter().find(|e| e.id == first).unwrap();
    assert_eq!((kept.attempts, kept.message.as_str(), kept.history.len()), (2, "two", 1));
    // Recorded again by its id with another code: the same error, found under its new key.
    let mut retried = SyncError::new(Some("500A"), "post_reply", "FIELD_Y", "four");
    retried.id = first;
    store.record_error(retried).unwrap();
    let repeat = store.record_error(SyncError::new(Some("500A"), "post_reply", "FIELD_Y", "five")).unwrap();
    assert_eq!((repeat, store.sync_error_count()), (first, 2));
    // A store from before the index finds its repeats after opening.
    store.error_keys.clear().unwrap();
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.sync_error_count(), 2);
    let repeat = store.record_error(SyncError::new(Some("500B"), "post_reply", "FIELD_X", "six")).unwrap();
    assert_eq!((repeat, store.sync_error_count()), (other, 2));
    // Dismissed: gone, and the next failure is a new error.
    store.remove_error(other).unwrap();
    assert_eq!(store.sync_error_count(), 1);
    let fresh = store.record_error(SyncError::new(Some("500B"), "post_reply", "FIELD_X", "seven")).unwrap();
    assert_ne!(fresh, other);
    assert_eq!(store.sync_error_count(), 2);
}

#[test]
fn an_action_queued_for_an_inactive_conversation_keeps_it_until_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    let mut closed = conversation("500000000000001AAA", "2025-01-01T10:00:00.000+0000");
    closed.state = ConversationState::Closed;
    store.commit(&closed, Vec::new()).unwrap();
    // An admin's retry, queued outside any decision.
    let retry = store.enqueue(Action::UpdateFields { case_id: closed.id.clone(), fields: Default::default() }).unwrap();
    let cutoff = "2026-06-01T00:00:00Z".parse().unwrap();
    let report = store.prune(cutoff, cutoff, 10).unwrap();
    assert_eq!((report.pruned, report.kept_pending), (0, 1));
    // The per-case count is rebuilt when it does not match the outbox.
    store.outbox_cases.clear().unwrap();
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.prune(cutoff, cutoff, 10).unwrap().pruned, 0, "still queued after a reopen");
    store.complete_entries(&[(retry, None)]).unwrap();
    assert_eq!(store.prune(cutoff, cutoff, 10).unwrap().pruned, 1, "sent: now it goes");
}

#[test]
fn a_damaged_store_file_or_a_store_path_that_is_a_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join(migrate::ENGINE_FILE), vec![0xAB; 64 * 1024]).unwrap();
    let error = Store::open(&path).err().expect("refused").to_string();
    assert!(error.contains("cannot open the store at") && error.contains(&path.display().to_string()), "{error}");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a store").unwrap();
    let error = Store::open(&file).err().expect("refused").to_string();
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a store", "nothing written over it");
}
