//! Hot reload. The watcher only signals: it watches the rules *directory* (editors that
//! save by writing a temporary file and renaming it produce no events on a watched file),
//! keeps only events that change files (never the reads a reload itself makes), debounces,
//! and signals the one reload thread, which asks the [`Reloader`] to look again. A periodic
//! rescan compares file sizes and modification times (no file is read while nothing
//! changes) in case an event was lost, and signals the same thread. Signals that arrive
//! while a reload runs fold into one more look, taken after it.
//!
//! The reloader hashes what is on disk first: the running rule set's content is nothing to
//! do, and a broken content already reported is not loaded or logged again. Reloads run
//! one at a time, so the last one to finish always saw the newest files. A rule set that
//! loads replaces the running one atomically; one that does not is reported once, error by
//! error, the running rule set stays, and the status says so until the files are fixed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode, event::ModifyKind};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use serde::Serialize;

use super::{LoadError, RuleSet, source};
use crate::decide::SharedRules;
use crate::script::Limits;

/// Whether the rule files on disk are the ones running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDisk {
    /// The files on disk are the running rule set.
    #[default]
    Active,
    /// The files on disk do not load (see `last_errors`); the previous rule set runs.
    Broken,
}

/// What admins (and the admin API) see of reloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ReloadStatus {
    /// The content hash of the running rule set.
    pub active: String,
    /// When the running rule set was loaded.
    pub active_since: Option<DateTime<Utc>>,
    /// Whether the files on disk are the running rule set.
    pub on_disk: OnDisk,
    /// The content hash of the files on disk when last looked at.
    pub disk_hash: String,
    pub last_attempt: Option<DateTime<Utc>>,
    /// The errors of the files on disk, one per problem, each with file:line:col (empty
    /// when they are the running rule set).
    pub last_errors: Vec<String>,
    pub reloads_ok: u64,
    /// Distinct broken contents seen (each reported once).
    pub reloads_failed: u64,
    /// How long the last successful load took, in milliseconds.
    pub last_load_ms: u64,
    /// How often the files were looked at (a change event, or a rescan that saw a
    /// difference); it stays still while nothing changes.
    pub looks: u64,
}

impl ReloadStatus {
    /// A sentence for admins when the files on disk are not running, and why.
    pub fn problem(&self) -> Option<String> {
        (self.on_disk == OnDisk::Broken).then(|| {
            format!(
                "the rule files on disk (content {}) do not load ({} error(s)); rule set {} keeps running",
                self.disk_hash,
                self.last_errors.len(),
                self.active
            )
        })
    }
}

/// Loads the rule set again and swaps it in when it is valid.
pub struct Reloader {
    dir: PathBuf,
    rules: SharedRules,
    limits: Limits,
    status: Mutex<ReloadStatus>,
    /// Held for the whole of a reload.
    reloading: Mutex<()>,
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
            status: Mutex::new(ReloadStatus {
                disk_hash: active_hash.clone(),
                active: active_hash,
                active_since: Some(Utc::now()),
                ..Default::default()
            }),
            reloading: Mutex::new(()),
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

    /// Looks at the files and, if they differ from the running rule set and from the last
    /// broken content, loads them; swaps the new set in if it is valid. Returns the
    /// running rule set's hash.
    pub fn reload(&self) -> Result<String, Vec<LoadError>> {
        // One reload at a time: two finishing out of order could leave the older set active.
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let disk_hash = super::content_hash(&self.dir).unwrap_or_else(|_| "unreadable".into());
        {
            let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            status.looks += 1;
            if disk_hash == status.active {
                // Back to the running content (an edit undone): nothing to load.
                status.on_disk = OnDisk::Active;
                status.disk_hash = disk_hash;
                status.last_errors.clear();
                return Ok(status.active.clone());
            }
            if disk_hash == status.disk_hash && status.on_disk == OnDisk::Broken {
                // This broken content was reported already.
                return Err(Vec::new());
            }
        }
        let result = RuleSet::load_with(&self.dir, self.limits.clone()).and_then(|set| {
            let problems = self.org.as_ref().map(|org| org.check(&set)).unwrap_or_default();
            if problems.is_empty() { Ok(set) } else { Err(problems) }
        });
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.last_attempt = Some(Utc::now());
        match result {
            Ok(set) => {
                let hash = set.hash.clone();
                status.last_errors.clear();
                status.on_disk = OnDisk::Active;
                status.disk_hash = hash.clone();
                if hash != status.active {
                    self.rules.store(Arc::new(Box::new(set)));
                    status.active = hash.clone();
                    status.active_since = Some(Utc::now());
                    status.reloads_ok += 1;
                    status.last_load_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(rules = %hash, ms = status.last_load_ms, "Rule set reloaded.");
                }
                Ok(hash)
            }
            Err(errors) => {
                status.reloads_failed += 1;
                status.on_disk = OnDisk::Broken;
                status.disk_hash = disk_hash;
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

/// Whether an event changes a rule file. Reads (inotify OPEN, ACCESS, CLOSE_NOWRITE,
/// including the reload's own) and metadata changes are not changes.
fn changes_rules(event: &notify_debouncer_full::notify::Event) -> bool {
    let kind_changes = !matches!(event.kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)));
    kind_changes && event.paths.iter().any(|p| source::is_rule_file(p) || p.is_dir())
}

/// Watches the reloader's directory: changes are debounced by `debounce`, and the files are
/// rescanned every `rescan` in case an event was lost.
pub fn watch(reloader: Arc<Reloader>, debounce: Duration, rescan: Duration) -> Result<Watcher, String> {
    // One pending signal at most: a signal sent while one waits adds nothing, since the
    // reload it causes reads the files as they are then.
    let (signal, signals) = std::sync::mpsc::sync_channel::<()>(1);
    let on_change = signal.clone();
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| match result {
        Ok(events) => {
            if events.iter().any(|e| changes_rules(e)) {
                let _ = on_change.try_send(());
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
    let dir = reloader.dir.clone();
    std::thread::Builder::new()
        .name("rules-rescan".into())
        .spawn(move || {
            let tick = Duration::from_millis(200);
            let mut waited = Duration::ZERO;
            let mut seen = source::fingerprint(&dir);
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= rescan {
                    waited = Duration::ZERO;
                    let now = source::fingerprint(&dir);
                    if now != seen {
                        seen = now;
                        let _ = signal.try_send(());
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the rescan thread: {e}"))?;
    // The one thread that reloads, in the order signals came; it ends when both the
    // watcher and the rescan thread are gone.
    std::thread::Builder::new()
        .name("rules-reload".into())
        .spawn(move || {
            while signals.recv().is_ok() {
                let _ = reloader.reload();
            }
        })
        .map_err(|e| format!("cannot start the reload thread: {e}"))?;
    Ok(Watcher { _debouncer: debouncer, stop })
}
