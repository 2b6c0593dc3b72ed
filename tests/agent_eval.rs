//! `casebridge agent eval`: the knowledge base measured on eval sets, the demo help centre's
//! through the command line as its file says to run it, and a real help centre's (the Rust
//! toolchain books, tests/eval/) through the library, each held to its file's thresholds.

mod common;

use casebridge::agent::kb::KnowledgeBase;
use casebridge::agent::{Agent, eval};
use casebridge::sim::model::{ModelBehaviour, ModelStub};
use common::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

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
    let report = block_on(eval::run(&Agent::KnowledgeBase(kb), &file)).unwrap();
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

#[test]
fn agent_ask_answers_with_its_passages_or_says_why_not() {
    let config = "examples/demo/casebridge.yaml";
    let out = casebridge(&["agent", "ask", "--config", config, "How do I recalibrate the gripper?"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("answer (knowledge_base, confidence "), "{stdout}");
    assert!(stdout.contains("passages retrieved:\n  gripper-calibration#"), "{stdout}");
    let json = casebridge(&["agent", "ask", "--config", config, "--format", "json", "Can I pay in seashells?"]);
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["text"], serde_json::Value::Null);
    assert!(answer["note"].as_str().unwrap().contains("no help article matches"), "{answer}");
    // Hostile questions: empty, huge, control characters. An answer or a refusal, never a crash.
    for question in ["", &"gripper ".repeat(12_000), "\u{1b}[31mgripper\u{7}\u{202e}"] {
        let out = casebridge(&["agent", "ask", "--config", config, question]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A script agent has no help centre to measure.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(config)).unwrap().replace(
        "agent:\n  backend: knowledge_base\n  dir: help-center\n  base_url: https://help.acme-robotics.example/articles\n  min_confidence: 0.35",
        "agent:\n  backend: script\n  file: agent.rhai",
    );
    assert!(text.contains("backend: script"));
    std::fs::write(dir.path().join("agent.rhai"), "fn answer(c) { \"Hi\" }").unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    for s in ["client-secret", "refresh-token"] {
        std::fs::copy(root().join("examples/demo/secrets").join(s), dir.path().join("secrets").join(s)).unwrap();
    }
    let script_config = dir.path().join("c.yaml");
    std::fs::write(&script_config, text).unwrap();
    let script_config = script_config.to_str().unwrap();
    let out = casebridge(&["agent", "ask", "--config", script_config, "hello"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("answer (script"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = casebridge(&["agent", "eval", "examples/demo/agent-eval.yaml", "--config", script_config]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent.backend is script"));
}

#[test]
fn the_grounded_model_is_measured_and_asked_like_the_knowledge_base() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stub = runtime.block_on(ModelStub::start(ModelBehaviour::default())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/demo/casebridge.yaml")).unwrap().replace(
        "agent:\n  backend: knowledge_base\n  dir: help-center\n  base_url: https://help.acme-robotics.example/articles\n  min_confidence: 0.35",
        &format!(
            "agent:\n  backend: openai\n  base_url: {}\n  model: stub\n  knowledge:\n    dir: {}\n    base_url: https://help.acme-robotics.example/articles",
            stub.url,
            root().join("examples/demo/help-center").display()
        ),
    );
    assert!(text.contains("backend: openai"));
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    for s in ["client-secret", "refresh-token"] {
        std::fs::copy(root().join("examples/demo/secrets").join(s), dir.path().join("secrets").join(s)).unwrap();
    }
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let out = casebridge(&["agent", "ask", "--config", config, "How do I recalibrate the gripper?"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("answer (openai, confidence "), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Sources:\n- Calibrating the gripper") && stdout.contains("tokens: "), "{stdout}");
    // The stub answers every matched question from the first passage it was given, so the
    // eval's figures are the ranking's: every answerable question is answered.
    let out = casebridge(&["agent", "eval", "examples/demo/agent-eval.yaml", "--config", config, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["answerable"], 11, "{report}");
    assert_eq!(report["answered_right"], report["hit_at_1"], "{report}");
    assert!(stub.requests().len() >= 11, "the model was asked");
    // The service down: the eval stops with exit 1 and says why.
    stub.set(|b| b.down = true);
    let out = casebridge(&["agent", "eval", "examples/demo/agent-eval.yaml", "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The admin's synonym groups (tests/eval/rust-toolchain.synonyms.yaml), written from the
/// misses of the even-numbered questions only: on the whole set, and on the odd-numbered
/// questions they were not written for.
#[test]
fn synonym_groups_help_on_questions_they_were_not_written_for() {
    use casebridge::knowledge::{Index, Synonyms, load_markdown_folder};
    let articles =
        || load_markdown_folder(&root().join("tests/eval/rust-toolchain"), "https://doc.rust-lang.org").unwrap();
    let synonyms = Synonyms::load(&root().join("tests/eval/rust-toolchain.synonyms.yaml")).unwrap();
    let plain = Agent::KnowledgeBase(KnowledgeBase::with_index(Index::new(articles()), 0.35));
    let with = Agent::KnowledgeBase(KnowledgeBase::with_index(Index::with_synonyms(articles(), synonyms), 0.35));
    let mut file = eval::load(&root().join("tests/eval/rust-toolchain.eval.yaml")).unwrap();
    file.thresholds = Default::default();
    let whole = block_on(eval::run(&with, &file)).unwrap();
    assert!(whole.hit_at_1 >= 0.81 && whole.answered_right >= 0.81, "{}", whole.render());
    let mut unseen = file.clone();
    unseen.questions = file.questions.iter().skip(1).step_by(2).cloned().collect();
    let before = block_on(eval::run(&plain, &unseen)).unwrap();
    let after = block_on(eval::run(&with, &unseen)).unwrap();
    assert!(after.hit_at_1 > before.hit_at_1, "{} -> {}", before.hit_at_1, after.hit_at_1);
    assert!(after.wrong_answers <= before.wrong_answers, "{} -> {}", before.wrong_answers, after.wrong_answers);
}
