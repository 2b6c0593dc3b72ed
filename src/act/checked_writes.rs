//! Record writes checked before they are sent: each record write in the outbox (an
//! upsert, or fields set on a case) is checked against its object's describe (read once,
//! again for a retry) by
//! [`crate::salesforce::validate`], as Salesforce would check it. A field the org would
//! refuse is left out with a sync error whose retry writes that field alone; the rest is
//! written. Part of the [`super::executor`]'s round.

use serde_json::Value as Json;

use super::executor::{Executor, RoundReport};
use crate::model::Action;
use crate::store::{OutboxEntry, StoreError, SyncError};

impl Executor {
    /// Checks record writes against the org's describe (`validate`): a bad field is left
    /// out, with a sync error that can retry it alone; a create that cannot be saved is a
    /// sync error as a whole. Without a describe (the call failed), writes go unchecked and
    /// Salesforce judges them.
    pub(super) async fn validate(
        &mut self,
        due: Vec<OutboxEntry>,
        report: &mut RoundReport,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut kept = Vec::with_capacity(due.len());
        let mut refreshed = std::collections::HashSet::new();
        for mut entry in due {
            // A retry writes one field of a record that exists by then: an update. The admin
            // may have fixed the org meanwhile, so its object is described again.
            let (object, creating) = match &entry.action {
                Action::UpsertRecord { object, update_only, .. } => {
                    (object.clone(), entry.retry_of.is_none() && !update_only)
                }
                Action::UpdateFields { .. } => ("Case".to_string(), false),
                _ => {
                    kept.push(entry);
                    continue;
                }
            };
            if entry.retry_of.is_some() && refreshed.insert(object.clone()) {
                self.describes.remove(&object);
            }
            if !self.describes.contains_key(&object) {
                report.api_calls += 1;
                match self.client.describe(&object).await {
                    Ok(d) => {
                        self.describes.insert(object.clone(), d);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, object, "Cannot describe; the write goes unchecked.");
                        kept.push(entry);
                        continue;
                    }
                }
            }
            let describe = &self.describes[&object];
            let fields = match &mut entry.action {
                Action::UpsertRecord { fields, .. } | Action::UpdateFields { fields, .. } => fields,
                _ => unreachable!("only record writes are checked"),
            };
            match crate::salesforce::validate::check(describe, fields, creating) {
                Err(refusal) => {
                    self.fail(&entry, refusal.code, &format!("{object}: {}", refusal.message))?;
                    report.failed += 1;
                }
                Ok(checked) => {
                    if checked.refused.is_empty() {
                        kept.push(entry);
                        continue;
                    }
                    let original = std::mem::replace(fields, checked.fields);
                    if !fields.is_empty() {
                        self.store.update_entries(std::slice::from_ref(&entry))?;
                    }
                    for r in checked.refused {
                        let message = format!("{object}.{} was not written (the rest was): {}", r.field, r.message);
                        // Retrying writes that one field alone, once the admin fixed the cause.
                        let value = original.get(&r.key).cloned().unwrap_or(Json::Null);
                        let retry = match &entry.action {
                            Action::UpsertRecord { conversation_id, object, key_field, key, .. } => {
                                Action::UpsertRecord {
                                    conversation_id: conversation_id.clone(),
                                    object: object.clone(),
                                    key_field: key_field.clone(),
                                    fields: [(r.field.clone(), value)].into_iter().collect(),
                                    key: key.clone(),
                                    update_only: true,
                                }
                            }
                            other => Action::UpdateFields {
                                case_id: other.case_id().to_string(),
                                fields: [(r.field.clone(), value)].into_iter().collect(),
                            },
                        };
                        self.refuse_field(&entry, r.code, &message, retry)?;
                    }
                    if fields_left(&entry.action) == 0 {
                        // Nothing left to write: the entry ends here (its errors say why).
                        self.store.remove_entries(&[entry.id])?;
                        report.failed += 1;
                        continue;
                    }
                    kept.push(entry);
                }
            }
        }
        Ok(kept)
    }

    /// A sync error for one field left out of a write; `retry` (that field alone) is what
    /// the admin's retry queues.
    fn refuse_field(&self, entry: &OutboxEntry, code: &str, message: &str, retry: Action) -> Result<(), StoreError> {
        let case_id = entry.action.case_id();
        tracing::warn!(case_id, operation = entry.action.operation(), code, reason = message, "A field was left out.");
        if let Some(m) = &self.metrics {
            m.sync_error(code);
        }
        // A retried field refused again is the same error, with one more attempt.
        let id = if fields_left(&entry.action) == 0 { entry.retry_of.unwrap_or(0) } else { 0 };
        self.store
            .record_error(SyncError {
                id,
                action: Some(retry),
                ..SyncError::new(Some(case_id), entry.action.operation(), code, message)
            })
            .map(|_| ())
    }
}

/// How many fields a record write still carries.
fn fields_left(action: &Action) -> usize {
    match action {
        Action::UpsertRecord { fields, .. } | Action::UpdateFields { fields, .. } => fields.len(),
        _ => usize::MAX,
    }
}
