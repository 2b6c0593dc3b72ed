//! An agent backed by any OpenAI-compatible chat-completions service (OpenAI, Azure
//! OpenAI, vLLM, Ollama, llama.cpp, ...), grounded in the help centre: each question is
//! first run through retrieval ([`crate::knowledge`]), the best passages go to the model
//! with the conversation ([`grounding`]), and the model's structured answer is checked
//! against them before it may be posted.
//!
//! The service is shared by every conversation the daemon works on at once. When it says
//! "too many requests" (HTTP 429, or 503 with `Retry-After`), every caller waits out the
//! same pause ([`RateGate`]) when it said how long, and the number of requests sent at once
//! halves ([`limit::AdaptiveLimit`]: found by the daemon, up to `agent.concurrency`), so a
//! burst finds the service's level instead of failing conversations.

pub mod grounding;
pub mod limit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::time::Instant;

use super::AgentError;
use crate::knowledge::Library;
use crate::model::{AgentAnswer, Secret, Usage, View};
use grounding::Verdict;

/// What a model answers when it cannot help, in prompts that predate the JSON answer.
pub const CANNOT_HELP: &str = "CANNOT_HELP";

pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly, precise customer support agent. Keep answers short \
and plain. If the customer asks for a person, say you cannot help.";

/// How many times one question is sent while the service keeps saying "too many requests"
/// (while the level of requests at once is being found, a few are expected).
const RATE_LIMITED_TRIES: u32 = 8;
/// The wait before asking again after "too many requests" without a `Retry-After`, times
/// the attempt: the halved level does the rest.
const OVERLOAD_BACKOFF: Duration = Duration::from_millis(250);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The largest response read from the service: an answer is a few KiB; a service that
/// sends more is failing, and its reply must not fill the daemon's memory.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The most of a failed response's body quoted in an error.
const ERROR_DETAIL_CHARS: usize = 300;

/// How the model is asked and what it is given.
#[derive(Debug, Clone)]
pub struct Grounding {
    /// Passages sent per question.
    pub passages: usize,
    /// Characters of passage text per request.
    pub context_chars: usize,
    /// Ask for the JSON answer with `response_format` (a JSON schema).
    pub json_schema: bool,
    /// Conversation attributes the model may see.
    pub attributes: Vec<String>,
}

impl Default for Grounding {
    fn default() -> Self {
        Grounding { passages: 5, context_chars: 8_000, json_schema: true, attributes: Vec::new() }
    }
}

/// The pause every caller honours after the service said "too many requests".
#[derive(Debug, Default)]
pub struct RateGate {
    until: Mutex<Option<Instant>>,
}

impl RateGate {
    /// Waits until no pause is in force.
    pub async fn pass(&self) {
        loop {
            let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// Starts (or lengthens) the pause.
    pub fn pause(&self, for_how_long: Duration) {
        let until = Instant::now() + for_how_long.min(MAX_RETRY_AFTER);
        let mut slot = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none_or(|t| t < until) {
            *slot = Some(until);
        }
    }
}

pub struct OpenAiAgent {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<Secret>,
    system_prompt: String,
    knowledge: Arc<Library>,
    grounding: Grounding,
    gate: RateGate,
    limit: limit::AdaptiveLimit,
}

/// One response from the service.
struct Reply {
    content: String,
    usage: Option<Usage>,
    /// `finish_reason: length`: the answer was cut off.
    truncated: bool,
}

impl OpenAiAgent {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<Secret>,
        system_prompt: Option<String>,
        timeout: Duration,
        knowledge: Arc<Library>,
        grounding: Grounding,
    ) -> Result<OpenAiAgent, AgentError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| AgentError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiAgent {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_string(),
            api_key,
            system_prompt: system_prompt.unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_string()),
            knowledge,
            grounding,
            gate: RateGate::default(),
            limit: limit::AdaptiveLimit::new(crate::config::DEFAULT_AGENT_CONCURRENCY),
        })
    }

    /// The most requests sent at once (`agent.concurrency`); the level under it is found.
    pub fn with_ceiling(mut self, ceiling: usize) -> OpenAiAgent {
        self.limit = limit::AdaptiveLimit::new(ceiling);
        self
    }

    /// The level of requests at once found so far.
    pub fn concurrency_level(&self) -> usize {
        self.limit.level()
    }

    /// The help centre it answers from.
    pub fn library(&self) -> &Arc<Library> {
        &self.knowledge
    }

    /// The question's vector when the help centre is ranked by meaning (embedded off the
    /// async threads); `None` without a model or when it failed (ranked by words then).
    async fn question_vector(&self, question: &str) -> Option<Vec<f32>> {
        if !self.knowledge.is_semantic() {
            return None;
        }
        let (library, question) = (self.knowledge.clone(), question.to_string());
        match tokio::task::spawn_blocking(move || library.question_vector(&question)).await {
            Ok(Ok(vector)) => vector,
            Ok(Err(why)) => {
                tracing::warn!(%why, "the question is ranked by words alone: the embedding model failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Whether the answer's statements are in the passages it cites ([`super::support`]):
    /// by words, and by meaning where the help centre has a model (off the async threads).
    async fn supported(
        &self,
        said: &str,
        cited: &[String],
        sent: &[grounding::Sent],
        index: &crate::knowledge::Index,
    ) -> Result<(), super::support::Unsupported> {
        let passages: Vec<(String, Option<Vec<f32>>)> = sent
            .iter()
            .filter(|s| cited.contains(&s.id))
            .map(|s| (s.text.clone(), index.passage_vector(&s.id).map(<[f32]>::to_vec)))
            .collect();
        let (library, said) = (self.knowledge.clone(), said.to_string());
        let check = move || {
            let cited: Vec<super::support::Cited<'_>> = passages
                .iter()
                .map(|(text, vector)| super::support::Cited { text, vector: vector.as_deref() })
                .collect();
            let embed = |texts: &[&str]| library.text_vectors(texts).unwrap_or_else(|| Err("no model".into()));
            let embed: Option<super::support::EmbedStatements<'_>> =
                if library.is_semantic() { Some(&embed) } else { None };
            super::support::check(&said, &cited, embed)
        };
        if self.knowledge.is_semantic() {
            tokio::task::spawn_blocking(check).await.unwrap_or_else(|e| {
                Err(super::support::Unsupported { statement: String::new(), why: format!("the check stopped: {e}") })
            })
        } else {
            check()
        }
    }

    /// Retrieves, asks the model, and checks its answer. A question no passage matches is
    /// declined without a call.
    pub async fn answer(&self, view: View<'_>) -> Result<AgentAnswer, AgentError> {
        let question = super::question(view.conversation);
        let index = self.knowledge.current();
        let vector = self.question_vector(&question).await;
        let ranking = index.rank(&question, vector.as_deref());
        let hits = ranking.hits;
        let sent = grounding::select(&hits, self.grounding.passages, self.grounding.context_chars);
        // What the trace (and `agent eval`'s recall) records: the passages the model is sent.
        let retrieved: Vec<_> = super::kb::retrieved(&hits, self.grounding.passages)
            .into_iter()
            .filter(|r| sent.iter().any(|s| s.id == r.passage))
            .collect();
        if sent.is_empty() {
            let mut a = AgentAnswer::cannot_help(
                "openai",
                0.0,
                "no help article matches the question; the model was not asked",
            );
            a.retrieved = retrieved;
            return Ok(a);
        }
        let attributes: BTreeMap<String, Json> = self
            .grounding
            .attributes
            .iter()
            .filter_map(|name| view.attributes.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        let messages = grounding::messages(&self.system_prompt, &sent, &attributes, view.conversation);
        let request_chars =
            messages.iter().map(|m| m["content"].as_str().map_or(0, |c| c.chars().count()) as u64).sum();
        let mut body = json!({ "model": self.model, "messages": messages, "temperature": 0.2 });
        if self.grounding.json_schema {
            body["response_format"] = grounding::response_format();
        }
        let started = std::time::Instant::now();
        let reply = self.send(&body).await?;
        let verdict = if reply.truncated {
            Verdict::CannotHelp("the model's answer was cut off (finish_reason: length)".into())
        } else {
            match grounding::parse(&reply.content) {
                Ok(answer) => {
                    let said = answer.answer.clone();
                    match grounding::check(answer, &sent) {
                        Verdict::Answer { cited, .. }
                            if let Err(u) = self.supported(&said, &cited, &sent, &index).await =>
                        {
                            Verdict::CannotHelp(format!(
                                "the model's answer is not supported by the passages it cites, so it is not posted: {:?}: {}",
                                u.statement, u.why
                            ))
                        }
                        verdict => verdict,
                    }
                }
                Err(problem) => Verdict::CannotHelp(problem),
            }
        };
        let mut answer = match verdict {
            Verdict::Answer { text, cited, sources, confidence } => {
                let mut a = AgentAnswer::answered("openai", text, confidence, sources);
                a.cited = cited;
                a
            }
            Verdict::CannotHelp(why) => AgentAnswer::cannot_help("openai", 0.0, &why),
        };
        answer.retrieved = retrieved;
        answer.request_chars = Some(request_chars);
        answer.usage = reply.usage;
        answer.latency_ms = Some(started.elapsed().as_millis() as u64);
        // Sizes and costs, never bodies: logs must not carry what customers wrote.
        tracing::info!(
            passages = sent.len(),
            request_chars,
            prompt_tokens = reply.usage.map(|u| u.prompt_tokens),
            completion_tokens = reply.usage.map(|u| u.completion_tokens),
            latency_ms = answer.latency_ms,
            answered = answer.text.is_some(),
            cited = answer.cited.len(),
            "The AI service answered."
        );
        Ok(answer)
    }

    /// Sends one request under the level of requests at once, waiting out "too many
    /// requests" (with every other caller when the service said how long).
    async fn send(&self, body: &Json) -> Result<Reply, AgentError> {
        for attempt in 1..=RATE_LIMITED_TRIES {
            // The place first, then the pause: a request that waited for its place must
            // still honour a `Retry-After` that came meanwhile.
            let permit = self.limit.acquire().await;
            self.gate.pass().await;
            let mut request = self.http.post(&self.url).json(body);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose());
            }
            let response = request.send().await.map_err(|e| AgentError::Service(format!("{}: {e}", self.url)))?;
            let status = response.status();
            let retry_after = retry_after(response.headers());
            let text = read_capped(response).await?;
            let rate_limited = status.as_u16() == 429 || (status.as_u16() == 503 && retry_after.is_some());
            if rate_limited && attempt < RATE_LIMITED_TRIES {
                permit.overloaded();
                drop(permit);
                match retry_after {
                    Some(pause) => self.gate.pause(pause),
                    None => tokio::time::sleep(OVERLOAD_BACKOFF * attempt).await,
                }
                continue;
            }
            if !status.is_success() {
                let detail: String = text.chars().take(ERROR_DETAIL_CHARS).collect();
                let message = format!("{} answered HTTP {status}: {detail}", self.url);
                // A bad request (too long, refused, unknown model) fails again; an outage may not.
                let for_good = status.is_client_error() && !matches!(status.as_u16(), 408 | 429);
                return Err(if for_good { AgentError::Refused(message) } else { AgentError::Service(message) });
            }
            permit.answered();
            return parse_reply(&text);
        }
        unreachable!("the last attempt returns")
    }
}

/// The response body, refused past [`MAX_RESPONSE_BYTES`] without reading the rest.
async fn read_capped(mut response: reqwest::Response) -> Result<String, AgentError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| AgentError::Service(e.to_string()))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(AgentError::Service(format!(
                "the response is larger than {} KiB; not read",
                MAX_RESPONSE_BYTES / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `Retry-After` in seconds (the HTTP-date form is rare from AI services and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds = value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)?;
    // Capped before converting: a huge value would overflow a Duration.
    Some(Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// The content, usage and finish reason of a chat-completions response.
fn parse_reply(text: &str) -> Result<Reply, AgentError> {
    let parsed: Json =
        serde_json::from_str(text).map_err(|e| AgentError::Refused(format!("the response is not JSON: {e}")))?;
    let choice = &parsed["choices"][0];
    if let Some(refusal) = choice["message"]["refusal"].as_str() {
        // Structured outputs: the model declined; the rules see "cannot help".
        let refusal: String = refusal.chars().take(ERROR_DETAIL_CHARS).collect();
        return Ok(Reply {
            content: json!({ "cannot_help": true, "reason": refusal }).to_string(),
            usage: None,
            truncated: false,
        });
    }
    let content = choice["message"]["content"]
        .as_str()
        .ok_or_else(|| AgentError::Refused("the response has no choices[0].message.content".into()))?
        .to_string();
    let usage = parsed.get("usage").map(|u| Usage {
        prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
    });
    Ok(Reply { content, usage, truncated: choice["finish_reason"] == "length" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_with_usage_and_truncation() {
        let r = parse_reply(r#"{"choices":[{"message":{"content":"{}"},"finish_reason":"length"}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#).unwrap();
        assert!(r.truncated);
        assert_eq!(r.usage, Some(Usage { prompt_tokens: 12, completion_tokens: 3 }));
        assert!(matches!(parse_reply("<html>"), Err(AgentError::Refused(_))));
        let refused =
            parse_reply(r#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."}}]}"#).unwrap();
        assert!(grounding::parse(&refused.content).unwrap().cannot_help);
        let mut headers = reqwest::header::HeaderMap::new();
        for (value, expected) in
            [("1e20", Some(MAX_RETRY_AFTER)), ("2", Some(Duration::from_secs(2))), ("-1", None), ("soon", None)]
        {
            headers.insert(reqwest::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers), expected, "{value}");
        }
        assert!(parse_reply(r#"{"choices":[]}"#).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn one_pause_holds_every_caller() {
        let gate = std::sync::Arc::new(RateGate::default());
        gate.pause(Duration::from_secs(5));
        gate.pause(Duration::from_secs(1)); // a shorter pause does not cut the longer one
        let started = Instant::now();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.pass().await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(started.elapsed().as_secs(), 5);
        gate.pause(Duration::from_secs(3600));
        let started = Instant::now();
        gate.pass().await;
        assert_eq!(started.elapsed(), MAX_RETRY_AFTER, "a huge Retry-After is capped");
    }
}
