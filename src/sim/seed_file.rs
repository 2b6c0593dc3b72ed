//! The seed file's format: what an org seed file (YAML) may say, as it is read, before
//! [`super::seed`] builds an org from it. Unknown keys are refused.

use std::collections::HashMap;

use serde::Deserialize;

use super::schema::{CustomFieldSpec, FieldAccess};

/// The seed file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub org: OrgSettings,
    #[serde(default)]
    pub connected_apps: Vec<ConnectedApp>,
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub queues: Vec<SeedQueue>,
    #[serde(default)]
    pub custom_fields: HashMap<String, Vec<CustomFieldSpec>>,
    /// Permission sets and the users (`@key`s) they are assigned to.
    #[serde(default)]
    pub permission_sets: Vec<SeedPermissionSet>,
    /// Object name → records, created in file order.
    #[serde(default)]
    pub records: serde_yaml::Mapping,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSettings {
    #[serde(default = "default_org_name")]
    pub name: String,
    #[serde(default = "default_daily_api_limit")]
    pub daily_api_limit: u64,
    /// Whether a new comment, email or post bumps its case's `SystemModstamp` (undocumented
    /// in Salesforce; off unless set, so nothing may rely on it).
    #[serde(default)]
    pub child_records_touch_parent: bool,
    /// The active assignment rules (at most one an object), run on Case and Lead writes
    /// without `Sforce-Auto-Assign: FALSE`. Owners are `@key`s.
    #[serde(default)]
    pub assignment_rules: Vec<crate::sim::org::AssignmentRule>,
    /// Active duplicate rules.
    #[serde(default)]
    pub duplicate_rules: Vec<crate::sim::org::DuplicateRule>,
    /// The newest REST API version the org serves (an org on an older release).
    #[serde(default)]
    pub max_api_version: Option<String>,
    /// The objects with feed tracking on (describe's `feedEnabled`); default `[Case]`.
    #[serde(default = "default_feed_tracking")]
    pub feed_tracking: Vec<String>,
    /// Whether Digital Experiences (communities) are on; without them `FeedItem` has no
    /// `Visibility` field. Default on.
    #[serde(default = "yes")]
    pub digital_experiences: bool,
}

/// A permission set (read-only to the API, as `PermissionSet` and
/// `PermissionSetAssignment` records).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPermissionSet {
    /// The API name, such as `Casebridge_Agent`.
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    /// The users holding it, as `@key`s.
    #[serde(default)]
    pub assigned: Vec<String>,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            name: default_org_name(),
            daily_api_limit: default_daily_api_limit(),
            child_records_touch_parent: false,
            assignment_rules: Vec::new(),
            duplicate_rules: Vec::new(),
            max_api_version: None,
            feed_tracking: default_feed_tracking(),
            digital_experiences: true,
        }
    }
}

fn default_feed_tracking() -> Vec<String> {
    vec!["Case".into()]
}

fn default_org_name() -> String {
    "Simulated Org".into()
}

/// A Developer Edition org's daily API request allowance.
fn default_daily_api_limit() -> u64 {
    15_000
}

/// A connected app that may obtain tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_secret: String,
    /// The user the client-credentials grant runs as (username).
    #[serde(default)]
    pub run_as: Option<String>,
    /// Refresh tokens already issued to users of this app.
    #[serde(default)]
    pub refresh_tokens: Vec<SeedRefreshToken>,
    /// PEM public key that verifies JWT bearer assertions.
    #[serde(default)]
    pub jwt_public_key: Option<String>,
    /// The same, read from a file relative to the seed file.
    #[serde(default)]
    pub jwt_public_key_file: Option<std::path::PathBuf>,
    /// The web-server flow must use PKCE ("Require Proof Key for Code Exchange"): the
    /// authorization request must carry a `code_challenge`.
    #[serde(default)]
    pub require_pkce: bool,
    /// Refresh-token rotation (an app policy): each refresh answers with a new refresh
    /// token and voids the one it was given.
    #[serde(default)]
    pub rotate_refresh_tokens: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRefreshToken {
    pub token: String,
    pub username: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub key: String,
    pub username: String,
    #[serde(default)]
    pub first_name: Option<String>,
    pub last_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default = "default_user_type")]
    pub user_type: String,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub password: Option<String>,
    /// For portal users: the `@key` of their contact record.
    #[serde(default)]
    pub contact: Option<String>,
    /// Field-level security for this user: `Object.Field` → `hidden` or `read` (fields
    /// not named are read/write).
    #[serde(default)]
    pub field_access: std::collections::BTreeMap<String, FieldAccess>,
}

fn default_user_type() -> String {
    "Standard".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedQueue {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub developer_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Objects the queue may own, such as `[Case]`.
    pub supports: Vec<String>,
}
