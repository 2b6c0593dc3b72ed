//! The numbers casebridge gives its own records (outbox entries, sync errors): unique in
//! the store for its whole life. They are handed out from a block reserved durably in
//! `meta` (the next number past the block is written before any number of it is given),
//! so a crash skips at most the rest of a block and never gives a number twice.

use std::sync::Mutex;

use super::{Result, Store};

/// The first number not yet reserved, in `meta`.
pub(super) const NEXT_ID_KEY: &[u8] = b"next_id";
/// How many numbers one durable write reserves.
const BLOCK: u64 = 1_024;

/// The block being handed out: `next` up to (not including) `reserved`.
#[derive(Debug, Default)]
pub(super) struct IdBlock {
    next: u64,
    reserved: u64,
}

impl IdBlock {
    /// Starts where the store's reservation ends: numbers below it may have been given.
    pub(super) fn starting_at(reserved: u64) -> Mutex<IdBlock> {
        Mutex::new(IdBlock { next: reserved, reserved })
    }
}

impl Store {
    pub(super) fn next_id(&self) -> Result<u64> {
        let mut block = self.ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if block.next >= block.reserved {
            let reserved = block.next + BLOCK;
            self.meta.insert(NEXT_ID_KEY, reserved.to_be_bytes())?;
            self.db.flush()?;
            block.reserved = reserved;
        }
        // Ids start at 1: 0 means "not yet given" in records (a new sync error's id).
        let id = block.next.max(1);
        block.next = id + 1;
        Ok(id)
    }

    /// Reads where the last reservation ended.
    pub(super) fn kept_next_id(meta: &super::kv::Tree) -> Result<u64> {
        let kept = meta.get(NEXT_ID_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok());
        Ok(kept.map_or(0, u64::from_be_bytes))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn ids_never_repeat_and_the_reservation_on_disk_is_always_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let store = Store::open(&path).unwrap();
        let first: Vec<u64> = (0..1_500).map(|_| store.new_id().unwrap()).collect();
        assert!(first.windows(2).all(|w| w[0] < w[1]), "increasing");
        assert!(first[0] >= 1);
        // What a crash would leave: the reservation written (and flushed) before any id of
        // it was given.
        let reserved = Store::kept_next_id(&store.meta).unwrap();
        assert!(reserved > *first.last().unwrap(), "{reserved}");
        drop(store);
        let store = Store::open(&path).unwrap();
        let after = store.new_id().unwrap();
        assert!(after > *first.last().unwrap(), "{after}");
    }
}
