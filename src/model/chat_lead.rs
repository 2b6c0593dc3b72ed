//! The Lead a messenger visitor became, as a lifecycle: none → made by this chat (upserted
//! by the chat's id) or shared (an earlier chat with the same email made it, and this one
//! writes to it by that chat's id); and whether a verified visitor's Task waits for the
//! Lead's id, read back once Salesforce has made it.

use serde::{Deserialize, Serialize};

/// Where the chat's Lead stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum ChatLead {
    /// No Lead was queued for the chat (the visitor matched someone, left no email, or
    /// leads are off).
    #[default]
    None,
    /// This chat queued the visitor's Lead, upserted by the chat's id.
    Made {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        task_pending: bool,
    },
    /// An earlier chat with the same email made the visitor's Lead: written by its id.
    Shared {
        key: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        task_pending: bool,
    },
}

impl ChatLead {
    /// Whether the chat has a Lead (made or shared).
    pub fn exists(&self) -> bool {
        *self != ChatLead::None
    }

    /// Whether this chat made the Lead.
    pub fn made_here(&self) -> bool {
        matches!(self, ChatLead::Made { .. })
    }

    /// The External ID the Lead is upserted by, for the chat `conversation_id`.
    pub fn key<'a>(&'a self, conversation_id: &'a str) -> Option<&'a str> {
        match self {
            ChatLead::None => None,
            ChatLead::Made { .. } => Some(conversation_id),
            ChatLead::Shared { key, .. } => Some(key),
        }
    }

    /// Whether a verified visitor's Task waits for the Lead's id.
    pub fn task_pending(&self) -> bool {
        match self {
            ChatLead::None => false,
            ChatLead::Made { task_pending } | ChatLead::Shared { task_pending, .. } => *task_pending,
        }
    }

    /// The Task was logged on the Lead.
    pub fn task_logged(self) -> ChatLead {
        match self {
            ChatLead::Made { .. } => ChatLead::Made { task_pending: false },
            ChatLead::Shared { key, .. } => ChatLead::Shared { key, task_pending: false },
            none => none,
        }
    }

    /// The later of this copy's state and `other`'s (the store's, written meanwhile): a
    /// Lead queued on either side stands, this copy's when both have one.
    pub fn later(self, other: &ChatLead) -> ChatLead {
        if !self.exists() && other.exists() { other.clone() } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::ChatLead;

    #[test]
    fn a_lead_is_keyed_by_the_chat_that_made_it_and_a_queued_one_is_never_lost() {
        let made = ChatLead::Made { task_pending: true };
        let shared = ChatLead::Shared { key: "m-first".into(), task_pending: false };
        assert_eq!((made.key("m-this"), shared.key("m-this")), (Some("m-this"), Some("m-first")));
        assert_eq!(ChatLead::None.key("m-this"), None);
        assert!(made.task_pending() && !made.clone().task_logged().task_pending());
        assert_eq!(ChatLead::None.later(&made), made, "queued meanwhile (by hand): kept");
        assert_eq!(shared.clone().later(&made), shared, "both queued: this copy's");
        assert_eq!(made.clone().later(&ChatLead::None), made);
    }
}
