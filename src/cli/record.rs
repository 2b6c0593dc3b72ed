//! `casebridge record`: a case from the org, written as a fixture for rule tests.

use std::path::Path;
use std::process::ExitCode;

use casebridge::app;
use casebridge::salesforce::directory;

use super::config_and_client;

pub(crate) async fn record_case(case_id: &str, config_path: &Path, out: Option<&Path>, scrub: bool) -> ExitCode {
    let (config, base, client) = match config_and_client(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The fields the rule set maps, so the fixture holds what the rules read.
    let extra: Vec<String> =
        app::rules(&config, &base).map(|r| r.case_fields.into_iter().collect()).unwrap_or_default();
    let agent = match directory::agent_user(&client, &config.agent_user).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut fixture = match casebridge::record::record(&client, case_id, &agent.id, &extra).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if scrub {
        casebridge::record::scrub(&mut fixture);
    }
    let text = serde_json::to_string_pretty(&fixture).unwrap_or_default() + "\n";
    match out {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                eprintln!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::from(1)
            }
        },
        None => {
            out_raw!("{text}");
            ExitCode::SUCCESS
        }
    }
}
