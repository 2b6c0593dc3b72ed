//! The config's own tests: defaults, locations, overrides, ranges and hostile files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::model::ReplyChannel;

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

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn error(text: &str, vars: &[(&str, &str)]) -> String {
    Config::parse(text, "c.yaml", &env(vars)).unwrap_err().to_string()
}

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
    let e = error(&format!("{MINIMAL}poll:\n  interval: soon\n"), &[]);
    assert!(e.starts_with("c.yaml:11:13: poll.interval: expected a duration"), "{e}");
    let e = error(&format!("{MINIMAL}pol: {{}}\n"), &[]);
    assert!(e.starts_with("c.yaml:10:1: pol: unknown field `pol`"), "{e}");
}

#[test]
fn settings_behind_tagged_and_untagged_values_are_placed_on_their_own_line() {
    // poll.overlap used to be reported on poll.interval's line, agent settings at 1:1.
    let e = error(&format!("{MINIMAL}poll:\n  interval: 30s\n  overlap: soon\n"), &[]);
    assert!(e.starts_with("c.yaml:12:12: poll.overlap:"), "{e}");
    let e = error(&format!("{MINIMAL}agent:\n  backend: knowledge_base\n  min_confidence: 7\n"), &[]);
    assert!(e.starts_with("c.yaml:12:19: agent.min_confidence: a number from 0 to 1"), "{e}");
    let e = error(&format!("{MINIMAL}agent:\n  backend: knowledge_base\n  min_confidense: 0.5\n"), &[]);
    assert!(e.starts_with("c.yaml:12:3: agent"), "{e}");
}

#[test]
fn an_inline_secret_is_refused_where_it_is_written_and_never_echoed() {
    let inline = MINIMAL.replace("refresh_token: {env: SF_REFRESH}", "refresh_token: hunter2-secret");
    let e = error(&inline, &[]);
    assert!(e.starts_with("c.yaml:6:20: org.auth.refresh_token: a secret is never written"), "{e}");
    assert!(!e.contains("hunter2"), "the secret is echoed: {e}");
    let e = error(MINIMAL, &[("CASEBRIDGE__ORG__AUTH__REFRESH_TOKEN", "hunter2-secret")]);
    assert!(e.contains("CASEBRIDGE__ORG__AUTH__REFRESH_TOKEN") && !e.contains("hunter2"), "{e}");
}

#[test]
fn environment_variables_override_settings() {
    let vars = [("CASEBRIDGE__POLL__INTERVAL", "5s"), ("CASEBRIDGE__AGENT_USER", "other@acme.example")];
    let c = Config::parse(MINIMAL, "c.yaml", &env(&vars)).unwrap();
    assert_eq!(c.poll.interval, Duration::from_secs(5));
    assert_eq!(c.agent_user, "other@acme.example");
    let e = error(MINIMAL, &[("CASEBRIDGE__POLL__INTERVAL", "later")]);
    assert!(e.contains("CASEBRIDGE__POLL__INTERVAL") && e.contains("poll.interval"), "{e}");
}

#[test]
fn variables_named_for_secrets_are_not_overrides() {
    // docs/operations.md's and the systemd unit's names for secrets: they used to stop start-up.
    let admin = format!("{MINIMAL}admin: {{token: {{env: CASEBRIDGE_ADMIN_TOKEN}}}}\n");
    let vars =
        [("CASEBRIDGE_ADMIN_TOKEN", "t0k3n"), ("CASEBRIDGE_SF_CLIENT_SECRET", "s3cret"), ("CASEBRIDGE_LOG", "info")];
    let c = Config::parse(&admin, "c.yaml", &env(&vars)).unwrap();
    assert_eq!(c.admin.unwrap().token.env.as_deref(), Some("CASEBRIDGE_ADMIN_TOKEN"));
    // Even a secret's variable spelt like a setting, when the config names it for a secret.
    let key = format!("{MINIMAL}credentials_key: {{env: CASEBRIDGE_CREDENTIALS_KEY}}\n");
    assert!(Config::parse(&key, "c.yaml", &env(&[("CASEBRIDGE_CREDENTIALS_KEY", "a2V5")])).is_ok());
}

#[test]
fn a_misspelt_override_is_reported_with_a_suggestion() {
    let e = error(MINIMAL, &[("CASEBRIDGE__POLL__INTERVALL", "5s")]);
    assert!(e.contains("CASEBRIDGE__POLL__INTERVALL") && e.contains("did you mean CASEBRIDGE__POLL__INTERVAL?"), "{e}");
    // The one-underscore spelling of a real setting is an old or mistaken override.
    let e = error(MINIMAL, &[("CASEBRIDGE_POLL__INTERVAL", "5s")]);
    assert!(e.contains("rename it to CASEBRIDGE__POLL__INTERVAL"), "{e}");
    let e = error(MINIMAL, &[("CASEBRIDGE_RULES_DIR", "/etc/rules")]);
    assert!(e.contains("rename it to CASEBRIDGE__RULES_DIR"), "{e}");
}

#[test]
fn every_setting_has_a_range() {
    let cases = [
        ("poll:\n  interval: 0s\n", "poll.interval: at least 5s against a real org"),
        (
            "poll:\n  initial_lookback: 100000000d\n",
            "poll.initial_lookback: \"100000000d\" is longer than any setting allows",
        ),
        ("poll:\n  initial_lookback: 9999999999999999d\n", "poll.initial_lookback:"),
        ("poll:\n  initial_lookback: 400d\n", "poll.initial_lookback: from 0s to 365d"),
        ("poll:\n  overlap: 2h\n", "poll.overlap: from 0s to 1h"),
        ("agent:\n  backend: knowledge_base\n  min_confidence: -0.1\n", "agent.min_confidence"),
        ("agent:\n  backend: knowledge_base\n  suggestions: {max: 9}\n", "agent.suggestions.max: a number from 1 to 5"),
        ("agent:\n  backend: knowledge_base\n  suggestions: {state_at: 1.5}\n", "agent.suggestions.state_at: a number"),
        (
            "agent:\n  backend: knowledge_base\n  suggestions: {state_at_coverage: -1}\n",
            "agent.suggestions.state_at_coverage: a number from 0 to 1",
        ),
        ("agent:\n  backend: knowledge_base\n  suggestions: {on_silence: shrug}\n", "unknown variant `shrug`"),
        (
            "agent:\n  backend: knowledge_base\n  embedding: {modle: x}\n",
            "unknown field `modle`, expected `model` or `cache`",
        ),
        (
            "agent:\n  backend: openai\n  base_url: http://api.example.com/v1\n  model: m\n  knowledge: {dir: kb}\n",
            "agent.base_url: \"http://api.example.com/v1\": use https",
        ),
        (
            "agent:\n  backend: openai\n  base_url: https://api.example.com/v1\n  model: m\n  knowledge: {dir: kb}\n  timeout: 0s\n",
            "agent.timeout: from 1s to 10m",
        ),
        (
            "agent:\n  backend: openai\n  base_url: https://api.example.com/v1\n  model: m\n",
            "agent: the model answers only from a help centre",
        ),
        (
            "agent:\n  backend: knowledge_base\n  salesforce_knowledge: {body_fields: [], article_url: \"https://h.example/{UrlName}\"}\n",
            "agent.salesforce_knowledge.body_fields: one or more field API names",
        ),
        (
            "agent:\n  backend: knowledge_base\n  salesforce_knowledge: {body_fields: [\"Answer__c FROM User --\"], article_url: \"https://h.example/{UrlName}\"}\n",
            "agent.salesforce_knowledge.body_fields",
        ),
        (
            "agent:\n  backend: knowledge_base\n  salesforce_knowledge: {body_fields: [Answer__c], article_url: \"https://h.example/a\"}\n",
            "agent.salesforce_knowledge.article_url: a URL with {UrlName}",
        ),
        (
            "agent:\n  backend: knowledge_base\n  salesforce_knowledge: {body_fields: [Answer__c], article_url: \"https://h.example/{UrlName}\", interval: 1s}\n",
            "agent.salesforce_knowledge.interval: from 10s to 1d",
        ),
        (
            "agent:\n  backend: knowledge_base\n  salesforce_knowledge: {body_fields: [Answer__c], article_url: \"https://h.example/{UrlName}\", language: \"en' OR Id != '\"}\n",
            "agent.salesforce_knowledge.language",
        ),
        (
            "agent:\n  backend: knowledge_base\n  salesforce_knowledge: {body_fields: [Answer__c], article_url: \"https://h.example/{UrlName}\", object: \"Knowledge__kav WHERE\"}\n",
            "agent.salesforce_knowledge.object",
        ),
        (
            "agent:\n  backend: openai\n  base_url: https://a.example/v1\n  model: m\n  knowledge: {dir: kb}\n  passages: 0\n",
            "agent.passages: from 1 to 50, found 0",
        ),
        (
            "agent:\n  backend: openai\n  base_url: https://a.example/v1\n  model: m\n  knowledge: {dir: kb}\n  context_chars: 99999999\n",
            "agent.context_chars: from 500 to 200000",
        ),
        (
            "agent:\n  backend: openai\n  base_url: https://a.example/v1\n  model: m\n  knowledge: {dir: kb}\n  concurrency: 0\n",
            "agent.concurrency: from 1 to 64",
        ),
        (
            "agent:\n  backend: openai\n  base_url: https://a.example/v1\n  model: m\n  knowledge: {dir: kb, base_url: nope}\n",
            "agent.knowledge.base_url",
        ),
        ("smtp:\n  host: mail\n  from: not an address\n", "smtp.from: expected an address"),
        ("smtp:\n  host: mail\n  port: 0\n  from: a@b.example\n", "smtp.port"),
        ("admin:\n  token: {env: A, file: b}\n", "admin.token: give exactly one of env or file"),
    ];
    for (extra, expected) in cases {
        let e = error(&format!("{MINIMAL}{extra}"), &[]);
        assert!(e.contains(expected), "{extra:?}: {e}");
        assert!(e.starts_with("c.yaml:1"), "{extra:?} is placed in the file: {e}");
    }
    let org = MINIMAL.replace("org:\n", "org:\n  login_url: not a url\n  request_timeout: 0s\n");
    let e = error(&org, &[]);
    assert!(e.contains("c.yaml:3:14: org.login_url: expected a URL"), "{e}");
    assert!(e.contains("c.yaml:4:20: org.request_timeout: from 1s to 10m"), "{e}");
    // Against a simulator on this machine, polls may be fast (tests and benchmarks).
    let sim = MINIMAL.replace("org:\n", "org:\n  login_url: http://127.0.0.1:8080\n");
    assert!(Config::parse(&format!("{sim}poll: {{interval: 50ms}}\n"), "c.yaml", &[]).is_ok());
}

#[test]
fn hostile_files_get_an_error_not_a_panic() {
    let deep = format!("{MINIMAL}x: {}\n", "[".repeat(50_000));
    assert!(error(&deep, &[]).contains("nested too deeply"));
    let huge = format!("{MINIMAL}#{}\n", "x".repeat(MAX_CONFIG_BYTES));
    assert!(error(&huge, &[]).contains("larger than 1024 KiB"));
    let e = error("org: [unclosed\n", &[]);
    assert!(e.starts_with("c.yaml:2:1: (syntax):") || e.starts_with("c.yaml:1:"), "{e}");
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    assert!(Config::parse(bomb, "c.yaml", &[]).is_err());
    assert!(Config::parse("\u{0}\u{1}\u{ff}", "c.yaml", &[]).is_err());
    assert!(Config::parse("", "c.yaml", &[]).unwrap_err().to_string().contains("missing field"));
}

#[test]
fn secrets_come_from_the_environment_or_files_only() {
    let c = Config::parse(MINIMAL, "c.yaml", &[]).unwrap();
    let e = c.credentials(Path::new(".")).unwrap_err().to_string();
    assert!(e.contains("org.auth.refresh_token") && e.contains("SF_REFRESH"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let text = MINIMAL.replace("{env: SF_REFRESH}", "{file: /dev/zero}");
    let c = Config::parse(&text, "c.yaml", &[]).unwrap();
    let e = c.credentials(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "a device is never read: {e}");
}

#[test]
fn a_bad_messenger_section_names_each_setting() {
    let bad = format!(
        "{MINIMAL}admin: {{listen: 127.0.0.1:9091, token: {{env: T}}}}\nmessenger:\n  listen: 127.0.0.1:9091\n  \
         allowed_origins: [https://ok.example, \"https://evil.example/path\", \"javascript:alert(1)\"]\n  \
         max_message_chars: 0\n  per_visitor_per_minute: 100000\n  transcript_field: \"Description; DROP\"\n  \
         case_record_type: \"\"\n  handover_message: \"\"\n"
    );
    let e = error(&bad, &[]);
    for path in [
        "messenger.listen",
        "messenger.allowed_origins[1]",
        "messenger.allowed_origins[2]",
        "messenger.max_message_chars",
        "messenger.per_visitor_per_minute",
        "messenger.transcript_field",
        "messenger.case_record_type",
        "messenger.handover_message",
    ] {
        assert!(e.contains(path), "{path} is not named in: {e}");
    }
    assert!(!e.contains("allowed_origins[0]"), "a good origin is not blamed: {e}");
    let e = error(&format!("{MINIMAL}messenger: {{identity_secret: hunter2}}\n"), &[]);
    assert!(e.contains("messenger.identity_secret") && !e.contains("hunter2"), "{e}");
    let e = error(&format!("{MINIMAL}messenger: {{listne: 127.0.0.1:1}}\n"), &[]);
    assert!(e.contains("listne"), "{e}");
    assert!(
        Config::parse(&format!("{MINIMAL}messenger: {{}}\n"), "c.yaml", &[]).is_ok(),
        "every setting has a default"
    );
    // Later writes to cases' and chats' records are updateOnly upserts (API 61.0).
    let old = MINIMAL.replacen("org:\n", "org:\n  api_version: \"60.0\"\n", 1);
    let e = error(&format!("{old}messenger: {{}}\n"), &[]);
    assert!(e.contains("org.api_version") && e.contains("61.0 or later"), "{e}");
    let odd = MINIMAL.replacen("org:\n", "org:\n  api_version: \"latest\"\n", 1);
    let e = error(&odd, &[]);
    assert!(e.contains("org.api_version") && e.contains("such as 62.0"), "{e}");
    let e = error(&old, &[]);
    assert!(e.contains("org.api_version") && e.contains("61.0 or later"), "every write may be updateOnly: {e}");
}

#[test]
fn the_real_org_settings_are_checked_by_name() {
    let knowledge = |channels: &str| {
        format!(
            "{MINIMAL}agent:\n  backend: knowledge_base\n  salesforce_knowledge: {{body_fields: [Answer__c], article_url: \"https://h.example/{{UrlName}}\", channels: {channels}}}\n"
        )
    };
    let e = error(&knowledge("[]"), &[]);
    assert!(e.contains("agent.salesforce_knowledge.channels") && e.contains("at least one channel"), "{e}");
    let e = error(&knowledge("[wiki]"), &[]);
    assert!(e.starts_with("c.yaml:") && e.contains("wiki") && e.contains("pkb"), "{e}");
    let c = Config::parse(&knowledge("[pkb]"), "c.yaml", &[]).unwrap();
    assert_eq!(c.agent.salesforce_knowledge().unwrap().channels, [KnowledgeChannel::Pkb]);
    let default = Config::parse(&knowledge("[pkb, csp]").replace(", channels: [pkb, csp]", ""), "c.yaml", &[]).unwrap();
    assert_eq!(default.agent.salesforce_knowledge().unwrap().channels, [KnowledgeChannel::Pkb, KnowledgeChannel::Csp]);

    let rules = |value: &str| MINIMAL.replacen("org:\n", &format!("org:\n  assignment_rules: {value}\n"), 1);
    let e = error(&rules("always"), &[]);
    assert!(e.contains("org.assignment_rules") || (e.contains("always") && e.contains("on_create")), "{e}");
    let c = Config::parse(&rules("on_create"), "c.yaml", &[]).unwrap();
    assert_eq!(c.org.assignment_rules, crate::salesforce::AssignmentRules::OnCreate);
    assert_eq!(Config::parse(MINIMAL, "c.yaml", &[]).unwrap().org.assignment_rules, Default::default());
    assert_eq!(Config::parse(MINIMAL, "c.yaml", &[]).unwrap().org.api_version, None, "negotiated unless pinned");
}
