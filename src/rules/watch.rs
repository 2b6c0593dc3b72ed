//! Hot reload. The watcher only notices: it watches the rules *directory* (editors that
//! save by writing a temporary file and renaming it produce no events on a watched file),
//! debounces, and asks the [`Reloader`] to load the whole rule set again. A rule set that
//! loads replaces the running one atomically; one that does not is reported, error by
//! error, and the running rule set stays. A periodic rescan by content hash catches events
//! the operating system dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use serde::Serialize;

use super::{LoadError, RuleSet};
use crate::decide::SharedRules;
use crate::script::Limits;

/// What admins (and the admin API) see of reloads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// The content hash of the running rule set.
    pub active: String,
    pub last_attempt: Option<DateTime<Utc>>,
    /// The last attempt's errors, one per problem, each with file:line:col.
    pub last_errors: Vec<String>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// How long the last successful load took, in milliseconds.
    pub last_load_ms: u64,
    /// The content hash of the files last tried (so a broken edit is not retried forever).
    pub last_attempt_hash: String,
}

/// Loads the rule set again and swaps it in when it is valid.
pub struct Reloader {
    dir: PathBuf,
    rules: SharedRules,
    limits: Limits,
    status: Mutex<ReloadStatus>,
    /// The org's field metadata: a rule set that maps fields the org does not have is
    /// refused like any other broken rule set.
    org: Option<Arc<super::org::OrgSchema>>,
}

impl Reloader {
    pub fn new(dir: &Path, rules: SharedRules, active_hash: String, limits: Limits) -> Reloader {
        Reloader {
            dir: dir.to_path_buf(),
            rules,
            limits,
            status: Mutex::new(ReloadStatus { active: active_hash, ..Default::default() }),
            org: None,
        }
    }

    /// Also checks new rule sets against the org's field metadata.
    pub fn with_org(mut self, org: Arc<super::org::OrgSchema>) -> Reloader {
        self.org = Some(org);
        self
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads the rule set; swaps it in if it is valid and differs from the running one.
    pub fn reload(&self) -> Result<String, Vec<LoadError>> {
        let started = Instant::now();
        let result = RuleSet::load_with(&self.dir, self.limits.clone()).and_then(|set| {
            let problems = self.org.as_ref().map(|org| org.check(&set)).unwrap_or_default();
            if problems.is_empty() { Ok(set) } else { Err(problems) }
        });
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.last_attempt = Some(Utc::now());
        status.last_attempt_hash = super::content_hash(&self.dir).unwrap_or_default();
        match result {
            Ok(set) => {
                let hash = set.hash.clone();
                status.last_errors.clear();
                if hash != status.active {
                    self.rules.store(Arc::new(Box::new(set)));
                    status.active = hash.clone();
                    status.reloads_ok += 1;
                    status.last_load_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(rules = %hash, ms = status.last_load_ms, "Rule set reloaded.");
                }
                Ok(hash)
            }
            Err(errors) => {
                status.reloads_failed += 1;
                status.last_errors = errors.iter().map(ToString::to_string).collect();
                for e in &errors {
                    tracing::error!(file = %e.file, line = e.line, column = e.column, "Rule file error: {}", e.message);
                }
                tracing::error!(errors = errors.len(), active = %status.active, "Rule set not reloaded; continuing with the previous rule set.");
                Err(errors)
            }
        }
    }
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    stop: Arc<AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn relevant(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    !super::is_editor_dropping(&name)
}

/// Watches the reloader's directory: changes are debounced by `debounce`, and the files are
/// rescanned every `rescan` in case an event was lost.
pub fn watch(reloader: Arc<Reloader>, debounce: Duration, rescan: Duration) -> Result<Watcher, String> {
    let on_change = reloader.clone();
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| match result {
        Ok(events) => {
            if events.iter().any(|e| e.paths.iter().any(|p| relevant(p))) {
                let _ = on_change.reload();
            }
        }
        Err(errors) => {
            for e in errors {
                tracing::warn!(error = %e, "Watching the rules folder failed.");
            }
        }
    })
    .map_err(|e| format!("cannot watch the rules folder: {e}"))?;
    debouncer
        .watch(&reloader.dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", reloader.dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("rules-rescan".into())
        .spawn(move || {
            let tick = Duration::from_millis(200);
            let mut waited = Duration::ZERO;
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= rescan {
                    waited = Duration::ZERO;
                    let status = reloader.status();
                    let changed = super::content_hash(&reloader.dir)
                        .is_ok_and(|h| h != status.active && h != status.last_attempt_hash);
                    if changed {
                        let _ = reloader.reload();
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the rescan thread: {e}"))?;
    Ok(Watcher { _debouncer: debouncer, stop })
}
