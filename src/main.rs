//! The `casebridge` command: sets up logging, parses flags and runs the subcommand
//! ([`cli`]).
//!
//! Exit codes: 0 success; 1 a failure while running (the org or store refused); 2 bad
//! input (config, seed or flags), with what to fix.

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    // CASEBRIDGE_LOG sets the level (info by default); CASEBRIDGE_LOG_FORMAT=json writes one
    // JSON object a line for log shippers. Logs carry ids, codes and short summaries, never
    // tokens, secrets or whole message bodies.
    let filter = std::env::var("CASEBRIDGE_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal, never into files or journals.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    if std::env::var("CASEBRIDGE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    cli::dispatch(cli::Cli::parse()).await
}
