//! The rule sandbox under attack. Rule sets are edited by admins, but a sandbox that leaks
//! is no sandbox: each named attack below, in each place a rule set holds code or paths
//! (conditions, hooks, mapping expressions, scripts, templates, reasons, fixtures), must end
//! in a clear error or a bounded evaluation — never a file read from outside the folder, a
//! hang, a stack overflow, or unbounded time, memory or log output.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use casebridge::agent::Agent;

use casebridge::decide;
use casebridge::model::AgentAnswer;
use casebridge::model::{Conversation, Decision};
use casebridge::rules::{RuleSet, testing};
use common::{empty_rules, root, scratch_rules};

/// Loads on another thread, so an attack that hangs fails the test instead of the suite.
fn load_within(rules: &Path, limit: Duration) -> Result<RuleSet, String> {
    let rules = rules.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result =
            RuleSet::load(&rules).map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"));
        let _ = tx.send(result);
    });
    rx.recv_timeout(limit).expect("loading hung")
}

fn refused(name: &str, rules: &Path, expected: &str) {
    match load_within(rules, Duration::from_secs(10)) {
        Ok(_) => panic!("attack {name}: the rule set loaded"),
        Err(e) => assert!(e.contains(expected), "attack {name}: expected {expected:?} in:\n{e}"),
    }
}

const EMAIL: &str = "kind: email\ntemplates:\n  - name: default\n    subject: \"Re: {{case.subject}}\"\n";

/// Paths a rule set names: each must stay inside the folder and be a small regular file.
#[test]
fn attacks_on_paths() {
    let attacks: &[(&str, &str, &str)] = &[
        ("template_absolute_etc_passwd", "text_file: /etc/passwd", "outside the rules folder"),
        ("template_proc_self_environ", "text_file: /proc/self/environ", "outside the rules folder"),
        ("template_climbs_with_dot_dot", "text_file: ../../../../etc/passwd", "outside the rules folder"),
        ("template_climbs_inside_then_out", "html_file: templates/../../secret.hbs", "outside the rules folder"),
    ];
    for (name, line, expected) in attacks {
        let (_dir, rules) = scratch_rules();
        std::fs::write(rules.join("email.yaml"), format!("{EMAIL}    {line}\n")).unwrap();
        refused(name, &rules, expected);
    }
}

#[test]
fn attacks_with_links_and_special_files() {
    let (dir, rules) = scratch_rules();
    std::fs::write(dir.path().join("secret.hbs"), "root:x:0:0").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.hbs"), rules.join("templates/leak.hbs")).unwrap();
    std::fs::write(rules.join("email.yaml"), format!("{EMAIL}    text_file: templates/leak.hbs\n")).unwrap();
    refused("template_symlink_out_of_the_folder", &rules, "links outside the rules folder");

    let (_dir, rules) = scratch_rules();
    std::os::unix::fs::symlink("/dev/zero", rules.join("zero.yaml")).unwrap();
    refused("rule_file_linked_to_dev_zero", &rules, "links outside the rules folder");

    let (_dir, rules) = scratch_rules();
    assert!(std::process::Command::new("mkfifo").arg(rules.join("pipe.yaml")).status().unwrap().success());
    refused("rule_file_is_a_fifo", &rules, "not a regular file");

    let (_dir, rules) = scratch_rules();
    assert!(std::process::Command::new("mkfifo").arg(rules.join("templates/pipe.hbs")).status().unwrap().success());
    std::fs::write(rules.join("email.yaml"), format!("{EMAIL}    text_file: templates/pipe.hbs\n")).unwrap();
    refused("template_is_a_fifo", &rules, "not a regular file");

    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("huge.yaml"), format!("kind: topics\ntopics: []\n#{}\n", "x".repeat(300_000))).unwrap();
    refused("rule_file_too_large", &rules, "larger than 256 KiB");

    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("binary.rhai"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    refused("rule_file_not_utf8", &rules, "not UTF-8");

    let (_dir, rules) = scratch_rules();
    let tests = std::fs::read_to_string(rules.join("tests/default-rules.yaml")).unwrap();
    let first = tests.find("fixture: fixtures/").unwrap() + "fixture: ".len();
    let end = first + tests[first..].find(".json").unwrap() + 5;
    std::fs::write(rules.join("tests/default-rules.yaml"), format!("{}/etc/passwd{}", &tests[..first], &tests[end..]))
        .unwrap();
    refused("fixture_outside_the_folder", &rules, "outside the rules folder");
}

/// Nesting in each language a rule set holds: bounded at load, never a stack overflow.
#[test]
fn attacks_by_nesting() {
    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("deep.yaml"), format!("kind: topics\ntopics: {}\n", "[".repeat(10_000))).unwrap();
    refused("yaml_nested_10000_deep", &rules, "nested too deeply");

    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("templates/reply.txt.hbs"), "{{#if reply}}\n".repeat(5_000)).unwrap();
    refused("template_file_5000_nested_ifs", &rules, "templates/reply.txt.hbs:33:");

    let (_dir, rules) = scratch_rules();
    let reason = "{{#if case}}".repeat(2_000);
    let handover = format!("kind: handover\nrules:\n  - name: deep\n    when: \"false\"\n    reason: \"{reason}\"\n");
    std::fs::write(rules.join("handover.yaml"), handover).unwrap();
    refused("reason_template_2000_nested_ifs", &rules, "nest 33 deep");

    let (_dir, rules) = scratch_rules();
    let condition = format!("{}true{}", "(".repeat(5_000), ")".repeat(5_000));
    std::fs::write(
        rules.join("handover.yaml"),
        format!("kind: handover\nrules:\n  - name: deep\n    when: \"{condition}\"\n    reason: r\n"),
    )
    .unwrap();
    refused("condition_5000_nested_parentheses", &rules, "handover.yaml:4:");

    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("deep.rhai"), format!("fn f() {{ {} 1 {} }}\n", "{".repeat(5_000), "}".repeat(5_000)))
        .unwrap();
    refused("script_5000_nested_blocks", &rules, "deep.rhai:");

    let (_dir, rules) = scratch_rules();
    let subexpressions = format!("{{{{lower {}reply{}}}}}", "(lower ".repeat(100), ")".repeat(100));
    std::fs::write(rules.join("templates/reply.txt.hbs"), subexpressions).unwrap();
    refused("template_100_nested_subexpressions", &rules, "templates/reply.txt.hbs:1:");
}

/// Compile-time size: functions and code an attacker can pile up.
#[test]
fn attacks_by_volume_at_compile_time() {
    let (_dir, rules) = scratch_rules();
    let many: String = (0..300).map(|i| format!("fn f{i}() {{ {i} }}\n")).collect();
    std::fs::write(rules.join("many.rhai"), many).unwrap();
    refused("script_300_functions", &rules, "many.rhai:");

    let (_dir, rules) = scratch_rules();
    let tiny: String = (0..45_000).map(|i| format!("fn g{i}(){{}}\n")).collect();
    std::fs::write(rules.join("tiny.rhai"), tiny).unwrap();
    let started = Instant::now();
    refused("script_45000_tiny_functions", &rules, "tiny.rhai");
    assert!(started.elapsed() < Duration::from_secs(3), "refused before compiling: {:?}", started.elapsed());
}

/// Runs one condition (with the attack's helper script) against a shipped fixture, and
/// returns the decision's error detail and how long it took.
async fn evaluate(script: &str, condition: &str) -> (String, Duration) {
    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("attack.rhai"), script).unwrap();
    std::fs::write(
        rules.join("handover.yaml"),
        format!("kind: handover\nrules:\n  - name: attack\n    when: {condition}\n    reason: r\n"),
    )
    .unwrap();
    let (decision, elapsed) = decide_billing_question(&rules, |_| {}).await;
    (error_of(&decision), elapsed)
}

/// Decides the shipped `billing-question` fixture (changed by `change`) with the rule set
/// in `rules` and an agent that cannot help; returns the decision and how long it took.
async fn decide_billing_question(rules: &Path, change: impl FnOnce(&mut Conversation)) -> (Decision, Duration) {
    let set = RuleSet::load(rules).unwrap_or_else(|e| panic!("{}", e[0]));
    let mut conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    change(&mut conversation);
    let agent = Agent::Fixed(AgentAnswer::cannot_help("fixed", 0.0, "unused"));
    let started = Instant::now();
    let decision = decide::decide(&set, &agent, &conversation).await.unwrap();
    (decision, started.elapsed())
}

/// The rule error a decision's trace shows, if any.
fn error_of(decision: &Decision) -> String {
    decision
        .trace
        .0
        .iter()
        .find(|t| t.stage == casebridge::model::TraceStage::Error)
        .map(|t| t.detail.to_string())
        .unwrap_or_default()
}

/// Run-time attacks: each is stopped within the budget (250 ms, plus one host call), with
/// an error the decision's trace shows.
#[tokio::test]
async fn attacks_at_run_time() {
    let lets: String = (0..1_000).map(|i| format!("let v{i} = {i};\n")).collect();
    let many_variables = format!("fn many() {{\n{lets}false }}");
    let strings: String = (0..62).map(|i| format!("let s{i} = s + \"{i}\";\n")).collect();
    let strings_at_every_level = format!(
        "fn level(n, s) {{\n{strings} level(n + 1, s) }}\nfn attack() {{ let s = \"x\"; while s.len() < 100000 {{ s += s; }} level(0, s) }}"
    );
    let attacks: &[(&str, &str, &str, &str)] = &[
        ("endless_loop", "fn spin() { loop { } }", "spin()", "too many operations"),
        (
            "matches_on_a_long_text_in_a_loop",
            "fn slow() { let s = \"ab\"; while s.len() < 200000 { s += s; } for i in 0..100000 { matches(s, \"a.*z\"); } false }",
            "slow()",
            "wall-clock",
        ),
        (
            "contains_any_with_a_long_list",
            "fn slow() { let s = \"ab\"; while s.len() < 200000 { s += s; } let w = []; for i in 0..4000 { w.push(`zz${i}`); } for i in 0..1000 { contains_any(s, w); } false }",
            "slow()",
            "wall-clock",
        ),
        ("recursion_without_end", "fn down(n) { down(n + 1) }", "down(0)", "stack"),
        ("a_thousand_variables", &many_variables, "many()", "variables"),
        (
            "a_huge_array_of_strings",
            "fn big() { let s = \"x\"; while s.len() < 100000 { s += s; } let a = []; for i in 0..5000 { a.push(s); } false }",
            "big()",
            "too large",
        ),
        ("a_string_doubling_forever", "fn grow() { let s = \"x\"; loop { s += s; } }", "grow()", "too large"),
        ("sleep", "fn nap() { sleep(10) }", "nap()", "sleep"),
        ("a_bad_pattern", "fn bad() { matches(\"x\", \"(\") }", "bad()", "bad regular expression"),
        (
            "a_huge_pattern",
            "fn huge() { let p = \"a\"; while p.len() < 5000 { p += p; } matches(\"x\", p) }",
            "huge()",
            "longer than 1000",
        ),
        ("strings_at_every_call_level", &strings_at_every_level, "attack()", "holds more than 32 MiB"),
        (
            "map_keys_of_128_kib",
            "fn attack() { let s = \"x\"; while s.len() < 100000 { s += s; } let m = #{}; for i in 0..4096 { m[`${i}` + s] = i; } false }",
            "attack()",
            "holds more than 32 MiB",
        ),
        (
            "replace_building_64_gib",
            "fn attack() { let s = \"x\"; while s.len() < 200000 { s += s; } s.replace(\"x\", s); false }",
            "attack()",
            "too large",
        ),
        (
            "a_crafted_pattern_over_a_long_text",
            "fn attack() { let s = \"éa\"; while s.len() < 131072 { s += s; } for i in 0..10 { matches(s, \"(?s:.){1,800}a(?s:.){1,800}zz\"); } false }",
            "attack()",
            "too costly over a text of 196608 bytes",
        ),
    ];
    for (name, script, condition, expected) in attacks {
        let (error, elapsed) = evaluate(script, condition).await;
        // On a loaded machine the wall-clock budget may stop a loop before the operation
        // count does: either limit is the sandbox doing its job.
        let stopped_by_clock = expected.contains("too many operations") && error.contains("wall-clock budget exceeded");
        assert!(
            error.to_lowercase().contains(&expected.to_lowercase()) || stopped_by_clock,
            "attack {name}: expected {expected:?} in {error:?}"
        );
        assert!(elapsed < Duration::from_secs(2), "attack {name} ran {elapsed:?}");
    }
}

/// Conditions that are each within the evaluation's budget share the decision's: forty
/// topic conditions busy for 230 ms each stop after one second, not nine.
#[tokio::test]
async fn attack_many_slow_conditions_share_one_budget() {
    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("attack.rhai"), "fn busy() { let s = \"x\"; while s.len() < 100000 { s += s; } let t = timestamp(); while t.elapsed < 0.23 { let c = \"1\" + s; } false }",
    )
    .unwrap();
    let topics: String = (0..40).map(|i| format!("  - name: busy{i}\n    when: busy()\n")).collect();
    std::fs::write(rules.join("topics.yaml"), format!("kind: topics\ntopics:\n{topics}")).unwrap();
    let (decision, elapsed) = decide_billing_question(&rules, |_| {}).await;
    let error = error_of(&decision);
    // On an idle machine one busy condition may reach the operation limit within its
    // 230 ms: either limit stops the decision well before nine seconds.
    assert!(
        error.contains("wall-clock budget of the decision exceeded") || error.contains("too many operations"),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_millis(1_600), "{elapsed:?}");
    assert_eq!(decision.handover.expect("handed over").rule, "fallback");
}

/// A reason template that multiplies the case's data (each inside each) stops at the cap
/// on what one rendering writes, instead of building megabytes per decision.
#[tokio::test]
async fn attack_a_template_that_squares_the_case() {
    let (_dir, rules) = scratch_rules();
    let each = "{{#each case.fields}}{{#each ../case.fields}}{{#each ../../case.fields}}{{#each ../../../case.fields}}{{../../../../conversation.last_message}}{{/each}}{{/each}}{{/each}}{{/each}}";
    std::fs::write(
        rules.join("handover.yaml"),
        format!("kind: handover\nrules:\n  - name: square\n    when: \"true\"\n    reason: \"{each}\"\n"),
    )
    .unwrap();
    let (decision, elapsed) = decide_billing_question(&rules, |_| {}).await;
    let error = error_of(&decision);
    assert!(error.contains("longer than 131072 bytes"), "{error:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

/// A topic `regex:` too costly for a long message is a rule error naming the topic (the
/// case is handed over), never a second-long search on every decision.
#[tokio::test]
async fn attack_a_topic_regex_too_costly_for_a_long_message() {
    let (_dir, rules) = scratch_rules();
    std::fs::write(
        rules.join("topics.yaml"),
        "kind: topics\ntopics:\n  - name: costly\n    regex: \"(?s:.){1,800}a(?s:.){1,800}zz\"\n",
    )
    .unwrap();
    let long = "éa".repeat(65_536);
    let mut outcomes = Vec::new();
    // The lazy DFA gives up from its second search of the pattern, once its cache is full.
    for _ in 0..3 {
        let (decision, elapsed) =
            decide_billing_question(&rules, |c| c.parts.last_mut().unwrap().body = long.clone()).await;
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        outcomes.extend(decision.trace.0.into_iter().filter(|t| t.stage == casebridge::model::TraceStage::Error));
    }
    let refused = outcomes.first().expect("the costly search was refused");
    assert_eq!(refused.rule, "topic costly");
    assert!(refused.detail.contains("too costly over a text of 196608 bytes"), "{}", refused.detail);
}

/// Code that tries to leave the sandbox is refused when the rule set loads.
#[test]
fn attacks_that_try_to_escape() {
    let attacks: &[(&str, &str, &str)] = &[
        ("eval_in_a_script", "fn f() { eval(\"1\") }", "attack.rhai"),
        ("import_a_file", "import \"/etc/passwd\" as p;\nfn f() { 1 }", "attack.rhai"),
        ("unknown_function_in_a_hook", "fn handover(c) { open_file(\"/etc/passwd\") }", "open_file"),
    ];
    for (name, script, expected) in attacks {
        let (_dir, rules) = scratch_rules();
        std::fs::write(rules.join("attack.rhai"), script).unwrap();
        refused(name, &rules, expected);
    }
    // A reason template that names a partial: handlebars never reads one from disk.
    let (_dir, rules) = scratch_rules();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: partial\n    when: \"true\"\n    reason: \"{{> /etc/passwd}}\"\n",
    )
    .unwrap();
    refused("partial_naming_a_system_file", &rules, "handover.yaml:5:");
}

/// print() and debug() reach the log a few short lines at a time.
#[test]
fn attack_print_flood_is_cut() {
    let (_dir, rules) = scratch_rules();
    std::fs::write(rules.join("noisy.rhai"), "fn noisy() { let s = \"x\"; while s.len() < 10000 { s += s; } for i in 0..100000 { print(s); debug(s); } false }\n")
        .unwrap();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: noisy\n    when: noisy()\n    reason: r\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["rules", "explain"])
        .arg(root().join("rules/tests/fixtures/billing-question.json"))
        .arg("--rules")
        .arg(&rules)
        .env("CASEBRIDGE_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.stderr.len() < 16 * 1024, "print flood reached the log: {} bytes", out.stderr.len());
}

/// A mapping whose value nests arrays deeper than the store could read back is a rule
/// error naming the mapping's file, line and column; one at the limit is kept and survives
/// a store round trip.
#[tokio::test]
async fn values_nested_too_deep_are_refused() {
    let (dir, rules) = empty_rules();
    std::fs::write(
        rules.join("mappings.yaml"),
        "kind: mappings\ninbound:\n  - attribute: deep\n    expr: nest(levels())\n",
    )
    .unwrap();
    let decide_at = |levels: usize| {
        let script =
            format!("fn levels() {{ {levels} }}\nfn nest(n) {{ let a = []; for i in 1..n {{ a = [a]; }} a }}\n");
        std::fs::write(rules.join("deep.rhai"), script).unwrap();
        decide_billing_question(&rules, |_| {})
    };
    let (kept, _) = decide_at(casebridge::rules::MAX_VALUE_DEPTH).await;
    assert_eq!(error_of(&kept), "", "{:?}", kept.trace);
    let mut conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    conversation.attributes.extend(kept.attributes.clone());
    let store = casebridge::store::Store::open(&dir.path().join("store")).unwrap();
    store.commit(&conversation, Vec::new()).unwrap();
    let read = store.conversation(&conversation.id).unwrap().unwrap();
    assert_eq!(read.attributes["deep"], kept.attributes["deep"]);
    // 500: beyond the nesting the store reads back (128).
    for levels in [casebridge::rules::MAX_VALUE_DEPTH + 1, 500] {
        let (refused, _) = decide_at(levels).await;
        let error = error_of(&refused);
        assert!(error.contains("mappings.yaml:4:") && error.contains("more than 32 levels"), "{levels}: {error}");
        assert!(refused.attributes.is_empty() && refused.handover.is_some());
    }
}
