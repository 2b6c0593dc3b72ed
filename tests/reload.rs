//! Hot reload as an admin meets it: each named edit to a running rule set, and what the
//! reloader does (and does not do) about it.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use casebridge::decide;
use casebridge::rules::RuleSet;
use casebridge::rules::watch::{OnDisk, Reloader, watch};
use casebridge::script::Limits;
use common::{scratch_rules, wait_for, walk};

struct Running {
    rules: PathBuf,
    reloader: Arc<Reloader>,
    _watcher: casebridge::rules::watch::Watcher,
    _dir: tempfile::TempDir,
}

fn running(rescan: Duration) -> Running {
    let (dir, rules) = scratch_rules();
    let set = RuleSet::load(&rules).unwrap();
    let hash = set.hash.clone();
    let reloader = Arc::new(Reloader::new(&rules, decide::shared(Box::new(set)), hash, Limits::default()));
    let watcher = watch(reloader.clone(), Duration::from_millis(50), rescan).unwrap();
    Running { rules, reloader, _watcher: watcher, _dir: dir }
}

const BROKEN: &str = "kind: handover\nrules:\n  - name: x\n    when: (\n    reason: r\n";

#[test]
fn edit_broken_handover_is_reported_once_and_never_retried() {
    let r = running(Duration::from_millis(300));
    std::fs::write(r.rules.join("handover.yaml"), BROKEN).unwrap();
    wait_for("the broken edit to be reported", || r.reloader.status().reloads_failed == 1);
    // The old watcher reacted to its own reads and retried about four times a second.
    std::thread::sleep(Duration::from_millis(1_500));
    let status = r.reloader.status();
    assert_eq!(status.reloads_failed, 1, "a broken content is reported once");
    assert_eq!(status.on_disk, OnDisk::Broken);
    let problem = status.problem().expect("the status says the files on disk are not running");
    assert!(problem.contains("do not load") && problem.contains(&status.active), "{problem}");
}

#[test]
fn edit_same_broken_content_saved_again_is_not_reported_again() {
    let r = running(Duration::from_secs(3600));
    std::fs::write(r.rules.join("handover.yaml"), BROKEN).unwrap();
    wait_for("the broken edit", || r.reloader.status().reloads_failed == 1);
    std::fs::write(r.rules.join("handover.yaml"), BROKEN).unwrap();
    wait_for("the save to be looked at", || r.reloader.status().looks >= 2);
    assert_eq!(r.reloader.status().reloads_failed, 1);
    std::fs::write(r.rules.join("handover.yaml"), BROKEN.replace("(", "((")).unwrap();
    wait_for("a different broken content", || r.reloader.status().reloads_failed == 2);
}

#[test]
fn edit_undone_brings_the_status_back_without_a_reload() {
    let r = running(Duration::from_secs(3600));
    let original = std::fs::read_to_string(r.rules.join("handover.yaml")).unwrap();
    std::fs::write(r.rules.join("handover.yaml"), BROKEN).unwrap();
    wait_for("the broken edit", || r.reloader.status().on_disk == OnDisk::Broken);
    std::fs::write(r.rules.join("handover.yaml"), original).unwrap();
    wait_for("the undo", || r.reloader.status().on_disk == OnDisk::Active);
    let status = r.reloader.status();
    assert_eq!(status.reloads_ok, 0, "the running content was never reloaded");
    assert!(status.last_errors.is_empty() && status.problem().is_none());
}

#[test]
fn idle_daemon_does_no_reload_work() {
    let r = running(Duration::from_millis(200));
    let fine = std::fs::read_to_string(r.rules.join("topics.yaml")).unwrap() + "# edited\n";
    std::fs::write(r.rules.join("topics.yaml"), fine).unwrap();
    wait_for("the edit", || r.reloader.status().reloads_ok == 1);
    std::thread::sleep(Duration::from_millis(500));
    let before = r.reloader.status().looks;
    // Reading the files (as the reload itself does) is not a change.
    for p in walk(&r.rules) {
        let _ = std::fs::read_to_string(p);
    }
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(r.reloader.status().looks, before, "nothing changed, nothing was looked at");
}

#[test]
fn edit_racing_reloads_leave_the_newest_content_active() {
    let r = running(Duration::from_secs(3600));
    let topics = r.rules.join("topics.yaml");
    let base = std::fs::read_to_string(&topics).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let reloader = r.reloader.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let _ = reloader.reload();
                }
            })
        })
        .collect();
    for i in 0..10 {
        std::fs::write(&topics, format!("{base}# edit {i}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    for t in threads {
        t.join().unwrap();
    }
    let _ = r.reloader.reload();
    let on_disk = casebridge::rules::content_hash(&r.rules).unwrap();
    wait_for("the newest content", || r.reloader.status().active == on_disk);
}
