//! Reading back the cases messenger conversations became: one query a cycle for the open
//! ones, past the oldest stamp already read, returning each case's state and the public
//! replies people wrote on it (comments, emails, text posts), which the daemon copies into
//! the chat. Our own agent user's writes (the visitor's forwarded messages) are not news.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::plan::CONVERSATION_FIELD;
use crate::channels::cases::build::{self, Authors, BuildError};
use crate::channels::cases::query::case_query;
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

/// The query for the cases of `conversation_ids` changed after `since` (when given).
pub fn query(conversation_ids: &[String], since: Option<DateTime<Utc>>) -> String {
    let mut filter = Filter::is_in(CONVERSATION_FIELD, conversation_ids.iter().cloned());
    if let Some(since) = since {
        filter = Filter::gt("SystemModstamp", since).and(filter);
    }
    case_query(&[CONVERSATION_FIELD.to_string()], filter)
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
