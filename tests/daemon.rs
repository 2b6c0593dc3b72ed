//! The daemon end to end against the simulator: replies, follow-ups, no loops on its own
//! writes, handovers, email replies through a real SMTP exchange, and API-call economy.

mod common;

use casebridge::daemon::EventKind;
use casebridge::smtp_sink::SmtpSink;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn answers_new_cases_and_follow_ups_and_never_its_own_comments() {
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let agent_id = w.id("agent");
    let case_id = w
        .new_case(
            json!({ "Subject": "Gripper drifts after restart", "Description": "How do I recalibrate the gripper?" }),
        )
        .await;

    let report = daemon.cycle().await.unwrap();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
    let first = w.comments(&case_id).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["CreatedById"], json!(agent_id));
    assert_eq!(first[0]["IsPublished"], true);
    assert!(first[0]["CommentBody"].as_str().unwrap().contains("reset button"), "{}", first[0]["CommentBody"]);

    // The customer follows up through the portal.
    let jane = w.customer();
    jane.create(
        "CaseComment",
        &json!({ "ParentId": case_id, "CommentBody": "Thanks. Now the firmware update fails with error E42.", "IsPublished": true }),
    )
    .await
    .unwrap();
    daemon.cycle().await.unwrap();
    let second = w.comments(&case_id).await;
    assert_eq!(second.len(), 3);
    assert_eq!(second[2]["CreatedById"], json!(agent_id));
    assert!(second[2]["CommentBody"].as_str().unwrap().contains("E42"), "{}", second[2]["CommentBody"]);

    // Idle: nothing new to say, one API call a cycle.
    for _ in 0..3 {
        let report = daemon.cycle().await.unwrap();
        assert_eq!(report.api_calls, 1, "an idle cycle costs exactly one call");
    }
    assert_eq!(w.comments(&case_id).await.len(), 3, "no replies to its own comments");
}

#[tokio::test]
async fn hands_over_when_asked_and_when_it_cannot_answer() {
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let queue = w.id("support_queue");
    let asks = w
        .new_case(
            json!({ "Subject": "Gripper question", "Description": "Please let me talk to a human about my gripper." }),
        )
        .await;
    let unknown = w
        .new_case(json!({ "Subject": "Antarctica", "Description": "Do you deliver to research stations by zeppelin?" }))
        .await;
    let report = daemon.cycle().await.unwrap();
    for case_id in [&asks, &unknown] {
        assert!(
            report.events.iter().any(|e| &e.conversation_id == case_id && e.kind == EventKind::HandedOver),
            "{case_id}: {:?}",
            report.events
        );
        let case: Value = w.admin.get("Case", case_id, Some(&["OwnerId"])).await.unwrap();
        assert_eq!(case["OwnerId"], json!(queue));
        let notes = w.comments(case_id).await;
        assert_eq!(notes.len(), 1, "an internal note and no public reply");
        assert_eq!(notes[0]["IsPublished"], false);
        assert!(notes[0]["CommentBody"].as_str().unwrap().contains("handed this case over"));
    }
    // A follow-up on a handed-over case gets no AI reply.
    let jane = w.customer();
    jane.create(
        "CaseComment",
        &json!({ "ParentId": asks, "CommentBody": "Hello? How do I recalibrate?", "IsPublished": true }),
    )
    .await
    .unwrap();
    daemon.cycle().await.unwrap();
    assert_eq!(w.comments(&asks).await.len(), 2, "only the customer's comment was added");
}

#[tokio::test]
async fn email_origin_cases_get_a_threaded_email_and_an_email_record() {
    let w = World::new().await;
    let smtp = SmtpSink::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut daemon = w.daemon_with_smtp(smtp.addr()).await;
    let case_id = w
        .new_case(
            json!({ "Subject": "Firmware update failed", "Origin": "Email", "SuppliedEmail": "jane@customer.example" }),
        )
        .await;
    w.admin
        .create(
            "EmailMessage",
            &json!({
                "ParentId": case_id, "Incoming": true, "Status": "0", "Subject": "Firmware update failed",
                "FromAddress": "jane@customer.example", "ToAddress": "support@acme.example",
                "HtmlBody": "<p>The firmware update stopped at 40% with error <b>E42</b>.</p>",
                "MessageIdentifier": "<e42@customer.example>"
            }),
        )
        .await
        .unwrap();
    daemon.cycle().await.unwrap();

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "one email sent");
    let mail = &mails[0];
    assert_eq!(mail.to, ["jane@customer.example"]);
    assert_eq!(mail.from, "support@acme.example");
    assert_eq!(mail.header("In-Reply-To").as_deref(), Some("<e42@customer.example>"));
    assert!(mail.header("Subject").unwrap().contains("Firmware update failed"));
    assert!(mail.data.contains("E42"), "{}", mail.data);
    let message_id = mail.header("Message-ID").unwrap();

    let soql = format!(
        "SELECT Incoming, MessageIdentifier, ToAddress, Subject FROM EmailMessage WHERE ParentId = '{case_id}' AND Incoming = false"
    );
    let records: Vec<Value> = w.admin.query(soql).collect_all().await.unwrap();
    assert_eq!(records.len(), 1, "the reply is recorded on the case");
    assert_eq!(records[0]["MessageIdentifier"], json!(message_id));
    assert_eq!(records[0]["ToAddress"], "jane@customer.example");
    assert_eq!(w.comments(&case_id).await.len(), 1, "and posted as a comment");
}

#[tokio::test]
async fn a_case_reassigned_away_is_left_alone_and_resumes_when_assigned_back() {
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let jane = w.customer();
    let agent_id = w.id("agent");
    let case_id = w
        .new_case(json!({ "Subject": "Arm noise", "Description": "The arm makes a grinding noise. Lubrication?" }))
        .await;
    daemon.cycle().await.unwrap();
    assert_eq!(w.comments(&case_id).await.len(), 1);

    // A human takes the case; the customer writes again: no AI reply.
    w.admin.update("Case", &case_id, &json!({ "OwnerId": w.id("human") })).await.unwrap();
    jane.create(
        "CaseComment",
        &json!({ "ParentId": case_id, "CommentBody": "How often should I lubricate the joints?", "IsPublished": true }),
    )
    .await
    .unwrap();
    let report = daemon.cycle().await.unwrap();
    assert_eq!(w.comments(&case_id).await.len(), 2, "only the customer's comment");
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::AssignedAway),
        "{:?}",
        report.events
    );
    let conv = daemon.store().conversation(&case_id).unwrap().unwrap();
    assert!(matches!(conv.state, casebridge::model::ConversationState::AssignedAway { .. }));

    // Assigned back: the unanswered question gets its reply.
    w.admin.update("Case", &case_id, &json!({ "OwnerId": agent_id })).await.unwrap();
    let report = daemon.cycle().await.unwrap();
    let kinds: Vec<EventKind> = report.events.iter().filter(|e| e.conversation_id == case_id).map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Resumed, EventKind::Replied]);
    let all = w.comments(&case_id).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["CreatedById"], json!(agent_id));
}

#[tokio::test]
async fn mappings_read_case_fields_and_write_back_on_close() {
    let w = World::new().await;
    let rules = w.rules_dir();
    std::fs::write(
        rules.join("mappings.yaml"),
        "kind: mappings\ninbound:\n  - attribute: product\n    from: Product__c\noutbound:\n  - field: Score__c\n    expr: turns * 10\n    on: [close]\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("topics.yaml"),
        "kind: topics\ntopics:\n  - name: Grippers\n    when: attributes.product == \"Gripper\"\n",
    )
    .unwrap();
    let mut daemon = w.daemon_with_rules(load_rules(&rules)).await;
    let case_id = w.new_case(
        json!({ "Subject": "Gripper drifts", "Description": "How do I recalibrate the gripper?", "Product__c": "Gripper" }),
    )
    .await;
    daemon.cycle().await.unwrap();
    let conv = daemon.store().conversation(&case_id).unwrap().unwrap();
    assert_eq!(conv.attributes["product"], json!("Gripper"), "Product__c was read by the poll query");
    let soql = format!("SELECT Topic.Name FROM TopicAssignment WHERE EntityId = '{case_id}'");
    let topics: Vec<Value> = w.admin.query(soql).collect_all().await.unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0]["Topic"]["Name"], "Grippers");

    w.admin.update("Case", &case_id, &json!({ "Status": "Closed" })).await.unwrap();
    let report = daemon.cycle().await.unwrap();
    assert!(report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Closed));
    let case: Value = w.admin.get("Case", &case_id, Some(&["Score__c"])).await.unwrap();
    assert_eq!(case["Score__c"], json!(10.0), "the close-time mapping wrote the field");
}

/// A case whose newest customer comment is the 450th: past the first page of its comment
/// subquery (200), so the daemon must follow the child result's `nextRecordsUrl` to see it.
#[tokio::test]
async fn a_long_case_is_read_to_its_newest_comment() {
    use casebridge::sim::org::WriteCtx;
    let w = World::new().await;
    let mut daemon = w.daemon().await;
    let (admin_id, jane_id) = (w.id("admin"), w.id("jane_portal"));
    let (agent_id, contact_id) = (w.id("agent"), w.id("jane"));
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    let case_id = w.sim.with_org(|org| {
        let at = |user: &str, seconds: i64| WriteCtx {
            user_id: user.to_string(),
            now: start + chrono::Duration::seconds(seconds),
            allow_system_fields: false,
        };
        let case = json!({ "Subject": "Gripper", "Description": "How do I recalibrate the gripper?",
            "OwnerId": agent_id, "ContactId": contact_id, "Origin": "Web" });
        let case_id = org.create("Case", case.as_object().unwrap(), &at(&admin_id, 0)).unwrap();
        // A human agent has answered the description many times over…
        for n in 1..450 {
            let note = json!({ "ParentId": case_id, "CommentBody": format!("Still looking ({n})."), "IsPublished": true });
            org.create("CaseComment", note.as_object().unwrap(), &at(&admin_id, n)).unwrap();
        }
        // …and the customer's newest comment is the 450th.
        let last = json!({ "ParentId": case_id, "CommentBody": "Now the firmware update fails with error E42.", "IsPublished": true });
        org.create("CaseComment", last.as_object().unwrap(), &at(&jane_id, 450)).unwrap();
        case_id
    });

    let before = w.sim.api_requests().len();
    let report = daemon.cycle().await.unwrap();
    let cycle: Vec<_> = w.sim.api_requests()[before..].to_vec();
    assert!(
        report.events.iter().any(|e| e.conversation_id == case_id && e.kind == EventKind::Replied),
        "{:?}",
        report.events
    );
    let all = w.comments(&case_id).await;
    assert_eq!(all.len(), 451);
    assert_eq!(all[450]["CreatedById"], json!(agent_id));
    assert!(all[450]["CommentBody"].as_str().unwrap().contains("E42"), "{}", all[450]["CommentBody"]);

    // Paging implies one call (the poll's queries) and two child pages (200 inline, then 200 and 50).
    let soql = |q: &str| url::form_urlencoded::parse(q.as_bytes()).map(|(_, v)| v.into_owned()).collect::<String>();
    let reads: Vec<String> = cycle
        .iter()
        .filter(|r| {
            r.path.contains("/query/01g") || r.path.ends_with("/composite") || soql(&r.query).contains("FROM Case ")
        })
        .map(|r| r.path.clone())
        .collect();
    // (The reply's own composite write follows them.)
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert!(reads[0].ends_with("/composite") && reads[1..3].iter().all(|p| p.contains("/query/01g")), "{reads:?}");
    assert_eq!(report.api_calls as usize, cycle.len(), "the cycle counts the child pages it read");

    // `casebridge record` reads every comment too.
    let fixture = casebridge::record::record(&w.admin, &case_id, &agent_id, &[]).await.unwrap();
    let recorded = &fixture["case"]["CaseComments"];
    assert_eq!((recorded["records"].as_array().unwrap().len(), recorded["done"].clone()), (451, json!(true)));
}

#[tokio::test]
async fn a_handover_target_the_org_lacks_is_a_sync_error_and_the_case_still_reaches_a_person() {
    let w = World::new().await;
    let rules_dir = w.rules_dir();
    std::fs::write(
        rules_dir.join("handover.yaml"),
        "kind: handover\nrules:\n  - name: escalate\n    when: \"true\"\n    target: Tier 3 Support\n    reason: Needs a person.\n",
    )
    .unwrap();
    let mut daemon = w.daemon_with_rules(load_rules(&rules_dir)).await;
    let case_id = w.new_case(json!({ "Subject": "Help", "Description": "Anything" })).await;
    daemon.cycle().await.unwrap();
    let errors = daemon.store().sync_errors().unwrap();
    let error = errors.iter().find(|e| e.code == "HANDOVER_TARGET_NOT_FOUND").expect("a sync error names the target");
    assert_eq!(error.case_id.as_deref(), Some(case_id.as_str()));
    assert!(error.message.contains("escalate") && error.message.contains("Tier 3 Support"), "{}", error.message);
    let owner: Value = w.admin.get("Case", &case_id, Some(&["OwnerId"])).await.unwrap();
    assert_eq!(owner["OwnerId"], json!(w.sim.id_of("support_queue").unwrap_or_default()), "{owner}");
}

#[tokio::test]
async fn an_email_reply_decided_without_smtp_is_sent_once_smtp_is_configured_and_retried() {
    let w = World::new().await;
    let case_id = w.new_case(
        json!({ "Subject": "Firmware update failed", "Description": "The update fails with error E42.", "Origin": "Email", "SuppliedEmail": "jane@customer.example" }),
    )
    .await;
    // No SMTP server configured: the email reply becomes a sync error, with its action.
    let mut daemon = w.daemon().await;
    daemon.cycle().await.unwrap();
    let error = daemon.store().sync_errors().unwrap().into_iter().find(|e| e.code == "SMTP_NOT_CONFIGURED").unwrap();
    drop(daemon);

    // SMTP configured (a restart with the new config), and the admin retries the error.
    let smtp = SmtpSink::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut daemon = w.daemon_with_smtp(smtp.addr()).await;
    daemon.store().retry_error(error.id).unwrap().expect("the error exists");
    daemon.cycle().await.unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "the email went out");
    assert_eq!(mails[0].from, "support@acme.example", "with the sender configured now");
    assert_eq!(mails[0].to, ["jane@customer.example"]);
    assert!(daemon.store().sync_errors().unwrap().iter().all(|e| e.id != error.id), "the retried error is resolved");
    let soql = format!("SELECT FromAddress FROM EmailMessage WHERE ParentId = '{case_id}' AND Incoming = false");
    let records: Vec<Value> = w.admin.query(soql).collect_all().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["FromAddress"], "support@acme.example");
}
