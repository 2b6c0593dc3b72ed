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
    /// The summary of a conversation as it stands.
    pub fn of(c: &Conversation) -> Summary {
        let agent_answers = || c.decisions.iter().filter_map(|d| d.agent.as_ref());
        let answered =
            c.first_reply_at.is_some() || agent_answers().any(|a| a.text.is_some() || !a.suggestions.is_empty());
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
            csat: None,
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
    for answer in c.decisions.iter().filter_map(|d| d.agent.as_ref()) {
        // An answer's sources are cited; articles offered to confirm are suggested only.
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
