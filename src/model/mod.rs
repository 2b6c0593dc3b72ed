//! The model: plain data every stage shares, with no I/O — conversations and their parts,
//! decisions with their traces, actions for the outbox, secrets that never print. Data flows one way through the
//! stages; the model is what flows.

pub mod action;
pub mod chat_case;
pub mod chat_lead;
pub mod conversation;
pub mod decision;
pub mod resolution;
pub mod secret;
pub mod summary;
pub mod text;
pub mod visitor;

pub use action::*;
pub use chat_case::{CaseStatus, ChatCase};
pub use chat_lead::ChatLead;
pub use conversation::*;
pub use decision::*;
pub use resolution::*;
pub use secret::{Secret, StoredCredentials};
pub use summary::{ArticleUse, Summary};
