//! The queues of conversations due: the cases whose agent failed for now (`retries`), and
//! the chats a visitor wrote in (to decide, or, handed over, to forward to the case) or
//! whose agent is due again (`chats_due`),
//! each its channel's own. Both are written in the commit's transaction with the
//! conversation (see `Store::commit`).

use chrono::{DateTime, Utc};

use super::{Result, Store, decode};

impl Store {
    /// Ids of the cases due for a decision again at `now` (their agent failed for now).
    pub fn due_retries(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        due_in(&self.retries, now)
    }

    /// Ids of the messenger conversations due for a decision at `now`: a visitor wrote,
    /// or the agent failed for now and is due again.
    pub fn due_chats(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        due_in(&self.chats_due, now)
    }

    /// Moves the chats a store written before `chats_due` existed kept in `retries` (the
    /// cases' queue then held both) to their own queue.
    pub(super) fn with_chats_due(self) -> Result<Store> {
        for item in self.retries.iter() {
            let (id, at) = item?;
            if crate::model::is_messenger_id(&String::from_utf8_lossy(&id)) {
                self.chats_due.insert(&id, at)?;
                self.retries.remove(&id)?;
            }
        }
        Ok(self)
    }
}

/// The ids in a due index (id → when) that are due by `now`.
fn due_in(tree: &super::kv::Tree, now: DateTime<Utc>) -> Result<Vec<String>> {
    let mut due = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        let at: DateTime<Utc> = decode(&k, &v)?;
        if at <= now {
            due.push(String::from_utf8_lossy(&k).into_owned());
        }
    }
    Ok(due)
}
