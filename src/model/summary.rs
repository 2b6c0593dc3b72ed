//! A conversation's summary: the few facts the agent report counts (its channel, when it
//! began, whether the agent took part and answered, its resolution, topics, time to first
//! reply, satisfaction, the questions the agent could not answer and the articles it
//! used). The store keeps it beside each conversation in its activity index, so a report
//! over any period reads summaries, never conversations, and it survives the clearing of
//! traces.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuthorKind, Channel, Conversation, ConversationState, Resolution, ResolutionState};

/// How many unanswered questions a summary keeps.
pub const SUMMARY_QUESTIONS: usize = 3;
/// The longest unanswered question a summary keeps, in characters.
pub const SUMMARY_QUESTION_CHARS: usize = 300;
/// How many articles a summary keeps.
pub const SUMMARY_ARTICLES: usize = 8;

/// What the report needs of one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub channel: Channel,
    /// When the conversation began (the case's or the chat's creation).
    pub created_at: DateTime<Utc>,
    /// The agent was asked about it.
    #[serde(default)]
    pub involved: bool,
    /// The agent answered, or offered articles, at least once.
    #[serde(default)]
    pub answered: bool,
    #[serde(default)]
    pub resolution: Option<ResolutionState>,
    /// It was handed to a person or a queue.
    #[serde(default)]
    pub routed: bool,
    #[serde(default)]
    pub topics: Vec<String>,
    /// Seconds from the customer's first message to the first reply (the agent's, or a
    /// person's).
    #[serde(default)]
    pub first_reply_secs: Option<i64>,
    /// The customer's rating, 1 to 5.
    #[serde(default)]
    pub csat: Option<u8>,
    /// What the customer asked that the agent could not answer, or whose suggested
    /// articles they said did not answer it.
    #[serde(default)]
    pub unanswered: Vec<String>,
    /// The articles the agent cited or offered.
    #[serde(default)]
    pub articles: Vec<ArticleUse>,
    /// The customer said "No" to suggested articles.
    #[serde(default)]
    pub declined: bool,
}

/// One article the agent used in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleUse {
    pub url: String,
    pub title: String,
    /// Cited in an answer.
    pub cited: bool,
    /// Offered to confirm.
    pub suggested: bool,
}

impl Summary {
    /// This summary, with what `previous` recorded of decisions since dropped (a
    /// conversation keeps only its latest decisions): questions, articles, whether it was
    /// answered, routed or declined, and the first reply.
    pub fn merge(&mut self, previous: Summary) {
        self.answered |= previous.answered;
        self.routed |= previous.routed;
        self.declined |= previous.declined;
        self.csat = self.csat.or(previous.csat);
        self.first_reply_secs = match (self.first_reply_secs, previous.first_reply_secs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut questions = previous.unanswered;
        for q in std::mem::take(&mut self.unanswered) {
            if !questions.contains(&q) && questions.len() < SUMMARY_QUESTIONS {
                questions.push(q);
            }
        }
        self.unanswered = questions;
        let mut articles = previous.articles;
        for a in std::mem::take(&mut self.articles) {
            if let Some(p) = articles.iter_mut().find(|p| p.url == a.url) {
                p.cited |= a.cited;
                p.suggested |= a.suggested;
            } else if articles.len() < SUMMARY_ARTICLES {
                articles.push(a);
            }
        }
        self.articles = articles;
    }

    /// The summary of a conversation as it stands.
    pub fn of(c: &Conversation) -> Summary {
        // What was sent counts, not what the agent wrote: a handover may replace its answer.
        let answered = c.first_reply_at.is_some() || c.decisions.iter().any(|d| d.reply.is_some() && d.agent.is_some());
        let routed = matches!(c.state, ConversationState::HandedOver { .. })
            || c.resolution.is_some_and(|r| r.state == Resolution::RoutedToTeam)
            || c.decisions.iter().any(|d| d.handover.is_some());
        Summary {
            channel: c.channel,
            created_at: c.created_at,
            involved: c.ai_involved,
            answered,
            resolution: c.resolution,
            routed,
            topics: c.topics.iter().cloned().collect(),
            first_reply_secs: first_reply_secs(c),
            csat: c.csat.as_ref().map(|c| c.rating),
            unanswered: unanswered_questions(c),
            articles: articles(c),
            declined: c.decisions.iter().any(|d| d.declined),
        }
    }
}

/// From the customer's first message to the first reply, the agent's or a person's.
fn first_reply_secs(c: &Conversation) -> Option<i64> {
    let asked = c.parts.iter().find(|p| p.author == AuthorKind::User)?.created_at;
    let person = c
        .parts
        .iter()
        .filter(|p| p.author != AuthorKind::User && p.public && p.created_at >= asked)
        .map(|p| p.created_at)
        .min();
    let first = match (c.first_reply_at, person) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((first - asked).num_seconds().max(0))
}

/// The questions the agent could not help with (no answer, no articles), and those whose
/// articles the customer declined (the question the articles were offered for).
fn unanswered_questions(c: &Conversation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut offered_for: Option<&str> = None;
    for d in &c.decisions {
        let question = if d.declined {
            offered_for.take().or(d.question.as_deref())
        } else if d.agent.as_ref().is_some_and(|a| a.text.is_none() && a.suggestions.is_empty()) {
            d.question.as_deref()
        } else {
            None
        };
        if let Some(q) = question.map(str::trim).filter(|q| !q.is_empty()) {
            let q: String = q.chars().take(SUMMARY_QUESTION_CHARS).collect();
            if !out.contains(&q) && out.len() < SUMMARY_QUESTIONS {
                out.push(q);
            }
        }
        if d.agent.as_ref().is_some_and(|a| !a.suggestions.is_empty()) {
            offered_for = d.question.as_deref();
        }
    }
    out
}

fn articles(c: &Conversation) -> Vec<ArticleUse> {
    let mut out: Vec<ArticleUse> = Vec::new();
    let mut note = |url: &str, title: &str, cited: bool| {
        if let Some(a) = out.iter_mut().find(|a| a.url == url) {
            a.cited |= cited;
            a.suggested |= !cited;
        } else if out.len() < SUMMARY_ARTICLES {
            out.push(ArticleUse { url: url.into(), title: title.into(), cited, suggested: !cited });
        }
    };
    // Only what was sent: an answer's sources are cited, articles offered are suggested.
    for answer in c.decisions.iter().filter(|d| d.reply.is_some()).filter_map(|d| d.agent.as_ref()) {
        if answer.text.is_some() && answer.suggestions.is_empty() {
            for s in &answer.sources {
                note(&s.url, &s.title, true);
            }
        }
        for s in &answer.suggestions {
            note(&s.url, &s.title, false);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(questions: &[&str], urls: &[(&str, bool)]) -> Summary {
        Summary {
            channel: Channel::Messenger,
            created_at: chrono::DateTime::UNIX_EPOCH,
            involved: true,
            answered: false,
            resolution: None,
            routed: false,
            topics: Vec::new(),
            first_reply_secs: None,
            csat: None,
            unanswered: questions.iter().map(|q| q.to_string()).collect(),
            articles: urls
                .iter()
                .map(|(u, cited)| ArticleUse {
                    url: u.to_string(),
                    title: u.to_string(),
                    cited: *cited,
                    suggested: !cited,
                })
                .collect(),
            declined: false,
        }
    }

    #[test]
    fn a_summary_keeps_what_dropped_decisions_recorded() {
        let mut now = with(&["b"], &[("u1", true), ("u2", false)]);
        now.first_reply_secs = Some(90);
        let mut before = with(&["a", "b"], &[("u1", false)]);
        before.answered = true;
        before.routed = true;
        before.declined = true;
        before.first_reply_secs = Some(30);
        now.merge(before);
        assert_eq!(now.unanswered, ["a", "b"]);
        assert_eq!(now.articles.len(), 2);
        assert!(now.articles[0].cited && now.articles[0].suggested, "{:?}", now.articles[0]);
        assert!(now.answered && now.routed && now.declined);
        assert_eq!(now.first_reply_secs, Some(30));
        let mut full = with(&["x"], &[]);
        full.merge(with(&["1", "2", "3"], &[]));
        assert_eq!(full.unanswered.len(), SUMMARY_QUESTIONS, "bounded");
    }
}
