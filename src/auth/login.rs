//! `casebridge auth login`: the OAuth 2.0 web-server flow with PKCE (RFC 7636). casebridge
//! listens on a local callback address, prints the org's authorization address for the
//! admin to open in a browser (with a `code_challenge`, `S256` of a random
//! `code_verifier`), receives the authorization code (checking the `state` it sent),
//! exchanges it for a refresh token proving the challenge with the verifier, and stores the
//! token and the app's secret sealed with the credentials key. Neither is ever written in
//! plain text or logged.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Html;
use rand::Rng;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::vault::Vault;
use crate::model::Secret;
use crate::model::StoredCredentials;
use crate::store::Store;

/// What the flow needs.
#[derive(Clone)]
pub struct LoginRequest {
    pub login_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where the callback server listens (port 0 picks one).
    pub callback: SocketAddr,
    pub scopes: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("cannot listen for the callback on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("no answer from the browser within {0} minutes")]
    Timeout(u64),
    #[error("the org refused the sign-in: {0}")]
    Refused(String),
    #[error("the callback's state does not match: a request not started by this login was refused")]
    StateMismatch,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

type Sender = mpsc::Sender<Callback>;

async fn callback(State(tx): State<Sender>, Query(cb): Query<Callback>) -> Html<&'static str> {
    let ok = cb.code.is_some();
    let _ = tx.send(cb).await;
    Html(if ok {
        "<!doctype html><title>casebridge</title><p>casebridge is now connected to your org. You can close this tab.</p>"
    } else {
        "<!doctype html><title>casebridge</title><p>The sign-in did not complete; see the terminal.</p>"
    })
}

/// A PKCE pair: the secret `verifier`, sent only with the token request, and its
/// `challenge`, `BASE64URL(SHA256(verifier))`, sent with the authorization request.
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Pkce {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // 64 random bytes make an 86-character verifier (RFC 7636 allows 43 to 128) of
        // letters, digits, '-' and '_' only: Salesforce refuses verifiers holding '~'.
        let bytes: [u8; 64] = rand::rng().random();
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Pkce { challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()), verifier }
    }
}

/// Starts the callback server and returns the address to open, and a future that finishes
/// the flow once the browser comes back.
pub async fn start(
    request: LoginRequest,
) -> Result<(String, impl std::future::Future<Output = Result<(Secret, Option<String>), LoginError>>), LoginError> {
    let listener =
        tokio::net::TcpListener::bind(request.callback).await.map_err(|e| LoginError::Listen(request.callback, e))?;
    let local = listener.local_addr().map_err(|e| LoginError::Listen(request.callback, e))?;
    let redirect_uri = format!("http://{local}/callback");
    let state: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
    let pkce = Pkce::new();
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &request.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &request.scopes)
        .append_pair("state", &state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let authorize = format!("{}/services/oauth2/authorize?{query}", request.login_url.trim_end_matches('/'));
    let (tx, mut rx) = mpsc::channel::<Callback>(1);
    let app = axum::Router::new().route("/callback", axum::routing::get(callback)).with_state(tx);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let finish = async move {
        let timeout = Duration::from_secs(600);
        let cb = tokio::time::timeout(timeout, rx.recv()).await.map_err(|_| LoginError::Timeout(10))?;
        // Let the browser receive its page before the server goes away.
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.abort();
        let cb = cb.ok_or(LoginError::Timeout(10))?;
        if let Some(error) = cb.error {
            return Err(LoginError::Refused(format!("{error}: {}", cb.error_description.unwrap_or_default())));
        }
        if cb.state.as_deref() != Some(state.as_str()) {
            return Err(LoginError::StateMismatch);
        }
        let code = cb.code.ok_or_else(|| LoginError::Refused("the callback carried no code".into()))?;
        exchange(&request, &code, &redirect_uri, &pkce.verifier).await
    };
    Ok((authorize, finish))
}

/// Trades the code for tokens; returns the refresh token and the signed-in user's id.
async fn exchange(
    request: &LoginRequest,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<(Secret, Option<String>), LoginError> {
    let url = format!("{}/services/oauth2/token", request.login_url.trim_end_matches('/'));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", request.client_id.as_str()),
        ("client_secret", request.client_secret.expose()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ];
    let response = reqwest::Client::new()
        .post(&url)
        .form(&form)
        .send()
        .await
        .map_err(|e| LoginError::Refused(format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let body: serde_json::Value =
        response.json().await.map_err(|e| LoginError::Refused(format!("unreadable token response ({status}): {e}")))?;
    if !status.is_success() {
        return Err(LoginError::Refused(format!(
            "{}: {}",
            body["error"].as_str().unwrap_or("error"),
            body["error_description"].as_str().unwrap_or("")
        )));
    }
    let refresh = body["refresh_token"]
        .as_str()
        .ok_or_else(|| LoginError::Refused("no refresh token: does the app have the refresh_token scope?".into()))?;
    let user = body["id"].as_str().and_then(|id| id.rsplit('/').next()).map(str::to_string);
    Ok((Secret::new(refresh), user))
}

/// Seals and stores what the flow obtained.
pub fn save(
    store: &Store,
    vault: &Vault,
    request: &LoginRequest,
    refresh_token: &Secret,
    user_id: Option<String>,
) -> Result<(), LoginError> {
    store.set_credentials(&StoredCredentials {
        login_url: request.login_url.clone(),
        client_id: request.client_id.clone(),
        sealed_client_secret: Some(vault.seal(&request.client_secret)),
        sealed_refresh_token: vault.seal(refresh_token),
        user_id,
        created_at: chrono::Utc::now(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifier_and_challenge() {
        use base64::Engine;
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 86);
        assert!(pkce.verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pkce.verifier.as_bytes());
        assert_eq!(pkce.challenge, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()));
        assert_ne!(Pkce::new().verifier, pkce.verifier, "a new verifier every time");
    }
}
