//! The Salesforce REST API client casebridge uses: OAuth sign-in ([`auth`]), safe SOQL
//! ([`soql`]), record ids ([`id`]), typed errors ([`error`]) and the client itself
//! ([`client`]) with paging, sObjects, composite, describe and limits, and child subquery
//! results read past their first page ([`children`]).
//!
//! No maintained Rust Salesforce client covers what we need (paging through
//! `nextRecordsUrl`, composite, typed errors), so this is a thin layer over reqwest for the
//! dozen endpoints we use.

mod assignment;
pub mod auth;
mod children;
pub mod client;
pub mod directory;
pub mod error;
pub mod id;
pub mod org_rules;
mod pages;
pub mod preflight;
pub mod soql;
mod types;
pub mod validate;
pub mod versions;

pub use auth::{Credentials, Session};
pub use client::{
    ApiUsage, AssignmentRules, Client, ClientConfig, QueryPages, QueryResult, RetryPolicy, SubRequest, SubResponse,
};
pub use error::{ApiErrorItem, SalesforceError};
pub use types::{FieldDescribe, PicklistValue, SObjectDescribe};
