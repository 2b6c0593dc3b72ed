//! A secret value (a token, a password, a key) that never shows itself in logs or debug
//! output, and the stored sign-in whose secrets are sealed (by the vault, in `auth`).

use std::fmt;

/// A secret string whose `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What `casebridge auth login` stores: the sign-in, with its secrets sealed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredCredentials {
    pub login_url: String,
    pub client_id: String,
    pub sealed_client_secret: Option<String>,
    pub sealed_refresh_token: String,
    pub user_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
