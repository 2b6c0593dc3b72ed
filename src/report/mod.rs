//! Reporting what the daemon does: Prometheus metrics, and the admin HTTP server (status,
//! page, sync errors, readiness) that shows them.

pub mod admin;
pub mod metrics;
