//! Errors from the Salesforce client, typed so that callers can tell "Salesforce refused
//! this" (with its `errorCode`, message and fields) from "the network failed" and from
//! "the credentials are wrong", and decide whether a retry can help.

use std::fmt;

/// One entry of Salesforce's error array.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ApiErrorItem {
    #[serde(rename = "errorCode")]
    pub error_code: String,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl fmt::Display for ApiErrorItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code, self.message.trim())?;
        if !self.fields.is_empty() {
            write!(f, " (fields: {})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    /// Salesforce answered with an error array.
    #[error("salesforce refused the request (HTTP {status}): {}", join(.errors))]
    Api { status: u16, errors: Vec<ApiErrorItem> },

    /// The token endpoint refused the credentials.
    #[error(
        "salesforce login failed ({error}): {description}\nhint: check the connected app's client id and secret, and that the user is active and approved for the app"
    )]
    Auth { status: u16, error: String, description: String },

    /// No response: connection refused or reset, DNS, TLS, or a timeout.
    #[error("cannot reach salesforce at {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// A response that is not what the API documents.
    #[error("unexpected response from salesforce ({context}): {detail}")]
    Decode { context: String, detail: String },

    /// The daily API limit was reached; calls are held back until `retry_after` passes.
    #[error("salesforce API request limit exceeded; holding calls for {retry_after_secs} s: {message}")]
    LimitExceeded { message: String, retry_after_secs: u64 },

    /// The client's own configuration is unusable.
    #[error("invalid salesforce client configuration: {0}")]
    Config(String),
}

fn join(errors: &[ApiErrorItem]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl SalesforceError {
    /// The first Salesforce `errorCode`, or a code naming the kind of failure.
    pub fn error_code(&self) -> &str {
        match self {
            SalesforceError::Api { errors, .. } => errors.first().map_or("UNKNOWN_ERROR", |e| e.error_code.as_str()),
            SalesforceError::Auth { error, .. } => error,
            SalesforceError::Transport { .. } => "CONNECTION_ERROR",
            SalesforceError::Decode { .. } => "UNEXPECTED_RESPONSE",
            SalesforceError::LimitExceeded { .. } => "REQUEST_LIMIT_EXCEEDED",
            SalesforceError::Config(_) => "CONFIGURATION_ERROR",
        }
    }

    /// The first Salesforce message, or this error's text.
    pub fn message(&self) -> String {
        match self {
            SalesforceError::Api { errors, .. } if !errors.is_empty() => errors[0].message.clone(),
            other => other.to_string(),
        }
    }

    /// The HTTP status, where there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            SalesforceError::Api { status, .. } | SalesforceError::Auth { status, .. } => Some(*status),
            SalesforceError::LimitExceeded { .. } => Some(403),
            _ => None,
        }
    }

    /// Whether sending the same request later may succeed: outages and dropped
    /// connections may; validation errors, missing records and bad credentials never do.
    pub fn is_transient(&self) -> bool {
        match self {
            SalesforceError::Transport { .. } | SalesforceError::LimitExceeded { .. } => true,
            SalesforceError::Api { status, errors } => {
                *status >= 500
                    || errors
                        .iter()
                        .any(|e| matches!(e.error_code.as_str(), "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE"))
            }
            _ => false,
        }
    }

    /// Whether this is Salesforce saying the access token is no longer valid.
    pub fn is_invalid_session(&self) -> bool {
        matches!(self, SalesforceError::Api { status: 401, .. }) || self.error_code() == "INVALID_SESSION_ID"
    }
}

pub type Result<T, E = SalesforceError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> SalesforceError {
        SalesforceError::Api {
            status,
            errors: vec![ApiErrorItem { error_code: code.into(), message: "m".into(), fields: vec![] }],
        }
    }

    #[test]
    fn validation_errors_are_not_transient() {
        assert!(!api(400, "REQUIRED_FIELD_MISSING").is_transient());
        assert!(!api(404, "NOT_FOUND").is_transient());
        assert!(api(503, "SERVER_UNAVAILABLE").is_transient());
        assert!(api(400, "UNABLE_TO_LOCK_ROW").is_transient());
        assert!(api(401, "INVALID_SESSION_ID").is_invalid_session());
    }

    #[test]
    fn display_keeps_code_message_and_fields() {
        let e = SalesforceError::Api {
            status: 400,
            errors: vec![ApiErrorItem {
                error_code: "STRING_TOO_LONG".into(),
                message: "Body: data value too large".into(),
                fields: vec!["CommentBody".into()],
            }],
        };
        assert_eq!(
            e.to_string(),
            "salesforce refused the request (HTTP 400): STRING_TOO_LONG: Body: data value too large (fields: CommentBody)"
        );
        assert_eq!(e.error_code(), "STRING_TOO_LONG");
    }
}
