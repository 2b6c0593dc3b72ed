//! The `casebridge` command line, run as a user would run it.

mod common;
use common::{casebridge, demo_config, demo_sim, root};

#[test]
fn a_broken_org_seed_is_refused_with_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("casebridge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "users:\n  - key: a\n    username: [unclosed\n").unwrap();
    let out = casebridge(&["sim", "--org", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:", path.display())), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");

    std::fs::write(
        &path,
        "users: [{key: a, username: a@x.example, last_name: A}]\nrecords:\n  Case: [{Status: Bogus}]\n",
    )
    .unwrap();
    let out = casebridge(&["sim", "--org", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("records.Case[0]: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_org_seed_says_what_to_do() {
    let out = casebridge(&["sim", "--org", "/nonexistent/org.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read /nonexistent/org.yaml"), "{stderr}");
}

#[test]
fn every_command_says_what_it_does_with_an_example() {
    let out = casebridge(&["sim", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Example: casebridge sim"), "{stdout}");
    assert!(stdout.contains("--batch-size"), "{stdout}");
    let commands: &[&[&str]] = &[
        &[],
        &["demo"],
        &["run"],
        &["setup", "users"],
        &["setup", "queues"],
        &["setup", "check"],
        &["rules", "check"],
        &["rules", "test"],
        &["rules", "explain"],
        &["record"],
        &["status"],
        &["errors"],
        &["auth", "keygen"],
        &["auth", "login"],
        &["sim"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = casebridge(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command:?}");
        assert!(text.contains("Example"), "`casebridge {}` has no example:\n{text}", command.join(" "));
    }
}

#[test]
fn the_shipped_demo_org_loads() {
    let seed =
        casebridge::sim::seed::load_file(&root().join("examples/demo/org.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(seed.keys.contains_key("fin") && seed.keys.contains_key("tier2"));
}

#[test]
fn the_demo_plays_its_scenario_and_finishes() {
    let started = std::time::Instant::now();
    let out = casebridge(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("replied"), "{stdout}");
    assert!(stdout.contains("handed over  to Tier 2 Support by rule customer_asks_for_a_human"), "{stdout}");
    assert!(stdout.contains("handed over  to Tier 2 Support by rule agent_cannot_help"), "{stdout}");
    assert!(stdout.contains("emails sent              1"), "{stdout}");
    // Jane's follow-up with a new problem is answered; her later confirmation is not.
    assert!(stdout.contains("case 00001001  replied"), "{stdout}");
    assert!(stdout.contains("resolved     the customer confirmed the answer solved it"), "{stdout}");
    assert!(stdout.contains("resolutions confirmed    1"), "{stdout}");
    assert!(stdout.contains("In-Reply-To: <e42-report@initech.example>"), "{stdout}");
    // The messenger scene: answered, a lead, a case in the queue, a person's reply in the chat.
    // Without a model the knowledge base offers articles to confirm rather than stating one.
    assert!(stdout.contains("ranked by their words (no model: it offers articles, states none)"), "{stdout}");
    assert!(stdout.contains("chat   AI agent: This help article may answer your question:"), "{stdout}");
    assert!(stdout.contains("replied      offered 1 article(s) to confirm: Calibrating the gripper"), "{stdout}");
    assert!(stdout.contains("became a lead"), "{stdout}");
    assert!(
        stdout.contains("handed over  to Tier 2 Support by rule customer_asks_for_a_human: Dana asked"),
        "{stdout}"
    );
    assert!(stdout.contains("became a case became case"), "{stdout}");
    assert!(stdout.contains("chat  Ada Admin: Hi Dana"), "{stdout}");
    assert!(stdout.contains("messenger chats          1 (7 messages; 1 lead, 1 case)"), "{stdout}");
    assert!(stdout.contains("sync errors              0"), "{stdout}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// With the embedding model the demo ranks by meaning and states the answers its evidence
/// supports (the gripper one), rather than offering them.
#[test]
fn the_demo_with_the_embedding_model_states_strong_answers() {
    let Some(model) = common::models::real_model() else { return };
    let out = casebridge(&["demo", "--embedding-model", model.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ranked by meaning too"), "{stdout}");
    assert!(stdout.contains("case 00001001  replied      Recalibrate the gripper"), "{stdout}");
    assert!(stdout.contains("resolutions confirmed    1"), "{stdout}");
    // A folder that is no model: refused, naming the file.
    let out = casebridge(&["demo", "--embedding-model", "/nonexistent-model"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-model/config.json"));
}

/// `demo --serve` keeps a chat page running: the page, the widget, and a conversation
/// answered by the running daemon; and the admin page, whose printed link carries its
/// token: the report counts the demo's conversations. Ctrl-C (SIGINT) stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_keeps_a_chat_page_running_until_interrupted() {
    use std::io::BufRead;
    let mut child = common::bin()
        .args(["demo", "--serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            for what in ["chat with the agent", "admin page and report"] {
                if let Some(rest) = line.trim().strip_prefix(what) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        }
    });
    let page = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the demo prints the chat page's address");
    let admin = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the demo prints the admin page's link");
    let (admin_base, admin_token) = admin.split_once("#token=").expect("the link carries the token");
    let http = reqwest::Client::new();
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("/messenger.js"), "{html}");
    assert_eq!(http.get(format!("{page}messenger.js")).send().await.unwrap().status(), 200);
    let started: serde_json::Value = http
        .post(format!("{page}messenger/v1/conversations"))
        .json(&serde_json::json!({ "message": "How do I recalibrate the gripper?" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (started["conversation_id"].as_str().unwrap(), started["visitor_token"].as_str().unwrap());
    let mut answered = false;
    for _ in 0..100 {
        let m: serde_json::Value = http
            .get(format!("{page}messenger/v1/conversations/{id}/messages"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if m["messages"].as_array().unwrap().iter().any(|m| m["author"] == "agent") {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "the running daemon answers the chat");
    let admin_page = http.get(admin_base).send().await.unwrap().text().await.unwrap();
    assert!(admin_page.contains("Agent report"), "the admin page");
    let refused = http.get(format!("{admin_base}api/report")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the report needs the token");
    let report: serde_json::Value = http
        .get(format!("{admin_base}api/report"))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(report["overall"]["conversations"].as_u64().unwrap() >= 5, "{report}");
    assert!(report["charts"]["by_day"].as_str().unwrap().starts_with("<svg"), "{report}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_lists_case_owners_and_case_queues_and_checks_the_config() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path(), sim.url(), "Tier 2 Support");
    let config = config.to_str().unwrap();

    let users = casebridge(&["setup", "users", "--config", config]);
    let users = String::from_utf8_lossy(&users.stdout).to_string();
    for shown in ["fin@acme.example", "maria@acme.example", "admin@acme.example"] {
        assert!(users.contains(shown), "{users}");
    }
    for hidden in ["guest@acme.example", "chatter@acme.example", "former@acme.example", "jane@customer.example"] {
        assert!(!users.contains(hidden), "{hidden} cannot own cases: {users}");
    }
    let queues = casebridge(&["setup", "queues", "--config", config]);
    let queues = String::from_utf8_lossy(&queues.stdout).to_string();
    assert!(queues.contains("Tier 2 Support") && !queues.contains("Sales Leads"), "{queues}");

    let check = casebridge(&["setup", "check", "--config", config]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}{}", String::from_utf8_lossy(&check.stderr));
    assert!(
        stdout.contains("ok  agent user: Fin Agent") && stdout.contains("ok  handover target: Tier 2 Support"),
        "{stdout}"
    );

    let bad = demo_config(dir.path(), sim.url(), "Sales Leads");
    let check = casebridge(&["setup", "check", "--config", bad.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("does not support cases"), "{stderr}");

    // Read-only commands never create a store: before the daemon has run there is none.
    let errors = casebridge(&["errors", "--config", config]);
    assert_eq!(errors.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&errors.stderr).contains("there is no store"), "{errors:?}");
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!created.iter().any(|n| n.to_string_lossy().starts_with("store")), "a store appeared: {created:?}");
}

#[test]
fn a_bad_config_setting_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casebridge.yaml");
    std::fs::write(
        &path,
        "org:\n  auth: {grant: refresh_token, client_id: x, refresh_token: {env: X}}\nagent_user: a\nhandover: {default_target: q}\npoll:\n  interval: soon\n",
    )
    .unwrap();
    let out = casebridge(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("casebridge.yaml:6:") && stderr.contains("poll.interval: expected a duration"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_writes_a_scrubbed_fixture_that_rules_can_explain() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path(), sim.url(), "Tier 2 Support");
    let rules = root().join("examples/rules/b2b-hardware");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        &format!("rules_dir: {}/rules", env!("CARGO_MANIFEST_DIR")),
        &format!("rules_dir: {}", rules.display()),
    );
    std::fs::write(&config, text).unwrap();
    let fixture = dir.path().join("gripper.json");
    let case_id = sim.id_of("reset_case").unwrap();
    let out = casebridge(&[
        "record",
        &case_id,
        "--config",
        config.to_str().unwrap(),
        "--scrub",
        "--out",
        fixture.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(&fixture).unwrap();
    assert!(!written.contains("Jane") && !written.contains("jane@customer.example"), "{written}");
    assert!(written.contains("\"Product__c\": \"Gripper\""), "the rule set's fields are recorded: {written}");
    assert!(written.contains("I tried turning it off and on again."), "the conversation is recorded");

    let explain = casebridge(&[
        "rules",
        "explain",
        fixture.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--answer",
        "Hold the reset button for five seconds.",
        "--confidence",
        "0.9",
    ]);
    let stdout = String::from_utf8_lossy(&explain.stdout);
    assert!(explain.status.success(), "{stdout}{}", String::from_utf8_lossy(&explain.stderr));
    assert!(stdout.contains("handover: to Tier 2 Support by rule premium_second_question"), "{stdout}");

    let missing = casebridge(&["record", "500Dn0000000zzzAAA", "--config", config.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no case 500Dn0000000zzzAAA"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_check_with_a_config_checks_mappings_against_the_orgs_fields() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path(), sim.url(), "Tier 2 Support");
    let example = root().join("examples/rules/b2b-hardware");
    let ok = casebridge(&["rules", "check", example.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("the mappings fit the org"));

    // A copy with a typo in a custom field and a write to a read-only field.
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("mappings.yaml"),
        "kind: mappings\ninbound:\n  - attribute: tier\n    from: Account.Support_Tier_c\noutbound:\n  - field: CaseNumber\n    from: tier\n",
    )
    .unwrap();
    let bad = casebridge(&["rules", "check", rules.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("mappings.yaml:4:") && stderr.contains("did you mean Support_Tier__c?"), "{stderr}");
    assert!(stderr.contains("mappings.yaml:6:") && stderr.contains("Case.CaseNumber is read-only"), "{stderr}");

    // A handover target the org does not have: refused where it is written, with a suggestion.
    std::fs::remove_file(rules.join("mappings.yaml")).unwrap();
    std::fs::write(
        rules.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: escalate\n    when: asks_for_human(last_message)\n    target: Tier 3 Support\n    reason: r\n",
    )
    .unwrap();
    let bad = casebridge(&["rules", "check", rules.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("handover.yaml:5:") && stderr.contains("\"Tier 3 Support\""), "{stderr}");
    assert!(stderr.contains("did you mean Tier 2 Support?"), "{stderr}");
}

/// `rules explain` shows the whole decision the daemon would act on: the resolution step
/// after it included (the mappings run again once the answer awaits the customer).
#[test]
fn rules_explain_shows_what_the_resolution_step_writes() {
    let fixture = root().join("rules/tests/fixtures/email-firmware.json");
    let rules = root().join("rules");
    let out = casebridge(&[
        "rules",
        "explain",
        fixture.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--answer",
        "Power-cycle it.",
        "--confidence",
        "0.9",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("AI_Resolution__c = \"awaiting_customer\""), "{stdout}");
    assert!(
        stdout.contains("\"AI_Involved__c\":true") && stdout.contains("\"AI_Resolution__c\":\"awaiting_customer\""),
        "{stdout}"
    );
}
