//! Office hours: a visitor handed over to a person is told when to expect the reply:
//! within the team's usual time while it is in, or when it is back (the next working day
//! that is no holiday, at opening time, in the team's time zone).

mod common;

use std::time::Duration;

use casebridge::channels::messenger::{Messenger, MessengerSettings, StartRequest};
use casebridge::config::office_hours::OfficeHours;
use casebridge::model::Conversation;
use chrono::Utc;
use common::*;

/// An anonymous visitor's "Can I talk to a person?", decided by a daemon with the rules in
/// `rules` and `hours` as the office hours: the conversation, and the notice they read.
async fn asked_for_a_person(w: &World, rules: &std::path::Path, hours: OfficeHours) -> (Conversation, String) {
    let mut d = w.daemon_with_rules(load_rules(rules)).await;
    let settings = MessengerSettings { office_hours: Some(hours.schedule().unwrap()), ..MessengerSettings::default() };
    let hub = Messenger::new(d.store().clone(), settings).unwrap();
    d.attach_messenger(hub.clone());
    let request = StartRequest { name: None, email: None, user_hash: None, message: "Can I talk to a person?".into() };
    let started = hub.start(request, "127.0.0.1").unwrap();
    d.chat_round().await.unwrap();
    let messages = hub.messages(&started.conversation_id, Some(&started.visitor_token), 0).unwrap();
    let conv = d.store().conversation(&started.conversation_id).unwrap().unwrap();
    (conv, messages.last().unwrap().body.clone())
}

/// The notice a visitor reads after asking for a person, with `hours` as the office hours.
async fn handover_notice(hours: OfficeHours) -> String {
    let w = World::new().await;
    asked_for_a_person(&w, &root().join("rules"), hours).await.1
}

fn hours(timezone: &str, opens: &str, closes: &str, holidays: Vec<String>) -> OfficeHours {
    OfficeHours {
        timezone: timezone.into(),
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(String::from).to_vec(),
        opens: opens.into(),
        closes: closes.into(),
        holidays,
        reply_within: Duration::from_secs(2 * 3_600),
    }
}

#[tokio::test]
async fn a_visitor_handed_over_while_the_team_is_in_is_told_the_usual_reply_time() {
    if Utc::now().format("%H:%M").to_string() == "23:59" {
        return; // the one minute this always-open schedule is closed
    }
    let notice = handover_notice(hours("UTC", "00:00", "23:59", Vec::new())).await;
    assert!(notice.starts_with("I've passed this to our support team."), "{notice}");
    assert!(notice.ends_with("We usually reply within 2 hours."), "{notice}");
}

#[tokio::test]
async fn a_visitor_handed_over_while_the_team_is_away_is_told_when_it_is_back() {
    let today = Utc::now().date_naive();
    let off = vec![today.to_string(), today.succ_opt().unwrap().to_string()];
    let notice = handover_notice(hours("UTC", "09:00", "17:00", off)).await;
    let back = today + chrono::Duration::days(2);
    let expected = format!("Our team is away now and back {} 09:00 (UTC); the reply will be here.", back.format("%A"));
    assert!(notice.ends_with(&expected), "{notice}\nexpected it to end with: {expected}");
}

/// The rule that handed a visitor's "Can I talk to a person?" over, with `hours` as the
/// office hours and the shipped rules' `customer_asks_for_a_human` firing only while the
/// team is in.
async fn handover_rule(hours: OfficeHours) -> Option<String> {
    let w = World::new().await;
    let rules = w.copy_rules();
    let handover = std::fs::read_to_string(rules.join("handover.yaml")).unwrap();
    let gated = "    when: asks_for_human(last_message) && team_in\n";
    let handover = handover.replace("    when: asks_for_human(last_message)\n", gated);
    assert!(handover.contains(gated));
    std::fs::write(rules.join("handover.yaml"), handover).unwrap();
    let (conv, _) = asked_for_a_person(&w, &rules, hours).await;
    conv.decisions.last().and_then(|d| d.handover.as_ref()).map(|h| h.rule.clone())
}

/// Rules read whether the team is in (`team_in`): a rule gated on it fires in hours and
/// not out of them.
#[tokio::test]
async fn rules_read_whether_the_team_is_in() {
    if Utc::now().format("%H:%M").to_string() == "23:59" {
        return;
    }
    let fired = handover_rule(hours("UTC", "00:00", "23:59", Vec::new())).await;
    assert_eq!(fired.as_deref(), Some("customer_asks_for_a_human"), "in hours");
    let today = Utc::now().date_naive();
    let off = vec![today.to_string(), today.succ_opt().unwrap().to_string()];
    let fired = handover_rule(hours("UTC", "09:00", "17:00", off)).await;
    assert_ne!(fired.as_deref(), Some("customer_asks_for_a_human"), "out of hours: {fired:?}");
}
