//! `casebridge sim`: the simulated org, served until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use casebridge::sim::{self, SimOptions, Simulator};

pub(crate) async fn run_sim(listen: SocketAddr, org: Option<PathBuf>, options: SimOptions) -> ExitCode {
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
    let simulator = match Simulator::start(listen, seed, options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the simulator on {listen}: {e}");
            eprintln!("hint: is another process using that port? Port 0 picks a free one.");
            return ExitCode::from(1);
        }
    };
    out!("casebridge sim listening on {}", simulator.url());
    if let Some(path) = simulator.ca_file() {
        out!("casebridge sim certificate authority: {}", path.display());
    }
    tracing::info!(org = %source, "Simulator ready; press Ctrl-C to stop.");
    super::run::wait_for_shutdown().await;
    simulator.stop().await;
    ExitCode::SUCCESS
}
