//! `casebridge rules`: check, test and explain rule sets.

use std::path::Path;
use std::process::ExitCode;

use casebridge::app;

use super::args::{RulesCommand, TestFormat};
use super::load_config;

/// Loads a rule set, printing every problem (with a caret) when it does not load.
pub(crate) fn load_rules(dir: &Path) -> Result<casebridge::rules::RuleSet, ExitCode> {
    casebridge::rules::RuleSet::load(dir).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}\n");
        }
        eprintln!("{} problem(s) in {}", errors.len(), dir.display());
        ExitCode::from(1)
    })
}

pub(crate) async fn run_rules(what: RulesCommand) -> ExitCode {
    use casebridge::rules::testing;
    match what {
        RulesCommand::Check { dir, config } => match load_rules(&dir) {
            Ok(set) => {
                if let Some(path) = config {
                    let (config, base) = match load_config(&path) {
                        Ok(c) => c,
                        Err(code) => return code,
                    };
                    let checked = match app::client(&config, &base) {
                        Ok(client) => match casebridge::rules::org::OrgSchema::fetch(&client).await {
                            Ok(org) => app::check_against_org(&org, &set, &dir).map_err(|e| e.to_string()),
                            Err(e) => Err(format!("cannot read the org's field metadata: {e}")),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = checked {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                    out!("ok  the mappings fit the org at {}", config.org.login_url);
                }
                out!(
                    "ok  {}: {} files, {} tests, rule set {}",
                    dir.display(),
                    set.files.len(),
                    set.tests.len(),
                    set.hash
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        RulesCommand::Test { dir, filter, format } => {
            let set = match load_rules(&dir) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let outcomes = testing::run(&set, filter.as_deref()).await;
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            match format {
                TestFormat::Json => out!("{}", serde_json::to_string_pretty(&outcomes).unwrap_or_default()),
                TestFormat::Junit => out_raw!("{}", testing::junit(&outcomes)),
                TestFormat::Text => {
                    for o in &outcomes {
                        if o.passed() {
                            out!("test {} ... ok", o.name);
                        } else {
                            out!("test {} ... FAILED ({})", o.name, o.file);
                            for f in &o.failures {
                                out!("    {f}");
                            }
                            if let Some(d) = &o.decision {
                                for line in testing::explain(d).lines() {
                                    out!("    | {line}");
                                }
                            }
                        }
                    }
                    out!("{} passed, {} failed", outcomes.len() - failed, failed);
                }
            }
            if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        RulesCommand::Explain { fixture, rules, answer, confidence } => {
            let set = match load_rules(&rules) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let conversation = match testing::load_fixture(&fixture) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let stub = casebridge::rules::files::AgentStub { answer, confidence };
            let decision = testing::decide_with(&set, &conversation, &stub).await;
            out_raw!("{}", testing::explain(&decision));
            ExitCode::SUCCESS
        }
    }
}
