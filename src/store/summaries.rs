//! The activity index's readers, and the conversations' summaries (`model::Summary`) kept
//! as the value of each conversation's entry in it: its state's name, a NUL, then the
//! summary. The index is ordered by last activity, so the recently open conversations, the
//! admin's pages of conversations and a report over a period read the index (and only the
//! conversations shown), never every conversation.

use chrono::{DateTime, Utc};

use super::{RECENT_SCAN, Result, Store, decode, encode, state_name};
use crate::model::{Conversation, Summary};

/// How many conversations a state-filtered page of conversations counts, at most.
pub const RECENT_TOTAL_CAP: usize = 10_000;

/// Set in `meta` once every activity entry carries its summary.
const SUMMARIES_KEY: &[u8] = b"activity_summaries";

/// A conversation's activity entry value.
pub(super) fn activity_value(conversation: &Conversation) -> Vec<u8> {
    entry_value(state_name(&conversation.state), &Summary::of(conversation), None)
}

/// An activity entry's value: the state's name, a NUL, and `summary` merged with what the
/// entry it replaces (`previous`) recorded of decisions the conversation no longer keeps.
pub(super) fn entry_value(state: &str, summary: &Summary, previous: Option<&[u8]>) -> Vec<u8> {
    let before = previous.and_then(|v| {
        let at = v.iter().position(|b| *b == 0)?;
        serde_json::from_slice::<Summary>(&v[at + 1..]).ok()
    });
    let mut value = state.as_bytes().to_vec();
    value.push(0);
    match before {
        Some(before) => {
            let mut merged = summary.clone();
            merged.merge(before);
            value.extend(encode(&merged));
        }
        None => value.extend(encode(summary)),
    }
    value
}

/// The state's name in an activity entry's value (all of it in an older store's).
pub(super) fn activity_state(value: &[u8]) -> &[u8] {
    value.split(|b| *b == 0).next().unwrap_or_default()
}

impl Store {
    /// The case ids of the `limit` most recently active open conversations, among the
    /// [`RECENT_SCAN`] most recently active (a poll's cost never grows with history).
    pub fn recently_open(&self, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for item in self.activity.iter().rev().take(RECENT_SCAN) {
            let (key, value) = item?;
            // Messenger conversations are no Salesforce records: their ids are not case ids.
            if activity_state(&value) == b"open" && !crate::model::is_messenger_id(&String::from_utf8_lossy(&key[8..]))
            {
                out.push(String::from_utf8_lossy(&key[8..]).into_owned());
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Conversations newest activity first, optionally only those in `state`, paged: the
    /// page's conversations and the total that match. Only the page's records are read.
    pub fn recent_conversations(
        &self,
        state: Option<&str>,
        skip: usize,
        take: usize,
    ) -> Result<(Vec<Conversation>, usize)> {
        let mut total = 0;
        let mut page = Vec::new();
        for item in self.activity.iter().rev() {
            let (key, value) = item?;
            if state.is_some_and(|s| s.as_bytes() != activity_state(&value)) {
                continue;
            }
            if total >= skip && page.len() < take {
                let case_id = String::from_utf8_lossy(&key[8..]).into_owned();
                if let Some(c) = self.conversation(&case_id)? {
                    page.push(c);
                }
            }
            total += 1;
            // The page is read: without a filter the total is kept; with one, counting stops
            // at a bound (a poll of the admin page never walks years of history).
            if total >= skip + take && (state.is_none() || total >= RECENT_TOTAL_CAP) {
                break;
            }
        }
        if state.is_none() {
            total = total.max(self.conversation_count());
        }
        Ok((page, total))
    }

    /// The `take` most recently active messenger conversations, among the [`RECENT_SCAN`]
    /// most recently active: chats are told apart by their ids, so only they are read.
    pub fn recent_chats(&self, take: usize) -> Result<Vec<Conversation>> {
        let mut out = Vec::new();
        for item in self.activity.iter().rev().take(RECENT_SCAN) {
            let (key, _) = item?;
            let id = String::from_utf8_lossy(&key[8.min(key.len())..]).into_owned();
            if crate::model::is_messenger_id(&id)
                && let Some(c) = self.conversation(&id)?
            {
                out.push(c);
                if out.len() == take {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The summaries of the conversations last active at or after `since`, oldest first,
    /// with their ids. Entries of a store not yet summarised are skipped.
    pub fn summaries_since(&self, since: DateTime<Utc>) -> impl Iterator<Item = Result<(String, Summary)>> + '_ {
        let from = (since.timestamp_millis().max(0) as u64).to_be_bytes();
        self.activity.range(from.as_slice()..).filter_map(|item| {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let at = value.iter().position(|b| *b == 0)?;
            let id = String::from_utf8_lossy(&key[8.min(key.len())..]).into_owned();
            Some(decode(id.as_bytes(), &value[at + 1..]).map(|summary| (id, summary)))
        })
    }

    /// Gives every activity entry its summary, once (a store from before summaries):
    /// reads each conversation this one time, writing as it goes.
    pub(super) fn with_summaries(self) -> Result<Store> {
        if self.meta.get(SUMMARIES_KEY)?.is_some() {
            return Ok(self);
        }
        let count = self.conversation_count();
        if count > 0 {
            tracing::info!(conversations = count, "Summarising the stored conversations for the report, once.");
        }
        self.each_chunk_of_conversations(|chunk| {
            for c in chunk {
                let Some(key) = self.activity_key.get(c.id.as_bytes())? else { continue };
                self.activity.insert(key, activity_value(&c))?;
            }
            Ok(())
        })?;
        self.meta.insert(SUMMARIES_KEY, [1])?;
        self.db.flush()?;
        Ok(self)
    }
}
