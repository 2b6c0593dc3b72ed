//! The simulated org's data: records of every object, their indexes, and the write path
//! with Salesforce's validation rules and side effects (audit fields, `CaseNumber`,
//! `IsClosed`, a new comment or email bumping its case's `SystemModstamp`, queue ownership).
//!
//! Every mutation goes through [`Org::put`], which keeps the reference index and, while a
//! journal is open, records what it overwrote so a composite `allOrNone` can roll back.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use super::error::ApiError;
use super::schema::{FieldDef, FieldType, ObjectDef, Schema};
use super::value::Value;
use crate::salesforce::id;

mod behaviour;
mod derive;
mod validate;

pub use behaviour::{AssignmentEntry, AssignmentRule, Behaviour, DuplicateAction, DuplicateRule, WriteHeaders};

/// One stored record.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub object: String,
    /// Field values by canonical field name.
    pub fields: HashMap<String, Value>,
}

impl Record {
    pub fn get(&self, field: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.get(field).unwrap_or(&NULL)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.get(field).as_str()
    }

    pub fn is_deleted(&self) -> bool {
        self.get("IsDeleted") == &Value::Bool(true)
    }
}

/// Who writes, when, and whether platform-maintained fields may be set (only org seeds may).
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub user_id: String,
    pub now: DateTime<Utc>,
    pub allow_system_fields: bool,
}

/// The org's records and indexes.
#[derive(Debug)]
pub struct Org {
    pub schema: Schema,
    pub org_id: String,
    records: HashMap<String, Record>,
    /// Ids per object, in creation order (ids are allocated from one increasing counter).
    by_object: HashMap<String, BTreeSet<String>>,
    /// (object, reference field) → referenced id → referencing ids.
    refs: HashMap<(String, String), HashMap<String, BTreeSet<String>>>,
    next_seq: u64,
    next_case_number: u64,
    journal: Option<Vec<(String, Option<Record>)>>,
    /// How the org behaves on API writes (the seed's `org:` switches).
    pub behaviour: Behaviour,
}

impl Org {
    pub fn new(schema: Schema) -> Org {
        let mut org = Org {
            schema,
            org_id: String::new(),
            records: HashMap::new(),
            by_object: HashMap::new(),
            refs: HashMap::new(),
            next_seq: 1,
            next_case_number: 1001,
            journal: None,
            behaviour: Behaviour::default(),
        };
        org.org_id = org.new_id("00D");
        org
    }

    pub(super) fn new_id(&mut self, prefix: &str) -> String {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut n = self.next_seq;
        self.next_seq += 1;
        let mut tail = [b'0'; 9];
        for slot in tail.iter_mut().rev() {
            *slot = DIGITS[(n % 62) as usize];
            n /= 62;
        }
        let base = format!("{prefix}Dn0{}", std::str::from_utf8(&tail).expect("ascii"));
        id::to_18(&base).expect("generated ids are well formed")
    }

    /// A record by id (15 or 18 characters), deleted ones included.
    pub fn get(&self, any_id: &str) -> Option<&Record> {
        self.records.get(&id::to_18(any_id)?)
    }

    /// A live (not deleted) record by id.
    pub fn live(&self, any_id: &str) -> Option<&Record> {
        self.get(any_id).filter(|r| !r.is_deleted())
    }

    /// All records of an object in creation order, deleted ones included.
    pub fn all<'a>(&'a self, object: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.by_object.get(object).into_iter().flat_map(|ids| ids.iter()).filter_map(|id| self.records.get(id))
    }

    /// The records a query on `object` reads: its own, or for `CaseFeed` (a case's feed:
    /// its posts) the FeedItems whose parent is a case.
    pub fn rows_of<'a>(&'a self, object: &str) -> Box<dyn Iterator<Item = &'a Record> + 'a> {
        if object.eq_ignore_ascii_case("CaseFeed") {
            let case_prefix = self.schema.object("Case").map(|c| c.key_prefix.clone()).unwrap_or_default();
            return Box::new(
                self.all("FeedItem").filter(move |r| r.str("ParentId").is_some_and(|p| p.starts_with(&case_prefix))),
            );
        }
        Box::new(self.all(object))
    }

    /// Records of `object` whose reference `field` points at `target`, in creation order.
    pub fn referencing<'a>(&'a self, object: &str, field: &str, target: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.refs
            .get(&(object.to_string(), field.to_string()))
            .and_then(|m| m.get(target))
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.records.get(id))
    }

    /// Starts recording what each write overwrites, for [`Org::rollback`].
    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Stops recording and keeps every write since [`Org::begin`].
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every write since [`Org::begin`].
    pub fn rollback(&mut self) {
        if let Some(entries) = self.journal.take() {
            for (id, previous) in entries.into_iter().rev() {
                match previous {
                    Some(record) => self.put(record),
                    None => self.remove(&id),
                }
            }
        }
    }

    pub(super) fn put(&mut self, record: Record) {
        let previous = self.records.remove(&record.id);
        if let Some(journal) = self.journal.as_mut() {
            journal.push((record.id.clone(), previous.clone()));
        }
        if let Some(prev) = &previous {
            self.unindex(prev);
        }
        self.by_object.entry(record.object.clone()).or_default().insert(record.id.clone());
        self.index(&record);
        self.records.insert(record.id.clone(), record);
    }

    fn remove(&mut self, id: &str) {
        if let Some(prev) = self.records.remove(id) {
            self.unindex(&prev);
            if let Some(ids) = self.by_object.get_mut(&prev.object) {
                ids.remove(id);
            }
        }
    }

    fn index(&mut self, record: &Record) {
        for (field, value) in &record.fields {
            if let (true, Some(target)) = (field.ends_with("Id") || field.ends_with("__c"), value.as_str()) {
                if field == "Id" || !id::is_id(target) {
                    continue;
                }
                self.refs
                    .entry((record.object.clone(), field.clone()))
                    .or_default()
                    .entry(target.to_string())
                    .or_default()
                    .insert(record.id.clone());
            }
        }
    }

    fn unindex(&mut self, record: &Record) {
        for (field, value) in &record.fields {
            if let Some(target) = value.as_str()
                && let Some(m) = self.refs.get_mut(&(record.object.clone(), field.clone()))
                && let Some(set) = m.get_mut(target)
            {
                set.remove(&record.id);
            }
        }
    }

    /// `POST /sobjects/{object}`: validates and inserts a record, returning its id.
    pub fn create(&mut self, object: &str, body: &Map<String, Json>, ctx: &WriteCtx) -> Result<String, ApiError> {
        let def = self.schema.object(object).ok_or_else(ApiError::not_found)?.clone();
        if !def.createable && !ctx.allow_system_fields {
            return Err(ApiError::new(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type cannot be inserted: {}", def.label),
            ));
        }
        let mut values = self.convert_body(&def, body, ctx, true)?;
        for f in &def.fields {
            if values.contains_key(&f.name) {
                continue;
            }
            if let Some(d) = &f.default_value {
                let typed = Value::from_json(f, &Json::String(d.clone())).unwrap_or_else(|_| Value::Str(d.clone()));
                values.insert(f.name.clone(), typed);
            } else if f.kind == FieldType::Boolean {
                values.insert(f.name.clone(), Value::Bool(false));
            } else if f.name == "OwnerId" {
                values.insert(f.name.clone(), Value::Str(ctx.user_id.clone()));
            }
        }
        let missing: Vec<&str> = def
            .fields
            .iter()
            .filter(|f| f.required_on_create() && values.get(&f.name).is_none_or(Value::is_null))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::fields(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            ));
        }
        let new_id = self.new_id(&def.key_prefix);
        let mut record = Record { id: new_id.clone(), object: def.name.clone(), fields: values };
        self.validate_values(&def, &record, None)?;
        record.fields.insert("Id".into(), Value::Str(new_id.clone()));
        for (field, value) in [
            ("IsDeleted", Value::Bool(false)),
            ("CreatedById", Value::Str(ctx.user_id.clone())),
            ("LastModifiedById", Value::Str(ctx.user_id.clone())),
            ("CreatedDate", Value::DateTime(ctx.now)),
            ("LastModifiedDate", Value::DateTime(ctx.now)),
            ("SystemModstamp", Value::DateTime(ctx.now)),
        ] {
            if !(ctx.allow_system_fields && record.fields.contains_key(field)) {
                record.fields.insert(field.into(), value);
            }
        }
        if def.name == "Case" {
            record.fields.insert("CaseNumber".into(), Value::Str(format!("{:08}", self.next_case_number)));
            self.next_case_number += 1;
        }
        self.derive(&mut record, None, ctx);
        self.touch_parent_case(&record, ctx);
        if def.name == "Knowledge__kav" {
            self.start_article(&mut record, ctx);
        }
        self.put(record);
        Ok(new_id)
    }

    /// `PATCH /sobjects/{object}/{field}/{value}`: upsert by an External ID field — the
    /// record holding `value` is updated, or a new one created with it; `(id, created)`.
    pub fn upsert(
        &mut self,
        object: &str,
        field: &str,
        value: &str,
        body: &Map<String, Json>,
        update_only: bool,
        ctx: &WriteCtx,
    ) -> Result<(String, bool), ApiError> {
        let def = self.schema.object(object).ok_or_else(ApiError::not_found)?.clone();
        let Some(f) = def.field(field).filter(|f| f.external_id || f.name == "Id") else {
            return Err(ApiError::new(
                404,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            ));
        };
        if body.keys().any(|k| k.eq_ignore_ascii_case(&f.name) || k.eq_ignore_ascii_case("Id")) {
            return Err(ApiError::new(
                400,
                "INVALID_FIELD",
                format!("The external ID field {} or Id must not be given in the body of an upsert", f.name),
            ));
        }
        let name = f.name.clone();
        let matches: Vec<String> = self
            .all(&def.name)
            .filter(|r| !r.is_deleted() && matches!(r.get(&name), Value::Str(s) if s.eq_ignore_ascii_case(value)))
            .map(|r| r.id.clone())
            .collect();
        match matches.as_slice() {
            [] if update_only => Err(ApiError::not_found()),
            [] => {
                let mut body = body.clone();
                body.insert(name, Json::String(value.to_string()));
                self.create(&def.name, &body, ctx).map(|id| (id, true))
            }
            [id] => self.update(&def.name, id, body, ctx).map(|()| (id.clone(), false)),
            _ => Err(ApiError::new(300, "MULTIPLE_CHOICES", format!("More than one record matches {name} = {value}"))),
        }
    }

    /// `PATCH /sobjects/{object}/{id}`.
    pub fn update(
        &mut self,
        object: &str,
        any_id: &str,
        body: &Map<String, Json>,
        ctx: &WriteCtx,
    ) -> Result<(), ApiError> {
        let def = self.schema.object(object).ok_or_else(ApiError::not_found)?.clone();
        let existing = self.find_for_write(&def, any_id)?.clone();
        let values = self.convert_body(&def, body, ctx, false)?;
        let mut record = existing.clone();
        for (k, v) in values {
            record.fields.insert(k, v);
        }
        let cleared: Vec<&str> = def
            .fields
            .iter()
            .filter(|f| !f.nillable && f.updateable && record.get(&f.name).is_null() && f.kind != FieldType::Boolean)
            .map(|f| f.name.as_str())
            .collect();
        if !cleared.is_empty() {
            return Err(ApiError::fields(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", cleared.join(", ")),
                &cleared,
            ));
        }
        self.validate_values(&def, &record, Some(&existing))?;
        record.fields.insert("LastModifiedById".into(), Value::Str(ctx.user_id.clone()));
        record.fields.insert("LastModifiedDate".into(), Value::DateTime(ctx.now));
        record.fields.insert("SystemModstamp".into(), Value::DateTime(ctx.now));
        self.derive(&mut record, Some(&existing), ctx);
        self.put(record);
        Ok(())
    }

    /// `DELETE /sobjects/{object}/{id}`: the record goes to the recycle bin (`queryAll` still
    /// sees it with `IsDeleted = true`).
    pub fn delete(&mut self, object: &str, any_id: &str, ctx: &WriteCtx) -> Result<(), ApiError> {
        let def = self.schema.object(object).ok_or_else(ApiError::not_found)?.clone();
        if !def.deletable {
            return Err(ApiError::new(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type cannot be deleted: {}", def.label),
            ));
        }
        let mut record = self.find_for_write(&def, any_id)?.clone();
        record.fields.insert("IsDeleted".into(), Value::Bool(true));
        record.fields.insert("LastModifiedById".into(), Value::Str(ctx.user_id.clone()));
        record.fields.insert("LastModifiedDate".into(), Value::DateTime(ctx.now));
        record.fields.insert("SystemModstamp".into(), Value::DateTime(ctx.now));
        self.put(record);
        Ok(())
    }

    fn find_for_write(&self, def: &ObjectDef, any_id: &str) -> Result<&Record, ApiError> {
        let record = self.get(any_id).filter(|r| r.object == def.name).ok_or_else(ApiError::not_found)?;
        if record.is_deleted() {
            return Err(ApiError::new(404, "ENTITY_IS_DELETED", "entity is deleted"));
        }
        Ok(record)
    }

    /// Checks a body's field names and converts its values; refuses read-only fields.
    fn convert_body(
        &self,
        def: &ObjectDef,
        body: &Map<String, Json>,
        ctx: &WriteCtx,
        creating: bool,
    ) -> Result<HashMap<String, Value>, ApiError> {
        let mut values = HashMap::new();
        let mut read_only = Vec::new();
        for (key, json) in body {
            if key == "attributes" {
                continue;
            }
            let field = def.field(key).ok_or_else(|| {
                ApiError::new(400, "INVALID_FIELD", format!("No such column '{key}' on sobject of type {}", def.name))
            })?;
            let writable = if creating { field.createable } else { field.updateable };
            if !writable && !ctx.allow_system_fields {
                read_only.push(field.name.clone());
                continue;
            }
            let value = Value::from_json(field, json).map_err(|m| ApiError::new(400, "JSON_PARSER_ERROR", m))?;
            values.insert(field.name.clone(), normalise(field, value));
        }
        if !read_only.is_empty() {
            let names: Vec<&str> = read_only.iter().map(String::as_str).collect();
            return Err(ApiError::fields(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    names.join(", ")
                ),
                &names,
            ));
        }
        Ok(values)
    }
}

/// Ids are stored in their 18-character form whatever form the client sent.
fn normalise(field: &FieldDef, value: Value) -> Value {
    match (&value, field.kind) {
        (Value::Str(s), FieldType::Reference | FieldType::Id) => match id::to_18(s) {
            Some(long) => Value::Str(long),
            None => value,
        },
        _ => value,
    }
}
