//! The simulator's REST error: an HTTP status plus Salesforce's error array
//! (`[{"message": ..., "errorCode": ..., "fields": [...]}]`).

use serde_json::{Value as Json, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Present (possibly empty) on record-level errors, absent on request-level ones.
    pub fields: Option<Vec<String>>,
    /// More keys of the error item, such as a duplicate rule's `duplicateResut`.
    pub detail: Option<Box<(String, Json)>>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into(), fields: None, detail: None }
    }

    /// A 400 about specific fields of a record.
    pub fn fields(code: &str, message: impl Into<String>, fields: &[&str]) -> ApiError {
        ApiError {
            status: 400,
            code: code.to_string(),
            message: message.into(),
            fields: Some(fields.iter().map(|f| f.to_string()).collect()),
            detail: None,
        }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(404, "NOT_FOUND", "The requested resource does not exist")
    }

    pub fn invalid_session() -> ApiError {
        ApiError::new(401, "INVALID_SESSION_ID", "Session expired or invalid")
    }

    pub fn body(&self) -> Json {
        let mut item = json!({ "message": self.message, "errorCode": self.code });
        if let Some(fields) = &self.fields {
            item["fields"] = json!(fields);
        }
        if let Some((key, value)) = self.detail.as_deref() {
            item[key.as_str()] = value.clone();
        }
        json!([item])
    }
}
