//! Sync errors: what Salesforce, SMTP or the agent refused, kept for admins with their
//! history, and retried by hand. A repeat of an error (the same case, operation and code)
//! is found through an index by that key, and the count is kept: recording one reads one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering::Relaxed;

use super::kv::{self, Durable, TxError, TxTree};

use super::{Result, Store, decode, encode, read_all};
use crate::model::Action;

/// Something Salesforce (or SMTP, or the agent) refused, kept for admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncError {
    pub id: u64,
    pub case_id: Option<String>,
    /// What was being done: `post_reply`, `reassign`, `poll`, `agent`, ...
    pub operation: String,
    /// Salesforce's `errorCode` (or `SMTP_ERROR`, `AGENT_ERROR`, ...).
    pub code: String,
    pub message: String,
    pub attempts: u32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The action that failed, so an admin can retry it.
    pub action: Option<Action>,
    /// How often an admin retried it, and when last.
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub last_retry: Option<DateTime<Utc>>,
    /// Earlier failures of the same error, oldest first (at most [`ERROR_HISTORY`]).
    #[serde(default)]
    pub history: Vec<ErrorEvent>,
}

impl SyncError {
    /// A new error seen now (its id is given when it is recorded).
    pub fn new(case_id: Option<&str>, operation: &str, code: &str, message: &str) -> SyncError {
        let now = chrono::Utc::now();
        SyncError {
            id: 0,
            case_id: case_id.map(str::to_string),
            operation: operation.into(),
            code: code.into(),
            message: message.into(),
            attempts: 1,
            first_seen: now,
            last_seen: now,
            action: None,
            retries: 0,
            last_retry: None,
            history: Vec::new(),
        }
    }
}

/// One earlier failure kept in a sync error's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub at: DateTime<Utc>,
    pub code: String,
    pub message: String,
}

/// How many earlier failures a sync error keeps.
pub const ERROR_HISTORY: usize = 10;

/// An error's key in the `error_keys` index: its case, operation and code, which a repeat
/// of it shares.
pub(super) fn error_key(case_id: Option<&str>, operation: &str, code: &str) -> Vec<u8> {
    let mut key = Vec::new();
    key.extend(case_id.unwrap_or_default().as_bytes());
    key.push(0);
    key.extend(operation.as_bytes());
    key.push(0);
    key.extend(code.as_bytes());
    key
}

fn key_of(error: &SyncError) -> Vec<u8> {
    error_key(error.case_id.as_deref(), &error.operation, &error.code)
}

/// `error` recorded on `existing`, which it repeats: counted there, with its history.
fn merge_into(error: &mut SyncError, existing: SyncError) {
    error.id = existing.id;
    error.first_seen = existing.first_seen;
    error.attempts = existing.attempts + error.attempts.max(1);
    error.retries = existing.retries;
    error.last_retry = existing.last_retry;
    error.history = existing.history;
    error.history.push(ErrorEvent { at: existing.last_seen, code: existing.code, message: existing.message });
    let excess = error.history.len().saturating_sub(ERROR_HISTORY);
    error.history.drain(..excess);
}

/// The errors and their key index in a transaction: an error and its key move together.
pub(super) struct ErrorsTx<'t> {
    errors: TxTree<'t>,
    keys: TxTree<'t>,
}

impl<'t> ErrorsTx<'t> {
    /// The sync errors' trees inside `tx`.
    pub(super) fn open(store: &Store, tx: &kv::Tx<'t>) -> kv::Result<ErrorsTx<'t>> {
        Ok(ErrorsTx { errors: tx.open(&store.errors)?, keys: tx.open(&store.error_keys)? })
    }

    /// Takes an error out, with its key (when the key still names it).
    pub(super) fn take(&self, id: u64) -> kv::Result<bool> {
        let Some(old) = self.errors.remove(id.to_be_bytes())? else { return Ok(false) };
        if let Ok(old) = serde_json::from_slice::<SyncError>(&old) {
            let key = key_of(&old);
            if self.keys.get(&key)?.is_some_and(|v| v == id.to_be_bytes()) {
                self.keys.remove(key)?;
            }
        }
        Ok(true)
    }
}

impl Store {
    /// Builds the errors' key index for a store written before it existed, and counts the
    /// errors (those not yet resolved or dismissed: the admin's list).
    pub(super) fn with_error_index(self) -> Result<Store> {
        let count = self.errors.len()?;
        // Built again when it does not cover the errors (a store from before it, or an open
        // cut short while building it).
        if self.error_keys.len()? != count {
            self.error_keys.clear()?;
            for error in read_all::<SyncError>(&self.errors) {
                let error = error?;
                self.error_keys.insert(key_of(&error), error.id.to_be_bytes())?;
            }
            self.db.flush()?;
        }
        self.error_count.store(count as u64, Relaxed);
        Ok(self)
    }

    /// The `limit` newest sync errors, newest first.
    pub fn recent_sync_errors(&self, limit: usize) -> Result<Vec<SyncError>> {
        self.errors
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v)
            })
            .collect()
    }
    /// How many sync errors are kept (counted at open, then kept).
    pub fn sync_error_count(&self) -> usize {
        self.error_count.load(Relaxed) as usize
    }

    fn sync_error(&self, id: u64) -> Result<Option<SyncError>> {
        self.errors.get(id.to_be_bytes())?.map(|v| decode(b"sync_error", &v)).transpose()
    }
    /// Records a failure: as a new sync error, or on the one it repeats (the same `id`, or
    /// the same case, operation and code), keeping that one's history.
    pub fn record_error(&self, error: SyncError) -> Result<u64> {
        let fresh_id = self.next_id()? + 1;
        // Found, merged and written in one transaction: a repeat recorded at the same time,
        // or the error resolved meanwhile, never leaves two errors or a count that drifts.
        let (id, added) = self
            .db
            .transaction(Durable::Now, |tx| {
                let ErrorsTx { errors, keys } = ErrorsTx::open(self, tx)?;
                let mut error = error.clone();
                let same_id = match error.id {
                    0 => keys.get(key_of(&error))?.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()),
                    id => Some(id.to_be_bytes()),
                };
                let previous = match same_id {
                    Some(id) => errors.get(id)?.and_then(|v| serde_json::from_slice::<SyncError>(&v).ok()),
                    None => None,
                };
                let old_key = previous.as_ref().map(key_of);
                match previous {
                    Some(existing) => merge_into(&mut error, existing),
                    None => error.id = fresh_id,
                }
                let (key, id) = (key_of(&error), error.id.to_be_bytes());
                if let Some(old) = &old_key
                    && *old != key
                    && keys.get(old)?.is_some_and(|v| v == id)
                {
                    keys.remove(old.as_slice())?;
                }
                let added = errors.insert(id, encode(&error))?.is_none();
                // The key names this error, unless another error still holds it.
                let held = match keys.get(key.as_slice())? {
                    Some(other) if other != id => errors.get(other)?.is_some(),
                    _ => false,
                };
                if !held {
                    keys.insert(key.as_slice(), id)?;
                }
                Ok::<_, TxError<()>>((error.id, added))
            })
            .map_err(super::storage_error)?;
        if added {
            self.error_count.fetch_add(1, Relaxed);
        }
        Ok(id)
    }
    pub fn sync_errors(&self) -> Result<Vec<SyncError>> {
        read_all(&self.errors).collect()
    }
    pub fn remove_error(&self, id: u64) -> Result<Option<SyncError>> {
        let Some(error) = self.sync_error(id)? else { return Ok(None) };
        let removed = self
            .db
            .transaction(Durable::Now, |tx| Ok::<_, TxError<()>>(ErrorsTx::open(self, tx)?.take(id)?))
            .map_err(super::storage_error)?;
        if removed {
            super::count_down(&self.error_count, 1);
        }
        Ok(Some(error))
    }
    /// An admin's retry of sync error `error_id`: its action is queued again, and the error
    /// stays (marked retried) until the action succeeds.
    /// `None` when there is no such error; the queued entry's id is `None` when the error
    /// was not about an action.
    pub fn retry_error(&self, error_id: u64) -> Result<Option<(Option<u64>, SyncError)>> {
        let Some(mut error) = self.sync_error(error_id)? else { return Ok(None) };
        let Some(action) = error.action.clone() else { return Ok(Some((None, error))) };
        error.retries += 1;
        error.last_retry = Some(Utc::now());
        // Only while it is still there: an error resolved meanwhile is not brought back.
        let key = error.id.to_be_bytes();
        let before = self.errors.get(key)?;
        if before.is_none() {
            return Ok(None);
        }
        if !self.errors.compare_and_swap(&key, before.as_deref(), Some(&encode(&error)))? {
            return Ok(None);
        }
        let entry = self.enqueue_entry(action, Some(error_id))?;
        Ok(Some((Some(entry), error)))
    }
}
