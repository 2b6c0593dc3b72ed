//! The store's indexes and counts, through its public methods.

use super::*;
use crate::channels::cases::build::{Authors, from_case_row};
use crate::model::ConversationState;

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
    let reopened = Store::open(&dir.path().join("s")).unwrap();
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
    let store = Store::open(&path).unwrap();
    assert_eq!(store.due_retries(now).unwrap(), vec![case.id.clone()], "no chat among the cases");
    assert_eq!(store.due_chats(now).unwrap(), vec!["msg_old".to_string()]);
}
