//! The command line's shape: every subcommand and flag, with the help text `--help` prints.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// How `rules test` reports.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TestFormat {
    Text,
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// How `agent eval` reports.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
    /// JUnit XML for CI systems: a test case per question and per threshold.
    Junit,
}

/// How `agent ask` answers.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AnswerFormat {
    Text,
    Json,
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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    #[cfg(feature = "sim")]
    /// Play a short scenario on a built-in simulated org and print what the daemon does.
    ///
    /// Example: casebridge demo
    Demo {
        /// Keep the simulator, the daemon and the messenger running afterwards, with a chat
        /// page to try in a browser, until Ctrl-C.
        #[arg(long)]
        serve: bool,
        /// A sentence-embedding model's folder (`scripts/install-model` installs one in
        /// models/all-MiniLM-L6-v2): the help centre is ranked by meaning too, and strong
        /// answers are stated rather than offered.
        #[arg(long, value_name = "DIR")]
        embedding_model: Option<PathBuf>,
    },
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
    /// Measure the configured agent the way rule sets are tested.
    ///
    /// Example: casebridge agent eval examples/demo/agent-eval.yaml --config examples/demo/casebridge.yaml
    Agent {
        #[command(subcommand)]
        what: AgentCommand,
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
    /// Give the space retention freed back to the file system: copy the store, check the
    /// copy, and swap it in. Run it while the daemon is stopped.
    ///
    /// Example: casebridge compact --config casebridge.yaml
    Compact {
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
    },
    #[cfg(feature = "sim")]
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
pub(crate) enum AuthCommand {
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
pub(crate) enum AgentCommand {
    /// Ask the configured agent one question, as a customer would: its answer, the
    /// passages it drew on and its confidence, or why it cannot help. Exit 0 either way, 1
    /// when the agent failed (the AI service is down), 2 for a bad configuration.
    ///
    /// Example: casebridge agent ask --config examples/demo/casebridge.yaml "How do I recalibrate the gripper?"
    Ask {
        /// The customer's question.
        question: String,
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: AnswerFormat,
    },
    /// Run an eval set (questions with the articles that answer them, or cannot_help)
    /// through the configured agent (the knowledge base, or the model grounded in it):
    /// hit@1, hit@3, answers from a right article, wrong answers; exit 0 when every
    /// threshold the file sets holds, 1 when not.
    ///
    /// Example: casebridge agent eval examples/demo/agent-eval.yaml --config examples/demo/casebridge.yaml
    Eval {
        /// The eval file (YAML, `kind: agent_eval`).
        file: PathBuf,
        #[arg(long, env = "CASEBRIDGE_CONFIG")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Measure one half of the set: `tune` (where weights and bars are chosen) or
        /// `report` (the figures to state); without it, every question.
        #[arg(long, value_enum)]
        half: Option<casebridge::agent::eval::Half>,
    },
}

#[derive(Subcommand)]
pub(crate) enum RulesCommand {
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
pub(crate) enum SetupCommand {
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
