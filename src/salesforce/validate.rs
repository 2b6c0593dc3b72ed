//! Checking a write against the org's `describe` before it is sent, as Salesforce would:
//! unknown fields, read-only ones (formulas, auto numbers, system fields), values of the
//! wrong type, text over the field's length, values a restricted picklist does not hold,
//! malformed emails, and (on create) required fields left out. Salesforce refuses a whole
//! record for one bad field; casebridge drops the bad field, writes the rest, and says why
//! in a sync error per field, so a mapping gone wrong never costs the customer their case.
//! A create that lacks a required field cannot be saved at all and is refused whole.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::salesforce::{FieldDescribe, SObjectDescribe};

/// A field left out of a write, and why, in Salesforce's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The field's API name.
    pub field: String,
    /// The name as the write spelt it (names are case-insensitive), to find its value.
    pub key: String,
    pub code: &'static str,
    pub message: String,
}

/// What a write becomes after the check.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The fields to send.
    pub fields: BTreeMap<String, Json>,
    /// The fields left out.
    pub refused: Vec<Refusal>,
}

/// Checks `fields` for a create (`creating`) or an update of `describe`'s object. `Err` is
/// a write that cannot be saved at all (a required field missing on create).
pub fn check(describe: &SObjectDescribe, fields: &BTreeMap<String, Json>, creating: bool) -> Result<Checked, Refusal> {
    let mut checked = Checked { fields: BTreeMap::new(), refused: Vec::new() };
    for (name, value) in fields {
        match describe.field(name) {
            None => checked.refused.push(Refusal {
                field: name.clone(),
                key: name.clone(),
                code: "INVALID_FIELD",
                message: format!("No such column '{name}' on entity '{}'", describe.name),
            }),
            Some(f) => match problem(f, value, creating) {
                Some((code, message)) => {
                    checked.refused.push(Refusal { field: f.name.clone(), key: name.clone(), code, message })
                }
                None => {
                    checked.fields.insert(f.name.clone(), value.clone());
                }
            },
        }
    }
    if creating {
        let missing: Vec<&str> = describe
            .fields
            .iter()
            .filter(|f| f.required_on_create())
            .filter(|f| checked.fields.get(&f.name).is_none_or(Json::is_null))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Refusal {
                field: missing.join(", "),
                key: String::new(),
                code: "REQUIRED_FIELD_MISSING",
                message: format!("Required fields are missing: [{}]", missing.join(", ")),
            });
        }
    }
    Ok(checked)
}

/// Why Salesforce would refuse `value` in `f`, if it would.
fn problem(f: &FieldDescribe, value: &Json, creating: bool) -> Option<(&'static str, String)> {
    if (creating && !f.createable) || (!creating && !f.updateable) {
        let verb = if creating { "create" } else { "update" };
        return Some((
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to {verb} fields: {}. The field is read-only (a formula, an auto number or a system field) or not writable by the agent user.",
                f.name
            ),
        ));
    }
    if value.is_null() {
        return (!f.nillable && f.kind != "boolean")
            .then(|| ("REQUIRED_FIELD_MISSING", format!("Required fields are missing: [{}]", f.name)));
    }
    let text_kind = matches!(
        f.kind.as_str(),
        "string"
            | "textarea"
            | "email"
            | "phone"
            | "url"
            | "picklist"
            | "multipicklist"
            | "id"
            | "reference"
            | "combobox"
    );
    let wrong_type =
        || Some(("INVALID_TYPE_ON_FIELD_IN_RECORD", format!("{}: value not of required type: {value}", f.label)));
    match f.kind.as_str() {
        _ if text_kind => {
            let Some(s) = value.as_str() else { return wrong_type() };
            if f.length > 0 && s.chars().count() as u64 > f.length {
                let shown: String = s.chars().take(40).collect();
                return Some((
                    "STRING_TOO_LONG",
                    format!("{}: data value too large: {shown}... (max length={})", f.label, f.length),
                ));
            }
            if f.kind == "picklist"
                && f.restricted_picklist
                && !f.picklist_values.iter().any(|p| p.active && p.value == s)
            {
                return Some((
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {s}", f.label),
                ));
            }
            if f.kind == "email" && !crate::model::text::is_email(s) {
                return Some(("INVALID_EMAIL_ADDRESS", format!("{}: invalid email address: {s}", f.label)));
            }
            None
        }
        "boolean" if !value.is_boolean() => wrong_type(),
        "int" if !(value.is_i64() || value.is_u64()) => wrong_type(),
        "double" | "currency" | "percent" if !value.is_number() => wrong_type(),
        "date" if value.as_str().and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).is_none() => {
            wrong_type()
        }
        "datetime" if value.as_str().and_then(crate::salesforce::soql::parse_datetime).is_none() => wrong_type(),
        _ => None,
    }
}

/// Values typed into a form as text, read as the field's type where they parse: numbers
/// for `int`, `double`, `currency` and `percent` fields, `true`/`false` for checkboxes. What
/// does not parse stays text, for [`check`] to name.
pub fn from_form(describe: &SObjectDescribe, fields: BTreeMap<String, Json>) -> BTreeMap<String, Json> {
    fields
        .into_iter()
        .map(|(name, value)| {
            let typed = match (describe.field(&name).map(|f| f.kind.as_str()), value.as_str()) {
                (Some("int"), Some(s)) => s.trim().parse::<i64>().ok().map(Json::from),
                (Some("double" | "currency" | "percent"), Some(s)) => {
                    s.trim().parse::<f64>().ok().filter(|n| n.is_finite()).map(Json::from)
                }
                (Some("boolean"), Some(s)) => s.trim().parse::<bool>().ok().map(Json::from),
                _ => None,
            };
            (name, typed.unwrap_or(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::salesforce::PicklistValue;

    fn field(name: &str, kind: &str) -> FieldDescribe {
        FieldDescribe {
            name: name.into(),
            label: name.into(),
            kind: kind.into(),
            length: if kind == "string" { 10 } else { 0 },
            nillable: true,
            createable: true,
            updateable: true,
            defaulted_on_create: false,
            restricted_picklist: false,
            picklist_values: Vec::new(),
            reference_to: Vec::new(),
            relationship_name: None,
        }
    }

    fn case() -> SObjectDescribe {
        let mut subject = field("Subject", "string");
        subject.nillable = false;
        let mut formula = field("Days_Open__c", "double");
        (formula.createable, formula.updateable) = (false, false);
        let mut tier = field("Tier__c", "picklist");
        tier.restricted_picklist = true;
        tier.picklist_values = vec![PicklistValue { value: "Gold".into(), active: true, default_value: false }];
        SObjectDescribe {
            name: "Case".into(),
            label: "Case".into(),
            key_prefix: Some("500".into()),
            createable: true,
            updateable: true,
            fields: vec![subject, formula, tier, field("IsEscalated", "boolean"), field("SuppliedEmail", "email")],
            child_relationships: Vec::new(),
        }
    }

    #[test]
    fn bad_fields_are_left_out_with_salesforces_reasons_and_the_rest_is_written() {
        let fields: BTreeMap<String, Json> = [
            ("subject", json!("Printer")),
            ("Days_Open__c", json!(3)),
            ("Tier__c", json!("Platinum")),
            ("IsEscalated", json!("yes")),
            ("SuppliedEmail", json!("not-an-email")),
            ("Nope__c", json!(1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let checked = check(&case(), &fields, true).unwrap();
        let tier = checked.refused.iter().find(|r| r.field == "Tier__c").unwrap();
        assert_eq!(tier.key, "Tier__c");
        let lower = check(&case(), &BTreeMap::from([("tier__c".to_string(), json!("Nope"))]), false).unwrap();
        assert_eq!((lower.refused[0].field.as_str(), lower.refused[0].key.as_str()), ("Tier__c", "tier__c"));
        assert_eq!(checked.fields, BTreeMap::from([("Subject".to_string(), json!("Printer"))]));
        let codes: Vec<&str> = checked.refused.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            [
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                "INVALID_FIELD",
                "INVALID_EMAIL_ADDRESS",
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
            ]
        );
    }

    #[test]
    fn a_create_without_a_required_field_is_refused_whole_and_long_text_is_named() {
        let e = check(&case(), &BTreeMap::from([("Tier__c".to_string(), json!("Gold"))]), true).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Subject]"));
        let update = check(&case(), &BTreeMap::from([("Tier__c".to_string(), json!("Gold"))]), false).unwrap();
        assert!(update.refused.is_empty(), "an update needs no required field");
        let long = check(&case(), &BTreeMap::from([("Subject".to_string(), json!("x".repeat(11)))]), false).unwrap();
        assert_eq!(long.refused[0].code, "STRING_TOO_LONG");
    }

    #[test]
    fn typed_text_from_a_form_is_read_as_the_fields_type() {
        let mut d = case();
        d.fields.extend([field("Score__c", "percent"), field("Count__c", "int"), field("Flag__c", "boolean")]);
        let typed = from_form(
            &d,
            [
                ("Score__c", json!(" 12.5 ")),
                ("Count__c", json!("3")),
                ("Flag__c", json!("true")),
                ("Subject", json!("42")),
                ("Days_Open__c", json!("NaN")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        );
        assert_eq!(typed["Score__c"], json!(12.5));
        assert_eq!(typed["Count__c"], json!(3));
        assert_eq!(typed["Flag__c"], json!(true));
        assert_eq!(typed["Subject"], json!("42"), "text fields stay text");
        assert_eq!(typed["Days_Open__c"], json!("NaN"), "what does not parse is left for check to name");
        assert!(check(&d, &typed, true).unwrap().refused.iter().any(|r| r.field == "Days_Open__c"));
    }
}
