//! The simulator over raw HTTP: what any Salesforce client sees on the wire — SOQL
//! semantics and errors, audit fields, the limit header, auth edges, and the `/__sim/`
//! control API.

mod common;

use std::time::{Duration, Instant};

use casebridge::sim::SimOptions;
use common::*;
use serde_json::{Value, json};

/// A raw HTTP caller signed in as the agent user.
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    limit_info: Option<String>,
    body: Value,
}

impl Api {
    async fn sign_in(sim: &casebridge::sim::Simulator) -> Api {
        let http = reqwest::Client::new();
        let token = password_token(&http, sim.url()).await;
        Api { base: sim.url().to_string(), token: token["access_token"].as_str().unwrap().to_string(), http }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Answer {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/services/data/v59.0/{path}", self.base)
        };
        let mut req = self.http.request(method.parse().unwrap(), url).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let limit_info = resp.headers().get("sforce-limit-info").map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        Answer { status, limit_info, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None, &[]).await
    }

    async fn query(&self, soql: &str) -> Answer {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        self.get(&format!("query?q={q}")).await
    }

    /// The values of `field` in the rows of a successful query.
    async fn column(&self, soql: &str, field: &str) -> Vec<Value> {
        let a = self.query(soql).await;
        assert_eq!(a.status, 200, "{soql}: {}", a.body);
        a.body["records"].as_array().unwrap().iter().map(|r| r[field].clone()).collect()
    }

    async fn create(&self, object: &str, body: Value) -> String {
        let a = self.call("POST", &format!("sobjects/{object}"), Some(body), &[]).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }
}

fn error_code(a: &Answer) -> &str {
    a.body[0]["errorCode"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn soql_filters_order_limit_and_count() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    for (subject, priority, score) in [
        ("alpha", "High", Some(3.0)),
        ("beta", "Low", None),
        ("gamma", "High", Some(1.5)),
        ("delta", "Medium", Some(2.0)),
    ] {
        api.create("Case", json!({ "Subject": subject, "Priority": priority, "Score__c": score, "Origin": "Phone" }))
            .await;
    }
    let base = "FROM Case WHERE Origin = 'Phone'";
    let q = |tail: &str| format!("SELECT Subject {base} {tail}");
    assert_eq!(
        api.column(&q("AND Priority IN ('High', 'Low') ORDER BY Subject"), "Subject").await,
        ["alpha", "beta", "gamma"]
    );
    assert_eq!(api.column(&q("AND Priority NOT IN ('High') ORDER BY Subject"), "Subject").await, ["beta", "delta"]);
    assert_eq!(api.column(&q("AND NOT Priority = 'High' ORDER BY Subject"), "Subject").await, ["beta", "delta"]);
    assert_eq!(
        api.column(&q("AND (Priority = 'Low' OR Subject LIKE 'AL%') ORDER BY Subject DESC"), "Subject").await,
        ["beta", "alpha"]
    );
    assert_eq!(
        api.column(&q("ORDER BY Score__c ASC NULLS LAST"), "Subject").await,
        ["gamma", "delta", "alpha", "beta"]
    );
    assert_eq!(
        api.column(&q("ORDER BY Score__c DESC NULLS FIRST"), "Subject").await,
        ["beta", "alpha", "delta", "gamma"]
    );
    assert_eq!(api.column(&q("AND Score__c >= 2 ORDER BY Score__c"), "Subject").await, ["delta", "alpha"]);
    assert_eq!(api.column(&q("AND Score__c = null"), "Subject").await, ["beta"]);
    assert_eq!(
        api.column(&q("AND Score__c != null ORDER BY Subject LIMIT 2 OFFSET 1"), "Subject").await,
        ["delta", "gamma"]
    );
    assert_eq!(api.column(&q("AND subject = 'ALPHA'"), "Subject").await, ["alpha"], "string comparison ignores case");
    assert_eq!(api.column(&q("AND CreatedDate = LAST_N_DAYS:1 AND CreatedDate = TODAY"), "Subject").await.len(), 4);
    assert_eq!(api.column(&q("AND CreatedDate < YESTERDAY"), "Subject").await.len(), 0);
    api.create("Case", json!({ "Subject": "Epsilon Upper", "Origin": "Chat" })).await;
    let like = "SELECT Subject FROM Case WHERE Subject LIKE 'epsilon%' AND Origin = 'Chat'";
    assert_eq!(api.column(like, "Subject").await, ["Epsilon Upper"], "LIKE ignores case");
    let count = api.query(&format!("SELECT COUNT() {base}")).await;
    assert_eq!((count.body["totalSize"].clone(), count.body["records"].clone()), (json!(4), json!([])));
}

#[tokio::test]
async fn soql_errors_name_the_problem_and_place() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let cases = [
        (
            "SELECT Id FROM Case WHERE Subject = 'a' AND Status = 'b' OR Priority = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: OR",
        ),
        ("SELECT Id, Id FROM Case", "MALFORMED_QUERY", "duplicate field selected: Id"),
        ("SELECT Id FROM Case GROUP BY Status", "MALFORMED_QUERY", "unexpected token: GROUP"),
        ("SELECT Nope__c FROM Case", "INVALID_FIELD", "No such column 'Nope__c' on entity 'Case'"),
        ("SELECT Contact.Nope FROM Case", "INVALID_FIELD", "No such column 'Nope' on entity 'Contact'"),
        ("SELECT Boss.Name FROM Case", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
        ("SELECT Id FROM Kase", "INVALID_TYPE", "sObject type 'Kase' is not supported"),
        ("SELECT Id, (SELECT Id FROM Notes) FROM Case", "INVALID_TYPE", "Didn't understand relationship 'Notes'"),
        (
            "SELECT Id FROM Case WHERE CreatedDate > '2024-01-01'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "must be of type dateTime",
        ),
        ("SELECT Id FROM Case WHERE OwnerId = 'bogus'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: bogus"),
        ("SELECT Id FROM Case WHERE IsClosed = 'false'", "INVALID_QUERY_FILTER_OPERATOR", "must be of type boolean"),
        ("SELECT Id FROM Case OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
    ];
    for (soql, code, fragment) in cases {
        let a = api.query(soql).await;
        assert_eq!(a.status, 400, "{soql}");
        assert_eq!(error_code(&a), code, "{soql}: {}", a.body);
        let message = a.body[0]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{soql}: {message}");
        assert!(message.contains("ERROR at Row:1:Column:"), "{soql}: {message}");
    }
    let missing = api.get("query").await;
    assert_eq!((missing.status, error_code(&missing)), (400, "MALFORMED_QUERY"));
}

#[tokio::test]
async fn paging_honours_the_batch_size_header_and_rejects_unknown_locators() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    for i in 0..450 {
        api.create("Lead", json!({ "LastName": format!("L{i:03}"), "Company": "Co" })).await;
    }
    let q: String = url::form_urlencoded::byte_serialize(b"SELECT LastName FROM Lead ORDER BY LastName").collect();
    let first = api.call("GET", &format!("query?q={q}"), None, &[("Sforce-Query-Options", "batchSize=200")]).await;
    assert_eq!(first.body["records"].as_array().unwrap().len(), 200);
    assert_eq!(first.body["totalSize"], 450);
    assert_eq!(first.body["done"], false);
    let next = first.body["nextRecordsUrl"].as_str().unwrap();
    assert!(next.starts_with("/services/data/v59.0/query/"), "{next}");
    let second = api.get(next).await;
    assert_eq!(second.body["records"][0]["LastName"], "L200");
    let third = api.get(second.body["nextRecordsUrl"].as_str().unwrap()).await;
    assert_eq!((third.body["done"].clone(), third.body["records"].as_array().unwrap().len()), (json!(true), 50));
    assert!(third.body.get("nextRecordsUrl").is_none());
    let bogus = api.get("query/01gDn0000000000099-200").await;
    assert_eq!((bogus.status, error_code(&bogus)), (400, "INVALID_QUERY_LOCATOR"));
}

#[tokio::test]
async fn writes_maintain_audit_fields_and_case_activity() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let agent = sim.id_of("agent").unwrap();
    let case_id = api.create("Case", json!({ "Subject": "audit" })).await;
    let fields = "fields=CreatedById,LastModifiedById,CreatedDate,LastModifiedDate,SystemModstamp,CaseNumber,OwnerId";
    let created = api.get(&format!("sobjects/Case/{case_id}?{fields}")).await.body;
    assert_eq!(created["CreatedById"], json!(agent));
    assert_eq!(created["OwnerId"], json!(agent), "the creator owns a new case");
    let stamp = created["SystemModstamp"].as_str().unwrap().to_string();
    assert!(stamp.ends_with("+0000") && stamp.len() == 28, "Salesforce datetime form: {stamp}");
    for (object, body) in [
        (
            "EmailMessage",
            json!({ "ParentId": case_id, "Incoming": true, "Status": "0", "Subject": "re", "TextBody": "hi" }),
        ),
        ("FeedItem", json!({ "ParentId": case_id, "Body": "posted" })),
    ] {
        // Whether a child bumps its case is the org's (undocumented) behaviour: both are modelled.
        for touch in [false, true] {
            sim.with_org(|org| org.behaviour.child_records_touch_parent = touch);
            let before = api.get(&format!("sobjects/Case/{case_id}?{fields}")).await.body["SystemModstamp"].clone();
            tokio::time::sleep(Duration::from_millis(5)).await;
            api.create(object, body.clone()).await;
            let after = api.get(&format!("sobjects/Case/{case_id}?{fields}")).await.body["SystemModstamp"].clone();
            if touch {
                assert!(after.as_str() > before.as_str(), "{object} bumps its case");
            } else {
                assert_eq!(after, before, "{object} leaves its case's stamp alone");
            }
        }
    }
    // A seed's formula field is computed on every write and read-only; a default fills in.
    let label = "fields=Case_Label__c,CaseNumber,Channel__c";
    let made = api.get(&format!("sobjects/Case/{case_id}?{label}")).await.body;
    assert_eq!(made["Case_Label__c"], json!(format!("{}: audit", made["CaseNumber"].as_str().unwrap())));
    assert_eq!(made["Channel__c"], "Phone");
    api.call("PATCH", &format!("sobjects/Case/{case_id}"), Some(json!({ "Subject": "" })), &[]).await;
    let relabelled = api.get(&format!("sobjects/Case/{case_id}?{label}")).await.body;
    assert!(relabelled["Case_Label__c"].as_str().unwrap().ends_with(": (no subject)"), "{relabelled}");
    let written =
        api.call("PATCH", &format!("sobjects/Case/{case_id}"), Some(json!({ "Case_Label__c": "mine" })), &[]).await;
    assert_eq!(error_code(&written), "INVALID_FIELD_FOR_INSERT_UPDATE");
    let described = api.get("sobjects/Case/describe").await.body;
    let field = described["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Case_Label__c").unwrap().clone();
    assert_eq!(
        (&field["calculated"], &field["createable"], &field["updateable"]),
        (&json!(true), &json!(false), &json!(false))
    );
    // A record type must be the object's own, and active.
    let typed = api
        .call(
            "PATCH",
            &format!("sobjects/Case/{case_id}"),
            Some(json!({ "RecordTypeId": sim.id_of("sales_type").unwrap() })),
            &[],
        )
        .await;
    assert_eq!(typed.status, 204, "{}", typed.body);
    for other in ["partner_lead_type", "retired_type"] {
        let rt = sim.id_of(other).unwrap();
        let refused =
            api.call("PATCH", &format!("sobjects/Case/{case_id}"), Some(json!({ "RecordTypeId": rt })), &[]).await;
        assert_eq!((refused.status, error_code(&refused)), (400, "INVALID_CROSS_REFERENCE_KEY"), "{other}");
        assert!(
            refused.body.to_string().contains("Record Type ID: this ID value isn't valid for the user"),
            "{}",
            refused.body
        );
    }
    let email_missing_status =
        api.call("POST", "sobjects/EmailMessage", Some(json!({ "ParentId": case_id })), &[]).await;
    assert_eq!(error_code(&email_missing_status), "REQUIRED_FIELD_MISSING");
    // Topics: unique names and one assignment per topic and record.
    let topic = api.create("Topic", json!({ "Name": "Billing" })).await;
    let dup = api.call("POST", "sobjects/Topic", Some(json!({ "Name": "billing" })), &[]).await;
    assert_eq!(error_code(&dup), "DUPLICATE_VALUE");
    api.create("TopicAssignment", json!({ "TopicId": topic, "EntityId": case_id })).await;
    let again =
        api.call("POST", "sobjects/TopicAssignment", Some(json!({ "TopicId": topic, "EntityId": case_id })), &[]).await;
    assert_eq!(error_code(&again), "DUPLICATE_VALUE");
    let assigned =
        api.column(&format!("SELECT EntityType FROM TopicAssignment WHERE EntityId = '{case_id}'"), "EntityType").await;
    assert_eq!(assigned, ["Case"]);
}

#[tokio::test]
async fn every_api_response_reports_usage_and_auth_is_required() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let a = api.get("limits").await;
    assert_eq!(a.limit_info.as_deref(), Some("api-usage=1/100000"));
    let b = api.query("SELECT Id FROM Case").await;
    assert_eq!(b.limit_info.as_deref(), Some("api-usage=2/100000"));
    let err = api.query("SELECT Nope FROM Case").await;
    assert_eq!(err.limit_info.as_deref(), Some("api-usage=3/100000"), "errors carry the header too");

    let http = reqwest::Client::new();
    let anonymous = http.get(format!("{}/services/data/v59.0/limits", sim.url())).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body, json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }]));
    let versions: Value = http.get(format!("{}/services/data", sim.url())).send().await.unwrap().json().await.unwrap();
    assert!(versions.as_array().unwrap().iter().any(|v| v["version"] == "59.0"));
    let old = api.get("/services/data/v20.0/limits").await;
    assert_eq!(old.status, 404);
    let put = api.call("PUT", "sobjects/Case", Some(json!({})), &[]).await;
    assert_eq!((put.status, error_code(&put)), (405, "METHOD_NOT_ALLOWED"));
    let resp = http
        .post(format!("{}/services/data/v59.0/sobjects/Case", sim.url()))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()[0]["errorCode"], "JSON_PARSER_ERROR");
}

#[tokio::test]
async fn token_endpoint_refuses_what_salesforce_refuses() {
    let sim = start_sim(SimOptions::default()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/services/oauth2/token", sim.url());
    let r = http.post(&url).form(&[("grant_type", "authorization_magic")]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(&url)
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", "a.b.c")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": "invalid_grant", "error_description": "invalid assertion" })
    );
}

#[tokio::test]
async fn control_api_lists_requests_and_injects_faults() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    api.query("SELECT Id FROM Case").await;
    api.get("sobjects/Case/describe").await;
    let log = sim_requests(&sim).await;
    assert_eq!(log["total"], 2, "token requests are not API calls");
    assert_eq!(log["token_requests"].as_array().unwrap().len(), 1);
    let first = &log["requests"][0];
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/services/data/v59.0/query");
    assert!(first["query"].as_str().unwrap().starts_with("q=SELECT"));
    assert_eq!(first["status"], 200);
    assert_eq!(first["user"], json!(sim.id_of("agent").unwrap()));
    assert!(first["time"].as_str().unwrap().ends_with("+0000"));

    let http = reqwest::Client::new();
    http.delete(format!("{}/__sim/requests", sim.url())).send().await.unwrap();
    assert_eq!(sim_requests(&sim).await["total"], 0);

    let bad =
        http.post(format!("{}/__sim/faults", sim.url())).json(&json!({ "error_rate": 2.0 })).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let unknown =
        http.post(format!("{}/__sim/faults", sim.url())).json(&json!({ "latencyy": 1 })).send().await.unwrap();
    assert_eq!(unknown.status(), 400);

    set_faults(&sim, json!({ "latency_ms": 200 })).await;
    let started = Instant::now();
    api.get("limits").await;
    assert!(started.elapsed() >= Duration::from_millis(200));

    set_faults(&sim, json!({ "error_rate": 1.0 })).await;
    let down = api.get("limits").await;
    assert_eq!((down.status, error_code(&down)), (503, "SERVER_UNAVAILABLE"));

    set_faults(&sim, json!({ "daily_api_limit": 1 })).await;
    let over = api.get("limits").await;
    assert_eq!((over.status, error_code(&over)), (403, "REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(over.body[0]["message"], "TotalRequests Limit exceeded.");
    assert!(over.limit_info.unwrap().ends_with("/1"));

    let cleared = http.delete(format!("{}/__sim/faults", sim.url())).send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(api.get("limits").await.status, 200);
}

#[tokio::test]
async fn composite_refuses_duplicate_references_and_resolves_query_paths() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let dup = api
        .call(
            "POST",
            "composite",
            Some(json!({ "compositeRequest": [
                { "method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "a" },
                { "method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "a" },
            ]})),
            &[],
        )
        .await;
    assert_eq!(dup.status, 400);
    let chained = api
        .call(
            "POST",
            "composite",
            Some(json!({ "compositeRequest": [
                { "method": "GET", "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Contact+WHERE+LastName+%3D+%27Doe%27", "referenceId": "who" },
                { "method": "POST", "url": "/services/data/v59.0/sobjects/Case", "referenceId": "c",
                  "body": { "Subject": "chained", "ContactId": "@{who.records[0].Id}" } },
                { "method": "GET", "url": "/services/data/v59.0/sobjects/Case/@{c.id}?fields=ContactId", "referenceId": "check" },
            ]})),
            &[],
        )
        .await;
    let results = chained.body["compositeResponse"].as_array().unwrap();
    assert_eq!(results[2]["body"]["ContactId"], json!(sim.id_of("jane").unwrap()), "{}", chained.body);
    assert_eq!(
        results[1]["httpHeaders"]["Location"].as_str().unwrap().len(),
        "/services/data/v59.0/sobjects/Case/".len() + 18
    );
}

#[tokio::test]
async fn semi_joins_and_anti_joins_filter_by_a_subquery() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let case_queues =
        "SELECT Name FROM Group WHERE Id IN (SELECT QueueId FROM QueueSobject WHERE SobjectType = 'Case')";
    assert_eq!(api.column(case_queues, "Name").await, vec![json!("Support Queue")]);
    let others = "SELECT Name FROM Group WHERE Type = 'Queue' AND Id NOT IN (SELECT QueueId FROM QueueSobject WHERE SobjectType = 'Case')";
    assert_eq!(api.column(others, "Name").await, vec![json!("Lead Queue")]);
    // A reference field on the left, and two joins in one WHERE.
    api.create("Account", json!({ "Name": "Lonely Ltd" })).await;
    let lonely = "SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact) \
         AND Id NOT IN (SELECT AccountId FROM Case)";
    assert_eq!(api.column(lonely, "Name").await, vec![json!("Lonely Ltd")]);
    let with_cases =
        "SELECT LastName FROM Contact WHERE AccountId IN (SELECT AccountId FROM Case WHERE IsClosed = false)";
    assert_eq!(api.column(with_cases, "LastName").await, vec![json!("Doe")]);
}

#[tokio::test]
async fn semi_join_restrictions_are_refused_as_salesforce_refuses_them() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let sub = "(SELECT QueueId FROM QueueSobject)";
    let refused = [
        (format!("SELECT Id FROM Group WHERE Type = 'Queue' OR Id IN {sub}"), "not allowed with the 'OR' operator"),
        (
            format!("SELECT Id FROM Group WHERE Type = 'Queue' AND (Name = 'x' OR Id IN {sub})"),
            "only allowed at the top level WHERE expressions",
        ),
        (format!("SELECT Id FROM Group WHERE NOT Id IN {sub}"), "only allowed at the top level WHERE expressions"),
        (
            "SELECT Id FROM Group WHERE Id IN (SELECT QueueId FROM QueueSobject WHERE QueueId IN (SELECT Id FROM Group))"
                .to_string(),
            "Nesting of semi join sub-selects is not supported",
        ),
        (
            format!("SELECT Id FROM Group WHERE Id IN {sub} AND Id IN {sub} AND Id NOT IN {sub}"),
            "Maximum 2 semi join sub-selects are allowed",
        ),
        (
            "SELECT Id FROM Account WHERE Id IN (SELECT LastName FROM Contact)".to_string(),
            "semi join sub selects can only query id fields, cannot use: 'LastName'",
        ),
        (
            "SELECT Id FROM Account WHERE Id IN (SELECT Account.Id FROM Contact)".to_string(),
            "semi join sub selects can only query id fields, cannot use: 'Account.Id'",
        ),
        (
            "SELECT Id FROM Account WHERE Name IN (SELECT AccountId FROM Contact)".to_string(),
            "only supported on id or reference fields, cannot use: 'Name'",
        ),
        (
            "SELECT Id FROM Contact WHERE Account.Id IN (SELECT AccountId FROM Case)".to_string(),
            "only supported on id or reference fields, cannot use: 'Account.Id'",
        ),
        (
            "SELECT Id FROM Contact WHERE Id IN (SELECT WhoId FROM Task)".to_string(),
            "Row:1:Column:55\nEntity 'Task' is not supported for semi join inner selects",
        ),
        ("SELECT Id FROM Contact WHERE Id IN (SELECT Id FROM Contact)".to_string(), "same object type"),
        ("SELECT Id FROM Contact WHERE Id IN (SELECT AccountId FROM Case)".to_string(), "same object type"),
        (
            "SELECT Id, (SELECT Id FROM CaseComments WHERE ParentId IN (SELECT Id FROM Case)) FROM Case".to_string(),
            "only allowed at the top level WHERE expressions",
        ),
        (format!("SELECT Id FROM Group WHERE Id IN {} LIMIT 1", &sub.replace(')', " LIMIT 5)")), "unexpected token: LIMIT"),
    ];
    for (soql, message) in refused {
        let a = api.query(&soql).await;
        assert_eq!((a.status, error_code(&a)), (400, "MALFORMED_QUERY"), "{soql}: {}", a.body);
        let text = a.body[0]["message"].as_str().unwrap();
        assert!(text.contains(message), "{soql}: {text}");
    }
}

#[tokio::test]
async fn child_subqueries_page_past_200_and_make_parent_batches_smaller() {
    use casebridge::sim::org::WriteCtx;
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let agent = sim.id_of("agent").unwrap();
    let cases: Vec<String> = sim.with_org(|org| {
        let ctx = WriteCtx { user_id: agent.clone(), now: chrono::Utc::now(), allow_system_fields: false };
        (0..12)
            .map(|i| {
                let fields = json!({ "Subject": format!("Long {i:02}") });
                let case = org.create("Case", fields.as_object().unwrap(), &ctx).unwrap();
                for n in 0..if i == 0 { 450 } else { 250 } {
                    let body = json!({ "ParentId": case, "CommentBody": format!("c{n:03}") });
                    org.create("CaseComment", body.as_object().unwrap(), &ctx).unwrap();
                }
                case
            })
            .collect()
    });
    let one = format!(
        "SELECT Id, (SELECT CommentBody FROM CaseComments ORDER BY CommentBody) FROM Case WHERE Id = '{}'",
        cases[0]
    );
    let first = api.query(&one).await;
    let comments = &first.body["records"][0]["CaseComments"];
    assert_eq!((comments["totalSize"].clone(), comments["done"].clone()), (json!(450), json!(false)));
    assert_eq!(comments["records"].as_array().unwrap().len(), 200);
    assert_eq!(first.body["done"], true, "the parent result itself is complete");
    let next = comments["nextRecordsUrl"].as_str().unwrap();
    assert!(next.starts_with("/services/data/v59.0/query/01g") && next.ends_with("-200"), "{next}");
    let second = api.get(next).await;
    assert_eq!(second.body["records"][0]["CommentBody"], "c200");
    let third = api.get(second.body["nextRecordsUrl"].as_str().unwrap()).await;
    assert_eq!((third.body["done"].clone(), third.body["records"].as_array().unwrap().len()), (json!(true), 50));
    assert_eq!(third.body["records"][49]["CommentBody"], "c449");

    // Children count toward the batch: 11 cases of 201 inline records leave 9 a batch.
    let many = "SELECT Id, (SELECT Id FROM CaseComments) FROM Case WHERE Subject LIKE 'Long%' ORDER BY Subject";
    let page = api.query(many).await;
    assert_eq!((page.body["totalSize"].clone(), page.body["records"].as_array().unwrap().len()), (json!(12), 9));
    let child = page.body["records"][0]["CaseComments"]["nextRecordsUrl"].as_str().unwrap().to_string();
    let rest = api.get(page.body["nextRecordsUrl"].as_str().unwrap()).await;
    assert_eq!((rest.body["done"].clone(), rest.body["records"].as_array().unwrap().len()), (json!(true), 3));
    let stale = api.get(&child).await;
    assert_eq!(
        (stale.status, error_code(&stale)),
        (400, "INVALID_QUERY_LOCATOR"),
        "the next parent page invalidates it"
    );
}

/// Lightning Knowledge as Salesforce serves it: versions start as drafts, publishing
/// archives the previous online version, archiving takes the article offline, every step
/// stamps the parent article, and article versions can only be queried pinned by status or id.
#[tokio::test]
async fn knowledge_articles_have_versions_publishing_and_archiving() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let v1 = api
        .create(
            "Knowledge__kav",
            json!({ "Title": "Reset", "UrlName": "reset", "Answer__c": "<p>Hold the button.</p>" }),
        )
        .await;
    // The test org's agents-only article is online too; this article's URL name changes with it.
    let online = "SELECT Id, Title, VersionNumber, KnowledgeArticleId FROM Knowledge__kav WHERE PublishStatus = 'Online' AND Language = 'en_US' AND Summary = null";
    assert!(api.column(online, "Id").await.is_empty(), "a new version is a draft");
    let unpinned = api.query("SELECT Id FROM Knowledge__kav WHERE Language = 'en_US'").await;
    assert_eq!(unpinned.status, 400);
    assert_eq!(unpinned.body[0]["errorCode"], "MALFORMED_QUERY");
    assert!(unpinned.body[0]["message"].as_str().unwrap().contains("Implementation restriction"));
    let or = api.query("SELECT Id FROM Knowledge__kav WHERE PublishStatus = 'Online' OR Language = 'en_US'").await;
    assert_eq!(or.status, 400, "PublishStatus only in a top-level AND");

    let publish = |id: String, status: &'static str| {
        let api = &api;
        async move {
            api.call(
                "PATCH",
                &format!("knowledgeManagement/articleVersions/masterVersions/{id}"),
                Some(json!({ "publishStatus": status })),
                &[],
            )
            .await
        }
    };
    let stamp = |article: String| {
        let api = &api;
        async move {
            api.column(&format!("SELECT SystemModstamp FROM Knowledge__ka WHERE Id = '{article}'"), "SystemModstamp")
                .await[0]
                .clone()
        }
    };
    assert_eq!(publish(v1.clone(), "Online").await.status, 204);
    let article = api.column(online, "KnowledgeArticleId").await[0].as_str().unwrap().to_string();
    let first = stamp(article.clone()).await;
    assert_eq!(publish(v1.clone(), "Online").await.status, 400, "only a draft is published");

    // A new version: a draft from the online one, published in its place.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let draft = api
        .call("POST", "knowledgeManagement/articleVersions/masterVersions", Some(json!({ "articleId": article })), &[])
        .await;
    assert_eq!(draft.status, 201, "{}", draft.body);
    let v2 = draft.body["id"].as_str().unwrap().to_string();
    api.call("PATCH", &format!("sobjects/Knowledge__kav/{v2}"), Some(json!({ "Title": "Resetting the arm" })), &[])
        .await;
    assert_eq!(publish(v2.clone(), "Online").await.status, 204);
    assert_eq!(api.column(online, "Title").await, [json!("Resetting the arm")]);
    assert_eq!(api.column(online, "VersionNumber").await, [json!(2)]);
    let archived = "SELECT Id FROM Knowledge__kav WHERE PublishStatus = 'Archived'";
    assert_eq!(api.column(archived, "Id").await, [json!(v1)]);
    let second = stamp(article.clone()).await;
    assert!(second.as_str() > first.as_str(), "publishing stamps the article: {first} {second}");

    // Archiving takes it offline.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(publish(v2.clone(), "Archived").await.status, 204);
    assert!(api.column(online, "Id").await.is_empty());
    let archived_date =
        api.column(&format!("SELECT ArchivedDate FROM Knowledge__ka WHERE Id = '{article}'"), "ArchivedDate").await;
    assert!(archived_date[0].is_string());
    assert!(stamp(article).await.as_str() > second.as_str());
    let bad = publish(v2, "Published").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn upserts_by_external_id_create_update_and_honour_update_only() {
    let sim = start_sim(SimOptions::default()).await;
    let api = Api::sign_in(&sim).await;
    let path = "sobjects/Lead/Casebridge_Conversation__c/msg_1";
    let body = json!({ "LastName": "Doe", "Company": "Acme" });
    let made = api.call("PATCH", path, Some(body.clone()), &[]).await;
    assert_eq!((made.status, &made.body["created"]), (201, &json!(true)), "{}", made.body);
    let again = api.call("PATCH", path, Some(json!({ "Company": "Globex" })), &[]).await;
    assert_eq!((again.status, &again.body["created"]), (200, &json!(false)));
    assert_eq!(again.body["id"], made.body["id"]);
    let v62 = "/services/data/v62.0/sobjects/Lead/Casebridge_Conversation__c";
    let only = api.call("PATCH", &format!("{v62}/msg_1?updateOnly=true"), Some(json!({ "Rating": "Warm" })), &[]).await;
    assert_eq!(only.status, 200, "{}", only.body);
    let missing = api.call("PATCH", &format!("{v62}/msg_2?updateOnly=true"), Some(body.clone()), &[]).await;
    assert_eq!((missing.status, error_code(&missing)), (404, "NOT_FOUND"), "updateOnly never creates");
    let count = api.column("SELECT Id FROM Lead WHERE Casebridge_Conversation__c = 'msg_2'", "Id").await;
    assert!(count.is_empty());
    // Before API 61.0 the parameter did not exist: it is ignored, and the upsert creates.
    let old =
        api.call("PATCH", "sobjects/Lead/Casebridge_Conversation__c/msg_3?updateOnly=true", Some(body), &[]).await;
    assert_eq!(old.status, 201, "{}", old.body);
    let not_external = api.call("PATCH", "sobjects/Lead/Company/Acme", Some(json!({ "Rating": "Hot" })), &[]).await;
    assert_eq!((not_external.status, error_code(&not_external)), (404, "NOT_FOUND"));
}
