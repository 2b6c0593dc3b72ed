//! The conversations' summaries (`model::Summary`), kept as the value of each
//! conversation's entry in the activity index: its state's name, a NUL, then the summary.
//! The index is ordered by last activity, so a report over a period reads the summaries of
//! the conversations active since it began, and never a conversation.

use chrono::{DateTime, Utc};

use super::{FLUSH_EVERY, Result, Store, decode, encode, state_name};
use crate::model::{Conversation, Summary};

/// Set in `meta` once every activity entry carries its summary.
const SUMMARIES_KEY: &[u8] = b"activity_summaries";

/// A conversation's activity entry value.
pub(super) fn activity_value(conversation: &Conversation) -> Vec<u8> {
    let mut value = state_name(&conversation.state).as_bytes().to_vec();
    value.push(0);
    value.extend(encode(&Summary::of(conversation)));
    value
}

/// The state's name in an activity entry's value (all of it in an older store's).
pub(super) fn activity_state(value: &[u8]) -> &[u8] {
    value.split(|b| *b == 0).next().unwrap_or_default()
}

impl Store {
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
        let mut written = 0usize;
        for conversation in self.conversations() {
            let c = conversation?;
            let Some(key) = self.activity_key.get(c.id.as_bytes())? else { continue };
            self.activity.insert(key, activity_value(&c))?;
            written += 1;
            if written.is_multiple_of(FLUSH_EVERY) {
                self.db.flush()?;
            }
        }
        self.meta.insert(SUMMARIES_KEY, &[1])?;
        self.db.flush()?;
        Ok(self)
    }
}
