//! Compaction: a copy of the store holding only what it holds now, swapped in for the
//! original. Sled reuses the space a retention pass frees for new writes but never gives
//! it back to the file system; `casebridge compact`, run while the daemon is stopped, does.
//!
//! The copy is made beside the store (`<store>.compacting`) and checked against the
//! original (sled's checksum of every key and value) before the swap: the original is
//! renamed to `<store>.before-compaction`, the copy into its place, and the original
//! removed. A crash between the two renames leaves no store at the path; opening the store
//! then puts the original back, so nothing is ever lost to an interrupted compaction.

use std::path::Path;

use super::{CACHE_BYTES, Result, Store, StoreError, sidecar};

/// Where a compacted store keeps the floor its ids start above, in `meta`.
const ID_FLOOR_KEY: &[u8] = b"id_floor";

/// Bytes copied between flushes of the copy (see `FLUSH_EVERY` on sled#1412).
const COPY_FLUSH_BYTES: usize = 512 * 1024;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// The store's bytes on disk before.
    pub before: u64,
    /// Its bytes on disk after.
    pub after: u64,
    /// Keys copied, every tree counted.
    pub keys: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// Flushes a folder's entries (its renames) to disk.
fn sync_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_error(dir))?;
    }
    Ok(())
}

/// Puts back the original of a compaction interrupted between its renames: the store's
/// path is missing and the original waits beside it. Called before every open.
pub(super) fn restore_interrupted(path: &Path) -> Result<()> {
    let original = sidecar(path, "before-compaction");
    if !path.exists() && original.is_dir() {
        tracing::warn!(store = %path.display(), "A compaction was interrupted; the store is put back as it was.");
        std::fs::rename(&original, path).map_err(io_error(path))?;
        sync_parent(path)?;
    } else if path.exists() && original.is_dir() {
        // Stopped after the swap, before the original was removed: the store in place is the
        // checked copy, and the original only takes the space the compaction gave back.
        tracing::warn!(store = %path.display(), "A compaction stopped before removing the original; removing it now.");
        std::fs::remove_dir_all(&original).map_err(io_error(&original))?;
    }
    Ok(())
}

impl Store {
    /// A new id, above every id this store (or the one it was compacted from) gave.
    pub(super) fn next_id(&self) -> Result<u64> {
        Ok(self.id_floor + self.db.generate_id()?)
    }

    /// Reads the id floor a compaction left.
    pub(super) fn with_id_floor(mut self) -> Result<Store> {
        let floor = self.meta.get(ID_FLOOR_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok());
        self.id_floor = floor.map_or(0, u64::from_be_bytes);
        Ok(self)
    }

    /// Compacts the store at `path`, which must exist and not be open anywhere (the
    /// daemon stopped). Returns its size before and after.
    pub fn compact(path: &Path) -> Result<CompactReport> {
        let original = Store::open_existing(path)?;
        let before = original.size_on_disk()?;
        let copy_path = sidecar(path, "compacting");
        if copy_path.exists() {
            // What an interrupted compaction left: the original is whole, the copy is not.
            std::fs::remove_dir_all(&copy_path).map_err(io_error(&copy_path))?;
        }
        let copy = sled::Config::new()
            .path(&copy_path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|source| StoreError::Open { path: copy_path.display().to_string(), source })?;
        let mut keys = 0u64;
        let mut unflushed = 0usize;
        for name in original.db.tree_names() {
            let from = original.db.open_tree(&name)?;
            let to = copy.open_tree(&name)?;
            for item in from.iter() {
                let (key, value) = item?;
                unflushed += key.len() + value.len();
                to.insert(key, value)?;
                keys += 1;
                if unflushed >= COPY_FLUSH_BYTES {
                    copy.flush()?;
                    unflushed = 0;
                }
            }
        }
        copy.flush()?;
        let checksums_match = copy.checksum()? == original.db.checksum()?;
        // The copy's id counter starts at zero: its ids start above the original's.
        let floor = original.next_id()? + 1;
        copy.open_tree("meta")?.insert(ID_FLOOR_KEY, &floor.to_be_bytes())?;
        copy.flush()?;
        if !checksums_match {
            drop(copy);
            let _ = std::fs::remove_dir_all(&copy_path);
            return Err(StoreError::Io {
                path: copy_path.display().to_string(),
                source: std::io::Error::other("the compacted copy differs from the store; the store is left as it was"),
            });
        }
        let after = copy.size_on_disk()?;
        drop(copy);
        drop(original);
        let moved = sidecar(path, "before-compaction");
        std::fs::rename(path, &moved).map_err(io_error(path))?;
        sync_parent(path)?;
        std::fs::rename(&copy_path, path).map_err(io_error(path))?;
        sync_parent(path)?;
        std::fs::remove_dir_all(&moved).map_err(io_error(&moved))?;
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

    /// Compacts, waiting out sled's flusher thread holding a store just dropped.
    fn compact(path: &Path) -> CompactReport {
        for _ in 0..200 {
            match Store::compact(path) {
                Ok(report) => return report,
                Err(StoreError::Open { .. }) => std::thread::sleep(std::time::Duration::from_millis(50)),
                Err(e) => panic!("{e}"),
            }
        }
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
        assert!(!sidecar(&path, "compacting").exists() && !sidecar(&path, "before-compaction").exists());
    }

    #[test]
    fn an_interrupted_compaction_puts_the_original_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = Store::open(&path).unwrap();
        let kept = closed(1, "2026-01-01T10:00:00.000+0000");
        store.commit(&kept, Vec::new()).unwrap();
        drop(store);
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Stopped between its renames: the original moved aside, a half copy beside it.
        std::fs::rename(&path, sidecar(&path, "before-compaction")).unwrap();
        std::fs::create_dir(sidecar(&path, "compacting")).unwrap();
        std::fs::write(sidecar(&path, "compacting").join("db"), b"half").unwrap();
        let store = reopen(&path);
        assert_eq!(store.conversation(&kept.id).unwrap().as_ref(), Some(&kept));
        drop(store);
        compact(&path);
        // Stopped after the swap, before the original went: it goes at the next open.
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::create_dir(sidecar(&path, "before-compaction")).unwrap();
        std::fs::write(sidecar(&path, "before-compaction").join("db"), b"old").unwrap();
        drop(reopen(&path));
        assert!(!sidecar(&path, "before-compaction").exists());
        std::thread::sleep(std::time::Duration::from_millis(200));
        compact(&path);
        assert_eq!(reopen(&path).conversation(&kept.id).unwrap().as_ref(), Some(&kept));
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
        assert!(!sidecar(&path, "compacting").exists());
    }

    #[test]
    fn there_is_nothing_to_compact_where_no_store_is() {
        let dir = tempfile::tempdir().unwrap();
        let error = Store::compact(&dir.path().join("none")).unwrap_err().to_string();
        assert!(error.contains("there is no store"), "{error}");
        assert!(!dir.path().join("none").exists());
    }
}
