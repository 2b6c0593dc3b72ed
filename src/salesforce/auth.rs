//! OAuth 2.0 against Salesforce's token endpoint: the refresh-token, client-credentials
//! and JWT bearer grants (and the password grant, for the simulator and scripts).
//! Produces a [`Session`]: an access token and the instance URL to use it against.

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::error::{Result, SalesforceError};
use crate::model::Secret;

/// The OAuth scopes casebridge asks for: the REST API, and a refresh token that keeps
/// working while nobody is signed in.
pub const SCOPES: &str = "api refresh_token offline_access";

/// How the client signs in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `grant_type=refresh_token`: a connected app and a user's refresh token (the grant
    /// Intercom's integration uses, with the `api refresh_token offline_access` scopes).
    RefreshToken { client_id: String, client_secret: Option<Secret>, refresh_token: Secret },
    /// `grant_type=client_credentials`: the app runs as its configured execution user.
    ClientCredentials { client_id: String, client_secret: Secret },
    /// The JWT bearer grant: an RS256 assertion signed with the app's private key.
    /// `audience` is `https://login.salesforce.com` (or `https://test.salesforce.com`
    /// for sandboxes).
    JwtBearer { client_id: String, username: String, private_key_pem: Secret, audience: String },
    /// `grant_type=password`; for the simulator and scripts, not for production.
    Password { client_id: String, client_secret: Secret, username: String, password: Secret },
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: Secret,
    /// The org's API host, e.g. `https://acme.my.salesforce.com`.
    pub instance_url: String,
    /// The identity URL (`.../id/{orgId}/{userId}`).
    pub identity_url: String,
}

impl Session {
    /// The signed-in user's id, from the identity URL.
    pub fn user_id(&self) -> Option<&str> {
        self.identity_url.rsplit('/').next().filter(|s| !s.is_empty())
    }

    /// The org id, from the identity URL.
    pub fn org_id(&self) -> Option<&str> {
        let mut parts = self.identity_url.rsplit('/');
        parts.next();
        parts.next()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    id: String,
    /// A new refresh token, when the app rotates them (the one sent is then void).
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Where a rotated refresh token is kept. With refresh-token rotation on (an app policy),
/// each refresh returns a new refresh token and voids the one sent: the client saves the
/// new one here, durably, before it uses the access token that came with it, and reads it
/// back when a refresh is refused (another process sharing the grant may have rotated it).
pub trait RefreshTokenStore: Send + Sync + std::fmt::Debug {
    /// The newest refresh token kept for this grant, if any.
    fn load(&self) -> Option<Secret>;
    /// Keeps `token` (sealed, written atomically); an error means it is held in memory only.
    fn save(&self, token: &Secret) -> std::result::Result<(), String>;
    /// Waits until no other process refreshes this grant, and holds them off until the
    /// guard is dropped (`None`: nothing to hold). Blocking: called off the async workers.
    fn exclusive(&self) -> std::result::Result<Option<Box<dyn std::any::Any + Send>>, String> {
        Ok(None)
    }
}

/// Holds other processes' refreshes of this grant off until dropped (see
/// [`RefreshTokenStore::exclusive`]); without a store, or when the lock cannot be taken
/// (logged), nothing is held.
pub(crate) async fn exclusive(store: Option<Arc<dyn RefreshTokenStore>>) -> Option<Box<dyn std::any::Any + Send>> {
    let store = store?;
    match tokio::task::spawn_blocking(move || store.exclusive()).await {
        Ok(Ok(guard)) => guard,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Cannot hold other processes off while refreshing; going on.");
            None
        }
        Err(_) => None,
    }
}

/// The refresh token to send: the newest kept on disk (rotated by this process or another
/// on the same grant, so a voided token is sent only in a true race), else this process's
/// latest, else `None` (the configured one).
pub(crate) fn newest_refresh_token(
    store: Option<&dyn RefreshTokenStore>,
    held: &Mutex<Option<Secret>>,
) -> Option<Secret> {
    let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(kept) = store.and_then(|s| s.load()) {
        *held = Some(kept);
    }
    held.clone()
}

/// A rotated refresh token: kept durably first (the one sent is void already, so a restart
/// must find this one), then used by this process from now on. A failed save leaves the
/// token in memory (the old one is void: dropping this one would sign out at once).
pub(crate) fn keep_rotated(token: Secret, store: Option<&dyn RefreshTokenStore>, held: &Mutex<Option<Secret>>) {
    if let Some(store) = store
        && let Err(e) = store.save(&token)
    {
        tracing::error!(error = %e, "The rotated refresh token could not be saved; it is held in memory only, and a restart will need a new sign-in.");
    }
    *held.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The form a credentials kind posts to the token endpoint.
pub(crate) fn token_form(credentials: &Credentials, rotated: Option<&Secret>) -> Result<Vec<(&'static str, String)>> {
    Ok(match credentials {
        Credentials::RefreshToken { client_id, client_secret, refresh_token } => {
            let refresh_token = rotated.unwrap_or(refresh_token);
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", client_id.clone()),
                ("refresh_token", refresh_token.expose().to_string()),
            ];
            if let Some(secret) = client_secret {
                form.push(("client_secret", secret.expose().to_string()));
            }
            form
        }
        Credentials::ClientCredentials { client_id, client_secret } => vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.expose().to_string()),
        ],
        Credentials::JwtBearer { client_id, username, private_key_pem, audience } => vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
            ("assertion", jwt_assertion(client_id, username, private_key_pem, audience)?),
        ],
        Credentials::Password { client_id, client_secret, username, password } => vec![
            ("grant_type", "password".to_string()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.expose().to_string()),
            ("username", username.clone()),
            ("password", password.expose().to_string()),
        ],
    })
}

/// An RS256 assertion valid for three minutes, as Salesforce's JWT bearer flow requires.
fn jwt_assertion(client_id: &str, username: &str, key: &Secret, audience: &str) -> Result<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: &'a str,
        exp: i64,
    }
    let key = EncodingKey::from_rsa_pem(key.expose().as_bytes())
        .map_err(|e| SalesforceError::Config(format!("the JWT private key is not an RSA key in PEM form: {e}")))?;
    let claims = Claims { iss: client_id, sub: username, aud: audience, exp: chrono::Utc::now().timestamp() + 180 };
    encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| SalesforceError::Config(format!("cannot sign the JWT assertion: {e}")))
}

/// Reads a token endpoint response into a session or the OAuth error.
#[cfg(test)]
pub(crate) fn parse_token_response(status: u16, body: &str) -> Result<Session> {
    parse_grant(status, body).map(|(session, _)| session)
}

/// Reads a token endpoint response into a session and the rotated refresh token, if the
/// response carried one.
pub(crate) fn parse_grant(status: u16, body: &str) -> Result<(Session, Option<Secret>)> {
    if (200..300).contains(&status) {
        let t: TokenResponse = serde_json::from_str(body)
            .map_err(|e| SalesforceError::Decode { context: "token response".into(), detail: e.to_string() })?;
        let session = Session {
            access_token: Secret::new(t.access_token),
            instance_url: t.instance_url.trim_end_matches('/').to_string(),
            identity_url: t.id,
        };
        return Ok((session, t.refresh_token.filter(|r| !r.is_empty()).map(Secret::new)));
    }
    match serde_json::from_str::<TokenError>(body) {
        Ok(e) => Err(SalesforceError::Auth { status, error: e.error, description: e.error_description }),
        Err(_) => Err(SalesforceError::Auth {
            status,
            error: format!("http_{status}"),
            description: body.chars().take(200).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let c = Credentials::ClientCredentials { client_id: "id".into(), client_secret: Secret::new("hunter2") };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn session_ids_come_from_the_identity_url() {
        let s = parse_token_response(
            200,
            r#"{"access_token":"t","instance_url":"https://x.my.salesforce.com/","id":"https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001SwiU"}"#,
        )
        .unwrap();
        assert_eq!(s.user_id(), Some("005xx000001SwiU"));
        assert_eq!(s.org_id(), Some("00Dxx0000001gPL"));
        assert_eq!(s.instance_url, "https://x.my.salesforce.com");
    }

    #[test]
    fn oauth_errors_keep_their_code() {
        let e = parse_token_response(400, r#"{"error":"invalid_grant","error_description":"authentication failure"}"#)
            .unwrap_err();
        assert_eq!(e.error_code(), "invalid_grant");
        assert!(e.to_string().contains("authentication failure"));
    }
}
