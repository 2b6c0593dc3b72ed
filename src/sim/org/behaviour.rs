//! What a real org does on an API write beyond storing it, switched per org in the seed
//! (`org:`): the active **assignment rule** that re-routes a Case or Lead written without
//! `Sforce-Auto-Assign: FALSE` (Salesforce's default is `TRUE`, on creates and updates
//! alike), **duplicate rules** that refuse a record matching another with
//! `DUPLICATES_DETECTED`, whether a new comment, email or post bumps its case's
//! `SystemModstamp` (Salesforce does not document it, so both are modelled), and a user's
//! **field-level security**: a field hidden from a user is missing from its describe and
//! refused in its queries and writes, a read-only one is described and refused as such.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{Org, WriteCtx};
use crate::salesforce::id;
use crate::sim::error::ApiError;
use crate::sim::schema::{FieldAccess, Schema};
use crate::sim::value::Value;

/// The seed's switches for how the org behaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub child_records_touch_parent: bool,
    pub assignment_rules: Vec<AssignmentRule>,
    pub duplicate_rules: Vec<DuplicateRule>,
    /// User id (18 characters) → `Object.Field` (lowercase) → what field-level security
    /// leaves that user; fields not named are read/write.
    pub field_access: HashMap<String, BTreeMap<String, FieldAccess>>,
}

impl Behaviour {
    /// Sets what `user_id` may do with `field` (`Case.Product__c`).
    pub fn restrict(&mut self, user_id: &str, field: &str, access: FieldAccess) {
        let user = id::to_18(user_id).unwrap_or_else(|| user_id.to_string());
        self.field_access.entry(user).or_default().insert(field.to_ascii_lowercase(), access);
    }

    /// The restrictions on `user_id`'s fields, if any.
    fn restrictions(&self, user_id: &str) -> Option<&BTreeMap<String, FieldAccess>> {
        let user = id::to_18(user_id).unwrap_or_else(|| user_id.to_string());
        self.field_access.get(&user).filter(|m| !m.is_empty())
    }
}

/// An active assignment rule: its entries in order; the first whose criteria all hold
/// gives the record its owner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRule {
    /// `Case` or `Lead`.
    pub object: String,
    pub name: String,
    pub entries: Vec<AssignmentEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentEntry {
    /// Field → value the record must hold (case-insensitive); empty matches every record.
    #[serde(default)]
    pub when: std::collections::BTreeMap<String, String>,
    /// The user or queue (`@key` in the seed, resolved to its id when loaded).
    pub owner: String,
}

/// A duplicate rule: a new record whose `match_fields` all equal (case-insensitively, and
/// not blank) another live record's is refused, unless the rule only alerts and the request
/// allowed the save (`Sforce-Duplicate-Rule-Header: allowSave=true`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRule {
    pub object: String,
    /// The rule's developer name, as Salesforce reports it.
    pub name: String,
    pub match_fields: Vec<String>,
    /// `block` (never saved) or `alert` (saved when the request allows it).
    #[serde(default)]
    pub action: DuplicateAction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateAction {
    #[default]
    Block,
    Alert,
}

/// The headers of an API write that steer these rules.
#[derive(Debug, Clone, Copy)]
pub struct WriteHeaders {
    /// `Sforce-Auto-Assign` was not `FALSE` (absent means `TRUE`).
    pub auto_assign: bool,
    /// `Sforce-Duplicate-Rule-Header` carried `allowSave=true`.
    pub allow_duplicate_save: bool,
}

impl Default for WriteHeaders {
    fn default() -> Self {
        WriteHeaders { auto_assign: true, allow_duplicate_save: false }
    }
}

impl Org {
    /// The schema as `user_id` sees it through field-level security (hidden fields gone,
    /// read-only ones neither createable nor updateable); `None` when nothing is
    /// restricted for the user, so the org's own schema serves.
    pub fn schema_for(&self, user_id: &str) -> Option<Schema> {
        let restrictions = self.behaviour.restrictions(user_id)?;
        let mut schema = self.schema.clone();
        for (path, access) in restrictions {
            let Some((object, field)) = path.split_once('.') else { continue };
            let Some(def) = schema.object_mut(object) else { continue };
            match access {
                FieldAccess::Hidden => {
                    def.remove_field(field);
                }
                FieldAccess::Read => {
                    if let Some(f) = def.field_mut(field) {
                        (f.createable, f.updateable) = (false, false);
                    }
                }
            }
        }
        Some(schema)
    }

    /// Runs `f` (a query) on the org as `user_id` sees it through field-level security, so
    /// a hidden field is an unknown column there, as in Salesforce.
    pub fn as_seen_by<T>(&mut self, user_id: &str, f: impl FnOnce(&Org) -> T) -> T {
        let Some(view) = self.schema_for(user_id) else { return f(self) };
        let own = std::mem::replace(&mut self.schema, view);
        let out = f(self);
        self.schema = own;
        out
    }

    /// Whether field-level security lets `user_id` write `fields` on `object`: a hidden
    /// field is unknown (`INVALID_FIELD`), a read-only one refused with
    /// `INVALID_FIELD_FOR_INSERT_UPDATE`, as the write path words them.
    pub fn check_field_access<'a>(
        &self,
        user_id: &str,
        object: &str,
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ApiError> {
        let (Some(restrictions), Some(def)) = (self.behaviour.restrictions(user_id), self.schema.object(object)) else {
            return Ok(());
        };
        let mut read_only = Vec::new();
        for key in fields {
            let path = format!("{}.{}", def.name, key).to_ascii_lowercase();
            match restrictions.get(&path) {
                Some(FieldAccess::Hidden) => {
                    return Err(ApiError::new(
                        400,
                        "INVALID_FIELD",
                        format!("No such column '{key}' on sobject of type {}", def.name),
                    ));
                }
                Some(FieldAccess::Read) => read_only.push(def.field(key).map_or(key, |f| f.name.as_str())),
                None => {}
            }
        }
        if read_only.is_empty() {
            return Ok(());
        }
        Err(ApiError::fields(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                read_only.join(", ")
            ),
            &read_only,
        ))
    }

    /// Whether an upsert of `object` by `field` = `value` would make a new record.
    pub fn upsert_would_create(&self, object: &str, field: &str, value: &str) -> bool {
        let Some(def) = self.schema.object(object) else { return false };
        let Some(f) = def.field(field) else { return false };
        !self
            .all(&def.name)
            .any(|r| !r.is_deleted() && matches!(r.get(&f.name), Value::Str(s) if s.eq_ignore_ascii_case(value)))
    }

    /// Runs the object's active assignment rule on a record just written through the API,
    /// unless the request said `Sforce-Auto-Assign: FALSE`.
    pub fn run_assignment_rules(&mut self, object: &str, id: &str, headers: WriteHeaders, ctx: &WriteCtx) {
        if !headers.auto_assign {
            return;
        }
        let Some(rule) = self.behaviour.assignment_rules.iter().find(|r| r.object.eq_ignore_ascii_case(object)) else {
            return;
        };
        let Some(record) = self.live(id) else { return };
        let owner = rule.entries.iter().find(|e| {
            e.when.iter().all(|(field, want)| match record.get(field) {
                Value::Str(have) => have.eq_ignore_ascii_case(want),
                Value::Null => want.is_empty(),
                other => other.to_json().to_string().trim_matches('"').eq_ignore_ascii_case(want),
            })
        });
        let Some(owner) = owner.map(|e| e.owner.clone()) else { return };
        if record.str("OwnerId") == Some(owner.as_str()) {
            return;
        }
        let mut record = record.clone();
        record.fields.insert("OwnerId".into(), Value::Str(owner));
        record.fields.insert("LastModifiedDate".into(), Value::DateTime(ctx.now));
        record.fields.insert("SystemModstamp".into(), Value::DateTime(ctx.now));
        self.put(record);
    }

    /// The refusal a duplicate rule gives a new record of `object` with `body`'s values,
    /// in Salesforce's shape (`DUPLICATES_DETECTED` with `duplicateResut`, spelt as the
    /// REST API spells it, listing the matching records).
    pub fn duplicate_refusal(&self, object: &str, body: &Map<String, Json>, headers: WriteHeaders) -> Option<ApiError> {
        for rule in self.behaviour.duplicate_rules.iter().filter(|r| r.object.eq_ignore_ascii_case(object)) {
            if rule.action == DuplicateAction::Alert && headers.allow_duplicate_save {
                continue;
            }
            let wanted: Option<Vec<(&String, String)>> = rule
                .match_fields
                .iter()
                .map(|f| {
                    let v = body.iter().find(|(k, _)| k.eq_ignore_ascii_case(f))?.1.as_str()?.trim().to_lowercase();
                    (!v.is_empty()).then_some((f, v))
                })
                .collect();
            let Some(wanted) = wanted else { continue };
            let matches: Vec<&str> = self
                .all(object)
                .filter(|r| !r.is_deleted())
                .filter(|r| wanted.iter().all(|(f, v)| r.str(f).is_some_and(|have| have.trim().to_lowercase() == *v)))
                .map(|r| r.id.as_str())
                .collect();
            if matches.is_empty() {
                continue;
            }
            let message = "You're creating a duplicate record. We recommend you use an existing record instead.";
            let records: Vec<Json> = matches
                .iter()
                .map(|id| {
                    json!({
                        "additionalInformation": [], "fieldDiffs": [], "matchConfidence": 100.0,
                        "record": { "attributes": { "type": object, "url": format!("/services/data/v62.0/sobjects/{object}/{id}") }, "Id": id },
                    })
                })
                .collect();
            let result = json!({
                "allowSave": rule.action == DuplicateAction::Alert,
                "duplicateRule": rule.name,
                "duplicateRuleEntityType": object,
                "errorMessage": message,
                "matchResults": [{
                    "entityType": object, "errors": [], "matchEngine": "ExactMatchEngine",
                    "matchRecords": records, "rule": format!("{}_Match_Rule", rule.name), "size": matches.len(), "success": true,
                }],
            });
            let mut error = ApiError::new(400, "DUPLICATES_DETECTED", message);
            error.detail = Some(Box::new(("duplicateResut".into(), result)));
            return Some(error);
        }
        None
    }
}
