//! The REST client: one [`Client`] per org, cheap to clone and share across tasks.
//!
//! What it takes care of so callers do not have to:
//! - a cached access token, with exactly one re-authentication and retry when Salesforce
//!   answers 401 `INVALID_SESSION_ID`;
//! - bounded exponential backoff with jitter for dropped connections, timeouts and 5xx —
//!   but a request that may already have been applied (a `POST` that timed out) is never
//!   resent blindly, so a retry cannot post a reply twice;
//! - `REQUEST_LIMIT_EXCEEDED`: calls are held back locally for a while instead of
//!   hammering an org that has run out of API requests;
//! - the `Sforce-Limit-Info` header of every response, so the remaining daily budget is
//!   always known ([`Client::api_usage`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::assignment::query_text;
pub use super::assignment::{AUTO_ASSIGN_HEADER, AssignmentRules};
use super::auth::{self, Credentials, Session};
use super::error::{Result, SalesforceError};
pub use super::pages::QueryPages;
use super::types::api_error;
pub use super::types::*;
use crate::model::Secret;

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first backoff; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1`: exponential, capped, with "equal jitter"
    /// (half fixed, half random) so that many clients do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// Everything a client needs to reach one org.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the token endpoint lives: `https://login.salesforce.com`,
    /// `https://test.salesforce.com`, a My Domain URL, or the simulator's URL.
    pub login_url: String,
    /// The REST API version to speak, such as `62.0` (checked against what the org offers);
    /// `None`: the newest both casebridge and the org support ([`super::versions`]).
    pub api_version: Option<String>,
    pub credentials: Credentials,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// How long to hold calls after `REQUEST_LIMIT_EXCEEDED`.
    pub limit_hold: Duration,
    /// Whether the org's assignment rules may route what casebridge writes.
    pub assignment_rules: AssignmentRules,
    /// Where a rotated refresh token is kept (the refresh-token grant); without one a
    /// rotated token lives only as long as the process.
    pub refresh_tokens: Option<Arc<dyn super::auth::RefreshTokenStore>>,
}

impl ClientConfig {
    pub fn new(login_url: impl Into<String>, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            login_url: login_url.into().trim_end_matches('/').to_string(),
            api_version: None,
            credentials,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            limit_hold: Duration::from_secs(300),
            assignment_rules: AssignmentRules::Never,
            refresh_tokens: None,
        }
    }
}

/// Daily API usage as the last response reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }

    /// Parses `api-usage=18/5000` (possibly among other `;`-separated parts).
    pub fn parse(header: &str) -> Option<ApiUsage> {
        header.split(';').find_map(|part| {
            let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
            Some(ApiUsage { used: used.trim().parse().ok()?, max: max.trim().parse().ok()? })
        })
    }
}

/// A Salesforce REST API client for one org.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    usage: Mutex<Option<ApiUsage>>,
    hold_until: Mutex<Option<Instant>>,
    requests_sent: AtomicU64,
    /// The refresh token in use when it is not the configured one (rotated, or read from
    /// the token store).
    refresh_token: Mutex<Option<Secret>>,
    /// The REST API version chosen at the first sign-in.
    api_version: std::sync::OnceLock<String>,
}

/// A response the client accepted: its status and JSON body (if any).
struct Reply {
    body: Option<Json>,
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// GET, PATCH with the same body, DELETE: repeating changes nothing more.
    Safe,
    /// POST: only resend when Salesforce certainly did not apply it.
    OnlyIfUnapplied,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("casebridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SalesforceError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                session: tokio::sync::Mutex::new(None),
                usage: Mutex::new(None),
                hold_until: Mutex::new(None),
                requests_sent: AtomicU64::new(0),
                refresh_token: Mutex::new(None),
                api_version: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Daily API usage from the latest `Sforce-Limit-Info` header, if any response had one.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self.inner.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// API requests this client has sent (token requests excluded).
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests_sent.load(Ordering::Relaxed)
    }

    /// The current session, signing in first if there is none.
    pub async fn session(&self) -> Result<Arc<Session>> {
        let mut guard = self.inner.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let session = Arc::new(self.login().await?);
        if self.inner.api_version.get().is_none() {
            let offered = self.versions_at(&session.instance_url).await?;
            let chosen = super::versions::choose(&offered, self.inner.config.api_version.as_deref())?;
            tracing::debug!(version = %chosen, "REST API version chosen.");
            let _ = self.inner.api_version.set(chosen);
        }
        *guard = Some(session.clone());
        Ok(session)
    }

    /// The REST API version in use: the one chosen at the first sign-in (until then, the
    /// pinned one or the newest casebridge supports).
    pub fn api_version(&self) -> &str {
        self.inner
            .api_version
            .get()
            .map(String::as_str)
            .or(self.inner.config.api_version.as_deref())
            .unwrap_or(super::versions::NEWEST_API_VERSION)
    }

    /// `GET {instance}/services/data/`: the versions an instance offers. Not an API call
    /// (Salesforce needs no session for it and counts it against no limit).
    pub(super) async fn versions_at(&self, instance_url: &str) -> Result<Vec<super::versions::ApiVersion>> {
        let url = format!("{instance_url}/services/data/");
        let resp = self
            .inner
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| SalesforceError::Transport { url: url.clone(), source: e.without_url() })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| SalesforceError::Transport { url: url.clone(), source: e })?;
        if !(200..300).contains(&status) {
            return Err(super::types::api_error(status, serde_json::from_str(&text).ok().as_ref()));
        }
        let mut versions: Vec<super::versions::ApiVersion> = serde_json::from_str(&text)
            .map_err(|e| SalesforceError::Decode { context: "GET /services/data/".into(), detail: e.to_string() })?;
        versions.sort_by_key(|v| super::versions::parse(&v.version));
        Ok(versions)
    }

    /// Drops the cached session if it is still `stale`, so the next call signs in again.
    /// Concurrent callers that saw the same expired token sign in only once.
    async fn invalidate(&self, stale: &Session) {
        let mut guard = self.inner.session.lock().await;
        if guard.as_ref().is_some_and(|s| s.access_token == stale.access_token) {
            *guard = None;
        }
    }

    async fn login(&self) -> Result<Session> {
        let url = format!("{}/services/oauth2/token", self.inner.config.login_url);
        let retry = &self.inner.config.retry;
        let store = self.inner.config.refresh_tokens.clone();
        // Other processes on the grant wait while this one refreshes (and saves what it got).
        let _exclusive = auth::exclusive(store.clone()).await;
        let mut attempt = 0;
        let mut reloaded = false;
        loop {
            let current = auth::newest_refresh_token(store.as_deref(), &self.inner.refresh_token);
            let form = auth::token_form(&self.inner.config.credentials, current.as_ref())?;
            let outcome = self.inner.http.post(&url).form(&form).send().await;
            let failure = match outcome {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text =
                        resp.text().await.map_err(|e| SalesforceError::Transport { url: url.clone(), source: e })?;
                    match auth::parse_grant(status, &text) {
                        Ok((session, rotated)) => {
                            if let Some(new) = rotated {
                                auth::keep_rotated(new, store.as_deref(), &self.inner.refresh_token);
                            }
                            return Ok(session);
                        }
                        Err(e) if status >= 500 => e,
                        // Refused: another process sharing the grant may have rotated the
                        // token since this one read it. Read it again, once.
                        Err(e) if e.error_code() == "invalid_grant" && !reloaded && store.is_some() => {
                            reloaded = true;
                            let kept = store.as_ref().and_then(|s| s.load());
                            if kept.is_none() || kept == current {
                                return Err(e);
                            }
                            tracing::info!("The refresh token was rotated by another process; using the newer one.");
                            *self.inner.refresh_token.lock().unwrap_or_else(|p| p.into_inner()) = kept;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => SalesforceError::Transport { url: url.clone(), source: e },
            };
            attempt += 1;
            if attempt >= retry.max_attempts {
                return Err(failure);
            }
            tracing::warn!(error = %failure, attempt, "Salesforce sign-in failed; retrying.");
            tokio::time::sleep(retry.delay(attempt - 1)).await;
        }
    }

    fn data_url(&self, session: &Session, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", session.instance_url)
        } else {
            format!("{}/services/data/v{}/{path}", session.instance_url, self.api_version())
        }
    }

    fn held(&self) -> Option<Duration> {
        let mut hold = self.inner.hold_until.lock().unwrap_or_else(|p| p.into_inner());
        match *hold {
            Some(until) if until > Instant::now() => Some(until - Instant::now()),
            Some(_) => {
                *hold = None;
                None
            }
            None => None,
        }
    }

    fn record_usage(&self, headers: &reqwest::header::HeaderMap) {
        if let Some(usage) = headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()).and_then(ApiUsage::parse) {
            *self.inner.usage.lock().unwrap_or_else(|p| p.into_inner()) = Some(usage);
        }
    }

    /// Sends one API request with sign-in, retries and limit handling.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
        extra_headers: &[(&str, String)],
    ) -> Result<Reply> {
        let replay = if method == Method::POST { Replay::OnlyIfUnapplied } else { Replay::Safe };
        let retry = &self.inner.config.retry;
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        loop {
            if let Some(left) = self.held() {
                return Err(SalesforceError::LimitExceeded {
                    message: "TotalRequests Limit exceeded.".into(),
                    retry_after_secs: left.as_secs().max(1),
                });
            }
            let session = self.session().await?;
            let url = self.data_url(&session, path);
            let mut request = self.inner.http.request(method.clone(), &url).bearer_auth(session.access_token.expose());
            if !query.is_empty() {
                request = request.query(query);
            }
            // On every request (Salesforce reads it only on Case, Lead and Account writes):
            // the org's assignment rules never move what casebridge assigned.
            let full = if query.is_empty() { path.to_string() } else { format!("{path}?{}", query_text(query)) };
            request = request
                .header(AUTO_ASSIGN_HEADER, self.inner.config.assignment_rules.header_value(method.as_str(), &full));
            for (name, value) in extra_headers {
                request = request.header(*name, value);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
            let failure = match request.send().await {
                Err(e) => {
                    let e = e.without_url();
                    // A connection that was never made carried nothing; anything later may have.
                    let unapplied = e.is_connect();
                    let err = SalesforceError::Transport { url: path_only(&url), source: e };
                    if replay == Replay::OnlyIfUnapplied && !unapplied {
                        return Err(err);
                    }
                    err
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    self.record_usage(resp.headers());
                    let text =
                        resp.text().await.map_err(|e| SalesforceError::Transport { url: url.clone(), source: e })?;
                    if (200..300).contains(&status) {
                        let body = if text.trim().is_empty() {
                            None
                        } else {
                            Some(serde_json::from_str(&text).map_err(|e| SalesforceError::Decode {
                                context: format!("{method} {path}"),
                                detail: e.to_string(),
                            })?)
                        };
                        return Ok(Reply { body });
                    }
                    let parsed: Option<Json> = serde_json::from_str(&text).ok();
                    let err = api_error(status, parsed.as_ref());
                    if err.is_invalid_session() && !reauthenticated {
                        reauthenticated = true;
                        tracing::info!("Salesforce session expired; signing in again.");
                        self.invalidate(&session).await;
                        continue;
                    }
                    if err.error_code() == "REQUEST_LIMIT_EXCEEDED" {
                        let hold = self.inner.config.limit_hold;
                        *self.inner.hold_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + hold);
                        tracing::warn!(hold_secs = hold.as_secs(), "Salesforce API limit reached; holding calls.");
                        return Err(SalesforceError::LimitExceeded {
                            message: err.message(),
                            retry_after_secs: hold.as_secs(),
                        });
                    }
                    // 503 and row-lock errors mean Salesforce did not apply the request.
                    let unapplied = status == 503 || err.error_code() == "UNABLE_TO_LOCK_ROW";
                    if !err.is_transient() || (replay == Replay::OnlyIfUnapplied && !unapplied) {
                        return Err(err);
                    }
                    err
                }
            };
            attempt += 1;
            if attempt >= retry.max_attempts {
                return Err(failure);
            }
            let pause = retry.delay(attempt - 1);
            tracing::warn!(error = %failure, attempt, pause_ms = pause.as_millis() as u64, "Salesforce request failed; retrying.");
            tokio::time::sleep(pause).await;
        }
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<T> {
        let reply = self.send(method.clone(), path, query, body, &[]).await?;
        let body = reply.body.ok_or_else(|| SalesforceError::Decode {
            context: format!("{method} {path}"),
            detail: "empty response body".into(),
        })?;
        serde_json::from_value(body)
            .map_err(|e| SalesforceError::Decode { context: format!("{method} {path}"), detail: e.to_string() })
    }

    /// Runs a SOQL query; pages are fetched as they are read (see [`QueryPages`]).
    pub fn query<T: DeserializeOwned>(&self, soql: impl Into<String>) -> QueryPages<T> {
        QueryPages::new(self.clone(), soql.into(), false)
    }

    /// Like [`Client::query`], through `queryAll`: deleted and archived rows included.
    pub fn query_all<T: DeserializeOwned>(&self, soql: impl Into<String>) -> QueryPages<T> {
        QueryPages::new(self.clone(), soql.into(), true)
    }

    /// `GET /sobjects/{object}/{id}`, optionally only `fields`.
    pub async fn get<T: DeserializeOwned>(&self, object: &str, id: &str, fields: Option<&[&str]>) -> Result<T> {
        let joined = fields.map(|f| f.join(","));
        let query: Vec<(&str, &str)> = joined.as_deref().map(|f| vec![("fields", f)]).unwrap_or_default();
        self.send_json(Method::GET, &format!("sobjects/{object}/{id}"), &query, None).await
    }

    /// `POST /sobjects/{object}`; returns the new record's id.
    pub async fn create(&self, object: &str, record: &impl Serialize) -> Result<String> {
        let body = to_json(record)?;
        let r: CreateResult = self.send_json(Method::POST, &format!("sobjects/{object}"), &[], Some(&body)).await?;
        if !r.success {
            return Err(SalesforceError::Decode {
                context: format!("create {object}"),
                detail: format!("errors: {:?}", r.errors),
            });
        }
        Ok(r.id)
    }

    /// `PATCH /sobjects/{object}/{id}` (204 on success).
    pub async fn update(&self, object: &str, id: &str, fields: &impl Serialize) -> Result<()> {
        let body = to_json(fields)?;
        self.send(Method::PATCH, &format!("sobjects/{object}/{id}"), &[], Some(&body), &[]).await.map(|_| ())
    }

    /// `DELETE /sobjects/{object}/{id}` (204 on success).
    pub async fn delete(&self, object: &str, id: &str) -> Result<()> {
        self.send(Method::DELETE, &format!("sobjects/{object}/{id}"), &[], None, &[]).await.map(|_| ())
    }

    /// `GET /sobjects/{object}/describe`.
    pub async fn describe(&self, object: &str) -> Result<SObjectDescribe> {
        self.send_json(Method::GET, &format!("sobjects/{object}/describe"), &[], None).await
    }

    /// `PATCH /sobjects/{Object}/{ExternalIdField}/{value}`: an upsert by External ID;
    /// returns the record's id (made or updated).
    pub async fn upsert_json(&self, path: &str, record: &Json) -> Result<String> {
        let reply: Json = self.send_json(Method::PATCH, path, &[], Some(record)).await?;
        reply["id"].as_str().map(str::to_string).ok_or_else(|| SalesforceError::Decode {
            context: format!("PATCH {path}"),
            detail: "no id in the upsert's answer".into(),
        })
    }

    /// `GET /limits`: every limit of the org, by name (`DailyApiRequests`, ...).
    pub async fn limits(&self) -> Result<std::collections::BTreeMap<String, Limit>> {
        let raw: serde_json::Map<String, Json> = self.send_json(Method::GET, "limits", &[], None).await?;
        // Some limits carry per-app breakdowns beside Max/Remaining; keep the totals.
        Ok(raw.into_iter().filter_map(|(k, v)| serde_json::from_value::<Limit>(v).ok().map(|l| (k, l))).collect())
    }

    /// `POST /composite`: up to 25 subrequests in one API call. Each subrequest's result is
    /// returned on its own; with `all_or_none`, one failure rolls back all of them.
    pub async fn composite(&self, all_or_none: bool, subrequests: Vec<SubRequest>) -> Result<Vec<SubResponse>> {
        if subrequests.is_empty() || subrequests.len() > COMPOSITE_MAX {
            return Err(SalesforceError::Config(format!(
                "a composite request holds 1 to {COMPOSITE_MAX} subrequests, not {}",
                subrequests.len()
            )));
        }
        let version = self.api_version().to_string();
        let subrequests: Vec<SubRequest> = subrequests
            .into_iter()
            .map(|mut s| {
                if !s.url.starts_with('/') {
                    s.url = format!("/services/data/v{version}/{}", s.url);
                }
                self.inner.config.assignment_rules.mark_subrequest(&mut s);
                s
            })
            .collect();
        let body = serde_json::json!({ "allOrNone": all_or_none, "compositeRequest": subrequests });
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct CompositeResponse {
            composite_response: Vec<SubResponse>,
        }
        let r: CompositeResponse = self.send_json(Method::POST, "composite", &[], Some(&body)).await?;
        Ok(r.composite_response)
    }

    pub(super) async fn query_page(
        &self,
        first: Option<(&str, bool)>,
        next_url: Option<&str>,
    ) -> Result<QueryResult<Json>> {
        match (first, next_url) {
            (Some((soql, all)), _) => {
                self.send_json(Method::GET, if all { "queryAll" } else { "query" }, &[("q", soql)], None).await
            }
            (None, Some(url)) => self.send_json(Method::GET, url, &[], None).await,
            (None, None) => unreachable!("a query page needs a query or a next-records URL"),
        }
    }
}

/// A URL without its query string, for messages (a SOQL query can be very long).
fn path_only(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

fn to_json(value: &impl Serialize) -> Result<Json> {
    serde_json::to_value(value).map_err(|e| SalesforceError::Config(format!("cannot encode the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_limit_header() {
        assert_eq!(ApiUsage::parse("api-usage=18/5000"), Some(ApiUsage { used: 18, max: 5000 }));
        assert_eq!(
            ApiUsage::parse("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"),
            Some(ApiUsage { used: 25, max: 5000 })
        );
        assert_eq!(ApiUsage::parse("nonsense"), None);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let p =
            RetryPolicy { max_attempts: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for attempt in 0..10 {
            let d = p.delay(attempt);
            let ceiling = (Duration::from_millis(100) * 2u32.pow(attempt)).min(Duration::from_secs(1));
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?} vs {ceiling:?}");
        }
    }
}
