//! The stages every channel's conversations go through once they need a decision: decide
//! (up to `agent.concurrency` at once, on one snapshot of the rule set), keep a conversation
//! whose agent failed for now to try again, move the resolution, plan the actions in the conversation's
//! channel (`dispatch.rs`), apply the decision and commit the conversation with its actions
//! in one store transaction.

use chrono::{Duration as ChronoDuration, Utc};
use futures_util::StreamExt;

use super::channel::ConversationChannel;
use super::shared::Shared;
use super::{ConversationEvent, CycleReport, DaemonError, EventKind};
use crate::act::plan::HandoverTo;
use crate::decide::{self, DecideError, RuleSnapshot};
use crate::model::{Action, Conversation, ConversationState, Decision, RuleError};

/// A conversation that needs a decision, waiting for it.
pub(super) struct Pending {
    pub(super) conv: Conversation,
    /// The customer parts the decision answers.
    pub(super) unanswered: Vec<String>,
}

impl Shared {
    /// Decides conversations of `channel` that need a decision, `agent_concurrency` at a
    /// time, and commits each with its actions in order, all on the one snapshot of the
    /// rule set `rules`.
    pub(super) async fn decide_pending<C: ConversationChannel>(
        &self,
        channel: &mut C,
        pending: Vec<Pending>,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        if pending.is_empty() {
            return Ok(());
        }
        let (agent, metrics) = (self.agent.clone(), self.metrics.clone());
        let (rules_ref, agent_ref, metrics_ref) = (rules, &agent, &metrics);
        // Each conversation is committed as soon as it and those before it are decided, not
        // when the whole batch is: a stop mid-batch loses no answer already made.
        let mut decided = futures_util::stream::iter(pending)
            .map(|p| async move {
                let started = std::time::Instant::now();
                let decided = decide::decide(rules_ref.as_ref().as_ref(), agent_ref, &p.conv).await;
                metrics_ref.decision_seconds(started.elapsed().as_secs_f64());
                (p, decided)
            })
            .buffered(self.settings.agent_concurrency.max(1));
        while let Some((p, result)) = decided.next().await {
            self.finish(channel, p, result, rules, report).await?;
        }
        Ok(())
    }

    /// Acts on a conversation's decision: plans its actions and commits them with it. What
    /// the rules say while planning (mappings after the resolution, a chat's case and
    /// closing) comes from `rules`, the snapshot the decision was made on, and is traced in
    /// the decision.
    pub(super) async fn finish<C: ConversationChannel>(
        &self,
        channel: &mut C,
        pending: Pending,
        decided: Result<Decision, DecideError>,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let Pending { mut conv, unanswered } = pending;
        let Some(mut decision) = self.decision_to_act_on(channel, &mut conv, decided, &rules.id(), report)? else {
            return Ok(());
        };
        self.resolve(&mut conv, &mut decision, rules.as_ref().as_ref(), report)?;
        let handover = match &decision.handover {
            Some(h) => Some(self.handover_to(&conv.id, h).await),
            None => None,
        };
        let target_id = handover.as_ref().map(|h| h.owner_id.clone());
        let actions = channel.plan(self, &mut conv, &mut decision, rules, handover, report).await?;
        self.apply(channel, conv, decision, actions, unanswered, target_id, report)
    }

    /// The decision to act on. An agent that failed for now leaves the conversation to be
    /// tried again later (committed, no decision); one that failed for good is a handover.
    fn decision_to_act_on<C: ConversationChannel>(
        &self,
        channel: &mut C,
        conv: &mut Conversation,
        decided: Result<Decision, DecideError>,
        rules_id: &str,
        report: &mut CycleReport,
    ) -> Result<Option<Decision>, DaemonError> {
        self.metrics.cases_processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match decided {
            Ok(d) => {
                if let Some(answer) = &d.agent {
                    self.metrics.agent_answer(answer);
                }
                Ok(Some(d))
            }
            Err(DecideError::Agent(e)) if e.is_transient() => {
                conv.agent_failures += 1;
                let wait = ChronoDuration::seconds((30i64 << conv.agent_failures.min(6)).min(1800));
                conv.retry_at = Some(Utc::now() + wait);
                self.record_error(Some(&conv.id), "agent", "AGENT_ERROR", &e.to_string())?;
                let detail = format!("{e}; trying again in {}s", wait.num_seconds());
                report.events.push(event(conv, EventKind::AgentFailed, detail.clone(), detail));
                channel.commit(self, conv, Vec::new())?;
                Ok(None)
            }
            Err(DecideError::Agent(e)) => {
                self.record_error(Some(&conv.id), "agent", "AGENT_ERROR", &e.to_string())?;
                let base = Decision::empty(rules_id);
                let error = RuleError { rule: "agent".into(), message: e.to_string() };
                Ok(Some(decide::fallback(base, Default::default(), error)))
            }
        }
    }

    /// Applies a decision to its conversation (answered parts, attributes, topics, state),
    /// reports it, and commits the conversation with the decision's actions.
    #[allow(clippy::too_many_arguments)]
    fn apply<C: ConversationChannel>(
        &self,
        channel: &mut C,
        mut conv: Conversation,
        decision: Decision,
        actions: Vec<Action>,
        unanswered: Vec<String>,
        target_id: Option<String>,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let new_topics: Vec<&str> =
            decision.topics.iter().filter(|t| !conv.topics.contains(*t)).map(String::as_str).collect();
        let tagged =
            if new_topics.is_empty() { String::new() } else { format!(" [topics: {}]", new_topics.join(", ")) };
        if let Some(error) = decision.trace.0.iter().find(|t| t.stage == crate::model::TraceStage::Error) {
            // A rule failed: admins see why (the decision fell back to a handover, or, for a
            // failing lead mapping, went on without writing the lead).
            self.record_error(Some(&conv.id), "rules", "RULE_ERROR", &format!("{}: {}", error.rule, error.detail))?;
        }
        self.metrics.topics_assigned.fetch_add(new_topics.len() as u64, std::sync::atomic::Ordering::Relaxed);
        conv.handled.extend(unanswered);
        conv.attributes.extend(decision.attributes.clone());
        conv.topics.extend(decision.topics.iter().cloned());
        conv.retry_at = None;
        conv.agent_failures = 0;
        if let Some(reply) = &decision.reply {
            self.metrics.replies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            conv.replies_sent += 1;
            conv.first_reply_at.get_or_insert_with(chrono::Utc::now);
            let backend = decision.agent.as_ref().map_or("", |a| a.backend.as_str());
            let offered = decision.agent.as_ref().map(|a| a.suggestions.as_slice()).unwrap_or_default();
            let said = if offered.is_empty() {
                first_line(reply)
            } else {
                let titles: Vec<&str> = offered.iter().map(|s| s.title.as_str()).collect();
                format!("offered {} article(s) to confirm: {}", offered.len(), titles.join("; "))
            };
            let detail = format!("{said}{tagged} ({backend})");
            let summary = format!("replied, {} characters{tagged} ({backend})", reply.chars().count());
            report.events.push(event(&conv, EventKind::Replied, detail, summary));
        }
        if let Some(h) = &decision.handover {
            let target_id = target_id.unwrap_or_default();
            conv.state = ConversationState::HandedOver { target_id: target_id.clone(), reason: h.reason.clone() };
            let target = self.target_name(&target_id);
            self.metrics.handover(&target, &h.rule);
            report.events.push(event(
                &conv,
                EventKind::HandedOver,
                format!("to {target} by rule {}: {}{tagged}", h.rule, first_line(&h.reason)),
                format!("handed over to {target} by rule {}{tagged}", h.rule),
            ));
        }
        conv.push_decision(decision);
        channel.commit(self, &conv, actions)
    }

    /// Where a decision's handover goes: the rule's target when the org has it, else the
    /// default target with a note saying why (and a sync error for the admin).
    async fn handover_to(&self, case_id: &str, handover: &crate::model::Handover) -> HandoverTo {
        match self.target_id(&handover.target).await {
            Ok(owner_id) => HandoverTo { owner_id, note: handover.reason.clone() },
            Err(e) => {
                let problem = format!(
                    "rule {} names handover target {:?}, which cannot be used: {e}",
                    handover.rule, handover.target
                );
                if let Err(store) = self.record_error(Some(case_id), "handover", "HANDOVER_TARGET_NOT_FOUND", &problem)
                {
                    tracing::warn!(error = %store, "Cannot record a sync error.");
                }
                HandoverTo {
                    owner_id: self.default_target.id.clone(),
                    note: format!(
                        "{}\n(The rule's target {:?} could not be used: {e}; handed to the default target.)",
                        handover.reason, handover.target
                    ),
                }
            }
        }
    }
}

/// A case's event for the cycle report.
pub(super) fn event(conv: &Conversation, kind: EventKind, detail: String, summary: String) -> ConversationEvent {
    ConversationEvent { conversation_id: conv.id.clone(), case_number: conv.case_number.clone(), kind, detail, summary }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}
