//! The `casebridge` binary as a user runs it, and waiting for what it (or a watcher) does.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A command for the built `casebridge` binary, to add arguments and settings to.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casebridge"))
}

/// Runs `casebridge` with `args` to the end and returns what it printed.
pub fn casebridge(args: &[&str]) -> Output {
    bin().args(args).output().expect("casebridge runs")
}

/// Waits up to ten seconds for `done`; fails the test, naming `what`, if it does not come.
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    wait_within(Duration::from_secs(10), what, done)
}

/// Waits up to `limit` for `done`; fails the test, naming `what`, if it does not come.
pub fn wait_within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
