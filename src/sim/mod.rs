//! A local Salesforce org simulator that speaks the REST API closely enough for any
//! Salesforce client — ours, and third-party ones such as simple-salesforce.
//!
//! Layout:
//! - [`schema`]: objects and fields (`describe`, validation, SOQL names).
//! - [`org`]: records and the validated write path.
//! - [`seed`]: org seed files (YAML), their format in [`seed_file`].
//! - [`soql`]: the SOQL subset: parser and evaluator.
//! - [`api`]: REST routing under `/services/data/vNN.0/`.
//! - [`composite`]: the composite resource, its subrequests routed through [`api`].
//! - [`knowledge`]: Lightning Knowledge articles, versions, publishing and archiving.
//! - [`cursors`]: query locators, paging parents and their child subqueries.
//! - [`auth`]: the OAuth token endpoint.
//! - [`model`]: a stand-in for an OpenAI-compatible AI service (tests, benchmarks).
//! - [`tls`]: HTTPS with a certificate made at start (`--tls`).
//! - [`control`]: the `/__sim/` control API that tests and benchmarks use: the request
//!   log and the faults to inject.
//! - this module: the HTTP server, API-usage accounting, and the refusals injected faults
//!   cause.

pub mod api;
pub mod auth;
pub mod composite;
pub mod control;
pub mod cursors;
pub mod error;
pub mod formula;
pub mod knowledge;
pub mod model;
pub mod org;
pub mod schema;
pub mod seed;
pub mod seed_file;
pub mod soql;
pub mod tls;
pub mod value;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rand::Rng;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use api::{Data, Reply, Request};
use auth::Auth;
use control::RequestLog;
pub use control::{Faults, LoggedRequest};
use error::ApiError;
pub use seed::Seed;

/// The example org shipped with casebridge (`examples/demo/org.yaml`), built in so that
/// `casebridge sim` and the demo work from any directory.
pub const DEMO_ORG: &str = include_str!("../../examples/demo/org.yaml");

/// The API versions the simulator answers to.
/// The oldest and newest REST API versions served: 31.0 (Summer '14, the oldest Salesforce
/// still lists) through 68.0 (Winter '27, the current release); a seed may stop earlier
/// (`org.max_api_version`, an org on an older release).
pub const API_VERSION_RANGE: (u32, u32) = (31, 68);

/// Whether `version` (`62.0`) is served by an org whose newest is `max`.
fn serves(version: &str, max: u32) -> bool {
    version.strip_suffix(".0").and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= API_VERSION_RANGE.0 && m <= max)
}

/// `/services/data/`: every version served, oldest first, labelled with its release
/// (`66.0` is Spring '26; three releases a year).
fn versions_resource(max: u32) -> Json {
    let versions: Vec<Json> = (API_VERSION_RANGE.0..=max)
        .map(|v| {
            let (season, year) = match v % 3 {
                0 => ("Spring", 26 - (66 - v as i64) / 3),
                1 => ("Summer", 26 - (67 - v as i64) / 3),
                _ => ("Winter", 26 - (65 - v as i64) / 3),
            };
            json!({ "label": format!("{season} '{year:02}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0") })
        })
        .collect();
    Json::Array(versions)
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Query rows per page (Salesforce's default and maximum is 2,000).
    pub batch_size: usize,
    /// Serve HTTPS with a certificate made at start (see [`tls`]); the authority's
    /// certificate is written to the system's temporary directory.
    pub tls: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { batch_size: 2000, tls: false }
    }
}

struct SimState {
    data: Data,
    auth: Auth,
    faults: Faults,
    seed_daily_limit: u64,
    /// The newest REST API version served (its major number).
    max_api_version: u32,
    /// API calls counted against the daily limit.
    api_usage: u64,
    calls_since_expiry: u64,
    log: RequestLog,
    base_url: String,
    keys: HashMap<String, String>,
}

type Shared = Arc<Mutex<SimState>>;

fn lock(state: &Shared) -> MutexGuard<'_, SimState> {
    // A panic while holding the lock would be a simulator bug; keep serving regardless.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    url: String,
    /// With `--tls`: the authority's certificate, PEM, and the file it was written to.
    ca: Option<(String, PathBuf)>,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Binds `addr` (port 0 picks a free port) and serves `seed` until stopped.
    pub async fn start(addr: SocketAddr, seed: Seed, options: SimOptions) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let tls = match options.tls {
            true => Some(tls::Tls::generate().map_err(std::io::Error::other)?),
            false => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{host}:{}", local.port());
        let state: Shared = Arc::new(Mutex::new(SimState {
            data: Data::new(seed.org, options.batch_size.clamp(1, 2000)),
            auth: Auth::new(seed.apps, seed.passwords),
            faults: Faults::default(),
            seed_daily_limit: seed.daily_api_limit,
            max_api_version: seed
                .max_api_version
                .as_deref()
                .and_then(|v| v.strip_suffix(".0")?.parse().ok())
                .unwrap_or(API_VERSION_RANGE.1)
                .min(API_VERSION_RANGE.1),
            api_usage: 0,
            calls_since_expiry: 0,
            log: RequestLog::default(),
            base_url: url.clone(),
            keys: seed.keys,
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = async {
            let _ = rx.await;
        };
        let (task, ca) = match tls {
            Some(tls) => {
                let path = tls.write_ca(&std::env::temp_dir(), local.port())?;
                let server = axum::serve(tls.listen(listener)?, app).with_graceful_shutdown(stopped);
                (tokio::spawn(log_failure(server)), Some((tls.ca_pem, path)))
            }
            None => {
                let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
                (tokio::spawn(log_failure(server)), None)
            }
        };
        Ok(Simulator { url, ca, state, shutdown: Some(tx), task: Some(task) })
    }

    /// With TLS: the PEM certificate of the authority that signed the server's
    /// certificate, for clients to trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|(pem, _)| pem.as_str())
    }

    /// With TLS: the file holding [`Simulator::ca_pem`] (removed when the simulator stops).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(_, path)| path.as_path())
    }

    /// `http://HOST:PORT` (`https://` with TLS), the instance URL clients talk to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The id of a seeded record by its `_key` (or a user's or queue's `key`).
    pub fn id_of(&self, key: &str) -> Option<String> {
        lock(&self.state).keys.get(key).cloned()
    }

    /// The org id.
    pub fn org_id(&self) -> String {
        lock(&self.state).data.org.org_id.clone()
    }

    /// Runs a closure over the org, for tests that inspect state directly.
    pub fn with_org<T>(&self, f: impl FnOnce(&mut org::Org) -> T) -> T {
        f(&mut lock(&self.state).data.org)
    }

    /// API requests received so far (not token or control requests).
    pub fn api_requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.api.clone()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((_, path)) = &self.ca {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn log_failure(server: impl std::future::IntoFuture<Output = std::io::Result<()>>) {
    if let Err(e) = server.await {
        tracing::error!(error = %e, "Simulator server stopped with an error.");
    }
}

const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

async fn handle(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    // Like Salesforce, finish a request even when the client hangs up mid-way (a timeout):
    // the work runs in its own task, which a dropped connection does not cancel.
    match tokio::spawn(process(state, method, uri, headers, body)).await {
        Ok(response) => response,
        Err(_) => respond(
            500,
            Some(ApiError::new(500, "UNKNOWN_EXCEPTION", "simulator task failed").body()),
            Vec::new(),
            None,
        ),
    }
}

async fn process(state: Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    if path == "/services/oauth2/token" {
        return token(&state, &method, &path, &query, &headers, &body);
    }
    if path == "/services/oauth2/authorize" {
        return authorize(&state, &method, &query, &body);
    }
    if let Some(rest) = path.strip_prefix("/__sim/") {
        return control::serve(&state, &method, rest.trim_end_matches('/'), &body);
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed == "/services/data" {
        // The versions resource is not an API call and carries no limit header.
        let max = lock(&state).max_api_version;
        return respond(200, Some(versions_resource(max)), Vec::new(), None);
    }
    let Some(after) = trimmed.strip_prefix("/services/data/v") else {
        return respond(404, Some(ApiError::not_found().body()), Vec::new(), None);
    };
    let (version, rest) = after.split_once('/').unwrap_or((after, ""));
    if !serves(version, lock(&state).max_api_version) {
        return respond(404, Some(ApiError::not_found().body()), Vec::new(), None);
    }
    let version = version.to_string();
    let rest = rest.to_string();

    let latency = lock(&state).faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let mut guard = lock(&state);
    let st = &mut *guard;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .map(str::trim);
    let user_id = bearer.and_then(|t| st.auth.user_for(t)).map(str::to_string);
    let limit = st.faults.daily_api_limit.unwrap_or(st.seed_daily_limit);

    let reply = match refusal(st, user_id.is_some(), limit) {
        Some(refused) => refused,
        None => {
            st.api_usage += 1;
            let user_id = user_id.clone().unwrap_or_default();
            let body_json = match parse_body(&body) {
                Ok(j) => j,
                Err(r) => return finish_api(st, &method, &path, &query, user_id, r, limit),
            };
            let params = api::parse_query_string(&query);
            let usage = (st.api_usage, limit);
            let reply = api::dispatch(
                &mut st.data,
                Request {
                    method: method.as_str(),
                    segments: if rest.is_empty() { Vec::new() } else { rest.split('/').collect() },
                    version: &version,
                    query: &params,
                    body: body_json,
                    user_id: &user_id,
                    batch_size: batch_size(&headers),
                    usage,
                    write_headers: api::WriteHeaders::from_pairs(
                        headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
                    ),
                },
            );
            st.calls_since_expiry += 1;
            if st.faults.expire_sessions_every > 0 && st.calls_since_expiry >= st.faults.expire_sessions_every {
                st.calls_since_expiry = 0;
                st.auth.expire_all();
            }
            reply
        }
    };
    finish_api(st, &method, &path, &query, user_id.unwrap_or_default(), reply, limit)
}

/// Why a call is refused before it is served, as Salesforce would: no session, an injected
/// fault, or the daily request limit spent.
fn refusal(st: &SimState, authenticated: bool, limit: u64) -> Option<Reply> {
    if !authenticated {
        return Some(Reply { status: 401, body: Some(ApiError::invalid_session().body()), headers: Vec::new() });
    }
    if st.faults.error_rate > 0.0 && rand::rng().random_bool(st.faults.error_rate.clamp(0.0, 1.0)) {
        let error = ApiError::new(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, try again later");
        return Some(Reply { status: 503, body: Some(error.body()), headers: Vec::new() });
    }
    if st.api_usage >= limit {
        let error = ApiError::new(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        return Some(Reply { status: 403, body: Some(error.body()), headers: Vec::new() });
    }
    None
}

/// The request's JSON body, or Salesforce's `JSON_PARSER_ERROR` reply.
fn parse_body(body: &[u8]) -> Result<Option<Json>, Reply> {
    if body.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice::<Json>(body).map(Some).map_err(|e| {
        let message = format!("Unexpected character at [line:{}, column:{}]", e.line(), e.column());
        Reply { status: 400, body: Some(ApiError::new(400, "JSON_PARSER_ERROR", message).body()), headers: Vec::new() }
    })
}

/// The page size a client asked for (`Sforce-Query-Options: batchSize=N`), within 200..=2000.
fn batch_size(headers: &HeaderMap) -> Option<usize> {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("batchSize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map(|n| n.clamp(200, 2000))
}

fn finish_api(
    st: &mut SimState,
    method: &Method,
    path: &str,
    query: &str,
    user_id: String,
    reply: Reply,
    limit: u64,
) -> Response {
    st.log.api.push(LoggedRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        status: reply.status,
        user: (!user_id.is_empty()).then_some(user_id),
        time: value::format_datetime(&Utc::now()),
    });
    let limit_info = format!("api-usage={}/{limit}", st.api_usage);
    respond(reply.status, reply.body, reply.headers, Some(limit_info))
}

fn respond(status: u16, body: Option<Json>, headers: Vec<(String, String)>, limit_info: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(b) => (status, b.to_string()).into_response(),
        None => status.into_response(),
    };
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    if let Some(info) = limit_info
        && let Ok(v) = HeaderValue::from_str(&info)
    {
        h.insert("sforce-limit-info", v);
    }
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (axum::http::HeaderName::try_from(k), HeaderValue::from_str(&v)) {
            h.insert(name, value);
        }
    }
    response
}

fn token(state: &Shared, method: &Method, path: &str, query: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut st = lock(state);
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let mut form = api::parse_query_string(query);
    if is_form {
        form.extend(api::parse_query_string(&String::from_utf8_lossy(body)));
    }
    let st = &mut *st;
    let result = if method != Method::POST {
        Err(auth::OAuthError { status: 400, error: "invalid_request", description: "must use HTTP POST" })
    } else {
        st.auth.grant(&st.data.org, &form, &st.base_url.clone())
    };
    let (status, body, user) = match result {
        Ok(b) => {
            let user = b["id"].as_str().and_then(|s| s.rsplit('/').next()).map(str::to_string);
            (200, b, user)
        }
        Err(e) => (e.status, e.body(), None),
    };
    st.log.token.push(LoggedRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: String::new(),
        status,
        user,
        time: value::format_datetime(&Utc::now()),
    });
    respond(status, Some(body), Vec::new(), None)
}

/// The authorization request's parameters the sign-in form carries through.
const AUTHORIZE_PARAMS: [&str; 7] =
    ["response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method"];

/// The web-server flow's authorization page: a sign-in form that redirects back with a code.
fn authorize(state: &Shared, method: &Method, query: &str, body: &Bytes) -> Response {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let html = |status: StatusCode, text: String| {
        let mut r = (status, text).into_response();
        r.headers_mut().insert("content-type", HeaderValue::from_static("text/html; charset=utf-8"));
        r
    };
    // Salesforce answers a request the app's PKCE policy refuses with a bare form-encoded body.
    let refused = |body: &str| (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    if method == Method::GET {
        let params = api::parse_query_string(query);
        if let Err(body) = lock(state).auth.check_authorization_request(&params) {
            return refused(body);
        }
        let hidden: String = AUTHORIZE_PARAMS
            .iter()
            .map(|k| {
                format!(
                    "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                    escape(params.get(*k).map(String::as_str).unwrap_or(""))
                )
            })
            .collect();
        return html(
            StatusCode::OK,
            format!(
                "<!doctype html><title>Login | Simulated Salesforce</title><form method=\"post\" action=\"/services/oauth2/authorize\">{hidden}\
                 <label>Username <input name=\"username\"></label><label>Password <input name=\"password\" type=\"password\"></label>\
                 <button>Log In and Allow</button></form>"
            ),
        );
    }
    let form = api::parse_query_string(&String::from_utf8_lossy(body));
    let mut st = lock(state);
    let result = st.auth.authorize(&form);
    st.log.token.push(LoggedRequest {
        method: method.to_string(),
        path: "/services/oauth2/authorize".into(),
        query: String::new(),
        status: if result.is_ok() { 302 } else { 400 },
        user: None,
        time: value::format_datetime(&Utc::now()),
    });
    match result {
        Ok(location) => {
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert("location", v);
            }
            r
        }
        Err(message) if message == auth::MISSING_CODE_CHALLENGE => refused(&message),
        Err(message) => html(StatusCode::BAD_REQUEST, format!("<!doctype html><p>{}</p>", escape(&message))),
    }
}

/// Refresh tokens issued so far, for tests.
impl Simulator {
    pub fn refresh_tokens(&self) -> Vec<String> {
        lock(&self.state).auth.refresh_tokens()
    }
}
