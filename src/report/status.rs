//! The daemon's status: one typed record the daemon writes after each cycle (into the
//! status file beside its store, and for the admin API), and `casebridge status` and
//! `casebridge errors` read back — so writer and readers agree on every field.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::rules::watch::{OnDisk, ReloadStatus};
use crate::salesforce::client::ApiUsage;
use crate::salesforce::directory::Target;
use crate::store::SyncError;

/// The newest sync errors the status carries, for `casebridge errors` while the daemon
/// holds the store.
pub const RECENT_ERRORS_IN_STATUS: usize = 200;
/// The largest status file read back.
const MAX_STATUS_BYTES: u64 = 16 << 20;

/// What the daemon is doing, as of its last cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub org: Org,
    pub updated_at: DateTime<Utc>,
    pub agent_user: Target,
    pub handover_target: Target,
    /// The poll cursor: the newest `SystemModstamp` handled.
    pub cursor: Option<DateTime<Utc>>,
    pub last_cycle: LastCycle,
    pub api_usage: Option<ApiUsage>,
    pub conversations: usize,
    pub outbox_pending: usize,
    pub sync_errors: usize,
    /// The newest [`RECENT_ERRORS_IN_STATUS`] sync errors.
    pub recent_sync_errors: Vec<SyncError>,
    /// The rule set and its reloads (absent when the daemon runs without a rules folder).
    pub rules: Option<ReloadStatus>,
    /// The store's size and what retention does to it.
    #[serde(default)]
    pub store: Option<StoreUsage>,
}

/// The store's size on disk and its retention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreUsage {
    /// The store's files, as the last retention pass measured them.
    pub bytes_on_disk: u64,
    /// How long inactive conversations are kept (`retention.conversations`).
    pub keep_conversations: String,
    /// How long decision traces are kept (`retention.traces`).
    pub keep_traces: String,
    pub last_prune: Option<LastPrune>,
}

/// What the last retention pass did, and what the next would free.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastPrune {
    pub at: DateTime<Utc>,
    pub pruned: usize,
    pub pruned_bytes: u64,
    pub traces_cleared: usize,
    /// Conversations past the retention now, and about how many bytes they take (the
    /// store's bytes a conversation on average); those with something pending stay until
    /// it is done.
    pub next_conversations: usize,
    pub next_bytes: u64,
    /// Whether the count stopped at its cap (there are more).
    pub next_capped: bool,
}

/// The org as the session reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Org {
    pub instance_url: String,
    pub org_id: String,
}

/// What the last cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastCycle {
    pub rows: usize,
    pub events: usize,
    pub actions_done: usize,
    pub actions_failed: usize,
    pub api_calls: u64,
    pub poll_error: Option<String>,
}

impl Status {
    /// Reads a status file, if there is a readable one.
    pub fn read(file: &Path) -> Option<Status> {
        let text = crate::bounded_file::read(file, MAX_STATUS_BYTES).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the status file beside and renames it over, so a reader never sees half a file.
    pub fn write(&self, file: &Path) -> std::io::Result<()> {
        let tmp = file.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file))
    }

    /// Whether the process that wrote it still runs.
    pub fn is_running(&self) -> bool {
        self.pid != 0 && Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// The text `casebridge status` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        let running = if self.is_running() { "is running" } else { "is NOT running" };
        line(format!("casebridge {running} (pid {}), status of {}", self.pid, at(self.updated_at)));
        line(format!("  agent user       {}", self.agent_user.handle));
        line(format!("  handover target  {}", self.handover_target.name));
        line(format!("  cursor           {}", self.cursor.map_or_else(|| "none yet".to_string(), at)));
        let last = &self.last_cycle;
        line(format!(
            "  last poll        {} rows, {} events, {} actions done, {} failed, {} API calls{}",
            last.rows,
            last.events,
            last.actions_done,
            last.actions_failed,
            last.api_calls,
            last.poll_error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default()
        ));
        let usage = self.api_usage.map_or_else(|| "unknown".to_string(), |u| format!("{}/{} today", u.used, u.max));
        line(format!("  API usage        {usage}"));
        line(format!("  conversations    {}", self.conversations));
        line(format!("  outbox pending   {}", self.outbox_pending));
        line(format!("  sync errors      {}  (casebridge errors --config ...)", self.sync_errors));
        if let Some(store) = &self.store {
            line(format!(
                "  store            {} on disk; keeps conversations {}, traces {}",
                mib(store.bytes_on_disk),
                store.keep_conversations,
                store.keep_traces
            ));
            if let Some(p) = &store.last_prune {
                line(format!(
                    "  retention        last pass {}: pruned {} ({}), traces cleared {}; next frees up to {}{} (about {})",
                    at(p.at),
                    p.pruned,
                    mib(p.pruned_bytes),
                    p.traces_cleared,
                    p.next_conversations,
                    if p.next_capped { "+" } else { "" },
                    mib(p.next_bytes)
                ));
            }
        }
        if let Some(rules) = &self.rules {
            line(format!(
                "  rule set         {} ({} reloads, {} failed; last attempt {})",
                rules.active,
                rules.reloads_ok,
                rules.reloads_failed,
                rules.last_attempt.map_or_else(|| "none".to_string(), at)
            ));
            if rules.on_disk == OnDisk::Broken {
                line(format!(
                    "  rule files       BROKEN on disk (content {}): not applied; the rule set above keeps running",
                    rules.disk_hash
                ));
            }
            for e in &rules.last_errors {
                line(format!("  last reload error:\n{e}"));
            }
        }
        out
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
