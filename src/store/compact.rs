//! Compaction: gives back to the file system the space a retention pass freed. redb
//! reuses freed pages for new writes but keeps the file's length; `casebridge compact`,
//! run while the daemon is stopped, moves the store's pages to the front of its file and
//! cuts the free end off, in place. Each step is a commit of its own, so a compaction cut
//! short (a crash, a power cut) leaves a whole store, only less compacted.

use std::path::Path;

use super::{CACHE_BYTES, Result, Store, StoreError, kv};

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// The store's size on disk before, and after (bytes).
    pub before: u64,
    pub after: u64,
    /// How many keys the store holds (every one kept).
    pub keys: u64,
}

impl Store {
    /// Compacts the store at `path`, which no daemon may have open.
    pub fn compact(path: &Path) -> Result<CompactReport> {
        let store = Store::open_existing(path)?;
        let mut keys = 0u64;
        for name in store.db.tree_names()? {
            keys += store.db.len_of(&name)? as u64;
        }
        let file = store.file.clone();
        drop(store);
        let (before, after) = kv::Db::compact_file(&file, CACHE_BYTES as usize)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), reason: source.to_string() })?;
        Ok(CompactReport { before, after, keys })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::channels::cases::build::{Authors, from_case_row};
    use crate::model::{Conversation, ConversationState};
    use crate::store::Cursor;
    use crate::store::tests::reopen;

    fn closed(i: usize, stamp: &str) -> Conversation {
        let row = serde_json::json!({
            "Id": format!("500{i:012}AAA"), "CaseNumber": i.to_string(), "Subject": "s", "Description": "words ".repeat(700),
            "CreatedDate": stamp, "SystemModstamp": stamp, "OwnerId": "005000000000001AAA"
        });
        let mut conversation = from_case_row(&row, &Authors { agent_user_id: "005000000000001AAA" }).unwrap();
        conversation.state = ConversationState::Closed;
        conversation
    }

    fn compact(path: &Path) -> CompactReport {
        Store::compact(path).unwrap()
    }

    #[test]
    fn compaction_gives_back_what_pruning_freed_and_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = Store::open(&path).unwrap();
        let old: Vec<Conversation> = (0..3_000).map(|i| closed(i, "2024-01-01T10:00:00.000+0000")).collect();
        store.import(&old).unwrap();
        let recent = closed(9_999, &Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
        store.commit(&recent, Vec::new()).unwrap();
        let cursor = Cursor { modstamp: Utc::now() };
        store.set_cursor(cursor).unwrap();
        let reply = |body: &str| crate::model::Action::PostReply {
            case_id: recent.id.clone(),
            body: body.into(),
            channel: crate::model::ReplyChannel::Comment,
        };
        let pending = store.enqueue(reply("queued before")).unwrap();
        let cutoff = Utc::now() - chrono::Duration::days(30);
        while store.prune(cutoff, cutoff, 1_000).unwrap().more {}
        store.flush().unwrap();
        let keys_before: u64 = store.db.tree_names().unwrap().iter().map(|n| store.db.len_of(n).unwrap() as u64).sum();
        drop(store);

        let report = compact(&path);
        assert!(report.after * 3 < report.before, "{report:?}");
        let store = reopen(&path);
        assert_eq!(store.conversation(&recent.id).unwrap().as_ref(), Some(&recent));
        assert_eq!(store.conversation_count(), 1);
        assert_eq!(store.cursor().unwrap(), Some(cursor));
        assert!(store.prune_mark(&old[7].id).unwrap().is_some(), "what exactly-once needs is copied");
        // The copy's ids start above the original's: nothing queued is overwritten.
        let later = store.enqueue(reply("queued after")).unwrap();
        assert!(later > pending, "{later} after {pending}");
        assert_eq!(store.outbox_len(), 2);
        assert_eq!(report.keys, keys_before, "every key kept");
    }

    #[test]
    fn a_store_in_use_is_not_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = Store::open(&path).unwrap();
        store.commit(&closed(1, "2026-01-01T10:00:00.000+0000"), Vec::new()).unwrap();
        let error = Store::compact(&path).unwrap_err().to_string();
        assert!(error.contains("another casebridge"), "{error}");
        assert_eq!(store.conversation_count(), 1);
    }

    #[test]
    fn there_is_nothing_to_compact_where_no_store_is() {
        let dir = tempfile::tempdir().unwrap();
        let error = Store::compact(&dir.path().join("none")).unwrap_err().to_string();
        assert!(error.contains("there is no store"), "{error}");
        assert!(!dir.path().join("none").exists());
    }
}
