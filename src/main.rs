//! The `casebridge` command: parses flags and hands over to the library.
//!
//! Exit codes: 0 success; 1 a failure while running (the org or store refused); 2 bad
//! input (config, seed or flags), with what to fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use casebridge::config::Config;
use casebridge::salesforce::directory;
use casebridge::sim::{self, SimOptions, Simulator};
use casebridge::{app, demo, store};

/// Prints a line to standard output. A reader that went away (`casebridge ... | head`) ends
/// the command quietly with success, as Unix tools do, instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => { write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// [`out!`] without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}

fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// How `rules test` reports.
#[derive(Clone, Copy, ValueEnum)]
enum TestFormat {
    Text,
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// casebridge puts an AI support agent on Salesforce Cases.
///
/// Start with `casebridge demo`: a simulated org, the daemon and a scripted scenario, on
/// this machine alone.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about,
    after_help = "Examples:\n  casebridge demo\n  casebridge run --config examples/demo/casebridge.yaml\n  casebridge rules test rules/\n  casebridge status --config casebridge.yaml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a short scenario on a built-in simulated org and print what the daemon does.
    ///
    /// Example: casebridge demo
    Demo,
    /// Run the daemon: poll the org, answer cases assigned to the agent user, hand over.
    ///
    /// Example: casebridge run --config examples/demo/casebridge.yaml
    Run {
        /// The configuration file (YAML); see schema/config.schema.json.
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Look the org up: who the agent can reply as or hand over to, and whether the
    /// configuration works.
    ///
    /// Example: casebridge setup check --config casebridge.yaml
    Setup {
        #[command(subcommand)]
        what: SetupCommand,
    },
    /// Check, test and explain rule sets (the files under rules/).
    ///
    /// Example: casebridge rules test rules/
    Rules {
        #[command(subcommand)]
        what: RulesCommand,
    },
    /// Write a fixture from the org: a case as casebridge reads it, for rule tests.
    ///
    /// Example: casebridge record 500Dn000000000IIAQ --config casebridge.yaml --scrub --out rules/tests/fixtures/drift.json
    Record {
        /// The case's Id.
        case_id: String,
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
        /// Where to write the fixture (standard output when not given).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace names, email addresses and phone numbers with consistent pseudonyms.
        #[arg(long)]
        scrub: bool,
    },
    /// Sign casebridge in to the org, and manage the key that seals stored credentials.
    ///
    /// Example: casebridge auth login --config casebridge.yaml
    Auth {
        #[command(subcommand)]
        what: AuthCommand,
    },
    /// Show what the running daemon is doing: last poll, outbox, sync errors, API usage,
    /// and the rule set (its hash, the last reload and its errors).
    ///
    /// Example: casebridge status --config casebridge.yaml
    Status {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// List the sync errors: what Salesforce, SMTP or the agent refused, and why.
    ///
    /// Example: casebridge errors --config casebridge.yaml
    Errors {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Serve a simulated Salesforce org over the REST API, for tests, demos and trying
    /// Salesforce clients without a real org.
    ///
    /// Example: casebridge sim --listen 127.0.0.1:8443 --org examples/demo/org.yaml
    Sim {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:0", env = "CASEBRIDGE_SIM_LISTEN")]
        listen: SocketAddr,
        /// Org seed file (YAML). Without it, the built-in demo org is served.
        #[arg(long, env = "CASEBRIDGE_SIM_ORG")]
        org: Option<PathBuf>,
        /// Query rows per page before `nextRecordsUrl` (1 to 2000).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..=2000))]
        batch_size: u16,
        /// Serve HTTPS with a certificate made at start for localhost, 127.0.0.1 and ::1.
        /// The certificate of the authority that signed it is written to the system's
        /// temporary directory ($TMPDIR, else /tmp) as casebridge-sim-PORT-ca.pem, removed on
        /// exit; its path is printed on the second line. Trust it with REQUESTS_CA_BUNDLE,
        /// NODE_EXTRA_CA_CERTS, SSL_CERT_FILE or curl --cacert.
        #[arg(long)]
        tls: bool,
    },
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Print a new credentials key (32 random bytes, base64) for `credentials_key`.
    ///
    /// Example: casebridge auth keygen > /etc/casebridge/credentials.key
    Keygen,
    /// Sign in through the browser (OAuth web-server flow) and store the refresh token and
    /// the app's secret, sealed with the credentials key. Run it while the daemon is stopped.
    ///
    /// Example: casebridge auth login --config casebridge.yaml --callback 127.0.0.1:8765
    Login {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
        /// Where the local callback listens; the connected app's callback URL must be
        /// http://ADDR/callback.
        #[arg(long, default_value = "127.0.0.1:8765")]
        callback: SocketAddr,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate every file of a rule set; exit 0 when valid, 1 when not.
    ///
    /// Example: casebridge rules check rules/
    Check {
        /// The rule set's folder.
        #[arg(default_value = "rules")]
        dir: PathBuf,
        /// Also check the mappings against the org this config signs in to (its fields,
        /// and whether they can be written).
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run a rule set's fixture tests; exit 0 when all pass, 1 when not.
    ///
    /// Example: casebridge rules test rules/ --filter billing --format junit > rules.xml
    Test {
        #[arg(default_value = "rules")]
        dir: PathBuf,
        /// Only tests whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// How to report.
        #[arg(long, value_enum, default_value = "text")]
        format: TestFormat,
    },
    /// Show the full decision trace for one fixture: every rule evaluated, what it saw,
    /// whether it fired, and how long it took.
    ///
    /// Example: casebridge rules explain rules/tests/fixtures/asks-for-human.json --rules rules/
    Explain {
        /// A fixture: a recorded case (JSON).
        fixture: PathBuf,
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// The agent's answer to assume (none: the agent cannot help).
        #[arg(long)]
        answer: Option<String>,
        #[arg(long, default_value_t = 1.0)]
        confidence: f64,
    },
}

#[derive(Subcommand)]
enum SetupCommand {
    /// Active users that can own cases (the agent user, or a handover target).
    ///
    /// Example: casebridge setup users --config casebridge.yaml
    Users {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Queues that support cases (handover targets).
    ///
    /// Example: casebridge setup queues --config casebridge.yaml
    Queues {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Check that the org answers, and that the agent user and handover target can own cases.
    ///
    /// Example: casebridge setup check --config casebridge.yaml
    Check {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // CASEBRIDGE_LOG sets the level (info by default); CASEBRIDGE_LOG_FORMAT=json writes one
    // JSON object a line for log shippers. Logs carry ids, codes and short summaries, never
    // tokens, secrets or whole message bodies.
    let filter = std::env::var("CASEBRIDGE_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal, never into files or journals.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    if std::env::var("CASEBRIDGE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => run_demo().await,
        Command::Run { config } => run_daemon(&config).await,
        Command::Setup { what } => run_setup(what).await,
        Command::Errors { config } => list_errors(&config),
        Command::Rules { what } => run_rules(what).await,
        Command::Status { config } => show_status(&config),
        Command::Auth { what } => run_auth(what).await,
        Command::Record { case_id, config, out, scrub } => record_case(&case_id, &config, out.as_deref(), scrub).await,
        Command::Sim { listen, org, batch_size, tls } => {
            run_sim(listen, org, SimOptions { batch_size: batch_size as usize, tls }).await
        }
    }
}

/// Loads a config and builds its Salesforce client, or says what is wrong.
fn config_and_client(path: &Path) -> Result<(Config, PathBuf, casebridge::salesforce::Client), ExitCode> {
    let (config, base) = load_config(path)?;
    match app::client(&config, &base) {
        Ok(client) => Ok((config, base, client)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Loads a config, or says what is wrong with it.
fn load_config(path: &Path) -> Result<(Config, PathBuf), ExitCode> {
    match Config::load(path) {
        Ok(c) => Ok((c, path.parent().map(Path::to_path_buf).unwrap_or_default())),
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("hint: schema/config.schema.json documents every setting");
            Err(ExitCode::from(2))
        }
    }
}

async fn run_demo() -> ExitCode {
    match demo::run(&mut std::io::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the demo failed: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_daemon(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Every secret is read before anything starts, so a bad one leaves nothing behind.
    let admin_token = match config.admin.as_ref().map(|a| a.token.read("admin.token", &base)).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (daemon, reloader) = match app::daemon(&config, &base).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot start casebridge: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // Rule files are watched for the daemon's whole life; the watcher stops when dropped.
    let _watcher = match casebridge::rules::watch::watch(
        reloader.clone(),
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(30),
    ) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "Rule files are not watched; restart casebridge to apply rule changes.");
            None
        }
    };
    tracing::info!(rules = %reloader.status().active, "Rule set loaded.");
    let mut daemon = daemon;
    daemon.report_status(status_path(&config, &base), Some(reloader.clone()));
    if let (Some(admin), Some(token)) = (&config.admin, admin_token) {
        let state = daemon.admin_state(Some(reloader.clone()), token);
        match casebridge::report::admin::serve(admin.listen, state, wait_for_shutdown()).await {
            Ok(addr) => tracing::info!(%addr, "Admin server listening."),
            Err(e) => {
                eprintln!("error: the admin server cannot listen on {}: {e}", admin.listen);
                return ExitCode::from(1);
            }
        }
    }
    tracing::info!(
        agent_user = %daemon.agent_user().handle,
        handover = %daemon.default_target().name,
        interval_s = config.poll.interval.as_secs(),
        "casebridge is running."
    );
    match daemon.run(wait_for_shutdown()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: casebridge stopped: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_setup(what: SetupCommand) -> ExitCode {
    let path = match &what {
        SetupCommand::Users { config } | SetupCommand::Queues { config } | SetupCommand::Check { config } => {
            config.clone()
        }
    };
    let (config, base, client) = match config_and_client(&path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // `setup check` checks what `run` would refuse before it signs in: every secret, the
    // agent, SMTP and the rule set (bad input, exit 2, the same as from `run`).
    if matches!(what, SetupCommand::Check { .. }) {
        match app::check_offline(&config, &base) {
            Ok(()) => out!("ok  secrets, agent, SMTP settings and rule set"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(e.exit_code());
            }
        }
    }
    let result = match what {
        SetupCommand::Users { .. } => directory::users(&client).await.map(|users| {
            out!("{:<20} {:<28} USERNAME", "ID", "NAME");
            for u in users {
                out!("{:<20} {:<28} {}", u.id, u.name, u.handle);
            }
        }),
        SetupCommand::Queues { .. } => directory::queues(&client).await.map(|queues| {
            out!("{:<20} {:<28} DEVELOPER NAME", "ID", "NAME");
            for q in queues {
                out!("{:<20} {:<28} {}", q.id, q.name, q.handle);
            }
        }),
        SetupCommand::Check { .. } => check(&client, &config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn check(client: &casebridge::salesforce::Client, config: &Config) -> Result<(), directory::SetupError> {
    let session = client.session().await?;
    out!("ok  signed in to {} as {}", session.instance_url, session.user_id().unwrap_or("?"));
    let limits = client.limits().await?;
    if let Some(daily) = limits.get("DailyApiRequests") {
        out!("ok  API requests left today: {} of {}", daily.remaining, daily.max);
    }
    let agent = directory::agent_user(client, &config.agent_user).await?;
    out!("ok  agent user: {} ({}, {})", agent.name, agent.handle, agent.id);
    let target = directory::handover_target(client, &config.handover.default_target).await?;
    out!("ok  handover target: {} ({:?}, {})", target.name, target.kind, target.id);
    Ok(())
}

/// Loads a rule set, printing every problem (with a caret) when it does not load.
fn load_rules(dir: &Path) -> Result<casebridge::rules::RuleSet, ExitCode> {
    casebridge::rules::RuleSet::load(dir).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}\n");
        }
        eprintln!("{} problem(s) in {}", errors.len(), dir.display());
        ExitCode::from(1)
    })
}

async fn run_rules(what: RulesCommand) -> ExitCode {
    use casebridge::rules::testing;
    match what {
        RulesCommand::Check { dir, config } => match load_rules(&dir) {
            Ok(set) => {
                if let Some(path) = config {
                    let (config, base) = match load_config(&path) {
                        Ok(c) => c,
                        Err(code) => return code,
                    };
                    let checked = match app::client(&config, &base) {
                        Ok(client) => match casebridge::rules::org::OrgSchema::fetch(&client).await {
                            Ok(org) => app::check_against_org(&org, &set, &dir).map_err(|e| e.to_string()),
                            Err(e) => Err(format!("cannot read the org's field metadata: {e}")),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = checked {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                    out!("ok  the mappings fit the org at {}", config.org.login_url);
                }
                out!(
                    "ok  {}: {} files, {} tests, rule set {}",
                    dir.display(),
                    set.files.len(),
                    set.tests.len(),
                    set.hash
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        RulesCommand::Test { dir, filter, format } => {
            let set = match load_rules(&dir) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let outcomes = testing::run(&set, filter.as_deref()).await;
            let failed = outcomes.iter().filter(|o| !o.passed()).count();
            match format {
                TestFormat::Json => out!("{}", serde_json::to_string_pretty(&outcomes).unwrap_or_default()),
                TestFormat::Junit => out_raw!("{}", testing::junit(&outcomes)),
                TestFormat::Text => {
                    for o in &outcomes {
                        if o.passed() {
                            out!("test {} ... ok", o.name);
                        } else {
                            out!("test {} ... FAILED ({})", o.name, o.file);
                            for f in &o.failures {
                                out!("    {f}");
                            }
                            if let Some(d) = &o.decision {
                                for line in testing::explain(d).lines() {
                                    out!("    | {line}");
                                }
                            }
                        }
                    }
                    out!("{} passed, {} failed", outcomes.len() - failed, failed);
                }
            }
            if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        RulesCommand::Explain { fixture, rules, answer, confidence } => {
            let set = match load_rules(&rules) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let conversation = match testing::load_fixture(&fixture) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let stub = casebridge::rules::files::AgentStub { answer, confidence };
            let decision = testing::decide_with(&set, &conversation, &stub).await;
            out_raw!("{}", testing::explain(&decision));
            ExitCode::SUCCESS
        }
    }
}

async fn record_case(case_id: &str, config_path: &Path, out: Option<&Path>, scrub: bool) -> ExitCode {
    let (config, base, client) = match config_and_client(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The fields the rule set maps, so the fixture holds what the rules read.
    let extra: Vec<String> =
        app::rules(&config, &base).map(|r| r.case_fields.into_iter().collect()).unwrap_or_default();
    let agent = match directory::agent_user(&client, &config.agent_user).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut fixture = match casebridge::record::record(&client, case_id, &agent.id, &extra).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if scrub {
        casebridge::record::scrub(&mut fixture);
    }
    let text = serde_json::to_string_pretty(&fixture).unwrap_or_default() + "\n";
    match out {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                eprintln!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::from(1)
            }
        },
        None => {
            out_raw!("{text}");
            ExitCode::SUCCESS
        }
    }
}

async fn run_auth(what: AuthCommand) -> ExitCode {
    let (config_path, callback) = match what {
        AuthCommand::Keygen => {
            out!("{}", casebridge::auth::vault::Vault::generate_key());
            return ExitCode::SUCCESS;
        }
        AuthCommand::Login { config, callback } => (config, callback),
    };
    let (config, base) = match load_config(&config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let casebridge::config::AuthConfig::Stored { client_id, client_secret: Some(secret) } = &config.org.auth else {
        eprintln!("error: org.auth must be `grant: stored` with the app's client_id and client_secret for auth login");
        return ExitCode::from(2);
    };
    let secret = match secret.read("org.auth.client_secret", &base) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let vault = match config.credentials_key.as_ref().map(|k| k.read("credentials_key", &base)) {
        Some(Ok(key)) => match casebridge::auth::vault::Vault::from_key(&key) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: credentials_key: {e}");
                return ExitCode::from(2);
            }
        },
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!(
                "error: credentials_key is not set\nhint: `casebridge auth keygen` makes a key; name its file or variable in the config"
            );
            return ExitCode::from(2);
        }
    };
    let store = match store::Store::open(&base.join(&config.store_path)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let request = casebridge::auth::login::LoginRequest {
        login_url: config.org.login_url.clone(),
        client_id: client_id.clone(),
        client_secret: secret,
        callback,
        scopes: casebridge::salesforce::auth::SCOPES.to_string(),
    };
    let (address, finish) = match casebridge::auth::login::start(request.clone()).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    out!("Open this address in a browser and allow casebridge:");
    out!("{address}");
    match finish.await {
        Ok((refresh, user)) => match casebridge::auth::login::save(&store, &vault, &request, &refresh, user.clone()) {
            Ok(()) => {
                out!(
                    "Signed in as {}; the credentials are stored, sealed, in {}.",
                    user.unwrap_or_default(),
                    config.store_path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where the daemon writes its status: beside its store.
fn status_path(config: &Config, base: &Path) -> PathBuf {
    store::sidecar(&base.join(&config.store_path), "status.json")
}

fn show_status(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let file = status_path(&config, &base);
    let status: serde_json::Value = match read_status(&file) {
        Some(s) => s,
        None => {
            eprintln!(
                "error: no status at {}\nhint: is casebridge running with this config? It writes its status after each poll",
                file.display()
            );
            return ExitCode::from(1);
        }
    };
    let pid = status["pid"].as_u64().unwrap_or(0);
    let alive = pid != 0 && Path::new(&format!("/proc/{pid}")).exists();
    out!(
        "casebridge {} (pid {pid}), status of {}",
        if alive { "is running" } else { "is NOT running" },
        status["updated_at"].as_str().unwrap_or("?")
    );
    out!("  agent user       {}", status["agent_user"]["handle"].as_str().unwrap_or("?"));
    out!("  handover target  {}", status["handover_target"]["name"].as_str().unwrap_or("?"));
    out!("  cursor           {}", status["cursor"].as_str().unwrap_or("none yet"));
    let last = &status["last_cycle"];
    out!(
        "  last poll        {} rows, {} events, {} actions done, {} failed, {} API calls{}",
        last["rows"],
        last["events"],
        last["actions_done"],
        last["actions_failed"],
        last["api_calls"],
        last["poll_error"].as_str().map(|e| format!(", error: {e}")).unwrap_or_default()
    );
    out!("  API usage        {}/{} today", status["api_usage"]["used"], status["api_usage"]["max"]);
    out!("  conversations    {}", status["conversations"]);
    out!("  outbox pending   {}", status["outbox_pending"]);
    out!("  sync errors      {}  (casebridge errors --config ...)", status["sync_errors"]);
    let rules = &status["rules"];
    out!(
        "  rule set         {} ({} reloads, {} failed; last attempt {})",
        rules["active"].as_str().unwrap_or("?"),
        rules["reloads_ok"],
        rules["reloads_failed"],
        rules["last_attempt"].as_str().unwrap_or("none")
    );
    if rules["on_disk"].as_str() == Some("broken") {
        out!(
            "  rule files       BROKEN on disk (content {}): not applied; the rule set above keeps running",
            rules["disk_hash"].as_str().unwrap_or("?")
        );
    }
    for e in rules["last_errors"].as_array().into_iter().flatten() {
        out!("  last reload error:\n{}", e.as_str().unwrap_or_default());
    }
    if alive {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: casebridge is not running (the status above is from its last cycle)");
        ExitCode::from(1)
    }
}

/// Lists sync errors: from the store when no daemon holds it, else from the running
/// daemon's status file (its newest errors). Never creates a store.
fn list_errors(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store_path = base.join(&config.store_path);
    let (errors, total, source) = match store::Store::open_existing(&store_path) {
        Ok(store) => match store.sync_errors() {
            Ok(errors) => {
                let total = errors.len();
                (errors, total, None)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        Err(store::StoreError::Missing { path }) => {
            eprintln!(
                "error: there is no store at {path}\nhint: casebridge has not run with this config yet (store_path)"
            );
            return ExitCode::from(1);
        }
        // The daemon holds the store: its status file lists the newest errors.
        Err(open_error) => match read_status(&status_path(&config, &base)) {
            Some(status) => {
                let errors: Vec<store::SyncError> =
                    serde_json::from_value(status["recent_sync_errors"].clone()).unwrap_or_default();
                let total = status["sync_errors"].as_u64().unwrap_or(errors.len() as u64) as usize;
                (errors, total, Some(status["updated_at"].as_str().unwrap_or("?").to_string()))
            }
            None => {
                eprintln!("error: {open_error}");
                return ExitCode::from(1);
            }
        },
    };
    if let Some(at) = &source {
        out!("(from the running daemon's status of {at})");
    }
    if errors.is_empty() {
        out!("no sync errors");
        return ExitCode::SUCCESS;
    }
    for e in &errors {
        out!(
            "#{} {} case {} {}: {} — {} (attempts: {}, first {}, last {})",
            e.id,
            e.operation,
            e.case_id.as_deref().unwrap_or("-"),
            e.code,
            e.message.trim(),
            e.action.as_ref().map(|a| a.operation()).unwrap_or("no action to retry"),
            e.attempts,
            e.first_seen.format("%Y-%m-%d %H:%M:%S UTC"),
            e.last_seen.format("%Y-%m-%d %H:%M:%S UTC"),
        );
    }
    if total > errors.len() {
        out!("... and {} older (the admin API's /api/sync-errors lists them all)", total - errors.len());
    }
    ExitCode::SUCCESS
}

/// The status file the daemon writes after each cycle, if there is one.
fn read_status(file: &Path) -> Option<serde_json::Value> {
    let text = casebridge::bounded_file::read(file, 16 << 20).ok()?;
    serde_json::from_str(&text).ok()
}

async fn run_sim(listen: SocketAddr, org: Option<PathBuf>, options: SimOptions) -> ExitCode {
    let loaded = match &org {
        Some(path) => sim::seed::load_file(path),
        None => sim::seed::load(sim::DEMO_ORG, "built-in demo org"),
    };
    let seed = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot load the org seed: {e}");
            eprintln!("hint: see examples/demo/org.yaml for the seed format");
            return ExitCode::from(2);
        }
    };
    let source = org.as_ref().map_or("built-in demo org".to_string(), |p| p.display().to_string());
    let simulator = match Simulator::start(listen, seed, options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the simulator on {listen}: {e}");
            eprintln!("hint: is another process using that port? Port 0 picks a free one.");
            return ExitCode::from(1);
        }
    };
    out!("casebridge sim listening on {}", simulator.url());
    if let Some(path) = simulator.ca_file() {
        out!("casebridge sim certificate authority: {}", path.display());
    }
    tracing::info!(org = %source, "Simulator ready; press Ctrl-C to stop.");
    wait_for_shutdown().await;
    simulator.stop().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
