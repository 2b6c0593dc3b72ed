//! Suggestions a customer confirms, as a decision reads them: the articles the agent
//! offered in its latest reply, the customer's yes or no to them, and the note a handover
//! then carries for the person who picks it up.

use std::time::Instant;

use super::{CONTRAST_WORDS, NEGATIONS, asks_for_human, confirms_resolution, sounds_unhappy, words};
use crate::model::{Conversation, Handover, Suggestion, Trace, TraceStage};

/// The articles the agent offered in its latest reply, when that reply offered some.
pub fn offered(conversation: &Conversation) -> Option<&[Suggestion]> {
    let last = conversation.decisions.iter().rev().find(|d| d.reply.is_some())?;
    let answer = last.agent.as_ref()?;
    (!answer.suggestions.is_empty()).then_some(answer.suggestions.as_slice())
}

/// A handover whose note lists the articles the customer was offered, for the person
/// who picks it up.
pub fn with_suggestions(mut handover: Handover, offered: &[Suggestion]) -> Handover {
    if !offered.is_empty() {
        handover.reason.push_str("\nArticles the AI agent suggested before:");
        for s in offered {
            handover.reason.push_str(&format!("\n- {} ({})", s.title, s.url));
        }
    }
    handover
}

/// The customer's answer to "did one of them answer your question?", recorded in the
/// trace: `Some(true)` for yes, `Some(false)` for no, `None` for anything else (a new
/// question, say, which the agent answers as usual).
pub(super) fn read_suggestion_reply(
    conversation: &Conversation,
    offered: &[Suggestion],
    trace: &mut Trace,
) -> Option<bool> {
    let started = Instant::now();
    let replies: Vec<Option<bool>> = conversation.unanswered().iter().map(|p| suggestion_reply(&p.body)).collect();
    let reply = if replies.contains(&Some(false)) {
        Some(false)
    } else if !replies.is_empty() && replies.iter().all(|r| *r == Some(true)) {
        Some(true)
    } else {
        None
    };
    let detail = match reply {
        Some(true) => format!("yes to the {} article(s) offered", offered.len()),
        Some(false) => format!("no to the {} article(s) offered", offered.len()),
        None => "neither yes nor no to the articles offered".to_string(),
    };
    trace.record(TraceStage::Feedback, "suggestion_reply", reply.is_some(), detail, started);
    reply
}

/// The most words a yes or no to suggestions has; a longer message is a new question.
const SUGGESTION_REPLY_MAX_WORDS: usize = 12;
const YES_WORDS: &[&str] = &["yes", "yep", "yeah", "yup", "y", "sure", "correct", "ja", "oui", "si", "sí"];
const NO_WORDS: &[&str] = &["no", "nope", "nah", "n", "none", "neither", "nein"];
/// "No" that is not an answer: "no problem, the first one did it".
const NOT_A_NO: &[&str] = &["no problem", "no worries", "no need", "no doubt"];
const YES_PHRASES: &[&str] = &["that answered it", "it answered", "one did", "that did", "the first one"];
const NO_PHRASES: &[&str] = &["none of them", "didn't answer", "did not answer", "didn't help", "did not help"];

/// Whether a short reply to suggestions says yes (`Some(true)`), no (`Some(false)`) or
/// neither. The messenger's buttons send "Yes, that answered it" and "No, talk to a person".
/// A yes is read as warily as a confirmation ([`confirms_resolution`]): one with a question,
/// a "but", a negation or unhappy words is not a yes, since a wrong yes leaves the customer
/// unanswered.
pub fn suggestion_reply(text: &str) -> Option<bool> {
    let lower = text.to_lowercase().replace('’', "'");
    let w = words(&lower);
    if w.is_empty() || w.len() > SUGGESTION_REPLY_MAX_WORDS {
        return None;
    }
    let said_no = NO_WORDS.contains(&w[0]) && !NOT_A_NO.iter().any(|p| lower.starts_with(p));
    if said_no || NO_PHRASES.iter().any(|p| lower.contains(p)) || asks_for_human(&lower) {
        return Some(false);
    }
    let wary = lower.contains('?')
        || sounds_unhappy(&lower)
        || w.iter().skip(1).any(|w| CONTRAST_WORDS.contains(w) || NEGATIONS.contains(w) || w.ends_with("n't"));
    if wary {
        return None;
    }
    let said_yes = YES_WORDS.contains(&w[0]) || YES_PHRASES.iter().any(|p| lower.contains(p));
    if said_yes || confirms_resolution(&lower) || NOT_A_NO.iter().any(|p| lower.starts_with(p)) && said_yes_after(&w) {
        return Some(true);
    }
    None
}

/// "No worries, the first one did it": a yes after the pleasantry.
fn said_yes_after(w: &[&str]) -> bool {
    w.windows(2).any(|p| p == ["one", "did"] || p == ["that", "did"] || p == ["it", "did"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_yes_or_no_to_suggestions() {
        for yes in [
            "Yes, that answered it",
            "yes",
            "Yep thanks!",
            "the first one did, thanks",
            "That worked.",
            "No worries, the first one did it",
        ] {
            assert_eq!(suggestion_reply(yes), Some(true), "{yes}");
        }
        for no in ["No, talk to a person", "no", "Nope.", "none of them", "It didn't help", "a human please"] {
            assert_eq!(suggestion_reply(no), Some(false), "{no}");
        }
        for neither in [
            "",
            "How do I change my invoice address?",
            &"yes ".repeat(20),
            "not sure yet",
            "Yes, but which one should I use?",
            "Yes I tried that, still broken",
            "Non-admins can't see it",
        ] {
            assert_eq!(suggestion_reply(neither), None, "{neither}");
        }
    }
}
