//! Assembling a daemon from a configuration file: the Salesforce client, the store, the
//! agent, the SMTP client and the rules ([`daemon`]); and running it with everything around
//! it — the rule watcher, the admin server, the status file — under one shutdown signal
//! ([`Service`]). `casebridge run` and `casebridge setup` use it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::act::email::{Mailer, SmtpSettings};
use crate::agent::kb::KnowledgeBase;
use crate::agent::openai::{Grounding, OpenAiAgent};
use crate::agent::script::ScriptAgent;
use crate::agent::{Agent, AgentError};
use crate::auth::rotation::RotatedTokens;
use crate::config::{AgentConfig, Config, ConfigError};
use crate::daemon::{Daemon, DaemonError, DaemonSettings};
use crate::decide::SharedRules;
use crate::knowledge::{Article, Index, Library};
use crate::rules::RuleSet;
use crate::rules::org::OrgSchema;
use crate::rules::watch::Reloader;
use crate::salesforce::{Client, ClientConfig, SalesforceError};
use crate::script::Limits;
use crate::store::{Store, StoreError};

/// Why the daemon could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Setup(#[from] crate::salesforce::directory::SetupError),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("{0}")]
    Rules(String),
    /// A listener could not be opened (the address is taken or not this machine's).
    #[error("{0}")]
    Listen(String),
}

impl AppError {
    /// The exit code: 2 for what the admin must fix in the config, the rules or the files
    /// they name (bad input, as everywhere), 1 for failures while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Rules(_) | AppError::Smtp(_) => 2,
            AppError::Agent(AgentError::Config(_) | AgentError::Script(_)) => 2,
            _ => 1,
        }
    }
}

/// The Salesforce client the config describes. Paths are relative to `base`. The stored
/// grant reads its sealed credentials from the file beside the store, so this works while
/// the daemon runs.
pub fn client(config: &Config, base: &Path) -> Result<Client, AppError> {
    let credentials = match &config.org.auth {
        crate::config::AuthConfig::Stored { client_id, .. } => {
            let key = config
                .credentials_key
                .as_ref()
                .ok_or_else(|| {
                    AppError::Rules(
                        "credentials_key: the stored grant needs the key that sealed the credentials".into(),
                    )
                })?
                .read("credentials_key", base)?;
            let vault = crate::auth::vault::Vault::from_key(&key)
                .map_err(|e| AppError::Rules(format!("credentials_key: {e}")))?;
            let stored = crate::store::read_credentials(&base.join(&config.store_path))?.ok_or_else(|| {
                AppError::Rules("no stored credentials: run `casebridge auth login --config ...` first".into())
            })?;
            let open = |sealed: &str| vault.open(sealed).map_err(|e| AppError::Rules(e.to_string()));
            let credentials = crate::salesforce::Credentials::RefreshToken {
                client_id: client_id.clone(),
                client_secret: stored.sealed_client_secret.as_deref().map(open).transpose()?,
                refresh_token: open(&stored.sealed_refresh_token)?,
            };
            let rotated = RotatedTokens::Stored { store: base.join(&config.store_path), key };
            (credentials, Some(rotated))
        }
        _ => {
            let credentials = config.credentials(base)?;
            let rotated = match &credentials {
                crate::salesforce::Credentials::RefreshToken { refresh_token, .. } => Some(RotatedTokens::Configured {
                    store: base.join(&config.store_path),
                    configured: refresh_token.clone(),
                }),
                _ => None,
            };
            (credentials, rotated)
        }
    };
    let (credentials, rotated) = credentials;
    let mut client_config = client_config(config, credentials);
    client_config.refresh_tokens = rotated.map(|r| Arc::new(r) as Arc<dyn crate::salesforce::auth::RefreshTokenStore>);
    Ok(Client::new(client_config)?)
}

fn client_config(config: &Config, credentials: crate::salesforce::Credentials) -> ClientConfig {
    let mut client_config = ClientConfig::new(config.org.login_url.clone(), credentials);
    client_config.api_version.clone_from(&config.org.api_version);
    client_config.timeout = config.org.request_timeout;
    client_config.assignment_rules = config.org.assignment_rules;
    client_config
}

/// The agent the config describes, its help centre embedded when a model is configured
/// (CPU work: seconds to minutes with an empty vector cache; call it off the async
/// threads, as [`daemon`] does).
pub fn agent(config: &Config, base: &Path) -> Result<Agent, AppError> {
    agent_with(config, base, true)
}

/// The agent, with the model's files checked but nothing embedded (`embed: false`: what
/// an offline check needs, leaving no vector cache behind).
fn agent_with(config: &Config, base: &Path, embed: bool) -> Result<Agent, AppError> {
    Ok(match &config.agent {
        AgentConfig::KnowledgeBase {
            dir,
            base_url,
            min_confidence,
            salesforce_knowledge,
            synonyms,
            embedding,
            suggestions,
        } => {
            let dir = match (dir, salesforce_knowledge) {
                (Some(d), _) => Some(d.clone()),
                (None, None) => Some(crate::config::default_kb_dir()),
                (None, Some(_)) => None,
            };
            let articles = match dir {
                Some(d) => folder_articles(base, &d, base_url, "agent.dir")?,
                None => Vec::new(),
            };
            let index = Index::with_synonyms(articles, synonyms_of(base, synonyms.as_deref())?);
            let bars = crate::agent::kb::Bars {
                min_confidence: *min_confidence,
                state_at_coverage: suggestions.state_at_coverage,
                state_at: suggestions.state_at,
                state_margin: suggestions.state_margin,
                suggest_at: suggestions.suggest_at,
                suggest_with_words_at: suggestions.suggest_with_words_at,
                max_suggestions: suggestions.max,
            };
            let library = library(config, base, index, embedding.as_ref(), embed)?;
            Agent::KnowledgeBase(KnowledgeBase::with_library(library, bars))
        }
        AgentConfig::Openai {
            base_url,
            model,
            api_key,
            system_prompt_file,
            timeout,
            knowledge,
            salesforce_knowledge: _,
            synonyms,
            embedding,
            passages,
            context_chars,
            json_schema,
            attributes,
            concurrency,
        } => {
            let key = api_key.as_ref().map(|k| k.read("agent.api_key", base)).transpose()?;
            let prompt = system_prompt_file
                .as_ref()
                .map(|f| {
                    std::fs::read_to_string(base.join(f)).map_err(|e| {
                        AgentError::Config(format!("agent.system_prompt_file: cannot read {}: {e}", f.display()))
                    })
                })
                .transpose()?;
            let articles = match knowledge {
                Some(k) => folder_articles(base, &k.dir, &k.base_url, "agent.knowledge.dir")?,
                None => Vec::new(),
            };
            let grounding = Grounding {
                passages: *passages,
                context_chars: *context_chars,
                json_schema: *json_schema,
                attributes: attributes.clone(),
            };
            let index = Index::with_synonyms(articles, synonyms_of(base, synonyms.as_deref())?);
            let library = library(config, base, index, embedding.as_ref(), embed)?;
            let agent = OpenAiAgent::new(base_url, model, key, prompt, *timeout, library, grounding)?;
            Agent::OpenAi(agent.with_ceiling(*concurrency))
        }
        AgentConfig::Script { file } => Agent::Script(ScriptAgent::load(&base.join(file), Limits::default())?),
    })
}

/// The help centre's library: ranked by meaning too when `agent.embedding` names a model,
/// whose passage vectors are kept in `agent.embedding.cache` (beside the store unless
/// set). The model's files are checked here, and a refusal names the file.
fn library(
    config: &Config,
    base: &Path,
    index: Index,
    embedding: Option<&crate::config::EmbeddingConfig>,
    embed: bool,
) -> Result<Arc<Library>, AppError> {
    let Some(settings) = embedding else { return Ok(Library::new(index)) };
    if !embed {
        crate::embedding::Encoder::load(&base.join(&settings.model))
            .map_err(|e| AgentError::Config(format!("agent.embedding: {e}")))?;
        return Ok(Library::new(index));
    }
    let cache = match &settings.cache {
        Some(dir) => base.join(dir),
        None => {
            let mut path = base.join(&config.store_path).into_os_string();
            path.push(".vectors");
            PathBuf::from(path)
        }
    };
    let encoder = crate::embedding::CachedEncoder::open(&base.join(&settings.model), &cache)
        .map_err(|e| AgentError::Config(format!("agent.embedding: {e}")))?;
    Library::with_embedder(index, Arc::new(encoder))
        .map_err(|e| AgentError::Config(format!("agent.embedding: embedding the help centre: {e}")).into())
}

/// The agent the config describes with its whole help centre: when articles come from the
/// org's Salesforce Knowledge, they are read once first (what `agent ask` and `agent eval`
/// measure; the daemon keeps them in sync itself).
pub async fn agent_with_knowledge(config: &Config, base: &Path) -> Result<Agent, AppError> {
    let agent = agent(config, base)?;
    if let (Some(settings), Some(library)) = (config.agent.salesforce_knowledge(), agent.library()) {
        let client = client(config, base)?;
        let mut sync =
            crate::daemon::knowledge_sync::KnowledgeSync::new(settings.clone(), library.clone(), config.poll.overlap);
        sync.sync(&client).await.map_err(|e| AgentError::Config(format!("agent.salesforce_knowledge: {e}")))?;
    }
    Ok(agent)
}

/// The synonym groups of `agent.synonyms`, or none.
fn synonyms_of(base: &Path, file: Option<&Path>) -> Result<crate::knowledge::Synonyms, AppError> {
    match file {
        Some(f) => crate::knowledge::Synonyms::load(&base.join(f))
            .map_err(|e| AgentError::Config(format!("agent.synonyms: {e}")).into()),
        None => Ok(crate::knowledge::Synonyms::default()),
    }
}

/// A markdown help-centre folder's articles; errors name the setting.
fn folder_articles(base: &Path, dir: &Path, base_url: &str, setting: &str) -> Result<Vec<Article>, AppError> {
    crate::knowledge::load_markdown_folder(&base.join(dir), base_url)
        .map_err(|e| AgentError::Config(format!("{setting}: {e}")).into())
}

/// The SMTP client, when the config has an SMTP server.
pub fn mailer(config: &Config, base: &Path) -> Result<Option<Mailer>, AppError> {
    let Some(smtp) = &config.smtp else { return Ok(None) };
    let settings = SmtpSettings {
        host: smtp.host.clone(),
        port: smtp.port,
        security: smtp.security,
        username: smtp.username.clone(),
        password: smtp.password.as_ref().map(|p| p.read("smtp.password", base)).transpose()?,
        timeout: std::time::Duration::from_secs(30),
        from: smtp.from.clone(),
    };
    Ok(Some(Mailer::new(&settings).map_err(|e| AppError::Smtp(e.to_string()))?))
}

/// The daemon's behaviour settings from the config.
pub fn settings(config: &Config) -> DaemonSettings {
    DaemonSettings {
        poll_interval: config.poll.interval,
        overlap: config.poll.overlap,
        initial_lookback: config.poll.initial_lookback,
        reply_channel: config.reply.channel,
        email_from: config.smtp.as_ref().map(|s| s.from.clone()),
        agent_concurrency: config.agent.concurrency(),
        salesforce_knowledge: config.agent.salesforce_knowledge().cloned(),
        silence_after_suggestions: match &config.agent {
            AgentConfig::KnowledgeBase { suggestions, .. } => suggestions.on_silence,
            _ => Default::default(),
        },
        retention: config.retention.clone(),
        ..DaemonSettings::new(&config.agent_user, &config.handover.default_target)
    }
}

/// Loads the rule set of `config.rules_dir`, with every problem in the message.
pub fn rules(config: &Config, base: &Path) -> Result<RuleSet, AppError> {
    let dir = base.join(&config.rules_dir);
    if !dir.is_dir() {
        return Err(AppError::Rules(format!(
            "rules_dir: {} is not a folder\nhint: casebridge ships a commented rule set in rules/; point rules_dir at it or a copy",
            dir.display()
        )));
    }
    RuleSet::load(&dir).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        AppError::Rules(format!(
            "the rule set in {} has {} problem(s):\n{}\nhint: `casebridge rules check {}` shows the same",
            dir.display(),
            errors.len(),
            list.join("\n"),
            dir.display()
        ))
    })
}

/// The rule set's mappings against the org's fields, as an error listing every problem.
pub fn check_against_org(org: &OrgSchema, set: &RuleSet, dir: &Path) -> Result<(), AppError> {
    let problems = org.check(set);
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    Err(AppError::Rules(format!(
        "the rule set in {} does not fit the org ({} problem(s)):\n{}",
        dir.display(),
        problems.len(),
        list.join("\n")
    )))
}

/// Everything `run` checks before it signs in: every secret readable, the agent and SMTP
/// settings usable, the rule set valid.
pub fn check_offline(config: &Config, base: &Path) -> Result<(), AppError> {
    if let Some(admin) = &config.admin {
        admin.token.read("admin.token", base)?;
    }
    if let Some(key) = &config.credentials_key {
        key.read("credentials_key", base)?;
    }
    agent_with(config, base, false)?;
    mailer(config, base)?;
    rules(config, base)?;
    Ok(())
}

/// Assembles the daemon: loads the agent and the rule set, signs in, checks the rules
/// against the org, opens the store, resolves the agent user and handover target. The
/// reloader swaps in new rule sets. The store is opened last, so a start refused for bad
/// input or an unreachable org leaves nothing behind.
pub async fn daemon(config: &Config, base: &Path) -> Result<(Daemon, Arc<Reloader>), AppError> {
    // Embedding the help centre is CPU work: the other tasks move off this worker meanwhile.
    let agent = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| agent(config, base))?
        }
        _ => agent(config, base)?,
    };
    let mailer = mailer(config, base)?;
    let rule_set = rules(config, base)?;
    let client = client(config, base)?;
    // Mappings the org would refuse are reported now, not when cases fail.
    let org = Arc::new(OrgSchema::fetch(&client).await?);
    check_against_org(&org, &rule_set, &base.join(&config.rules_dir))?;
    let store = Store::open(&base.join(&config.store_path))?;
    let hash = rule_set.hash.clone();
    let shared: SharedRules = crate::decide::shared(Box::new(rule_set));
    let reloader =
        Arc::new(Reloader::new(&base.join(&config.rules_dir), shared.clone(), hash, Limits::default()).with_org(org));
    let daemon = Daemon::new(client, store, agent, shared, mailer, settings(config)).await?;
    Ok((daemon, reloader))
}

/// Where the running daemon writes what `casebridge status` shows: beside the store.
pub fn status_path(config: &Config, base: &Path) -> std::path::PathBuf {
    crate::store::sidecar(&base.join(&config.store_path), "status.json")
}

/// How long the rule watcher waits for a burst of file changes to settle, and how often
/// it looks again on its own (editors and file systems that send no events).
const WATCH_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(250);
const WATCH_RESCAN: std::time::Duration = std::time::Duration::from_secs(30);

/// A daemon with everything that runs around it: the rule reloader and its watcher, the
/// admin server when configured, the status file. Every task stops on its one
/// [`Shutdown`]; the daemon stopping on an error stops the others too.
pub struct Service {
    daemon: Daemon,
    /// Rule files are watched for the service's whole life; the watcher stops when dropped.
    _watcher: Option<crate::rules::watch::Watcher>,
    shutdown: Shutdown,
    admin: Option<std::net::SocketAddr>,
    messenger: Option<std::net::SocketAddr>,
}

impl Service {
    /// Reads every secret, assembles the daemon ([`daemon`]), starts watching the rule
    /// files and serves the admin API. Nothing is left running when it fails.
    pub async fn start(config: &Config, base: &Path) -> Result<Service, AppError> {
        // Every secret is read and the admin address bound before anything starts, so a bad
        // secret or a taken port leaves nothing behind.
        let admin = match &config.admin {
            Some(admin) => {
                let token = admin.token.read("admin.token", base)?;
                let listener = tokio::net::TcpListener::bind(admin.listen).await.map_err(|e| {
                    AppError::Listen(format!("admin.listen: the admin server cannot listen on {}: {e}", admin.listen))
                })?;
                Some((listener, token))
            }
            None => None,
        };
        let messenger = match &config.messenger {
            Some(m) => {
                let mut settings = crate::channels::messenger::MessengerSettings::from(m);
                settings.identity_secret =
                    m.identity_secret.as_ref().map(|s| s.read("messenger.identity_secret", base)).transpose()?;
                let listener = tokio::net::TcpListener::bind(m.listen).await.map_err(|e| {
                    AppError::Listen(format!("messenger.listen: the messenger cannot listen on {}: {e}", m.listen))
                })?;
                Some((listener, settings))
            }
            None => None,
        };
        let (mut daemon, reloader) = daemon(config, base).await?;
        let watcher = match crate::rules::watch::watch(reloader.clone(), WATCH_DEBOUNCE, WATCH_RESCAN) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "Rule files are not watched; restart casebridge to apply rule changes.");
                None
            }
        };
        tracing::info!(rules = %reloader.status().active, "Rule set loaded.");
        daemon.report_status(status_path(config, base), Some(reloader.clone()));
        let shutdown = Shutdown::new();
        let admin = match admin {
            Some((listener, token)) => {
                let state = daemon.admin_state(Some(reloader.clone()), token);
                let addr = crate::report::admin::serve_on(listener, state, shutdown.wait())
                    .map_err(|e| AppError::Listen(format!("admin.listen: {e}")))?;
                tracing::info!(%addr, "Admin server listening.");
                Some(addr)
            }
            None => None,
        };
        let messenger = match messenger {
            Some((listener, settings)) => {
                let hub = crate::channels::messenger::Messenger::new(daemon.store().clone(), settings)?;
                daemon.attach_messenger(hub.clone());
                let addr = crate::channels::messenger::api::serve_on(listener, hub, shutdown.wait())
                    .map_err(|e| AppError::Listen(format!("messenger.listen: {e}")))?;
                tracing::info!(%addr, "Messenger listening.");
                Some(addr)
            }
            None => None,
        };
        Ok(Service { daemon, _watcher: watcher, shutdown, admin, messenger })
    }

    /// The signal that stops the service.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Where the admin server listens, when there is one.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin
    }

    /// Where the messenger listens, when it is on.
    pub fn messenger_addr(&self) -> Option<std::net::SocketAddr> {
        self.messenger
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Polls until the shutdown signal; then, or when the daemon stops on an error, every
    /// other task stops too.
    pub async fn run(self) -> Result<(), DaemonError> {
        let Service { daemon, _watcher, shutdown, admin: _, messenger: _ } = self;
        let outcome = daemon.run(shutdown.wait()).await;
        shutdown.trigger();
        outcome
    }
}

/// The one shutdown signal every task of a running daemon obeys (the poll loop, the admin
/// server): triggered once, by a signal or by the daemon stopping, seen by all.
#[derive(Clone)]
pub struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Stops every task waiting on this signal.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once the signal is triggered (at once if it already was).
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut seen = self.0.subscribe();
        async move {
            // An error means the sender is gone, which only happens after shutting down.
            let _ = seen.wait_for(|stopped| *stopped).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_shutdown_reaches_every_waiter_even_late_ones() {
        let shutdown = Shutdown::new();
        let early: Vec<_> = (0..3).map(|_| tokio::spawn(shutdown.wait())).collect();
        shutdown.trigger();
        for waiter in early {
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        }
        // A task that starts waiting after the signal stops at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), shutdown.wait()).await.unwrap();
    }
}
