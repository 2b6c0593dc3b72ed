//! Acting on decisions: [`crate::model::Action`]s wait in the outbox until Salesforce (or
//! the SMTP server) confirms them; [`plan`] turns a decision into them; the [`executor`] sends them in as few API calls as
//! possible; [`duplicates`] links what an org's duplicate rule refused to the record it
//! matched; [`email`] speaks SMTP.

pub mod duplicates;
pub mod email;
pub mod executor;
pub mod plan;
