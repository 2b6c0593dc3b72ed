//! The store's retention pass, run from the loop when due: conversations pruned and
//! traces cleared as `retention` says (`store/retention.rs`), off the async threads, and
//! what the next pass would free, for `casebridge status`.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::{Daemon, DaemonError};
use crate::report::status::{LastPrune, StoreUsage};
use crate::store::PruneReport;

/// How many conversations one pass prunes (and clears the traces of), at most: a pass
/// stays short; what is left waits for the next.
pub const PRUNE_PER_PASS: usize = 1_000;

/// How many conversations the estimate of the next pass counts, at most.
const ESTIMATE_CAP: usize = 10_000;

/// How often a pass runs: every ten minutes, or more often for a retention shorter than
/// twenty minutes (a pass each half of it).
fn prune_every(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_millis(500), Duration::from_secs(600))
}

impl Daemon {
    /// Whether a retention pass is due.
    pub(super) fn prune_due(&self) -> bool {
        let every = prune_every(self.shared.settings.retention.conversations);
        self.last_prune.as_ref().is_none_or(|(at, _, _)| at.elapsed() >= every)
    }

    /// Runs a retention pass now: prunes what the policy says, then estimates the next.
    pub async fn prune(&mut self) -> Result<PruneReport, DaemonError> {
        let retention = self.shared.settings.retention.clone();
        let store = self.store().clone();
        let pass = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let age = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
            let report = store.prune(age(retention.conversations), age(retention.traces), PRUNE_PER_PASS)?;
            let next = store.prunable(age(retention.conversations), ESTIMATE_CAP)?;
            Ok::<_, crate::store::StoreError>((report, next))
        });
        let (report, (count, capped)) = match pass.await {
            Ok(result) => result?,
            Err(e) => {
                tracing::error!(error = %e, "The retention pass stopped.");
                return Ok(PruneReport::default());
            }
        };
        if report.pruned + report.traces_cleared > 0 {
            tracing::info!(
                pruned = report.pruned,
                bytes = report.pruned_bytes,
                traces_cleared = report.traces_cleared,
                "Retention pass."
            );
        }
        // Measured once a pass, not at every status.
        let on_disk = self.store().size_on_disk().unwrap_or(0);
        let last = LastPrune {
            at: Utc::now(),
            pruned: report.pruned,
            pruned_bytes: report.pruned_bytes,
            traces_cleared: report.traces_cleared,
            next_conversations: count,
            // An estimate: the store's bytes a conversation, on average.
            next_bytes: on_disk / (self.store().conversation_count().max(1) as u64) * count as u64,
            next_capped: capped,
        };
        self.last_prune = Some((Instant::now(), last, on_disk));
        Ok(report)
    }

    /// The store's size (as the last pass measured it) and retention, for the status.
    pub(super) fn store_usage(&self) -> StoreUsage {
        StoreUsage {
            bytes_on_disk: self.last_prune.as_ref().map_or(0, |(_, _, on_disk)| *on_disk),
            keep_conversations: crate::config::duration::format(&self.shared.settings.retention.conversations),
            keep_traces: crate::config::duration::format(&self.shared.settings.retention.traces),
            last_prune: self.last_prune.as_ref().map(|(_, last, _)| last.clone()),
        }
    }
}
