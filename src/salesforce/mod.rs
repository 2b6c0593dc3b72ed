//! The Salesforce REST API client.

pub mod id;
