//! The Salesforce Cases channel: a case assigned to the agent user is a conversation.

pub mod build;
pub mod deliver;
pub mod query;
