//! The case a messenger chat became, as a lifecycle with its transitions in one place:
//! none → queued (a handover, a `kind: cases` rule) → known (read back from Salesforce, or
//! linked by a person), and the known case open, closed by a person, or closed by
//! casebridge at the chat's close (a rule's `close_with_conversation`). Two writers hold a
//! chat (the daemon's decisions and the hub's own writes), so two copies are merged by
//! keeping the later state, never by or-ing flags.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the chat's case stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum ChatCase {
    /// No case was made for the chat.
    #[default]
    None,
    /// A case was queued through the outbox; Salesforce's id is not read back yet.
    Queued {
        #[serde(default, skip_serializing_if = "CaseStatus::is_open")]
        status: CaseStatus,
    },
    /// Salesforce has the case, as last read (or as a person linked it).
    Known {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<String>,
        /// Its `SystemModstamp` when last read: only its news is read again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modstamp: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "CaseStatus::is_open")]
        status: CaseStatus,
    },
}

/// Whether the chat's case is open, and who closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    #[default]
    Open,
    /// A person closed it: it stays closed unless a person takes the chat again.
    ClosedByPerson,
    /// casebridge closed it when the chat closed: the chat going on reopens it.
    ClosedByRule,
}

impl CaseStatus {
    fn is_open(&self) -> bool {
        *self == CaseStatus::Open
    }
}

impl ChatCase {
    /// The case's Salesforce id, once known.
    pub fn id(&self) -> Option<&str> {
        match self {
            ChatCase::Known { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Whether a case was made (queued or known).
    pub fn exists(&self) -> bool {
        *self != ChatCase::None
    }

    pub fn status(&self) -> CaseStatus {
        match self {
            ChatCase::None => CaseStatus::Open,
            ChatCase::Queued { status } | ChatCase::Known { status, .. } => *status,
        }
    }

    /// When it was last read.
    pub fn modstamp(&self) -> Option<DateTime<Utc>> {
        match self {
            ChatCase::Known { modstamp, .. } => *modstamp,
            _ => None,
        }
    }

    /// Whether writing the case again must reopen it: casebridge closed it, or a person
    /// did and the chat is handed to a person again.
    pub fn reopens_for(&self, handover: bool) -> bool {
        match self.status() {
            CaseStatus::ClosedByRule => true,
            CaseStatus::ClosedByPerson => handover,
            CaseStatus::Open => false,
        }
    }

    /// A case is queued for the chat (a known one stays known).
    pub fn queued(self) -> ChatCase {
        match self {
            ChatCase::None => ChatCase::Queued { status: CaseStatus::Open },
            other => other,
        }
    }

    /// The case as Salesforce shows it now. Closed when casebridge closed it stays casebridge's
    /// close; any other close is a person's.
    pub fn read(self, id: String, number: String, modstamp: DateTime<Utc>, closed: bool) -> ChatCase {
        let status = match (closed, self.status()) {
            (false, _) => CaseStatus::Open,
            (true, CaseStatus::ClosedByRule) => CaseStatus::ClosedByRule,
            (true, _) => CaseStatus::ClosedByPerson,
        };
        ChatCase::Known { id, number: Some(number), modstamp: Some(modstamp), status }
    }

    /// A case a person made by hand and linked to the chat.
    pub fn linked(self, id: String) -> ChatCase {
        match self {
            known @ ChatCase::Known { .. } => known,
            _ => ChatCase::Known { id, number: None, modstamp: None, status: CaseStatus::Open },
        }
    }

    /// casebridge closes the case with the chat.
    pub fn closed_by_rule(self) -> ChatCase {
        self.with_status(CaseStatus::ClosedByRule)
    }

    /// A write that reopens the case was queued.
    pub fn reopened(self) -> ChatCase {
        self.with_status(CaseStatus::Open)
    }

    fn with_status(self, new: CaseStatus) -> ChatCase {
        match self {
            ChatCase::None => ChatCase::None,
            ChatCase::Queued { .. } => ChatCase::Queued { status: new },
            ChatCase::Known { id, number, modstamp, .. } => ChatCase::Known { id, number, modstamp, status: new },
        }
    }

    /// How far along the lifecycle a state is.
    fn stage(&self) -> u8 {
        match self {
            ChatCase::None => 0,
            ChatCase::Queued { .. } => 1,
            ChatCase::Known { .. } => 2,
        }
    }

    /// The later of this copy's state and `other`'s (the store's, written meanwhile): the
    /// further stage; between two known cases, the later read; on a tie, this copy's. A
    /// further stage that no read brought (a person linked a case by hand) keeps this
    /// copy's status: a close casebridge queued meanwhile is still casebridge's.
    pub fn later(self, other: &ChatCase) -> ChatCase {
        let other_is_later = match (self.stage(), other.stage()) {
            (mine, theirs) if mine != theirs => theirs > mine,
            _ => other.modstamp() > self.modstamp(),
        };
        match (other_is_later, other.modstamp()) {
            (false, _) => self,
            (true, None) if self.exists() => other.clone().with_status(self.status()),
            (true, _) => other.clone(),
        }
    }

    /// The case's number, once read back.
    pub fn number(&self) -> Option<&str> {
        match self {
            ChatCase::Known { number, .. } => number.as_deref(),
            _ => None,
        }
    }

    /// The state older records kept as flags.
    pub fn from_flags(flags: LegacyCaseFlags) -> ChatCase {
        let status = if flags.closed_by_rule {
            CaseStatus::ClosedByRule
        } else if flags.is_closed {
            CaseStatus::ClosedByPerson
        } else {
            CaseStatus::Open
        };
        match flags.id {
            Some(id) => ChatCase::Known { id, number: flags.number, modstamp: flags.modstamp, status },
            None if flags.queued => ChatCase::Queued { status },
            None => ChatCase::None,
        }
    }
}

/// The flags records written before [`ChatCase`] kept instead.
#[derive(Debug, Clone, Default)]
pub struct LegacyCaseFlags {
    pub id: Option<String>,
    pub number: Option<String>,
    pub modstamp: Option<DateTime<Utc>>,
    pub queued: bool,
    pub is_closed: bool,
    pub closed_by_rule: bool,
}

#[cfg(test)]
mod tests;
