//! `casebridge status` and `casebridge errors`: what the daemon is doing, read beside it.

use std::path::Path;
use std::process::ExitCode;

use casebridge::app::status_path;
use casebridge::report::status::Status;
use casebridge::store;

use super::load_config;

pub(crate) fn show_status(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let file = status_path(&config, &base);
    let Some(status) = Status::read(&file) else {
        eprintln!(
            "error: no status at {}\nhint: is casebridge running with this config? It writes its status after each poll",
            file.display()
        );
        return ExitCode::from(1);
    };
    out_raw!("{}", status.render());
    let alive = status.is_running();
    if alive {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: casebridge is not running (the status above is from its last cycle)");
        ExitCode::from(1)
    }
}

/// Lists sync errors: from the store when no daemon holds it, else from the running
/// daemon's status file (its newest errors). Never creates a store.
pub(crate) fn list_errors(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store_path = base.join(&config.store_path);
    let (errors, total, source) = match store::Store::open_existing(&store_path) {
        Ok(store) => match store.sync_errors() {
            Ok(errors) => {
                let total = errors.len();
                (errors, total, None)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        Err(store::StoreError::Missing { path }) => {
            eprintln!(
                "error: there is no store at {path}\nhint: casebridge has not run with this config yet (store_path)"
            );
            return ExitCode::from(1);
        }
        // The daemon holds the store: its status file lists the newest errors.
        Err(open_error) => match Status::read(&status_path(&config, &base)) {
            Some(status) => (
                status.recent_sync_errors,
                status.sync_errors,
                Some(status.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            ),
            None => {
                eprintln!("error: {open_error}");
                return ExitCode::from(1);
            }
        },
    };
    if let Some(at) = &source {
        out!("(from the running daemon's status of {at})");
    }
    if errors.is_empty() {
        out!("no sync errors");
        return ExitCode::SUCCESS;
    }
    for e in &errors {
        out!(
            "#{} {} case {} {}: {} — {} (attempts: {}, first {}, last {})",
            e.id,
            e.operation,
            e.case_id.as_deref().unwrap_or("-"),
            e.code,
            e.message.trim(),
            e.action.as_ref().map(|a| a.operation()).unwrap_or("no action to retry"),
            e.attempts,
            e.first_seen.format("%Y-%m-%d %H:%M:%S UTC"),
            e.last_seen.format("%Y-%m-%d %H:%M:%S UTC"),
        );
    }
    if total > errors.len() {
        out!("... and {} older (the admin API's /api/sync-errors lists them all)", total - errors.len());
    }
    ExitCode::SUCCESS
}
