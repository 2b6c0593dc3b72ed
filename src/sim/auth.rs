//! The simulator's OAuth token endpoint and access tokens: the password, refresh-token,
//! client-credentials and JWT bearer grants, answered with Salesforce's token response or
//! its `{"error": ..., "error_description": ...}` refusals; and the web-server flow's
//! authorization codes, with PKCE: a `code_challenge` sent with the authorization request
//! is always verified against the token request's `code_verifier`
//! (`BASE64URL(SHA256(code_verifier))`), and an app that requires PKCE refuses an
//! authorization request without one.

use std::collections::HashMap;

use chrono::Utc;
use rand::Rng;
use serde_json::{Value as Json, json};

use super::org::Org;
use super::seed::ConnectedApp;
use super::value::Value;

/// A refusal from the token endpoint: HTTP status and OAuth error body.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: &'static str) -> OAuthError {
        OAuthError { status, error, description }
    }

    pub fn body(&self) -> Json {
        json!({ "error": self.error, "error_description": self.description })
    }
}

/// The audiences a JWT bearer assertion may name besides the simulator's own URL.
const LOGIN_AUDIENCES: &[&str] = &["https://login.salesforce.com", "https://test.salesforce.com"];

pub use crate::salesforce::auth::SCOPES;

/// Issued tokens and the apps and passwords that may obtain them.
pub struct Auth {
    apps: Vec<ConnectedApp>,
    passwords: HashMap<String, (String, String)>,
    /// Access token → user id.
    tokens: HashMap<String, String>,
    /// Authorization codes, each used once.
    codes: HashMap<String, AuthCode>,
    /// Refresh tokens rotation voided → the app and username they were issued to.
    voided: HashMap<String, (String, String)>,
}

/// What an authorization code was issued for.
struct AuthCode {
    client_id: String,
    user_id: String,
    redirect_uri: String,
    /// The PKCE `code_challenge` of the authorization request, if it sent one.
    code_challenge: Option<String>,
}

/// Salesforce's answer to an authorization request without a `code_challenge` when the app
/// requires PKCE (a plain-text body, not a redirect).
pub const MISSING_CODE_CHALLENGE: &str = "error=invalid_request&error_description=missing required code challenge";

impl Auth {
    pub fn new(apps: Vec<ConnectedApp>, passwords: HashMap<String, (String, String)>) -> Auth {
        Auth { apps, passwords, tokens: HashMap::new(), codes: HashMap::new(), voided: HashMap::new() }
    }

    /// The user an access token belongs to, if the token is still valid.
    pub fn user_for(&self, token: &str) -> Option<&str> {
        self.tokens.get(token).map(String::as_str)
    }

    /// Makes every access token issued so far invalid (a fault the simulator can inject,
    /// and what happens when a real session times out).
    pub fn expire_all(&mut self) {
        self.tokens.clear();
    }

    /// `POST /services/oauth2/token` with a form body.
    pub fn grant(&mut self, org: &Org, form: &HashMap<String, String>, instance_url: &str) -> Result<Json, OAuthError> {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let mut issued_refresh: Option<String> = None;
        let user_id = match field("grant_type") {
            "password" => {
                self.client(field("client_id"), Some(field("client_secret")))?;
                let (user_id, password) = self
                    .passwords
                    .get(&field("username").to_ascii_lowercase())
                    .ok_or(OAuthError::new(400, "invalid_grant", "authentication failure"))?;
                if password != field("password") {
                    return Err(OAuthError::new(400, "invalid_grant", "authentication failure"));
                }
                user_id.clone()
            }
            "refresh_token" => {
                let (user_id, rotated) = self.refresh_grant(org, form)?;
                issued_refresh = rotated;
                user_id
            }
            "client_credentials" => {
                let app = self.client(field("client_id"), Some(field("client_secret")))?;
                let run_as = app.run_as.clone().ok_or(OAuthError::new(
                    400,
                    "invalid_grant",
                    "no client credentials user enabled",
                ))?;
                active_user(org, &run_as)?
            }
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
                let username = self.verify_assertion(field("assertion"), instance_url)?;
                active_user(org, &username)?
            }
            "authorization_code" => {
                let (user_id, refresh) = self.code_grant(org, form)?;
                issued_refresh = Some(refresh);
                user_id
            }
            "" => return Err(OAuthError::new(400, "unsupported_grant_type", "grant type not supported")),
            _ => return Err(OAuthError::new(400, "unsupported_grant_type", "grant type not supported")),
        };
        let token = format!("{}!{}", &org.org_id[..15], random_token(48));
        self.tokens.insert(token.clone(), user_id.clone());
        let issued_at = Utc::now().timestamp_millis().to_string();
        let mut response = json!({
            "access_token": token,
            "instance_url": instance_url,
            "id": format!("{instance_url}/id/{}/{user_id}", org.org_id),
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": random_token(44),
            "scope": SCOPES,
        });
        if let Some(refresh) = issued_refresh {
            response["refresh_token"] = json!(refresh);
        }
        Ok(response)
    }

    /// The `refresh_token` grant: the user, and the refresh token's successor when the app
    /// rotates them.
    fn refresh_grant(
        &mut self,
        org: &Org,
        form: &HashMap<String, String>,
    ) -> Result<(String, Option<String>), OAuthError> {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        let mut rotated = None;
        let presented = field("refresh_token").to_string();
        if let Some((client_id, stolen)) = self.voided.get(&presented).cloned() {
            // A voided token presented again looks stolen: the grant it came from is
            // revoked whole (as the connected-app documentation describes for rotation).
            for app in self.apps.iter_mut().filter(|a| a.client_id == client_id) {
                app.refresh_tokens.retain(|t| !t.username.eq_ignore_ascii_case(&stolen));
            }
            return Err(OAuthError::new(400, "invalid_grant", "expired access/refresh token"));
        }
        let secret = form.get("client_secret").map(String::as_str);
        let app = self.client(field("client_id"), secret)?;
        let username = app
            .refresh_tokens
            .iter()
            .find(|t| t.token == presented)
            .map(|t| t.username.clone())
            .ok_or(OAuthError::new(400, "invalid_grant", "expired access/refresh token"))?;
        let user_id = active_user(org, &username)?;
        if app.rotate_refresh_tokens {
            // The token given is void from now on; the answer carries its successor.
            let client_id = app.client_id.clone();
            let used = field("refresh_token").to_string();
            let next = random_token(64);
            if let Some(app) = self.apps.iter_mut().find(|a| a.client_id == client_id) {
                app.refresh_tokens.retain(|t| t.token != used);
                app.refresh_tokens
                    .push(super::seed::SeedRefreshToken { token: next.clone(), username: username.clone() });
            }
            self.voided.insert(used, (client_id, username));
            rotated = Some(next);
        }
        Ok((user_id, rotated))
    }

    /// The `authorization_code` grant (the web-server flow, with PKCE where the request
    /// carried a challenge): the user and a new refresh token.
    fn code_grant(&mut self, org: &Org, form: &HashMap<String, String>) -> Result<(String, String), OAuthError> {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        self.client(field("client_id"), Some(field("client_secret")))?;
        let code = self.codes.remove(field("code")).ok_or(OAuthError::new(
            400,
            "invalid_grant",
            "invalid authorization code",
        ))?;
        if code.client_id != field("client_id") || code.redirect_uri != field("redirect_uri") {
            return Err(OAuthError::new(400, "invalid_grant", "redirect_uri must match configuration"));
        }
        if let Some(challenge) = &code.code_challenge
            && !verifies(challenge, field("code_verifier"))
        {
            return Err(OAuthError::new(400, "invalid_grant", "invalid code verifier"));
        }
        let user_id = code.user_id;
        let username = org.get(&user_id).and_then(|u| u.str("Username")).unwrap_or_default().to_string();
        let refresh = random_token(64);
        if let Some(app) = self.apps.iter_mut().find(|a| a.client_id == code.client_id) {
            app.refresh_tokens.push(super::seed::SeedRefreshToken { token: refresh.clone(), username });
        }
        Ok((user_id, refresh))
    }

    /// The refresh tokens issued so far (seeded and by the web-server flow), for tests.
    pub fn refresh_tokens(&self) -> Vec<String> {
        self.apps.iter().flat_map(|a| a.refresh_tokens.iter().map(|t| t.token.clone())).collect()
    }

    /// Checks an authorization request before the sign-in page is shown: an app that
    /// requires PKCE refuses a request without a `code_challenge`.
    pub fn check_authorization_request(&self, params: &HashMap<String, String>) -> Result<(), &'static str> {
        let field = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
        let app = self.apps.iter().find(|a| a.client_id == field("client_id"));
        if app.is_some_and(|a| a.require_pkce) && field("code_challenge").is_empty() {
            return Err(MISSING_CODE_CHALLENGE);
        }
        Ok(())
    }

    /// The authorization page's form submission: signs the user in and returns where to
    /// send the browser (the redirect URI with `code` and `state`), or what went wrong.
    pub fn authorize(&mut self, form: &HashMap<String, String>) -> Result<String, String> {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if field("response_type") != "code" {
            return Err("response_type must be code".into());
        }
        if !self.apps.iter().any(|a| a.client_id == field("client_id")) {
            return Err("error=invalid_client_id: client identifier invalid".into());
        }
        self.check_authorization_request(form)?;
        let redirect = field("redirect_uri");
        // The simulator only calls back to this machine.
        let loopback =
            ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"].iter().any(|p| redirect.starts_with(p));
        if !loopback {
            return Err("error=redirect_uri_mismatch: the simulator only redirects to loopback addresses".into());
        }
        let (user_id, password) = self
            .passwords
            .get(&field("username").to_ascii_lowercase())
            .cloned()
            .ok_or("Please check your username and password.")?;
        if password != field("password") {
            return Err("Please check your username and password.".into());
        }
        let code = random_token(40);
        let challenge = Some(field("code_challenge")).filter(|c| !c.is_empty()).map(str::to_string);
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: field("client_id").to_string(),
                user_id,
                redirect_uri: redirect.to_string(),
                code_challenge: challenge,
            },
        );
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", field("state"))
            .finish();
        Ok(format!("{redirect}{sep}{query}"))
    }

    /// Finds the connected app; a `None` secret skips the secret check (refresh-token
    /// grants of apps that do not require the secret).
    fn client(&self, client_id: &str, secret: Option<&str>) -> Result<&ConnectedApp, OAuthError> {
        let app = self.apps.iter().find(|a| a.client_id == client_id).ok_or(OAuthError::new(
            400,
            "invalid_client_id",
            "client identifier invalid",
        ))?;
        if let Some(secret) = secret
            && secret != app.client_secret
        {
            return Err(OAuthError::new(400, "invalid_client", "invalid client credentials"));
        }
        Ok(app)
    }

    /// Verifies an RS256 assertion against the key of the app it names as issuer and
    /// returns its subject (a username).
    fn verify_assertion(&self, assertion: &str, instance_url: &str) -> Result<String, OAuthError> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
        #[derive(serde::Deserialize)]
        struct Claims {
            sub: String,
        }
        let invalid = OAuthError::new(400, "invalid_grant", "invalid assertion");
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid.clone())?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid);
        }
        let mut audiences: Vec<&str> = LOGIN_AUDIENCES.to_vec();
        audiences.push(instance_url);
        for app in &self.apps {
            let Some(pem) = &app.jwt_public_key else { continue };
            let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) else { continue };
            let mut validation = Validation::new(Algorithm::RS256);
            validation.set_audience(&audiences);
            validation.set_issuer(&[app.client_id.as_str()]);
            validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            match decode::<Claims>(assertion, &key, &validation) {
                Ok(data) => return Ok(data.claims.sub),
                Err(e) => match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                        return Err(OAuthError::new(400, "invalid_grant", "audience is invalid"));
                    }
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        return Err(OAuthError::new(400, "invalid_grant", "expired authorization code"));
                    }
                    _ => continue,
                },
            }
        }
        Err(invalid)
    }
}

/// The id of an active user, or the refusal Salesforce gives for anyone else.
fn active_user(org: &Org, username: &str) -> Result<String, OAuthError> {
    org.all("User")
        .find(|u| u.str("Username").is_some_and(|n| n.eq_ignore_ascii_case(username)))
        .filter(|u| u.get("IsActive") == &Value::Bool(true))
        .map(|u| u.id.clone())
        .ok_or(OAuthError::new(400, "invalid_grant", "user hasn't approved this consumer"))
}

/// Whether `verifier` proves `challenge`: `BASE64URL(SHA256(verifier)) == challenge`, the
/// only method Salesforce documents for its web-server flow.
fn verifies(challenge: &str, verifier: &str) -> bool {
    use base64::Engine;
    if verifier.is_empty() {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()) == challenge
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_rfc_7636_example() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", verifier));
        assert!(!verifies(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"
        ));
        assert!(!verifies("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", ""));
    }
}
