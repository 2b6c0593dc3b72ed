//! The daemon's configuration file (YAML). Each field's doc comment is its documentation
//! and goes into `schema/config.schema.json`, which editors use to validate the file.
//!
//! Every setting has a default and a range ([`check`]), and can be overridden by an
//! environment variable named after its path ([`load`]): `CASEBRIDGE__POLL__INTERVAL=30s`
//! sets `poll.interval`. Secrets are never written in the file: the file names the
//! environment variable or the file that holds each one. A bad setting is reported with
//! its path (`poll.interval: ...`) and, for the file, its line and column.

mod agent;
pub use agent::{EmbeddingConfig, SilenceAfterSuggestions, SuggestionsConfig};
mod check;
pub mod duration;
mod load;
pub mod messenger;
pub mod office_hours;
pub mod widget_texts;

pub use messenger::MessengerConfig;
mod retention;
pub use retention::RetentionConfig;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::check::{is_loopback_url, ranges};
pub use self::load::{ConfigError, ENV_PREFIX, MAX_CONFIG_BYTES, env_name, setting_paths};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::model::ReplyChannel;
use crate::model::Secret;
use crate::salesforce::Credentials;

/// casebridge's configuration.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Salesforce org and how to sign in to it.
    pub org: OrgConfig,
    /// The Salesforce user the AI replies as and that owns the cases it handles: a
    /// username (`fin@acme.example`) or a User Id.
    pub agent_user: String,
    /// Where cases go when the customer needs a human.
    pub handover: HandoverConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub reply: ReplyConfig,
    /// What the store keeps of its history.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The AI agent that answers.
    #[serde(default)]
    pub agent: AgentConfig,
    /// The SMTP server for replies to email-origin cases. Without it, email-origin cases get
    /// comments only and each email reply becomes a sync error.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// The folder of rule files (YAML, Rhai, handlebars).
    #[serde(default = "default_rules_dir")]
    pub rules_dir: PathBuf,
    /// Where casebridge keeps its state (conversations, cursor, outbox, sync errors).
    #[serde(default = "default_store_path")]
    pub store_path: PathBuf,
    /// The key (32 bytes, base64; `casebridge auth keygen` makes one) that seals the
    /// credentials `casebridge auth login` stores.
    #[serde(default)]
    pub credentials_key: Option<SecretRef>,
    /// The admin HTTP server (health, metrics, JSON API). Off when not given.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// The web messenger (a chat widget and its API). Off when not given.
    #[serde(default)]
    pub messenger: Option<MessengerConfig>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain SMTP; only for a server on this machine.
    None,
    /// STARTTLS upgrade (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The admin HTTP server.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where it listens; keep it on loopback unless a proxy with TLS sits in front.
    #[serde(default = "default_admin_listen")]
    #[schemars(with = "String")]
    pub listen: std::net::SocketAddr,
    /// The bearer token every endpoint but `/healthz` requires.
    pub token: SecretRef,
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// The org.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    /// The sign-in host: `https://login.salesforce.com`, `https://test.salesforce.com` for
    /// sandboxes, your My Domain URL, or a simulator's URL.
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// The REST API version, such as `62.0` (61.0 or later). Unset: the newest both
    /// casebridge and the org support, chosen at sign-in from what the org offers.
    #[serde(default)]
    pub api_version: Option<String>,
    pub auth: AuthConfig,
    /// Per-request timeout: 1s to 10m.
    #[serde(default = "default_request_timeout", with = "duration")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// Whether the org's active assignment rules may route what casebridge writes: `never`
    /// (the default: every request says `Sforce-Auto-Assign: FALSE`, so a handover stays
    /// with its queue or user) or `on_create` (the rule picks the owner of the Cases and
    /// Leads casebridge creates; updates and handovers never run it).
    #[serde(default)]
    pub assignment_rules: crate::salesforce::AssignmentRules,
}

/// How casebridge signs in: the connected app's grant.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "grant", rename_all = "snake_case")]
pub enum AuthConfig {
    /// The refresh-token grant, with the `api refresh_token offline_access` scopes.
    RefreshToken {
        client_id: String,
        #[serde(default)]
        client_secret: Option<SecretRef>,
        refresh_token: SecretRef,
    },
    /// The client-credentials grant: the app runs as its configured execution user.
    ClientCredentials { client_id: String, client_secret: SecretRef },
    /// The JWT bearer grant, signed with the app's private key.
    JwtBearer {
        client_id: String,
        username: String,
        private_key: SecretRef,
        /// `https://login.salesforce.com` or `https://test.salesforce.com`.
        #[serde(default = "default_jwt_audience")]
        audience: String,
    },
    /// The username-password grant; for simulators and trials only.
    Password { client_id: String, client_secret: SecretRef, username: String, password: SecretRef },
    /// The refresh token `casebridge auth login` obtained (the OAuth web-server flow) and
    /// stored encrypted in the store, with the app's secret, under `credentials_key`.
    Stored {
        client_id: String,
        /// Needed by `casebridge auth login` only; it is stored encrypted from then on.
        #[serde(default)]
        client_secret: Option<SecretRef>,
    },
}

/// Where a secret is read from; never the secret itself.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable that holds the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// A file that holds the secret (surrounding whitespace is ignored).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for SecretRef {
    /// A mapping with `env` or `file`; anything else is refused without repeating it, since
    /// what an admin wrote there is most likely the secret itself.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            #[serde(default)]
            env: Option<String>,
            #[serde(default)]
            file: Option<PathBuf>,
        }
        let value = serde_yaml::Value::deserialize(d)?;
        if !value.is_mapping() {
            return Err(serde::de::Error::custom(
                "a secret is never written in the config: name an environment variable ({env: VAR}) or a file ({file: path})",
            ));
        }
        let f: Fields = serde_yaml::from_value(value).map_err(|e| {
            let m = e.to_string();
            serde::de::Error::custom(if m.starts_with("unknown field") {
                m
            } else {
                "expected {env: VAR} or {file: path}".into()
            })
        })?;
        Ok(SecretRef { env: f.env, file: f.file })
    }
}

impl SecretRef {
    /// Reads the secret. `path` names the setting in errors.
    pub fn read(&self, path: &str, base: &Path) -> Result<Secret, ConfigError> {
        let problem = |problem: String| ConfigError::Secret { path: path.to_string(), problem };
        match (&self.env, &self.file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value)),
                Ok(_) => Err(problem(format!("the environment variable {var} is empty"))),
                Err(_) => Err(problem(format!("the environment variable {var} is not set"))),
            },
            (None, Some(file)) => {
                let full = base.join(file);
                let text = crate::bounded_file::read(&full, MAX_SECRET_BYTES)
                    .map_err(|e| problem(format!("cannot read {}: {e}", full.display())))?;
                if text.trim().is_empty() {
                    return Err(problem(format!("{} is empty", full.display())));
                }
                Ok(Secret::new(text.trim()))
            }
            _ => Err(ConfigError::Secret { path: path.to_string(), problem: "give exactly one of env or file".into() }),
        }
    }
}

/// A secret file larger than this is refused (a PEM private key is about 3 KiB).
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The default handover target.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverConfig {
    /// A queue (by name, developer name or Id) or a user (by username or Id).
    pub default_target: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// How often to look for new and updated cases: 5s to 1d against a real org (each
    /// poll is an API call), from 10ms against a simulator on this machine.
    #[serde(default = "default_poll_interval", with = "duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// How far before the cursor each poll looks again, for late-committing writes in
    /// Salesforce; cases already seen are recognised and skipped: 0s to 1h. It must cover
    /// the clock difference between this machine and Salesforce.
    #[serde(default = "default_poll_overlap", with = "duration")]
    #[schemars(with = "String")]
    pub overlap: Duration,
    /// On the very first start, how far back to look for cases: 0s to 365d.
    #[serde(default = "default_initial_lookback", with = "duration")]
    #[schemars(with = "String")]
    pub initial_lookback: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval: default_poll_interval(),
            overlap: default_poll_overlap(),
            initial_lookback: default_initial_lookback(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    /// Where public replies go: `comment` (a public CaseComment) or `feed` (a FeedItem).
    #[serde(default)]
    pub channel: ReplyChannel,
}

/// The agent backend.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "backend", rename_all = "snake_case")]
pub enum AgentConfig {
    /// Answers from a folder of markdown help articles.
    KnowledgeBase {
        /// The folder of `*.md` articles (without it and without `salesforce_knowledge`:
        /// `examples/demo/help-center`).
        #[serde(default)]
        dir: Option<PathBuf>,
        /// Links to articles are `{base_url}/{file stem}` unless an article sets `url:`.
        #[serde(default = "default_kb_base_url")]
        base_url: String,
        /// Below this confidence (0 to 1) the agent says it cannot help.
        #[serde(default = "default_min_confidence")]
        #[schemars(range(min = 0.0, max = 1.0))]
        min_confidence: f64,
        /// Articles from the org's Salesforce Knowledge, kept in sync.
        #[serde(default)]
        salesforce_knowledge: Option<SalesforceKnowledgeConfig>,
        /// A file of synonym groups (`groups: [[update, upgrade], ...]`).
        #[serde(default)]
        synonyms: Option<PathBuf>,
        /// A sentence-embedding model that ranks passages by meaning beside their words.
        #[serde(default)]
        embedding: Option<EmbeddingConfig>,
        /// When the agent states an answer, when it offers articles instead, and what a
        /// customer's silence after them means.
        #[serde(default)]
        suggestions: SuggestionsConfig,
    },
    /// Any OpenAI-compatible chat-completions service, answering only from the help
    /// centre's passages and citing them.
    Openai {
        /// For example `https://api.openai.com/v1`.
        base_url: String,
        model: String,
        #[serde(default)]
        api_key: Option<SecretRef>,
        /// A file with the system prompt (the grounding rules are always added).
        #[serde(default)]
        system_prompt_file: Option<PathBuf>,
        #[serde(default = "default_agent_timeout", with = "duration")]
        #[schemars(with = "String")]
        timeout: Duration,
        /// The help centre the model answers from: a folder of markdown articles, and/or
        /// `salesforce_knowledge`.
        #[serde(default)]
        knowledge: Option<KnowledgeConfig>,
        /// Articles from the org's Salesforce Knowledge, kept in sync.
        #[serde(default)]
        salesforce_knowledge: Option<SalesforceKnowledgeConfig>,
        /// A file of synonym groups (`groups: [[update, upgrade], ...]`).
        #[serde(default)]
        synonyms: Option<PathBuf>,
        /// A sentence-embedding model that ranks passages by meaning beside their words
        /// (which passages the model is given) and checks answers against them.
        #[serde(default)]
        embedding: Option<EmbeddingConfig>,
        /// How many of the best-ranked passages the model is given (1 to 50).
        #[serde(default = "default_passages")]
        passages: usize,
        /// The most characters of passage text one request carries (500 to 200,000).
        #[serde(default = "default_context_chars")]
        context_chars: usize,
        /// Ask for the answer through `response_format` with a JSON schema (services that
        /// do not support it: `false`, and the prompt asks for the same JSON).
        #[serde(default = "default_true")]
        json_schema: bool,
        /// The conversation attributes (as the rules name them) the model may see; none by
        /// default.
        #[serde(default)]
        attributes: Vec<String>,
        /// The most conversations the service is asked about at once (1 to 64): casebridge
        /// starts at 8 and finds the service's level under this by itself (it doubles until
        /// the service says "too many requests", then halves at each and grows by one a round).
        #[serde(default = "default_agent_concurrency")]
        concurrency: usize,
    },
    /// A Rhai script that defines `fn answer(conversation)`.
    Script { file: PathBuf },
}

impl AgentConfig {
    /// How many conversations the agent is asked about at once: the configured number for
    /// an AI service; one for the built-in backends, which answer in microseconds.
    pub fn concurrency(&self) -> usize {
        match self {
            AgentConfig::Openai { concurrency, .. } => *concurrency,
            _ => 1,
        }
    }

    /// The Salesforce Knowledge source, when articles come from the org.
    pub fn salesforce_knowledge(&self) -> Option<&SalesforceKnowledgeConfig> {
        match self {
            AgentConfig::KnowledgeBase { salesforce_knowledge, .. }
            | AgentConfig::Openai { salesforce_knowledge, .. } => salesforce_knowledge.as_ref(),
            AgentConfig::Script { .. } => None,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig::KnowledgeBase {
            dir: None,
            base_url: default_kb_base_url(),
            min_confidence: default_min_confidence(),
            salesforce_knowledge: None,
            synonyms: None,
            embedding: None,
            suggestions: SuggestionsConfig::default(),
        }
    }
}

/// A markdown help centre: a folder of `*.md` articles.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeConfig {
    /// The folder of `*.md` articles.
    pub dir: PathBuf,
    /// Links to articles are `{base_url}/{file stem}` unless an article sets `url:`.
    #[serde(default = "default_kb_base_url")]
    pub base_url: String,
}

/// Articles from the org's Salesforce Knowledge: the online versions in one language,
/// synced by the articles' `SystemModstamp`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceKnowledgeConfig {
    /// The fields that hold an article's body (rich text or text), read in this order.
    pub body_fields: Vec<String>,
    /// Where customers read an article; `{UrlName}` is replaced by the article's URL name.
    pub article_url: String,
    /// The articles' language.
    #[serde(default = "default_knowledge_language")]
    pub language: String,
    /// How often the org is asked for changed articles (10s to 1d).
    #[serde(default = "default_knowledge_interval", with = "duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// The article version object, `Knowledge__kav` unless the org renamed it.
    #[serde(default = "default_knowledge_object")]
    pub object: String,
    /// The channels whose articles customers may be answered from: an article is synced
    /// when it is published to any of them. `pkb` (the public knowledge base), `csp` (the
    /// customer portal or community), `prm` (the partner portal), `app` (the internal app:
    /// articles written for agents). Default: `[pkb, csp]`, never the agents-only ones.
    #[serde(default = "default_knowledge_channels")]
    pub channels: Vec<KnowledgeChannel>,
}

/// A Knowledge channel, as an article version's `IsVisibleIn…` checkbox names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KnowledgeChannel {
    /// `IsVisibleInApp`: the internal app (agents).
    App,
    /// `IsVisibleInPkb`: the public knowledge base.
    Pkb,
    /// `IsVisibleInCsp`: the customer portal or community.
    Csp,
    /// `IsVisibleInPrm`: the partner portal.
    Prm,
}

impl KnowledgeChannel {
    /// The article version's checkbox for this channel.
    pub fn field(self) -> &'static str {
        match self {
            KnowledgeChannel::App => "IsVisibleInApp",
            KnowledgeChannel::Pkb => "IsVisibleInPkb",
            KnowledgeChannel::Csp => "IsVisibleInCsp",
            KnowledgeChannel::Prm => "IsVisibleInPrm",
        }
    }
}

/// The SMTP server.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls`, or `none` (only for a server on this machine).
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// The sender, such as `Acme Support <support@acme.example>`.
    pub from: String,
}

fn default_login_url() -> String {
    "https://login.salesforce.com".into()
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_jwt_audience() -> String {
    "https://login.salesforce.com".into()
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_poll_overlap() -> Duration {
    Duration::from_secs(60)
}
fn default_initial_lookback() -> Duration {
    Duration::from_secs(24 * 3600)
}
/// The knowledge-base folder when the config names no help centre at all.
pub fn default_kb_dir() -> PathBuf {
    PathBuf::from("examples/demo/help-center")
}
fn default_kb_base_url() -> String {
    "https://help.example.com/articles".into()
}
fn default_min_confidence() -> f64 {
    0.35
}
fn default_knowledge_language() -> String {
    "en_US".into()
}
fn default_knowledge_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_knowledge_object() -> String {
    "Knowledge__kav".into()
}
fn default_knowledge_channels() -> Vec<KnowledgeChannel> {
    vec![KnowledgeChannel::Pkb, KnowledgeChannel::Csp]
}
fn default_passages() -> usize {
    5
}
fn default_context_chars() -> usize {
    8_000
}
fn default_true() -> bool {
    true
}
/// The most conversations an AI service is asked about at once, by default.
pub const DEFAULT_AGENT_CONCURRENCY: usize = 32;

fn default_agent_concurrency() -> usize {
    DEFAULT_AGENT_CONCURRENCY
}
fn default_agent_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_smtp_port() -> u16 {
    587
}
fn default_rules_dir() -> PathBuf {
    PathBuf::from("rules")
}
fn default_store_path() -> PathBuf {
    PathBuf::from("casebridge.db")
}

impl Config {
    /// The client credentials, with secrets read from where the file says.
    pub fn credentials(&self, base: &Path) -> Result<Credentials, ConfigError> {
        Ok(match &self.org.auth {
            AuthConfig::RefreshToken { client_id, client_secret, refresh_token } => Credentials::RefreshToken {
                client_id: client_id.clone(),
                client_secret: client_secret.as_ref().map(|s| s.read("org.auth.client_secret", base)).transpose()?,
                refresh_token: refresh_token.read("org.auth.refresh_token", base)?,
            },
            AuthConfig::ClientCredentials { client_id, client_secret } => Credentials::ClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.read("org.auth.client_secret", base)?,
            },
            AuthConfig::JwtBearer { client_id, username, private_key, audience } => Credentials::JwtBearer {
                client_id: client_id.clone(),
                username: username.clone(),
                private_key_pem: private_key.read("org.auth.private_key", base)?,
                audience: audience.clone(),
            },
            AuthConfig::Stored { .. } => {
                return Err(ConfigError::Secret {
                    path: "org.auth".into(),
                    problem: "the stored grant reads its credentials from the store (see app::client)".into(),
                });
            }
            AuthConfig::Password { client_id, client_secret, username, password } => Credentials::Password {
                client_id: client_id.clone(),
                client_secret: client_secret.read("org.auth.client_secret", base)?,
                username: username.clone(),
                password: password.read("org.auth.password", base)?,
            },
        })
    }

    /// The JSON Schema of the config file.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).expect("the schema serialises")
    }
}

#[cfg(test)]
mod tests;
