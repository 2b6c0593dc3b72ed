//! A visitor's rating (CSAT) onto the case their chat became: the outbound mappings an
//! admin marks `on: [rating]` run once a rating arrives (they read it as `csat`), and what
//! they give is written to the chat's case, upserted (update only) by the conversation's
//! id: queued behind the case's own create and earlier writes, so it needs no case id and
//! never overtakes them. A rating given before the chat had a case waits, and goes onto
//! the case the chat becomes (a handover, a `kind: cases` rule, one made by hand).

use super::ChatChannel;
use crate::channels::messenger::plan;
use crate::daemon::DaemonError;
use crate::daemon::shared::Shared;
use crate::decide::Rules;
use crate::model::{Action, Conversation, Moment, Trace};

impl ChatChannel {
    /// The case write a rating not yet mapped gives, marking it mapped; nothing while the
    /// chat has no case.
    pub(super) fn map_rating(
        &self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &dyn Rules,
    ) -> Result<Vec<Action>, DaemonError> {
        if conv.csat.as_ref().is_none_or(|c| c.mapped) {
            return Ok(Vec::new());
        }
        if !conv.messenger.as_ref().is_some_and(|m| m.case.exists()) {
            return Ok(Vec::new());
        }
        if let Some(csat) = conv.csat.as_mut() {
            csat.mapped = true;
        }
        let mut trace = Trace::default();
        match rules.evaluate(conv).outbound(Moment::Rating, &mut trace) {
            Ok(fields) if !fields.is_empty() => Ok(vec![plan::by_conversation(conv, "Case", fields, true)]),
            Ok(_) => Ok(Vec::new()),
            Err(e) => {
                shared.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?;
                Ok(Vec::new())
            }
        }
    }
}
