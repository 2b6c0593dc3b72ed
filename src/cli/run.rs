//! `casebridge run` (the daemon until a signal) and `casebridge demo`.

use std::path::Path;
use std::process::ExitCode;

use casebridge::app;

use super::load_config;

#[cfg(feature = "sim")]
pub(crate) async fn run_demo() -> ExitCode {
    match casebridge::demo::run(&mut std::io::stdout()).await {
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
    // Every secret is read before anything starts, so a bad one leaves nothing behind.
    let admin_token = match config.admin.as_ref().map(|a| a.token.read("admin.token", &base)).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (daemon, reloader) = match app::daemon(&config, &base).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot start casebridge: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // Rule files are watched for the daemon's whole life; the watcher stops when dropped.
    let _watcher = match casebridge::rules::watch::watch(
        reloader.clone(),
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(30),
    ) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "Rule files are not watched; restart casebridge to apply rule changes.");
            None
        }
    };
    tracing::info!(rules = %reloader.status().active, "Rule set loaded.");
    let mut daemon = daemon;
    daemon.report_status(super::status::status_path(&config, &base), Some(reloader.clone()));
    // One signal stops every task: the poll loop and the admin server.
    let shutdown = app::Shutdown::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_shutdown().await;
        on_signal.trigger();
    });
    if let (Some(admin), Some(token)) = (&config.admin, admin_token) {
        let state = daemon.admin_state(Some(reloader.clone()), token);
        match casebridge::report::admin::serve(admin.listen, state, shutdown.wait()).await {
            Ok(addr) => tracing::info!(%addr, "Admin server listening."),
            Err(e) => {
                eprintln!("error: the admin server cannot listen on {}: {e}", admin.listen);
                return ExitCode::from(1);
            }
        }
    }
    tracing::info!(
        agent_user = %daemon.agent_user().handle,
        handover = %daemon.default_target().name,
        interval_s = config.poll.interval.as_secs(),
        "casebridge is running."
    );
    let outcome = daemon.run(shutdown.wait()).await;
    // A daemon that stopped on an error stops the admin server too.
    shutdown.trigger();
    match outcome {
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
