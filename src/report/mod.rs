//! Reporting what the daemon does: its typed status, Prometheus metrics, and the admin
//! HTTP server (status, page, sync errors, readiness) that shows them.

pub mod admin;
pub mod metrics;
pub mod status;
