//! `World`: what most integration tests start from, in one place. A simulator on the test
//! org, a temporary directory for the store, rules and configs, and a client signed in as
//! the org's admin; daemons on that simulator (the test defaults, or with a given agent,
//! rule set, SMTP server or settings); a copy of the shipped rules to edit; a config for
//! `casebridge run`; and the case helpers (a case for the agent user, a case's comments).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use casebridge::act::email::{Mailer, SmtpSecurity, SmtpSettings};
use casebridge::agent::Agent;
use casebridge::daemon::{Daemon, DaemonSettings};
use casebridge::decide::SharedRules;
use casebridge::salesforce::Client;
use casebridge::sim::{SimOptions, Simulator};
use casebridge::store::Store;
use serde_json::{Value, json};

use super::{agent_client, copy_rules, demo_kb, start_sim, user_client};

/// The sender of the test daemons' email replies.
const EMAIL_FROM: &str = "Acme Support <support@acme.example>";

/// A simulator on the test org, a temporary directory, and the org's admin.
pub struct World {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    /// Signed in as `admin@test.example`: the org's side of a test (cases, checks).
    pub admin: Client,
}

impl World {
    /// The test org with the simulator's default options.
    pub async fn new() -> World {
        World::with_options(SimOptions::default()).await
    }

    /// The test org with the given simulator options.
    pub async fn with_options(options: SimOptions) -> World {
        let sim = start_sim(options).await;
        let admin = user_client(&sim, "admin@test.example", "admin-pw");
        World { sim, dir: tempfile::tempdir().unwrap(), admin }
    }

    /// The temporary directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The Id of a record or user of the test org, by its key in `tests/fixtures/org.yaml`.
    pub fn id(&self, key: &str) -> String {
        self.sim.id_of(key).unwrap_or_else(|| panic!("the test org has no {key}"))
    }

    /// A client signed in as the agent user (the refresh-token grant).
    pub fn agent_client(&self) -> Client {
        agent_client(&self.sim)
    }

    /// A client signed in as Jane, the customer, through the portal.
    pub fn customer(&self) -> Client {
        user_client(&self.sim, "jane@customer.example", "jane-pw")
    }

    /// Opens the store in the temporary directory, where the daemons keep theirs.
    pub fn store(&self) -> Store {
        Store::open(&self.path().join("store")).unwrap()
    }

    /// An empty `rules` folder in the temporary directory, to write a rule set into.
    pub fn rules_dir(&self) -> PathBuf {
        let rules = self.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        rules
    }

    /// A copy of the shipped rule set in the temporary directory's `rules`, to edit.
    pub fn copy_rules(&self) -> PathBuf {
        copy_rules(self.path())
    }

    /// A config for `casebridge run` on this simulator, in the temporary directory (see
    /// [`test_config`]).
    pub fn config(&self, poll_interval: &str, extra: &str) -> PathBuf {
        test_config(self.path(), self.sim.url(), poll_interval, extra)
    }

    /// A daemon with the test defaults: the demo help centre, the built-in rules, no SMTP.
    pub async fn daemon(&self) -> Daemon {
        self.daemon_full(None, demo_kb(), builtin_rules(), test_settings(None)).await
    }

    /// A daemon that sends its email replies to the SMTP server at `smtp`.
    pub async fn daemon_with_smtp(&self, smtp: SocketAddr) -> Daemon {
        self.daemon_full(Some(smtp), demo_kb(), builtin_rules(), test_settings(Some(smtp))).await
    }

    /// A daemon with another agent.
    pub async fn daemon_with_agent(&self, agent: Agent) -> Daemon {
        self.daemon_full(None, agent, builtin_rules(), test_settings(None)).await
    }

    /// A daemon with another rule set.
    pub async fn daemon_with_rules(&self, rules: SharedRules) -> Daemon {
        self.daemon_full(None, demo_kb(), rules, test_settings(None)).await
    }

    /// A daemon with other settings (start from [`test_settings`]).
    pub async fn daemon_with_settings(&self, settings: DaemonSettings) -> Daemon {
        self.daemon_full(None, demo_kb(), builtin_rules(), settings).await
    }

    /// A daemon on the simulator with its store in the temporary directory: what the
    /// other `daemon*` methods build.
    pub async fn daemon_full(
        &self,
        smtp: Option<SocketAddr>,
        agent: Agent,
        rules: SharedRules,
        settings: DaemonSettings,
    ) -> Daemon {
        let store = open_store(&self.path().join("store"));
        let mailer = smtp.map(mailer);
        Daemon::new(self.agent_client(), store, agent, rules, mailer, settings).await.unwrap()
    }

    /// Creates a web case of Jane's owned by the agent user, with `fields` on top.
    pub async fn new_case(&self, fields: Value) -> String {
        let mut body = json!({ "OwnerId": self.id("agent"), "ContactId": self.id("jane"), "Origin": "Web" });
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        self.admin.create("Case", &body).await.unwrap()
    }

    /// Creates a case owned by the agent user with only `fields` besides (no contact, no
    /// origin).
    pub async fn case_for_agent(&self, fields: Value) -> String {
        let mut body = fields.as_object().unwrap().clone();
        body.insert("OwnerId".into(), json!(self.id("agent")));
        self.admin.create("Case", &body).await.unwrap()
    }

    /// A case's comments, oldest first: `Id`, `CommentBody`, `IsPublished`, `CreatedById`.
    pub async fn comments(&self, case_id: &str) -> Vec<Value> {
        let soql = format!(
            "SELECT Id, CommentBody, IsPublished, CreatedById FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
        );
        self.admin.query(soql).collect_all().await.unwrap()
    }

    /// The bodies of the agent user's comments on a case, oldest first.
    pub async fn agent_comment_bodies(&self, case_id: &str) -> Vec<String> {
        let agent = json!(self.id("agent"));
        let comments = self.comments(case_id).await.into_iter().filter(|c| c["CreatedById"] == agent);
        comments.map(|c| c["CommentBody"].as_str().unwrap().to_string()).collect()
    }

    /// How many public comments the agent user has posted on a case.
    pub async fn agent_replies(&self, case_id: &str) -> usize {
        let agent = json!(self.id("agent"));
        let comments = self.comments(case_id).await;
        comments.iter().filter(|c| c["CreatedById"] == agent && c["IsPublished"] == true).count()
    }
}

/// The built-in rules, as the test daemons run them.
pub fn builtin_rules() -> SharedRules {
    casebridge::decide::shared(Box::new(casebridge::decide::BuiltinRules::new("Acme Support")))
}

/// Loads a rule set from `dir`, ready for a daemon; a rule set that does not load fails
/// the test with its first error.
pub fn load_rules(dir: &Path) -> SharedRules {
    let set = casebridge::rules::RuleSet::load(dir).unwrap_or_else(|e| panic!("{}", e[0]));
    casebridge::decide::shared(Box::new(set))
}

/// The test daemons' settings: quick polls, a day's look back, the agent user and the
/// support queue of the test org, and a sender for email replies when `smtp` is given.
pub fn test_settings(smtp: Option<SocketAddr>) -> DaemonSettings {
    DaemonSettings {
        poll_interval: Duration::from_millis(50),
        initial_lookback: Duration::from_secs(24 * 3600),
        email_from: smtp.map(|_| EMAIL_FROM.to_string()),
        ..DaemonSettings::new("agent@test.example", "Support Queue")
    }
}

/// Opens a store; one an earlier daemon in the same test used may still be held for a
/// moment by its tasks winding down.
fn open_store(path: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path) {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("cannot open the store: {e}"),
        }
    }
}

/// A mailer to the plain SMTP server at `addr`.
fn mailer(addr: SocketAddr) -> Mailer {
    Mailer::new(&SmtpSettings {
        host: addr.ip().to_string(),
        port: addr.port(),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
        from: EMAIL_FROM.into(),
    })
    .unwrap()
}

/// Writes `casebridge.yaml` in `dir` for `casebridge run` on the test org served at `url`:
/// the agent user through its refresh token (secrets in files beside it), the support
/// queue, polls every `poll_interval`, the demo help centre as the knowledge base (as
/// [`demo_kb`] loads it), a store in `dir`, the rules in `tests/fixtures/rules`, then
/// `extra` (whole lines).
pub fn test_config(dir: &Path, url: &str, poll_interval: &str, extra: &str) -> PathBuf {
    let agent = format!(
        "{{backend: knowledge_base, dir: {}, base_url: https://help.example, min_confidence: 0.35}}",
        super::root().join("examples/demo/help-center").display()
    );
    test_config_with_agent(dir, url, poll_interval, &agent, extra)
}

/// [`test_config`] with another `agent:` setting (a YAML flow mapping).
pub fn test_config_with_agent(dir: &Path, url: &str, poll_interval: &str, agent: &str, extra: &str) -> PathBuf {
    let root = super::root();
    std::fs::write(dir.join("secret"), "test-secret").unwrap();
    std::fs::write(dir.join("refresh"), "agent-refresh-token").unwrap();
    let text = format!(
        "org:\n  login_url: {url}\n  auth: {{grant: refresh_token, client_id: test-app, client_secret: {{file: secret}}, refresh_token: {{file: refresh}}}}\n\
         agent_user: agent@test.example\nhandover: {{default_target: Support Queue}}\npoll: {{interval: {poll_interval}}}\n\
         agent: {agent}\nstore_path: store\nrules_dir: {}\n{extra}",
        root.join("tests/fixtures/rules").display()
    );
    let path = dir.join("casebridge.yaml");
    std::fs::write(&path, text).unwrap();
    path
}
