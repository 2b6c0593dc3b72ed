//! The `casebridge` command: parses flags and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use casebridge::sim::{self, SimOptions, Simulator};

/// casebridge puts an AI support agent on Salesforce Cases.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a simulated Salesforce org over the REST API, for tests, demos and trying
    /// Salesforce clients without a real org.
    ///
    /// Example: casebridge sim --listen 127.0.0.1:8443 --org examples/demo/org.yaml
    Sim {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0", env = "CASEBRIDGE_SIM_LISTEN")]
        listen: SocketAddr,
        /// Org seed file (YAML). Without it, the built-in demo org is served.
        #[arg(long, env = "CASEBRIDGE_SIM_ORG")]
        org: Option<PathBuf>,
        /// Query rows per page before `nextRecordsUrl` (1 to 2000).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..=2000))]
        batch_size: u16,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Sim { listen, org, batch_size } => run_sim(listen, org, batch_size as usize).await,
    }
}

async fn run_sim(listen: SocketAddr, org: Option<PathBuf>, batch_size: usize) -> ExitCode {
    let loaded = match &org {
        Some(path) => sim::seed::load_file(path),
        None => sim::seed::load(sim::DEMO_ORG, "built-in demo org"),
    };
    let seed = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot load the org seed: {e}");
            eprintln!("hint: see examples/demo/org.yaml for the seed format");
            return ExitCode::from(2);
        }
    };
    let source = org.as_ref().map_or("built-in demo org".to_string(), |p| p.display().to_string());
    let simulator = match Simulator::start(listen, seed, SimOptions { batch_size }).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            eprintln!("hint: is another process using that port? Port 0 picks a free one.");
            return ExitCode::from(1);
        }
    };
    println!("casebridge sim listening on {}", simulator.url());
    tracing::info!(org = %source, "Simulator ready; press Ctrl-C to stop.");
    wait_for_shutdown().await;
    simulator.stop().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
