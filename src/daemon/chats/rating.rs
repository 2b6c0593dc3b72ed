//! A visitor's rating (CSAT) onto the case their chat became: the outbound mappings an
//! admin marks `on: [rating]` run once a rating arrives (they read it as `csat`), and
//! what they give is written to the chat's case. A rating given while the case is only
//! queued waits for Salesforce's id (the read of chats' cases maps it then); a chat that
//! became no case has nowhere to write it.

use super::ChatChannel;
use crate::daemon::DaemonError;
use crate::daemon::shared::Shared;
use crate::decide::Rules;
use crate::model::{Action, Conversation, Moment, Trace};

impl ChatChannel {
    /// The case write a rating not yet mapped gives, marking it mapped; nothing while the
    /// chat's case is only queued.
    pub(super) fn map_rating(
        &self,
        shared: &Shared,
        conv: &mut Conversation,
        rules: &dyn Rules,
    ) -> Result<Vec<Action>, DaemonError> {
        if conv.csat.as_ref().is_none_or(|c| c.mapped) {
            return Ok(Vec::new());
        }
        let case = conv.messenger.as_ref().map(|m| m.case.clone()).unwrap_or_default();
        if !case.exists() {
            mark_mapped(conv);
            return Ok(Vec::new());
        }
        let Some(case_id) = conv.case_id().map(str::to_string) else { return Ok(Vec::new()) };
        mark_mapped(conv);
        let mut trace = Trace::default();
        match rules.evaluate(conv).outbound(Moment::Rating, &mut trace) {
            Ok(fields) if !fields.is_empty() => Ok(vec![Action::UpdateFields { case_id, fields }]),
            Ok(_) => Ok(Vec::new()),
            Err(e) => {
                shared.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?;
                Ok(Vec::new())
            }
        }
    }
}

fn mark_mapped(conv: &mut Conversation) {
    if let Some(csat) = conv.csat.as_mut() {
        csat.mapped = true;
    }
}
