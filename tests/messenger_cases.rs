//! `kind: cases` rules on the simulator: a messenger conversation becomes a Salesforce Case
//! when a rule's trigger fires (its start, a topic, a condition), with the rule's record
//! type, owner, mapped fields and transcript field; the case is written again (and closed,
//! when the rule says so) when the conversation closes; a resolved chat reopens when the
//! visitor writes again. And the rule files' mistakes, each named at its line.

mod common;

use std::path::Path;
use std::sync::Arc;

use casebridge::channels::messenger::{Messenger, MessengerSettings, StartRequest};
use casebridge::daemon::Daemon;
use casebridge::model::ConversationState;
use casebridge::rules::RuleSet;
use common::*;
use serde_json::{Value, json};

/// The shipped rules plus `cases`, in a folder of their own.
fn rules_with(dir: &Path, cases: &str) -> casebridge::decide::SharedRules {
    let rules = copy_rules(dir);
    std::fs::write(rules.join("cases.yaml"), cases).unwrap();
    load_rules(&rules)
}

fn hub(d: &mut Daemon) -> Arc<Messenger> {
    let hub = Messenger::new(d.store().clone(), MessengerSettings::default()).unwrap();
    d.attach_messenger(hub.clone());
    hub
}

fn start(hub: &Messenger, message: &str) -> (String, String) {
    let request =
        StartRequest { name: Some("Sam Visitor".into()), email: None, user_hash: None, message: message.into() };
    let started = hub.start(request, "127.0.0.1").unwrap();
    (started.conversation_id, started.visitor_token)
}

async fn cases_of(w: &World, conversation: &str) -> Vec<Value> {
    w.admin
        .query(format!(
            "SELECT Id, OwnerId, RecordTypeId, Priority, Status, Subject, Description, Chat_Transcript__c FROM Case WHERE Casebridge_Conversation__c = '{conversation}'"
        ))
        .collect_all()
        .await
        .unwrap()
}

const GRIPPER: &str = "My gripper drifts after every restart, how do I recalibrate it?";

const EVERY_CHAT: &str = r#"
kind: cases
cases:
  - name: every-chat
    on: start
    record_type: Sales Inquiry
    transcript_field: Chat_Transcript__c
    fields:
      - field: Priority
        expr: 'if turns > 1 { "High" } else { "Low" }'
    close_with_conversation: true
"#;

/// A daemon with the shipped rules and [`EVERY_CHAT`], its messenger, and a visitor's
/// gripper question decided: (daemon, hub, conversation id, visitor token).
async fn every_chat(w: &World, dir: &Path) -> (Daemon, Arc<Messenger>, String, String) {
    let mut d = w.daemon_with_rules(rules_with(dir, EVERY_CHAT)).await;
    let hub = hub(&mut d);
    let (id, token) = start(&hub, GRIPPER);
    d.chat_round().await.unwrap();
    (d, hub, id, token)
}

#[tokio::test]
async fn a_rule_makes_the_case_at_the_start_and_writes_it_again_when_the_chat_closes() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut d = w.daemon_with_rules(rules_with(tmp.path(), EVERY_CHAT)).await;
    let hub = hub(&mut d);
    let (id, token) = start(&hub, GRIPPER);

    d.chat_round().await.unwrap();
    let cases = cases_of(&w, &id).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = &cases[0];
    assert_eq!(case["OwnerId"], json!(w.id("support_queue")), "the default target, never the agent user");
    assert_eq!(case["RecordTypeId"], json!(w.id("sales_type")));
    assert_eq!(case["Priority"], "Low");
    assert!(case["Chat_Transcript__c"].as_str().unwrap().contains("gripper drifts"), "{case}");
    assert!(case["Description"].is_null(), "the transcript goes where the rule says");
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.state, ConversationState::Open, "the agent still answers");
    assert_eq!(conv.parts.iter().filter(|p| p.author == casebridge::model::AuthorKind::Bot).count(), 1);
    assert_eq!(conv.messenger.as_ref().unwrap().case_rule.as_deref(), Some("every-chat"));

    // `action: create` (the default): the next decision leaves the case alone.
    hub.post(&id, Some(&token), "The controller shows as offline in the app", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert_eq!(cases_of(&w, &id).await[0]["Priority"], "Low");
    d.cycle().await.unwrap();
    let case_id = d.store().conversation(&id).unwrap().unwrap().case_id().map(str::to_string);
    assert_eq!(case_id.as_deref(), cases[0]["Id"].as_str(), "the cycle read the case back");

    // The visitor confirms: the chat closes, and the case gets the fields again, the whole
    // transcript and the closed status.
    hub.post(&id, Some(&token), "That fixed it, thanks!", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.state, ConversationState::Closed);
    let case = &cases_of(&w, &id).await[0];
    assert_eq!(case["Status"], "Closed");
    assert_eq!(case["Priority"], "High", "evaluated again at the close: {case}");
    assert!(case["Chat_Transcript__c"].as_str().unwrap().contains("That fixed it"), "{case}");

    // A resolved chat reopens when the visitor writes again. Handed over now, its case
    // (which the rule closed) opens again for the person who takes it.
    hub.post(&id, Some(&token), "I'd like to talk to a human about the gripper", "127.0.0.1").unwrap();
    assert_eq!(d.store().conversation(&id).unwrap().unwrap().state, ConversationState::Open);
    d.chat_round().await.unwrap();
    d.cycle().await.unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(matches!(conv.state, ConversationState::HandedOver { .. }), "{:?}", conv.state);
    let cases = cases_of(&w, &id).await;
    assert_eq!(cases.len(), 1, "still one case");
    assert_eq!(cases[0]["Status"], "New", "reopened with the picklist's default");
    assert!(cases[0]["Chat_Transcript__c"].as_str().unwrap().contains("talk to a human"), "{}", cases[0]);
}

#[tokio::test]
async fn topic_and_condition_triggers_and_update_rewrites_the_case() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let rules = r#"
kind: cases
cases:
  - name: billing
    on: topic
    topic: Billing
    action: update
    owner: Support Queue
    fields:
      - field: Subject
        expr: '"Billing chat: " + last_message'
  - name: angry
    on: condition
    when: 'contains_any(last_message, ["furious"])'
    transcript_field: Chat_Summary__c
"#;
    let mut d = w.daemon_with_rules(rules_with(tmp.path(), rules)).await;
    let hub = hub(&mut d);
    let (plain, _) = start(&hub, GRIPPER);
    let (billing, token) = start(&hub, "Where can I download my invoice?");
    let long = format!("I am furious about the calibration wizard. {}", "It keeps failing. ".repeat(30));
    let (furious, _) = start(&hub, &long);
    d.chat_round().await.unwrap();
    assert!(cases_of(&w, &plain).await.is_empty(), "no trigger, no case");
    let case = &cases_of(&w, &billing).await[0];
    assert_eq!(case["Subject"], "Billing chat: Where can I download my invoice?");
    assert_eq!(case["Status"], "New", "not closed unless the rule says so");
    let summary: Vec<Value> = w
        .admin
        .query(format!("SELECT Chat_Summary__c FROM Case WHERE Casebridge_Conversation__c = '{furious}'"))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(summary.len(), 1);
    // A 255-character field gets the transcript's latest 255 characters, not a refusal.
    let text = summary[0]["Chat_Summary__c"].as_str().expect("written");
    assert!(text.chars().count() <= 255 && text.starts_with("(earlier messages left out)"), "{text}");

    // A person takes the case; `action: update` fires again on the next decision and
    // rewrites the rule's fields, and leaves the owner be.
    d.cycle().await.unwrap();
    let case_id = case["Id"].as_str().unwrap().to_string();
    w.admin.update("Case", &case_id, &json!({ "OwnerId": w.id("human") })).await.unwrap();
    hub.post(&billing, Some(&token), "Where can I download my old invoices?", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    let conv = d.store().conversation(&billing).unwrap().unwrap();
    assert_eq!(conv.state, ConversationState::Open, "answered, not handed over");
    let cases = cases_of(&w, &billing).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["Subject"], "Billing chat: Where can I download my old invoices?");
    assert_eq!(cases[0]["OwnerId"], json!(w.id("human")), "the person keeps it");
}

#[tokio::test]
async fn a_rule_that_would_give_the_case_to_the_agent_user_makes_none_and_says_why() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let rules = "kind: cases\ncases:\n  - name: mine\n    on: start\n    owner: agent@test.example\n";
    let mut d = w.daemon_with_rules(rules_with(tmp.path(), rules)).await;
    let hub = hub(&mut d);
    let (id, _) = start(&hub, GRIPPER);
    d.chat_round().await.unwrap();
    assert!(cases_of(&w, &id).await.is_empty());
    let errors = d.store().sync_errors().unwrap();
    let error = errors.iter().find(|e| e.code == "CASE_OWNER_UNUSABLE").expect("a sync error");
    assert!(error.message.contains("agent user"), "{}", error.message);
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(conv.unanswered().is_empty(), "the visitor is still answered");
}

#[test]
fn a_cases_file_with_mistakes_is_refused_at_each_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"kind: cases
cases:
  - name: no-topic
    on: topic
  - name: no-condition
    on: condition
  - name: stray-topic
    on: start
    topic: Billing
  - name: bad-fields
    transcript_field: Contact.Description
    fields:
      - field: Account.Name
        from: company
      - field: Priority
        from: priority
        expr: '"High"'
      - field: Origin
  - name: broken-condition
    on: condition
    when: 'last_message ==='
  - name: no-topic
    on: handover
"#;
    std::fs::write(tmp.path().join("cases.yaml"), text).unwrap();
    let errors = RuleSet::load(tmp.path()).err().expect("refused");
    let shown: Vec<String> = errors.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect();
    let has = |line: usize, says: &str| {
        assert!(errors.iter().any(|e| e.line == line && e.message.contains(says)), "line {line} {says:?}: {shown:#?}")
    };
    has(3, "`on: topic` needs `topic`");
    has(5, "`on: condition` needs `when`");
    has(9, "`topic` is only read with `on: topic`");
    has(11, "\"Contact.Description\" is not a Case field name");
    has(13, "\"Account.Name\" is not a Case field name");
    has(15, "needs `from` or `expr` (one)");
    has(18, "needs `from` or `expr` (one)");
    has(21, "the condition does not compile");
    assert!(errors.iter().any(|e| e.message.contains("cases rule \"no-topic\" is defined twice")), "{shown:#?}");

    let reserved = "kind: cases\ncases:\n  - name: x\n    fields:\n      - field: OwnerId\n        from: owner\n";
    std::fs::write(tmp.path().join("cases.yaml"), reserved).unwrap();
    let errors = RuleSet::load(tmp.path()).err().expect("refused");
    assert!(errors[0].line == 5 && errors[0].message.contains("casebridge's to write"), "{}", errors[0]);
    std::fs::write(tmp.path().join("cases.yaml"), "kind: cases\ncases:\n  - name: x\n    on: sometimes\n").unwrap();
    let errors = RuleSet::load(tmp.path()).err().expect("refused");
    assert!(errors[0].line == 4 && errors[0].message.contains("unknown variant `sometimes`"), "{}", errors[0]);
    std::fs::write(tmp.path().join("cases.yaml"), "kind: cases\ncases:\n  - name: x\n    owners: Tier 2\n").unwrap();
    let errors = RuleSet::load(tmp.path()).err().expect("refused");
    assert!(errors[0].line == 4 && errors[0].message.contains("unknown field `owners`"), "{}", errors[0]);
}

#[tokio::test]
async fn a_chat_whose_visitor_goes_quiet_closes_and_so_does_its_rules_case() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub, id, token) = every_chat(&w, tmp.path()).await;
    d.cycle().await.unwrap();
    // A day passes without a word from the visitor.
    let mut conv = d.store().conversation(&id).unwrap().unwrap();
    conv.resolution.as_mut().expect("awaiting the visitor").since -= chrono::Duration::hours(25);
    d.store().commit(&conv, Vec::new()).unwrap();
    d.cycle().await.unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.state, ConversationState::Closed);
    let case = &cases_of(&w, &id).await[0];
    assert_eq!(case["Status"], "Closed", "{case}");
    let resolution: Vec<Value> = w
        .admin
        .query(format!("SELECT AI_Resolution__c FROM Case WHERE Casebridge_Conversation__c = '{id}'"))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(resolution[0]["AI_Resolution__c"], "soft_resolution");
    // The visitor comes back: the chat reopens.
    assert!(hub.post(&id, Some(&token), "One more question about the gripper", "127.0.0.1").is_ok());
}

#[tokio::test]
async fn a_persons_reply_on_a_rule_case_answers_the_chat_without_waking_it_again() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, _hub, id, _) = every_chat(&w, tmp.path()).await;
    d.cycle().await.unwrap();
    let case_id = cases_of(&w, &id).await[0]["Id"].as_str().unwrap().to_string();
    let comment = json!({ "ParentId": case_id, "CommentBody": "Hugo here: I will call you.", "IsPublished": true });
    w.admin.create("CaseComment", &comment).await.unwrap();
    d.cycle().await.unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(conv.parts.iter().any(|p| p.body == "Hugo here: I will call you."), "the reply reaches the chat");
    assert_eq!(conv.state, ConversationState::Open);
    assert!(conv.retry_at.is_none(), "nothing left to decide: {:?}", conv.retry_at);
    assert!(conv.unhandled_customer_parts().is_empty());
    assert!(d.store().due_chats(chrono::Utc::now()).unwrap().is_empty());
}

#[tokio::test]
async fn a_chat_closed_before_its_case_is_read_back_still_closes_the_case() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub, id, token) = every_chat(&w, tmp.path()).await;
    // No cycle between: the case was never read back.
    hub.post(&id, Some(&token), "That fixed it, thanks!", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert_eq!(d.store().conversation(&id).unwrap().unwrap().state, ConversationState::Closed);
    let case = &cases_of(&w, &id).await[0];
    assert_eq!(case["Status"], "Closed", "{case}");
    assert!(d.store().sync_errors().unwrap().is_empty(), "{:?}", d.store().sync_errors().unwrap());
}

async fn csat_on_case(w: &World, conversation: &str) -> Value {
    let rows: Vec<Value> = w
        .admin
        .query(format!("SELECT AI_CSAT__c FROM Case WHERE Casebridge_Conversation__c = '{conversation}'"))
        .collect_all()
        .await
        .unwrap();
    rows[0]["AI_CSAT__c"].clone()
}

#[tokio::test]
async fn a_rating_goes_onto_the_chats_case_even_one_not_read_back_yet_and_a_new_one_replaces_it() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub, id, token) = every_chat(&w, tmp.path()).await;
    // Closed and rated before the case was read back: written by the conversation's id,
    // behind the case's create, in the round the rating arrives.
    hub.post(&id, Some(&token), "That fixed it, thanks!", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    hub.rate(&id, Some(&token), 4, Some("quick and right"), "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert_eq!(csat_on_case(&w, &id).await.as_f64(), Some(4.0), "a Number field reads back as 4.0");
    assert!(d.store().conversation(&id).unwrap().unwrap().csat.unwrap().mapped);
    // A second rating replaces the first, on the case too.
    hub.rate(&id, Some(&token), 2, None, "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert_eq!(csat_on_case(&w, &id).await.as_f64(), Some(2.0));
    assert!(d.store().sync_errors().unwrap().is_empty(), "{:?}", d.store().sync_errors().unwrap());
    assert!(d.store().due_chats(chrono::Utc::now()).unwrap().is_empty());
}

#[tokio::test]
async fn a_rating_given_before_the_chat_had_a_case_goes_onto_the_case_a_handover_makes() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut d = w.daemon_with_rules(load_rules(&copy_rules(tmp.path()))).await;
    let hub = hub(&mut d);
    let (id, token) = start(&hub, GRIPPER);
    d.chat_round().await.unwrap();
    hub.rate(&id, Some(&token), 3, None, "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert!(cases_of(&w, &id).await.is_empty(), "no case yet");
    assert!(!d.store().conversation(&id).unwrap().unwrap().csat.unwrap().mapped, "it waits for one");
    hub.post(&id, Some(&token), "I want to talk to a human agent please.", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert_eq!(cases_of(&w, &id).await.len(), 1, "the handover made the case");
    // The rating's write waited behind the case's create: it goes at the next round.
    d.chat_round().await.unwrap();
    assert_eq!(csat_on_case(&w, &id).await.as_f64(), Some(3.0));
    assert!(d.store().sync_errors().unwrap().is_empty(), "{:?}", d.store().sync_errors().unwrap());
}

#[tokio::test]
async fn a_rating_given_while_the_daemon_decided_on_an_older_copy_stands() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (d, hub, id, token) = every_chat(&w, tmp.path()).await;
    let older = d.store().conversation(&id).unwrap().unwrap();
    hub.rate(&id, Some(&token), 5, None, "127.0.0.1").unwrap();
    // The daemon commits what it decided on the copy it read before the rating.
    hub.commit(older, Vec::new()).unwrap();
    let now = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(now.csat.map(|c| c.rating), Some(5));
    assert!(now.retry_at.is_some(), "still due, to write it onto the case");
}

#[tokio::test]
async fn a_rule_makes_a_reply_ask_for_a_rating_once_its_condition_holds_and_never_once_rated() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let rules = copy_rules(tmp.path());
    let resolution = std::fs::read_to_string(rules.join("resolution.yaml")).unwrap();
    std::fs::write(rules.join("resolution.yaml"), format!("{resolution}ask_rating_when: turns >= 2\n")).unwrap();
    let mut d = w.daemon_with_rules(load_rules(&rules)).await;
    let hub = hub(&mut d);
    let (id, token) = start(&hub, GRIPPER);
    d.chat_round().await.unwrap();
    let asking = |hub: &Messenger| {
        let messages = hub.messages(&id, Some(&token), 0).unwrap();
        messages.iter().filter(|m| m.asks_rating).map(|m| m.body.clone()).collect::<Vec<_>>()
    };
    assert!(asking(&hub).is_empty(), "the first answer asks nothing");
    hub.post(&id, Some(&token), "And how do I update the firmware?", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    let asked = asking(&hub);
    assert_eq!(asked.len(), 1, "the second answer asks: {asked:?}");
    assert!(asked[0].to_lowercase().contains("firmware"), "it is the answer that asks: {asked:?}");
    let conv = d.store().conversation(&id).unwrap().unwrap();
    let fired = conv.decisions.last().unwrap().trace.0.iter().any(|e| e.rule == "ask_rating_when" && e.fired);
    assert!(fired, "traced");
    // Once rated, no reply asks again (and the one that asked no longer shows the ask).
    hub.rate(&id, Some(&token), 5, None, "127.0.0.1").unwrap();
    hub.post(&id, Some(&token), "How do I calibrate the gripper again?", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    assert!(asking(&hub).is_empty(), "{:?}", asking(&hub));
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(!conv.parts.last().unwrap().asks_rating);
}

#[tokio::test]
async fn a_handover_onto_a_case_a_person_closed_opens_it_again() {
    let w = World::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, hub, id, token) = every_chat(&w, tmp.path()).await;
    d.cycle().await.unwrap();
    let case_id = cases_of(&w, &id).await[0]["Id"].as_str().unwrap().to_string();
    w.admin.update("Case", &case_id, &json!({ "Status": "Closed" })).await.unwrap();
    d.cycle().await.unwrap();
    assert_eq!(d.store().conversation(&id).unwrap().unwrap().state, ConversationState::Open, "the agent goes on");
    hub.post(&id, Some(&token), "I'd like to talk to a human please", "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    d.cycle().await.unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(matches!(conv.state, ConversationState::HandedOver { .. }), "{:?}", conv.state);
    assert_eq!(cases_of(&w, &id).await[0]["Status"], "New");
    assert_eq!(hub.post(&id, Some(&token), "Still there?", "127.0.0.1").map(|_| ()).ok(), Some(()));
}

#[tokio::test]
async fn a_decision_on_an_older_copy_keeps_what_happened_meanwhile() {
    let w = World::new().await;
    let mut d = w.daemon_with_rules(load_rules(&root().join("rules"))).await;
    let hub = hub(&mut d);
    let (id, token) = start(&hub, GRIPPER);
    d.chat_round().await.unwrap();
    // The daemon holds a copy; a person links a case from the admin page meanwhile.
    let older = d.store().conversation(&id).unwrap().unwrap();
    hub.link_case(&id, "500000000000001AAA", &w.id("support_queue"), "made by hand").unwrap();
    hub.commit(older.clone(), Vec::new()).unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert!(matches!(conv.state, ConversationState::HandedOver { .. }), "{:?}", conv.state);
    assert_eq!(conv.case_id(), Some("500000000000001AAA"));

    // The daemon closes a chat (a resolution) while the visitor writes: it stays open.
    let (id, token2) = start(&hub, GRIPPER);
    let _ = token;
    d.chat_round().await.unwrap();
    let mut closing = d.store().conversation(&id).unwrap().unwrap();
    hub.post(&id, Some(&token2), "One more question: how do I grease the arm?", "127.0.0.1").unwrap();
    closing.state = ConversationState::Closed;
    closing.messenger.as_mut().unwrap().ended_by_case = false;
    hub.commit(closing, Vec::new()).unwrap();
    let conv = d.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.state, ConversationState::Open);
    assert!(conv.retry_at.is_some(), "and due, to answer the message");
}
