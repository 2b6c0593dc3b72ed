//! `retention`: how long the store keeps conversations and their decisions' traces, so its
//! size follows the admin's policy rather than the years the daemon has run.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;

/// The longest either window may be: ten years (the longest duration a setting takes).
pub const RETENTION_MAX: Duration = Duration::from_secs(3650 * 86_400);

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long a conversation with nothing pending (no action waiting, no retry, no quiet
    /// timer) is kept after its last activity: 1s to 3650d. A pruned conversation leaves a
    /// mark of about 30 bytes, so a case that comes back is never answered twice.
    #[serde(default = "default_conversations", with = "duration")]
    #[schemars(with = "String")]
    pub conversations: Duration,
    /// How long the traces of a conversation's decisions (every rule evaluated) are kept
    /// after its last activity: 1s up to `conversations`. The decisions themselves stay.
    #[serde(default = "default_traces", with = "duration")]
    #[schemars(with = "String")]
    pub traces: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { conversations: default_conversations(), traces: default_traces() }
    }
}

fn default_conversations() -> Duration {
    Duration::from_secs(180 * 86_400)
}

fn default_traces() -> Duration {
    Duration::from_secs(30 * 86_400)
}
