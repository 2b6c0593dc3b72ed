//! A local stand-in for an OpenAI-compatible chat-completions service, for tests and
//! benchmarks: it answers the way a grounded model is asked to (JSON citing the first
//! passage it was given), with a latency, and misbehaves on demand — down, rate limited,
//! or answering with what a careless model sends (no citations, invented ones, prose,
//! answers cut off), or refusing requests past a concurrency limit. It records every
//! request and the most requests it held at once.
//!
//! What it answers depends on the customer's last message: "refund" → cannot help;
//! "invent" → cites a passage it was not given; "uncited" → cites nothing; "prose" → not
//! JSON; "truncate" → cut off (`finish_reason: length`); "guarantee" → a promise no
//! passage makes, citing the first; "mismatch" → the last passage's text, citing the
//! first. Otherwise it answers with the first passage's opening sentences, citing it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How the stub behaves; change it while it runs.
#[derive(Debug, Clone, Default)]
pub struct ModelBehaviour {
    /// How long each answer takes.
    pub latency: Duration,
    /// Answer 503 to everything.
    pub down: bool,
    /// Answer this many requests with 429 and `Retry-After: retry_after_secs`.
    pub rate_limited: usize,
    pub retry_after_secs: u64,
    /// Answer with a body of this many bytes (a service gone wrong).
    pub huge_reply_bytes: usize,
    /// Answer 400 `context_length_exceeded` (a request that fails whenever it is sent).
    pub bad_request: bool,
    /// Answer 429 at once (no `Retry-After`) to a request arriving while this many are
    /// being answered: a service with a concurrency limit. 0: no limit.
    pub max_concurrent: usize,
}

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<ModelBehaviour>,
    requests: Mutex<Vec<ModelRequest>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Requests refused for `max_concurrent`.
    overloaded: AtomicUsize,
}

/// A running stub.
pub struct ModelStub {
    /// The base URL to configure, ending in `/v1`.
    pub url: String,
    shared: Arc<Shared>,
}

impl ModelStub {
    /// Starts the stub on a free loopback port.
    pub async fn start(behaviour: ModelBehaviour) -> std::io::Result<ModelStub> {
        let shared = Arc::new(Shared { behaviour: Mutex::new(behaviour), ..Shared::default() });
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(completions))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(ModelStub { url, shared })
    }

    pub fn set(&self, change: impl FnOnce(&mut ModelBehaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn requests(&self) -> Vec<ModelRequest> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The most requests the stub was answering at the same time (those refused for
    /// `max_concurrent` not counted).
    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// How many requests were refused for `max_concurrent`.
    pub fn overloaded(&self) -> usize {
        self.shared.overloaded.load(Ordering::SeqCst)
    }
}

async fn completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    shared.requests.lock().unwrap_or_else(|e| e.into_inner()).push(ModelRequest { authorization, body: body.clone() });
    let limit = shared.behaviour.lock().unwrap_or_else(|e| e.into_inner()).max_concurrent;
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    if limit > 0 && now > limit {
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        shared.overloaded.fetch_add(1, Ordering::SeqCst);
        let error = Json(json!({ "error": { "message": "too many concurrent requests", "type": "requests" } }));
        return (StatusCode::TOO_MANY_REQUESTS, error).into_response();
    }
    shared.peak.fetch_max(now, Ordering::SeqCst);
    let behaviour = {
        let mut b = shared.behaviour.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = b.clone();
        b.rate_limited = b.rate_limited.saturating_sub(1);
        snapshot
    };
    tokio::time::sleep(behaviour.latency).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    if behaviour.down {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": { "message": "overloaded" } })))
            .into_response();
    }
    if behaviour.rate_limited > 0 {
        let retry = behaviour.retry_after_secs.to_string();
        let error = Json(json!({ "error": { "message": "rate limit reached", "type": "requests" } }));
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry)], error).into_response();
    }
    if behaviour.bad_request {
        let error =
            json!({ "error": { "message": "maximum context length exceeded", "code": "context_length_exceeded" } });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    if behaviour.huge_reply_bytes > 0 {
        return (StatusCode::OK, "x".repeat(behaviour.huge_reply_bytes)).into_response();
    }
    Json(answer(&body)).into_response()
}

/// A passage's id and text from what follows `<passage id="` in a request.
fn passage(rest: &str) -> Option<(String, String)> {
    let id = rest.split('"').next()?.to_string();
    let text = rest.split_once(">\n")?.1.split("\n</passage>").next()?.to_string();
    Some((id, text))
}

/// The chat-completions response a grounded model would give.
fn answer(body: &Value) -> Value {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("");
    let passages: Vec<(String, String)> = messages
        .iter()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str())
        .flat_map(|c| c.split("<passage id=\"").skip(1).filter_map(passage))
        .collect();
    let lower = last.to_lowercase();
    let first = passages.first().map(|p| p.0.clone()).unwrap_or_default();
    let opening = |text: &str| text.split_inclusive(". ").take(2).collect::<String>().trim().to_string();
    let said = passages.first().map_or_else(|| format!("Stub answer to: {last}"), |p| opening(&p.1));
    let reply = |said: String, cited: Vec<String>| json!({ "answer": said, "cited": cited, "cannot_help": false, "reason": "" });
    let (content, finish) = if lower.contains("refund") {
        (
            json!({ "answer": "", "cited": [], "cannot_help": true, "reason": "refunds need a person" }).to_string(),
            "stop",
        )
    } else if lower.contains("invent") {
        (reply(said, vec!["made-up#passage".into()]).to_string(), "stop")
    } else if lower.contains("uncited") {
        (reply(said, Vec::new()).to_string(), "stop")
    } else if lower.contains("guarantee") {
        let promise = "Every robot arm comes with a lifetime guarantee and free replacement parts shipped overnight.";
        (reply(promise.into(), vec![first]).to_string(), "stop")
    } else if lower.contains("mismatch") {
        let other = passages.last().map(|p| opening(&p.1)).unwrap_or_default();
        (reply(other, vec![first]).to_string(), "stop")
    } else if lower.contains("prose") {
        ("I think the answer is yes.".to_string(), "stop")
    } else if lower.contains("truncate") {
        ("{\"answer\": \"The first step is".to_string(), "length")
    } else {
        (reply(said, vec![first]).to_string(), "stop")
    };
    let prompt_chars: usize = messages.iter().filter_map(|m| m["content"].as_str()).map(str::len).sum();
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": finish }],
        "usage": { "prompt_tokens": prompt_chars / 4, "completion_tokens": content.len() / 4, "total_tokens": (prompt_chars + content.len()) / 4 }
    })
}
