//! `casebridge agent eval`: the knowledge base measured on eval sets, the demo help centre's
//! through the command line as its file says to run it, and a real help centre's (the Rust
//! toolchain books, tests/eval/) through the library, each held to its file's thresholds.

mod common;

use casebridge::agent::eval;
use casebridge::agent::kb::KnowledgeBase;
use common::*;

#[test]
fn the_demo_eval_set_passes_as_its_file_says_to_run_it() {
    let out =
        casebridge(&["agent", "eval", "examples/demo/agent-eval.yaml", "--config", "examples/demo/casebridge.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("11 answerable questions: hit@1"), "{stdout}");
    let json = casebridge(&[
        "agent",
        "eval",
        "examples/demo/agent-eval.yaml",
        "--config",
        "examples/demo/casebridge.yaml",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["answerable"], 11);
    assert_eq!(report["results"].as_array().unwrap().len(), 15);
    assert!(report["hit_at_1"].as_f64().unwrap() >= 0.8, "{report}");
}

#[test]
fn the_real_help_centre_holds_its_thresholds() {
    let kb = KnowledgeBase::load(&root().join("tests/eval/rust-toolchain"), "https://doc.rust-lang.org", 0.35).unwrap();
    let file = eval::load(&root().join("tests/eval/rust-toolchain.eval.yaml")).unwrap();
    let report = eval::run(&kb, &file);
    println!("{}", report.render());
    assert_eq!((report.answerable, report.not_covered), (53, 15));
    assert!(report.failures.is_empty(), "{}", report.render());
    // Every article an expectation names exists, so a typo cannot pass as a miss.
    for q in &file.questions {
        if let eval::Expect::Articles(articles) = &q.expect {
            for a in articles {
                assert!(root().join(format!("tests/eval/rust-toolchain/{a}.md")).is_file(), "{a}");
            }
        }
    }
}

#[test]
fn thresholds_missed_fail_and_bad_eval_files_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = root().join("examples/demo/casebridge.yaml");
    let config = config.to_str().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    // A threshold the knowledge base cannot reach: exit 1, naming the figure.
    let strict = write(
        "strict.yaml",
        "kind: agent_eval\nthresholds: {wrong_answers: 0.0, hit_at_1: 1.0}\nquestions:\n  - ask: \"What is the meaning of life?\"\n    expect: [billing]\n",
    );
    let out = casebridge(&["agent", "eval", &strict, "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("below the file's threshold: hit_at_1: 0.00 < 1.00"), "{stdout}");

    // Malformed: the file, line and column.
    let broken = write("broken.yaml", "kind: agent_eval\nquestions:\n  - ask: [not, text]\n    expect: cannot_help\n");
    let out = casebridge(&["agent", "eval", &broken, "--config", config]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.yaml:3:"), "{stderr}");

    for (name, text, says) in [
        ("kind.yaml", "kind: tests\nquestions: [{ask: hi, expect: cannot_help}]\n", "kind must be agent_eval"),
        ("empty.yaml", "kind: agent_eval\nquestions: []\n", "1 to 10000 questions"),
        ("typo.yaml", "kind: agent_eval\nthreshold: {}\nquestions: [{ask: hi, expect: cannot_help}]\n", "threshold"),
        ("outcome.yaml", "kind: agent_eval\nquestions: [{ask: hi, expect: maybe}]\n", "outcome.yaml:2:"),
    ] {
        let path = write(name, text);
        let out = casebridge(&["agent", "eval", &path, "--config", config]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    // A special file instead of an eval file: refused, nothing hangs.
    let out = casebridge(&["agent", "eval", "/dev/zero", "--config", config]);
    assert_eq!(out.status.code(), Some(2));
}
