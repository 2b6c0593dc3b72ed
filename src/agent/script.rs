//! An agent written as a Rhai script, for canned answers. The script defines
//! `fn answer(conversation)` and returns a string (the reply), `()` (cannot help), or a map
//! `#{ text: "...", confidence: 0.8 }`. It runs in the sandbox of [`crate::script`], on a
//! blocking thread so that a slow script never stalls the daemon's async workers.

use std::path::Path;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine};

use super::AgentError;
use crate::model::AgentAnswer;
use crate::model::Conversation;
use crate::script::{self, Limits};

pub struct ScriptAgent {
    engine: Arc<Engine>,
    ast: Arc<AST>,
    limits: Limits,
}

impl ScriptAgent {
    pub fn load(path: &Path, limits: Limits) -> Result<ScriptAgent, AgentError> {
        let engine = script::sandboxed_engine(&limits);
        let ast = script::compile_file(&engine, path).map_err(|e| AgentError::Config(e.to_string()))?;
        if !script::defines(&ast, "answer", 1) {
            return Err(AgentError::Config(format!(
                "{}: the script must define fn answer(conversation)",
                path.display()
            )));
        }
        Ok(ScriptAgent { engine: Arc::new(engine), ast: Arc::new(ast), limits })
    }

    pub async fn answer(&self, conversation: &Conversation) -> Result<AgentAnswer, AgentError> {
        let input = rhai::serde::to_dynamic(conversation).map_err(|e| AgentError::Script(e.to_string()))?;
        let (engine, ast, limits) = (self.engine.clone(), self.ast.clone(), self.limits.clone());
        let result = tokio::task::spawn_blocking(move || script::call(&engine, &ast, &limits, "answer", (input,)))
            .await
            .map_err(|e| AgentError::Script(format!("the script task failed: {e}")))?
            .map_err(|e| AgentError::Script(e.to_string()))?;
        Ok(interpret(result))
    }
}

fn interpret(value: Dynamic) -> AgentAnswer {
    if value.is_unit() {
        return AgentAnswer::cannot_help("script", 0.0, "the script returned no answer");
    }
    if let Some(text) = value.clone().try_cast::<String>() {
        return answer(text, 1.0);
    }
    if let Some(map) = value.try_cast::<rhai::Map>() {
        let text = map.get("text").and_then(|t| t.clone().try_cast::<String>());
        let confidence = map.get("confidence").and_then(|c| c.as_float().ok()).unwrap_or(1.0);
        return match text {
            Some(t) if !t.trim().is_empty() => answer(t, confidence),
            _ => AgentAnswer::cannot_help("script", confidence, "the script's map has no text"),
        };
    }
    AgentAnswer::cannot_help("script", 0.0, "the script returned neither a string, a map nor ()")
}

fn answer(text: String, confidence: f64) -> AgentAnswer {
    AgentAnswer::answered("script", text, confidence.clamp(0.0, 1.0), Vec::new())
}
