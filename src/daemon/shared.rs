//! What a channel's work in the daemon shares with the stages: the org's client, the store,
//! the metrics, the agent user, the handover targets (looked up once) and the rule set. A
//! channel gets it borrowed from the daemon for the length of a call, so its own state
//! stays its own.

use std::collections::HashMap;
use std::time::Duration;

use crate::channels::cases::query::Posts;
use crate::decide::SharedRules;
use crate::model::DEFAULT_TARGET;
use crate::report::metrics::Metrics;
use crate::salesforce::Client;
use crate::salesforce::directory::{self, SetupError, Target};
use crate::store::{Store, StoreError, SyncError};

/// The daemon's state a channel borrows for one call.
pub struct Shared<'a> {
    pub client: &'a Client,
    pub store: &'a Store,
    pub metrics: &'a Metrics,
    pub rules: &'a SharedRules,
    pub agent_user: &'a Target,
    pub default_target: &'a Target,
    /// Handover targets named by rules, resolved to ids.
    pub targets: &'a mut HashMap<String, String>,
    /// How far back a read of what changed reaches past the last one.
    pub overlap: Duration,
    /// Whether the org's feed posts are read.
    pub posts: Posts,
}

impl Shared<'_> {
    /// Records a sync error the admin sees (`casebridge errors`, the admin page) and counts it.
    pub fn record_error(
        &self,
        case_id: Option<&str>,
        operation: &str,
        code: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        record_error(self.store, self.metrics, case_id, operation, code, message)
    }

    /// The id of a handover target by name (the default target's for `DEFAULT_TARGET`),
    /// looked up once.
    pub async fn target_id(&mut self, target: &str) -> Result<String, SetupError> {
        if target == DEFAULT_TARGET {
            return Ok(self.default_target.id.clone());
        }
        if let Some(id) = self.targets.get(target) {
            return Ok(id.clone());
        }
        let resolved = directory::handover_target(self.client, target).await?;
        self.targets.insert(target.to_string(), resolved.id.clone());
        Ok(resolved.id)
    }
}

/// Records a sync error in `store` and counts it in `metrics`.
pub fn record_error(
    store: &Store,
    metrics: &Metrics,
    case_id: Option<&str>,
    operation: &str,
    code: &str,
    message: &str,
) -> Result<(), StoreError> {
    metrics.sync_error(code);
    store.record_error(SyncError::new(case_id, operation, code, message)).map(|_| ())
}
