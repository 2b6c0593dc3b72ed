//! `casebridge setup`: who the agent can reply as or hand over to, and whether the
//! configuration works.

use std::process::ExitCode;

use casebridge::app;
use casebridge::config::Config;
use casebridge::salesforce::directory;

use super::args::SetupCommand;
use super::config_and_client;

pub(crate) async fn run_setup(what: SetupCommand) -> ExitCode {
    let path = match &what {
        SetupCommand::Users { config } | SetupCommand::Queues { config } | SetupCommand::Check { config } => {
            config.clone()
        }
    };
    let (config, base, client) = match config_and_client(&path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // `setup check` checks what `run` would refuse before it signs in: every secret, the
    // agent, SMTP and the rule set (bad input, exit 2, the same as from `run`).
    if matches!(what, SetupCommand::Check { .. }) {
        match app::check_offline(&config, &base) {
            Ok(()) => out!("ok  secrets, agent, SMTP settings and rule set"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(e.exit_code());
            }
        }
    }
    let result = match what {
        SetupCommand::Users { .. } => directory::users(&client).await.map(|users| {
            out!("{:<20} {:<28} USERNAME", "ID", "NAME");
            for u in users {
                out!("{:<20} {:<28} {}", u.id, u.name, u.handle);
            }
        }),
        SetupCommand::Queues { .. } => directory::queues(&client).await.map(|queues| {
            out!("{:<20} {:<28} DEVELOPER NAME", "ID", "NAME");
            for q in queues {
                out!("{:<20} {:<28} {}", q.id, q.name, q.handle);
            }
        }),
        SetupCommand::Check { .. } => check(&client, &config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) async fn check(
    client: &casebridge::salesforce::Client,
    config: &Config,
) -> Result<(), directory::SetupError> {
    let session = client.session().await?;
    out!("ok  signed in to {} as {}", session.instance_url, session.user_id().unwrap_or("?"));
    let limits = client.limits().await?;
    if let Some(daily) = limits.get("DailyApiRequests") {
        out!("ok  API requests left today: {} of {}", daily.remaining, daily.max);
    }
    let agent = directory::agent_user(client, &config.agent_user).await?;
    out!("ok  agent user: {} ({}, {})", agent.name, agent.handle, agent.id);
    let target = directory::handover_target(client, &config.handover.default_target).await?;
    out!("ok  handover target: {} ({:?}, {})", target.name, target.kind, target.id);
    Ok(())
}
