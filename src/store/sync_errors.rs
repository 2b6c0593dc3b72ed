//! Sync errors: what Salesforce, SMTP or the agent refused, kept for admins with their
//! history, and retried by hand. A repeat of an error (the same case, operation and code)
//! is found through an index by that key, and the count is kept: recording one reads one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering::Relaxed;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree, UnabortableTransactionError};

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

/// The errors and their key index in a transaction: an error and its key move together.
pub(super) struct ErrorsTx<'a> {
    pub(super) errors: &'a TransactionalTree,
    pub(super) keys: &'a TransactionalTree,
}

impl ErrorsTx<'_> {
    /// Takes an error out, with its key (when the key still names it).
    pub(super) fn take(&self, id: u64) -> std::result::Result<bool, UnabortableTransactionError> {
        let Some(old) = self.errors.remove(&id.to_be_bytes())? else { return Ok(false) };
        if let Ok(old) = serde_json::from_slice::<SyncError>(&old) {
            let key = key_of(&old);
            if self.keys.get(&key)?.is_some_and(|v| v.as_ref() == id.to_be_bytes()) {
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
        if self.error_keys.is_empty() && !self.errors.is_empty() {
            for error in read_all::<SyncError>(&self.errors) {
                let error = error?;
                self.error_keys.insert(key_of(&error), &error.id.to_be_bytes())?;
            }
        }
        self.error_count.store(self.errors.len() as u64, Relaxed);
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
    pub fn record_error(&self, mut error: SyncError) -> Result<u64> {
        let same_id = match error.id {
            0 => self.error_keys.get(key_of(&error))?.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok()),
            id => Some(id.to_be_bytes()),
        };
        let previous = match same_id {
            Some(id) => self.sync_error(u64::from_be_bytes(id))?,
            None => None,
        };
        let old_key = previous.as_ref().map(key_of);
        match previous {
            Some(existing) => {
                error.id = existing.id;
                error.first_seen = existing.first_seen;
                error.attempts = existing.attempts + error.attempts.max(1);
                error.retries = existing.retries;
                error.last_retry = existing.last_retry;
                error.history = existing.history;
                error.history.push(ErrorEvent {
                    at: existing.last_seen,
                    code: existing.code,
                    message: existing.message,
                });
                let excess = error.history.len().saturating_sub(ERROR_HISTORY);
                error.history.drain(..excess);
            }
            None => error.id = 0,
        }
        if error.id == 0 {
            error.id = self.db.generate_id()? + 1;
        }
        let (bytes, key, id) = (encode(&error), key_of(&error), error.id.to_be_bytes());
        (&self.errors, &self.error_keys)
            .transaction(|(errors, keys)| {
                if let Some(old) = &old_key
                    && *old != key
                    && keys.get(old)?.is_some_and(|v| v.as_ref() == id)
                {
                    keys.remove(old.as_slice())?;
                }
                errors.insert(&id, bytes.as_slice())?;
                keys.insert(key.as_slice(), &id)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(super::storage_error)?;
        if old_key.is_none() {
            self.error_count.fetch_add(1, Relaxed);
        }
        self.db.flush()?;
        Ok(error.id)
    }
    pub fn sync_errors(&self) -> Result<Vec<SyncError>> {
        read_all(&self.errors).collect()
    }
    pub fn remove_error(&self, id: u64) -> Result<Option<SyncError>> {
        let Some(error) = self.sync_error(id)? else { return Ok(None) };
        let removed = (&self.errors, &self.error_keys)
            .transaction(|(errors, keys)| {
                Ok::<_, ConflictableTransactionError<()>>(ErrorsTx { errors, keys }.take(id)?)
            })
            .map_err(super::storage_error)?;
        if removed {
            self.error_count.fetch_sub(1, Relaxed);
        }
        self.db.flush()?;
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
        self.errors.insert(error.id.to_be_bytes(), encode(&error))?;
        let entry = self.enqueue_entry(action, Some(error_id))?;
        Ok(Some((Some(entry), error)))
    }
}
