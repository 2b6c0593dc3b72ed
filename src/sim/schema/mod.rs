//! Object and field metadata of the simulated org: the standard objects casebridge touches,
//! plus the custom fields an org seed declares and the seed's switches that change what
//! an org has (feed tracking per object, `FeedItem.Visibility` only with Digital
//! Experiences).
//!
//! This is the single source of truth for `describe`, for SOQL validation (unknown fields,
//! relationship paths, child relationships) and for write validation (types, lengths,
//! picklists, read-only and required fields).

use std::collections::HashMap;

mod standard;
mod switches;

pub use switches::FieldAccess;

/// The Salesforce field types the simulator knows, named as `describe` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Id,
    String,
    TextArea,
    Email,
    Phone,
    Url,
    Picklist,
    Boolean,
    Int,
    Double,
    Currency,
    Date,
    DateTime,
    Reference,
}

impl FieldType {
    /// The `type` value in a describe result.
    pub fn describe_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Reference => "reference",
        }
    }

    /// Parses the type names an org seed may use for custom fields.
    pub fn from_seed_name(name: &str) -> Option<FieldType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "string" | "text" => FieldType::String,
            "textarea" | "longtextarea" => FieldType::TextArea,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "picklist" => FieldType::Picklist,
            "boolean" | "checkbox" => FieldType::Boolean,
            "int" | "integer" => FieldType::Int,
            "double" | "number" => FieldType::Double,
            "currency" => FieldType::Currency,
            "date" => FieldType::Date,
            "datetime" => FieldType::DateTime,
            "reference" | "lookup" => FieldType::Reference,
            _ => return None,
        })
    }

    /// Whether values of this type are text (and so have a length limit).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::TextArea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
        )
    }
}

/// One field of an object.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub kind: FieldType,
    /// Maximum length in characters for text fields; 0 otherwise.
    pub length: usize,
    /// Whether the limit is counted in UTF-8 bytes rather than characters
    /// (`CaseComment.CommentBody` holds 4,000 bytes).
    pub length_in_bytes: bool,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub defaulted_on_create: bool,
    pub default_value: Option<String>,
    pub picklist: Vec<String>,
    pub restricted_picklist: bool,
    pub reference_to: Vec<String>,
    pub relationship_name: Option<String>,
    pub custom: bool,
    pub auto_number: bool,
    pub calculated: bool,
    /// An External ID field: records can be upserted by its value.
    pub external_id: bool,
    /// No two records may hold the same value (`DUPLICATE_VALUE`).
    pub unique: bool,
    /// With `unique`: whether `ABC` and `abc` are different values (describe's
    /// `caseSensitive`); an External ID matches case-insensitively only when this is false.
    pub case_sensitive: bool,
    /// A formula field's formula: computed on every write, read-only to the API.
    pub formula: Option<crate::sim::formula::Formula>,
}

impl FieldDef {
    fn new(name: &str, label: &str, kind: FieldType) -> FieldDef {
        FieldDef {
            name: name.to_string(),
            label: label.to_string(),
            kind,
            length: 0,
            length_in_bytes: false,
            nillable: true,
            createable: true,
            updateable: true,
            defaulted_on_create: false,
            default_value: None,
            picklist: Vec::new(),
            restricted_picklist: false,
            reference_to: Vec::new(),
            relationship_name: None,
            custom: false,
            auto_number: false,
            calculated: false,
            external_id: false,
            unique: false,
            case_sensitive: false,
            formula: None,
        }
    }

    /// Whether a create without this field is refused with `REQUIRED_FIELD_MISSING`.
    pub fn required_on_create(&self) -> bool {
        !self.nillable && self.createable && !self.defaulted_on_create && self.kind != FieldType::Boolean
    }
}

/// A child relationship, such as `Case.CaseComments` (CaseComment.ParentId → Case).
#[derive(Debug, Clone)]
pub struct ChildRelationship {
    pub name: String,
    pub child_object: String,
    pub field: String,
}

/// One sObject type.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    pub key_prefix: String,
    pub createable: bool,
    pub updateable: bool,
    pub deletable: bool,
    /// Feed tracking is on (describe's `feedEnabled`): the object's records have a feed.
    pub feed_enabled: bool,
    pub fields: Vec<FieldDef>,
    pub children: Vec<ChildRelationship>,
    field_index: HashMap<String, usize>,
}

impl ObjectDef {
    /// Looks a field up by name, case-insensitively as SOQL and the REST API do.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.field_index.get(&name.to_ascii_lowercase()).map(|&i| &self.fields[i])
    }

    /// Looks a parent relationship up by its name (`Contact`, `Owner`), case-insensitively.
    pub fn relationship(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(name)))
    }

    /// Looks a child relationship up by its name (`CaseComments`), case-insensitively.
    pub fn child(&self, name: &str) -> Option<&ChildRelationship> {
        self.children.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn push(&mut self, field: FieldDef) {
        self.field_index.insert(field.name.to_ascii_lowercase(), self.fields.len());
        self.fields.push(field);
    }

    /// Looks a field up to change it.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut FieldDef> {
        self.field_index.get(&name.to_ascii_lowercase()).map(|&i| &mut self.fields[i])
    }

    /// Removes a field (an org without the feature that brings it); whether it was there.
    pub fn remove_field(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        self.fields.retain(|f| !f.name.eq_ignore_ascii_case(name));
        self.field_index = self.fields.iter().enumerate().map(|(i, f)| (f.name.to_ascii_lowercase(), i)).collect();
        self.fields.len() != before
    }
}

/// All objects of the org.
#[derive(Debug, Clone)]
pub struct Schema {
    objects: Vec<ObjectDef>,
    by_name: HashMap<String, usize>,
}

impl Schema {
    /// The standard objects, without custom fields.
    pub fn standard() -> Schema {
        let mut schema = Schema { objects: Vec::new(), by_name: HashMap::new() };
        for object in standard_objects() {
            schema.add(object);
        }
        // A case's feed, as the API reads it (its posts are FeedItems parented by cases):
        // what a user without View All Data queries instead of FeedItem.
        if let Some(feed) = schema.object("FeedItem").cloned() {
            schema.add(ObjectDef {
                name: "CaseFeed".into(),
                label: "Case Feed".into(),
                createable: false,
                updateable: false,
                children: Vec::new(),
                ..feed
            });
        }
        schema
    }

    fn add(&mut self, object: ObjectDef) {
        self.by_name.insert(object.name.to_ascii_lowercase(), self.objects.len());
        self.objects.push(object);
    }

    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.by_name.get(&name.to_ascii_lowercase()).map(|&i| &self.objects[i])
    }

    pub fn objects(&self) -> &[ObjectDef] {
        &self.objects
    }

    /// Looks an object up to change it (tests and the seed's switches).
    pub fn object_mut(&mut self, name: &str) -> Option<&mut ObjectDef> {
        self.by_name.get(&name.to_ascii_lowercase()).map(|&i| &mut self.objects[i])
    }

    /// The object an id belongs to, by its three-character key prefix.
    pub fn object_for_id(&self, id: &str) -> Option<&ObjectDef> {
        let prefix = id.get(..3)?;
        self.objects.iter().find(|o| o.key_prefix == prefix)
    }

    /// Adds a custom field declared by an org seed. Errors are for the seed's author.
    pub fn add_custom_field(&mut self, object: &str, spec: &CustomFieldSpec) -> Result<(), String> {
        let Some(&idx) = self.by_name.get(&object.to_ascii_lowercase()) else {
            return Err(format!("custom field on unknown object '{object}'"));
        };
        if !spec.name.ends_with("__c") {
            return Err(format!("custom field '{}' must end with __c", spec.name));
        }
        let kind = FieldType::from_seed_name(&spec.kind)
            .ok_or_else(|| format!("custom field '{}': unknown type '{}'", spec.name, spec.kind))?;
        if self.objects[idx].field(&spec.name).is_some() {
            return Err(format!("custom field '{}' is declared twice on {object}", spec.name));
        }
        let label = spec.label.clone().unwrap_or_else(|| spec.name.trim_end_matches("__c").replace('_', " "));
        let mut field = FieldDef::new(&spec.name, &label, kind);
        field.custom = true;
        field.nillable = !spec.required;
        field.length = match (kind, spec.length) {
            (_, Some(n)) => n,
            (FieldType::TextArea, None) => 32768,
            (FieldType::Picklist, None) => 255,
            (k, None) if k.is_text() => 255,
            _ => 0,
        };
        field.picklist = spec.values.clone();
        field.restricted_picklist = spec.restricted;
        field.external_id = spec.external_id;
        field.unique = spec.unique;
        field.case_sensitive = spec.case_sensitive;
        if spec.case_sensitive && !spec.unique {
            return Err(format!("custom field '{}': case_sensitive needs unique", spec.name));
        }
        if let Some(default) = &spec.default {
            let text = match default {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => default.to_string(),
                _ => return Err(format!("custom field '{}': default must be text, a number or true/false", spec.name)),
            };
            crate::sim::value::Value::from_json(&field, &serde_json::Value::String(text.clone()))
                .map_err(|e| format!("custom field '{}': default {text:?} does not fit its type: {e}", spec.name))?;
            field.default_value = Some(text);
            field.defaulted_on_create = true;
        }
        if let Some(src) = &spec.formula {
            let formula = crate::sim::formula::Formula::parse(src)
                .map_err(|e| format!("custom field '{}': formula {src:?}: {e}", spec.name))?;
            for name in formula.fields() {
                if self.objects[idx].field(name).is_none() {
                    return Err(format!(
                        "custom field '{}': formula reads '{name}', which {object} does not have (declare it first)",
                        spec.name
                    ));
                }
            }
            if spec.default.is_some() || spec.required || spec.external_id || spec.unique {
                return Err(format!(
                    "custom field '{}': a formula field takes no default, required, external_id or unique",
                    spec.name
                ));
            }
            (field.createable, field.updateable, field.calculated) = (false, false, true);
            field.formula = Some(formula);
        }
        if kind == FieldType::Reference {
            let target = spec
                .reference_to
                .clone()
                .ok_or_else(|| format!("reference field '{}' needs reference_to", spec.name))?;
            if self.object(&target).is_none() {
                return Err(format!("reference field '{}' points at unknown object '{target}'", spec.name));
            }
            field.relationship_name = Some(spec.name.trim_end_matches("__c").to_string() + "__r");
            field.reference_to = vec![target];
        }
        self.objects[idx].push(field);
        Ok(())
    }
}

/// A custom field as an org seed declares it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub length: Option<usize>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub reference_to: Option<String>,
    /// An External ID field (records can be upserted by it).
    #[serde(default)]
    pub external_id: bool,
    #[serde(default)]
    pub unique: bool,
    /// With `unique`: `ABC` and `abc` are different values (off: the same, as
    /// casebridge's External IDs want).
    #[serde(default)]
    pub case_sensitive: bool,
    /// The value a new record gets when the create leaves the field out.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// A formula (see [`crate::sim::formula`]): the field is computed and read-only.
    #[serde(default)]
    pub formula: Option<String>,
}

/// A small builder so the standard object table below stays readable.
struct ObjectBuilder(ObjectDef);

impl ObjectBuilder {
    fn new(name: &str, prefix: &str) -> ObjectBuilder {
        let mut def = ObjectDef {
            name: name.to_string(),
            label: name.to_string(),
            key_prefix: prefix.to_string(),
            createable: true,
            updateable: true,
            deletable: true,
            feed_enabled: false,
            fields: Vec::new(),
            children: Vec::new(),
            field_index: HashMap::new(),
        };
        let mut id = FieldDef::new("Id", &format!("{name} ID"), FieldType::Id);
        id.length = 18;
        id.nillable = false;
        id.createable = false;
        id.updateable = false;
        id.defaulted_on_create = true;
        def.push(id);
        let mut b = ObjectBuilder(def);
        b = b.field(FieldDef { ..system(FieldDef::new("IsDeleted", "Deleted", FieldType::Boolean)) });
        for (field, label, rel) in [
            ("CreatedById", "Created By ID", "CreatedBy"),
            ("LastModifiedById", "Last Modified By ID", "LastModifiedBy"),
        ] {
            let mut f = system(FieldDef::new(field, label, FieldType::Reference));
            f.length = 18;
            f.reference_to = vec!["User".into()];
            f.relationship_name = Some(rel.into());
            b = b.field(f);
        }
        for (field, label) in [
            ("CreatedDate", "Created Date"),
            ("LastModifiedDate", "Last Modified Date"),
            ("SystemModstamp", "System Modstamp"),
        ] {
            b = b.field(system(FieldDef::new(field, label, FieldType::DateTime)));
        }
        b
    }

    fn field(mut self, field: FieldDef) -> Self {
        self.0.push(field);
        self
    }

    fn text(self, name: &str, label: &str, kind: FieldType, length: usize) -> Self {
        let mut f = FieldDef::new(name, label, kind);
        f.length = length;
        self.field(f)
    }

    fn required_text(self, name: &str, label: &str, length: usize) -> Self {
        let mut f = FieldDef::new(name, label, FieldType::String);
        f.length = length;
        f.nillable = false;
        self.field(f)
    }

    fn flag(self, name: &str, label: &str) -> Self {
        let mut f = FieldDef::new(name, label, FieldType::Boolean);
        f.nillable = false;
        f.defaulted_on_create = true;
        self.field(f)
    }

    fn picklist(self, name: &str, label: &str, values: &[&str], default: Option<&str>) -> Self {
        let mut f = FieldDef::new(name, label, FieldType::Picklist);
        f.length = 255;
        f.picklist = values.iter().map(|v| v.to_string()).collect();
        f.restricted_picklist = true;
        if let Some(d) = default {
            f.default_value = Some(d.to_string());
            f.defaulted_on_create = true;
            f.nillable = false;
        }
        self.field(f)
    }

    fn reference(self, name: &str, label: &str, to: &[&str], relationship: &str) -> Self {
        let mut f = FieldDef::new(name, label, FieldType::Reference);
        f.length = 18;
        f.reference_to = to.iter().map(|t| t.to_string()).collect();
        f.relationship_name = Some(relationship.to_string());
        self.field(f)
    }

    /// A reference that must be given on create and cannot change afterwards
    /// (a master-detail parent such as `CaseComment.ParentId`).
    fn parent(self, name: &str, label: &str, to: &[&str], relationship: &str) -> Self {
        let b = self.reference(name, label, to, relationship);
        let mut b = b;
        let f = b.0.fields.last_mut().expect("just pushed");
        f.nillable = false;
        f.updateable = false;
        b
    }

    fn readonly(mut self, name: &str, label: &str, kind: FieldType, length: usize) -> Self {
        let mut f = FieldDef::new(name, label, kind);
        f.length = length;
        f.createable = false;
        f.updateable = false;
        f.calculated = true;
        if kind == FieldType::Boolean {
            f.nillable = false;
            f.defaulted_on_create = true;
        }
        self.0.push(f);
        self
    }

    fn child(mut self, name: &str, child_object: &str, field: &str) -> Self {
        self.0.children.push(ChildRelationship {
            name: name.to_string(),
            child_object: child_object.to_string(),
            field: field.to_string(),
        });
        self
    }

    fn not_writable(mut self) -> Self {
        self.0.createable = false;
        self.0.updateable = false;
        self.0.deletable = false;
        self
    }

    fn not_updateable(mut self) -> Self {
        self.0.updateable = false;
        for f in self.0.fields.iter_mut() {
            f.updateable = false;
        }
        self
    }

    fn build(self) -> ObjectDef {
        self.0
    }
}

/// Marks a field as maintained by the platform: never createable or updateable.
fn system(mut f: FieldDef) -> FieldDef {
    f.createable = false;
    f.updateable = false;
    f.nillable = false;
    f.defaulted_on_create = true;
    f
}

pub(crate) use standard::standard_objects;

#[cfg(test)]
mod tests;
