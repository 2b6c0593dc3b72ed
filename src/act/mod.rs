//! Acting on decisions: [`crate::model::Action`]s wait in the outbox until Salesforce (or
//! the SMTP server) confirms them; [`plan`] turns a decision into them; the [`executor`] sends them in as few API calls as
//! possible, each record write checked first against the org's describe (`checked_writes`);
//! [`duplicates`] links what an org's duplicate rule refused to the record it matched;
//! [`email`] speaks SMTP.

mod checked_writes;
pub mod duplicates;
pub mod email;
pub mod executor;
pub mod plan;
