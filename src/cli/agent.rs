//! `casebridge agent eval`: the configured knowledge base measured on an eval set.

use std::process::ExitCode;

use casebridge::agent::{Agent, eval};
use casebridge::app;

use super::{AgentCommand, ReportFormat, load_config};

pub(crate) fn run_agent(what: AgentCommand) -> ExitCode {
    match what {
        AgentCommand::Eval { file, config, format } => {
            let (config, base) = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let eval_file = match eval::load(&file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let kb = match app::agent(&config, &base) {
                Ok(Agent::KnowledgeBase(kb)) => kb,
                Ok(other) => {
                    eprintln!(
                        "error: agent eval measures the knowledge base, and agent.backend is {}",
                        other.backend()
                    );
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(e.exit_code());
                }
            };
            let report = eval::run(&kb, &eval_file);
            match format {
                ReportFormat::Text => out_raw!("{}", report.render()),
                ReportFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(json) => out!("{json}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                },
            }
            if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
    }
}
