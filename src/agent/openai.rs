//! An agent backed by any OpenAI-compatible chat-completions service (OpenAI, Azure
//! OpenAI, vLLM, Ollama, ...). The conversation's public parts become the chat; the system
//! prompt comes from the admin's file. The model says it cannot help by answering with the
//! [`CANNOT_HELP`] marker, which the default system prompt asks for.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::AgentError;
use crate::model::AgentAnswer;
use crate::model::Secret;
use crate::model::{AuthorKind, Conversation};

/// What the model answers when it cannot help.
pub const CANNOT_HELP: &str = "CANNOT_HELP";

pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly, precise customer support agent. Answer the customer's latest \
messages using only facts you are sure of. Keep answers short. If you cannot answer, or the customer asks for a human, \
reply with exactly CANNOT_HELP and nothing else.";

pub struct OpenAiAgent {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<Secret>,
    system_prompt: String,
}

impl OpenAiAgent {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<Secret>,
        system_prompt: Option<String>,
        timeout: Duration,
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
        })
    }

    fn messages(&self, conversation: &Conversation) -> Vec<Json> {
        let mut messages = vec![json!({ "role": "system", "content": self.system_prompt })];
        for part in conversation.parts.iter().filter(|p| p.public && !p.body.trim().is_empty()) {
            let role = if part.author == AuthorKind::User { "user" } else { "assistant" };
            messages.push(json!({ "role": role, "content": part.body }));
        }
        messages
    }

    pub async fn answer(&self, conversation: &Conversation) -> Result<AgentAnswer, AgentError> {
        let body = json!({ "model": self.model, "messages": self.messages(conversation), "temperature": 0.2 });
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await.map_err(|e| AgentError::Service(format!("{}: {e}", self.url)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| AgentError::Service(e.to_string()))?;
        if !status.is_success() {
            let detail: String = text.chars().take(300).collect();
            return Err(AgentError::Service(format!("{} answered HTTP {status}: {detail}", self.url)));
        }
        let parsed: Json =
            serde_json::from_str(&text).map_err(|e| AgentError::Service(format!("the response is not JSON: {e}")))?;
        let content = parsed["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| AgentError::Service("the response has no choices[0].message.content".into()))?
            .trim()
            .to_string();
        if content.is_empty() || content.contains(CANNOT_HELP) {
            return Ok(AgentAnswer::cannot_help("openai", 0.0, "the model said it cannot help"));
        }
        Ok(AgentAnswer::answered("openai", content, 1.0, Vec::new()))
    }
}
