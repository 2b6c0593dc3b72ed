//! Reporting what the daemon does: its typed status, Prometheus metrics, and the admin
//! HTTP server (status, page, sync errors, readiness) that shows them, with the messenger's
//! inbox and its Salesforce panel (`inbox.rs`), and the agent report (`agent.rs`, its
//! charts, its unanswered questions, served by `report_api.rs`).

pub mod admin;
pub mod agent;
pub mod charts;
pub mod inbox;
pub mod metrics;
pub mod questions;
pub mod report_api;
pub mod status;
