//! The widget as a visitor meets it, in a real headless browser (chromium through
//! chromedriver): an answer's paragraphs, lists and links (a source's title linked, opening
//! in a new tab), nothing from the server ever parsed as HTML, the agent seen typing, the
//! close control, the unread badge, the full screen on a narrow one, the texts in the
//! visitor's language, and no serious or critical accessibility violation as axe-core
//! measures them. The agent's side is played through the messenger's hub (the path the
//! daemon commits by), so each message is known exactly. Screenshots are kept in
//! target/screenshots (`UPDATE_SCREENSHOTS=1` refreshes the README's, in docs/screenshots).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use casebridge::channels::messenger::{Messenger, MessengerSettings, api, daemon_part};
use casebridge::config::widget_texts::{WidgetTexts, script_json};
use casebridge::model::{AuthorKind, Source};
use casebridge::store::Store;
use common::webdriver::{self, Browser, ENTER};

const ARTICLE: &str = "https://help.acme-robotics.example/articles/firmware-updates";

/// A reply as the agent writes one: paragraphs, a numbered and a bulleted list, and its
/// source named the way the knowledge-base agent names it.
fn answer() -> String {
    format!(
        "Update the firmware from the app.\n\n1. Open Settings.\n2. Choose Firmware.\n\n- Keep the arm still.\n- Do not unplug it.\n\n\
         You can read more in our help article \"Firmware updates\": {ARTICLE}"
    )
}

/// A reply with a bare link, and text that would be markup or a script link if it were
/// ever parsed as HTML.
const HOSTILE: &str = "Status: https://status.acme-robotics.example/now. <img src=x onerror=\"document.title='owned'\"> \
                       <a href=\"javascript:alert(1)\">click</a> javascript:alert(1)";

/// The messenger's API alone (no daemon) on a free loopback port.
async fn serve(settings: MessengerSettings) -> (String, Arc<Messenger>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let hub = Messenger::new(store, settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = api::serve_on(listener, hub.clone(), std::future::pending()).unwrap();
    (format!("http://{addr}/"), hub, dir)
}

/// The agent's reply committed into the conversation, as the daemon commits one.
fn reply(hub: &Messenger, id: &str, body: String, sources: Vec<Source>) {
    let mut conv = hub.store().conversation(id).unwrap().expect("the conversation");
    let mut part =
        daemon_part(format!("{id}-reply-{}", conv.parts.len()), AuthorKind::Bot, Some("AI agent".into()), body);
    part.sources = sources;
    conv.parts.push(part);
    conv.handled.extend(conv.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.id.clone()));
    hub.commit(conv, Vec::new()).unwrap();
}

async fn conversation_id(b: &Browser) -> String {
    let id = b
        .script(
            "const k = Object.keys(localStorage).find(k => k.startsWith('casebridge-messenger:'));
             return k ? JSON.parse(localStorage.getItem(k)).id : ''",
        )
        .await;
    id.as_str().unwrap_or_default().to_string()
}

async fn ask(b: &Browser, question: &str) -> String {
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    b.click(&toggle).await;
    b.keys(&format!("{question}{ENTER}")).await;
    b.wait_for_text("li[data-author=visitor]", question).await;
    conversation_id(b).await
}

async fn wait_until(b: &Browser, script: &str, what: &str) {
    for _ in 0..150 {
        if b.script(script).await == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen in 15 s; the page: {}", b.source().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_shows_its_paragraphs_lists_and_links_and_the_agent_is_seen_typing() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let (base, hub, _dir) = serve(MessengerSettings::default()).await;
    let b = Browser::start(chromium, driver).await;
    b.resize(900, 720).await;
    b.open(&base).await;
    let id = ask(&b, "How do I update the firmware?").await;

    hub.typing(&id);
    wait_until(&b, "return !document.querySelector('[data-typing]').hidden", "the typing indicator").await;
    assert_eq!(b.text(&b.find("[data-typing]").await).await, "Assistant is typing…");
    b.screenshot("messenger-typing").await;

    reply(&hub, &id, answer(), vec![Source { title: "Firmware updates".into(), url: ARTICLE.into() }]);
    b.wait_for_text("li[data-author=agent]", "Update the firmware").await;
    assert_eq!(b.script("return document.querySelector('[data-typing]').hidden").await, true, "the reply ends it");
    let counts = b
        .script(
            "const a = document.querySelector('li[data-author=agent]');
             return [a.querySelectorAll('ol > li').length, a.querySelectorAll('ul > li').length,
                     a.querySelectorAll('p').length, a.querySelectorAll('img, script').length]",
        )
        .await;
    assert_eq!(counts, serde_json::json!([2, 2, 2, 0]), "two steps, two bullets, two paragraphs, no markup");
    let links = b.find_all("li[data-author=agent] a").await;
    assert_eq!(links.len(), 1);
    assert_eq!(b.text(&links[0]).await, "Firmware updates", "the source's title, not its address");
    assert_eq!(b.attribute(&links[0], "href").await.as_deref(), Some(ARTICLE));
    assert_eq!(b.attribute(&links[0], "target").await.as_deref(), Some("_blank"));
    assert!(b.attribute(&links[0], "rel").await.unwrap_or_default().contains("noopener"));
    b.screenshot("messenger-answer").await;

    reply(&hub, &id, HOSTILE.into(), Vec::new());
    b.wait_for_text("li[data-author=agent]:last-child", "Status").await;
    let links = b.find_all("li[data-author=agent]:last-child a").await;
    assert_eq!(links.len(), 1, "the bare link only; never javascript:");
    assert_eq!(
        b.attribute(&links[0], "href").await.as_deref(),
        Some("https://status.acme-robotics.example/now"),
        "a sentence's full stop is not part of the link"
    );
    let markup =
        b.script("return document.querySelectorAll('[data-casebridge] img, [data-casebridge] script').length").await;
    assert_eq!(markup, 0);
    let text = b.text(&b.find("li[data-author=agent]:last-child").await).await;
    assert!(text.contains("<img src=x") && text.contains("javascript:alert(1)"), "shown as the text it is: {text}");
    assert_ne!(b.script("return document.title").await, "owned");

    if let Some(axe) = webdriver::axe_or_skip() {
        let found = b.accessibility_violations(&axe, "[data-casebridge=messenger]").await;
        assert!(found.is_empty(), "axe-core: {found:#?}");
    }
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_while_closed_are_counted_on_the_launcher_and_a_narrow_screen_gets_the_whole_panel() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let (base, hub, _dir) = serve(MessengerSettings::default()).await;
    let b = Browser::start(chromium, driver).await;
    b.open(&base).await;
    let id = ask(&b, "Is my order shipped?").await;

    let close = b.find("[data-close]").await;
    assert_eq!(b.attribute(&close, "aria-label").await.as_deref(), Some("Close chat"));
    b.click(&close).await;
    assert_eq!(b.script("return document.getElementById('casebridge-panel').hidden").await, true);
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    assert_eq!(b.attribute(&toggle, "aria-expanded").await.as_deref(), Some("false"));
    assert_eq!(
        b.script("return document.activeElement.getAttribute('aria-controls')").await,
        "casebridge-panel",
        "closing gives the keyboard back to the launcher"
    );

    reply(&hub, &id, "It left the warehouse this morning.".into(), Vec::new());
    reply(&hub, &id, "It should arrive on Thursday.".into(), Vec::new());
    wait_until(&b, "return document.querySelector('[data-unread]')?.textContent === '2'", "the unread count").await;
    assert_eq!(b.attribute(&toggle, "aria-label").await.as_deref(), Some("Chat with us (2 unread)"));
    b.screenshot("messenger-unread").await;
    b.click(&toggle).await;
    assert_eq!(b.script("return document.querySelector('[data-unread]').hidden").await, true, "read once opened");

    // A reply that arrives while the panel is open is read as it comes; after a reload, the
    // replies read before are not counted again.
    reply(&hub, &id, "One more thing: keep the box.".into(), Vec::new());
    b.wait_for_text("li[data-author=agent]", "keep the box").await;
    b.open(&base).await;
    b.find("button[aria-controls=casebridge-panel]").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(b.script("return document.querySelector('[data-unread]').hidden").await, true);

    b.resize(390, 844).await;
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    b.click(&toggle).await;
    let fills = b
        .script(
            "const r = document.getElementById('casebridge-panel').getBoundingClientRect();
             return Math.round(r.width) === window.innerWidth && Math.round(r.height) === window.innerHeight",
        )
        .await;
    assert_eq!(fills, true, "the panel takes the whole narrow screen");
    b.screenshot("messenger-narrow").await;
    if let Some(axe) = webdriver::axe_or_skip() {
        let found = b.accessibility_violations(&axe, "[data-casebridge=messenger]").await;
        assert!(found.is_empty(), "axe-core: {found:#?}");
    }
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_speaks_the_language_the_browser_prefers() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let mut texts = BTreeMap::new();
    let french = WidgetTexts {
        title: Some("Discutez avec nous".into()),
        send: Some("Envoyer".into()),
        message_label: Some("Votre message".into()),
        ..Default::default()
    };
    texts.insert("fr".to_string(), french);
    texts.insert("de".to_string(), WidgetTexts { title: Some("Schreiben Sie uns".into()), ..Default::default() });
    let settings = MessengerSettings { texts_json: script_json(&texts), ..MessengerSettings::default() };
    let (base, _hub, _dir) = serve(settings).await;

    let b = Browser::start_in(chromium, driver, "fr-CA").await;
    b.open(&base).await;
    let toggle = b.find("button[aria-controls=casebridge-panel]").await;
    assert_eq!(b.text(&toggle).await, "Discutez avec nous", "fr-CA falls back to fr");
    // The panel is closed: its texts are read from the page, not as shown.
    let text = |css: &str| format!("return document.querySelector({css:?}).textContent");
    assert_eq!(b.script(&text("form button[type=submit]")).await, "Envoyer");
    assert_eq!(b.script(&text("label[for=casebridge-input]")).await, "Votre message");
    assert_eq!(
        b.attribute(&b.find("[data-close]").await, "aria-label").await.as_deref(),
        Some("Close chat"),
        "left out: English"
    );
    assert_eq!(b.script("return document.querySelector('[data-casebridge]').lang").await, "fr");
    b.quit().await;

    let b = Browser::start_in(chromium, driver, "ja").await;
    b.open(&base).await;
    assert_eq!(
        b.text(&b.find("button[aria-controls=casebridge-panel]").await).await,
        "Chat with us",
        "no Japanese: English"
    );
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_message_asks_for_a_rating_and_the_visitor_gives_one() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let (base, hub, _dir) = serve(MessengerSettings::default()).await;
    let b = Browser::start(chromium, driver).await;
    b.resize(900, 720).await;
    b.open(&base).await;
    let id = ask(&b, "Thanks, that fixed it").await;
    let mut conv = hub.store().conversation(&id).unwrap().unwrap();
    let mut closing = daemon_part(
        format!("{id}-closing"),
        AuthorKind::Bot,
        Some("AI agent".into()),
        "This conversation is closed. How did we do?".into(),
    );
    closing.asks_rating = true;
    conv.parts.push(closing);
    conv.handled.extend(conv.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.id.clone()));
    hub.commit(conv, Vec::new()).unwrap();

    b.wait_for_text("li[data-author=agent]", "How did we do?").await;
    let send = b.find("[data-rating] button[type=submit]").await;
    b.click(&send).await;
    b.wait_for_text("#casebridge-status", "Pick a rating").await;
    let four = b.find("[data-rating] button[data-score='4']").await;
    b.click(&four).await;
    assert_eq!(b.attribute(&four, "aria-pressed").await.as_deref(), Some("true"));
    let comment = b.find("[data-rating] textarea").await;
    b.click(&comment).await;
    b.keys("Quick and clear").await;
    b.screenshot("messenger-rating").await;
    if let Some(axe) = webdriver::axe_or_skip() {
        let found = b.accessibility_violations(&axe, "[data-casebridge=messenger]").await;
        assert!(found.is_empty(), "axe-core: {found:#?}");
    }
    b.click(&send).await;
    b.wait_for_text("li[data-author=agent]", "Thank you for your rating.").await;
    let csat = hub.store().conversation(&id).unwrap().unwrap().csat.expect("stored");
    assert_eq!((csat.rating, csat.comment.as_deref()), (4, Some("Quick and clear")));

    // Rated: after a reload the closing message no longer asks.
    b.open(&base).await;
    b.click(&b.find("button[aria-controls=casebridge-panel]").await).await;
    b.wait_for_text("li[data-author=agent]", "How did we do?").await;
    assert!(b.find_all("[data-rating]").await.is_empty());
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_visitor_leaves_an_email_when_handed_over() {
    let Some((chromium, driver)) = webdriver::browser_or_skip() else { return };
    let (base, hub, _dir) = serve(MessengerSettings::default()).await;
    let b = Browser::start(chromium, driver).await;
    b.resize(900, 720).await;
    b.open(&base).await;
    let id = ask(&b, "Can I talk to a person?").await;
    let mut conv = hub.store().conversation(&id).unwrap().unwrap();
    let notice = "I've passed this to our support team. Someone will reply here.";
    let mut part = daemon_part(format!("{id}-handover"), AuthorKind::Bot, Some("AI agent".into()), notice.into());
    part.asks_email = true;
    conv.parts.push(part);
    conv.handled.extend(conv.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.id.clone()));
    hub.commit(conv, Vec::new()).unwrap();

    b.wait_for_text("li[data-author=agent]", "support team").await;
    let input = b.find("[data-email] input[type=email]").await;
    let label = b.script("return document.querySelector('[data-email] label').textContent").await;
    assert_eq!(label, "Your email, so we can reach you if you leave");
    b.click(&input).await;
    b.keys("not an email").await;
    let send = b.find("[data-email] button[type=submit]").await;
    b.click(&send).await;
    let said = b.text(&b.find("#casebridge-status").await).await;
    assert!(!said.is_empty(), "the browser says what is wrong");
    assert!(hub.store().conversation(&id).unwrap().unwrap().customer_email.is_none());
    b.script("document.querySelector('[data-email] input').value = ''; return true").await;
    b.click(&input).await;
    b.keys("ann@example.com").await;
    b.screenshot("messenger-email").await;
    if let Some(axe) = webdriver::axe_or_skip() {
        let found = b.accessibility_violations(&axe, "[data-casebridge=messenger]").await;
        assert!(found.is_empty(), "axe-core: {found:#?}");
    }
    b.click(&send).await;
    b.wait_for_text("li[data-author=agent]", "we will also reply to ann@example.com").await;
    let conv = hub.store().conversation(&id).unwrap().unwrap();
    assert_eq!(conv.customer_email.as_deref(), Some("ann@example.com"));
    assert!(conv.retry_at.is_some(), "due, for the daemon to match the visitor or make their Lead");
    b.quit().await;
}
