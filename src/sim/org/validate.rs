//! The simulated org's field and object validation of a record about to be written, in
//! Salesforce's order and with its error codes: lengths, picklists, email addresses,
//! references (record types of the object's own, queues that support it, active users),
//! uniqueness, then object rules.

use super::{Org, Record};
use crate::salesforce::id;
use crate::sim::error::ApiError;
use crate::sim::schema::{FieldDef, FieldType, ObjectDef};
use crate::sim::value::Value;

impl Org {
    /// Field-level validation of a record about to be written, in Salesforce's order:
    /// lengths, picklists, email addresses, references, then object rules.
    pub(super) fn validate_values(
        &self,
        def: &ObjectDef,
        record: &Record,
        existing: Option<&Record>,
    ) -> Result<(), ApiError> {
        for f in &def.fields {
            let value = record.get(&f.name);
            let Value::Str(s) = value else { continue };
            if existing.is_some_and(|e| e.get(&f.name) == value) {
                continue;
            }
            if f.length > 0 && f.kind.is_text() {
                let len = if f.length_in_bytes { s.len() } else { s.chars().count() };
                if len > f.length {
                    let shown: String = s.chars().take(40).collect();
                    return Err(ApiError::fields(
                        "STRING_TOO_LONG",
                        format!("{}: data value too large: {shown}... (max length={})", f.label, f.length),
                        &[&f.name],
                    ));
                }
            }
            if f.kind == FieldType::Picklist && f.restricted_picklist && !f.picklist.iter().any(|v| v == s) {
                return Err(ApiError::fields(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {s}", f.label),
                    &[&f.name],
                ));
            }
            if f.kind == FieldType::Email && !looks_like_email(s) {
                return Err(ApiError::fields(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", f.label),
                    &[&f.name],
                ));
            }
            if f.kind == FieldType::Reference {
                self.validate_reference(def, f, s)?;
            }
            if f.unique
                && let Some(other) = self.all(&def.name).find(|r| {
                    r.id != record.id
                        && !r.is_deleted()
                        && matches!(r.get(&f.name), Value::Str(o) if o.eq_ignore_ascii_case(s))
                })
            {
                return Err(ApiError::fields(
                    "DUPLICATE_VALUE",
                    format!("duplicate value found: {} duplicates value on record with id: {}", f.name, other.id),
                    &[&f.name],
                ));
            }
        }
        self.validate_object_rules(def, record)
    }

    fn validate_reference(&self, def: &ObjectDef, f: &FieldDef, target: &str) -> Result<(), ApiError> {
        let incorrect = || {
            ApiError::fields(
                if id::is_id(target) { "FIELD_INTEGRITY_EXCEPTION" } else { "MALFORMED_ID" },
                format!("{}: id value of incorrect type: {target}", f.label),
                &[&f.name],
            )
        };
        let target_def = self.schema.object_for_id(target).ok_or_else(incorrect)?;
        if !id::is_id(target) || !f.reference_to.contains(&target_def.name) {
            return Err(incorrect());
        }
        let Some(referenced) = self.live(target) else {
            return Err(ApiError::fields("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", &[]));
        };
        // A record type belongs to one object and must be active, as Salesforce checks it.
        if f.name == "RecordTypeId"
            && (referenced.str("SobjectType") != Some(def.name.as_str())
                || referenced.get("IsActive") == &Value::Bool(false))
        {
            return Err(ApiError::fields(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("Record Type ID: this ID value isn't valid for the user: {target}"),
                &["RecordTypeId"],
            ));
        }
        if f.name == "OwnerId" {
            match referenced.object.as_str() {
                "Group" => {
                    let supports = referenced.str("Type") == Some("Queue")
                        && self
                            .referencing("QueueSobject", "QueueId", &referenced.id)
                            .any(|q| !q.is_deleted() && q.str("SobjectType") == Some(def.name.as_str()));
                    if !supports {
                        return Err(ApiError::fields(
                            "FIELD_INTEGRITY_EXCEPTION",
                            format!(
                                "Owner ID: queue {} does not support {} records",
                                referenced.str("Name").unwrap_or(""),
                                def.name
                            ),
                            &["OwnerId"],
                        ));
                    }
                }
                "User" if referenced.get("IsActive") != &Value::Bool(true) => {
                    return Err(ApiError::fields(
                        "INACTIVE_OWNER_OR_USER",
                        format!(
                            "operation performed with inactive user [{}] as owner of {}",
                            referenced.id,
                            def.name.to_lowercase()
                        ),
                        &[],
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate_object_rules(&self, def: &ObjectDef, record: &Record) -> Result<(), ApiError> {
        let duplicate = |other: &Record, field: &str| {
            ApiError::fields(
                "DUPLICATE_VALUE",
                format!("duplicate value found: {field} duplicates value on record with id: {}", other.id),
                &[],
            )
        };
        match def.name.as_str() {
            "Topic" => {
                let name = record.str("Name").unwrap_or_default();
                if let Some(other) = self.all("Topic").find(|t| {
                    t.id != record.id && !t.is_deleted() && t.str("Name").is_some_and(|n| n.eq_ignore_ascii_case(name))
                }) {
                    return Err(duplicate(other, "Name"));
                }
            }
            "TopicAssignment" => {
                let (topic, entity) =
                    (record.str("TopicId").unwrap_or_default(), record.str("EntityId").unwrap_or_default());
                if let Some(other) = self
                    .referencing("TopicAssignment", "EntityId", entity)
                    .find(|t| t.id != record.id && !t.is_deleted() && t.str("TopicId") == Some(topic))
                {
                    return Err(duplicate(other, "TopicId"));
                }
            }
            "User" => {
                let username = record.str("Username").unwrap_or_default();
                if let Some(other) = self
                    .all("User")
                    .find(|u| u.id != record.id && u.str("Username").is_some_and(|n| n.eq_ignore_ascii_case(username)))
                {
                    return Err(duplicate(other, "Username"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}
