//! The resolution a decision moves its conversation to, and the outbound mappings run again
//! on the conversation as the decision leaves it when that moves it: part of the decision,
//! traced in it, so that what `casebridge rules explain` and `rules test` show is what the
//! daemon writes (`daemon/resolution.rs` adds the metrics, events and sync errors).

use chrono::{DateTime, Utc};

use super::Rules;
use crate::model::{self, Conversation, Decision, Moment, Resolution, RuleError};

/// Moves `conv` to the resolution `decision` leads to, at `now`; when its state changes,
/// the mappings run again (into `decision.trace`) and what they set joins the decision's
/// field updates, where the decision's own mappings did not set the field. Returns the new
/// state when it changed, and the mappings' error, if one failed.
pub fn resolve(
    rules: &dyn Rules,
    conv: &mut Conversation,
    decision: &mut Decision,
    now: DateTime<Utc>,
) -> (Option<Resolution>, Result<(), RuleError>) {
    let before = conv.resolution.map(|r| r.state);
    conv.ai_involved |= decision.agent.is_some();
    conv.resolution = model::resolution::after_decision(conv.resolution, conv.ai_involved, decision, now);
    let after = conv.resolution.map(|r| r.state);
    if after == before {
        return (None, Ok(()));
    }
    let moment = if decision.handover.is_some() { Moment::Handover } else { Moment::Sync };
    let mut after_decision = conv.clone();
    after_decision.attributes.extend(decision.attributes.clone());
    after_decision.topics.extend(decision.topics.iter().cloned());
    let mapped = match rules.evaluate(&after_decision).outbound(moment, &mut decision.trace) {
        Ok(fields) => {
            for (field, value) in fields {
                decision.field_updates.entry(field).or_insert(value);
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    (after, mapped)
}
