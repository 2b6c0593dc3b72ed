//! The cases messenger conversations become: on handover (owned by the handover target),
//! or when a `kind: cases` rule fires (owned by the rule's owner, never the agent user, whose
//! cases the cases channel answers); and what a conversation's closing writes to its case
//! (the rule's fields again, the transcript, the closed status) and its Tasks.

use super::ChatChannel;
use crate::channels::messenger::{self, plan::CasePlan};
use crate::daemon::process::event;
use crate::daemon::shared::Shared;
use crate::daemon::{CycleReport, DaemonError, EventKind};
use crate::decide::Rules;
use crate::model::{Action, CaseRecord, CaseStatus, Conversation, ConversationState, Decision, Trace};
use crate::salesforce::{directory, id};

impl ChatChannel {
    /// What a decision does to a chat (see `channels::messenger::plan`). `handover_owner`
    /// is the handover target, resolved, when the decision hands over.
    pub(in crate::daemon) async fn plan_chat(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        decision: &mut Decision,
        rules: &dyn Rules,
        handover_owner: Option<&str>,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        let hub = self.hub.clone();
        let case = self.case_plan(shared, conv, decision, rules, handover_owner, report).await?;
        if let Some(plan) = &case
            && let Some(info) = conv.messenger.as_mut()
        {
            info.case = std::mem::take(&mut info.case).queued();
            if plan.reopen_status.is_some() {
                info.case = std::mem::take(&mut info.case).reopened();
            }
            if let Some(rule) = &plan.rule {
                info.case_rule = Some(rule.clone());
            }
        }
        let store = &shared.store;
        let mut failed = None;
        let mut actions = messenger::plan::plan(conv, decision, case, hub.settings(), || match store.new_id() {
            Ok(n) => format!("a{n}"),
            Err(e) => {
                failed = Some(e);
                String::new()
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        actions.extend(self.lead_follow_up(conv, decision, handover_owner));
        // A confirmation ends a chat the agent answered (it reopens if the visitor writes);
        // what it closes with sees the decision's attributes and topics.
        if decision.confirmed && decision.handover.is_none() && conv.state == ConversationState::Open {
            conv.attributes.extend(decision.attributes.clone());
            conv.topics.extend(decision.topics.iter().cloned());
            actions.extend(self.close_chat(shared, conv, false, rules, &mut decision.trace, report).await?);
        }
        Ok(actions)
    }

    /// The case a decision makes or writes again: on handover, owned by the target; when a
    /// `kind: cases` rule fires (and, for `action: create`, the chat has no case yet), owned
    /// by the rule's owner.
    async fn case_plan(
        &mut self,
        shared: &Shared,
        conv: &Conversation,
        decision: &mut Decision,
        rules: &dyn Rules,
        handover_owner: Option<&str>,
        report: &mut CycleReport,
    ) -> Result<Option<CasePlan>, DaemonError> {
        let settings = self.hub.settings().clone();
        let queued = conv.messenger.as_ref().is_some_and(|m| m.case.exists());
        // Salesforce has the case (it was read back): later writes only update it. Until
        // then a write carries the whole case, so it makes one if the first create failed.
        let known = conv.messenger.as_ref().is_some_and(|m| m.case.id().is_some());
        let rule = decision.case.as_ref().filter(|r| r.update || !queued);
        let owner_id = match (handover_owner, rule) {
            (Some(owner), _) => Some(owner.to_string()),
            // A rule writing a case made before leaves its owner be.
            (None, Some(_)) if known => None,
            (None, Some(rule)) => match self.case_owner(shared, conv, rule).await? {
                Some(owner) => Some(owner),
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        // A handover of a chat whose case a rule made keeps that rule's record type and
        // transcript field.
        let earlier = match (rule, conv.messenger.as_ref().and_then(|m| m.case_rule.as_deref())) {
            (None, Some(name)) => rules.evaluate(conv).case_rule(name, &mut decision.trace).ok().flatten(),
            _ => None,
        };
        let shaping = rule.or(earlier.as_ref());
        let record_type = shaping.map_or(settings.case_record_type.clone(), |r| r.record_type.clone());
        let record_type_id = match record_type {
            Some(name) => self.case_record_type(shared, &conv.id, &name).await?,
            None => None,
        };
        let mut fields = decision.field_updates.clone();
        if let Some(rule) = rule {
            fields.extend(rule.fields.clone());
            if handover_owner.is_none() {
                let detail = format!("case queued by rule {}", rule.rule);
                report.events.push(event(conv, EventKind::CaseCreated, detail.clone(), detail));
            }
        }
        let transcript_field = shaping.map_or(settings.transcript_field.clone(), |r| r.transcript_field.clone());
        // A case the rule closed at a close opens again when the chat goes on; one a person
        // closed, only for a handover (a person takes the chat).
        let reopen = conv.messenger.as_ref().is_some_and(|m| m.case.reopens_for(handover_owner.is_some()));
        let reopen_status = if reopen { self.case_default_status(shared).await } else { None };
        let transcript_max_chars = self.transcript_max_chars(shared, &transcript_field).await;
        Ok(Some(CasePlan {
            owner_id,
            record_type_id,
            transcript_field,
            transcript_max_chars,
            fields,
            reopen_status,
            rule: rule.map(|r| r.rule.clone()),
            // A case Salesforce has is written as an update: never a second, never checked
            // as a create (its required fields were given then).
            update_only: known,
        }))
    }

    /// Case's describe, read once (`None` while it cannot be read).
    async fn case_describe(&mut self, shared: &Shared) -> Option<&crate::salesforce::client::SObjectDescribe> {
        if self.case_describe.is_none() {
            match shared.client.describe("Case").await {
                Ok(d) => self.case_describe = Some(d),
                Err(e) => tracing::warn!(error = %e, "Cannot read Case's describe."),
            }
        }
        self.case_describe.as_ref()
    }

    /// How much of the transcript `field` holds: its described length when shorter than
    /// 32,000 characters, so that the latest messages are kept rather than the field
    /// refused as too long.
    async fn transcript_max_chars(&mut self, shared: &Shared, field: &str) -> usize {
        let described = self.case_describe(shared).await.and_then(|d| d.field(field)).map(|f| f.length as usize);
        transcript_chars(described)
    }

    /// The Case `Status` picklist's default value (its first active value when none is
    /// marked), looked up once; `None` when the describe cannot be read now.
    async fn case_default_status(&mut self, shared: &Shared) -> Option<String> {
        let status = self.case_describe(shared).await?.field("Status")?;
        let mut active = status.picklist_values.iter().filter(|v| v.active);
        let default = active.clone().find(|v| v.default_value).or_else(|| active.next());
        default.map(|v| v.value.clone())
    }

    /// The id of a `kind: cases` rule's owner; `None` (with a sync error) when the org has
    /// no such queue or user, or when it is the agent user.
    async fn case_owner(
        &mut self,
        shared: &Shared,
        conv: &Conversation,
        rule: &CaseRecord,
    ) -> Result<Option<String>, DaemonError> {
        let problem = match shared.target_id(&rule.owner).await {
            Ok(owner) if !id::same(&owner, &shared.agent_user.id) => return Ok(Some(owner)),
            Ok(_) => format!(
                "cases rule {} names the agent user as the case's owner; casebridge would answer its own case, so none is made",
                rule.rule
            ),
            Err(e) => format!("cases rule {} names owner {:?}, which cannot be used: {e}", rule.rule, rule.owner),
        };
        shared.record_error(Some(&conv.id), "create_case", "CASE_OWNER_UNUSABLE", &problem)?;
        Ok(None)
    }

    /// The id of the Case record type `name` names, looked up once; a name the org lacks is
    /// a sync error, and the case gets the org's default.
    async fn case_record_type(
        &mut self,
        shared: &Shared,
        conversation_id: &str,
        name: &str,
    ) -> Result<Option<String>, DaemonError> {
        if let Some(found) = self.case_record_types.get(name) {
            return Ok(found.clone());
        }
        match directory::record_type(&shared.client, "Case", name).await {
            Ok(found) => {
                if found.is_none() {
                    let problem = format!(
                        "record type {name:?} is no active record type of Case; the case gets the org's default"
                    );
                    shared.record_error(Some(conversation_id), "create_case", "RECORD_TYPE_NOT_FOUND", &problem)?;
                }
                self.case_record_types.insert(name.to_string(), found.clone());
                Ok(found)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot look up a case record type; this case gets the org's default.");
                Ok(None)
            }
        }
    }

    /// Closes a chat: its Tasks are completed with the transcript, and the case a `kind:
    /// cases` rule made gets the rule's fields again, the transcript and (when the rule says
    /// so, and the case is still open) the closed status. `ended_by_case`: the chat closes
    /// because its case did (the visitor cannot reopen it).
    pub(in crate::daemon) async fn close_chat(
        &mut self,
        shared: &Shared,
        conv: &mut Conversation,
        ended_by_case: bool,
        rules: &dyn Rules,
        trace: &mut Trace,
        report: &mut CycleReport,
    ) -> Result<Vec<Action>, DaemonError> {
        conv.state = ConversationState::Closed;
        let Some(info) = conv.messenger.as_mut() else { return Ok(Vec::new()) };
        info.ended_by_case = ended_by_case;
        let rule = info.case_rule.clone();
        // A case a person closed meanwhile is not closed again (nor its status rewritten).
        let case_open = !ended_by_case && info.case.status() == CaseStatus::Open;
        let mut actions = messenger::tasks::complete(conv);
        if self.hub.settings().ask_rating {
            // The closing message asks how it went; the widget shows the rating under it.
            let question = self.hub.settings().rating_question.clone();
            let mut part = messenger::daemon_part(
                format!("a{}", shared.store.new_id()?),
                crate::model::AuthorKind::Bot,
                Some(messenger::plan::AGENT_NAME.into()),
                question,
            );
            part.asks_rating = true;
            conv.parts.push(part);
        }
        let why = if ended_by_case { "its case is closed" } else { "resolved" };
        report.events.push(event(conv, EventKind::Closed, why.into(), "closed".into()));
        let Some(rule) = rule else { return Ok(actions) };
        let record = rules.evaluate(conv).case_rule(&rule, trace);
        match record {
            Ok(Some(record)) => {
                let max = self.transcript_max_chars(shared, &record.transcript_field).await;
                if record.close_status.is_some()
                    && case_open
                    && let Some(info) = conv.messenger.as_mut()
                {
                    info.case = std::mem::take(&mut info.case).closed_by_rule();
                }
                actions.push(messenger::plan::close_case(conv, &record, case_open, max));
            }
            Ok(None) => {
                tracing::info!(rule, "The cases rule that made this chat's case is gone; nothing written at close.")
            }
            Err(e) => shared.record_error(Some(&conv.id), "rules", "RULE_ERROR", &e.to_string())?,
        }
        Ok(actions)
    }
}

/// The transcript's size for a field of `described` length (none, or 0: the 32,000 of a
/// Case's `Description`).
fn transcript_chars(described: Option<usize>) -> usize {
    match described {
        Some(n) if n > 0 => n.min(messenger::plan::DESCRIPTION_MAX_CHARS),
        _ => messenger::plan::DESCRIPTION_MAX_CHARS,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shorter_field_holds_a_shorter_transcript() {
        assert_eq!(super::transcript_chars(Some(255)), 255);
        assert_eq!(super::transcript_chars(Some(131_072)), 32_000);
        assert_eq!(super::transcript_chars(None), 32_000);
        assert_eq!(super::transcript_chars(Some(0)), 32_000);
    }
}
