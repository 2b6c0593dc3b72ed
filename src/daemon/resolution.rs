//! Resolutions as the daemon keeps them: each decision moves a conversation the agent took
//! part in to its next resolution (and the mapped case fields with it), and the quiet
//! timer resolves conversations whose customer stayed quiet after an answer. The timer
//! reads the store's index of awaiting conversations, oldest first and only those due: no
//! Salesforce call to find them, one write (the mapped fields) for each that changes.

use chrono::Utc;

use super::channel::ConversationChannel;
use super::process::event;
use super::shared::Shared;
use super::{CycleReport, DaemonError, EventKind};
use crate::config::SilenceAfterSuggestions;
use crate::decide::{RuleSnapshot, Rules};
use crate::model::{self, Action, Conversation, Decision, Moment, Resolution, Trace};

/// The most conversations the quiet timer resolves in one cycle (the rest wait a cycle).
pub(super) const QUIET_PER_CYCLE: usize = 500;

impl Shared {
    /// Moves the conversation to the resolution its decision leads to; when the state
    /// changes, the outbound mappings run again so mapped fields carry it.
    pub(super) fn resolve(
        &self,
        conv: &mut Conversation,
        decision: &mut Decision,
        rules: &dyn Rules,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let (moved_to, mapped) = crate::decide::resolution::resolve(rules, conv, decision, Utc::now());
        if let Some(state) = moved_to {
            self.metrics.resolution(state.as_str());
            if state == Resolution::HardResolution {
                let detail = "the customer confirmed the answer solved it (hard resolution)".to_string();
                report.events.push(event(conv, EventKind::Resolved, detail.clone(), detail));
            }
        }
        if let Err(e) = mapped {
            self.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?;
        }
        Ok(())
    }

    /// Hands a conversation over whose customer did not say whether the articles offered
    /// answered their question (the admin's `on_silence: handover`), through the same
    /// planning as a decision's handover, with the articles in the note.
    async fn hand_over_after_silence<C: ConversationChannel>(
        &self,
        channel: &mut C,
        conv: Conversation,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let handover = crate::model::Handover {
            target: crate::model::DEFAULT_TARGET.into(),
            reason: "The customer did not say whether the suggested articles answered their question.".into(),
            rule: "suggestions_unanswered".into(),
        };
        let handover = crate::decide::with_suggestions(handover, crate::decide::offered(&conv).unwrap_or_default());
        let mut trace = Trace::default();
        let detail = "the customer said nothing after the articles offered; agent.suggestions.on_silence is handover";
        trace.record(
            model::TraceStage::HandoverAfter,
            "suggestions_unanswered",
            true,
            detail,
            std::time::Instant::now(),
        );
        let decision = Decision { handover: Some(handover), trace, ..Decision::empty(&rules.id()) };
        let pending = super::process::Pending { conv, unanswered: Vec::new() };
        self.finish(channel, pending, Ok(decision), rules, report).await
    }

    /// Resolves a conversation of `channel` whose customer stayed quiet for the rule set's
    /// `quiet_after` since an answer: soft resolution, or abandoned when they were unhappy
    /// (or, after articles offered, what the admin chose).
    pub(super) async fn resolve_quiet<C: ConversationChannel>(
        &self,
        channel: &mut C,
        mut conv: Conversation,
        cutoff: chrono::DateTime<Utc>,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        // Still quiet as it is now: awaiting since the cutoff, nothing unanswered, no retry.
        let Some(awaiting) = conv.resolution.filter(|r| r.state == Resolution::AwaitingCustomer && r.since <= cutoff)
        else {
            return Ok(());
        };
        if conv.state != crate::model::ConversationState::Open
            || conv.retry_at.is_some()
            || !conv.unanswered().is_empty()
        {
            return Ok(());
        }
        // Silence after articles offered (the latest reply's) is what the admin chose.
        let offered = crate::decide::offered(&conv).is_some();
        if offered && self.settings.silence_after_suggestions == SilenceAfterSuggestions::Handover {
            return self.hand_over_after_silence(channel, conv, rules, report).await;
        }
        let resolved = model::resolution::after_quiet(awaiting, Utc::now());
        conv.resolution = Some(resolved);
        self.metrics.resolution(resolved.state.as_str());
        let mut trace = Trace::default();
        let mut actions = channel.close_on_silence(self, &mut conv, rules, &mut trace, report).await?;
        match rules.evaluate(&conv).outbound(Moment::Sync, &mut trace) {
            Ok(fields) if !fields.is_empty() => {
                // A messenger conversation that never became a case has no fields to write.
                if let Some(case_id) = conv.case_id() {
                    actions.push(Action::UpdateFields { case_id: case_id.to_string(), fields });
                }
            }
            Ok(_) => {}
            Err(e) => self.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?,
        }
        let detail = format!(
            "{} after {} without a word from the customer",
            resolved.state.as_str().replace('_', " "),
            crate::config::duration::format(&rules.quiet_after())
        );
        report.events.push(event(&conv, EventKind::Resolved, detail.clone(), detail));
        channel.commit(self, &conv, actions)
    }
}
