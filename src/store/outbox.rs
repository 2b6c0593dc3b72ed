//! The outbox: actions decided but not yet confirmed by Salesforce (or SMTP), in the order
//! they were queued, with what they need to be sent exactly once (the confirmations
//! counted by key). Two indexes move with every entry, in the same transactions: by when
//! it is due (`outbox_due`), and by the record an upsert writes (`outbox_records`), so the
//! executor reads only what is due, a batch at a time, and an update never overtakes its
//! record's create. Its size is kept, not counted.

use std::ops::Bound;
use std::sync::atomic::Ordering::Relaxed;

use super::kv::{self, Durable, TxError, TxTree};
use super::{EntryStatus, OutboxEntry, Result, Store, encode, read_all, storage_error};
use crate::model::Action;
use chrono::{DateTime, Utc};

/// A read of the outbox's due entries under way, a batch at a time: where the last batch
/// ended in the index of entries by when they are due.
#[derive(Debug, Default)]
pub struct OutboxScan {
    after: Option<Vec<u8>>,
    /// How many index entries the scan went through so far: the due entries, and those
    /// a record's earlier entry holds back.
    pub read: usize,
    finished: bool,
}

impl OutboxScan {
    /// Whether the scan reached the last entry due.
    pub fn finished(&self) -> bool {
        self.finished
    }
}

/// An entry's key in the index by due time: `not_before` (ms, big-endian), then its id.
fn due_key(entry: &OutboxEntry) -> Vec<u8> {
    let mut key = (entry.not_before.timestamp_millis().max(0) as u64).to_be_bytes().to_vec();
    key.extend(entry.id.to_be_bytes());
    key
}

/// The prefix the entries for one record made by upsert share in the records index.
fn record_prefix(entry: &OutboxEntry) -> Option<Vec<u8>> {
    let (object, record) = entry.action.upserted_record()?;
    let mut prefix = Vec::with_capacity(object.len() + record.len() + 2);
    prefix.extend(object.as_bytes());
    prefix.push(0);
    prefix.extend(record.as_bytes());
    prefix.push(0);
    Some(prefix)
}

fn id_at_end(key: &[u8]) -> u64 {
    key.len().checked_sub(8).and_then(|at| key[at..].try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// The outbox's trees in a transaction: an entry and its two index keys move together.
pub(super) struct OutboxTx<'t> {
    outbox: TxTree<'t>,
    due: TxTree<'t>,
    records: TxTree<'t>,
    /// Case (conversation) id → how many of its entries are queued: what retention asks,
    /// inside its own transaction, before it prunes a conversation.
    cases: TxTree<'t>,
}

/// How many entries a case has queued, from its `outbox_cases` value.
pub(super) fn queued_count(value: Option<&[u8]>) -> u64 {
    value.and_then(|v| <[u8; 8]>::try_from(v).ok()).map_or(0, u64::from_be_bytes)
}

impl<'t> OutboxTx<'t> {
    /// The outbox's trees inside `tx`.
    pub(super) fn open(store: &Store, tx: &kv::Tx<'t>) -> kv::Result<OutboxTx<'t>> {
        Ok(OutboxTx {
            outbox: tx.open(&store.outbox)?,
            due: tx.open(&store.outbox_due)?,
            records: tx.open(&store.outbox_records)?,
            cases: tx.open(&store.outbox_cases)?,
        })
    }

    /// Writes an entry (new, or rewritten with a new status or due time); `true` if new.
    pub(super) fn put(&self, entry: &OutboxEntry) -> kv::Result<bool> {
        let old = self.outbox.insert(entry.id.to_be_bytes(), encode(entry))?;
        match old.as_ref().and_then(|o| serde_json::from_slice::<OutboxEntry>(o).ok()) {
            Some(old) => {
                self.due.remove(due_key(&old))?;
            }
            None => {
                if let Some(mut key) = record_prefix(entry) {
                    key.extend(entry.id.to_be_bytes());
                    self.records.insert(key, [])?;
                }
                let case = entry.action.case_id().as_bytes();
                let queued = queued_count(self.cases.get(case)?.as_deref());
                self.cases.insert(case, (queued + 1).to_be_bytes())?;
            }
        }
        self.due.insert(due_key(entry), [])?;
        Ok(old.is_none())
    }

    /// Takes an entry out of the outbox, with its index keys.
    pub(super) fn take(&self, id: u64) -> kv::Result<Option<OutboxEntry>> {
        let Some(old) = self.outbox.remove(id.to_be_bytes())? else { return Ok(None) };
        // An entry that cannot be read leaves index keys the reads drop when they meet them.
        let Ok(entry) = serde_json::from_slice::<OutboxEntry>(&old) else { return Ok(None) };
        self.due.remove(due_key(&entry))?;
        if let Some(mut key) = record_prefix(&entry) {
            key.extend(entry.id.to_be_bytes());
            self.records.remove(key)?;
        }
        let case = entry.action.case_id().as_bytes();
        match queued_count(self.cases.get(case)?.as_deref()) {
            0 | 1 => self.cases.remove(case)?,
            n => self.cases.insert(case, (n - 1).to_be_bytes())?,
        };
        Ok(Some(entry))
    }
}

impl Store {
    /// Builds the outbox's indexes again when they do not cover the outbox exactly (a store
    /// written before they existed, by an older build, or an open cut short while building
    /// them): an entry missing from them would never be sent. Reads the outbox, which holds
    /// only work not yet done.
    pub(super) fn with_outbox_index(self) -> Result<Store> {
        let queued: u64 = self.outbox_cases.iter().values().map(|v| queued_count(v.ok().as_deref())).sum();
        let entries = self.outbox.len()?;
        if self.outbox_due.len()? == entries && queued == entries as u64 {
            return Ok(self);
        }
        self.outbox_due.clear()?;
        self.outbox_records.clear()?;
        self.outbox_cases.clear()?;
        for item in self.outbox.iter() {
            let (key, bytes) = item?;
            let entry = match serde_json::from_slice::<OutboxEntry>(&bytes) {
                Ok(entry) => entry,
                Err(error) => {
                    self.quarantine(id_at_end(&key), &bytes, &error)?;
                    continue;
                }
            };
            self.outbox_due.insert(due_key(&entry), [])?;
            if let Some(mut key) = record_prefix(&entry) {
                key.extend(entry.id.to_be_bytes());
                self.outbox_records.insert(key, [])?;
            }
            let case = entry.action.case_id().as_bytes();
            let n = queued_count(self.outbox_cases.get(case)?.as_deref());
            self.outbox_cases.insert(case, (n + 1).to_be_bytes())?;
        }
        self.db.flush()?;
        Ok(self)
    }

    /// The next batch of entries due at `now` (their backoff over), at most `limit`, in
    /// queue order within the batch, read from where `scan` ended. An entry for a record
    /// made by upsert (a chat's case, Lead, Task) waits while an earlier entry for that
    /// record is queued, due or not: a later update must never overtake the create it
    /// follows. Entries not yet due are never read: a batch costs what it holds (plus the
    /// entries held back by their record), whatever waits in the outbox.
    pub fn due_entries(&self, scan: &mut OutboxScan, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut end = ((now.timestamp_millis().max(0) as u64) + 1).to_be_bytes().to_vec();
        end.extend([0; 8]);
        let start = match scan.after.take() {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let mut due = Vec::new();
        for item in self.outbox_due.range::<Vec<u8>, _>((start, Bound::Excluded(end))) {
            let (key, _) = item?;
            scan.read += 1;
            scan.after = Some(key.to_vec());
            let id = id_at_end(&key);
            let Some(bytes) = self.outbox.get(id.to_be_bytes())? else {
                self.outbox_due.remove(&key)?;
                continue;
            };
            let entry = match serde_json::from_slice::<OutboxEntry>(&bytes) {
                Ok(entry) => entry,
                Err(error) => {
                    self.quarantine(id, &bytes, &error)?;
                    continue;
                }
            };
            if let Some(prefix) = record_prefix(&entry)
                && !self.first_for_record(&prefix, id)?
            {
                continue;
            }
            due.push(entry);
            if due.len() >= limit {
                due.sort_by_key(|e| e.id);
                return Ok(due);
            }
        }
        scan.finished = true;
        due.sort_by_key(|e| e.id);
        Ok(due)
    }

    /// Whether entry `id` is the earliest queued for its record.
    fn first_for_record(&self, prefix: &[u8], id: u64) -> Result<bool> {
        for item in self.outbox_records.scan_prefix(prefix) {
            let (key, _) = item?;
            let first = id_at_end(&key);
            if first == id {
                return Ok(true);
            }
            if self.outbox.contains_key(first.to_be_bytes())? {
                return Ok(false);
            }
            self.outbox_records.remove(&key)?;
        }
        Ok(true)
    }

    /// Sets aside an entry this build cannot read (one a newer build queued, an action kind
    /// this one does not know; or damaged bytes): its bytes move, whole, to the quarantine
    /// tree, and a sync error names it (one error counts them all, naming the latest and
    /// the ten before in its history). One such entry never stops the outbox; its index
    /// keys are dropped as the reads meet them, and its case's count (which keeps the
    /// conversation from being pruned) is made right at the next open.
    fn quarantine(&self, id: u64, bytes: &[u8], error: &serde_json::Error) -> Result<()> {
        // The error first: a crash between the two leaves the entry queued, set aside (and
        // counted in the same error) again at the next read, never aside without a word.
        let message = format!(
            "Outbox entry {id} could not be read ({error}): an action queued by a newer build, or damaged. \
             It is kept, whole, in the store's quarantine and will not be sent; the rest of the outbox goes on."
        );
        self.record_error(super::SyncError::new(None, "outbox", "UNREADABLE_ENTRY", &message))?;
        self.db
            .transaction(Durable::Now, |tx| {
                tx.open(&self.quarantine)?.insert(id.to_be_bytes(), bytes)?;
                tx.open(&self.outbox)?.remove(id.to_be_bytes())?;
                Ok::<_, TxError<()>>(())
            })
            .map_err(storage_error)?;
        super::count_down(&self.outbox_count, 1);
        tracing::error!(entry = id, %error, "An outbox entry could not be read; it is set aside in the quarantine.");
        Ok(())
    }

    /// The bytes of the outbox entries set aside as unreadable, by id.
    pub fn quarantined(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        self.quarantine.iter().map(|item| Ok(item.map(|(k, v)| (id_at_end(&k), v))?)).collect()
    }

    /// Outbox entries in the order they were queued.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        read_all(&self.outbox).collect()
    }

    /// How many entries the outbox holds (counted at open, then kept).
    pub fn outbox_len(&self) -> usize {
        self.outbox_count.load(Relaxed) as usize
    }

    /// Rewrites entries (their status, attempts, error) durably, in one batch.
    pub fn update_entries(&self, entries: &[OutboxEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let added = self
            .db
            .transaction(Durable::Now, |tx| {
                let queued = OutboxTx::open(self, tx)?;
                let mut added = 0;
                for e in entries {
                    added += u64::from(queued.put(e)?);
                }
                Ok::<_, TxError<()>>(added)
            })
            .map_err(storage_error)?;
        self.outbox_count.fetch_add(added, Relaxed);
        Ok(())
    }

    /// How many posts with this confirmation key Salesforce has confirmed.
    pub fn confirmed_count(&self, key: &str) -> Result<u64> {
        Ok(self.confirmed.get(key)?.map(|v| u64::from_be_bytes(v.as_slice().try_into().unwrap_or([0; 8]))).unwrap_or(0))
    }

    /// Removes done entries and counts their confirmations, in one transaction: a crash
    /// can never leave an entry removed but uncounted, or counted but still queued.
    pub fn complete_entries(&self, done: &[(u64, Option<String>)]) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let (removed_count, resolved) = self
            .db
            .transaction(Durable::Now, |tx| {
                let queued = OutboxTx::open(self, tx)?;
                let errors = super::sync_errors::ErrorsTx::open(self, tx)?;
                let confirmed = tx.open(&self.confirmed)?;
                let (mut count, mut resolved) = (0, 0);
                for (id, key) in done {
                    let Some(entry) = queued.take(*id)? else { continue };
                    count += 1;
                    // A retried action that went through resolves its sync error.
                    if let Some(error_id) = entry.retry_of {
                        resolved += u64::from(errors.take(error_id)?);
                    }
                    if let Some(key) = key {
                        let n = confirmed
                            .get(key.as_bytes())?
                            .map(|v| u64::from_be_bytes(v.as_slice().try_into().unwrap_or([0; 8])))
                            .unwrap_or(0);
                        confirmed.insert(key.as_bytes(), (n + 1).to_be_bytes())?;
                    }
                }
                Ok::<_, TxError<()>>((count, resolved))
            })
            .map_err(storage_error)?;
        super::count_down(&self.outbox_count, removed_count);
        super::count_down(&self.error_count, resolved);
        Ok(())
    }

    /// Removes entries durably (failed ones, whose sync error keeps the action).
    pub fn remove_entries(&self, ids: &[u64]) -> Result<()> {
        let removed = self
            .db
            .transaction(Durable::Now, |tx| {
                let queued = OutboxTx::open(self, tx)?;
                let mut count = 0;
                for id in ids {
                    count += u64::from(queued.take(*id)?.is_some());
                }
                Ok::<_, TxError<()>>(count)
            })
            .map_err(storage_error)?;
        super::count_down(&self.outbox_count, removed);
        Ok(())
    }

    /// Queues an action outside a decision.
    pub fn enqueue(&self, action: Action) -> Result<u64> {
        self.enqueue_entry(action, None)
    }

    pub(super) fn enqueue_entry(&self, action: Action, retry_of: Option<u64>) -> Result<u64> {
        let entry = OutboxEntry {
            id: self.next_id()?,
            action,
            status: EntryStatus::Pending,
            attempts: 0,
            not_before: Utc::now(),
            created_at: Utc::now(),
            last_error: None,
            retry_of,
        };
        self.update_entries(std::slice::from_ref(&entry))?;
        Ok(entry.id)
    }
}
