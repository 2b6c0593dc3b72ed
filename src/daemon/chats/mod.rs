//! The chat channel's side of the daemon: a component with its own state (the messenger's
//! hub, the cursor of its cases' reads, Case's describe and record types, looked up once)
//! that the daemon's loop and stages call with the state they share ([`Shared`]). It knows
//! the visitors (matching them to the org, their Lead and Tasks: `visitors.rs`,
//! `leads.rs`), what a decision does to a chat and its case, and what its closing writes
//! (`cases.rs`), and reads the cases chats became (`mirror.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::DaemonError;
use crate::channels::messenger::Messenger;
use crate::model::{Action, Conversation};
use crate::salesforce::client::SObjectDescribe;

mod cases;
mod leads;
mod mirror;
mod visitors;

pub struct ChatChannel {
    hub: Arc<Messenger>,
    /// Case record types by the name a setting or rule gives, once looked up (`None`: the
    /// org lacks it).
    case_record_types: HashMap<String, Option<String>>,
    /// Case's describe, read once: the Status picklist's default (to reopen a case) and
    /// the transcript fields' lengths.
    case_describe: Option<SObjectDescribe>,
    /// The newest `SystemModstamp` the last complete read of chats' cases saw: the next
    /// read asks only for cases changed since (less the overlap). In memory: after a
    /// restart the first read takes every case once.
    mirror_cursor: Option<DateTime<Utc>>,
}

impl ChatChannel {
    pub fn new(hub: Arc<Messenger>) -> ChatChannel {
        ChatChannel { hub, case_record_types: HashMap::new(), case_describe: None, mirror_cursor: None }
    }

    pub fn hub(&self) -> &Arc<Messenger> {
        &self.hub
    }

    /// Commits a chat with its actions through its hub, which keeps what the visitor wrote
    /// meanwhile and tells the widget.
    pub fn commit(&self, conv: &Conversation, actions: Vec<Action>) -> Result<(), DaemonError> {
        Ok(self.hub.commit(conv.clone(), actions)?)
    }
}
