//! The REST API's shapes casebridge reads and writes: query pages, created records, limits,
//! describe results and composite subrequests and their responses.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::error::{ApiErrorItem, Result, SalesforceError};

/// One page of a query result, as the REST API returns it. Child subqueries deserialise
/// into `Option<QueryResult<T>>` (Salesforce sends `null` when there are no child rows).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult<T> {
    pub total_size: u64,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_records_url: Option<String>,
    pub records: Vec<T>,
}

/// `POST /sobjects/X`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub struct CreateResult {
    pub id: String,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<Json>,
}

/// One entry of `GET /limits`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Limit {
    pub max: u64,
    pub remaining: u64,
}

/// Field metadata from `describe`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub length: u64,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    #[serde(default)]
    pub defaulted_on_create: bool,
    #[serde(default)]
    pub restricted_picklist: bool,
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
    #[serde(default)]
    pub reference_to: Vec<String>,
    #[serde(default)]
    pub relationship_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub active: bool,
    /// The value a new record gets when none is given.
    #[serde(default)]
    pub default_value: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildRelationshipDescribe {
    pub child_s_object: String,
    pub field: String,
    pub relationship_name: Option<String>,
}

/// An object's `describe`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SObjectDescribe {
    pub name: String,
    pub label: String,
    #[serde(default)]
    pub key_prefix: Option<String>,
    pub createable: bool,
    pub updateable: bool,
    pub fields: Vec<FieldDescribe>,
    #[serde(default)]
    pub child_relationships: Vec<ChildRelationshipDescribe>,
}

impl FieldDescribe {
    /// Whether a create must give this field (Salesforce refuses it with
    /// `REQUIRED_FIELD_MISSING` otherwise).
    pub fn required_on_create(&self) -> bool {
        self.createable && !self.nillable && !self.defaulted_on_create && self.kind != "boolean"
    }
}

impl SObjectDescribe {
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// One subrequest of a composite call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubRequest {
    pub method: String,
    /// Relative to `/services/data/vNN.0/` (`sobjects/Case`), or absolute.
    pub url: String,
    pub reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Json>,
    /// The subrequest's own headers (`Sforce-Auto-Assign` on Case and Lead writes; the
    /// client sets them).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub http_headers: std::collections::BTreeMap<String, String>,
}

impl SubRequest {
    pub fn create(reference_id: &str, object: &str, body: Json) -> SubRequest {
        SubRequest {
            method: "POST".into(),
            url: format!("sobjects/{object}"),
            reference_id: reference_id.into(),
            body: Some(body),
            http_headers: Default::default(),
        }
    }
    pub fn update(reference_id: &str, object: &str, id: &str, body: Json) -> SubRequest {
        SubRequest {
            method: "PATCH".into(),
            url: format!("sobjects/{object}/{id}"),
            reference_id: reference_id.into(),
            body: Some(body),
            http_headers: Default::default(),
        }
    }
    pub fn delete(reference_id: &str, object: &str, id: &str) -> SubRequest {
        SubRequest {
            method: "DELETE".into(),
            url: format!("sobjects/{object}/{id}"),
            reference_id: reference_id.into(),
            body: None,
            http_headers: Default::default(),
        }
    }
    pub fn get(reference_id: &str, object: &str, id: &str) -> SubRequest {
        SubRequest {
            method: "GET".into(),
            url: format!("sobjects/{object}/{id}"),
            reference_id: reference_id.into(),
            body: None,
            http_headers: Default::default(),
        }
    }
    pub fn query(reference_id: &str, soql: &str) -> SubRequest {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        SubRequest {
            method: "GET".into(),
            url: format!("query?q={q}"),
            reference_id: reference_id.into(),
            body: None,
            http_headers: Default::default(),
        }
    }
}

/// One subrequest's result.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubResponse {
    pub reference_id: String,
    pub http_status_code: u16,
    #[serde(default)]
    pub body: Option<Json>,
}

impl SubResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.http_status_code)
    }

    /// The body on success, or Salesforce's error for this subrequest.
    pub fn result(&self) -> Result<Option<&Json>> {
        if self.is_success() {
            return Ok(self.body.as_ref());
        }
        Err(api_error(self.http_status_code, self.body.as_ref()))
    }

    /// The id a successful create returned.
    pub fn created_id(&self) -> Option<&str> {
        self.body.as_ref()?.get("id")?.as_str().filter(|_| self.is_success())
    }
}

/// The most subrequests Salesforce accepts in one composite call.
pub const COMPOSITE_MAX: usize = 25;

/// Builds the typed error from a status and Salesforce's error array.
pub(super) fn api_error(status: u16, body: Option<&Json>) -> SalesforceError {
    let errors = body
        .and_then(|b| serde_json::from_value::<Vec<ApiErrorItem>>(b.clone()).ok())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| {
            vec![ApiErrorItem {
                error_code: format!("HTTP_{status}"),
                message: body.map(|b| b.to_string()).unwrap_or_else(|| "no error details in the response".into()),
                fields: Vec::new(),
            }]
        });
    SalesforceError::Api { status, errors }
}
