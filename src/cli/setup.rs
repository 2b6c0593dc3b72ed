//! `casebridge setup`: who the agent can reply as or hand over to, and whether the
//! configuration works — `setup check`, the preflight that lists what the org lacks
//! before the first customer meets it (`ok`, `warn` or `fail`, each with its fix; exit 1
//! when anything fails). The checks themselves are `salesforce::preflight`'s; this file
//! reads the org and turns the configuration into what they check.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use casebridge::app;
use casebridge::channels::cases::{build::fields, deliver};
use casebridge::config::Config;
use casebridge::model::{Action, OutgoingEmail, ReplyChannel};
use casebridge::salesforce::org_rules;
use casebridge::salesforce::preflight::{self, Finding, Level, Need, Use};
use casebridge::salesforce::{Client, SalesforceError, directory};

use super::args::SetupCommand;
use super::config_and_client;

/// The External ID field every record made for a messenger conversation is upserted by.
const CONVERSATION_FIELD: &str = casebridge::channels::messenger::plan::CONVERSATION_FIELD;

pub(crate) async fn run_setup(what: SetupCommand) -> ExitCode {
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
            true
        }),
        SetupCommand::Queues { .. } => directory::queues(&client).await.map(|queues| {
            out!("{:<20} {:<28} DEVELOPER NAME", "ID", "NAME");
            for q in queues {
                out!("{:<20} {:<28} {}", q.id, q.name, q.handle);
            }
            true
        }),
        SetupCommand::Check { .. } => check(&client, &config, &base).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints the findings as they come and counts them.
#[derive(Default)]
struct Report {
    counts: [usize; 3],
}

impl Report {
    fn add(&mut self, finding: Finding) {
        let slot = match finding.level {
            Level::Ok => 0,
            Level::Warn => 1,
            Level::Fail => 2,
        };
        self.counts[slot] += 1;
        out!("{finding}");
    }

    fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for f in findings {
            self.add(f);
        }
    }

    /// The closing line; whether nothing failed.
    fn finish(self) -> bool {
        let [ok, warn, fail] = self.counts;
        out!("{ok} ok, {warn} warn, {fail} fail");
        fail == 0
    }
}

/// The preflight: signs in, then checks the API versions, the agent user and its
/// permission sets, the handover target, every field casebridge reads or writes, the
/// External IDs, the Case feed, assignment and duplicate rules, and Salesforce Knowledge.
/// `Ok(false)` when a check failed; `Err` when the org could not be read at all (or the
/// agent user or handover target is unusable, which every later check depends on).
pub(crate) async fn check(client: &Client, config: &Config, base: &Path) -> Result<bool, directory::SetupError> {
    let mut report = Report::default();
    let session = match client.session().await {
        Ok(s) => s,
        Err(e) => return unusable_versions(client, config, report, e).await,
    };
    report.add(Finding::ok(format!("signed in to {} as {}", session.instance_url, session.user_id().unwrap_or("?"))));
    let limits = client.limits().await?;
    if let Some(daily) = limits.get("DailyApiRequests") {
        report.add(Finding::ok(format!("API requests left today: {} of {}", daily.remaining, daily.max)));
    }
    let offered = client.available_versions().await?;
    report.add(preflight::api_versions(&offered, config.org.api_version.as_deref(), Some(client.api_version())));

    let agent = directory::agent_user(client, &config.agent_user).await?;
    report.add(Finding::ok(format!("agent user: {} ({}, {})", agent.name, agent.handle, agent.id)));
    let assigned = preflight::assigned_permission_sets(client, &agent.id).await?;
    report.add(preflight::permission_set(preflight::AGENT_PERMISSION_SET, &assigned, &agent.handle, true));
    if config.agent.salesforce_knowledge().is_some() {
        let set = preflight::KNOWLEDGE_PERMISSION_SET;
        report.add(preflight::permission_set(set, &assigned, &agent.handle, false));
    }
    let target = directory::handover_target(client, &config.handover.default_target).await?;
    report.add(Finding::ok(format!("handover target: {} ({:?}, {})", target.name, target.kind, target.id)));

    let needs = needs(config);
    let mut objects: Vec<&str> = needs.iter().map(|n| n.object.as_str()).collect();
    objects.dedup();
    let org = preflight::Org::describe(client, &objects).await?;
    report.extend(preflight::fields(&org, &needs));
    report.extend(rule_mappings(client, config, base).await?);
    if config.messenger.is_some() {
        report.extend(preflight::external_ids(&org, &upserted_objects(config), CONVERSATION_FIELD));
    }
    report.extend(preflight::feed(&org, config.reply.channel == ReplyChannel::Feed));
    report.extend(rules(client, config).await);
    report.add(embedding(config, base));
    Ok(report.finish())
}

/// The sentence-embedding model: loaded and checked when configured; without it, what
/// the admin misses.
fn embedding(config: &Config, base: &Path) -> Finding {
    use casebridge::config::AgentConfig;
    let settings = match &config.agent {
        AgentConfig::KnowledgeBase { embedding, .. } | AgentConfig::Openai { embedding, .. } => embedding,
        AgentConfig::Script { .. } => return Finding::ok("agent: a script answers, no help centre to rank"),
    };
    let Some(settings) = settings else {
        return Finding::warn(
            "agent.embedding: no sentence-embedding model; passages are ranked by their words alone, the knowledge \
             base states no answer (it only offers articles), and a model's answers are checked by words alone",
            "install one (scripts/install-model installs all-MiniLM-L6-v2) and set agent.embedding.model to its folder",
        );
    };
    match casebridge::embedding::Encoder::load(&base.join(&settings.model)) {
        Ok(encoder) => Finding::ok(format!(
            "agent.embedding: the model in {} loads ({} numbers a vector)",
            settings.model.display(),
            encoder.dim()
        )),
        Err(e) => Finding::fail(
            format!("agent.embedding: {e}"),
            "point agent.embedding.model at a MiniLM-class model's folder",
        ),
    }
}

/// Signing in failed: when the reason is the REST API versions the org offers, that is the
/// preflight's first failure; any other reason stops it.
async fn unusable_versions(
    client: &Client,
    config: &Config,
    mut report: Report,
    error: SalesforceError,
) -> Result<bool, directory::SetupError> {
    if !matches!(error, SalesforceError::Config(_)) {
        return Err(error.into());
    }
    let Ok(offered) = preflight::offered_versions(client, &config.org.login_url).await else {
        return Err(error.into());
    };
    let finding = preflight::api_versions(&offered, config.org.api_version.as_deref(), None);
    if finding.level != Level::Fail {
        return Err(error.into());
    }
    report.add(finding);
    Ok(report.finish())
}

/// The rule set's mappings against the org, as `casebridge rules check --config` checks
/// them: one failure a problem.
async fn rule_mappings(client: &Client, config: &Config, base: &Path) -> Result<Vec<Finding>, directory::SetupError> {
    let dir = base.join(&config.rules_dir);
    let set = app::rules(config, base).map_err(|e| directory::SetupError::NotUsable(e.to_string()))?;
    let schema = casebridge::rules::org::OrgSchema::fetch(client).await?;
    let problems = schema.check(&set);
    if problems.is_empty() {
        return Ok(vec![Finding::ok(format!(
            "rule set: {} mapped field(s) and its handover targets fit the org",
            set.mapped_fields().len()
        ))]);
    }
    let fix =
        format!("correct the rule or the org; `casebridge rules check {} --config FILE` shows the same", dir.display());
    Ok(problems.iter().map(|p| Finding::fail(format!("rule set: {p}"), fix.clone())).collect())
}

/// Active assignment rules and duplicate rules on Lead. A rule list the agent user may not
/// read is a warning: the check is skipped, not the preflight.
async fn rules(client: &Client, config: &Config) -> Vec<Finding> {
    let unreadable = |what: &str, e: SalesforceError| {
        Finding::warn(
            format!("{what}: cannot be read ({e})"),
            "check them in Setup, or let the agent user read them (View Setup and Configuration)",
        )
    };
    let mut out = match org_rules::active_assignment_rules(client).await {
        Ok(active) => org_rules::assignment_rules(&active, config.org.assignment_rules),
        Err(e) => vec![unreadable("assignment rules", e)],
    };
    out.extend(match org_rules::active_lead_duplicate_rules(client).await {
        Ok(active) => org_rules::duplicate_rules(&active),
        Err(e) => vec![unreadable("duplicate rules", e)],
    });
    out
}

/// The objects upserted by the conversation's id: the messenger's cases, and its leads and
/// tasks when it makes them.
fn upserted_objects(config: &Config) -> Vec<&'static str> {
    let Some(m) = &config.messenger else { return Vec::new() };
    let mut objects = vec!["Case"];
    if m.create_leads {
        objects.push("Lead");
    }
    if m.log_tasks {
        objects.push("Task");
    }
    objects
}

/// Every field casebridge reads or writes with this configuration, but the rule set's
/// (checked by [`rule_mappings`]) and `FeedItem.Visibility` (by `preflight::feed`, since an
/// org without it only loses the public posts).
fn needs(config: &Config) -> Vec<Need> {
    let mut needs = Vec::new();
    let read = |object: &str, list: &[&str]| list.iter().map(|f| Need::new(object, f, Use::Read)).collect::<Vec<_>>();
    needs.extend(read("Case", fields::CASE));
    needs.extend(read("CaseComment", fields::COMMENT));
    needs.extend(read("EmailMessage", fields::EMAIL));
    needs.extend(read("FeedItem", fields::FEED));
    needs.extend(written(config));
    if let Some(m) = &config.messenger {
        for object in upserted_objects(config) {
            needs.push(Need::new(object, CONVERSATION_FIELD, Use::Create));
        }
        needs.push(Need::new("Case", &m.transcript_field, Use::Create));
        needs.push(Need::new("Case", &m.transcript_field, Use::Update));
    }
    if let Some(k) = config.agent.salesforce_knowledge() {
        let standard = ["Id", "KnowledgeArticleId", "Title", "UrlName", "Summary", "PublishStatus", "Language"];
        let more = ["LastPublishedDate", "SystemModstamp"];
        needs.extend(read(&k.object, &standard));
        needs.extend(read(&k.object, &more));
        let own: Vec<&str> =
            k.body_fields.iter().map(String::as_str).chain(k.channels.iter().map(|c| c.field())).collect();
        needs.extend(read(&k.object, &own));
    }
    needs.retain(|n| !(n.object == "FeedItem" && n.field == "Visibility"));
    // Grouped by object, in the order first needed.
    let order: Vec<String> = needs.iter().map(|n| n.object.clone()).fold(Vec::new(), |mut seen, o| {
        if !seen.contains(&o) {
            seen.push(o);
        }
        seen
    });
    needs.sort_by_key(|n| order.iter().position(|o| *o == n.object));
    needs
}

/// The fields of the records casebridge writes for a case, read from the very requests it
/// sends (`channels::cases::deliver`): a reply on the configured channel, an internal note,
/// an owner change, and an email's record when SMTP is configured.
fn written(config: &Config) -> Vec<Need> {
    let case_id = "500000000000001AAA".to_string();
    let mut actions = vec![
        Action::PostReply { case_id: case_id.clone(), body: "-".into(), channel: config.reply.channel },
        Action::InternalNote { case_id: case_id.clone(), body: "-".into() },
        Action::Reassign { case_id: case_id.clone(), owner_id: "00G000000000001AAA".into() },
    ];
    if let Some(smtp) = &config.smtp {
        let email = OutgoingEmail {
            from: smtp.from.clone(),
            to: "customer@example.com".into(),
            subject: "-".into(),
            text: "-".into(),
            html: None,
            message_id: "<id@example.com>".into(),
            in_reply_to: None,
            references: Vec::new(),
            smtp_accepted: false,
        };
        actions.push(Action::SendEmail { case_id, email });
    }
    let mut needs = Vec::new();
    for action in &actions {
        for sub in deliver::subrequests("preflight", action, &HashMap::new()) {
            let Some(path) = sub.url.strip_prefix("sobjects/") else { continue };
            let object = path.split('/').next().unwrap_or_default();
            let used = if sub.method == "POST" { Use::Create } else { Use::Update };
            let fields = sub.body.as_ref().and_then(|b| b.as_object()).into_iter().flat_map(|b| b.keys());
            needs.extend(fields.map(|f| Need::new(object, f, used)));
        }
    }
    needs
}
