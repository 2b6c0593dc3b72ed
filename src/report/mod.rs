//! Reporting what the daemon does: its typed status, Prometheus metrics, and the admin
//! HTTP server (status, page, sync errors, readiness) that shows them, with the messenger's
//! inbox and its Salesforce panel (`inbox.rs`).

pub mod admin;
pub mod inbox;
pub mod metrics;
pub mod status;
