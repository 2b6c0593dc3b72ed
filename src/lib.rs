//! casebridge: a self-hosted daemon that puts an AI support agent on Salesforce Cases.
//!
//! Layout:
//! - [`salesforce`]: the REST API client the daemon uses (OAuth, SOQL, sObjects,
//!   composite, limits), with typed Salesforce errors and bounded retries.
//! - [`sim`]: a local Salesforce org simulator, the ground every test and the demo run on.

pub mod salesforce;
pub mod sim;
