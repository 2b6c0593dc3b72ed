//! `casebridge status` and `casebridge errors`: what the daemon is doing, read beside it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use casebridge::config::Config;
use casebridge::store;

use super::*;

/// Where the daemon writes its status: beside its store.
pub(crate) fn status_path(config: &Config, base: &Path) -> PathBuf {
    store::sidecar(&base.join(&config.store_path), "status.json")
}

pub(crate) fn show_status(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let file = status_path(&config, &base);
    let status: serde_json::Value = match read_status(&file) {
        Some(s) => s,
        None => {
            eprintln!(
                "error: no status at {}\nhint: is casebridge running with this config? It writes its status after each poll",
                file.display()
            );
            return ExitCode::from(1);
        }
    };
    let pid = status["pid"].as_u64().unwrap_or(0);
    let alive = pid != 0 && Path::new(&format!("/proc/{pid}")).exists();
    out!(
        "casebridge {} (pid {pid}), status of {}",
        if alive { "is running" } else { "is NOT running" },
        status["updated_at"].as_str().unwrap_or("?")
    );
    out!("  agent user       {}", status["agent_user"]["handle"].as_str().unwrap_or("?"));
    out!("  handover target  {}", status["handover_target"]["name"].as_str().unwrap_or("?"));
    out!("  cursor           {}", status["cursor"].as_str().unwrap_or("none yet"));
    let last = &status["last_cycle"];
    out!(
        "  last poll        {} rows, {} events, {} actions done, {} failed, {} API calls{}",
        last["rows"],
        last["events"],
        last["actions_done"],
        last["actions_failed"],
        last["api_calls"],
        last["poll_error"].as_str().map(|e| format!(", error: {e}")).unwrap_or_default()
    );
    out!("  API usage        {}/{} today", status["api_usage"]["used"], status["api_usage"]["max"]);
    out!("  conversations    {}", status["conversations"]);
    out!("  outbox pending   {}", status["outbox_pending"]);
    out!("  sync errors      {}  (casebridge errors --config ...)", status["sync_errors"]);
    let rules = &status["rules"];
    out!(
        "  rule set         {} ({} reloads, {} failed; last attempt {})",
        rules["active"].as_str().unwrap_or("?"),
        rules["reloads_ok"],
        rules["reloads_failed"],
        rules["last_attempt"].as_str().unwrap_or("none")
    );
    if rules["on_disk"].as_str() == Some("broken") {
        out!(
            "  rule files       BROKEN on disk (content {}): not applied; the rule set above keeps running",
            rules["disk_hash"].as_str().unwrap_or("?")
        );
    }
    for e in rules["last_errors"].as_array().into_iter().flatten() {
        out!("  last reload error:\n{}", e.as_str().unwrap_or_default());
    }
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
        Err(open_error) => match read_status(&status_path(&config, &base)) {
            Some(status) => {
                let errors: Vec<store::SyncError> =
                    serde_json::from_value(status["recent_sync_errors"].clone()).unwrap_or_default();
                let total = status["sync_errors"].as_u64().unwrap_or(errors.len() as u64) as usize;
                (errors, total, Some(status["updated_at"].as_str().unwrap_or("?").to_string()))
            }
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

/// The status file the daemon writes after each cycle, if there is one.
pub(crate) fn read_status(file: &Path) -> Option<serde_json::Value> {
    let text = casebridge::bounded_file::read(file, 16 << 20).ok()?;
    serde_json::from_str(&text).ok()
}
