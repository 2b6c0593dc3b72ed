//! Sync errors: what Salesforce, SMTP or the agent refused, kept for admins with their
//! history, and retried by hand.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

impl Store {
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
    /// How many sync errors are kept.
    pub fn sync_error_count(&self) -> usize {
        self.errors.len()
    }
    /// Records a sync error; an error of the same case, operation and code is counted on
    /// the existing record instead of repeated.
    /// Records a failure: as a new sync error, or on the one it repeats (the same `id`, or
    /// the same case, operation and code), keeping that one's history.
    pub fn record_error(&self, mut error: SyncError) -> Result<u64> {
        let same = |existing: &SyncError| {
            if error.id != 0 {
                existing.id == error.id
            } else {
                existing.case_id == error.case_id
                    && existing.operation == error.operation
                    && existing.code == error.code
            }
        };
        let previous = self.sync_errors()?.into_iter().find(same);
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
        self.errors.insert(error.id.to_be_bytes(), encode(&error))?;
        self.db.flush()?;
        Ok(error.id)
    }
    pub fn sync_errors(&self) -> Result<Vec<SyncError>> {
        read_all(&self.errors).collect()
    }
    pub fn remove_error(&self, id: u64) -> Result<Option<SyncError>> {
        let removed = self.errors.remove(id.to_be_bytes())?;
        self.db.flush()?;
        removed.map(|v| decode(b"sync_error", &v)).transpose()
    }
    /// An admin's retry of sync error `error_id`: its action is queued again, and the error
    /// stays (marked retried) until the action succeeds.
    /// `None` when there is no such error; the queued entry's id is `None` when the error
    /// was not about an action.
    pub fn retry_error(&self, error_id: u64) -> Result<Option<(Option<u64>, SyncError)>> {
        let Some(mut error) = self.sync_errors()?.into_iter().find(|e| e.id == error_id) else { return Ok(None) };
        let Some(action) = error.action.clone() else { return Ok(Some((None, error))) };
        error.retries += 1;
        error.last_retry = Some(Utc::now());
        self.errors.insert(error.id.to_be_bytes(), encode(&error))?;
        let entry = self.enqueue_entry(action, Some(error_id))?;
        Ok(Some((Some(entry), error)))
    }
}
