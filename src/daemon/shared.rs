//! What the channels and the stages share: the org's client, the store, the agent, the rule
//! set, the metrics, the settings, the agent user, the handover targets (looked up once)
//! and the executor that sends the outbox. One `Shared` behind an `Arc`, held by the
//! daemon's loop and the chat channel's task alike, so neither waits on the other except
//! for the executor's round (one at a time: the outbox is sent once).

use std::collections::HashMap;
use std::sync::Arc;

use crate::act::executor::{Executor, RoundReport};
use crate::agent::Agent;
use crate::channels::cases::query::Posts;
use crate::decide::SharedRules;
use crate::model::DEFAULT_TARGET;
use crate::report::metrics::Metrics;
use crate::salesforce::Client;
use crate::salesforce::directory::{self, SetupError, Target};
use crate::store::{Store, StoreError, SyncError};

use super::DaemonSettings;

/// The state every channel and stage shares.
pub struct Shared {
    pub client: Client,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub rules: SharedRules,
    pub agent: Arc<Agent>,
    pub settings: DaemonSettings,
    pub agent_user: Target,
    pub default_target: Target,
    /// Handover targets named by rules, looked up to ids.
    pub(super) targets: std::sync::Mutex<HashMap<String, String>>,
    /// The outbox's sender: one round at a time, whichever channel asks.
    pub(super) executor: tokio::sync::Mutex<Executor>,
    /// Whether the org's feed posts are read (they carry `Visibility` there).
    pub posts: Posts,
}

impl Shared {
    /// Records a sync error the admin sees (`casebridge errors`, the admin page) and counts it.
    pub fn record_error(
        &self,
        case_id: Option<&str>,
        operation: &str,
        code: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.metrics.sync_error(code);
        self.store.record_error(SyncError::new(case_id, operation, code, message)).map(|_| ())
    }

    /// The id of a handover target by name (the default target's for `DEFAULT_TARGET`),
    /// looked up once.
    pub async fn target_id(&self, target: &str) -> Result<String, SetupError> {
        if target == DEFAULT_TARGET {
            return Ok(self.default_target.id.clone());
        }
        if let Some(id) = self.known_targets().get(target) {
            return Ok(id.clone());
        }
        let found = directory::handover_target(&self.client, target).await?;
        self.known_targets().insert(target.to_string(), found.id.clone());
        Ok(found.id)
    }

    /// A target's name for people, where it is known.
    pub fn target_name(&self, id: &str) -> String {
        if id == self.default_target.id {
            return self.default_target.name.clone();
        }
        let known = self.known_targets();
        known.iter().find(|(_, v)| v.as_str() == id).map_or_else(|| id.to_string(), |(k, _)| k.clone())
    }

    fn known_targets(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends what is due in the outbox: one round at a time, whichever channel asks.
    pub async fn send_outbox(&self) -> Result<RoundReport, StoreError> {
        self.executor.lock().await.run_round().await
    }
}
