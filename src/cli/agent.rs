//! `casebridge agent ask` and `agent eval`: the configured agent asked one question, or
//! measured on an eval set.

use std::process::ExitCode;

use casebridge::agent::{Agent, eval};
use casebridge::app;
use casebridge::model::{AgentAnswer, Conversation, View};

use super::{AgentCommand, AnswerFormat, ReportFormat, load_config};

pub(crate) async fn run_agent(what: AgentCommand) -> ExitCode {
    match what {
        AgentCommand::Ask { question, config, format } => {
            let agent = match configured_agent(&config).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            let conversation = Conversation::from_question(&question);
            match agent.answer(View::of(&conversation)).await {
                Ok(answer) => {
                    match format {
                        AnswerFormat::Text => out_raw!("{}", render_answer(&answer)),
                        AnswerFormat::Json => match serde_json::to_string_pretty(&answer) {
                            Ok(json) => out!("{json}"),
                            Err(e) => return failed(&e.to_string()),
                        },
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => failed(&e.to_string()),
            }
        }
        AgentCommand::Eval { file, config, format, half } => {
            let agent = match configured_agent(&config).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            let eval_file = match eval::load(&file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if agent.library().is_none() {
                eprintln!(
                    "error: agent eval measures an agent that answers from a help centre; agent.backend is {}",
                    agent.backend()
                );
                return ExitCode::from(2);
            }
            let report = match eval::run(&agent, &eval_file, half).await {
                Ok(r) => r,
                Err(e) => return failed(&e),
            };
            match format {
                ReportFormat::Text => out_raw!("{}", report.render()),
                ReportFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(json) => out!("{json}"),
                    Err(e) => return failed(&e.to_string()),
                },
                ReportFormat::Junit => out_raw!("{}", report.junit()),
            }
            if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
    }
}

/// The agent `config` describes, its Salesforce Knowledge read, or the exit code of why not.
async fn configured_agent(config: &std::path::Path) -> Result<Agent, ExitCode> {
    let (config, base) = load_config(config)?;
    app::agent_with_knowledge(&config, &base).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(e.exit_code())
    })
}

fn failed(problem: &str) -> ExitCode {
    eprintln!("error: {problem}");
    ExitCode::from(1)
}

/// An answer for people: the reply or why not, the confidence, the sources and what
/// retrieval found.
fn render_answer(answer: &AgentAnswer) -> String {
    let mut out = match &answer.text {
        Some(text) => format!("answer ({}, confidence {:.2}):\n{text}\n", answer.backend, answer.confidence),
        None => format!(
            "cannot help ({}, confidence {:.2}): {}\n",
            answer.backend,
            answer.confidence,
            answer.note.as_deref().unwrap_or("no reason given")
        ),
    };
    if !answer.cited.is_empty() {
        out.push_str(&format!("from: {}\n", answer.cited.join(", ")));
    }
    if !answer.retrieved.is_empty() {
        out.push_str("passages retrieved:\n");
        for r in &answer.retrieved {
            out.push_str(&format!("  {:<48} score {:>6.2}  coverage {:.2}\n", r.passage, r.score, r.coverage));
        }
    }
    if let Some(u) = answer.usage {
        out.push_str(&format!("tokens: {} prompt + {} completion\n", u.prompt_tokens, u.completion_tokens));
    }
    out
}
