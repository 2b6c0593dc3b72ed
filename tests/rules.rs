//! The rule engine from the outside: the shipped rule set and its tests, errors with their
//! place, sandboxed scripts failing safely, hot reload, and the `casebridge rules` commands.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use casebridge::agent::Agent;

use casebridge::decide;
use casebridge::model::AgentAnswer;
use casebridge::rules::RuleSet;
use casebridge::rules::testing;
use casebridge::rules::watch::{Reloader, watch};
use casebridge::script::Limits;
use common::{casebridge, empty_rules, root, scratch_rules, wait_for};

#[tokio::test]
async fn the_shipped_rule_set_passes_its_own_tests() {
    let set = RuleSet::load(&root().join("rules")).unwrap_or_else(|e| panic!("{}", e[0]));
    assert!(set.tests.len() >= 5);
    let outcomes = testing::run(&set, None).await;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(set.case_fields.contains("Account.Name"), "mapped fields join the poll query");
}

#[test]
fn every_problem_is_reported_at_once_with_its_place() {
    let (_dir, rules) = scratch_rules();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: broken\n    when: attributes.tier == \n    reason: x\n  - name: twice\n    when: true\n    reason: a\n  - name: twice\n    when: true\n    reason: b\n",
    )
    .unwrap();
    std::fs::write(rules.join("topics.yaml"), "kind: topics\ntopics:\n  - name: Bad\n    regex: '(unclosed'\n")
        .unwrap();
    std::fs::write(
        rules.join("more-topics.yaml"),
        "kind: topics\ntopics:\n  - name: Fine\n    keywords: [a]\n  - name: Typo\n    keywrds: [a]\n",
    )
    .unwrap();
    std::fs::write(rules.join("extra.yaml"), "kind: policies\n").unwrap();
    std::fs::write(rules.join("helpers.rhai"), "fn helper(x) {\n  x +* 1\n}\n").unwrap();
    std::fs::write(
        rules.join("email.yaml"),
        "kind: email\ntemplates:\n  - name: default\n    subject: \"Re: {{case.subjet}}\"\n    text: \"{{reply}}\"\n",
    )
    .unwrap();
    let errors = RuleSet::load(&rules).err().expect("the rule set is refused");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    let find = |fragment: &str| {
        text.iter().find(|t| t.contains(fragment)).unwrap_or_else(|| panic!("no {fragment:?} in:\n{all}"))
    };
    assert!(find("the condition does not compile").contains("handover.yaml:4:"), "{all}");
    assert!(find("\"twice\" is defined twice").contains("handover.yaml"), "{all}");
    assert!(find("bad regular expression").contains("topics.yaml:4:"), "{all}");
    assert!(find("unknown field `keywrds`").contains("more-topics.yaml:6:"), "{all}");
    assert!(find("unknown kind policies").contains("extra.yaml:1:7"), "{all}");
    assert!(find("script error").contains("helpers.rhai:2:"), "{all}");
    assert!(find("subjet").contains("email.yaml:4:"), "{all}");
    // The caret sits under the offending text.
    let compile_error = find("the condition does not compile");
    assert!(compile_error.contains("4 |     when: attributes.tier == "), "{compile_error}");
    assert!(compile_error.lines().last().unwrap().trim_end().ends_with('^'), "{compile_error}");
}

#[tokio::test]
async fn a_runaway_script_is_stopped_and_the_case_handed_over() {
    let (_dir, rules) = empty_rules();
    std::fs::write(
        rules.join("slow.rhai"),
        "fn forever() { loop { } }\nfn huge() { let s = \"x\"; loop { s += s; } }\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: spins\n    when: forever()\n    target: Tier 2\n    reason: never\n",
    )
    .unwrap();
    let set =
        RuleSet::load_with(&rules, Limits { wall_clock: Duration::from_millis(100), ..Limits::default() }).unwrap();
    let conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    let agent = Agent::Fixed(AgentAnswer::cannot_help("fixed", 0.0, "unused"));
    let started = Instant::now();
    let decision = decide::decide(&set, &agent, &conversation).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let handover = decision.handover.expect("the documented fallback: hand over");
    assert_eq!((handover.target.as_str(), handover.rule.as_str()), ("default", "fallback"));
    assert!(handover.reason.contains("spins"), "{}", handover.reason);
    let error = decision.trace.0.iter().find(|t| t.stage == casebridge::model::TraceStage::Error).unwrap();
    assert!(error.detail.contains("rules/slow.rhai") || error.detail.contains("handover.yaml"), "{}", error.detail);
    assert!(decision.reply.is_none());
}

#[test]
fn hot_reload_takes_good_edits_keeps_running_through_bad_ones_and_handles_rename_saves() {
    let (_dir, rules) = scratch_rules();
    let set = RuleSet::load(&rules).unwrap();
    let first = set.hash.clone();
    let shared = decide::shared(Box::new(set));
    let reloader = Arc::new(Reloader::new(&rules, shared.clone(), first.clone(), Limits::default()));
    let _watcher = watch(reloader.clone(), Duration::from_millis(50), Duration::from_secs(3600)).unwrap();

    // An editor saving by writing a temporary file and renaming it over the original.
    let topics = rules.join("topics.yaml");
    let text = std::fs::read_to_string(&topics).unwrap();
    let tmp = rules.join(".topics.yaml.swp");
    std::fs::write(&tmp, text.replace("name: Billing", "name: Invoices")).unwrap();
    let saved = Instant::now();
    std::fs::rename(&tmp, &topics).unwrap();
    wait_for("the edit to take effect", || reloader.status().active != first);
    let reload_latency = saved.elapsed();
    let second = reloader.status().active;
    assert_eq!(shared.load().id(), second, "the running rule set is the new one");
    assert!(reload_latency < Duration::from_secs(5), "{reload_latency:?}");

    // A broken edit: reported with its place; the running rule set stays.
    std::fs::write(rules.join("handover.yaml"), "kind: handover\nrules:\n  - name: x\n    when: (\n    reason: r\n")
        .unwrap();
    wait_for("the failed reload to be reported", || reloader.status().reloads_failed > 0);
    let status = reloader.status();
    assert_eq!(status.active, second);
    assert_eq!(shared.load().id(), second);
    assert!(status.last_errors[0].contains("handover.yaml:4:"), "{:?}", status.last_errors);

    // Fixing it brings the new rule set in.
    let fixed = std::fs::read_to_string(root().join("rules/handover.yaml")).unwrap() + "# fixed\n";
    std::fs::write(rules.join("handover.yaml"), fixed).unwrap();
    wait_for("the fix to take effect", || {
        reloader.status().active != second && reloader.status().last_errors.is_empty()
    });
    assert_eq!(shared.load().id(), reloader.status().active);
}

#[test]
fn rules_test_shows_expected_and_actual_and_exits_1_on_failure() {
    let (_dir, rules) = scratch_rules();
    let tests = rules.join("tests/default-rules.yaml");
    let text = std::fs::read_to_string(&tests).unwrap();
    std::fs::write(&tests, text.replace("topics: [Billing]", "topics: [Shipping]")).unwrap();
    let out = casebridge(&["rules", "test", rules.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("test a billing question is answered and tagged ... FAILED"), "{stdout}");
    assert!(stdout.contains(r#"topics: expected {"Shipping"}, got {"Billing"}"#), "{stdout}");
    assert!(stdout.contains("|   topics           Billing"), "the trace is shown: {stdout}");
    assert!(stdout.trim_end().ends_with("5 passed, 1 failed"), "{stdout}");

    let junit = casebridge(&["rules", "test", rules.to_str().unwrap(), "--format", "junit"]);
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(xml.contains("<testsuite name=\"casebridge rules\" tests=\"6\" failures=\"1\">"), "{xml}");
    let filtered = casebridge(&["rules", "test", rules.to_str().unwrap(), "--filter", "email"]);
    assert!(String::from_utf8_lossy(&filtered.stdout).contains("1 passed, 0 failed"));
    assert_eq!(filtered.status.code(), Some(0));
}

#[test]
fn rules_check_exits_0_when_valid_and_1_with_a_caret_when_not() {
    let ok = casebridge(&["rules", "check", root().join("rules").to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0));
    let (_dir, rules) = scratch_rules();
    std::fs::write(
        rules.join("mappings.yaml"),
        "kind: mappings\ninbound:\n  - attribute: tier\n    from: 'Account.Tier__c OR 1=1'\n",
    )
    .unwrap();
    let bad = casebridge(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("mappings.yaml:4:") && stderr.contains("is not a field path") && stderr.contains('^'),
        "{stderr}"
    );
}

#[tokio::test]
async fn every_example_rule_set_passes_its_tests() {
    let examples = root().join("examples/rules");
    let mut sets = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let set = RuleSet::load(&dir).unwrap_or_else(|e| panic!("{}: {}", dir.display(), e[0]));
        assert!(set.tests.len() >= 4, "{} needs its own fixture tests", dir.display());
        let outcomes = testing::run(&set, None).await;
        let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed()).map(|o| (&o.name, &o.failures)).collect();
        assert!(failed.is_empty(), "{}: {failed:#?}", dir.display());
        sets += 1;
    }
    assert!(sets >= 2, "at least two example rule sets");
}

#[tokio::test]
async fn script_hooks_add_handovers_and_topics_yaml_cannot_express() {
    let (_dir, rules) = empty_rules();
    std::fs::write(
        rules.join("hooks.rhai"),
        r#"
        // Repeat questions about the same invoice go to billing, whatever the wording.
        fn handover(conversation) {
            let words = conversation.last_message.to_lower().split(" ");
            if words.contains("invoices?") || words.contains("invoices") {
                return #{ target: "Billing Team", reason: "Invoice question from " + conversation.fields.Contact.Name };
            }
            ()
        }
        fn topics(conversation) {
            if conversation.fields.Account.Name.starts_with("Globex") { ["Key account"] } else { () }
        }
        "#,
    )
    .unwrap();
    let set = RuleSet::load(&rules).unwrap_or_else(|e| panic!("{}", e[0]));
    let conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    let stub = casebridge::rules::files::AgentStub { answer: Some("x".into()), confidence: 1.0 };
    let d = testing::decide_with(&set, &conversation, &stub).await;
    let h = d.handover.expect("the hook hands over");
    assert_eq!((h.target.as_str(), h.rule.as_str()), ("Billing Team", "fn handover"));
    assert_eq!(h.reason, "Invoice question from Jane Doe");
    assert!(d.topics.contains("Key account"), "{:?}", d.topics);
    assert!(d.trace.0.iter().any(|t| t.rule == "fn topics" && t.fired));
}

#[test]
fn business_hours_follow_the_offset_and_skip_weekends() {
    use casebridge::rules::is_business_hours;
    use chrono::TimeZone;
    let friday_16_utc = chrono::Utc.with_ymd_and_hms(2026, 11, 20, 16, 0, 0).unwrap();
    assert!(is_business_hours(friday_16_utc, 0, 9, 17));
    assert!(!is_business_hours(friday_16_utc, 1, 9, 17), "17:00 at UTC+1 is closed");
    assert!(is_business_hours(friday_16_utc, -5, 9, 17), "11:00 at UTC-5");
    assert!(!is_business_hours(friday_16_utc, 9, 9, 17), "Saturday 01:00 at UTC+9");
}

#[test]
fn rule_evaluation_does_not_stall_the_async_workers() {
    let (_dir, rules) = empty_rules();
    std::fs::write(rules.join("busy.rhai"), "fn busy() { let x = 0; for i in 0..150000 { x += i % 7; } x >= 0 }\n")
        .unwrap();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: busy\n    when: busy()\n    reason: r\n",
    )
    .unwrap();
    let set = RuleSet::load_with(&rules, Limits { wall_clock: Duration::from_secs(5), ..Limits::default() }).unwrap();
    let conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    // One worker: if rules ran on it inline, the ticker could not tick until they finished.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    runtime.block_on(async {
        let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        // The decision runs as a task on the one worker, where the ticker runs too.
        let decision = tokio::spawn(async move {
            let agent = Agent::Fixed(AgentAnswer::cannot_help("fixed", 0.0, "unused"));
            decide::decide(&set, &agent, &conversation).await.unwrap()
        })
        .await
        .unwrap();
        let took = started.elapsed();
        let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
        ticker.abort();
        assert_eq!(decision.handover.unwrap().rule, "busy");
        assert!(took > Duration::from_millis(20), "the rule must take a while to prove anything ({took:?})");
        assert!(during >= 3, "the ticker ran {during} times during a {took:?} decision");
    });
}

#[tokio::test]
async fn a_run_time_rule_error_names_the_rule_files_line_and_column() {
    let (_dir, rules) = empty_rules();
    std::fs::write(rules.join("helpers.rhai"), "fn ratio(x) {\n  let zero = 0;\n  x / zero\n}\n").unwrap();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: in_expression\n    when: turns / 0 > 1\n    reason: r\n",
    )
    .unwrap();
    let set = RuleSet::load(&rules).unwrap();
    let conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    let agent = Agent::Fixed(AgentAnswer::cannot_help("fixed", 0.0, "unused"));
    let decision = decide::decide(&set, &agent, &conversation).await.unwrap();
    let error = decision.trace.0.iter().find(|t| t.stage == casebridge::model::TraceStage::Error).unwrap();
    // `turns / 0` sits at line 4, column 11; it used to read `handover.yaml:4:1:1`.
    assert!(error.detail.contains("handover.yaml:4:17:"), "{}", error.detail);

    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: in_script\n    when: ratio(turns) > 1\n    reason: r\n",
    )
    .unwrap();
    let set = RuleSet::load(&rules).unwrap();
    let decision = decide::decide(&set, &agent, &conversation).await.unwrap();
    let error = decision.trace.0.iter().find(|t| t.stage == casebridge::model::TraceStage::Error).unwrap();
    assert!(
        error.detail.contains("helpers.rhai:3:"),
        "an error in a script function is placed in the script: {}",
        error.detail
    );
}

/// Each stage of a decision sees what the earlier ones decided: the attributes the mappings
/// set, the topics, the channel, and (from `stage: after` on, outbound mappings included)
/// the agent's answer.
#[tokio::test]
async fn each_stage_sees_what_the_earlier_ones_decided() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "mappings.yaml",
            "kind: mappings\ninbound:\n  - attribute: tier\n    from: Priority\n    expr: 'if value == \"Medium\" { \"gold\" } else { \"other\" }'\n\
             outbound:\n  - field: AI_Answered__c\n    expr: agent.answered && agent.confidence > 0.5\n    on: [sync]\n",
        ),
        (
            "topics.yaml",
            "kind: topics\ntopics:\n  - name: Gold\n    when: attributes.tier == \"gold\" && channel == \"case\"\n",
        ),
        (
            "handover.yaml",
            "kind: handover\nrules:\n  - name: gold_without_topic\n    when: '!topics.contains(\"Gold\")'\n    reason: r\n\
             \x20 - name: answered_gold\n    stage: after\n    when: agent.answered && attributes.tier != \"gold\"\n    reason: r\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let set = RuleSet::load(dir.path()).unwrap_or_else(|e| panic!("{}", e[0]));
    let conversation = testing::load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    let agent = Agent::Fixed(AgentAnswer::answered("fixed", "See the portal.".into(), 0.9, Vec::new()));
    let decision = decide::decide(&set, &agent, &conversation).await.unwrap();
    assert_eq!(decision.attributes["tier"], "gold", "{:?}", decision.trace);
    assert!(decision.topics.contains("Gold"), "{:?}", decision.trace);
    assert!(decision.handover.is_none(), "{:?}", decision.handover);
    assert_eq!(decision.reply.as_deref(), Some("See the portal."));
    assert_eq!(decision.field_updates["AI_Answered__c"], true, "{:?}", decision.trace);
    let stages: Vec<&str> = decision.trace.0.iter().map(|t| t.stage.as_str()).collect();
    assert_eq!(stages, ["inbound", "topics", "handover_before", "agent", "handover_after", "outbound"]);
}

#[test]
fn resolution_files_are_checked_with_their_place() {
    let (_dir, rules) = empty_rules();
    let write = |name: &str, text: &str| std::fs::write(rules.join(name), text).unwrap();
    write(
        "resolution.yaml",
        "kind: resolution\nconfirmed_when: confirms_resolutoin(last_message)\nunhappy_when: last_message ==\nquiet_after: 5s\nask_rating_when: turns >=\n",
    );
    write("more.yaml", "kind: resolution\nquiet_after: forever\nfeedback: yes\n");
    let errors: Vec<String> = RuleSet::load(&rules).err().expect("refused").iter().map(ToString::to_string).collect();
    let all = errors.join("\n");
    assert!(all.contains("no function confirms_resolutoin(); did you mean confirms_resolution?"), "{all}");
    assert!(all.contains("resolution.yaml:3:"), "the broken condition is placed: {all}");
    assert!(all.contains("quiet_after: from 10m to 30d"), "{all}");
    assert!(all.contains("resolution.yaml:5:") && all.contains("ask_rating_when"), "{all}");
    assert!(all.contains("more.yaml:3:") && all.contains("feedback"), "unknown keys are refused: {all}");

    // A valid file takes effect: its conditions, and its quiet time.
    std::fs::remove_file(rules.join("more.yaml")).unwrap();
    write(
        "resolution.yaml",
        "kind: resolution\nconfirmed_when: contains_any(last_message, [\"merci\"])\nunhappy_when: \"false\"\nquiet_after: 2h\n",
    );
    let set = RuleSet::load(&rules).unwrap_or_else(|e| panic!("{}", e[0]));
    assert_eq!(set.quiet_after, Duration::from_secs(7_200));
    let mut conversation = casebridge::model::Conversation::from_question("Merci, ça marche");
    conversation.resolution = Some(casebridge::model::ResolutionState {
        state: casebridge::model::Resolution::AwaitingCustomer,
        since: chrono::Utc::now(),
        unhappy: false,
    });
    let decision = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(decide::decide(&set, &Agent::Fixed(AgentAnswer::cannot_help("fixed", 0.0, "none")), &conversation))
        .unwrap();
    assert!(decision.confirmed && decision.handover.is_none() && decision.reply.is_none(), "{:?}", decision.trace);
}
