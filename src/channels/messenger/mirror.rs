//! Reading back the cases messenger conversations became: one query a cycle for the open
//! ones, past the oldest stamp already read, returning each case's state and the public
//! replies people wrote on it (comments, emails, text posts), which the daemon copies into
//! the chat. Our own agent user's writes (the visitor's forwarded messages) are not news.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::plan::CONVERSATION_FIELD;
use crate::channels::cases::build::{self, Authors, BuildError};
use crate::channels::cases::query::{Posts, case_query, changed_case_queries};
use crate::model::{AuthorKind, Part, PartKind};
use crate::salesforce::soql::Filter;

/// How many conversations one query asks about (the `IN` list stays well under SOQL's limits).
pub const CHUNK: usize = 200;

/// What a linked case says now.
#[derive(Debug, Clone)]
pub struct CaseNews {
    pub conversation_id: String,
    pub case_id: String,
    pub case_number: String,
    pub closed: bool,
    pub modstamp: DateTime<Utc>,
    /// Public replies by people (not the agent user), oldest first.
    pub replies: Vec<Part>,
}

/// The queries for the cases of `conversation_ids`: all of them, or (with `since`) those
/// changed after it, by their own stamp or a new comment, email or post
/// ([`changed_case_queries`]; one composite call carries them).
pub fn queries(conversation_ids: &[String], since: Option<DateTime<Utc>>, posts: Posts) -> Vec<String> {
    let filter = Filter::is_in(CONVERSATION_FIELD, conversation_ids.iter().cloned());
    let extra = [CONVERSATION_FIELD.to_string()];
    match since {
        Some(since) => changed_case_queries(&extra, filter.clone(), filter, since, posts),
        None => vec![case_query(&extra, filter, posts)],
    }
}

/// Reads one case row of [`query`] (with all its children).
pub fn read(row: &Json, agent_user_id: &str) -> Result<CaseNews, BuildError> {
    let conv = build::from_case_row(row, &Authors { agent_user_id })?;
    let replies = conv
        .parts
        .iter()
        .filter(|p| p.author == AuthorKind::Admin && p.public && p.kind != PartKind::Opening)
        .cloned()
        .collect();
    Ok(CaseNews {
        conversation_id: row[CONVERSATION_FIELD].as_str().unwrap_or_default().to_string(),
        closed: conv.is_closed(),
        case_id: conv.id,
        case_number: conv.case_number,
        modstamp: conv.modstamp,
        replies,
    })
}
