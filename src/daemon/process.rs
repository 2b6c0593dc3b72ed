//! One updated case through the stages: build its conversation, settle it when no decision
//! is needed (assigned away, closed, nothing new), decide, plan the actions, and commit the
//! conversation with them in one store transaction.

use chrono::{Duration as ChronoDuration, Utc};
use futures_util::StreamExt;
use serde_json::Value as Json;

use super::{ConversationEvent, CycleReport, Daemon, DaemonError, EventKind};
use crate::act::plan::HandoverTo;
use crate::channels::cases::build::{self, Authors};
use crate::decide::{self, DecideError, RuleSnapshot};
use crate::model::{Action, Conversation, ConversationState, Decision, RuleError};
use crate::salesforce::directory::SetupError;
use crate::salesforce::id;
use crate::store::StoreError;

/// A conversation built and settled, waiting for its decision.
pub(super) struct Pending {
    pub(super) conv: Conversation,
    /// The customer parts the decision answers.
    pub(super) unanswered: Vec<String>,
}

impl Daemon {
    /// Builds, decides and commits a batch of rows, each a different case, with what the
    /// store holds for it (read by the caller). Without `force`, a row no newer than the
    /// store's is skipped.
    ///
    /// The agent is asked about up to `agent_concurrency` conversations at once (an AI
    /// service answers in seconds; one at a time, a burst of cases waits minutes). Each
    /// conversation is still decided once and committed with its actions in one store
    /// transaction, in the batch's order, so nothing the outbox guarantees changes: a crash
    /// before a conversation's commit leaves it to be decided again, as before.
    pub(super) async fn process_rows(
        &mut self,
        rows: Vec<(Json, Option<Conversation>)>,
        force: bool,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let rules = self.rules.load_full();
        let mut pending = Vec::new();
        for (row, stored) in rows {
            if let Some(p) = self.prepare(&row, stored, force, &rules, report)? {
                pending.push(p);
            }
        }
        self.decide_pending(pending, &rules, report).await
    }

    /// Decides conversations built and settled, `agent_concurrency` at a time, and commits
    /// each with its actions in order, all on the one snapshot of the rule set `rules`.
    pub(super) async fn decide_pending(
        &mut self,
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
            self.finish(p, result, rules, report).await?;
        }
        Ok(())
    }

    /// Builds the row's conversation on the stored one and settles it; returns it when it
    /// needs a decision.
    fn prepare(
        &mut self,
        row: &Json,
        stored: Option<Conversation>,
        force: bool,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Pending>, DaemonError> {
        let fresh = match build::from_case_row(row, &Authors { agent_user_id: &self.agent_user.id }) {
            Ok(c) => c,
            Err(e) => {
                self.record_error(Some(&e.case_id), "read_case", "UNREADABLE_CASE", &e.problem)?;
                report.events.push(ConversationEvent {
                    conversation_id: e.case_id.clone(),
                    case_number: String::new(),
                    kind: EventKind::Unreadable,
                    summary: "the case cannot be read (see casebridge errors)".into(),
                    detail: e.problem,
                });
                return Ok(None);
            }
        };
        let mut conv = match stored {
            Some(mut stored) => {
                if !force && fresh.modstamp <= stored.modstamp {
                    return Ok(None);
                }
                if !force && only_our_own_echo(&stored, &fresh) {
                    // Our reply bumped the case's stamp; nothing to decide or to keep.
                    self.echoes.insert(fresh.id.clone(), fresh.modstamp);
                    return Ok(None);
                }
                stored.merge(fresh);
                stored
            }
            None => fresh,
        };
        Ok(self.settle(&mut conv, rules, report)?.map(|unanswered| Pending { conv, unanswered }))
    }

    /// Acts on a conversation's decision: plans its actions and commits them with it. What
    /// the rules say while planning (mappings after the resolution, a chat's case and
    /// closing) comes from `rules`, the snapshot the decision was made on, and is traced in
    /// the decision.
    pub(super) async fn finish(
        &mut self,
        pending: Pending,
        decided: Result<Decision, DecideError>,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<(), DaemonError> {
        let Pending { mut conv, unanswered } = pending;
        let Some(mut decision) = self.settle_decision(&mut conv, decided, &rules.id(), report)? else {
            return Ok(());
        };
        self.resolve(&mut conv, &mut decision, rules.as_ref().as_ref(), report)?;
        let handover = match &decision.handover {
            Some(h) => Some(self.handover_to(&conv.id, h).await),
            None => None,
        };
        let target_id = handover.as_ref().map(|h| h.owner_id.clone());
        let actions = self.plan_by_channel(&mut conv, &mut decision, rules, handover, report).await?;
        self.apply(conv, decision, actions, unanswered, target_id, report)
    }

    /// Settles a conversation that needs no decision (assigned away, closed, nothing new)
    /// and commits it; otherwise returns the ids of the parts to answer.
    fn settle(
        &mut self,
        conv: &mut Conversation,
        rules: &RuleSnapshot,
        report: &mut CycleReport,
    ) -> Result<Option<Vec<String>>, DaemonError> {
        if !id::same(&conv.owner_id, &self.agent_user.id) {
            if conv.state == ConversationState::Open {
                conv.state = ConversationState::AssignedAway { owner_id: conv.owner_id.clone() };
                let detail = format!("now owned by {}", conv.owner_id);
                report.events.push(event(conv, EventKind::AssignedAway, detail.clone(), detail));
            }
            conv.retry_at = None;
            self.commit(conv, Vec::new())?;
            return Ok(None);
        }
        if conv.is_closed() {
            let mut actions = Vec::new();
            if conv.state != ConversationState::Closed {
                conv.state = ConversationState::Closed;
                // Mappings configured `on: [close]` write their fields now.
                let mut trace = crate::model::Trace::default();
                match rules.evaluate(conv).outbound(crate::model::Moment::Close, &mut trace) {
                    Ok(fields) if !fields.is_empty() => {
                        actions.push(Action::UpdateFields { case_id: conv.id.clone(), fields });
                    }
                    Ok(_) => {}
                    Err(e) => self.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?,
                }
                report.events.push(event(conv, EventKind::Closed, "the case is closed".into(), "closed".into()));
            }
            conv.retry_at = None;
            self.commit(conv, actions)?;
            return Ok(None);
        }
        if conv.state != ConversationState::Open {
            conv.state = ConversationState::Open;
            let detail = "assigned back to the agent user".to_string();
            report.events.push(event(conv, EventKind::Resumed, detail.clone(), detail));
        }
        let unanswered: Vec<String> = conv.unanswered().iter().map(|p| p.id.clone()).collect();
        if unanswered.is_empty() {
            conv.retry_at = None;
            self.commit(conv, Vec::new())?;
            return Ok(None);
        }
        Ok(Some(unanswered))
    }

    /// The decision to act on. An agent that failed for now leaves the conversation to be
    /// tried again later (committed, no decision); one that failed for good is a handover.
    fn settle_decision(
        &mut self,
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
                self.commit(conv, Vec::new())?;
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
    fn apply(
        &mut self,
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
        self.commit(&conv, actions)
    }

    /// Where a decision's handover goes: the rule's target when the org has it, else the
    /// default target with a note saying why (and a sync error for the admin).
    async fn handover_to(&mut self, case_id: &str, handover: &crate::model::Handover) -> HandoverTo {
        match self.resolve_target(&handover.target).await {
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

    /// A target's name for people, where it is known.
    fn target_name(&self, id: &str) -> String {
        if id == self.default_target.id {
            return self.default_target.name.clone();
        }
        self.targets.iter().find(|(_, v)| v.as_str() == id).map_or_else(|| id.to_string(), |(k, _)| k.clone())
    }

    pub(super) async fn resolve_target(&mut self, target: &str) -> Result<String, SetupError> {
        self.parts().0.resolve_target(target).await
    }

    pub(super) fn record_error(
        &self,
        case_id: Option<&str>,
        operation: &str,
        code: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        super::shared::record_error(&self.store, &self.metrics, case_id, operation, code, message)
    }
}

/// A case's event for the cycle report.
pub(super) fn event(conv: &Conversation, kind: EventKind, detail: String, summary: String) -> ConversationEvent {
    ConversationEvent { conversation_id: conv.id.clone(), case_number: conv.case_number.clone(), kind, detail, summary }
}

/// Whether `fresh` differs from `stored` only by parts our own agent user wrote (the echo
/// of our replies), with the same owner and status: nothing to decide, nothing to store.
fn only_our_own_echo(stored: &Conversation, fresh: &Conversation) -> bool {
    let known: std::collections::BTreeSet<&str> = stored.parts.iter().map(|p| p.id.as_str()).collect();
    let new_parts: Vec<_> = fresh.parts.iter().filter(|p| !known.contains(p.id.as_str())).collect();
    !new_parts.is_empty()
        && new_parts.iter().all(|p| p.author == crate::model::AuthorKind::Bot)
        && stored.owner_id == fresh.owner_id
        && stored.status == fresh.status
        && stored.state == ConversationState::Open
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}
