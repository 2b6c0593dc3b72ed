//! The daemon's configuration file (YAML). Each field's doc comment is its documentation
//! and goes into `schema/config.schema.json`, which editors use to validate the file.
//!
//! Every setting has a default and can be overridden by an environment variable named
//! after its path: `CASEBRIDGE_POLL__INTERVAL=30s` sets `poll.interval`. Secrets are never
//! written in the file: the file names the environment variable or the file that holds
//! each one. A bad setting is reported with its path (`poll.interval: ...`) and, for the
//! file, its line and column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::act::ReplyChannel;
use crate::act::email::SmtpSecurity;
use crate::salesforce::{Credentials, Secret};

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
    /// The REST API version.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    pub auth: AuthConfig,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout", with = "duration")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
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
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable that holds the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// A file that holds the secret (surrounding whitespace is ignored).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// Reads the secret. `path` names the setting in errors.
    pub fn read(&self, path: &str, base: &Path) -> Result<Secret, ConfigError> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map(Secret::new).map_err(|_| ConfigError::Secret {
                path: path.to_string(),
                problem: format!("the environment variable {var} is not set"),
            }),
            (None, Some(file)) => {
                let full = base.join(file);
                std::fs::read_to_string(&full).map(|s| Secret::new(s.trim())).map_err(|e| ConfigError::Secret {
                    path: path.to_string(),
                    problem: format!("cannot read {}: {e}", full.display()),
                })
            }
            _ => Err(ConfigError::Secret { path: path.to_string(), problem: "give exactly one of env or file".into() }),
        }
    }
}

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
    /// How often to look for new and updated cases.
    #[serde(default = "default_poll_interval", with = "duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// How far before the cursor each poll looks again, for late-committing writes in
    /// Salesforce; cases already seen are recognised and skipped.
    #[serde(default = "default_poll_overlap", with = "duration")]
    #[schemars(with = "String")]
    pub overlap: Duration,
    /// On the very first start, how far back to look for cases.
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
        /// The folder of `*.md` articles.
        #[serde(default = "default_kb_dir")]
        dir: PathBuf,
        /// Links to articles are `{base_url}/{file stem}` unless an article sets `url:`.
        #[serde(default = "default_kb_base_url")]
        base_url: String,
        /// Below this confidence (0 to 1) the agent says it cannot help.
        #[serde(default = "default_min_confidence")]
        min_confidence: f64,
    },
    /// Any OpenAI-compatible chat-completions service.
    Openai {
        /// For example `https://api.openai.com/v1`.
        base_url: String,
        model: String,
        #[serde(default)]
        api_key: Option<SecretRef>,
        /// A file with the system prompt.
        #[serde(default)]
        system_prompt_file: Option<PathBuf>,
        #[serde(default = "default_agent_timeout", with = "duration")]
        #[schemars(with = "String")]
        timeout: Duration,
    },
    /// A Rhai script that defines `fn answer(conversation)`.
    Script { file: PathBuf },
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig::KnowledgeBase {
            dir: default_kb_dir(),
            base_url: default_kb_base_url(),
            min_confidence: default_min_confidence(),
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
fn default_api_version() -> String {
    crate::salesforce::client::DEFAULT_API_VERSION.into()
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
fn default_kb_dir() -> PathBuf {
    PathBuf::from("examples/demo/help-center")
}
fn default_kb_base_url() -> String {
    "https://help.example.com/articles".into()
}
fn default_min_confidence() -> f64 {
    0.35
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

/// A configuration problem, said so that an admin can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{file}:{line}:{column}: {setting}: {problem}")]
    Invalid { file: String, line: usize, column: usize, setting: String, problem: String },
    #[error("environment variable {var} (setting {setting}): {problem}")]
    Env { var: String, setting: String, problem: String },
    #[error("{path}: {problem}")]
    Secret { path: String, problem: String },
}

/// The environment variable prefix for overrides.
pub const ENV_PREFIX: &str = "CASEBRIDGE_";

impl Config {
    /// Reads, overrides from the environment, and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        Self::parse(&text, &path.display().to_string(), &env)
    }

    /// Parses config text with the given `CASEBRIDGE_*` overrides.
    pub fn parse(text: &str, file: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
        // The file alone first, so its errors carry line and column.
        let de = serde_yaml::Deserializer::from_str(text);
        let from_file: Result<Config, _> = serde_path_to_error::deserialize(de);
        let overrides: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| !SKIPPED_ENV.contains(&k.as_str())).collect();
        if overrides.is_empty() {
            return from_file.map_err(|e| file_error(file, e));
        }
        let mut tree: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| file_error_plain(file, e))?;
        if tree.is_null() {
            tree = serde_yaml::Value::Mapping(Default::default());
        }
        for (var, value) in &overrides {
            let setting = var[ENV_PREFIX.len()..].to_lowercase().replace("__", ".");
            let parsed: serde_yaml::Value =
                serde_yaml::from_str(value).unwrap_or(serde_yaml::Value::String(value.to_string()));
            set_path(&mut tree, &setting, parsed).map_err(|problem| ConfigError::Env {
                var: var.to_string(),
                setting: setting.clone(),
                problem,
            })?;
        }
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let setting = e.path().to_string();
            let var = overrides
                .iter()
                .find(|(k, _)| {
                    setting.to_lowercase().starts_with(&k[ENV_PREFIX.len()..].to_lowercase().replace("__", "."))
                })
                .map(|(k, _)| k.to_string())
                .unwrap_or_else(|| format!("{file} with CASEBRIDGE_* overrides"));
            ConfigError::Env { var, setting, problem: e.into_inner().to_string() }
        })
    }

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

/// Variables with the prefix that are not settings.
const SKIPPED_ENV: &[&str] =
    &["CASEBRIDGE_CONFIG", "CASEBRIDGE_SIM_LISTEN", "CASEBRIDGE_SIM_ORG", "CASEBRIDGE_LOG", "CASEBRIDGE_LOG_FORMAT"];

fn file_error(file: &str, e: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let setting = e.path().to_string();
    let inner = e.into_inner();
    let (line, column) = inner.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let message = inner.to_string();
    // serde_yaml prefixes its message with (part of) the path; keep the message alone.
    let problem = match message.split_once(": ") {
        Some((prefix, rest)) if setting.starts_with(prefix) => rest.to_string(),
        _ => message,
    };
    let problem = problem.split(" at line ").next().unwrap_or(&problem).to_string();
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        column,
        setting: if setting == "." { "(top)".into() } else { setting },
        problem,
    }
}

fn file_error_plain(file: &str, e: serde_yaml::Error) -> ConfigError {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    ConfigError::Invalid { file: file.to_string(), line, column, setting: "(top)".into(), problem: e.to_string() }
}

fn set_path(tree: &mut serde_yaml::Value, path: &str, value: serde_yaml::Value) -> Result<(), String> {
    let mut current = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = current.as_mapping_mut().ok_or_else(|| format!("{} is not a section", parts[..i].join(".")))?;
        let key = serde_yaml::Value::String(part.to_string());
        if i == parts.len() - 1 {
            map.insert(key, value);
            return Ok(());
        }
        current = map.entry(key).or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    }
    Ok(())
}

/// Durations written as `500ms`, `30s`, `5m`, `1h` or `1d`.
pub mod duration {
    use super::*;

    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: u64 = number.parse().map_err(|_| format!("expected a duration such as 30s or 5m, found {text:?}"))?;
        let ms = match unit.trim() {
            "ms" => n,
            "s" | "" => n * 1_000,
            "m" => n * 60_000,
            "h" => n * 3_600_000,
            "d" => n * 86_400_000,
            other => return Err(format!("expected a duration such as 30s or 5m; unknown unit {other:?}")),
        };
        Ok(Duration::from_millis(ms))
    }

    pub fn format(d: &Duration) -> String {
        let ms = d.as_millis() as u64;
        match ms {
            m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
            m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
            m if m % 1_000 == 0 => format!("{}s", m / 1_000),
            m => format!("{m}ms"),
        }
    }

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(u64),
        }
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom("expected a duration such as 30s or 5m"))? {
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
org:
  auth:
    grant: refresh_token
    client_id: app
    refresh_token: {env: SF_REFRESH}
agent_user: fin@acme.example
handover:
  default_target: Tier 2 Support
";

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let c = Config::parse(MINIMAL, "c.yaml", &[]).unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(60));
        assert_eq!(c.org.login_url, "https://login.salesforce.com");
        assert_eq!(c.reply.channel, ReplyChannel::Comment);
        assert!(matches!(c.agent, AgentConfig::KnowledgeBase { .. }));
        assert_eq!(c.store_path, PathBuf::from("casebridge.db"));
    }

    #[test]
    fn a_bad_setting_is_named_with_its_path_line_and_column() {
        let text = format!("{MINIMAL}poll:\n  interval: soon\n");
        let e = Config::parse(&text, "c.yaml", &[]).unwrap_err().to_string();
        assert!(e.starts_with("c.yaml:11:3: "), "{e}");
        assert!(e.contains("poll.interval: expected a duration"), "{e}");
        let e = Config::parse(&format!("{MINIMAL}pol: {{}}\n"), "c.yaml", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `pol`"), "{e}");
    }

    #[test]
    fn environment_variables_override_settings() {
        let env = vec![
            ("CASEBRIDGE_POLL__INTERVAL".to_string(), "5s".to_string()),
            ("CASEBRIDGE_AGENT_USER".to_string(), "other@acme.example".to_string()),
        ];
        let c = Config::parse(MINIMAL, "c.yaml", &env).unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(5));
        assert_eq!(c.agent_user, "other@acme.example");
        let bad = vec![("CASEBRIDGE_POLL__INTERVAL".to_string(), "later".to_string())];
        let e = Config::parse(MINIMAL, "c.yaml", &bad).unwrap_err().to_string();
        assert!(e.contains("CASEBRIDGE_POLL__INTERVAL") && e.contains("poll.interval"), "{e}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_files_only() {
        let inline = MINIMAL.replace("refresh_token: {env: SF_REFRESH}", "refresh_token: hunter2");
        assert!(Config::parse(&inline, "c.yaml", &[]).is_err(), "an inline secret is refused");
        let c = Config::parse(MINIMAL, "c.yaml", &[]).unwrap();
        let e = c.credentials(Path::new(".")).unwrap_err().to_string();
        assert!(e.contains("org.auth.refresh_token") && e.contains("SF_REFRESH"), "{e}");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(duration::parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration::parse("2m").unwrap(), Duration::from_secs(120));
        assert!(duration::parse("2 weeks").is_err());
        assert_eq!(duration::format(&Duration::from_secs(120)), "2m");
    }
}
