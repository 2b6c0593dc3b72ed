//! The Salesforce client against the simulator: sign-in grants, session renewal, SOQL and
//! paging, sObjects, composite, errors, retries, and API-limit handling.

mod common;

use std::time::Duration;

use casebridge::model::Secret;
use casebridge::salesforce::client::{COMPOSITE_MAX, QueryResult};
use casebridge::salesforce::soql::{Filter, Select, like_literal};
use casebridge::salesforce::{ClientConfig, Credentials, SalesforceError, SubRequest};
use casebridge::sim::SimOptions;
use chrono::{Duration as ChronoDuration, Utc};
use common::*;
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

#[tokio::test]
async fn every_grant_signs_in_as_its_user() {
    let sim = start_sim(SimOptions::default()).await;
    let agent = sim.id_of("agent").unwrap();
    let pem = std::fs::read_to_string(fixture("jwt-test-key.pem")).unwrap();
    let grants = [
        Credentials::RefreshToken {
            client_id: "test-app".into(),
            client_secret: Some(Secret::new("test-secret")),
            refresh_token: Secret::new("agent-refresh-token"),
        },
        Credentials::ClientCredentials { client_id: "test-app".into(), client_secret: Secret::new("test-secret") },
        Credentials::JwtBearer {
            client_id: "test-app".into(),
            username: "agent@test.example".into(),
            private_key_pem: Secret::new(pem),
            audience: "https://login.salesforce.com".into(),
        },
        password_credentials("agent@test.example", "agent-pw"),
    ];
    for credentials in grants {
        let label = format!("{credentials:?}");
        let client = client_with(&sim, credentials);
        let session = client.session().await.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(session.user_id(), Some(agent.as_str()), "{label}");
        assert_eq!(session.instance_url, sim.url());
        // The token works for API calls, and the records it creates are the agent's.
        let id = client.create("Account", &json!({ "Name": "Signed in" })).await.unwrap();
        let row: Value = client.get("Account", &id, Some(&["CreatedById"])).await.unwrap();
        assert_eq!(row["CreatedById"], json!(agent), "{label}");
    }
}

#[tokio::test]
async fn refused_credentials_keep_the_oauth_error() {
    let sim = start_sim(SimOptions::default()).await;
    let cases = [
        (
            Credentials::ClientCredentials { client_id: "test-app".into(), client_secret: Secret::new("wrong") },
            "invalid_client",
        ),
        (
            Credentials::ClientCredentials { client_id: "nobody".into(), client_secret: Secret::new("x") },
            "invalid_client_id",
        ),
        (
            Credentials::RefreshToken {
                client_id: "test-app".into(),
                client_secret: None,
                refresh_token: Secret::new("inactive-refresh-token"),
            },
            "invalid_grant",
        ),
        (password_credentials("agent@test.example", "wrong-password"), "invalid_grant"),
    ];
    for (credentials, code) in cases {
        let err = client_with(&sim, credentials).session().await.unwrap_err();
        assert!(matches!(err, SalesforceError::Auth { status: 400, .. }), "{err:?}");
        assert_eq!(err.error_code(), code);
        assert!(!err.is_transient());
    }
    // A JWT signed by another key is refused.
    let other_key = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
    let err = client_with(
        &sim,
        Credentials::JwtBearer {
            client_id: "test-app".into(),
            username: "agent@test.example".into(),
            private_key_pem: Secret::new(other_key),
            audience: "https://login.salesforce.com".into(),
        },
    )
    .session()
    .await
    .unwrap_err();
    assert!(matches!(err, SalesforceError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn token_is_cached_and_an_expired_session_is_renewed_once() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    for _ in 0..3 {
        client.describe("Case").await.unwrap();
    }
    let log = sim_requests(&sim).await;
    assert_eq!(log["token_requests"].as_array().unwrap().len(), 1, "one sign-in for three calls");

    // Every token dies after each call: each later call gets one 401, signs in again, and
    // succeeds on its one retry. (The counter starts when the fault is set.)
    set_faults(&sim, json!({ "expire_sessions_every": 1 })).await;
    reqwest::Client::new().delete(format!("{}/__sim/requests", sim.url())).send().await.unwrap();
    for _ in 0..3 {
        client.describe("Case").await.unwrap();
    }
    let log = sim_requests(&sim).await;
    let statuses: Vec<u64> =
        log["requests"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200, 401, 200, 401, 200]);
    assert_eq!(log["token_requests"].as_array().unwrap().len(), 2, "one sign-in per expired session");
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CaseRow {
    id: String,
    subject: String,
    contact: Option<ContactRef>,
    case_comments: Option<QueryResult<CommentRow>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContactRef {
    email: String,
    account: Option<AccountRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AccountRef {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommentRow {
    comment_body: String,
}

#[tokio::test]
async fn query_with_relationships_children_and_escaped_literals() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    let since = Utc::now() - ChronoDuration::hours(2);
    let soql = Select::new(["Id", "Subject", "Contact.Email", "Contact.Account.Name"], "Case")
        .with_children(Select::new(["CommentBody"], "CaseComments").order_by("CreatedDate", false))
        .filter(Filter::eq("OwnerId", sim.id_of("agent").unwrap()))
        .filter(Filter::gt("SystemModstamp", since))
        .filter(Filter::eq("Contact.Account.Name", "Acme O'Brien & Co"))
        .build()
        .unwrap();
    let rows: Vec<CaseRow> = client.query(soql).collect_all().await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.id, sim.id_of("case1").unwrap());
    assert_eq!(row.subject, "Printer on fire");
    let contact = row.contact.as_ref().unwrap();
    assert_eq!(contact.email, "jane@customer.example");
    assert_eq!(contact.account.as_ref().unwrap().name, "Acme O'Brien & Co");
    let comments = row.case_comments.as_ref().unwrap();
    assert_eq!(comments.records[0].comment_body, "Still burning");

    // A value crafted to break out of its literal matches nothing instead.
    let hostile = Select::new(["Id"], "Case").filter(Filter::eq("Subject", "x' OR Subject != 'x")).build().unwrap();
    assert!(client.query::<Value>(hostile).collect_all().await.unwrap().is_empty());
    // LIKE with escaped wildcards.
    let like = Select::new(["Id"], "Account").filter(Filter::like("Name", &format!("{}%", like_literal("Acme O'B"))));
    assert_eq!(client.query::<Value>(like.build().unwrap()).collect_all().await.unwrap().len(), 1);
    // No comments: the child relationship comes back as null.
    let id = client.create("Case", &json!({ "Subject": "quiet" })).await.unwrap();
    let soql = format!("SELECT Id, Subject, (SELECT CommentBody FROM CaseComments) FROM Case WHERE Id = '{id}'");
    let rows: Vec<CaseRow> = client.query(soql).collect_all().await.unwrap();
    assert!(rows[0].case_comments.is_none() && rows[0].contact.is_none());
}

#[tokio::test]
async fn paging_reads_thousands_of_rows_one_page_at_a_time() {
    let sim = start_sim(SimOptions { batch_size: 500, ..Default::default() }).await;
    let admin = sim.id_of("admin").unwrap();
    sim.with_org(|org| {
        let ctx =
            casebridge::sim::org::WriteCtx { user_id: admin.clone(), now: Utc::now(), allow_system_fields: false };
        for i in 0..4_499 {
            let body = json!({ "Subject": format!("bulk {i}") });
            org.create("Case", body.as_object().unwrap(), &ctx).unwrap();
        }
    });
    let client = agent_client(&sim);
    reqwest::Client::new().delete(format!("{}/__sim/requests", sim.url())).send().await.unwrap();

    let mut pages = client.query::<Value>("SELECT Id, Subject FROM Case ORDER BY CreatedDate");
    let mut seen = std::collections::HashSet::new();
    let mut page_count = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        assert!(page.len() <= 500, "a page holds at most the batch size");
        page_count += 1;
        for row in page {
            assert!(seen.insert(row["Id"].as_str().unwrap().to_string()), "no row twice");
        }
    }
    assert_eq!(pages.total_size(), Some(4_500));
    assert_eq!(seen.len(), 4_500);
    assert_eq!(page_count, 9);
    let log = sim_requests(&sim).await;
    assert_eq!(log["total"], json!(9), "one API call per page");

    // The same through the row stream.
    let rows: Vec<Value> = client.query("SELECT Id FROM Case").into_stream().try_collect().await.unwrap();
    assert_eq!(rows.len(), 4_500);
}

#[tokio::test]
async fn sobject_lifecycle_with_15_and_18_character_ids() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    let id = client
        .create(
            "Case",
            &json!({ "Subject": "New widget", "Product__c": "Arm", "ContactId": sim.id_of("jane").unwrap() }),
        )
        .await
        .unwrap();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("500"));
    let row: Value =
        client.get("Case", &id[..15], Some(&["Subject", "Status", "IsClosed", "CaseNumber"])).await.unwrap();
    assert_eq!(row["Subject"], "New widget");
    assert_eq!(row["Status"], "New", "picklist default applied");
    assert_eq!(row["IsClosed"], false);
    assert!(row["CaseNumber"].as_str().unwrap().len() == 8);

    client.update("Case", &id, &json!({ "Status": "Closed" })).await.unwrap();
    let row: Value = client.get("Case", &id, None).await.unwrap();
    assert_eq!(row["IsClosed"], true);
    assert!(row["ClosedDate"].is_string());

    client.delete("Case", &id).await.unwrap();
    let err = client.get::<Value>("Case", &id, None).await.unwrap_err();
    assert_eq!((err.status(), err.error_code()), (Some(404), "ENTITY_IS_DELETED"));
    let soql = format!("SELECT Id, IsDeleted FROM Case WHERE Id = '{id}'");
    assert!(client.query::<Value>(soql.clone()).collect_all().await.unwrap().is_empty());
    let deleted: Vec<Value> = client.query_all(soql).collect_all().await.unwrap();
    assert_eq!(deleted[0]["IsDeleted"], true);
    let err = client.get::<Value>("Case", "500Dn0000000zzzAAA", None).await.unwrap_err();
    assert_eq!((err.status(), err.error_code()), (Some(404), "NOT_FOUND"));
}

#[tokio::test]
async fn a_comment_bumps_its_case_systemmodstamp_when_the_org_does() {
    let sim = start_sim(SimOptions::default()).await;
    sim.with_org(|org| org.behaviour.child_records_touch_parent = true);
    let client = agent_client(&sim);
    let case_id = sim.id_of("case1").unwrap();
    let before: Value = client.get("Case", &case_id, Some(&["SystemModstamp"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    client
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": "on it", "IsPublished": true }))
        .await
        .unwrap();
    let after: Value = client.get("Case", &case_id, Some(&["SystemModstamp", "LastModifiedById"])).await.unwrap();
    assert!(after["SystemModstamp"].as_str() > before["SystemModstamp"].as_str());
    assert_eq!(after["LastModifiedById"], json!(sim.id_of("agent").unwrap()));
}

#[tokio::test]
async fn validation_errors_are_typed_and_never_retried() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    let case_id = sim.id_of("case1").unwrap();
    let too_long = "é".repeat(2001); // 2,001 characters but 4,002 bytes: over CommentBody's 4,000 bytes.
    let cases: Vec<(&str, Value, &str, Vec<&str>)> = vec![
        (
            "CaseComment",
            json!({ "ParentId": case_id, "CommentBody": too_long }),
            "STRING_TOO_LONG",
            vec!["CommentBody"],
        ),
        ("CaseComment", json!({ "CommentBody": "orphan" }), "REQUIRED_FIELD_MISSING", vec!["ParentId"]),
        ("Case", json!({ "Subjekt": "typo" }), "INVALID_FIELD", vec![]),
        ("Case", json!({ "CaseNumber": "1" }), "INVALID_FIELD_FOR_INSERT_UPDATE", vec!["CaseNumber"]),
        ("Case", json!({ "Product__c": "Spaceship" }), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", vec!["Product__c"]),
        ("Case", json!({ "ContactId": "003Dn0000000zzzAAA" }), "INVALID_CROSS_REFERENCE_KEY", vec![]),
        ("Case", json!({ "OwnerId": sim.id_of("lead_queue").unwrap() }), "FIELD_INTEGRITY_EXCEPTION", vec!["OwnerId"]),
        ("Case", json!({ "OwnerId": sim.id_of("gone").unwrap() }), "INACTIVE_OWNER_OR_USER", vec![]),
        ("Contact", json!({ "LastName": "X", "Email": "not-an-email" }), "INVALID_EMAIL_ADDRESS", vec!["Email"]),
        ("Case", json!({ "IsEscalated": "perhaps" }), "JSON_PARSER_ERROR", vec![]),
    ];
    for (object, body, code, fields) in cases {
        reqwest::Client::new().delete(format!("{}/__sim/requests", sim.url())).send().await.unwrap();
        let err = client.create(object, &body).await.unwrap_err();
        let SalesforceError::Api { status, errors } = &err else { panic!("{code}: {err:?}") };
        assert_eq!(*status, 400, "{code}");
        assert_eq!(errors[0].error_code, code, "{}", errors[0].message);
        assert_eq!(errors[0].fields, fields, "{code}");
        assert!(!err.is_transient());
        assert_eq!(sim_requests(&sim).await["total"], json!(1), "{code} was sent once");
    }
    // A queue that supports cases may own one.
    client.update("Case", &case_id, &json!({ "OwnerId": sim.id_of("support_queue").unwrap() })).await.unwrap();
    let bad_soql = client.query::<Value>("SELECT Id FROM Case WHERE").collect_all().await.unwrap_err();
    assert_eq!(bad_soql.error_code(), "MALFORMED_QUERY");
    assert!(bad_soql.message().contains("ERROR at Row:1:Column:26"), "{}", bad_soql.message());
    let bad_type = client.query::<Value>("SELECT Id FROM Cases").collect_all().await.unwrap_err();
    assert_eq!(bad_type.error_code(), "INVALID_TYPE");
}

#[tokio::test]
async fn composite_resolves_references_and_reports_each_result() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    let results = client
        .composite(
            false,
            vec![
                SubRequest::create("newCase", "Case", json!({ "Subject": "From composite" })),
                SubRequest::create(
                    "note",
                    "CaseComment",
                    json!({ "ParentId": "@{newCase.id}", "CommentBody": "hello" }),
                ),
                SubRequest::create("bad", "CaseComment", json!({ "ParentId": "@{newCase.id}", "Bogus": 1 })),
                SubRequest::update("dependsOnBad", "CaseComment", "@{bad.id}", json!({ "CommentBody": "x" })),
                SubRequest::query(
                    "check",
                    "SELECT Id, (SELECT CommentBody FROM CaseComments) FROM Case WHERE Subject = 'From composite'",
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(results.iter().map(|r| r.http_status_code).collect::<Vec<_>>(), vec![201, 201, 400, 400, 200]);
    assert_eq!(results[2].result().unwrap_err().error_code(), "INVALID_FIELD");
    assert_eq!(results[3].result().unwrap_err().error_code(), "PROCESSING_HALTED");
    let check = results[4].result().unwrap().unwrap();
    assert_eq!(check["records"][0]["Id"], json!(results[0].created_id().unwrap()));
    assert_eq!(check["records"][0]["CaseComments"]["records"][0]["CommentBody"], "hello");
    assert_eq!(sim_requests(&sim).await["total"], json!(1), "a composite call is one API call");
}

#[tokio::test]
async fn composite_all_or_none_rolls_back_everything() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    let case_id = sim.id_of("case1").unwrap();
    let results = client
        .composite(
            true,
            vec![
                SubRequest::create("c", "Case", json!({ "Subject": "Rolled back" })),
                SubRequest::update("u", "Case", &case_id, json!({ "Subject": "Changed" })),
                SubRequest::create(
                    "bad",
                    "CaseComment",
                    json!({ "ParentId": "@{c.id}", "CommentBody": "x".repeat(4001) }),
                ),
            ],
        )
        .await
        .unwrap();
    let codes: Vec<String> = results.iter().map(|r| r.result().unwrap_err().error_code().to_string()).collect();
    assert_eq!(codes, vec!["PROCESSING_HALTED", "PROCESSING_HALTED", "STRING_TOO_LONG"]);
    let rolled =
        client.query::<Value>("SELECT Id FROM Case WHERE Subject = 'Rolled back'").collect_all().await.unwrap();
    assert!(rolled.is_empty());
    let row: Value = client.get("Case", &case_id, Some(&["Subject"])).await.unwrap();
    assert_eq!(row["Subject"], "Printer on fire");

    let too_many: Vec<SubRequest> =
        (0..=COMPOSITE_MAX).map(|i| SubRequest::get(&format!("r{i}"), "Case", &case_id)).collect();
    let err = client.composite(false, too_many).await.unwrap_err();
    assert!(matches!(err, SalesforceError::Config(_)));
}

#[tokio::test]
async fn outages_are_retried_with_backoff_and_creates_are_not_duplicated() {
    let sim = start_sim(SimOptions::default()).await;
    let mut config = ClientConfig::new(
        sim.url(),
        Credentials::RefreshToken {
            client_id: "test-app".into(),
            client_secret: Some(Secret::new("test-secret")),
            refresh_token: Secret::new("agent-refresh-token"),
        },
    );
    config.retry = fast_retry();
    config.retry.max_attempts = 30;
    let client = casebridge::salesforce::Client::new(config).unwrap();
    client.session().await.unwrap();
    set_faults(&sim, json!({ "error_rate": 0.3 })).await;
    for i in 0..20 {
        client.create("Account", &json!({ "Name": format!("retry-{i}") })).await.unwrap();
        client.describe("Account").await.unwrap();
    }
    set_faults(&sim, json!({})).await;
    let rows = client.query::<Value>("SELECT Id FROM Account WHERE Name LIKE 'retry-%'").collect_all().await.unwrap();
    assert_eq!(rows.len(), 20, "each create applied exactly once");
    let log = sim_requests(&sim).await;
    let unavailable = log["requests"].as_array().unwrap().iter().filter(|r| r["status"] == 503).count();
    assert!(unavailable > 0, "the fault was injected");
}

#[tokio::test]
async fn a_timed_out_create_is_not_resent_but_a_read_is() {
    let sim = start_sim(SimOptions::default()).await;
    let mut config = ClientConfig::new(
        sim.url(),
        Credentials::RefreshToken {
            client_id: "test-app".into(),
            client_secret: None,
            refresh_token: Secret::new("agent-refresh-token"),
        },
    );
    config.retry = fast_retry();
    config.retry.max_attempts = 3;
    config.timeout = Duration::from_millis(150);
    let client = casebridge::salesforce::Client::new(config).unwrap();
    client.session().await.unwrap();
    set_faults(&sim, json!({ "latency_ms": 400 })).await;
    reqwest::Client::new().delete(format!("{}/__sim/requests", sim.url())).send().await.unwrap();

    let err = client.create("Account", &json!({ "Name": "maybe" })).await.unwrap_err();
    assert!(matches!(err, SalesforceError::Transport { .. }), "{err:?}");
    let err = client.describe("Account").await.unwrap_err();
    assert!(matches!(err, SalesforceError::Transport { .. }), "{err:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let log = sim_requests(&sim).await;
    let methods: Vec<&str> =
        log["requests"].as_array().unwrap().iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods.iter().filter(|m| **m == "POST").count(), 1, "the create went out once: {methods:?}");
    assert_eq!(methods.iter().filter(|m| **m == "GET").count(), 3, "the read was tried three times: {methods:?}");
    // Salesforce applied the create although the client gave up on it: resending it
    // blindly would have made two.
    set_faults(&sim, json!({})).await;
    let made = client.query::<Value>("SELECT Id FROM Account WHERE Name = 'maybe'").collect_all().await.unwrap();
    assert_eq!(made.len(), 1);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_after_bounded_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = ClientConfig::new(url, password_credentials("a", "b"));
    config.retry = fast_retry();
    let client = casebridge::salesforce::Client::new(config).unwrap();
    let started = std::time::Instant::now();
    let err = client.session().await.unwrap_err();
    assert!(matches!(err, SalesforceError::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn usage_is_tracked_and_an_exhausted_limit_holds_calls() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    client.describe("Case").await.unwrap();
    let usage = client.api_usage().unwrap();
    assert_eq!((usage.used, usage.max), (1, 100_000));
    let limits = client.limits().await.unwrap();
    assert_eq!(limits["DailyApiRequests"].max, 100_000);
    assert_eq!(limits["DailyApiRequests"].remaining, 100_000 - 2);

    set_faults(&sim, json!({ "daily_api_limit": 4 })).await;
    client.describe("Case").await.unwrap();
    client.describe("Case").await.unwrap();
    assert_eq!(client.api_usage().unwrap().remaining(), 0);
    let err = client.describe("Case").await.unwrap_err();
    assert!(matches!(err, SalesforceError::LimitExceeded { .. }), "{err:?}");
    assert_eq!(err.error_code(), "REQUEST_LIMIT_EXCEEDED");
    let sent = sim_requests(&sim).await["total"].clone();
    // Held: the next calls fail at once, without reaching Salesforce.
    for _ in 0..5 {
        let err = client.describe("Case").await.unwrap_err();
        assert!(matches!(err, SalesforceError::LimitExceeded { .. }));
    }
    assert_eq!(sim_requests(&sim).await["total"], sent);
}

#[tokio::test]
async fn describe_reports_field_metadata() {
    let sim = start_sim(SimOptions::default()).await;
    let client = agent_client(&sim);
    let case = client.describe("Case").await.unwrap();
    let product = case.field("Product__c").unwrap();
    assert_eq!(product.kind, "picklist");
    assert!(product.restricted_picklist);
    assert_eq!(product.picklist_values.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), vec!["Arm", "Gripper"]);
    let number = case.field("CaseNumber").unwrap();
    assert!(!number.createable && !number.updateable);
    assert!(case.child_relationships.iter().any(|c| c.relationship_name.as_deref() == Some("CaseComments")));
    let comment = client.describe("CaseComment").await.unwrap();
    assert_eq!(comment.field("CommentBody").unwrap().length, 4000);
    let err = client.describe("NoSuchObject").await.unwrap_err();
    assert_eq!(err.error_code(), "NOT_FOUND");
}
