//! `casebridge demo`: the whole product in under a minute, on nothing but this machine.
//!
//! It starts the org simulator with the demo org, a local SMTP sink, and the daemon with
//! the knowledge-base agent on the demo help centre; then it plays a scenario — new cases,
//! an email-origin case, a customer follow-up, a customer asking for a human, a question
//! the agent cannot answer, an idle poll, then a conversation in the web messenger
//! (`chat.rs`) — printing what the daemon decided and did. `--serve` keeps it all running.

use std::io::Write;
use std::time::Instant;

use serde_json::json;

use crate::act::email::{Mailer, SmtpSecurity, SmtpSettings};
use crate::agent::Agent;
use crate::agent::kb::KnowledgeBase;
use crate::daemon::{CycleReport, Daemon, DaemonSettings, EventKind};
use crate::model::Secret;
use crate::salesforce::{Client, ClientConfig, Credentials};
use crate::sim::{self, SimOptions, Simulator};
use crate::smtp_sink::SmtpSink;
use crate::store::Store;

mod chat;

/// Where `casebridge demo --serve` serves the messenger, when the port is free.
pub const SERVE_MESSENGER: &str = "127.0.0.1:9091";
/// Where `casebridge demo --serve` serves the admin page and its report, when free.
pub const SERVE_ADMIN: &str = "127.0.0.1:9090";

/// The demo help centre, built in so the demo runs from any directory.
pub const HELP_CENTER: &[(&str, &str)] = &[
    ("gripper-calibration", include_str!("../../examples/demo/help-center/gripper-calibration.md")),
    ("firmware-updates", include_str!("../../examples/demo/help-center/firmware-updates.md")),
    ("arm-maintenance", include_str!("../../examples/demo/help-center/arm-maintenance.md")),
    ("controller-network", include_str!("../../examples/demo/help-center/controller-network.md")),
    ("billing", include_str!("../../examples/demo/help-center/billing.md")),
];

/// The shipped rule set (`rules/`), built in for the same reason.
pub const SHIPPED_RULES: &[(&str, &str)] = &[
    ("mappings.yaml", include_str!("../../rules/mappings.yaml")),
    ("handover.yaml", include_str!("../../rules/handover.yaml")),
    ("topics.yaml", include_str!("../../rules/topics.yaml")),
    ("email.yaml", include_str!("../../rules/email.yaml")),
    ("resolution.yaml", include_str!("../../rules/resolution.yaml")),
    ("templates/reply.txt.hbs", include_str!("../../rules/templates/reply.txt.hbs")),
    ("templates/reply.html.hbs", include_str!("../../rules/templates/reply.html.hbs")),
];

/// What the demo observed, for its summary (and its test).
#[derive(Debug, Default, Clone)]
pub struct DemoSummary {
    pub cases_seen: usize,
    pub replies: usize,
    pub handovers: usize,
    /// Conversations that reached a resolution (here: a customer's confirmation).
    pub resolutions: usize,
    pub emails: usize,
    pub api_calls: u64,
    pub case_updates: usize,
    pub sync_errors: usize,
    /// Messages in the demo's messenger conversation, and the leads and cases it made.
    pub chat_messages: usize,
    pub leads: usize,
    pub chat_cases: usize,
}

fn client(sim: &Simulator, username: &str) -> anyhow::Result<Client> {
    let credentials = Credentials::Password {
        client_id: "casebridge-demo".into(),
        client_secret: Secret::new("demo-secret"),
        username: username.into(),
        password: Secret::new("demo-password"),
    };
    Ok(Client::new(ClientConfig::new(sim.url(), credentials))?)
}

/// Runs the demo, printing to `out`. With `serve`, the simulator, the daemon and the
/// messenger keep running afterwards, until Ctrl-C, for a person to chat with.
pub async fn run(
    out: &mut impl Write,
    serve: bool,
    embedding_model: Option<&std::path::Path>,
) -> anyhow::Result<DemoSummary> {
    let started = Instant::now();
    let seed = sim::seed::load(sim::DEMO_ORG, "built-in demo org").map_err(anyhow::Error::msg)?;
    let sim = Simulator::start("127.0.0.1:0".parse()?, seed, SimOptions::default()).await?;
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let dir = tempfile_dir()?;
    print_header(out, &sim, &smtp, embedding_model)?;
    let (mut daemon, rules_hash) = start_daemon(&sim, &smtp, dir.path(), embedding_model).await?;
    writeln!(
        out,
        "The agent user is {} ({}); handovers go to the queue \"{}\"; rule set {rules_hash}.\n",
        daemon.agent_user().name,
        daemon.agent_user().handle,
        daemon.default_target().name
    )?;

    let mut summary = DemoSummary::default();
    let admin = client(&sim, "admin@acme.example")?;
    play_cases(out, &mut daemon, &sim, &admin, &mut summary).await?;

    let mut chat = chat::start(&mut daemon, SERVE_MESSENGER.parse()?).await?;
    play_chat(out, &mut daemon, &mut chat, &admin, &mut summary).await?;

    summary.emails = smtp.mails().len();
    summary.sync_errors = daemon.store().sync_errors()?.len();
    summary.cases_seen = daemon.store().conversation_count();
    print_summary(out, &summary, &smtp, started)?;
    if serve {
        writeln!(out, "\nServing until Ctrl-C:")?;
        writeln!(out, "  chat with the agent       {}/  (open it in a browser)", chat.base)?;
        writeln!(out, "  admin page and report     {}  (the token is in the link)", serve_admin(&daemon).await?)?;
        writeln!(out, "  Salesforce org simulator  {}  (sign in as admin@acme.example / demo-password)", sim.url())?;
        out.flush()?;
        daemon.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
    } else {
        writeln!(
            out,
            "\nNext: `casebridge demo --serve` keeps all this running with a chat page to try in a browser;"
        )?;
        writeln!(out, "`casebridge sim --org examples/demo/org.yaml` serves this org for any Salesforce client;")?;
        writeln!(out, "`casebridge run --config examples/demo/casebridge.yaml` runs the daemon against it.")?;
    }
    drop(chat);
    sim.stop().await;
    Ok(summary)
}

/// Serves the admin page (status, inbox, the agent report) with a token made now; returns
/// the link that opens it signed in (the token in the fragment, never sent to the server).
async fn serve_admin(daemon: &Daemon) -> anyhow::Result<String> {
    let token: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
    let state = daemon.admin_state(None, crate::model::Secret::new(&token));
    let listener = match tokio::net::TcpListener::bind(SERVE_ADMIN).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let addr = crate::report::admin::serve_on(listener, state, std::future::pending())?;
    Ok(format!("http://{addr}/#token={token}"))
}

/// What the demo runs on, printed before it starts.
fn print_header(
    out: &mut impl Write,
    sim: &Simulator,
    smtp: &SmtpSink,
    embedding_model: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    writeln!(out, "casebridge demo")?;
    writeln!(out, "  Salesforce org simulator  {}  (Acme Robotics demo org)", sim.url())?;
    writeln!(out, "  SMTP sink                 {}", smtp.addr())?;
    match embedding_model {
        Some(model) => writeln!(
            out,
            "  agent                     knowledge base, {} help articles, ranked by meaning too ({})",
            HELP_CENTER.len(),
            model.display()
        )?,
        None => writeln!(
            out,
            "  agent                     knowledge base, {} help articles, ranked by their words (no model: it offers articles, states none)",
            HELP_CENTER.len()
        )?,
    }
    writeln!(out, "  rules                     the shipped rules/ ({} files)", SHIPPED_RULES.len())?;
    writeln!(out)?;

    Ok(())
}

/// Steps 1 to 6: cases the agent user owns, answered, handed over and resolved.
async fn play_cases(
    out: &mut impl Write,
    daemon: &mut Daemon,
    sim: &Simulator,
    admin: &Client,
    summary: &mut DemoSummary,
) -> anyhow::Result<()> {
    let jane = client(sim, "jane@customer.example")?;
    let fin = sim.id_of("fin").unwrap_or_default();
    let bob = sim.id_of("bob").unwrap_or_default();

    step(out, 1, "The daemon starts and finds the cases already assigned to the agent user.")?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;

    step(out, 2, "Jane follows up in the help portal on her gripper case.")?;
    let reset_case = sim.id_of("reset_case").unwrap_or_default();
    jane.create(
        "CaseComment",
        &json!({ "ParentId": reset_case, "IsPublished": true,
                 "CommentBody": "That fixed the drift, thanks! One more thing: the controller shows as offline in the app." }),
    )
    .await?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;

    step(out, 3, "Bob opens a web case and asks for a person.")?;
    admin
        .create(
            "Case",
            &json!({ "Subject": "Order change", "Origin": "Web", "ContactId": bob, "OwnerId": fin,
                     "Description": "I need to change my order. Can I talk to a real person please?" }),
        )
        .await?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;

    step(out, 4, "A question the help centre does not cover.")?;
    admin
        .create(
            "Case",
            &json!({ "Subject": "Delivery to Antarctica", "Origin": "Web", "ContactId": bob, "OwnerId": fin,
                     "Description": "Do you deliver spare parts to research stations by zeppelin?" }),
        )
        .await?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;

    step(out, 5, "Jane confirms the answer worked: a hard resolution, and nothing to reply.")?;
    jane.create(
        "CaseComment",
        &json!({ "ParentId": reset_case, "IsPublished": true,
                 "CommentBody": "That worked, the controller is back online. Thanks!" }),
    )
    .await?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;

    step(out, 6, "Nothing new: an idle poll.")?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;
    Ok(())
}

/// Steps 7 to 10: a conversation that starts on the website, in the messenger.
async fn play_chat(
    out: &mut impl Write,
    daemon: &mut Daemon,
    chat: &mut chat::ChatScene,
    admin: &Client,
    summary: &mut DemoSummary,
) -> anyhow::Result<()> {
    step(out, 7, &format!("A visitor on the website asks in the messenger ({}/).", chat.base))?;
    chat.visitor_says("Hi! My gripper drifts after every restart. How do I recalibrate it?").await?;
    let report = daemon.chat_round().await?;
    chat.print_new(out).await?;
    show(out, &report, summary)?;

    step(out, 8, "The visitor leaves their email: a new visitor becomes a lead.")?;
    chat.visitor_says("Thanks! I'm dana@newco.example. How do I update the controller firmware?").await?;
    let report = daemon.chat_round().await?;
    chat.print_new(out).await?;
    show(out, &report, summary)?;

    step(out, 9, "The visitor asks for a person: the chat becomes a case in the queue.")?;
    chat.visitor_says("Could I talk to a person about a bulk order, please?").await?;
    let report = daemon.chat_round().await?;
    chat.print_new(out).await?;
    show(out, &report, summary)?;
    let report = daemon.cycle().await?;
    show(out, &report, summary)?;

    step(out, 10, "A person answers on the case in Salesforce; the reply reaches the chat.")?;
    let conversation = chat.id().and_then(|id| daemon.store().conversation(id).ok().flatten());
    let case_id = conversation.as_ref().and_then(|c| c.case_id().map(str::to_string));
    let Some(case_id) = case_id else { anyhow::bail!("the chat did not become a case") };
    admin
        .create(
            "CaseComment",
            &json!({ "ParentId": case_id, "IsPublished": true,
                     "CommentBody": "Hi Dana, Ada here from the sales team. How many grippers do you need?" }),
        )
        .await?;
    let report = daemon.cycle().await?;
    chat.print_new(out).await?;
    show(out, &report, summary)?;
    if let Some(c) = chat.id().and_then(|id| daemon.store().conversation(id).ok().flatten()) {
        summary.chat_messages = c.parts.len();
        summary.leads += usize::from(c.lead_key() == Some(c.id.as_str()));
        summary.chat_cases += usize::from(c.case_id().is_some());
    }
    Ok(())
}

/// The daemon the demo runs: the shipped rules (written to `dir`), the demo help centre,
/// the simulator's org and the SMTP sink. Returns it with its rule set's hash.
async fn start_daemon(
    sim: &Simulator,
    smtp: &SmtpSink,
    dir: &std::path::Path,
    embedding_model: Option<&std::path::Path>,
) -> anyhow::Result<(Daemon, String)> {
    let daemon_client = Client::new(ClientConfig::new(
        sim.url(),
        Credentials::RefreshToken {
            client_id: "casebridge-demo".into(),
            client_secret: Some(Secret::new("demo-secret")),
            refresh_token: Secret::new("demo-refresh-token"),
        },
    ))?;
    let mailer = Mailer::new(&SmtpSettings {
        host: smtp.addr().ip().to_string(),
        port: smtp.addr().port(),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout: std::time::Duration::from_secs(5),
        from: "Acme Robotics Support <support@acme-robotics.example>".into(),
    })?;
    let settings = DaemonSettings {
        poll_interval: std::time::Duration::from_secs(1),
        initial_lookback: std::time::Duration::from_secs(24 * 3600),
        email_from: Some("Acme Robotics Support <support@acme-robotics.example>".into()),
        ..DaemonSettings::new("fin@acme.example", "Tier 2 Support")
    };
    let kb = KnowledgeBase::from_articles(HELP_CENTER, "https://help.acme-robotics.example/articles", 0.35);
    let kb = match embedding_model {
        Some(model) => {
            let encoder = crate::embedding::CachedEncoder::open(model, &dir.join("vectors"))?;
            let index = (*kb.library().current()).clone();
            let library = crate::knowledge::Library::with_embedder(index, std::sync::Arc::new(encoder))
                .map_err(anyhow::Error::msg)?;
            KnowledgeBase::with_library(library, kb.bars())
        }
        None => kb,
    };
    let store = Store::open(&dir.join("store"))?;
    let rules_dir = dir.join("rules");
    for (name, text) in SHIPPED_RULES {
        let path = rules_dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(&rules_dir))?;
        std::fs::write(path, text)?;
    }
    let rule_set =
        crate::rules::RuleSet::load(&rules_dir).map_err(|e| anyhow::anyhow!("the shipped rules: {}", e[0]))?;
    let rules_hash = rule_set.hash.clone();
    let rules = crate::decide::shared(Box::new(rule_set));
    let daemon = Daemon::new(daemon_client, store, Agent::KnowledgeBase(kb), rules, Some(mailer), settings).await?;
    Ok((daemon, rules_hash))
}

fn print_summary(out: &mut impl Write, summary: &DemoSummary, smtp: &SmtpSink, started: Instant) -> anyhow::Result<()> {
    writeln!(out, "Summary")?;
    writeln!(out, "  cases handled            {}", summary.cases_seen)?;
    writeln!(out, "  AI replies posted        {}", summary.replies)?;
    writeln!(out, "  emails sent              {}", summary.emails)?;
    writeln!(out, "  handovers to humans      {}", summary.handovers)?;
    writeln!(out, "  resolutions confirmed    {}", summary.resolutions)?;
    writeln!(
        out,
        "  messenger chats          1 ({} messages; {} lead, {} case)",
        summary.chat_messages, summary.leads, summary.chat_cases
    )?;
    writeln!(out, "  sync errors              {}", summary.sync_errors)?;
    writeln!(
        out,
        "  Salesforce API calls     {} for {} case updates ({:.2} a case update; the seed's integration spends up to ~10)",
        summary.api_calls,
        summary.case_updates,
        summary.api_calls as f64 / summary.case_updates.max(1) as f64
    )?;
    writeln!(out, "  time                     {:.1} s", started.elapsed().as_secs_f64())?;
    if let Some(mail) = smtp.mails().first() {
        writeln!(out, "\nThe email Bob received:")?;
        for line in
            mail.data.lines().filter(|l| ["From:", "To:", "Subject:", "In-Reply-To:"].iter().any(|h| l.starts_with(h)))
        {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

fn step(out: &mut impl Write, n: usize, text: &str) -> std::io::Result<()> {
    writeln!(out, "[{n}] {text}")
}

fn show(out: &mut impl Write, report: &CycleReport, summary: &mut DemoSummary) -> std::io::Result<()> {
    let mut updated = std::collections::BTreeSet::new();
    for e in &report.events {
        updated.insert(e.conversation_id.clone());
        let what = match e.kind {
            EventKind::Replied => {
                summary.replies += 1;
                "replied"
            }
            EventKind::HandedOver => {
                summary.handovers += 1;
                "handed over"
            }
            EventKind::Resumed => "resumed",
            EventKind::Resolved => {
                summary.resolutions += 1;
                "resolved"
            }
            EventKind::AssignedAway => "assigned away",
            EventKind::CaseCreated => "became a case",
            EventKind::HumanReplied => "a person replied",
            EventKind::Forwarded => "forwarded to the case",
            EventKind::LeadCreated => "became a lead",
            EventKind::Closed => "closed",
            EventKind::AgentFailed => "agent failed",
            EventKind::Unreadable => "unreadable",
        };
        if crate::model::is_messenger_id(&e.conversation_id) {
            writeln!(out, "    chat {:<9} {:<12} {}", "", what, e.detail)?;
        } else {
            writeln!(out, "    case {:<9} {:<12} {}", e.case_number, what, e.detail)?;
        }
    }
    summary.case_updates += updated.len();
    // Only the daemon's own calls: the scenario's writes above are not casebridge's.
    summary.api_calls += report.api_calls;
    let x = &report.executed;
    writeln!(
        out,
        "    → {} action(s) done, {} email(s) sent, {} failed; {} Salesforce API call(s) this poll\n",
        x.done, x.emails_sent, x.failed, report.api_calls
    )
}

fn tempfile_dir() -> std::io::Result<TempDir> {
    let path = std::env::temp_dir().join(format!("casebridge-demo-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}

/// A folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
