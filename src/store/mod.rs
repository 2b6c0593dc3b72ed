//! The embedded store (redb, through `kv`): conversations, the poll cursor, the outbox of
//! actions not yet confirmed by Salesforce, and sync errors, in one file inside the
//! store's directory.
//!
//! A conversation and the actions its decision produced are written in one transaction, so
//! a crash can never leave a decision without its actions or actions without their
//! decision; every commit is durable before the caller acts on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use kv::{Durable, Tree, TxError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::Action;
use crate::model::Conversation;

mod compact;
mod due;
mod echoes;
mod ids;
mod kv;
mod migrate;
mod outbox;
mod resolutions;
mod retention;
mod sidecar;
mod summaries;
mod sync_errors;
mod visitor_leads;

pub use compact::CompactReport;
pub use outbox::OutboxScan;
pub use resolutions::ResolutionDay;
pub use retention::{PruneMark, PruneReport};

use sidecar::write_private;
pub use sidecar::{credentials_path, read_credentials, sidecar, write_private_durably};
pub use sync_errors::{ERROR_HISTORY, ErrorEvent, SyncError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the store at {path}: {reason}\nhint: is another casebridge using it? Each daemon needs its own store path"
    )]
    Open { path: String, reason: String },
    #[error("store failure: {0}")]
    Engine(#[from] kv::Error),
    #[error("there is no store at {path}\nhint: casebridge has not run with this config yet (store_path)")]
    Missing { path: String },
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("store record {key} is unreadable: {source}")]
    Corrupt { key: String, source: serde_json::Error },
    /// A conversation tried to queue a Lead for an email another conversation made one for.
    #[error("conversation {claimant} already queued the Lead for this visitor's email")]
    LeadClaimed { claimant: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where polling resumes: the newest `SystemModstamp` already processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub modstamp: DateTime<Utc>,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum EntryStatus {
    /// Not sent yet (or known not to have reached Salesforce).
    Pending,
    /// Being sent since `since`: it may have reached Salesforce, so after a crash it is
    /// checked there before being sent again.
    InFlight { since: DateTime<Utc> },
}

/// One action waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: u64,
    pub action: Action,
    pub status: EntryStatus,
    pub attempts: u32,
    pub not_before: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The sync error this entry retries: it is resolved when the entry succeeds, and
    /// updated (not duplicated) when it fails again.
    #[serde(default)]
    pub retry_of: Option<u64>,
}

/// The store.
#[derive(Clone)]
pub struct Store {
    db: kv::Db,
    /// The store's directory (the files beside it are named after it).
    path: PathBuf,
    /// The engine's file inside it.
    file: PathBuf,
    /// Kept by `commit`, shared by every clone (and in `meta`, so opening never counts).
    conversation_count: Arc<AtomicU64>,
    /// The outbox's entries, counted at open and kept by every write to it.
    outbox_count: Arc<AtomicU64>,
    /// How many conversation records this store (and its clones) read since it opened.
    conversations_read: Arc<AtomicU64>,
    conversations: Tree,
    outbox: Tree,
    errors: Tree,
    meta: Tree,
    /// Case id → when its conversation is due for another try (the agent failed).
    retries: Tree,
    /// Confirmation key (case and body, see `Action::confirmation_key`) → how many such
    /// posts Salesforce confirmed; in-flight entries are verified against it after a crash.
    confirmed: Tree,
    /// Conversations by latest activity: modstamp (ms, big-endian) + case id → state name.
    activity: Tree,
    /// Case id → its key in `activity`, to move it when the conversation changes.
    activity_key: Tree,
    /// Conversations awaiting the customer after an answer: since (ms, big-endian) + case
    /// id → nothing; the quiet timer reads the oldest first, and only those that are due.
    awaiting: Tree,
    /// Case id → its key in `awaiting`.
    awaiting_key: Tree,
    /// Messenger conversations with a case to read (handed over to a person, or still
    /// answered by the agent with a case a rule made): the chats whose case the daemon
    /// reads for its id, its state and people's replies.
    handed_over_chats: Tree,
    /// A visitor's email (as the org matches it) → the conversation whose id keys their Lead.
    visitor_leads: Tree,
    /// Outbox entries by when they are due: not before (ms, big-endian) + id → nothing.
    outbox_due: Tree,
    /// Outbox entries writing a record made by upsert: object, record key + id → nothing.
    outbox_records: Tree,
    /// Case (conversation) id → how many outbox entries it has queued.
    outbox_cases: Tree,
    /// Pruned conversations: id → when, and the newest activity seen (ms, big-endian each):
    /// what exactly-once needs of them.
    pruned: Tree,
    /// Sync errors by case, operation and code → the error's id (a repeat finds its error).
    error_keys: Tree,
    /// The sync errors kept, counted at open and kept.
    error_count: Arc<AtomicU64>,
    /// Messenger conversation id → when it is due for a decision (a visitor wrote, or its
    /// agent failed earlier): the chats' own queue, apart from the cases' `retries`.
    chats_due: Tree,
    /// Case id → the stamp of our own reply's echo (see `echoes.rs`).
    echoes: Tree,
    /// Outbox entries this build could not read, by id → their bytes, whole (see
    /// `Store::quarantine`).
    quarantine: Tree,
    /// The numbers being handed out (see `ids.rs`).
    ids: Arc<Mutex<ids::IdBlock>>,
}

const CURSOR_KEY: &[u8] = b"cursor";
/// How many transactions a bulk write (a retention pass, the summaries' migration) makes
/// between durable commits: redb reuses the pages its commits free only after one.
const FLUSH_EVERY: usize = 100;
/// How many conversations an import writes in one transaction.
const IMPORT_BATCH: usize = 500;

/// How many of the most recently active conversations `recently_open` looks through.
pub const RECENT_SCAN: usize = 5_000;

/// Where the number of conversations is kept, in `meta`.
const COUNT_KEY: &[u8] = b"conversation_count";

/// The engine's page cache: enough for the hot part of the store (the indexes' recent
/// pages, the conversations being decided), not the whole of it; the daemon's memory stays
/// flat whatever the store holds. A miss is a read the OS's own cache usually answers: at
/// 16 MiB a burst left the daemon at 72 MiB, over its 64 MiB goal (docs/benchmarks.md).
pub const CACHE_BYTES: u64 = 4 * 1024 * 1024;

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records serialise")
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|source| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), source })
}

/// The activity index key: newest sorts last.
fn activity_key(c: &Conversation) -> Vec<u8> {
    let mut key = (c.modstamp.timestamp_millis().max(0) as u64).to_be_bytes().to_vec();
    key.extend(c.id.as_bytes());
    key
}

/// The quiet-timer key of a conversation awaiting the customer, or `None`.
/// Only a conversation that is open, waits for no retry and has no unanswered customer
/// message is awaiting the customer: the timer must not resolve one the customer wrote to.
fn awaiting_key(c: &Conversation) -> Option<Vec<u8>> {
    let r = c.resolution.filter(|r| r.state == crate::model::Resolution::AwaitingCustomer)?;
    if c.state != crate::model::ConversationState::Open || c.retry_at.is_some() || !c.unanswered().is_empty() {
        return None;
    }
    let mut key = (r.since.timestamp_millis().max(0) as u64).to_be_bytes().to_vec();
    key.extend(c.id.as_bytes());
    Some(key)
}

/// The name of a conversation's state, as the admin API filters by it.
pub fn state_name(state: &crate::model::ConversationState) -> &'static str {
    use crate::model::ConversationState as S;
    match state {
        S::Open => "open",
        S::HandedOver { .. } => "handed_over",
        S::AssignedAway { .. } => "assigned_away",
        S::Closed => "closed",
    }
}

/// Whether a conversation is a chat whose case the daemon reads: handed over, or still
/// answered by the agent with a case a `kind: cases` rule made (to learn the case's id and
/// copy people's replies).
fn reads_its_case(conversation: &Conversation) -> bool {
    conversation.channel == crate::model::Channel::Messenger
        && match conversation.state {
            crate::model::ConversationState::HandedOver { .. } => true,
            crate::model::ConversationState::Open => conversation.messenger.as_ref().is_some_and(|m| m.case.exists()),
            _ => false,
        }
}

/// What a transaction that never aborts can fail with: only storage (`commit`'s, which
/// can refuse a second claim of a visitor's email, maps its own errors).
fn storage_error(e: TxError<()>) -> StoreError {
    match e {
        TxError::Storage(e) => StoreError::Engine(e),
        TxError::Abort(()) => unreachable!("the transaction never aborts"),
    }
}

/// What a commit's transaction ends with: storage, or a refused claim of a visitor's email
/// (the claimant's id).
type TxResult<T> = std::result::Result<T, TxError<String>>;

fn commit_error(e: TxError<String>) -> StoreError {
    match e {
        TxError::Storage(e) => StoreError::Engine(e),
        TxError::Abort(claimant) => StoreError::LeadClaimed { claimant },
    }
}

/// Takes `n` off a kept count, never below zero (a count is a figure for people; a
/// wrapped one would say billions).
fn count_down(count: &AtomicU64, n: u64) {
    let _ = count.fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |c| {
        Some(c.saturating_sub(n))
    });
}

/// Every record of a tree, in key order.
fn read_all<T: DeserializeOwned>(tree: &Tree) -> impl Iterator<Item = Result<T>> + '_ {
    tree.iter().map(|item| {
        let (k, v) = item?;
        decode(&k, &v)
    })
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        migrate::restore_interrupted_compaction(path)?;
        let file = migrate::engine_file(path)?;
        let db = kv::Db::open(&file, CACHE_BYTES as usize)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), reason: source.to_string() })?;
        let meta = db.tree("meta")?;
        Store {
            conversations: db.tree("conversations")?,
            outbox: db.tree("outbox")?,
            errors: db.tree("sync_errors")?,
            ids: Arc::new(ids::IdBlock::starting_at(Store::kept_next_id(&meta)?)),
            meta,
            retries: db.tree("retries")?,
            confirmed: db.tree("confirmed")?,
            activity: db.tree("activity")?,
            activity_key: db.tree("activity_key")?,
            awaiting: db.tree("awaiting")?,
            awaiting_key: db.tree("awaiting_key")?,
            handed_over_chats: db.tree("handed_over_chats")?,
            visitor_leads: db.tree("visitor_leads")?,
            outbox_due: db.tree("outbox_due")?,
            outbox_records: db.tree("outbox_records")?,
            outbox_cases: db.tree("outbox_cases")?,
            pruned: db.tree("pruned")?,
            error_keys: db.tree("error_keys")?,
            error_count: Arc::new(AtomicU64::new(0)),
            chats_due: db.tree("chats_due")?,
            echoes: db.tree("echoes")?,
            quarantine: db.tree("quarantine")?,
            conversation_count: Arc::new(AtomicU64::new(0)),
            outbox_count: Arc::new(AtomicU64::new(0)),
            conversations_read: Arc::new(AtomicU64::new(0)),
            db,
            path: path.to_path_buf(),
            file,
        }
        .with_activity_index()?
        .with_summaries()?
        .with_outbox_index()?
        .with_error_index()?
        .with_chats_due()
    }

    /// Opens a store that must already exist (read-only commands never create one).
    pub fn open_existing(path: &Path) -> Result<Store> {
        migrate::restore_interrupted_compaction(path)?;
        if !path.exists() {
            return Err(StoreError::Missing { path: path.display().to_string() });
        }
        Store::open(path)
    }

    /// Reads the kept counts (a store from before the conversations' count was kept is
    /// counted once, by key, and kept from then on) and builds the activity index for a
    /// store written before it existed. Reads no conversation of a store that has both.
    fn with_activity_index(self) -> Result<Store> {
        let kept = self.meta.get(COUNT_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok());
        let count = match kept {
            Some(bytes) => u64::from_be_bytes(bytes),
            None => {
                let mut n = 0u64;
                for key in self.conversations.iter().keys() {
                    key?;
                    n += 1;
                }
                self.meta.insert(COUNT_KEY, n.to_be_bytes())?;
                n
            }
        };
        self.conversation_count.store(count, std::sync::atomic::Ordering::Relaxed);
        // The outbox holds only work not yet done: counting it is proportional to that.
        self.outbox_count.store(self.outbox.len()? as u64, std::sync::atomic::Ordering::Relaxed);
        if self.activity.is_empty()? && !self.conversations.is_empty()? {
            self.each_chunk_of_conversations(|chunk| {
                for c in chunk {
                    let key = activity_key(&c);
                    self.activity.insert(&key, summaries::activity_value(&c))?;
                    self.activity_key.insert(c.id.as_bytes(), key)?;
                }
                Ok(())
            })?;
        }
        Ok(self)
    }

    /// Every conversation, a chunk at a time, each chunk read (and the read let go) before
    /// `f` writes what it makes of it, then made durable: a one-time rebuild over years of
    /// history neither holds them all nor keeps one read open across its writes (redb
    /// reuses no page freed after the oldest read began).
    fn each_chunk_of_conversations(&self, mut f: impl FnMut(Vec<Conversation>) -> Result<()>) -> Result<()> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let start = after.take().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
            let mut chunk = Vec::new();
            for item in self.conversations.range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded)).take(IMPORT_BATCH) {
                let (key, value) = item?;
                self.conversations_read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                chunk.push(decode::<Conversation>(&key, &value)?);
                after = Some(key);
            }
            if chunk.is_empty() {
                return Ok(());
            }
            f(chunk)?;
            self.db.flush()?;
        }
    }

    pub fn conversation(&self, case_id: &str) -> Result<Option<Conversation>> {
        let bytes = self.conversations.get(case_id)?;
        if bytes.is_some() {
            self.conversations_read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        bytes.map(|v| decode(case_id.as_bytes(), &v)).transpose()
    }

    /// Every conversation, in case-id order.
    pub fn conversations(&self) -> impl Iterator<Item = Result<Conversation>> + '_ {
        read_all(&self.conversations).inspect(|_| {
            self.conversations_read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
    }

    /// How many conversation records were read since the store opened: what start-up,
    /// a cycle or an admin request costs in history.
    pub fn conversations_read(&self) -> u64 {
        self.conversations_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many conversations the store holds (kept in `meta` with every commit).
    pub fn conversation_count(&self) -> usize {
        self.conversation_count.load(std::sync::atomic::Ordering::Relaxed) as usize
    }

    pub fn cursor(&self) -> Result<Option<Cursor>> {
        self.meta.get(CURSOR_KEY)?.map(|v| decode(CURSOR_KEY, &v)).transpose()
    }

    pub fn set_cursor(&self, cursor: Cursor) -> Result<()> {
        self.meta.insert(CURSOR_KEY, encode(&cursor))?;
        self.db.flush()?;
        Ok(())
    }

    /// Saves a conversation and queues its actions in one transaction, durably.
    pub fn commit(&self, conversation: &Conversation, actions: Vec<Action>) -> Result<Vec<u64>> {
        let entries = self.outbox_entries(actions)?;
        let new = self.db.transaction(Durable::Now, |tx| self.commit_in(tx, conversation, &entries));
        if new.map_err(commit_error)? {
            self.conversation_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.outbox_count.fetch_add(entries.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(entries.iter().map(|e| e.id).collect())
    }

    /// Saves conversations as `commit` does, many to a transaction, and makes them durable
    /// at the end: the bulk path for a store built from elsewhere (the history benchmark's,
    /// an import), not for the daemon's decisions. A refused claim of a visitor's email
    /// stops it: the batch it was in is not written, those before it are.
    pub fn import(&self, conversations: &[Conversation]) -> Result<()> {
        for batch in conversations.chunks(IMPORT_BATCH) {
            let new = self.db.transaction(Durable::Later, |tx| {
                let mut new = 0;
                for conversation in batch {
                    new += u64::from(self.commit_in(tx, conversation, &[])?);
                }
                Ok(new)
            });
            let new = match new {
                Ok(new) => new,
                Err(e) => {
                    // The batches before it stay, durably; this one is not written.
                    self.db.flush()?;
                    return Err(commit_error(e));
                }
            };
            self.conversation_count.fetch_add(new, std::sync::atomic::Ordering::Relaxed);
        }
        self.db.flush()?;
        Ok(())
    }

    /// Writes a conversation, its indexes and its new outbox entries inside `tx`; whether
    /// the conversation is new (counted once the transaction commits).
    fn commit_in(&self, tx: &kv::Tx<'_>, conversation: &Conversation, entries: &[OutboxEntry]) -> TxResult<bool> {
        let retry = conversation.retry_at.map(|at| encode(&at));
        let new_key = activity_key(conversation);
        let summary = crate::model::Summary::of(conversation);
        let awaiting_key = awaiting_key(conversation);
        let id = conversation.id.as_bytes();
        let chats = tx.open(&self.handed_over_chats)?;
        match reads_its_case(conversation) {
            true => chats.insert(id, [])?,
            false => chats.remove(id)?,
        };
        let previous = tx.open(&self.conversations)?.insert(id, encode(conversation))?;
        if previous.is_none() {
            let meta = tx.open(&self.meta)?;
            let count = meta.get(COUNT_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok());
            meta.insert(COUNT_KEY, (count.map_or(0, u64::from_be_bytes) + 1).to_be_bytes())?;
        }
        if let Some(email) = visitor_leads::claimed_email(conversation) {
            visitor_leads::claim(&tx.open(&self.visitor_leads)?, &email, &conversation.id, previous.as_deref())?;
        }
        let activity = tx.open(&self.activity)?;
        let mut previous_value = None;
        if let Some(old) = tx.open(&self.activity_key)?.insert(id, &new_key)? {
            previous_value = activity.remove(old)?;
        }
        let (awaiting, awaiting_keys) = (tx.open(&self.awaiting)?, tx.open(&self.awaiting_key)?);
        let old_wait = match &awaiting_key {
            Some(key) => awaiting_keys.insert(id, key)?,
            None => awaiting_keys.remove(id)?,
        };
        if let Some(old) = old_wait {
            awaiting.remove(old)?;
        }
        if let Some(key) = &awaiting_key {
            awaiting.insert(key, [])?;
        }
        let state = state_name(&conversation.state);
        activity.insert(new_key, summaries::entry_value(state, &summary, previous_value.as_deref()))?;
        // A chat's place in the chats' queue, a case's in the cases' retries.
        let is_chat = conversation.channel == crate::model::Channel::Messenger;
        let due = tx.open(if is_chat { &self.chats_due } else { &self.retries })?;
        match &retry {
            Some(at) => due.insert(id, at)?,
            None => due.remove(id)?,
        };
        if !entries.is_empty() {
            let queued = outbox::OutboxTx::open(self, tx)?;
            for entry in entries {
                queued.put(entry)?;
            }
        }
        Ok(previous.is_none())
    }

    /// `actions` as new outbox entries, each with its id.
    fn outbox_entries(&self, actions: Vec<Action>) -> Result<Vec<OutboxEntry>> {
        let now = Utc::now();
        actions
            .into_iter()
            .map(|action| {
                Ok(OutboxEntry {
                    id: self.next_id()?,
                    action,
                    status: EntryStatus::Pending,
                    attempts: 0,
                    not_before: now,
                    created_at: now,
                    last_error: None,
                    retry_of: None,
                })
            })
            .collect()
    }

    /// The open messenger conversations with a case to read: handed over to a person, or
    /// with a case a `kind: cases` rule made.
    pub fn chats_with_cases(&self) -> Result<Vec<String>> {
        self.handed_over_chats.iter().keys().map(|k| Ok(String::from_utf8_lossy(&k?).into_owned())).collect()
    }

    /// A new number, unique in this store (for ids casebridge makes).
    pub fn new_id(&self) -> Result<u64> {
        self.next_id()
    }

    /// Case ids of the conversations awaiting the customer since `cutoff` or earlier,
    /// oldest first, at most `limit`: what the quiet timer resolves. Reads only those.
    pub fn quiet_since(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        let end = ((cutoff.timestamp_millis().max(0) as u64) + 1).to_be_bytes();
        let mut due = Vec::new();
        for item in self.awaiting.range(..end.as_slice()).take(limit) {
            let (k, _) = item?;
            due.push(String::from_utf8_lossy(&k[8..]).into_owned());
        }
        Ok(due)
    }

    /// Saves the credentials `casebridge auth login` obtained (already sealed), in a file
    /// beside the store (see [`read_credentials`]).
    pub fn set_credentials(&self, credentials: &crate::model::StoredCredentials) -> Result<()> {
        write_private(&credentials_path(&self.path), &encode(credentials))
            .map_err(|source| StoreError::Io { path: credentials_path(&self.path).display().to_string(), source })
    }

    pub fn credentials(&self) -> Result<Option<crate::model::StoredCredentials>> {
        match read_credentials(&self.path)? {
            Some(c) => Ok(Some(c)),
            // Stores from before the credentials file kept them in the meta tree.
            None => self.meta("credentials"),
        }
    }

    /// A small value kept beside the data (the resolved agent user id, topic ids, ...).
    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.meta.get(key)?.map(|v| decode(key.as_bytes(), &v)).transpose()
    }

    /// Durably: such values (a token key, say) must outlive a crash right after.
    pub fn set_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.meta.insert(key, encode(value))?;
        self.db.flush()?;
        Ok(())
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
