//! The AI agent that answers customers: a built-in knowledge base ([`kb`]), an
//! OpenAI-compatible chat-completions service ([`openai`]), or a Rhai script ([`script`]).
//!
//! An agent either answers (with a confidence) or says it cannot help; what happens then
//! (a handover, usually) is the rules' decision, not the agent's. An agent *failure* (the
//! AI service is down) is neither: the conversation stays unanswered and is tried again.

pub mod eval;
pub mod eval_report;
pub mod kb;
pub mod openai;
pub mod script;
pub mod support;

use crate::model::{AgentAnswer, AuthorKind, Conversation, View};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent configuration: {0}")]
    Config(String),
    #[error("the AI service failed: {0}")]
    Service(String),
    /// The service refused the request for good (a 4xx other than 408 and 429) or answered
    /// with something that is not a chat completion: trying again would fail again.
    #[error("the AI service refused the request: {0}")]
    Refused(String),
    #[error("the agent script failed: {0}")]
    Script(String),
}

impl AgentError {
    /// Whether trying again later may work (a service outage) rather than never (a bug in
    /// the configuration or script).
    pub fn is_transient(&self) -> bool {
        matches!(self, AgentError::Service(_))
    }
}

/// The configured agent.
pub enum Agent {
    KnowledgeBase(kb::KnowledgeBase),
    OpenAi(openai::OpenAiAgent),
    Script(script::ScriptAgent),
    /// A canned answer: what rule tests and `rules explain` use, since agents are not part
    /// of what a rule set decides.
    Fixed(AgentAnswer),
}

impl Agent {
    pub fn backend(&self) -> &'static str {
        match self {
            Agent::KnowledgeBase(_) => "knowledge_base",
            Agent::OpenAi(_) => "openai",
            Agent::Script(_) => "script",
            Agent::Fixed(_) => "fixed",
        }
    }

    /// The help centre the agent answers from, when it has one.
    pub fn library(&self) -> Option<&std::sync::Arc<crate::knowledge::Library>> {
        match self {
            Agent::KnowledgeBase(kb) => Some(kb.library()),
            Agent::OpenAi(ai) => Some(ai.library()),
            Agent::Script(_) | Agent::Fixed(_) => None,
        }
    }

    /// Answers the conversation's unanswered customer messages; `view` carries the
    /// attributes and topics the rules decided so far.
    pub async fn answer(&self, view: View<'_>) -> Result<AgentAnswer, AgentError> {
        match self {
            Agent::KnowledgeBase(kb) if kb.library().is_semantic() => {
                // Embedding the question is CPU work: off the async threads.
                let (kb, question) = (kb.clone(), question(view.conversation));
                tokio::task::spawn_blocking(move || kb.answer(&question))
                    .await
                    .map_err(|e| AgentError::Service(format!("the knowledge base stopped: {e}")))
            }
            Agent::KnowledgeBase(kb) => Ok(kb.answer(&question(view.conversation))),
            Agent::OpenAi(ai) => ai.answer(view).await,
            Agent::Script(s) => s.answer(&view.to_conversation()).await,
            Agent::Fixed(answer) => Ok(answer.clone()),
        }
    }
}

/// The text the customer is waiting on an answer to: their unanswered messages, or the last
/// one if all are answered.
pub fn question(conversation: &Conversation) -> String {
    let pending: Vec<&str> = conversation.unanswered().iter().map(|p| p.body.as_str()).collect();
    if !pending.is_empty() {
        return pending.join("\n\n");
    }
    conversation.parts.iter().rev().find(|p| p.author == AuthorKind::User).map(|p| p.body.clone()).unwrap_or_default()
}
