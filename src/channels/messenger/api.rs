//! The messenger's HTTP API, on its own listener (`messenger.listen`): the widget script,
//! a page that embeds it, and the JSON API the widget calls. Every call but the first
//! carries the visitor token (`Authorization: Bearer`, or `?token=` for the event stream,
//! which browsers open without headers). Browser requests from an origin not in
//! `messenger.allowed_origins` (or the listener's own) are refused before anything is read.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /messenger.js` | the widget: one `<script>` tag embeds it |
//! | `GET /` | a page with the widget (for trying it) |
//! | `POST /messenger/v1/conversations` | `{name?, email?, user_hash?, message}` → id, token, messages |
//! | `POST /messenger/v1/conversations/{id}/messages` | `{body}` → the message |
//! | `GET /messenger/v1/conversations/{id}/messages?after=N` | messages past N |
//! | `POST /messenger/v1/conversations/{id}/email` | an anonymous visitor leaves an email: `{"email": "..."}` |
//! | `POST /messenger/v1/conversations/{id}/rating` | the visitor rates the conversation: `{"rating": 1..5, "comment": "..."}` |
//! | `GET /messenger/v1/conversations/{id}/events?after=N&token=T` | Server-Sent Events: each new message; `typing` while the agent works on an answer |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;

use super::{Messenger, MessengerError, StartRequest};

/// The largest request body the API reads (a message of 32,000 characters, escaped, fits).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How often an idle event stream carries a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The messenger's router.
pub fn router(messenger: Arc<Messenger>) -> Router {
    let api = Router::new()
        .route("/messenger/v1/conversations", post(start).options(preflight))
        .route("/messenger/v1/conversations/{id}/messages", post(send).get(list).options(preflight))
        .route("/messenger/v1/conversations/{id}/events", get(events).options(preflight))
        .route("/messenger/v1/conversations/{id}/rating", post(rate).options(preflight))
        .route("/messenger/v1/conversations/{id}/email", post(leave_email).options(preflight))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(middleware::from_fn_with_state(messenger.clone(), origins));
    Router::new()
        .route("/messenger.js", get(super::widget::script))
        .route("/", get(super::widget::page))
        .merge(api)
        .with_state(messenger)
}

/// Serves the messenger on a bound listener until `shutdown` resolves.
pub fn serve_on(
    listener: tokio::net::TcpListener,
    messenger: Arc<Messenger>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let local = listener.local_addr()?;
    let app = router(messenger.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Event streams never end by themselves: closing them lets the graceful shutdown finish.
    let shutdown = async move {
        shutdown.await;
        messenger.close_streams();
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "The messenger server stopped.");
        }
    });
    Ok(local)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, axum::Json(json!({ "error": code, "message": message }))).into_response()
}

impl IntoResponse for MessengerError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            MessengerError::NotFound => (StatusCode::NOT_FOUND, "conversation_not_found"),
            MessengerError::NoToken => (StatusCode::UNAUTHORIZED, "visitor_token_missing"),
            MessengerError::BadToken => (StatusCode::FORBIDDEN, "visitor_token_invalid"),
            MessengerError::Empty => (StatusCode::BAD_REQUEST, "message_empty"),
            MessengerError::TooLong { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "message_too_long"),
            MessengerError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            MessengerError::Identity => (StatusCode::FORBIDDEN, "identity_not_verified"),
            MessengerError::Closed => (StatusCode::CONFLICT, "conversation_closed"),
            MessengerError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            MessengerError::Store(e) => {
                tracing::error!(error = %e, "The messenger cannot use the store.");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        };
        let mut response = error(status, code, self.to_string());
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}

/// A JSON body the handler could not read, as the API's own error.
fn bad_body(rejection: JsonRejection) -> Response {
    let status = rejection.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "invalid_request" };
    error(status, code, rejection.body_text())
}

/// Refuses browser requests from origins the admin did not allow, and lets allowed ones
/// read the answers (CORS).
async fn origins(State(m): State<Arc<Messenger>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(origin) = origin else {
        // Not a browser's cross-origin call (or an old same-origin GET): nothing to check.
        return next.run(request).await;
    };
    let own =
        request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).is_some_and(|host| {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        });
    if !own && !m.settings().allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
        return error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!("{origin} may not use this messenger (messenger.allowed_origins)"),
        );
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type, authorization"),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

/// The visitor's address for the per-address limit: the connection's, or behind a proxy
/// (`messenger.behind_proxy`) the last `X-Forwarded-For` entry, the one the proxy added.
fn address(m: &Messenger, headers: &HeaderMap, peer: SocketAddr) -> String {
    let forwarded = || {
        let all: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let last = all.last()?.rsplit(',').next()?.trim();
        last.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
    };
    match m.settings().behind_proxy {
        true => forwarded().unwrap_or_else(|| peer.ip().to_string()),
        false => peer.ip().to_string(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

async fn start(
    State(m): State<Arc<Messenger>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<axum::Json<StartRequest>, JsonRejection>,
) -> Response {
    let axum::Json(request) = match body {
        Ok(b) => b,
        Err(r) => return bad_body(r),
    };
    created(move || {
        let address = address(&m, &headers, peer);
        m.start(request, &address)
    })
    .await
}

/// Runs a visitor's write off the async workers (the store's durable commit blocks) and
/// answers 201 with what it made, or the error's own answer.
async fn created<T: serde::Serialize + Send + 'static>(
    write: impl FnOnce() -> Result<T, MessengerError> + Send + 'static,
) -> Response {
    let done = tokio::task::spawn_blocking(write).await;
    match done.unwrap_or_else(|e| Err(MessengerError::Invalid(format!("the request failed: {e}")))) {
        Ok(made) => (StatusCode::CREATED, axum::Json(made)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    body: String,
}

async fn send(
    State(m): State<Arc<Messenger>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<axum::Json<SendRequest>, JsonRejection>,
) -> Response {
    let axum::Json(request) = match body {
        Ok(b) => b,
        Err(r) => return bad_body(r),
    };
    let token = bearer(&headers);
    created(move || {
        let address = address(&m, &headers, peer);
        m.post(&id, token.as_deref(), &request.body, &address)
    })
    .await
}

/// A visitor's rating of the conversation (CSAT).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingRequest {
    rating: u8,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST .../rating`: the visitor rates the conversation, 1 to 5, with an optional comment;
/// a second rating replaces the first.
async fn rate(
    State(m): State<Arc<Messenger>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<axum::Json<RatingRequest>, JsonRejection>,
) -> Response {
    let axum::Json(request) = match body {
        Ok(b) => b,
        Err(r) => return bad_body(r),
    };
    let token = bearer(&headers);
    created(move || {
        let address = address(&m, &headers, peer);
        m.rate(&id, token.as_deref(), request.rating, request.comment.as_deref(), &address)
    })
    .await
}

/// An anonymous visitor's email, to be reached by.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    email: String,
}

/// `POST .../email`: an anonymous visitor leaves an email (see `Messenger::leave_email`).
async fn leave_email(
    State(m): State<Arc<Messenger>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<axum::Json<EmailRequest>, JsonRejection>,
) -> Response {
    let axum::Json(request) = match body {
        Ok(b) => b,
        Err(r) => return bad_body(r),
    };
    let token = bearer(&headers);
    created(move || {
        let address = address(&m, &headers, peer);
        m.leave_email(&id, token.as_deref(), &request.email, &address).map(|email| json!({ "email": email }))
    })
    .await
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    after: usize,
    #[serde(default)]
    token: Option<String>,
}

async fn list(
    State(m): State<Arc<Messenger>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Response {
    let token = bearer(&headers).or(q.token);
    match m.messages(&id, token.as_deref(), q.after) {
        Ok(messages) => axum::Json(json!({ "messages": messages })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Server-Sent Events: the messages past `after`, then each new one as it is committed
/// (`event: message`, `id:` its seq, JSON data). A stream that falls behind is told to
/// read the messages again (`event: resync`).
async fn events(
    State(m): State<Arc<Messenger>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Response {
    let token = bearer(&headers).or(q.token);
    // A reconnecting EventSource says where it was.
    let after =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(q.after);
    match m.subscribe(&id, token.as_deref(), after) {
        Ok(opened) => Sse::new(stream(opened, after)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn stream(opened: super::Subscription, after: usize) -> impl Stream<Item = Result<Event, Infallible>> {
    let super::Subscription { backlog, receiver, typing } = opened;
    let last = backlog.last().map_or(after, |m| m.seq);
    // Not after the answer itself (committed between the two reads).
    let typing = typing.filter(|_| backlog.last().is_none_or(|m| m.author == "visitor")).map(typing_event);
    let first = futures_util::stream::iter(backlog.into_iter().map(|m| message_event(&m)).chain(typing).map(Ok));
    let rest = futures_util::stream::unfold((receiver, last), |(mut receiver, last)| async move {
        loop {
            match receiver.recv().await {
                Ok(super::StreamEvent::Message(m)) if m.seq <= last => continue,
                Ok(super::StreamEvent::Message(m)) => {
                    let seq = m.seq;
                    return Some((Ok(message_event(&m)), (receiver, seq)));
                }
                Ok(super::StreamEvent::Typing { seconds }) => {
                    return Some((Ok(typing_event(seconds)), (receiver, last)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Ok(Event::default().event("resync").data(last.to_string())), (receiver, last)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    futures_util::StreamExt::chain(first, rest)
}

fn typing_event(seconds: u64) -> Event {
    Event::default().event("typing").data(json!({ "seconds": seconds }).to_string())
}

fn message_event(m: &super::Message) -> Event {
    Event::default().event("message").id(m.seq.to_string()).data(serde_json::to_string(m).unwrap_or_default())
}
