//! The command line at its edges, each found by a new user: output into a closed pipe,
//! flags with values it does not know, read-only commands beside a running daemon, a start
//! refused for bad input (exit 2, nothing left behind), status of a stopped daemon, and
//! `compact`, refused beside a running daemon.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{World, bin, root, test_config};

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `casebridge rules test --format json | head -c 1`: the reader goes away early. The
    // output (200 tests with their traces, several hundred KiB) is far more than a pipe
    // holds, so the command surely writes after the reader is gone.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    for file in ["mappings.yaml", "handover.yaml", "topics.yaml"] {
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::copy(root().join("rules").join(file), rules.join(file)).unwrap();
    }
    let fixture = root().join("rules/tests/fixtures/billing-question.json");
    std::fs::create_dir_all(rules.join("tests")).unwrap();
    std::fs::copy(&fixture, rules.join("tests/f.json")).unwrap();
    let tests: String = (0..200).map(|i| format!("  - {{name: t{i}, fixture: f.json, expect: {{}}}}\n")).collect();
    std::fs::write(rules.join("tests/many.yaml"), format!("kind: tests\ntests:\n{tests}")).unwrap();
    let mut child = bin()
        .args(["rules", "test", "--format", "json"])
        .arg(&rules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn an_unknown_test_format_is_refused() {
    let out = bin().args(["rules", "test", "--format", "xml"]).arg(root().join("rules")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid value 'xml'") && stderr.contains("junit"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_for_bad_input_exits_2_and_leaves_nothing_behind() {
    let w = World::new().await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "missing_secret_file",
            "smtp: {host: 127.0.0.1, security: none, from: a@b.example, username: u, password: {file: no-such-password}}\n",
            "no-such-password",
        ),
        ("unset_variable", "admin: {token: {env: CASEBRIDGE_TEST_UNSET_TOKEN}}\n", "CASEBRIDGE_TEST_UNSET_TOKEN"),
        ("missing_rules_dir", "", "is not a folder"),
        (
            "bad_office_hours",
            "messenger: {office_hours: {timezone: Mars/Olympus, opens: \"18:00\", closes: \"09:00\"}}\n",
            "messenger.office_hours.timezone",
        ),
        ("bad_widget_texts", "messenger: {texts: {\"../etc\": {title: x}}}\n", "is not a language tag"),
    ];
    for (name, extra, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = test_config(dir.path(), w.sim.url(), "100ms", extra);
        if *name == "missing_rules_dir" {
            let text = std::fs::read_to_string(&path).unwrap();
            let start = text.find("rules_dir:").unwrap();
            let end = start + text[start..].find('\n').unwrap();
            std::fs::write(&path, format!("{}rules_dir: no-such-rules{}", &text[..start], &text[end..])).unwrap();
        }
        let out =
            bin().args(["run", "--config"]).arg(&path).env_remove("CASEBRIDGE_TEST_UNSET_TOKEN").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().starts_with("store")), "{name}: {left:?}");
        // `setup check` says the same with the same code.
        let out = bin().args(["setup", "check", "--config"]).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains(expected), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_work_beside_a_running_daemon() {
    let w = World::new().await;
    let path = w.config("100ms", "");
    let mut daemon = bin().args(["run", "--config"]).arg(&path).stderr(Stdio::null()).spawn().unwrap();
    let status_file = w.path().join("store.status.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !status_file.exists() {
        assert!(Instant::now() < deadline, "the daemon wrote no status");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = bin().args(["status", "--config"]).arg(&path).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(String::from_utf8_lossy(&status.stdout).contains("is running"));
    let errors = bin().args(["errors", "--config"]).arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&errors.stdout);
    assert!(errors.status.success(), "{stdout}{}", String::from_utf8_lossy(&errors.stderr));
    assert!(stdout.contains("from the running daemon's status"), "{stdout}");
    let check = bin().args(["setup", "check", "--config"]).arg(&path).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    // `compact` is not read-only: beside the daemon it refuses, saying why, and leaves no copy.
    let compact = bin().args(["compact", "--config"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&compact.stderr);
    assert_eq!(compact.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is another casebridge using it?"), "{stderr}");
    assert!(!w.path().join("store.compacting").exists());

    Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    assert!(daemon.wait().unwrap().success());
    // Stopped: status still shows the last cycle, and says it is not running, exit 1.
    let status = bin().args(["status", "--config"]).arg(&path).output().unwrap();
    assert_eq!(status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&status.stdout).contains("is NOT running"));
    // And `errors` reads the store itself now.
    let errors = bin().args(["errors", "--config"]).arg(&path).output().unwrap();
    assert!(errors.status.success());
    assert!(!String::from_utf8_lossy(&errors.stdout).contains("from the running daemon"));
    // And `compact` does its work, the daemon's conversations kept.
    let held = w.store().conversation_count();
    // The daemon's process may hold the store for a moment after it stopped answering.
    let mut compact = bin().args(["compact", "--config"]).arg(&path).output().unwrap();
    for _ in 0..40 {
        if compact.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        compact = bin().args(["compact", "--config"]).arg(&path).output().unwrap();
    }
    assert!(compact.status.success(), "{}", String::from_utf8_lossy(&compact.stderr));
    assert!(String::from_utf8_lossy(&compact.stdout).starts_with("Compacted the store at"));
    assert_eq!(w.store().conversation_count(), held);
}
