//! The `/__sim/` control API that tests and benchmarks use: the request log
//! (`GET`/`DELETE /__sim/requests`), the faults to inject (`/__sim/faults`) and the seeded
//! records' keys (`/__sim/keys`).

use axum::body::Bytes;
use axum::http::Method;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::{Shared, lock, respond};

/// Faults the control API can inject.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added to every API request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// The share of API requests answered 503.
    #[serde(default)]
    pub error_rate: f64,
    /// After every N API calls, every access token issued so far stops working.
    #[serde(default)]
    pub expire_sessions_every: u64,
    /// Overrides the seed's daily API request limit.
    #[serde(default)]
    pub daily_api_limit: Option<u64>,
}

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub user: Option<String>,
    pub time: String,
}

/// What the simulator was asked, API and token requests apart.
#[derive(Default)]
pub(super) struct RequestLog {
    pub(super) api: Vec<LoggedRequest>,
    pub(super) token: Vec<LoggedRequest>,
}

/// Answers one control request: `what` is the path after `/__sim/`.
pub(super) fn serve(state: &Shared, method: &Method, what: &str, body: &Bytes) -> Response {
    let mut st = lock(state);
    let ok = |b: Json| respond(200, Some(b), Vec::new(), None);
    match (method.as_str(), what) {
        ("GET", "requests") => {
            let limit = st.faults.daily_api_limit.unwrap_or(st.seed_daily_limit);
            ok(json!({
                "total": st.log.api.len(),
                "api_usage": st.api_usage,
                "daily_api_limit": limit,
                "requests": st.log.api,
                "token_requests": st.log.token,
            }))
        }
        ("DELETE", "requests") => {
            st.log = RequestLog::default();
            st.api_usage = 0;
            st.calls_since_expiry = 0;
            ok(json!({ "reset": true }))
        }
        ("GET", "faults") => ok(json!(st.faults)),
        ("POST", "faults") => match serde_json::from_slice::<Faults>(body) {
            Ok(f) if (0.0..=1.0).contains(&f.error_rate) => {
                st.faults = f;
                st.calls_since_expiry = 0;
                ok(json!(st.faults))
            }
            Ok(_) => respond(400, Some(json!({ "error": "error_rate must be between 0 and 1" })), Vec::new(), None),
            Err(e) => respond(400, Some(json!({ "error": format!("invalid faults: {e}") })), Vec::new(), None),
        },
        ("DELETE", "faults") => {
            st.faults = Faults::default();
            ok(json!(st.faults))
        }
        ("GET", "keys") => ok(json!(st.keys)),
        _ => respond(
            404,
            Some(json!({ "error": format!("no control endpoint {method} /__sim/{what}") })),
            Vec::new(),
            None,
        ),
    }
}
