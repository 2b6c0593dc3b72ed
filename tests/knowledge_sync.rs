//! Salesforce Knowledge as the agent's help centre, against the simulator: published
//! articles are answered from, a new version replaces the old, an archived article leaves,
//! drafts never count, an idle sync costs one query, and a help centre that never loaded
//! holds conversations back instead of handing them all over.

mod common;

use std::time::Duration;

use casebridge::agent::Agent;
use casebridge::agent::kb::KnowledgeBase;
use casebridge::config::{KnowledgeChannel, SalesforceKnowledgeConfig};
use casebridge::daemon::{Daemon, DaemonSettings, EventKind};
use casebridge::sim::org::WriteCtx;
use chrono::Utc;
use common::*;
use serde_json::json;

fn knowledge(body_fields: &[&str]) -> SalesforceKnowledgeConfig {
    SalesforceKnowledgeConfig {
        body_fields: body_fields.iter().map(|f| f.to_string()).collect(),
        article_url: "https://help.example/s/article/{UrlName}".into(),
        language: "en_US".into(),
        interval: Duration::ZERO,
        object: "Knowledge__kav".into(),
        channels: vec![KnowledgeChannel::Pkb, KnowledgeChannel::Csp],
    }
}

async fn daemon(w: &World, config: SalesforceKnowledgeConfig) -> Daemon {
    let settings =
        DaemonSettings { salesforce_knowledge: Some(config), overlap: Duration::from_secs(1), ..test_settings(None) };
    let agent = Agent::KnowledgeBase(KnowledgeBase::new(Vec::new(), 0.35));
    w.daemon_full(None, agent, builtin_rules(), settings).await
}

/// Writes to the org as its admin, as an author in Salesforce would.
fn as_admin<T>(w: &World, change: impl FnOnce(&mut casebridge::sim::org::Org, &WriteCtx) -> T) -> T {
    let ctx = WriteCtx { user_id: w.id("admin"), now: Utc::now(), allow_system_fields: false };
    w.sim.with_org(|org| change(org, &ctx))
}

fn publish(w: &World, title: &str, url_name: &str, answer: &str) -> String {
    as_admin(w, |org, ctx| {
        let body = json!({ "Title": title, "UrlName": url_name, "Answer__c": answer, "IsVisibleInPkb": true });
        let id = org.create("Knowledge__kav", body.as_object().unwrap(), ctx).unwrap();
        org.set_publish_status(&id, "Online", ctx).unwrap();
        id
    })
}

#[tokio::test]
async fn published_updated_and_archived_articles_follow_the_org() {
    let w = World::new().await;
    let v1 = publish(
        &w,
        "Warranty and repairs",
        "warranty-and-repairs",
        "<h2>What the warranty covers</h2><p>Every arm has a two-year warranty on parts and labour.</p>",
    );
    as_admin(&w, |org, ctx| {
        let draft = json!({ "Title": "Secret roadmap", "UrlName": "roadmap", "Answer__c": "<p>The warranty roadmap grows to ten years.</p>" });
        org.create("Knowledge__kav", draft.as_object().unwrap(), ctx).unwrap()
    });
    let mut d = daemon(&w, knowledge(&["Answer__c"])).await;

    let first =
        w.case_for_agent(json!({ "Subject": "Warranty", "Description": "What warranty does the arm have?" })).await;
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().articles, 1, "the draft is not part of the help centre");
    let reply = &w.agent_comment_bodies(&first).await[0];
    assert!(reply.contains("two-year warranty"), "{reply}");
    assert!(reply.contains("https://help.example/s/article/warranty-and-repairs"), "{reply}");
    assert!(!reply.contains("ten years"));

    // A new version is published: the next answers come from it.
    let article = as_admin(&w, |org, _| org.get(&v1).unwrap().str("KnowledgeArticleId").unwrap().to_string());
    as_admin(&w, |org, ctx| {
        let v2 = org.new_draft(&article, ctx).unwrap();
        let change = json!({ "Answer__c": "<h2>What the warranty covers</h2><p>Every arm now has a three-year warranty on parts and labour.</p>" });
        org.update("Knowledge__kav", &v2, change.as_object().unwrap(), ctx).unwrap();
        org.set_publish_status(&v2, "Online", ctx).unwrap();
    });
    let second =
        w.case_for_agent(json!({ "Subject": "Warranty", "Description": "What does the arm warranty cover?" })).await;
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().added_or_updated, 1, "{:?}", report.knowledge);
    let reply = &w.agent_comment_bodies(&second).await[0];
    assert!(reply.contains("three-year warranty"), "{reply}");

    // Archived: it leaves, and a question only it answered is handed over.
    let online = as_admin(&w, |org, _| {
        org.all("Knowledge__kav")
            .find(|v| v.str("PublishStatus") == Some("Online") && v.str("KnowledgeArticleId") == Some(article.as_str()))
            .unwrap()
            .id
            .clone()
    });
    as_admin(&w, |org, ctx| org.set_publish_status(&online, "Archived", ctx).unwrap());
    let third =
        w.case_for_agent(json!({ "Subject": "Warranty", "Description": "What warranty does the arm have?" })).await;
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().removed, 1, "{:?}", report.knowledge);
    assert_eq!(report.knowledge.as_ref().unwrap().articles, 0);
    assert!(
        report.events.iter().any(|e| e.conversation_id == third && e.kind == EventKind::HandedOver),
        "{:?}",
        report.events
    );

    // Once the overlap has passed, a sync with nothing changed is one query.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    d.cycle().await.unwrap();
    let idle = d.cycle().await.unwrap();
    assert_eq!(idle.knowledge.as_ref().unwrap().queries, 1, "{:?}", idle.knowledge);
    assert_eq!(idle.api_calls, 2, "the case poll and the knowledge check");
}

#[tokio::test]
async fn a_help_centre_that_never_loaded_holds_conversations_back() {
    let w = World::new().await;
    publish(&w, "Warranty and repairs", "warranty-and-repairs", "<p>Two years.</p>");
    // A body field the org does not have: every sync is refused.
    let mut d = daemon(&w, knowledge(&["Body_Text__c"])).await;
    let case = w.case_for_agent(json!({ "Subject": "Warranty", "Description": "How long is the warranty?" })).await;
    let report = d.cycle().await.unwrap();
    assert!(report.events.is_empty(), "nothing decided: {:?}", report.events);
    assert!(
        report.poll_error.as_deref().unwrap_or_default().contains("Salesforce Knowledge"),
        "{:?}",
        report.poll_error
    );
    let owner: serde_json::Value = w.admin.get("Case", &case, Some(&["OwnerId"])).await.unwrap();
    assert_eq!(owner["OwnerId"], json!(w.id("agent")), "not handed over for want of articles");
    let errors = d.store().sync_errors().unwrap();
    assert!(errors.iter().any(|e| e.operation == "knowledge_sync" && e.code == "INVALID_FIELD"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ask_reads_the_orgs_articles_first() {
    let w = World::new().await;
    publish(&w, "Warranty and repairs", "warranty-and-repairs", "<p>Every arm has a two-year warranty.</p>");
    let agent = "{backend: knowledge_base, salesforce_knowledge: {body_fields: [Answer__c], article_url: \"https://help.example/s/article/{UrlName}\"}}";
    let config = test_config_with_agent(w.path(), w.sim.url(), "10s", agent, "");
    let config = config.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        casebridge(&["agent", "ask", "--config", &config, "What warranty does the arm have?"])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("two-year warranty") && stdout.contains("warranty-and-repairs#intro"), "{stdout}");
}

/// The test org has an article published to the internal app only ("Granting a refund
/// outside policy"): a customer asking its question is never given it, whatever the wording,
/// and an admin who names the internal channel gets it (so the filter is what keeps it out).
#[tokio::test]
async fn an_agents_only_article_is_never_quoted_to_a_customer() {
    let w = World::new().await;
    let question = "How do I get a refund outside policy? Is there an override code?";
    let mut d = daemon(&w, knowledge(&["Answer__c"])).await;
    let case = w.case_for_agent(json!({ "Subject": "Refund outside policy", "Description": question })).await;
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().articles, 0, "{:?}", report.knowledge);
    for reply in w.agent_comment_bodies(&case).await {
        assert!(!reply.contains("STAFF-OVERRIDE-77") && !reply.contains("refund-outside-policy"), "{reply}");
    }
    assert!(
        report.events.iter().any(|e| e.conversation_id == case && e.kind == EventKind::HandedOver),
        "nothing public answers it: {:?}",
        report.events
    );

    // The internal channel, named on purpose: now it is part of the help centre.
    let w = World::new().await;
    let mut config = knowledge(&["Answer__c"]);
    config.channels = vec![KnowledgeChannel::App];
    let mut d = daemon(&w, config).await;
    let case = w.case_for_agent(json!({ "Subject": "Refund outside policy", "Description": question })).await;
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().articles, 1, "{:?}", report.knowledge);
    let replies = w.agent_comment_bodies(&case).await;
    assert!(replies.iter().any(|r| r.contains("STAFF-OVERRIDE-77")), "{replies:?}");
}

/// An article moved off every customer channel (a new version published to the internal
/// app only) leaves the help centre at the next sync.
#[tokio::test]
async fn an_article_taken_off_customer_channels_leaves() {
    let w = World::new().await;
    let v1 = publish(&w, "Warranty and repairs", "warranty-and-repairs", "<p>Every arm has a two-year warranty.</p>");
    let mut d = daemon(&w, knowledge(&["Answer__c"])).await;
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().articles, 1);
    let article = as_admin(&w, |org, _| org.get(&v1).unwrap().str("KnowledgeArticleId").unwrap().to_string());
    as_admin(&w, |org, ctx| {
        let v2 = org.new_draft(&article, ctx).unwrap();
        let change = json!({ "IsVisibleInPkb": false, "IsVisibleInCsp": false });
        org.update("Knowledge__kav", &v2, change.as_object().unwrap(), ctx).unwrap();
        org.set_publish_status(&v2, "Online", ctx).unwrap();
    });
    let report = d.cycle().await.unwrap();
    assert_eq!(report.knowledge.as_ref().unwrap().removed, 1, "{:?}", report.knowledge);
    assert_eq!(report.knowledge.as_ref().unwrap().articles, 0);
}
