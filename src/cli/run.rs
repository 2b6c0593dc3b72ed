//! `casebridge run` (the daemon until a signal) and `casebridge demo`.

use std::path::Path;
use std::process::ExitCode;

use casebridge::app;

use super::load_config;

#[cfg(feature = "sim")]
pub(crate) async fn run_demo(serve: bool, embedding_model: Option<&Path>) -> ExitCode {
    match casebridge::demo::run(&mut std::io::stdout(), serve, embedding_model).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the demo failed: {e:#}");
            ExitCode::from(1)
        }
    }
}

pub(crate) async fn run_daemon(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let service = match app::Service::start(&config, &base).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start casebridge: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let shutdown = service.shutdown();
    tokio::spawn(async move {
        wait_for_shutdown().await;
        shutdown.trigger();
    });
    tracing::info!(
        agent_user = %service.daemon().agent_user().handle,
        handover = %service.daemon().default_target().name,
        interval_s = config.poll.interval.as_secs(),
        "casebridge is running."
    );
    match service.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: casebridge stopped: {e}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_shutdown() {
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
