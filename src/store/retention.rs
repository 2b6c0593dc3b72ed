//! Retention: what the store keeps of its history, so that its size follows the admin's
//! policy rather than the years it has run. A pass prunes conversations inactive past
//! `conversations` (with nothing pending: no outbox entry, no retry, no quiet timer),
//! every index entry that belongs to them, their confirmation counts and their sync
//! errors, in one transaction each; and clears the traces of decisions older than `traces`.
//!
//! What exactly-once needs outlives the conversation: a pruned conversation leaves a mark
//! (its id, when it was pruned and the newest activity it had seen; about 35 bytes). If
//! its case comes back, the customer parts up to what it had seen count as handled (one
//! written later, even before the prune, is answered), and the check of an in-flight reply
//! after a crash counts only the posts made after the prune (the confirmation counts
//! before it were pruned with the conversation).

use std::ops::Bound;

use super::kv::{Durable, TxError};
use super::{COUNT_KEY, Result, Store, activity_key, awaiting_key, decode, visitor_leads};
use crate::model::Conversation;
use chrono::{DateTime, Utc};

/// Where the newest activity whose traces were cleared is kept, in `meta`.
const TRACES_CLEARED_KEY: &str = "traces_cleared_until";
/// How many activity entries the traces' clearing reads at a time.
const TRACE_CHUNK: usize = 1_000;

/// What a pruned conversation leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneMark {
    /// When it was pruned: every post of ours on its case is older.
    pub pruned_at: DateTime<Utc>,
    /// The newest activity it had seen (its stamp, or its newest part's): every customer
    /// part up to it was dealt with; a part written after (even before the prune) is new.
    pub seen_until: DateTime<Utc>,
}

/// What became of one conversation a pass tried to prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pruned {
    Yes,
    /// An action of its own waits in the outbox.
    Pending,
    /// A commit changed it meanwhile: it is newer now.
    Changed,
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// Conversations pruned, with their index entries.
    pub pruned: usize,
    /// Bytes of conversation records pruned.
    pub pruned_bytes: u64,
    /// Conversations whose decisions' traces were cleared.
    pub traces_cleared: usize,
    /// Inactive conversations kept because something is pending for them.
    pub kept_pending: usize,
    /// Whether the pass stopped at its limit with more to do.
    pub more: bool,
}

impl Store {
    /// The mark conversation `id` left when it was pruned, if it was.
    pub fn prune_mark(&self, id: &str) -> Result<Option<PruneMark>> {
        let Some(bytes) = self.pruned.get(id.as_bytes())? else { return Ok(None) };
        let at = |range: std::ops::Range<usize>| {
            bytes.get(range).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes)
        };
        let pruned_at = at(0..8).and_then(DateTime::from_timestamp_millis).unwrap_or_default();
        let seen_until = at(8..16).and_then(DateTime::from_timestamp_millis).unwrap_or(pruned_at);
        Ok(Some(PruneMark { pruned_at, seen_until }))
    }

    /// One retention pass: prunes up to `limit` conversations whose last activity is
    /// before `prune_before`, and clears the traces of up to `limit` conversations whose
    /// last activity is before `traces_before`. Reads only those.
    pub fn prune(
        &self,
        prune_before: DateTime<Utc>,
        traces_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let end = ((prune_before.timestamp_millis().max(0) as u64) + 1).to_be_bytes();
        // Read first, then let go of the read: a read held across the pass's commits would
        // keep redb from reusing any page they free.
        let mut keys: Vec<Vec<u8>> =
            self.activity.range(..end.as_slice()).keys().take(limit + 1).collect::<std::result::Result<_, _>>()?;
        if keys.len() > limit {
            keys.truncate(limit);
            report.more = true;
        }
        for key in keys {
            let id = String::from_utf8_lossy(&key[8..]).into_owned();
            let Some(bytes) = self.conversations.get(id.as_bytes())? else { continue };
            let conversation: Conversation = decode(id.as_bytes(), &bytes)?;
            // Active again since the index was read: not this pass's (the transaction
            // checks that it does not change again).
            if conversation.modstamp > prune_before {
                continue;
            }
            if conversation.retry_at.is_some() || awaiting_key(&conversation).is_some() {
                report.kept_pending += 1;
                continue;
            }
            let pruned = self.prune_one(&conversation, &bytes)?;
            if pruned == Pruned::Pending {
                report.kept_pending += 1;
            }
            if pruned == Pruned::Yes {
                report.pruned += 1;
                report.pruned_bytes += bytes.len() as u64;
                // Durable as it goes: redb reuses the pages a pass frees only after that.
                if report.pruned % super::FLUSH_EVERY == 0 {
                    self.db.flush()?;
                }
            }
        }
        self.db.flush()?;
        report.traces_cleared = self.clear_traces(traces_before.min(Utc::now()), limit, &mut report.more)?;
        Ok(report)
    }

    /// What a pass pruning before `before` would free at most: the conversations last
    /// active before it (some may be kept, something being pending), counted by key up to
    /// `cap` (no conversation is read); `true` when the cap was reached.
    pub fn prunable(&self, before: DateTime<Utc>, cap: usize) -> Result<(usize, bool)> {
        let end = ((before.timestamp_millis().max(0) as u64) + 1).to_be_bytes();
        let mut count = 0;
        for key in self.activity.range(..end.as_slice()).keys() {
            if count >= cap {
                return Ok((count, true));
            }
            key?;
            count += 1;
        }
        Ok((count, false))
    }

    /// The bytes the store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(|source| super::StoreError::Io { path: self.file.display().to_string(), source })
    }

    /// Prunes one conversation and everything that belongs to it, if it is still as
    /// `bytes` (a commit meanwhile keeps it); leaves its mark.
    fn prune_one(&self, conversation: &Conversation, bytes: &[u8]) -> Result<Pruned> {
        let id = conversation.id.as_bytes();
        let mut confirmations = Vec::new();
        for key in self.confirmed.scan_prefix(format!("{}:", conversation.id)).keys() {
            confirmations.push(key?);
        }
        let mut errors_of = Vec::new();
        for item in self.error_keys.scan_prefix([id, b"\0"].concat()) {
            let (_, error_id) = item?;
            errors_of.push(u64::from_be_bytes(<[u8; 8]>::try_from(error_id.as_slice()).unwrap_or_default()));
        }
        let claimed = visitor_leads::claimed_email(conversation);
        let mut mark = Utc::now().timestamp_millis().to_be_bytes().to_vec();
        let newest_part = conversation.parts.iter().map(|p| p.created_at).max();
        let seen_until = newest_part.map_or(conversation.modstamp, |p| p.max(conversation.modstamp));
        mark.extend(seen_until.timestamp_millis().to_be_bytes());
        let outcome = self
            .db
            .transaction(Durable::Later, |tx| {
                let conversations = tx.open(&self.conversations)?;
                if conversations.get(id)?.as_deref() != Some(bytes) {
                    return Ok(Err(Pruned::Changed));
                }
                // Asked here, in the transaction: an action queued meanwhile (an admin's
                // retry, say) keeps the conversation and what its sending needs.
                if super::outbox::queued_count(tx.open(&self.outbox_cases)?.get(id)?.as_deref()) > 0 {
                    return Ok(Err(Pruned::Pending));
                }
                let errors = super::sync_errors::ErrorsTx::open(self, tx)?;
                let mut errors_removed = 0;
                for error_id in &errors_of {
                    errors_removed += u64::from(errors.take(*error_id)?);
                }
                conversations.remove(id)?;
                let activity = tx.open(&self.activity)?;
                if let Some(key) = tx.open(&self.activity_key)?.remove(id)? {
                    activity.remove(key)?;
                }
                activity.remove(activity_key(conversation))?;
                tx.open(&self.awaiting_key)?.remove(id)?;
                tx.open(&self.handed_over_chats)?.remove(id)?;
                tx.open(&self.chats_due)?.remove(id)?;
                tx.open(&self.retries)?.remove(id)?;
                let leads = tx.open(&self.visitor_leads)?;
                if let Some(email) = &claimed
                    && leads.get(email.as_bytes())?.is_some_and(|owner| owner == id)
                {
                    leads.remove(email.as_bytes())?;
                }
                let confirmed = tx.open(&self.confirmed)?;
                for key in &confirmations {
                    confirmed.remove(key)?;
                }
                let meta = tx.open(&self.meta)?;
                let count = meta.get(COUNT_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok());
                meta.insert(COUNT_KEY, count.map_or(0, u64::from_be_bytes).saturating_sub(1).to_be_bytes())?;
                tx.open(&self.pruned)?.insert(id, mark.as_slice())?;
                Ok::<_, TxError<()>>(Ok(errors_removed))
            })
            .map_err(super::storage_error)?;
        let errors_removed = match outcome {
            Ok(n) => n,
            Err(kept) => return Ok(kept),
        };
        super::count_down(&self.conversation_count, 1);
        super::count_down(&self.error_count, errors_removed);
        Ok(Pruned::Yes)
    }

    /// Clears the decisions' traces of up to `limit` conversations last active before
    /// `before` and after the previous pass's end; returns how many.
    fn clear_traces(&self, before: DateTime<Utc>, limit: usize, more: &mut bool) -> Result<usize> {
        let from: u64 = self.meta(TRACES_CLEARED_KEY)?.unwrap_or(0);
        let end = (before.timestamp_millis().max(0) as u64).to_be_bytes();
        let mut cleared = 0;
        let mut until = from;
        let mut start = Bound::Included(from.to_be_bytes().to_vec());
        'chunks: loop {
            // A chunk read at a time, the read let go before its commits (see `prune`).
            let range = (start.clone(), Bound::Excluded(end.to_vec()));
            let keys: Vec<Vec<u8>> = self
                .activity
                .range::<Vec<u8>, _>(range)
                .keys()
                .take(TRACE_CHUNK)
                .collect::<std::result::Result<_, _>>()?;
            let Some(last) = keys.last() else { break };
            start = Bound::Excluded(last.clone());
            for key in keys {
                if cleared >= limit {
                    *more = true;
                    break 'chunks;
                }
                if self.clear_traces_of(&key)? {
                    cleared += 1;
                    if cleared % super::FLUSH_EVERY == 0 {
                        self.db.flush()?;
                    }
                }
                until = u64::from_be_bytes(key[..8].try_into().unwrap_or([0; 8]));
            }
        }
        if until > from {
            self.set_meta(TRACES_CLEARED_KEY, &until)?;
        }
        self.db.flush()?;
        Ok(cleared)
    }

    /// Clears the traces of the conversation at activity `key`; whether it had any.
    fn clear_traces_of(&self, key: &[u8]) -> Result<bool> {
        let Some(bytes) = self.conversations.get(&key[8..])? else { return Ok(false) };
        let mut conversation: Conversation = decode(&key[8..], &bytes)?;
        if conversation.decisions.iter().all(|d| d.trace.0.is_empty()) {
            return Ok(false);
        }
        for decision in &mut conversation.decisions {
            decision.trace = Default::default();
        }
        // A commit meanwhile wins: its conversation is newer, and is cleared later.
        let cleared_bytes = super::encode(&conversation);
        Ok(self.conversations.compare_and_swap(&key[8..], Some(&bytes), Some(&cleared_bytes))?)
    }
}
