//! Resolutions: what became of a conversation the AI agent took part in, the figure a
//! support team judges the agent by. After an answer the customer is awaited; their
//! confirmation is a hard resolution; going quiet for `quiet_after` is a soft resolution,
//! or abandoned when their last words were unhappy; a handover is routed to the team.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a conversation the agent took part in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The agent answered; the customer has not written since.
    AwaitingCustomer,
    /// The customer went quiet for `quiet_after` after an answer.
    SoftResolution,
    /// The customer confirmed the answer solved it.
    HardResolution,
    /// Handed to a person or queue.
    RoutedToTeam,
    /// The customer was unhappy, then went quiet.
    Abandoned,
}

impl Resolution {
    pub const ALL: [Resolution; 5] = [
        Resolution::AwaitingCustomer,
        Resolution::SoftResolution,
        Resolution::HardResolution,
        Resolution::RoutedToTeam,
        Resolution::Abandoned,
    ];

    /// The name rules, metrics and the admin API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::AwaitingCustomer => "awaiting_customer",
            Resolution::SoftResolution => "soft_resolution",
            Resolution::HardResolution => "hard_resolution",
            Resolution::RoutedToTeam => "routed_to_team",
            Resolution::Abandoned => "abandoned",
        }
    }

    /// Whether the agent resolved the conversation (soft or hard).
    pub fn is_resolved(self) -> bool {
        matches!(self, Resolution::SoftResolution | Resolution::HardResolution)
    }
}

/// A conversation's resolution and when it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolutionState {
    pub state: Resolution,
    pub since: DateTime<Utc>,
    /// The customer's last message sounded unhappy (going quiet then is "abandoned").
    #[serde(default)]
    pub unhappy: bool,
}

/// What the rules made of the customer's message after an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// The customer confirmed the answer solved their problem.
    pub confirmed: bool,
    /// The customer sounds unhappy.
    pub unhappy: bool,
}

/// The resolution after a decision: a confirmation is a hard resolution; a handover of a
/// conversation the agent took part in is routed to the team; an answer awaits the
/// customer (unhappy when their message was). Anything else leaves it as it was.
pub fn after_decision(
    previous: Option<ResolutionState>,
    ai_involved: bool,
    decision: &super::Decision,
    now: DateTime<Utc>,
) -> Option<ResolutionState> {
    let state = |state, unhappy| Some(ResolutionState { state, since: now, unhappy });
    if decision.confirmed {
        state(Resolution::HardResolution, false)
    } else if decision.handover.is_some() {
        if ai_involved { state(Resolution::RoutedToTeam, decision.unhappy) } else { previous }
    } else if decision.reply.is_some() {
        state(Resolution::AwaitingCustomer, decision.unhappy)
    } else {
        previous
    }
}

/// What a conversation awaiting the customer becomes once they stayed quiet long enough.
pub fn after_quiet(awaiting: ResolutionState, now: DateTime<Utc>) -> ResolutionState {
    let state = if awaiting.unhappy { Resolution::Abandoned } else { Resolution::SoftResolution };
    ResolutionState { state, since: now, unhappy: awaiting.unhappy }
}
