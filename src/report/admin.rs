//! The admin HTTP server, in the daemon: health, readiness, Prometheus metrics, and a JSON
//! API over what the daemon knows — its status, conversations with their decision traces,
//! and sync errors (with a retry). Every endpoint but `/healthz` needs the bearer token.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /` | the page for people (no data in it: it asks for the token, then uses the API) |
//! | `GET /healthz` | alive (no token) |
//! | `GET /readyz` | store open, rule set loaded, org reachable at the last poll |
//! | `GET /metrics` | Prometheus text |
//! | `GET /api/status` | org, agent user, cursor, last poll, rule set and reloads, API usage |
//! | `GET /api/conversations?state=open&page=1&per_page=50` | conversations, newest activity first |
//! | `GET /api/conversations/{case_id}` | parts, attributes, topics, decisions and traces |
//! | `GET /api/report?from=2026-03-01&to=2026-03-31` | the agent report over whole UTC days, with its charts (`report_api.rs`) |
//! | `GET /api/sync-errors` | what Salesforce, SMTP or the agent refused |
//! | `POST /api/sync-errors/{id}/retry` | queue the failed action again |
//!
//! The messenger's inbox, its Salesforce panel, the New case form and the grouped sync
//! errors are in `inbox.rs`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::model::Conversation;
use crate::model::Secret;
use crate::report::metrics::Metrics;
use crate::report::status::Status;
use crate::rules::watch::Reloader;
use crate::store::Store;

/// What the admin server reads.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// The daemon's status as of its last cycle (`None` before the first).
    pub status: Arc<Mutex<Option<Status>>>,
    pub reloader: Option<Arc<Reloader>>,
    pub token: Secret,
    /// The org, for the messenger inbox's live data and New case form (`None`: no panel).
    pub client: Option<crate::salesforce::Client>,
    /// Where "Open in Salesforce" links point.
    pub instance_url: String,
    /// Who owns a case made by hand when the form names no one (the default handover
    /// target: never the agent user, whose cases the AI answers).
    pub default_owner: Json,
    pub messenger: Option<Arc<crate::channels::messenger::Messenger>>,
    /// The agent's embedding model, when it has one: the report groups unanswered
    /// questions by meaning with it.
    pub embedder: Option<Arc<dyn crate::knowledge::Embedder>>,
}

/// The admin router (for tests and the daemon alike).
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/conversations", get(conversations))
        .route("/api/conversations/{id}", get(conversation))
        .route("/api/resolutions", get(resolutions))
        .route("/api/report", get(super::report_api::report))
        .route("/api/sync-errors", get(sync_errors))
        .route("/api/sync-errors/{id}/retry", post(retry))
        .route("/api/sync-errors/groups", get(super::inbox::error_groups))
        .route("/api/sync-errors/retry", post(super::inbox::retry_many))
        .route("/api/inbox", get(super::inbox::inbox))
        .route("/api/inbox/{id}/salesforce", get(super::inbox::salesforce))
        .route("/api/inbox/{id}/case", post(super::inbox::create_case))
        .route("/api/inbox/{id}/lead", post(super::inbox::create_lead))
        .route("/api/case-form", get(super::inbox::case_form))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().route("/", get(page)).route("/healthz", get(|| async { "ok\n" })).merge(api).with_state(state)
}

const PAGE: &str = include_str!("admin_page.html");

/// The page: static, with no data; its script asks for the token and calls the API.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// Serves the admin API on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    serve_on(tokio::net::TcpListener::bind(addr).await?, state, shutdown)
}

/// Serves the admin API on a listener already bound (so that a taken address is found
/// before anything else starts) until `shutdown` resolves.
pub fn serve_on(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "The admin server stopped.");
        }
    });
    Ok(local)
}

/// Compares without revealing, through timing, how much of the token matched.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, b) in expected.iter().enumerate() {
        diff |= (given.get(i).copied().unwrap_or(0) ^ b) as usize;
    }
    diff == 0
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_token(given.as_bytes(), state.token.expose().as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({ "error": "a valid bearer token is required (the admin token from the config)" })),
        )
            .into_response();
    }
    next.run(request).await
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let status = state.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let reload = state.reloader.as_ref().map(|r| r.status());
    let rules = reload.as_ref().map(|r| r.active.clone()).unwrap_or_default();
    let mut problems = Vec::new();
    match status.as_ref().map(|s| &s.last_cycle.poll_error) {
        None => problems.push("no poll has finished yet".to_string()),
        Some(Some(e)) => problems.push(format!("the org was not reachable at the last poll: {e}")),
        Some(None) => {}
    }
    if state.reloader.is_some() && rules.is_empty() {
        problems.push("no rule set is loaded".into());
    }
    // Not ready while the files on disk are not what runs: an admin's edit did not apply.
    if let Some(problem) = reload.as_ref().and_then(|r| r.problem()) {
        problems.push(problem);
    }
    if let Err(e) = state.store.cursor() {
        problems.push(format!("the store cannot be read: {e}"));
    }
    let code = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(json!({ "ready": problems.is_empty(), "problems": problems, "rules": rules }))).into_response()
}

async fn metrics(State(state): State<AdminState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn status(State(state): State<AdminState>) -> Response {
    let status = state.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    axum::Json(status).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

fn summary(c: &Conversation) -> Json {
    json!({
        "id": c.id,
        "channel": c.channel,
        "case_id": c.case_id(),
        "case_number": c.case_number,
        "subject": c.subject,
        "state": crate::store::state_name(&c.state),
        "origin": c.origin,
        "replies_sent": c.replies_sent,
        "unanswered": c.unanswered().len(),
        "topics": c.topics,
        "updated": c.modstamp,
        "rules": c.decisions.last().map(|d| d.rules.clone()),
    })
}

async fn conversations(State(state): State<AdminState>, Query(q): Query<ListQuery>) -> Response {
    let per_page = q.per_page.unwrap_or(50).clamp(1, 500);
    let page = q.page.unwrap_or(1).max(1);
    match state.store.recent_conversations(q.state.as_deref(), (page - 1) * per_page, per_page) {
        Ok((items, total)) => {
            let items: Vec<Json> = items.iter().map(summary).collect();
            axum::Json(json!({ "total": total, "page": page, "per_page": per_page, "conversations": items }))
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn conversation(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let key = crate::salesforce::id::to_18(&id).unwrap_or(id);
    match state.store.conversation(&key) {
        Ok(Some(c)) => axum::Json(json!(c)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": format!("no conversation for case {key}") })))
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct DaysQuery {
    days: Option<u32>,
}

/// The resolution figures per day (`?days=N`, 1 to 90, default 14).
async fn resolutions(State(state): State<AdminState>, Query(q): Query<DaysQuery>) -> Response {
    let days = q.days.unwrap_or(14).clamp(1, 90);
    // A scan of the summaries of the conversations active in the period: off the async workers.
    let store = state.store.clone();
    let figures = tokio::task::spawn_blocking(move || store.resolutions_by_day(chrono::Utc::now(), days)).await;
    match figures.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(days) => axum::Json(json!({ "days": days })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e }))).into_response(),
    }
}

async fn sync_errors(State(state): State<AdminState>) -> Response {
    match state.store.sync_errors() {
        Ok(errors) => axum::Json(json!({ "total": errors.len(), "sync_errors": errors })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn retry(State(state): State<AdminState>, Path(id): Path<u64>) -> Response {
    match state.store.retry_error(id) {
        Ok(None) => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": format!("no sync error {id}") }))).into_response(),
        Ok(Some((None, _))) => (
            StatusCode::CONFLICT,
            axum::Json(json!({ "error": "this error was not about an action, so there is nothing to retry; the daemon tries reads again by itself" })),
        )
            .into_response(),
        // The error stays, marked retried, until the action goes through.
        Ok(Some((Some(entry), error))) => {
            (StatusCode::ACCEPTED, axum::Json(json!({ "queued": entry, "retried": error }))).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same_token(b"secret", b"secret"));
        assert!(!same_token(b"secreT", b"secret"));
        assert!(!same_token(b"secret-and-more", b"secret"));
        assert!(!same_token(b"", b"secret"));
    }
}
