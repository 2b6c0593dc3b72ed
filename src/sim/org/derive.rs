//! What the simulated org computes on a write, as Salesforce does: names from their parts,
//! `IsClosed` and `ClosedDate` from a status, a topic assignment's entity type, seed formula
//! fields, a post's default visibility, and (when the org does) a case's audit fields bumped
//! by a new comment, email or post.

use super::{Org, Record, WriteCtx};
use crate::sim::value::Value;

impl Org {
    /// Fields Salesforce computes from others.
    pub(super) fn derive(&self, record: &mut Record, existing: Option<&Record>, ctx: &WriteCtx) {
        let full_name =
            |r: &Record| [r.str("FirstName"), r.str("LastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
        match record.object.as_str() {
            "Contact" | "Lead" | "User" => {
                let name = full_name(record);
                record.fields.insert("Name".into(), Value::Str(name));
            }
            "Case" => {
                let closed = record.str("Status") == Some("Closed");
                let was_closed = existing.is_some_and(|e| e.get("IsClosed") == &Value::Bool(true));
                record.fields.insert("IsClosed".into(), Value::Bool(closed));
                if closed && !was_closed {
                    record.fields.insert("ClosedDate".into(), Value::DateTime(ctx.now));
                } else if !closed {
                    record.fields.insert("ClosedDate".into(), Value::Null);
                }
            }
            "Task" => {
                let closed = record.str("Status") == Some("Completed");
                record.fields.insert("IsClosed".into(), Value::Bool(closed));
            }
            "Opportunity" => {
                let closed = record.str("StageName").is_some_and(|s| s.starts_with("Closed"));
                record.fields.insert("IsClosed".into(), Value::Bool(closed));
            }
            // "For record posts, Visibility is set to InternalUsers for all internal users by
            // default" (FeedItem reference); external users can only post to all users.
            "FeedItem" if existing.is_none() && record.get("Visibility").is_null() => {
                let external = self.live(&ctx.user_id).and_then(|u| u.str("UserType")).is_some_and(|t| t != "Standard");
                let visibility = if external { "AllUsers" } else { "InternalUsers" };
                record.fields.insert("Visibility".into(), Value::Str(visibility.into()));
            }
            "TopicAssignment" => {
                let kind = record
                    .str("EntityId")
                    .and_then(|e| self.schema.object_for_id(e))
                    .map(|o| o.name.clone())
                    .unwrap_or_default();
                record.fields.insert("EntityType".into(), Value::Str(kind));
            }
            _ => {}
        }
        // Formula fields, from the record as written, in declaration order (a formula may
        // read one declared before it).
        if let Some(def) = self.schema.object(&record.object) {
            for f in &def.fields {
                let Some(formula) = &f.formula else { continue };
                let value = formula
                    .eval(&|name: &str| def.field(name).map_or(Value::Null, |field| record.get(&field.name).clone()));
                record.fields.insert(f.name.clone(), crate::sim::formula::as_type(value, f.kind));
            }
        }
    }

    /// With `org.child_records_touch_parent`, a new comment, email or feed post on a case
    /// updates the case's audit fields (Salesforce does not document whether it does).
    pub(super) fn touch_parent_case(&mut self, child: &Record, ctx: &WriteCtx) {
        if !self.behaviour.child_records_touch_parent
            || !matches!(child.object.as_str(), "CaseComment" | "EmailMessage" | "FeedItem")
        {
            return;
        }
        let Some(parent_id) = child.str("ParentId") else { return };
        let Some(case) = self.live(parent_id).filter(|r| r.object == "Case") else { return };
        let mut case = case.clone();
        // Never move the stamp backwards (an org seed may add a comment dated in the past).
        let stamp = match (child.get("CreatedDate"), case.get("SystemModstamp")) {
            (Value::DateTime(new), Value::DateTime(old)) if new < old => Value::DateTime(*old),
            (new, _) => new.clone(),
        };
        case.fields.insert("LastModifiedDate".into(), stamp.clone());
        case.fields.insert("SystemModstamp".into(), stamp);
        case.fields.insert("LastModifiedById".into(), Value::Str(ctx.user_id.clone()));
        self.put(case);
    }
}
