//! casebridge: a self-hosted daemon that puts an AI support agent on Salesforce Cases.
//!
//! Layout, in the order data flows (poll → build → decide → act → report):
//! - [`salesforce`]: the REST API client (OAuth, SOQL, sObjects, composite, limits), with
//!   typed Salesforce errors and bounded retries.
//! - [`conversation`]: cases become conversations; authors classified.
//! - [`decide`]: the rules and the agent make a decision, with a trace.
//! - [`agent`]: the AI agent backends (knowledge base, OpenAI-compatible, Rhai script).
//! - [`script`]: the Rhai sandbox every admin script runs in ([`alloc_meter`] counts what
//!   an evaluation holds).
//! - [`act`]: actions, the outbox executor (composite batches), SMTP.
//! - [`store`]: conversations, cursor, outbox and sync errors in sled.
//! - [`config`]: the daemon's configuration file.
//! - [`sim`]: a local Salesforce org simulator, the ground every test and the demo run on
//!   (the `sim` feature, on by default, with [`smtp_sink`] and [`demo`]).
//! - [`smtp_sink`]: a local SMTP server for the demo and tests.

/// Counting allocations lets the script sandbox bound what one evaluation holds.
#[global_allocator]
static ALLOCATOR: alloc_meter::CountingAllocator = alloc_meter::CountingAllocator;

pub mod act;
pub mod agent;
pub mod alloc_meter;
pub mod app;
pub mod auth;
pub mod bounded_file;
pub mod channels;
pub mod config;
pub mod daemon;
pub mod decide;
#[cfg(feature = "sim")]
pub mod demo;
pub mod model;
pub mod record;
pub mod report;
pub mod rules;
pub mod salesforce;
pub mod script;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "sim")]
pub mod smtp_sink;
pub mod spelling;
pub mod store;
pub mod yaml_locations;
