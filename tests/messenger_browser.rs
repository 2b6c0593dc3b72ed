//! The messenger widget in a real headless browser (Debian's chromium, driven through
//! chromedriver): a page that embeds it with one tag, a question typed with the keyboard and
//! answered over Server-Sent Events by the running daemon, a handover that becomes a case, a
//! person's comment made in the simulator arriving in the widget, and the conversation still
//! there after a reload. CI installs both (`.ci/run`); elsewhere the test says how and skips.

mod common;

use casebridge::channels::messenger::{Messenger, MessengerSettings, api};
use common::webdriver::{self, Browser, ENTER, ESCAPE};
use common::*;
use serde_json::{Value, json};

type Running = tokio::task::JoinHandle<Result<(), casebridge::daemon::DaemonError>>;

/// The daemon running with its messenger on a free loopback port: the address, the switch
/// that stops both, and the daemon's task.
fn serve(mut daemon: casebridge::daemon::Daemon) -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>, Running) {
    let hub = Messenger::new(daemon.store().clone(), MessengerSettings::default()).unwrap();
    daemon.attach_messenger(hub.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_server = stopped.clone();
    let addr = api::serve_on(listener, hub, async move {
        let _ = stopped_server.wait_for(|s| *s).await;
    })
    .unwrap();
    let mut stopped_daemon = stopped.clone();
    let running = tokio::spawn(daemon.run(async move {
        let _ = stopped_daemon.wait_for(|s| *s).await;
    }));
    (addr, stop, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_in_a_browser_and_a_person_answers_through_the_case() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let w = World::new().await;
    let daemon = w.daemon_with_rules(load_rules(&root().join("rules"))).await;
    let (addr, stop, running) = serve(daemon);
    let base = format!("http://{addr}/");

    let b = Browser::start(chromium, driver).await;
    b.open(&base).await;
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    assert_eq!(b.attribute(&toggle, "aria-expanded").await.as_deref(), Some("false"));
    b.click(&toggle).await;
    assert_eq!(b.attribute(&toggle, "aria-expanded").await.as_deref(), Some("true"));
    let focused = b.script("return document.activeElement.id").await;
    assert_eq!(focused, "casebridge-input", "opening the chat puts the keyboard in the text box");
    let label = b.script("return document.querySelector('label[for=casebridge-input]').textContent").await;
    assert_eq!(label, "Your message", "the text box is labelled for screen readers");
    assert_eq!(b.script("return document.querySelector('[role=log]').getAttribute('aria-live')").await, "polite");

    b.keys(&format!("How do I recalibrate the gripper?{ENTER}")).await;
    b.wait_for_text("li[data-author=visitor]", "recalibrate the gripper").await;
    b.wait_for_text("li[data-author=agent]", "Recalibrate").await;

    b.keys(&format!("Can I talk to a person please?{ENTER}")).await;
    b.wait_for_text("li[data-author=agent]", "passed this to our support team").await;
    let id = b
        .script(
            "const k = Object.keys(localStorage).find(k => k.startsWith('casebridge-messenger:'));
             return JSON.parse(localStorage.getItem(k)).id",
        )
        .await;
    let id = id.as_str().unwrap().to_string();
    let soql = format!("SELECT Id, OwnerId FROM Case WHERE Casebridge_Conversation__c = '{id}'");
    let mut case: Option<Value> = None;
    for _ in 0..100 {
        let rows: Vec<Value> = w.admin.query(soql.clone()).collect_all().await.unwrap();
        if let Some(row) = rows.into_iter().next() {
            case = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let case = case.expect("the handover made a case");
    assert_eq!(case["OwnerId"], json!(w.id("support_queue")));

    let case_id = case["Id"].as_str().unwrap();
    w.admin
        .create(
            "CaseComment",
            &json!({ "ParentId": case_id, "CommentBody": "Hi, Alex here. Happy to help.", "IsPublished": true }),
        )
        .await
        .unwrap();
    b.wait_for_text("li[data-author=human]", "Alex here").await;

    // Escape closes the chat and gives the keyboard back to the button.
    b.keys(ESCAPE).await;
    assert_eq!(b.attribute(&toggle, "aria-expanded").await.as_deref(), Some("false"));
    assert_eq!(b.script("return document.getElementById('casebridge-panel').hidden").await, true);
    assert_eq!(
        b.script("return getComputedStyle(document.getElementById('casebridge-panel')).display").await,
        "none",
        "closed means out of sight, not only marked hidden"
    );
    assert_eq!(
        b.script("return document.activeElement === document.querySelector('[aria-controls=casebridge-panel]')").await,
        true
    );

    // A reload keeps the conversation.
    b.open(&base).await;
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    b.click(&toggle).await;
    b.wait_for_text("li[data-author=human]", "Alex here").await;
    assert_eq!(b.find_all("li[data-author=agent]").await.len(), 2, "each message once");

    b.quit().await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

/// The admin page's messenger inbox in a real browser: a verified contact's chat, its live
/// Salesforce panel (contact, account, the opportunity selector, open cases) and the New
/// case form, filled and sent, answered with the case's link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_panel_and_the_new_case_form_work_in_a_browser() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let w = World::new().await;
    let mut daemon = w.daemon_with_rules(load_rules(&root().join("rules"))).await;
    let settings = MessengerSettings {
        identity_secret: Some(casebridge::model::Secret::new("s")),
        ..MessengerSettings::default()
    };
    let hub = Messenger::new(daemon.store().clone(), settings).unwrap();
    daemon.attach_messenger(hub.clone());
    let email = "jane@customer.example";
    let request = casebridge::channels::messenger::StartRequest {
        name: Some("Jane".into()),
        email: Some(email.into()),
        user_hash: Some(casebridge::channels::messenger::token::identity_hash(b"s", email)),
        message: "Can I get a quote for ten grippers?".into(),
    };
    let id = hub.start(request, "127.0.0.1").unwrap().conversation_id;
    daemon.chat_round().await.unwrap();
    let state = daemon.admin_state(None, casebridge::model::Secret::new("page-token"));
    let addr =
        casebridge::report::admin::serve("127.0.0.1:0".parse().unwrap(), state, std::future::pending()).await.unwrap();

    let b = Browser::start(chromium, driver).await;
    b.open(&format!("http://{addr}/#token=page-token")).await;
    b.wait_for_text("#inbox tr.pick", "jane@customer.example (verified)").await;
    let row = b.find("#inbox tr.pick").await;
    b.click(&row).await;
    b.wait_for_text("#chat-panel dd", "Jane Doe").await;
    b.wait_for_text("#chat-panel dd", "Acme O'Brien & Co").await;
    b.wait_for_text("#chat-panel dd", "Proposal").await;
    b.wait_for_text("#chat-panel dd", "Printer on fire").await;
    b.wait_for_text("#case-owner", "Owner:").await;
    let subject = b.find("#case-Subject").await;
    assert_eq!(
        b.script("return document.getElementById('case-Subject').value").await,
        "Can I get a quote for ten grippers?"
    );
    let _ = subject;
    b.script("document.getElementById('case-Product__c').value = 'Gripper'; return true").await;
    let submit = b.find("#chat-form button[type=submit]").await;
    b.click(&submit).await;
    b.wait_for_text("#case-result", "Case created").await;
    let rows: Vec<Value> = w
        .admin
        .query(format!("SELECT Id, Product__c, ContactId FROM Case WHERE Casebridge_Conversation__c = '{id}'"))
        .collect_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Product__c"], "Gripper");
    assert_eq!(rows[0]["ContactId"], json!(w.id("jane")));
    b.quit().await;
}

/// Articles offered to confirm, in a real browser: links with their first lines (opening
/// in a new tab, `rel="noopener"`), two buttons, and "Yes, that answered it" clicked: the
/// visitor's answer is sent, the buttons go, and the chat is a hard resolution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggested_articles_are_links_and_a_click_on_yes_confirms() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let w = World::new().await;
    let kb = casebridge::agent::kb::KnowledgeBase::load(
        &root().join("examples/demo/help-center"),
        "https://help.example",
        0.35,
    )
    .unwrap();
    let agent = casebridge::agent::Agent::KnowledgeBase(kb);
    let daemon = w.daemon_full(None, agent, load_rules(&root().join("rules")), test_settings(None)).await;
    let store = daemon.store().clone();
    let (addr, stop, running) = serve(daemon);

    let b = Browser::start(chromium, driver).await;
    b.open(&format!("http://{addr}/")).await;
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    b.click(&toggle).await;
    b.keys(&format!("My gripper drifts after every restart, how do I recalibrate it?{ENTER}")).await;
    b.wait_for_text("li[data-author=agent]", "may answer your question").await;
    let link = b.find("li[data-author=agent] ul a").await;
    assert_eq!(b.text(&link).await, "Calibrating the gripper");
    assert_eq!(
        b.attribute(&link, "href").await.as_deref(),
        Some("https://help.acme-robotics.example/articles/gripper-calibration")
    );
    assert_eq!(b.attribute(&link, "target").await.as_deref(), Some("_blank"));
    assert!(b.attribute(&link, "rel").await.unwrap_or_default().contains("noopener"));
    let item = b.find("li[data-author=agent]").await;
    assert!(b.text(&item).await.contains("Recalibrate the gripper when it drifts"), "the first lines show");
    let buttons = b.find_all("[data-choices] button").await;
    assert_eq!(buttons.len(), 2);
    assert_eq!(b.text(&buttons[0]).await, "Yes, that answered it");
    assert_eq!(b.text(&buttons[1]).await, "No, talk to a person");

    b.click(&buttons[0]).await;
    b.wait_for_text("li[data-author=visitor]", "Yes, that answered it").await;
    assert!(b.find_all("[data-choices]").await.is_empty(), "the buttons answer the latest message only");
    let id = b
        .script(
            "const k = Object.keys(localStorage).find(k => k.startsWith('casebridge-messenger:'));
             return JSON.parse(localStorage.getItem(k)).id",
        )
        .await;
    let id = id.as_str().unwrap().to_string();
    let mut state = None;
    for _ in 0..100 {
        state = store.conversation(&id).unwrap().and_then(|c| c.resolution).map(|r| r.state);
        if state == Some(casebridge::model::Resolution::HardResolution) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, Some(casebridge::model::Resolution::HardResolution));

    b.quit().await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}
