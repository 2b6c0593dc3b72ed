//! What a real org does that a friendly simulator would hide, each switched on in the test
//! org (`tests/fixtures/org.yaml`) and met by casebridge: internal posts and draft emails
//! that must never count as a reply to the customer, assignment rules that would re-route
//! what casebridge assigns, duplicate rules, and new comments that need not bump their
//! case's stamp. (Internal Knowledge articles: `tests/knowledge_sync.rs`.)

mod common;

use casebridge::daemon::EventKind;
use casebridge::salesforce::{AssignmentRules, SubRequest};
use casebridge::sim::org::WriteCtx;
use chrono::Utc;
use common::*;
use serde_json::{Value, json};

/// Writes to the org as one of its users would from Salesforce's own UI (no API headers).
fn as_user(w: &World, key: &str, object: &str, body: Value) -> String {
    let ctx = WriteCtx { user_id: w.id(key), now: Utc::now(), allow_system_fields: false };
    w.sim.with_org(|org| org.create(object, body.as_object().unwrap(), &ctx).unwrap())
}

/// A person's post on the case feed is internal unless shared (Salesforce's default for an
/// internal user's record post), and a draft email was never sent: neither answers the
/// customer, neither is shown to the agent as the conversation, so the agent still replies.
#[tokio::test]
async fn internal_posts_and_draft_emails_are_no_reply_to_the_customer() {
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let case_id = w
        .new_case(
            json!({ "Subject": "Gripper drifts after restart", "Description": "How do I recalibrate the gripper?" }),
        )
        .await;
    // Before the agent sees it, a colleague notes something internal and drafts an email.
    as_user(
        &w,
        "human",
        "FeedItem",
        json!({ "ParentId": case_id, "Body": "Internal: customer is on the old firmware." }),
    );
    as_user(
        &w,
        "human",
        "EmailMessage",
        json!({ "ParentId": case_id, "Incoming": false, "Status": "5", "Subject": "Draft", "TextBody": "Draft reply, not sent." }),
    );
    as_user(
        &w,
        "human",
        "EmailMessage",
        json!({ "ParentId": case_id, "Incoming": false, "Status": "3", "Subject": "FYI", "ToAddress": "hugo@acme.example",
                "TextBody": "Internal: check the firmware logs." }),
    );
    let post = w.sim.with_org(|org| {
        org.all("FeedItem")
            .find(|f| f.str("ParentId") == Some(case_id.as_str()))
            .unwrap()
            .str("Visibility")
            .map(str::to_string)
    });
    assert_eq!(post.as_deref(), Some("InternalUsers"), "the simulator defaults as Salesforce does");
    let report = daemon.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
        "an internal post or a draft is no human answer: {:?}",
        report.events
    );
    let conversation = daemon.store().conversation(&case_id).unwrap().unwrap();
    assert!(
        conversation
            .parts
            .iter()
            .filter(|p| p.body.contains("old firmware") || p.body.contains("Draft reply"))
            .all(|p| !p.public)
    );

    // A post shared with the customer is a reply: the agent says nothing more.
    let follow_up = w
        .new_case(json!({ "Subject": "Gripper drifts again", "Description": "How do I recalibrate the gripper?" }))
        .await;
    as_user(
        &w,
        "human",
        "FeedItem",
        json!({ "ParentId": follow_up, "Body": "Hold SERVICE for ten seconds.", "Visibility": "AllUsers" }),
    );
    let report = daemon.cycle().await.unwrap();
    assert!(
        !report.events.iter().any(|e| e.conversation_id == follow_up && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
}

/// The test org's active assignment rule sends every Case it runs on back to the agent user
/// and every Lead to the admin. casebridge's writes say `Sforce-Auto-Assign: FALSE`, on
/// plain requests and on each composite subrequest, so owners stay as written; with
/// `assignment_rules: on_create` the rule picks a new record's owner, never an update's.
#[tokio::test]
async fn assignment_rules_never_move_what_casebridge_assigns_unless_asked_on_create() {
    let w = World::new().await;
    let queue = w.id("support_queue");
    let client = w.agent_client();
    let owner = |id: String| {
        let admin = w.admin.clone();
        async move { admin.get::<Value>("Case", &id, Some(&["OwnerId"])).await.unwrap()["OwnerId"].clone() }
    };
    let case_id = client.create("Case", &json!({ "Subject": "Route me", "OwnerId": queue })).await.unwrap();
    assert_eq!(owner(case_id.clone()).await, json!(queue), "a create keeps its owner");
    let subs = vec![SubRequest::update("h", "Case", &case_id, json!({ "OwnerId": w.id("human") }))];
    assert!(client.composite(false, subs).await.unwrap()[0].is_success());
    assert_eq!(owner(case_id.clone()).await, json!(w.id("human")), "a composite handover keeps its owner");

    // Without the header (a client that does not send it), the org's rule re-routes.
    let raw = reqwest::Client::new();
    let token = password_token(&raw, w.sim.url()).await["access_token"].as_str().unwrap().to_string();
    let url = format!("{}/services/data/v62.0/sobjects/Case/{case_id}", w.sim.url());
    let patched = raw.patch(&url).bearer_auth(&token).json(&json!({ "OwnerId": queue })).send().await.unwrap();
    assert_eq!(patched.status(), 204);
    assert_eq!(owner(case_id.clone()).await, json!(w.id("agent")), "the org's rule ran: back to the agent user");

    // on_create: the rule routes a new case, not an update.
    let credentials = casebridge::salesforce::Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(casebridge::model::Secret::new("test-secret")),
        refresh_token: casebridge::model::Secret::new("agent-refresh-token"),
    };
    let mut config = casebridge::salesforce::ClientConfig::new(w.sim.url(), credentials);
    config.assignment_rules = AssignmentRules::OnCreate;
    let routed = casebridge::salesforce::Client::new(config).unwrap();
    let made = routed.create("Case", &json!({ "Subject": "Route me", "OwnerId": queue })).await.unwrap();
    assert_eq!(owner(made.clone()).await, json!(w.id("agent")), "on a create the org's rule decides");
    routed.update("Case", &made, &json!({ "OwnerId": queue })).await.unwrap();
    assert_eq!(owner(made).await, json!(queue), "an update never runs it");
}

/// A duplicate rule refuses a second Lead with an email the org has, in Salesforce's shape.
#[tokio::test]
async fn a_duplicate_rule_refuses_a_second_lead_with_the_matching_records() {
    let w = World::new().await;
    let first = w
        .admin
        .create("Lead", &json!({ "LastName": "One", "Company": "A", "Email": "dup@leads.example" }))
        .await
        .unwrap();
    let e = w
        .admin
        .create("Lead", &json!({ "LastName": "Two", "Company": "B", "Email": "DUP@leads.example" }))
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), "DUPLICATES_DETECTED", "{e}");
    let raw = reqwest::Client::new();
    let token = password_token(&raw, w.sim.url()).await["access_token"].as_str().unwrap().to_string();
    let body: Value = raw
        .post(format!("{}/services/data/v62.0/sobjects/Lead", w.sim.url()))
        .bearer_auth(&token)
        .json(&json!({ "LastName": "Two", "Company": "B", "Email": "dup@leads.example" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let matched = &body[0]["duplicateResut"]["matchResults"][0]["matchRecords"][0]["record"]["Id"];
    assert_eq!(matched, &json!(first), "{body}");
}

/// A new Lead the org's duplicate rule refuses is linked to the lead it matched: the
/// conversation's key is written there (so its later writes reach it), nothing is made
/// twice, and a sync error says what happened.
#[tokio::test]
async fn a_lead_refused_as_a_duplicate_is_linked_to_the_lead_it_matched() {
    use casebridge::act::executor::Executor;
    use casebridge::model::Action;
    let w = World::new().await;
    let existing = as_user(
        &w,
        "admin",
        "Lead",
        json!({ "LastName": "Porter", "Company": "Initech", "Email": "bob@initech.example" }),
    );
    let store = w.store();
    let conversation = "msg-0000000000000000000000000001";
    let lead = |email: &str| Action::UpsertRecord {
        conversation_id: conversation.into(),
        object: "Lead".into(),
        key_field: "Casebridge_Conversation__c".into(),
        fields: [
            ("LastName".to_string(), json!("Visitor")),
            ("Company".to_string(), json!("[not provided]")),
            ("Email".to_string(), json!(email)),
        ]
        .into_iter()
        .collect(),
        key: None,
        update_only: false,
    };
    store.enqueue(lead("bob@initech.example")).unwrap();
    let mut executor = Executor::new(w.agent_client(), store.clone(), None, w.id("agent"));
    let report = executor.run_round().await.unwrap();
    assert_eq!(report.done, 1, "{report:?}");
    let leads: Vec<Value> = w
        .admin
        .query("SELECT Id, LastName, Casebridge_Conversation__c FROM Lead WHERE Email = 'bob@initech.example'")
        .collect_all()
        .await
        .unwrap();
    assert_eq!(leads.len(), 1, "no second lead: {leads:?}");
    assert_eq!(leads[0]["Id"], json!(existing));
    assert_eq!(leads[0]["Casebridge_Conversation__c"], json!(conversation), "linked by the conversation's key");
    assert_eq!(leads[0]["LastName"], "Porter", "the person's lead keeps its values");
    let errors = store.sync_errors().unwrap();
    let said = errors.iter().find(|e| e.code == "DUPLICATES_DETECTED").expect("a sync error says so");
    assert!(said.message.contains(&existing) && said.message.contains("linked"), "{}", said.message);

    // A later write by the conversation's key reaches the linked lead.
    let mut update = lead("bob@initech.example");
    if let Action::UpsertRecord { fields, update_only, .. } = &mut update {
        *fields = [("Rating".to_string(), json!("Warm"))].into_iter().collect();
        *update_only = true;
    }
    store.enqueue(update).unwrap();
    executor.run_round().await.unwrap();
    let rated: Value = w.admin.get("Lead", &existing, Some(&["Rating"])).await.unwrap();
    assert_eq!(rated["Rating"], "Warm");

    // A second conversation matching a lead another one made is not linked over it.
    let other = "msg-0000000000000000000000000002";
    let mut second = lead("bob@initech.example");
    if let Action::UpsertRecord { conversation_id, .. } = &mut second {
        *conversation_id = other.into();
    }
    store.enqueue(second).unwrap();
    executor.run_round().await.unwrap();
    let kept: Value = w.admin.get("Lead", &existing, Some(&["Casebridge_Conversation__c"])).await.unwrap();
    assert_eq!(kept["Casebridge_Conversation__c"], json!(conversation), "the first conversation keeps its lead");
    let errors = store.sync_errors().unwrap();
    assert!(errors.iter().any(|e| e.code == "DUPLICATES_DETECTED" && e.message.contains(conversation)), "{errors:?}");
}

/// The test org with `edit` applied to its seed text (written beside the fixture's key).
async fn org_with(edit: impl FnOnce(String) -> String) -> casebridge::sim::Simulator {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("jwt-test-key.pub.pem"), dir.path().join("jwt-test-key.pub.pem")).unwrap();
    let text = edit(std::fs::read_to_string(fixture("org.yaml")).unwrap());
    std::fs::write(dir.path().join("org.yaml"), text).unwrap();
    let seed = casebridge::sim::seed::load_file(&dir.path().join("org.yaml")).unwrap();
    casebridge::sim::Simulator::start("127.0.0.1:0".parse().unwrap(), seed, Default::default()).await.unwrap()
}

/// The REST API version is the newest both casebridge and the org offer: the test org's
/// current release offers more than casebridge speaks; an org on an older release is spoken
/// to in its newest; one older than casebridge needs is refused, naming what it offers.
#[tokio::test]
async fn the_api_version_is_the_newest_both_sides_offer() {
    let sim = start_sim(Default::default()).await;
    let client = agent_client(&sim);
    assert_eq!(client.available_versions().await.unwrap().last().unwrap().version, "68.0");
    assert_eq!(client.api_version(), casebridge::salesforce::versions::NEWEST_API_VERSION);
    assert!(sim.api_requests().iter().all(|r| r.path.contains("/v66.0/")), "every call in the chosen version");

    let older =
        org_with(|s| s.replace("daily_api_limit: 100000", "daily_api_limit: 100000\n  max_api_version: \"62.0\""))
            .await;
    let client = agent_client(&older);
    client.limits().await.unwrap();
    assert_eq!(client.api_version(), "62.0");

    let ancient =
        org_with(|s| s.replace("daily_api_limit: 100000", "daily_api_limit: 100000\n  max_api_version: \"60.0\""))
            .await;
    let e = agent_client(&ancient).limits().await.unwrap_err().to_string();
    assert!(e.contains("31.0 to 60.0") && e.contains("61.0 or later"), "{e}");

    // A pinned version the org lacks is refused; one it offers is used.
    let pinned = |version: &str| {
        let credentials = casebridge::salesforce::Credentials::RefreshToken {
            client_id: "test-app".into(),
            client_secret: Some(casebridge::model::Secret::new("test-secret")),
            refresh_token: casebridge::model::Secret::new("agent-refresh-token"),
        };
        let mut config = casebridge::salesforce::ClientConfig::new(older.url(), credentials);
        config.api_version = Some(version.into());
        casebridge::salesforce::Client::new(config).unwrap()
    };
    let e = pinned("66.0").limits().await.unwrap_err().to_string();
    assert!(e.contains("org.api_version") && e.contains("66.0"), "{e}");
    let ok = pinned("61.0");
    ok.limits().await.unwrap();
    assert_eq!(ok.api_version(), "61.0");
}

/// An org without Digital Experiences has no `FeedItem.Visibility`: the poll leaves posts
/// out (no customer can see one) instead of naming a field the org would refuse, and the
/// agent still answers, follow-ups included.
#[tokio::test]
async fn an_org_without_post_visibility_is_polled_without_posts() {
    let sim = org_with(|s| s.replace("digital_experiences: true", "digital_experiences: false")).await;
    let admin = user_client(&sim, "admin@test.example", "admin-pw");
    let agent = sim.id_of("agent").unwrap();
    let case_id = admin
        .create(
            "Case",
            &json!({ "Subject": "Gripper", "Description": "How do I recalibrate the gripper?", "OwnerId": agent }),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = casebridge::store::Store::open(&dir.path().join("store")).unwrap();
    let mut daemon = casebridge::daemon::Daemon::new(
        agent_client(&sim),
        store,
        demo_kb(),
        builtin_rules(),
        None,
        test_settings(None),
    )
    .await
    .unwrap();
    let report = daemon.cycle().await.unwrap();
    assert!(report.poll_error.is_none(), "{:?}", report.poll_error);
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
    let jane = user_client(&sim, "jane@customer.example", "jane-pw");
    jane.create(
        "CaseComment",
        &json!({ "ParentId": case_id, "CommentBody": "And the firmware shows E42?", "IsPublished": true }),
    )
    .await
    .unwrap();
    let report = daemon.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
    let soql: Vec<String> = sim.api_requests().iter().map(|r| r.query.clone()).collect();
    assert!(soql.iter().all(|q| !q.contains("Visibility")), "no query names the field the org lacks");
}

/// A customer's follow-up is answered whether or not the org bumps the case's stamp for a
/// new comment (Salesforce does not say): both behaviours, one API call when idle.
#[tokio::test]
async fn follow_ups_are_answered_whether_or_not_children_bump_their_case() {
    for touch in [false, true] {
        let w = World::new().await;
        w.sim.with_org(|org| org.behaviour.child_records_touch_parent = touch);
        let settings =
            casebridge::daemon::DaemonSettings { overlap: std::time::Duration::from_secs(1), ..test_settings(None) };
        let mut daemon = w.daemon_with_settings(settings).await;
        let case_id =
            w.new_case(json!({ "Subject": "Gripper", "Description": "How do I recalibrate the gripper?" })).await;
        daemon.cycle().await.unwrap();
        // Past the overlap (and the second it ends in), so only the follow-up can bring the
        // case back: the first query no longer reads it.
        tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
        daemon.cycle().await.unwrap();
        let idle = daemon.cycle().await.unwrap();
        assert_eq!(idle.rows, 0, "touch={touch}: an idle cycle reads no row");
        assert_eq!(idle.api_calls, 1, "touch={touch}: an idle cycle is one call");
        w.customer()
            .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": "The controller shows error E42 now.", "IsPublished": true }))
            .await
            .unwrap();
        let report = daemon.cycle().await.unwrap();
        assert!(
            report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
            "touch={touch}: {:?}",
            report.events
        );
    }
}

/// FeedItem answers a user without View All Data only a query by Id, as Salesforce does;
/// a case's feed (`CaseFeed`) is what casebridge reads posts through.
#[tokio::test]
async fn feed_items_are_read_through_the_cases_feed() {
    let w = World::new().await;
    let case_id = w.new_case(json!({ "Subject": "Feed" })).await;
    let post = as_user(&w, "human", "FeedItem", json!({ "ParentId": case_id, "Body": "posted" }));
    let client = w.agent_client();
    let e = client
        .query::<Value>(format!("SELECT Id FROM FeedItem WHERE ParentId = '{case_id}'"))
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), "MALFORMED_QUERY", "{e}");
    assert!(e.to_string().contains("FeedItem requires a filter by Id"), "{e}");
    let by_id: Vec<Value> =
        client.query(format!("SELECT Id FROM FeedItem WHERE Id = '{post}'")).collect_all().await.unwrap();
    assert_eq!(by_id.len(), 1);
    let feed: Vec<Value> = client
        .query(format!("SELECT Id, Body FROM CaseFeed WHERE ParentId = '{case_id}'"))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["Body"], "posted");
}
