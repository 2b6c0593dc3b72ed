//! casebridge: a self-hosted daemon that puts an AI support agent on Salesforce Cases.
//!
//! Layout, in the order data flows (poll → build → decide → act → report); ARCHITECTURE.md
//! at the top of the repository is the longer map:
//! - [`salesforce`]: the REST API client (OAuth, SOQL, sObjects, composite, limits), with
//!   typed Salesforce errors and bounded retries; [`auth`]: secrets, the vault, login.
//! - [`channels`]: where conversations come from and answers go (Salesforce Cases: poll,
//!   build, deliver).
//! - [`model`]: the plain data every stage shares (conversation, decision, trace, action).
//! - [`decide`]: the rules ([`rules`]) and the agent ([`agent`], answering from
//!   [`knowledge`]) make a decision, with a trace; [`script`] is the Rhai sandbox every
//!   admin script runs in ([`alloc_meter`] counts what an evaluation holds).
//! - [`act`]: decisions become actions; the outbox executor (composite batches), SMTP.
//! - [`store`]: conversations, cursor, outbox and sync errors in redb.
//! - [`report`]: the typed status, metrics, the admin HTTP server, events.
//! - [`daemon`] and [`app`]: the loop that wires the stages, and the one place a running
//!   daemon is built; [`config`]: its configuration file; the command line lives in the
//!   binary (`src/cli/`).
//! - `sim`: a local Salesforce org simulator, the ground every test and the demo run on
//!   (the `sim` feature, on by default, with `smtp_sink` and `demo`).

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
pub mod embedding;
pub mod knowledge;
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
