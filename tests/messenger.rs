//! The web messenger channel end to end, on the simulator with the shipped rules and the
//! demo help centre: a visitor's question answered over the JSON API and Server-Sent
//! Events; a handover that becomes one Salesforce Case (never two, even when the upsert is
//! sent again); a person's public comment on the case reaching the chat, the visitor's next
//! message reaching the case, and the chat closing with its case. And every bad request
//! refused with a clear 4xx and nothing stored.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use casebridge::channels::messenger::{Messenger, MessengerSettings, api, token};
use casebridge::daemon::{Daemon, DaemonSettings};
use casebridge::model::{Action, ConversationState, Secret};
use common::*;
use serde_json::{Value, json};

const GRIPPER: &str = "My gripper drifts after every restart, how do I recalibrate it?";

struct Chat {
    hub: Arc<Messenger>,
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn messenger(d: &mut Daemon, settings: MessengerSettings) -> Chat {
    let hub = Messenger::new(d.store().clone(), settings).unwrap();
    d.attach_messenger(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr: SocketAddr = api::serve_on(listener, hub.clone(), async move {
        let _ = stopped.await;
    })
    .unwrap();
    Chat { hub, base: format!("http://{addr}"), http: reqwest::Client::new(), _stop: stop }
}

impl Chat {
    async fn start(&self, body: Value) -> reqwest::Response {
        self.http.post(format!("{}/messenger/v1/conversations", self.base)).json(&body).send().await.unwrap()
    }

    async fn started(&self, message: &str) -> (String, String) {
        let r = self.start(json!({ "name": "Sam Visitor", "message": message })).await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        (v["conversation_id"].as_str().unwrap().to_string(), v["visitor_token"].as_str().unwrap().to_string())
    }

    async fn say(&self, id: &str, token: &str, text: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/messenger/v1/conversations/{id}/messages", self.base))
            .bearer_auth(token)
            .json(&json!({ "body": text }))
            .send()
            .await
            .unwrap()
    }

    async fn messages(&self, id: &str, token: &str) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/messenger/v1/conversations/{id}/messages?after=0", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["messages"].as_array().unwrap().clone()
    }
}

async fn leads(w: &World, email: &str) -> Vec<Value> {
    let soql = format!(
        "SELECT Id, FirstName, LastName, Company, LeadSource, Casebridge_Conversation__c FROM Lead WHERE Email = '{email}'"
    );
    w.admin.query::<Value>(soql).collect_all().await.unwrap()
}

async fn daemon(w: &World) -> Daemon {
    w.daemon_with_rules(load_rules(&root().join("rules"))).await
}

fn authors(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["author"].as_str().unwrap().to_string()).collect()
}

/// Reads an event stream until `done` holds for the events so far, or 10 s pass.
async fn read_events(response: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&text) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("events in time").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open")));
    }
    text
}

#[tokio::test]
async fn a_visitors_question_is_answered_over_the_api_and_the_event_stream() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let (id, token) = chat.started(GRIPPER).await;
    let mut events = chat
        .http
        .get(format!("{}/messenger/v1/conversations/{id}/events?after=0&token={token}", chat.base))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");

    let report = d.chat_round().await.unwrap();
    assert_eq!(report.api_calls, 0, "answering a chat writes nothing to Salesforce");
    let text = read_events(&mut events, |t| t.contains("\"author\":\"agent\"")).await;
    assert!(text.contains("event: message") && text.contains("id: 1") && text.contains("id: 2"), "{text}");
    assert!(text.to_lowercase().contains("recalibrat"), "{text}");
    let typing = text.find("event: typing").expect("the agent is seen at work");
    assert!(typing < text.find("\"author\":\"agent\"").unwrap(), "before its answer: {text}");

    let messages = chat.messages(&id, &token).await;
    assert_eq!(authors(&messages), ["visitor", "agent"]);
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.channel.as_str(), "messenger");
    assert!(conv.unanswered().is_empty());
    assert!(d.store().due_chats(chrono::Utc::now()).unwrap().is_empty(), "nothing left to decide");
    assert_eq!(chat.hub.open_streams(), 1);
    // One conversation holds a few streams (browser tabs), not any number.
    let mut held = Vec::new();
    while let Ok(stream) = chat.hub.subscribe(&id, Some(&token), 0) {
        held.push(stream);
        assert!(held.len() <= casebridge::channels::messenger::STREAMS_PER_CONVERSATION, "unbounded streams");
    }
    assert_eq!(held.len() + 1, casebridge::channels::messenger::STREAMS_PER_CONVERSATION);
}

#[tokio::test]
async fn a_handover_becomes_one_case_and_the_person_and_visitor_talk_through_it() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let (id, token) = chat.started("I'd like to talk to a human about my order, please").await;

    d.chat_round().await.unwrap();
    let cases: Vec<Value> = w
        .admin
        .query(format!(
            "SELECT Id, CaseNumber, OwnerId, Subject, Description, Origin, SuppliedName FROM Case WHERE Casebridge_Conversation__c = '{id}'"
        ))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = &cases[0];
    assert_eq!(case["OwnerId"], json!(w.id("support_queue")));
    assert_eq!(case["Origin"], "Web");
    assert_eq!(case["SuppliedName"], "Sam Visitor");
    assert!(case["Description"].as_str().unwrap().contains("talk to a human about my order"));
    let case_id = case["Id"].as_str().unwrap().to_string();
    assert!(authors(&chat.messages(&id, &token).await).ends_with(&["visitor".to_string(), "agent".to_string()]));

    // The upsert sent again (a crash after Salesforce made the case) makes no second case.
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(matches!(conv.state, ConversationState::HandedOver { .. }));
    d.store()
        .enqueue(Action::UpsertRecord {
            conversation_id: id.clone(),
            object: "Case".into(),
            key_field: "Casebridge_Conversation__c".into(),
            fields: [("Subject".to_string(), json!("again"))].into(),
            key: None,
            update_only: false,
        })
        .unwrap();
    d.cycle().await.unwrap();
    let count: Vec<Value> = w
        .admin
        .query(format!("SELECT Id FROM Case WHERE Casebridge_Conversation__c = '{id}'"))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(count.len(), 1);
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.case_id(), Some(case_id.as_str()), "the cycle linked the case");

    // A person answers on the case; the chat shows it.
    w.admin
        .create(
            "CaseComment",
            &json!({ "ParentId": case_id, "CommentBody": "Hi Sam, I'm Alex. Let me look.", "IsPublished": true }),
        )
        .await
        .unwrap();
    w.admin
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": "internal only", "IsPublished": false }))
        .await
        .unwrap();
    // A feed post is internal unless shared with the customer (Salesforce's default for
    // an internal user's record post): never copied into the chat.
    w.admin.create("FeedItem", &json!({ "ParentId": case_id, "Body": "internal post" })).await.unwrap();
    d.cycle().await.unwrap();
    let messages = chat.messages(&id, &token).await;
    let last = messages.last().unwrap();
    assert_eq!(last["author"], "human");
    assert_eq!(last["body"], "Hi Sam, I'm Alex. Let me look.");
    assert!(!messages.iter().any(|m| m["body"] == "internal only" || m["body"] == "internal post"));
    w.admin
        .create("FeedItem", &json!({ "ParentId": case_id, "Body": "Shared with you, Sam.", "Visibility": "AllUsers" }))
        .await
        .unwrap();
    d.cycle().await.unwrap();
    let messages = chat.messages(&id, &token).await;
    assert_eq!(messages.last().unwrap()["body"], "Shared with you, Sam.", "a shared post reaches the chat");

    // The visitor answers; the AI stays quiet and the message reaches the case.
    assert_eq!(chat.say(&id, &token, "Order 1234, thanks Alex").await.status(), 201);
    d.chat_round().await.unwrap();
    let bodies = w.agent_comment_bodies(&case_id).await;
    assert!(
        bodies.iter().any(|b| b.contains("Sam Visitor wrote in the messenger") && b.contains("Order 1234")),
        "{bodies:?}"
    );
    assert_eq!(authors(&chat.messages(&id, &token).await).last().unwrap(), "visitor", "no AI reply");
    d.cycle().await.unwrap();
    assert_eq!(
        chat.messages(&id, &token).await.iter().filter(|m| m["author"] == "human").count(),
        2,
        "the comment and the shared post; our own forward is not copied back"
    );

    // The case closes: so does the chat.
    w.admin.update("Case", &case_id, &json!({ "Status": "Closed" })).await.unwrap();
    d.cycle().await.unwrap();
    assert_eq!(d.store().conversation(&id).unwrap().unwrap().state, ConversationState::Closed);
    let r = chat.say(&id, &token, "one more thing").await;
    assert_eq!(r.status(), 409);
    assert!(d.store().chats_with_cases().unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx_and_nothing_is_stored() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let settings = MessengerSettings {
        max_message_chars: 100,
        per_visitor_per_minute: 3,
        per_address_per_minute: 1000,
        allowed_origins: vec!["https://www.acme.example".into()],
        identity_secret: Some(Secret::new("shared-secret")),
        ..MessengerSettings::default()
    };
    let chat = messenger(&mut d, settings).await;
    let (id, token) = chat.started("hello").await;
    let stored = || d.store().conversation_count();
    assert_eq!(stored(), 1);
    let url = format!("{}/messenger/v1/conversations", chat.base);
    let code = |r: Value| r["error"].as_str().unwrap_or_default().to_string();

    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({ "message": "x".repeat(101) }), 413, "message_too_long"),
        (json!({ "message": "   " }), 400, "message_empty"),
        (json!({ "message": "hi", "email": "not an email" }), 400, "invalid_request"),
        (
            json!({ "message": "hi", "email": "jane@customer.example", "user_hash": "00ff" }),
            403,
            "identity_not_verified",
        ),
        (
            json!({ "message": "hi", "email": "jane@customer.example", "user_hash": token::identity_hash(b"guessed", "jane@customer.example") }),
            403,
            "identity_not_verified",
        ),
        (json!({ "message": "hi", "user_hash": "00ff" }), 400, "invalid_request"),
        (json!({ "message": "hi", "admin": true }), 422, "invalid_request"),
        (json!({ "text": "hi" }), 422, "invalid_request"),
        (json!({ "message": "hi", "name": "x".repeat(201) }), 400, "invalid_request"),
    ];
    for (body, status, error) in cases {
        let r = chat.start(body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(code(r.json().await.unwrap()), error, "{body}");
    }
    let r = chat.http.post(&url).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let huge = format!("{{\"message\": \"{}\"}}", "x".repeat(400_000));
    let r = chat.http.post(&url).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = chat
        .http
        .post(&url)
        .header("origin", "https://evil.example")
        .json(&json!({ "message": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), code(r.json().await.unwrap())), (403, "origin_not_allowed".into()));
    let r = chat
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(stored(), 1, "no refused request stored a conversation");

    // A verified visitor is marked so; an allowed origin may read the answer.
    let email = "jane@customer.example";
    let r = chat
        .http
        .post(&url)
        .header("origin", "https://www.acme.example")
        .json(&json!({ "message": "hi", "email": email, "user_hash": token::identity_hash(b"shared-secret", email) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://www.acme.example");
    let v: Value = r.json().await.unwrap();
    let verified = d.store().conversation(v["conversation_id"].as_str().unwrap()).unwrap().unwrap();
    assert!(verified.messenger.unwrap().visitor.verified);

    // Tokens: missing, wrong, another conversation's; unknown conversations.
    let other_token = v["visitor_token"].as_str().unwrap();
    let post = |id: String, token: Option<String>| {
        let mut r = chat.http.post(format!("{url}/{id}/messages")).json(&json!({ "body": "hi" }));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(post(id.clone(), None).await.unwrap().status(), 401);
    assert_eq!(post(id.clone(), Some("forged".into())).await.unwrap().status(), 403);
    assert_eq!(post(id.clone(), Some(other_token.into())).await.unwrap().status(), 403);
    assert_eq!(post("msg_nosuchconversation".into(), Some(token.clone())).await.unwrap().status(), 403);
    assert_eq!(post("../../etc/passwd".into(), Some(token.clone())).await.unwrap().status(), 404);
    let r = chat.http.get(format!("{url}/{id}/events?token=forged")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let before = d.store().conversation(&id).unwrap().unwrap().parts.len();
    assert_eq!(before, 1, "no refused message was stored");

    // The per-visitor rate limit: three a minute.
    for _ in 0..3 {
        assert_eq!(chat.say(&id, &token, "again").await.status(), 201);
    }
    let r = chat.say(&id, &token, "too many").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(d.store().conversation(&id).unwrap().unwrap().parts.len(), 4);
}

#[tokio::test]
async fn a_message_written_while_the_agent_thinks_is_kept_and_answered_next() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let (id, token) = chat.started(GRIPPER).await;
    // The daemon reads the chat, then the visitor writes before the answer is committed:
    // simulated by committing the daemon's stale copy through the hub after a new message.
    let stale = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(chat.say(&id, &token, "Also, what is the warranty? I'm sam@visitor.example").await.status(), 201);
    chat.hub.commit(stale, Vec::new()).unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.parts.len(), 2, "the visitor's message survived the stale commit");
    assert_eq!(conv.customer_email.as_deref(), Some("sam@visitor.example"), "and the email left in it");
    assert!(conv.retry_at.is_some(), "still due");
    d.chat_round().await.unwrap();
    let messages = chat.messages(&id, &token).await;
    assert_eq!(authors(&messages), ["visitor", "visitor", "agent"]);
}

#[tokio::test]
async fn the_widget_and_its_page_are_served() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let r = chat.http.get(format!("{}/messenger.js", chat.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let script = r.text().await.unwrap();
    assert!(script.contains("EventSource") && script.contains("aria-live"));
    let page = chat.http.get(&chat.base).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<script src=\"/messenger.js\""));
}

#[tokio::test]
async fn visitors_are_matched_and_a_new_one_who_leaves_an_email_becomes_one_lead() {
    let w = World::new().await;
    w.admin
        .create("Lead", &json!({ "LastName": "Prospect", "Company": "Widgets", "Email": "lead@prospect.example" }))
        .await
        .unwrap();
    let mut d = daemon(&w).await;
    let settings = MessengerSettings {
        identity_secret: Some(Secret::new("shared-secret")),
        create_leads: true,
        ..MessengerSettings::default()
    };
    let chat = messenger(&mut d, settings).await;
    let start = |email: &str, verified: bool| {
        let mut body = json!({ "name": "Sam de Vries", "email": email, "message": GRIPPER });
        if verified {
            body["user_hash"] = json!(token::identity_hash(b"shared-secret", email));
        }
        chat.start(body)
    };
    let id_of = |v: Value| v["conversation_id"].as_str().unwrap().to_string();
    let jane = id_of(start("jane@customer.example", true).await.json().await.unwrap());
    let claimed = id_of(start("jane@customer.example", false).await.json().await.unwrap());
    let lead = id_of(start("lead@prospect.example", false).await.json().await.unwrap());
    let (new, token) = chat.started("Do you ship to Norway?").await;
    assert_eq!(chat.say(&new, &token, "You can reach me at sam@newcomer.example.").await.status(), 201);
    d.chat_round().await.unwrap();

    let conv = |id: &str| d.store().conversation(id).unwrap().unwrap();
    let kind = |id: &str| conv(id).messenger.unwrap().person.map(|p| p.kind());
    assert_eq!(kind(&jane), Some("user"));
    assert_eq!(
        conv(&jane).contact.map(|c| c.id),
        Some(w.id("jane")),
        "a verified user's contact is the conversation's"
    );
    assert_eq!(kind(&claimed), Some("user"));
    assert_eq!(conv(&claimed).contact, None, "an unverified claim shows nothing of the contact");
    assert_eq!(kind(&lead), Some("lead"));
    assert_eq!(kind(&new), Some("visitor"));
    assert_eq!(conv(&new).customer_email.as_deref(), Some("sam@newcomer.example"), "the email left in the chat");

    let made = leads(&w, "sam@newcomer.example").await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!((&made[0]["FirstName"], &made[0]["LastName"]), (&json!("Sam"), &json!("Visitor")));
    assert_eq!(made[0]["Company"], "[not provided]", "Salesforce requires a company; the visitor gave none");
    assert_eq!(made[0]["Casebridge_Conversation__c"], json!(new));
    assert_eq!(leads(&w, "lead@prospect.example").await.len(), 1, "a known lead gets no second lead");
    assert!(leads(&w, "jane@customer.example").await.is_empty(), "a contact is no lead");

    // Another visitor message, another round: still one lead.
    assert_eq!(chat.say(&new, &token, "Hello again").await.status(), 201);
    d.chat_round().await.unwrap();
    d.cycle().await.unwrap();
    assert_eq!(leads(&w, "sam@newcomer.example").await.len(), 1);
}

#[tokio::test]
async fn conversations_with_known_people_are_logged_as_tasks_and_completed_when_they_close() {
    let w = World::new().await;
    // Two leads with one email, made before the org's duplicate rule was switched on.
    for _ in 0..2 {
        let ctx = casebridge::sim::org::WriteCtx {
            user_id: w.id("admin"),
            now: chrono::Utc::now(),
            allow_system_fields: false,
        };
        let lead = json!({ "LastName": "Prospect", "Company": "Widgets", "Email": "two@leads.example" });
        w.sim.with_org(|org| org.create("Lead", lead.as_object().unwrap(), &ctx).unwrap());
    }
    let mut d = daemon(&w).await;
    let settings =
        MessengerSettings { identity_secret: Some(Secret::new("s")), log_tasks: true, ..MessengerSettings::default() };
    let chat = messenger(&mut d, settings).await;
    let start = |email: &str, verified: bool| {
        let mut body = json!({ "email": email, "message": "I'd like to talk to a human about my order" });
        if verified {
            body["user_hash"] = json!(token::identity_hash(b"s", email));
        }
        chat.start(body)
    };
    let id_of = |v: Value| v["conversation_id"].as_str().unwrap().to_string();
    let jane = id_of(start("jane@customer.example", true).await.json().await.unwrap());
    let claimed = id_of(start("jane@customer.example", false).await.json().await.unwrap());
    let leads = id_of(start("two@leads.example", true).await.json().await.unwrap());
    let unverified_lead = id_of(start("two@leads.example", false).await.json().await.unwrap());
    d.chat_round().await.unwrap();

    let tasks = |filter: String| {
        let soql = format!(
            "SELECT Id, WhoId, WhatId, Status, Subject, Description, Casebridge_Conversation__c FROM Task WHERE {filter}"
        );
        let client = w.admin.clone();
        async move { client.query::<Value>(soql).collect_all().await.unwrap() }
    };
    let janes = tasks(format!("WhoId = '{}'", w.id("jane"))).await;
    assert_eq!(janes.len(), 1, "{janes:?}");
    assert_eq!(janes[0]["Casebridge_Conversation__c"], json!(jane));
    assert_eq!(janes[0]["WhatId"], json!(w.id("deal")), "related to Jane's one open opportunity");
    assert_eq!(janes[0]["Status"], "In Progress");
    assert!(
        tasks(format!("Casebridge_Conversation__c = '{claimed}'")).await.is_empty(),
        "no task on an unverified claim"
    );
    let lead_tasks = tasks(format!("Casebridge_Conversation__c LIKE '{leads}:%'")).await;
    assert_eq!(lead_tasks.len(), 2, "one task for every lead with the email");
    assert!(
        tasks(format!("Casebridge_Conversation__c LIKE '{unverified_lead}%'")).await.is_empty(),
        "no task on an unverified lead's email either"
    );
    assert!(lead_tasks.iter().all(|t| t["WhatId"].is_null()));

    // Jane's chat was handed over: its case closes, so does the chat, and its task completes.
    d.cycle().await.unwrap();
    let case_id = d.store().conversation(&jane).unwrap().unwrap().case_id().unwrap().to_string();
    w.admin.update("Case", &case_id, &json!({ "Status": "Closed" })).await.unwrap();
    d.cycle().await.unwrap();
    let janes = tasks(format!("WhoId = '{}'", w.id("jane"))).await;
    assert_eq!(janes.len(), 1, "completed, not logged again");
    assert_eq!(janes[0]["Status"], "Completed");
    assert!(janes[0]["Description"].as_str().unwrap().contains("talk to a human about my order"));
    assert!(
        janes[0]["Description"].as_str().unwrap().contains("passed this to our support team"),
        "the whole transcript"
    );

    // A second opportunity for Jane: a new conversation's task is related to none.
    let deal2 = w
        .admin
        .create("Opportunity", &json!({ "Name": "More", "StageName": "Prospecting", "CloseDate": "2027-06-30", "AccountId": w.id("acme") }))
        .await
        .unwrap();
    w.admin
        .create("OpportunityContactRole", &json!({ "OpportunityId": deal2, "ContactId": w.id("jane") }))
        .await
        .unwrap();
    let again = id_of(start("jane@customer.example", true).await.json().await.unwrap());
    d.chat_round().await.unwrap();
    let t = tasks(format!("Casebridge_Conversation__c = '{again}'")).await;
    assert_eq!(t.len(), 1);
    assert!(t[0]["WhatId"].is_null(), "two open opportunities: related to none");
}

#[tokio::test]
async fn a_chats_case_gets_the_configured_record_type_and_transcript_field() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let settings = MessengerSettings {
        case_record_type: Some("Sales_Inquiry".into()),
        transcript_field: "Chat_Transcript__c".into(),
        ..MessengerSettings::default()
    };
    let chat = messenger(&mut d, settings).await;
    let (id, _) = chat.started("I'd like to talk to a human about a bulk order").await;
    d.chat_round().await.unwrap();
    let rows: Vec<Value> = w
        .admin
        .query(format!(
            "SELECT RecordTypeId, Description, Chat_Transcript__c FROM Case WHERE Casebridge_Conversation__c = '{id}'"
        ))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["RecordTypeId"], json!(w.id("sales_type")));
    assert!(rows[0]["Chat_Transcript__c"].as_str().unwrap().contains("bulk order"));
    assert!(rows[0]["Description"].is_null(), "the transcript went where the admin said");

    // A record type the org lacks: a sync error saying so, and the case still made.
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let settings = MessengerSettings { case_record_type: Some("Nope".into()), ..MessengerSettings::default() };
    let chat = messenger(&mut d, settings).await;
    let (id, _) = chat.started("Can I talk to a person?").await;
    d.chat_round().await.unwrap();
    let rows: Vec<Value> = w
        .admin
        .query(format!("SELECT RecordTypeId FROM Case WHERE Casebridge_Conversation__c = '{id}'"))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["RecordTypeId"].is_null());
    let errors = d.store().sync_errors().unwrap();
    assert!(errors.iter().any(|e| e.code == "RECORD_TYPE_NOT_FOUND" && e.message.contains("Nope")), "{errors:?}");
}

#[tokio::test]
async fn behind_a_proxy_each_forwarded_address_has_its_own_limit_and_otherwise_the_header_is_ignored() {
    for behind_proxy in [true, false] {
        let w = World::new().await;
        let mut d = daemon(&w).await;
        let settings = MessengerSettings { per_address_per_minute: 2, behind_proxy, ..MessengerSettings::default() };
        let chat = messenger(&mut d, settings).await;
        let start = |forwarded: &'static str| {
            chat.http
                .post(format!("{}/messenger/v1/conversations", chat.base))
                .header("x-forwarded-for", forwarded)
                .json(&json!({ "message": "hello" }))
                .send()
        };
        let statuses = [
            start("203.0.113.7").await.unwrap().status().as_u16(),
            start("203.0.113.7").await.unwrap().status().as_u16(),
            start("203.0.113.7").await.unwrap().status().as_u16(),
            start("198.51.100.1, 203.0.113.9").await.unwrap().status().as_u16(),
        ];
        if behind_proxy {
            assert_eq!(statuses, [201, 201, 429, 201], "the last forwarded address counts");
        } else {
            assert_eq!(statuses, [201, 201, 429, 429], "without a proxy, everyone shares the connection's address");
        }
    }
}

/// A person's reply on a chat's case reaches the chat after the mirror's overlap has passed
/// too, and another chat's newer case, though the test org never bumps a case's stamp for a
/// new comment or post.
#[tokio::test]
async fn a_reply_long_after_the_handover_reaches_the_chat_without_its_case_moving() {
    let w = World::new().await;
    let settings = DaemonSettings { overlap: Duration::from_secs(1), ..test_settings(None) };
    let mut d = w.daemon_full(None, demo_kb(), load_rules(&root().join("rules")), settings).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let (id, token) = chat.started("I'd like to talk to a human about my order, please").await;
    d.chat_round().await.unwrap();
    d.cycle().await.unwrap();
    let case_id = d.store().conversation(&id).unwrap().unwrap().case_id().unwrap().to_string();
    // A second chat's case, newer by more than the overlap: the mirror's watermark follows
    // it past the first one's, so only the reply's own stamp can bring the first case back.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (second, _) = chat.started("Could a human call me about an invoice, please?").await;
    d.chat_round().await.unwrap();
    d.cycle().await.unwrap();
    assert!(d.store().conversation(&second).unwrap().unwrap().case_id().is_some());
    // Past the overlap, and the mirror has read both cases since.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    d.cycle().await.unwrap();
    d.cycle().await.unwrap();
    let before: Value = w.admin.get("Case", &case_id, Some(&["SystemModstamp"])).await.unwrap();
    w.admin
        .create(
            "FeedItem",
            &json!({ "ParentId": case_id, "Body": "Hi Sam, found your order.", "Visibility": "AllUsers" }),
        )
        .await
        .unwrap();
    w.admin
        .create("CaseComment", &json!({ "ParentId": case_id, "CommentBody": "It ships today.", "IsPublished": true }))
        .await
        .unwrap();
    let after: Value = w.admin.get("Case", &case_id, Some(&["SystemModstamp"])).await.unwrap();
    assert_eq!(before, after, "the case's stamp did not move");
    d.cycle().await.unwrap();
    let bodies: Vec<Value> = chat.messages(&id, &token).await.iter().map(|m| m["body"].clone()).collect();
    assert!(
        bodies.contains(&json!("Hi Sam, found your order.")) && bodies.contains(&json!("It ships today.")),
        "{bodies:?}"
    );
}

/// The widget opens its stream after its first message is stored, often after the daemon
/// took the conversation up: a stream opened while the agent works is told at once, and
/// one opened after the answer is not.
#[tokio::test]
async fn a_stream_opened_while_the_agent_works_is_told_at_once() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let (id, token) = chat.started(GRIPPER).await;
    chat.hub.typing(&id);
    let url = format!("{}/messenger/v1/conversations/{id}/events?after=0&token={token}", chat.base);
    let mut early = chat.http.get(&url).send().await.unwrap();
    let text = read_events(&mut early, |t| t.contains("event: typing")).await;
    assert!(text.contains("\"seconds\":"), "{text}");
    drop(early);

    d.chat_round().await.unwrap();
    let mut late = chat.http.get(&url).send().await.unwrap();
    let text = read_events(&mut late, |t| t.contains("\"author\":\"agent\"")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!text.contains("event: typing"), "the answer came: {text}");
}

/// A chat that closes asks the visitor how it went: 1 to 5 and a comment, refused when it
/// is anything else, a second rating replacing the first, counted in the metrics and in
/// the agent report.
#[tokio::test]
async fn a_closing_chat_asks_for_a_rating_that_metrics_and_the_report_count() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings::default()).await;
    let (id, token) = chat.started(GRIPPER).await;
    d.chat_round().await.unwrap();
    assert_eq!(chat.say(&id, &token, "That fixed it, thanks!").await.status(), 201);
    d.chat_round().await.unwrap();
    assert_eq!(d.store().conversation(&id).unwrap().unwrap().state, ConversationState::Closed);
    let messages = chat.messages(&id, &token).await;
    let last = messages.last().unwrap();
    assert_eq!(last["body"], "This conversation is closed. How did we do?", "{messages:#?}");
    assert_eq!(last["asks_rating"], true);

    let url = format!("{}/messenger/v1/conversations/{id}/rating", chat.base);
    let rate = |body: Value, token: Option<&str>| {
        let request = chat.http.post(&url).json(&body);
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        request.send()
    };
    for (body, status) in [
        (json!({ "rating": 0 }), 400),
        (json!({ "rating": 6 }), 400),
        (json!({ "rating": 300 }), 422),
        (json!({ "rating": "5" }), 422),
        (json!({ "rating": 5, "stars": 5 }), 422),
        (json!({ "comment": "no rating" }), 422),
        (json!({ "rating": 5, "comment": "x".repeat(1_001) }), 413),
    ] {
        let r = rate(body.clone(), Some(&token)).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
    }
    assert_eq!(rate(json!({ "rating": 5 }), None).await.unwrap().status(), 401);
    assert_eq!(rate(json!({ "rating": 5 }), Some("not-the-token")).await.unwrap().status(), 403);
    assert!(d.store().conversation(&id).unwrap().unwrap().csat.is_none(), "nothing refused is stored");

    let r = rate(json!({ "rating": 4, "comment": "  Quick, thanks  " }), Some(&token)).await.unwrap();
    assert_eq!(r.status(), 201);
    let r = rate(json!({ "rating": 5 }), Some(&token)).await.unwrap();
    assert_eq!(r.status(), 201, "a second rating replaces the first");
    let csat = d.store().conversation(&id).unwrap().unwrap().csat.unwrap();
    assert_eq!((csat.rating, csat.comment), (5, None));
    let last = chat.messages(&id, &token).await.pop().unwrap();
    assert!(last.get("asks_rating").is_none(), "rated: the widget no longer asks");

    let metrics = d.metrics().render();
    assert!(metrics.contains("casebridge_csat_ratings_total{rating=\"4\"} 1"), "{metrics}");
    assert!(metrics.contains("casebridge_csat_ratings_total{rating=\"5\"} 1"), "{metrics}");
    let now = chrono::Utc::now();
    let report = casebridge::report::report_api::agent_report(d.store(), now - chrono::Duration::days(1), now).unwrap();
    let by_channel = &report.by_channel["messenger"];
    assert_eq!((by_channel.csat_responses, by_channel.csat_average), (1, Some(5.0)));
}

/// An anonymous visitor handed over to a person is asked for an email to be reached by:
/// a bad one is refused, a good one becomes the visitor's (unverified) and makes their Lead
/// as an email written in a message does; a visitor with an email is not asked.
#[tokio::test]
async fn an_anonymous_visitor_handed_over_is_asked_for_an_email_that_makes_their_lead() {
    let w = World::new().await;
    let mut d = daemon(&w).await;
    let chat = messenger(&mut d, MessengerSettings { create_leads: true, ..MessengerSettings::default() }).await;
    let (id, token) = chat.started("Can I talk to a person?").await;
    d.chat_round().await.unwrap();
    let last = chat.messages(&id, &token).await.pop().unwrap();
    assert_eq!(last["asks_email"], true, "{last}");

    let url = format!("{}/messenger/v1/conversations/{id}/email", chat.base);
    let leave = |body: Value, token: Option<&str>| {
        let request = chat.http.post(&url).json(&body);
        match token {
            Some(t) => request.bearer_auth(t).send(),
            None => request.send(),
        }
    };
    for (body, status) in [
        (json!({ "email": "not an email" }), 400),
        (json!({ "email": format!("{}@example.com", "a".repeat(80)) }), 400),
        (json!({ "email": "ann@example.com\r\nBcc: x@y.z" }), 400),
        (json!({ "mail": "ann@example.com" }), 422),
        (json!({ "email": ["ann@example.com"] }), 422),
    ] {
        assert_eq!(leave(body.clone(), Some(&token)).await.unwrap().status().as_u16(), status, "{body}");
    }
    assert_eq!(leave(json!({ "email": "ann@example.com" }), None).await.unwrap().status(), 401);
    assert!(d.store().conversation(&id).unwrap().unwrap().customer_email.is_none(), "nothing refused is kept");

    let r = leave(json!({ "email": " Ann@Example.com " }), Some(&token)).await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["email"], "ann@example.com");
    let again = leave(json!({ "email": "other@example.com" }), Some(&token)).await.unwrap();
    assert_eq!(again.status(), 400, "one email a conversation");
    let last = chat.messages(&id, &token).await.pop().unwrap();
    assert!(last.get("asks_email").is_none(), "answered: no longer asked");

    d.chat_round().await.unwrap();
    let made = leads(&w, "ann@example.com").await;
    assert_eq!(made.len(), 1, "the email makes the visitor's Lead: {made:?}");
    let visitor = d.store().conversation(&id).unwrap().unwrap().messenger.unwrap().visitor;
    assert!(!visitor.verified, "a typed email is not a verified one");

    // A visitor who gave an email is not asked.
    let started = chat.start(json!({ "email": "bo@example.com", "message": "Can I talk to a person?" })).await;
    let started: Value = started.json().await.unwrap();
    let (id, token) = (started["conversation_id"].as_str().unwrap(), started["visitor_token"].as_str().unwrap());
    d.chat_round().await.unwrap();
    let last = chat.messages(id, token).await.pop().unwrap();
    assert!(last.get("asks_email").is_none(), "{last}");
}
