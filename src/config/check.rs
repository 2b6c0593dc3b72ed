//! Every setting's range. A value serde accepts can still be absurd (a poll every 0 s spends
//! the org's daily API allowance in minutes; a confidence of 7 never holds); each is
//! refused here with the setting's path, and [`super::load`] places it in the file.

use std::time::Duration;

use super::duration::format;
use super::{AgentConfig, AuthConfig, Config, SalesforceKnowledgeConfig, SecretRef};

/// The ranges, so that docs/configuration.md, the schema and the checks say the same thing.
pub mod ranges {
    use std::time::Duration;

    /// `poll.interval` against a real org (each poll is at least one API call).
    pub const POLL_INTERVAL_MIN: Duration = Duration::from_secs(5);
    /// `poll.interval` against a simulator on this machine (tests and benchmarks poll fast).
    pub const POLL_INTERVAL_MIN_LOOPBACK: Duration = Duration::from_millis(10);
    pub const POLL_INTERVAL_MAX: Duration = Duration::from_secs(86_400);
    pub const OVERLAP_MAX: Duration = Duration::from_secs(3_600);
    pub const INITIAL_LOOKBACK_MAX: Duration = Duration::from_secs(365 * 86_400);
    pub const TIMEOUT_MIN: Duration = Duration::from_secs(1);
    pub const TIMEOUT_MAX: Duration = Duration::from_secs(600);
}

impl Config {
    /// Every setting outside its range, as `(path, problem)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |path: &str, problem: String| out.push((path.to_string(), problem));
        let loopback = is_loopback_url(&self.org.login_url);
        if let Err(p) = check_url(&self.org.login_url, true) {
            bad("org.login_url", p);
        }
        if let Some(pinned) = &self.org.api_version {
            // `updateOnly` upserts (Summer '24, API 61.0) keep a deleted record from being made
            // again; older versions would ignore it.
            let min = crate::salesforce::versions::MIN_API_VERSION;
            match crate::salesforce::versions::parse(pinned) {
                Some(v) if is_api_version(pinned) && Some(v) >= crate::salesforce::versions::parse(min) => {}
                Some(_) if is_api_version(pinned) => bad(
                    "org.api_version",
                    format!("casebridge needs REST API {min} or later (updateOnly upserts), found {pinned}"),
                ),
                _ => bad("org.api_version", format!("expected a REST API version such as 62.0, found {pinned:?}")),
            }
        }
        within(&mut bad, "org.request_timeout", self.org.request_timeout, ranges::TIMEOUT_MIN, ranges::TIMEOUT_MAX);
        let interval_min = if loopback { ranges::POLL_INTERVAL_MIN_LOOPBACK } else { ranges::POLL_INTERVAL_MIN };
        if self.poll.interval < interval_min && !loopback {
            bad(
                "poll.interval",
                format!(
                    "at least {} against a real org (each poll is an API call); found {}",
                    format(&interval_min),
                    format(&self.poll.interval)
                ),
            );
        } else {
            within(&mut bad, "poll.interval", self.poll.interval, interval_min, ranges::POLL_INTERVAL_MAX);
        }
        within(&mut bad, "poll.overlap", self.poll.overlap, Duration::ZERO, ranges::OVERLAP_MAX);
        within(
            &mut bad,
            "poll.initial_lookback",
            self.poll.initial_lookback,
            Duration::ZERO,
            ranges::INITIAL_LOOKBACK_MAX,
        );
        let retention = &self.retention;
        let (second, max) = (Duration::from_secs(1), super::retention::RETENTION_MAX);
        within(&mut bad, "retention.conversations", retention.conversations, second, max);
        within(&mut bad, "retention.traces", retention.traces, second, retention.conversations.clamp(second, max));
        if self.agent_user.trim().is_empty() {
            bad("agent_user", "name the agent user (a username or a User Id)".into());
        }
        if self.handover.default_target.trim().is_empty() {
            bad("handover.default_target", "name a queue or a user".into());
        }
        self.auth_problems(&mut bad);
        self.agent_problems(&mut bad);
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                bad("smtp.host", "name the SMTP server".into());
            }
            if smtp.port == 0 {
                bad("smtp.port", "a port from 1 to 65535".into());
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                bad(
                    "smtp.from",
                    format!("expected an address such as Acme Support <support@acme.example>, found {:?}", smtp.from),
                );
            }
            if let Some(p) = &smtp.password {
                secret(&mut bad, "smtp.password", p);
            }
        }
        if let Some(admin) = &self.admin {
            secret(&mut bad, "admin.token", &admin.token);
        }
        if let Some(messenger) = &self.messenger {
            messenger.problems(&mut bad);
            if self.admin.as_ref().is_some_and(|a| a.listen == messenger.listen) {
                bad(
                    "messenger.listen",
                    format!("{} is the admin server's address; give each its own", messenger.listen),
                );
            }
        }
        if let Some(key) = &self.credentials_key {
            secret(&mut bad, "credentials_key", key);
        }
        out
    }

    fn auth_problems(&self, bad: &mut impl FnMut(&str, String)) {
        let (client_id, secrets): (&str, Vec<(&str, &SecretRef)>) = match &self.org.auth {
            AuthConfig::RefreshToken { client_id, client_secret, refresh_token } => {
                let mut s = vec![("refresh_token", refresh_token)];
                s.extend(client_secret.as_ref().map(|c| ("client_secret", c)));
                (client_id, s)
            }
            AuthConfig::ClientCredentials { client_id, client_secret } => {
                (client_id, vec![("client_secret", client_secret)])
            }
            AuthConfig::JwtBearer { client_id, private_key, audience, username } => {
                if let Err(p) = check_url(audience, false) {
                    bad("org.auth.audience", p);
                }
                if username.trim().is_empty() {
                    bad("org.auth.username", "name the user the app signs in as".into());
                }
                (client_id, vec![("private_key", private_key)])
            }
            AuthConfig::Password { client_id, client_secret, password, .. } => {
                (client_id, vec![("client_secret", client_secret), ("password", password)])
            }
            AuthConfig::Stored { client_id, client_secret } => {
                (client_id, client_secret.iter().map(|c| ("client_secret", c)).collect())
            }
        };
        if client_id.trim().is_empty() {
            bad("org.auth.client_id", "the app's consumer key (client id) is empty".into());
        }
        for (name, s) in secrets {
            secret(bad, &format!("org.auth.{name}"), s);
        }
    }

    fn agent_problems(&self, bad: &mut impl FnMut(&str, String)) {
        match &self.agent {
            AgentConfig::KnowledgeBase { base_url, min_confidence, suggestions, .. } => {
                if !(0.0..=1.0).contains(min_confidence) {
                    bad("agent.min_confidence", format!("a number from 0 to 1, found {min_confidence}"));
                }
                if !(1..=5).contains(&suggestions.max) {
                    bad("agent.suggestions.max", format!("a number from 1 to 5, found {}", suggestions.max));
                }
                let bars = [
                    ("state_at", Some(suggestions.state_at)),
                    ("state_margin", Some(suggestions.state_margin)),
                    ("suggest_at", Some(suggestions.suggest_at)),
                    ("suggest_with_words_at", Some(suggestions.suggest_with_words_at)),
                    ("state_at_coverage", suggestions.state_at_coverage),
                ];
                for (name, value) in bars {
                    if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
                        bad(&format!("agent.suggestions.{name}"), format!("a number from 0 to 1, found {v}"));
                    }
                }
                if let Err(p) = check_url(base_url, false) {
                    bad("agent.base_url", p);
                }
            }
            AgentConfig::Openai {
                base_url,
                model,
                timeout,
                api_key,
                knowledge,
                salesforce_knowledge,
                passages,
                context_chars,
                concurrency,
                ..
            } => {
                match knowledge {
                    Some(k) => {
                        if let Err(p) = check_url(&k.base_url, false) {
                            bad("agent.knowledge.base_url", p);
                        }
                    }
                    None if salesforce_knowledge.is_none() => bad(
                        "agent",
                        "the model answers only from a help centre: set knowledge.dir (markdown articles) or salesforce_knowledge"
                            .into(),
                    ),
                    None => {}
                }
                if !(1..=50).contains(passages) {
                    bad("agent.passages", format!("from 1 to 50, found {passages}"));
                }
                if !(500..=200_000).contains(context_chars) {
                    bad("agent.context_chars", format!("from 500 to 200000, found {context_chars}"));
                }
                if !(1..=64).contains(concurrency) {
                    bad("agent.concurrency", format!("from 1 to 64, found {concurrency}"));
                }
                if let Err(p) = check_url(base_url, true) {
                    bad("agent.base_url", p);
                }
                if model.trim().is_empty() {
                    bad("agent.model", "name the model".into());
                }
                within(bad, "agent.timeout", *timeout, ranges::TIMEOUT_MIN, ranges::TIMEOUT_MAX);
                if let Some(k) = api_key {
                    secret(bad, "agent.api_key", k);
                }
            }
            AgentConfig::Script { .. } => {}
        }
        if let Some(k) = self.agent.salesforce_knowledge() {
            salesforce_knowledge_problems(k, bad);
        }
    }
}

/// What is wrong with `agent.salesforce_knowledge`.
fn salesforce_knowledge_problems(k: &SalesforceKnowledgeConfig, bad: &mut impl FnMut(&str, String)) {
    if k.body_fields.is_empty() || k.body_fields.iter().any(|f| !is_api_name(f)) {
        bad(
            "agent.salesforce_knowledge.body_fields",
            format!("one or more field API names such as Answer__c, found {:?}", k.body_fields),
        );
    }
    if !k.article_url.contains("{UrlName}") || check_url(&k.article_url.replace("{UrlName}", "x"), false).is_err() {
        bad(
            "agent.salesforce_knowledge.article_url",
            format!(
                "a URL with {{UrlName}} in it, such as https://help.example.com/s/article/{{UrlName}}, found {:?}",
                k.article_url
            ),
        );
    }
    if !is_api_name(&k.object) {
        bad(
            "agent.salesforce_knowledge.object",
            format!("an object API name such as Knowledge__kav, found {:?}", k.object),
        );
    }
    if k.language.is_empty() || !k.language.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bad("agent.salesforce_knowledge.language", format!("a language code such as en_US, found {:?}", k.language));
    }
    if k.channels.is_empty() {
        bad(
            "agent.salesforce_knowledge.channels",
            "at least one channel (pkb, csp, prm or app); without one no article is ever synced".to_string(),
        );
    }
    within(
        bad,
        "agent.salesforce_knowledge.interval",
        k.interval,
        Duration::from_secs(10),
        Duration::from_secs(86_400),
    );
}

/// A Salesforce API name: letters, digits and underscores, starting with a letter (what
/// may be put in a SOQL query without quoting).
fn is_api_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 80
}

fn within(bad: &mut impl FnMut(&str, String), path: &str, value: Duration, min: Duration, max: Duration) {
    if value < min || value > max {
        bad(path, format!("from {} to {}, found {}", format(&min), format(&max), format(&value)));
    }
}

pub(super) fn secret(bad: &mut impl FnMut(&str, String), path: &str, s: &SecretRef) {
    match (&s.env, &s.file) {
        (Some(var), None) if var.trim().is_empty() => {
            bad(&format!("{path}.env"), "name an environment variable".into())
        }
        (None, Some(f)) if f.as_os_str().is_empty() => bad(&format!("{path}.file"), "name a file".into()),
        (Some(_), None) | (None, Some(_)) => {}
        _ => bad(path, "give exactly one of env or file".into()),
    }
}

/// An http(s) URL with a host; plain http only when `loopback_http` and the host is this machine.
fn check_url(text: &str, https_unless_loopback: bool) -> Result<(), String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("expected a URL such as https://login.salesforce.com, found {text:?} ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if !https_unless_loopback || is_loopback_url(text) => {}
        "http" => return Err(format!("{text:?}: use https (plain http only for a server on this machine)")),
        other => return Err(format!("{text:?}: expected an http or https URL, not {other}:")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    Ok(())
}

/// Whether the URL's host is this machine (127.0.0.0/8, ::1 or localhost).
pub fn is_loopback_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else { return false };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn is_api_version(v: &str) -> bool {
    v.split_once('.')
        .is_some_and(|(major, minor)| minor == "0" && major.len() == 2 && major.bytes().all(|b| b.is_ascii_digit()))
}
