//! `casebridge setup check`, the preflight, against the simulated org: the test and demo
//! orgs pass, and each thing an org can lack is caught (exit 1) or warned about by name.

mod common;

use std::path::{Path, PathBuf};

use casebridge::sim::org::WriteCtx;
use casebridge::sim::schema::FieldAccess;
use casebridge::sim::{Simulator, seed};
use common::*;
use serde_json::json;

/// Runs `casebridge setup check` on `config`: its exit code and everything it printed.
fn check(config: &Path) -> (Option<i32>, String) {
    let out = bin().args(["setup", "check", "--config"]).arg(config).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// A line of the output that starts with `start`, or the test fails showing them all.
fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line `{start}…` in:\n{text}"))
}

/// `config` with `setting` (one line, indented) added to its `org:` block.
fn with_org_setting(config: &Path, setting: &str) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap().replacen("org:\n", &format!("org:\n  {setting}\n"), 1);
    std::fs::write(config, text).unwrap();
    config.to_path_buf()
}

/// The test org's messenger: chats become cases, new visitors leads, and chats are logged
/// as Tasks, all upserted by `Casebridge_Conversation__c`.
const MESSENGER: &str = "messenger: {listen: '127.0.0.1:0', create_leads: true, log_tasks: true}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_org_passes_and_every_check_is_listed() {
    let w = World::new().await;
    let model = common::models::tiny_model(&w.path().join("model"));
    let agent = format!(
        "{{backend: knowledge_base, dir: {}, min_confidence: 0.35, embedding: {{model: {}}}}}",
        root().join("examples/demo/help-center").display(),
        model.display()
    );
    let (code, text) = check(&test_config_with_agent(w.path(), w.sim.url(), "1s", &agent, MESSENGER));
    assert_eq!(code, Some(0), "{text}");
    for start in [
        "ok  agent.embedding: the model in ",
        "ok  API versions: the org offers 31.0 to 68.0; casebridge needs 61.0 to 66.0 and uses 66.0",
        "ok  agent user: AI Agent",
        "ok  permission set Casebridge_Agent: assigned to agent@test.example",
        "ok  handover target: Support Queue",
        "ok  Case: 19 field(s) casebridge reads or writes",
        "ok  CaseComment: ",
        "ok  EmailMessage: ",
        "ok  FeedItem: ",
        "ok  Lead: 1 field(s)",
        "ok  Task: 1 field(s)",
        "ok  rule set: ",
        "ok  Case.Casebridge_Conversation__c: External ID, unique, case-insensitive",
        "ok  Lead.Casebridge_Conversation__c: External ID, unique, case-insensitive",
        "ok  Task.Casebridge_Conversation__c: External ID, unique, case-insensitive",
        "ok  FeedItem.Visibility: present",
        "ok  assignment rule Route_everything_to_the_bot on Case: active; casebridge sends Sforce-Auto-Assign: FALSE",
        "ok  duplicate rule Standard_Lead_Duplicate_Rule on Lead: active; a lead refused as a duplicate is linked",
    ] {
        line(&text, start);
    }
    assert!(!text.contains("\nwarn") && !text.contains("\nfail"), "{text}");
    assert!(text.contains(" ok, 0 warn, 0 fail\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_the_check_says_what_is_missed_and_a_broken_one_fails_by_file() {
    let w = World::new().await;
    let (code, text) = check(&w.config("1s", ""));
    assert_eq!(code, Some(0), "a warning is not a failure: {text}");
    let warn = line(&text, "warn agent.embedding: no sentence-embedding model");
    assert!(warn.contains("ranked by their words alone"), "{text}");
    assert!(text.contains("scripts/install-model"), "{text}");

    let model = common::models::tiny_model(&w.path().join("model"));
    std::fs::write(model.join("tokenizer.json"), "{").unwrap();
    let agent = format!(
        "{{backend: knowledge_base, dir: {}, embedding: {{model: {}}}}}",
        root().join("examples/demo/help-center").display(),
        model.display()
    );
    // Refused before the org is read, as `casebridge run` refuses to start: the file named.
    let (code, text) = check(&test_config_with_agent(w.path(), w.sim.url(), "1s", &agent, ""));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("agent.embedding: embedding model: ") && text.contains("model/tokenizer.json: not a tokenizer"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_org_passes_and_a_read_only_mapped_field_fails() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path(), sim.url(), "Tier 2 Support");
    let (code, text) = check(&config);
    assert_eq!(code, Some(0), "{text}");
    line(&text, "ok  permission set Casebridge_Agent: assigned to fin@acme.example");
    line(&text, "ok  rule set: ");

    // The shipped rules write AI_Resolution__c; field-level security makes it read-only.
    let fin = sim.id_of("fin").unwrap();
    sim.with_org(|org| org.behaviour.restrict(&fin, "Case.AI_Resolution__c", FieldAccess::Read));
    let (code, text) = check(&config);
    assert_eq!(code, Some(1), "{text}");
    let fail = line(&text, "fail rule set: ");
    assert!(fail.contains("AI_Resolution__c is read-only"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_set_not_assigned_fails_with_the_command_that_assigns_it() {
    let w = World::new().await;
    let (agent, human) = (w.id("agent"), w.id("human"));
    w.sim.with_org(|org| {
        let ctx = WriteCtx { user_id: agent.clone(), now: chrono::Utc::now(), allow_system_fields: true };
        let set = org.all("PermissionSet").find(|r| r.str("Name") == Some("Casebridge_Agent")).unwrap().id.clone();
        let held: Vec<String> = org
            .all("PermissionSetAssignment")
            .filter(|r| r.str("AssigneeId") == Some(agent.as_str()) && r.str("PermissionSetId") == Some(set.as_str()))
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(held.len(), 1, "the test org assigns Casebridge_Agent to the agent user");
        let moved = serde_json::Map::from_iter([("AssigneeId".to_string(), json!(human))]);
        org.update("PermissionSetAssignment", &held[0], &moved, &ctx).unwrap();
    });
    let (code, text) = check(&w.config("1s", ""));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail permission set Casebridge_Agent: not assigned to agent@test.example");
    line(
        &text,
        "     fix: sf org assign permset --name Casebridge_Agent --on-behalf-of agent@test.example --target-org ALIAS",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_hidden_from_the_agent_user_fails() {
    let w = World::new().await;
    let agent = w.id("agent");
    w.sim.with_org(|org| org.behaviour.restrict(&agent, "Case.SuppliedEmail", FieldAccess::Hidden));
    // As in Salesforce: the agent user's describe leaves it out and its SOQL is refused;
    // the admin still sees it.
    let describe = w.agent_client().describe("Case").await.unwrap();
    assert!(describe.field("SuppliedEmail").is_none());
    let e = w.agent_client().query::<serde_json::Value>("SELECT SuppliedEmail FROM Case").collect_all().await;
    assert_eq!(e.unwrap_err().error_code(), "INVALID_FIELD");
    assert!(w.admin.describe("Case").await.unwrap().field("SuppliedEmail").is_some());

    let (code, text) = check(&w.config("1s", ""));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail Case.SuppliedEmail: missing, or hidden from the agent user by field-level security");
    assert!(!text.contains("ok  Case: "), "no ok for Case: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_field_casebridge_writes_fails() {
    let w = World::new().await;
    let agent = w.id("agent");
    w.sim.with_org(|org| org.behaviour.restrict(&agent, "Case.OwnerId", FieldAccess::Read));
    let described = w.agent_client().describe("Case").await.unwrap();
    let owner = described.field("OwnerId").unwrap();
    assert!(!owner.updateable && !owner.createable, "read-only in the agent user's describe");
    let case_id = w.new_case(json!({ "Subject": "Help" })).await;
    let e = w.agent_client().update("Case", &case_id, &json!({ "OwnerId": w.id("human") })).await.unwrap_err();
    assert_eq!(e.error_code(), "INVALID_FIELD_FOR_INSERT_UPDATE");

    let (code, text) = check(&w.config("1s", ""));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail Case.OwnerId: read-only to the agent user, and casebridge changes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_unique_task_external_id_fails() {
    let w = World::new().await;
    w.sim.with_org(|org| {
        let task = org.schema.object_mut("Task").unwrap();
        task.field_mut("Casebridge_Conversation__c").unwrap().unique = false;
    });
    let (code, text) = check(&w.config("1s", MESSENGER));
    assert_eq!(code, Some(1), "{text}");
    let fail = line(&text, "fail Task.Casebridge_Conversation__c: ");
    assert!(fail.contains("upserting Tasks by a non-unique External ID needs View All Data"), "{text}");
    // Without the messenger nothing is upserted by it.
    let (code, text) = check(&w.config("1s", ""));
    assert_eq!(code, Some(0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_visibility_on_feed_items_warns_and_fails_feed_replies() {
    let w = World::new().await;
    w.sim.with_org(|org| org.schema.without_digital_experiences());
    let (code, text) = check(&w.config("1s", ""));
    assert_eq!(code, Some(0), "a warning alone passes: {text}");
    let warn = line(&text, "warn FeedItem.Visibility: missing");
    assert!(warn.contains("feed posts are treated as internal, and replies cannot go to the feed"), "{text}");

    let (code, text) = check(&w.config("1s", "reply: {channel: feed}\n"));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail FeedItem.Visibility: missing");
    line(&text, "ok  Case feed tracking: on");
    w.sim.with_org(|org| org.schema.object_mut("Case").unwrap().feed_enabled = false);
    let (_, text) = check(&w.config("1s", "reply: {channel: feed}\n"));
    line(&text, "fail Case feed tracking: off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_assignment_rule_warns_when_it_may_route_creates() {
    let w = World::new().await;
    let config = with_org_setting(&w.config("1s", ""), "assignment_rules: on_create");
    let (code, text) = check(&config);
    assert_eq!(code, Some(0), "{text}");
    let warn = line(&text, "warn assignment rule Route_everything_to_the_bot on Case: active");
    assert!(warn.contains("org.assignment_rules: on_create"), "{text}");
    line(&text, "     fix: make sure Route_everything_to_the_bot never routes to the agent user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_on_too_old_a_release_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("org.yaml")).unwrap().replacen(
        "org:\n",
        "org:\n  max_api_version: '60.0'\n",
        1,
    );
    std::fs::write(dir.path().join("org.yaml"), text).unwrap();
    std::fs::copy(fixture("jwt-test-key.pub.pem"), dir.path().join("jwt-test-key.pub.pem")).unwrap();
    let seed = seed::load_file(&dir.path().join("org.yaml")).unwrap();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), seed, Default::default()).await.unwrap();
    let (code, text) = check(&test_config(dir.path(), sim.url(), "1s", ""));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail API versions: the org offers 31.0 to 60.0; casebridge needs 61.0 to 66.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_knowledge_needs_its_object_body_and_channel_fields() {
    let w = World::new().await;
    let help = root().join("examples/demo/help-center");
    let agent = |body: &str| {
        format!(
            "{{backend: knowledge_base, dir: {}, salesforce_knowledge: {{body_fields: [{body}], article_url: 'https://help.example/{{UrlName}}'}}}}",
            help.display()
        )
    };
    let config = |body: &str| test_config_with_agent(w.path(), w.sim.url(), "1s", &agent(body), "");
    let (code, text) = check(&config("Answer__c"));
    assert_eq!(code, Some(0), "{text}");
    line(&text, "ok  permission set Casebridge_Knowledge: assigned to agent@test.example");
    line(&text, "ok  Knowledge__kav: ");

    let (code, text) = check(&config("Answer__c, Details__c"));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail Knowledge__kav.Details__c: missing");

    // The default channels are pkb and csp: a channel field the agent user cannot see fails.
    let id = w.id("agent");
    w.sim.with_org(|org| org.behaviour.restrict(&id, "Knowledge__kav.IsVisibleInCsp", FieldAccess::Hidden));
    let (code, text) = check(&config("Answer__c"));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail Knowledge__kav.IsVisibleInCsp: missing");

    // An org without Lightning Knowledge.
    let text = std::fs::read_to_string(config("Answer__c")).unwrap();
    std::fs::write(w.path().join("casebridge.yaml"), text.replace("body_fields:", "object: Help__kav, body_fields:"))
        .unwrap();
    let (code, text) = check(&w.path().join("casebridge.yaml"));
    assert_eq!(code, Some(1), "{text}");
    line(&text, "fail Help__kav: cannot be described");
}
