//! Acting on decisions: [`crate::model::Action`]s wait in the outbox until Salesforce (or
//! the SMTP server) confirms them; [`plan`] turns a decision into them; the [`executor`] sends them in as few API calls as
//! possible; [`email`] speaks SMTP.

pub mod email;
pub mod executor;
pub mod plan;
