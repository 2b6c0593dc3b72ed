//! The `casebridge` subcommands, one file each; [`dispatch`] runs the one asked for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use casebridge::app;
use casebridge::config::Config;

/// Prints a line to standard output. A reader that went away (`casebridge ... | head`) ends
/// the command quietly with success, as Unix tools do, instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// [`out!`] without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*)) };
}

pub(crate) fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

mod agent;
pub(crate) mod args;
mod auth;
mod compact;
mod record;
mod rules;
mod run;
mod setup;
#[cfg(feature = "sim")]
mod sim;
mod status;

pub(crate) use args::*;

/// Runs the subcommand.
pub(crate) async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        #[cfg(feature = "sim")]
        Command::Demo { serve, embedding_model } => run::run_demo(serve, embedding_model.as_deref()).await,
        Command::Run { config } => run::run_daemon(&config).await,
        Command::Setup { what } => setup::run_setup(what).await,
        Command::Errors { config } => status::list_errors(&config),
        Command::Rules { what } => rules::run_rules(what).await,
        Command::Agent { what } => agent::run_agent(what).await,
        Command::Status { config } => status::show_status(&config),
        Command::Compact { config } => compact::compact_store(&config),
        Command::Auth { what } => auth::run_auth(what).await,
        Command::Record { case_id, config, out, scrub } => {
            record::record_case(&case_id, &config, out.as_deref(), scrub).await
        }
        #[cfg(feature = "sim")]
        Command::Sim { listen, org, batch_size, tls } => {
            sim::run_sim(listen, org, casebridge::sim::SimOptions { batch_size: batch_size as usize, tls }).await
        }
    }
}

/// Loads a config and builds its Salesforce client, or says what is wrong.
pub(crate) fn config_and_client(path: &Path) -> Result<(Config, PathBuf, casebridge::salesforce::Client), ExitCode> {
    let (config, base) = load_config(path)?;
    match app::client(&config, &base) {
        Ok(client) => Ok((config, base, client)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Loads a config, or says what is wrong with it.
pub(crate) fn load_config(path: &Path) -> Result<(Config, PathBuf), ExitCode> {
    match Config::load(path) {
        Ok(c) => Ok((c, path.parent().map(Path::to_path_buf).unwrap_or_default())),
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("hint: schema/config.schema.json documents every setting");
            Err(ExitCode::from(2))
        }
    }
}
