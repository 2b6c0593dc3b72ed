//! The daemon's metrics, rendered in the Prometheus text format for `/metrics`.
//!
//! Counters and gauges are atomics; labelled counters keep a small map per label set; the
//! decision latency is a fixed-bucket histogram. Everything is cheap to update from the
//! cycle and safe to read from the admin server at any time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the decision-latency buckets, in seconds.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
pub struct Metrics {
    pub polls: AtomicU64,
    pub poll_errors: AtomicU64,
    pub cases_processed: AtomicU64,
    pub replies: AtomicU64,
    pub emails_sent: AtomicU64,
    pub topics_assigned: AtomicU64,
    pub outbox_pending: AtomicU64,
    pub api_used: AtomicU64,
    pub api_max: AtomicU64,
    /// (target, rule) → count.
    handovers: Mutex<BTreeMap<(String, String), u64>>,
    /// Salesforce error code → count.
    sync_errors: Mutex<BTreeMap<String, u64>>,
    /// "ok" / "failed" → count.
    reloads: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<Histogram>,
    /// (backend, "answered" / "suggested" / "cannot_help") → count.
    agent_answers: Mutex<BTreeMap<(String, &'static str), u64>>,
    pub agent_prompt_tokens: AtomicU64,
    pub agent_completion_tokens: AtomicU64,
    /// The AI service's latency, per call.
    agent_latency: Mutex<Histogram>,
    /// Resolution state reached → count.
    resolutions: Mutex<BTreeMap<String, u64>>,
    /// Visitors' ratings (CSAT) given, by rating: index 0 is 1, index 4 is 5.
    ratings: [AtomicU64; 5],
}

#[derive(Default)]
struct Histogram {
    counts: [u64; 14],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default() += 1;
}

/// Escapes a label value for the text format.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn handover(&self, target: &str, rule: &str) {
        bump(&self.handovers, (target.to_string(), rule.to_string()));
    }

    pub fn sync_error(&self, code: &str) {
        bump(&self.sync_errors, code.to_string());
    }

    /// Counts reload results; `ok` and `failed` are cumulative values from the reloader.
    pub fn set_reloads(&self, ok: u64, failed: u64) {
        let mut map = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        map.insert("ok".into(), ok);
        map.insert("failed".into(), failed);
    }

    pub fn decision_seconds(&self, seconds: f64) {
        self.latency.lock().unwrap_or_else(|p| p.into_inner()).observe(seconds);
    }

    /// Counts a visitor's rating (1 to 5; anything else is not a rating).
    pub fn rating(&self, rating: u8) {
        if let Some(n) = self.ratings.get(usize::from(rating).wrapping_sub(1)) {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Counts a conversation reaching a resolution state.
    pub fn resolution(&self, state: &str) {
        bump(&self.resolutions, state.to_string());
    }

    /// Counts an agent's answer, the tokens it cost and the AI service's latency.
    pub fn agent_answer(&self, answer: &crate::model::AgentAnswer) {
        let outcome = match (&answer.text, answer.suggestions.is_empty()) {
            (None, _) => "cannot_help",
            (Some(_), true) => "answered",
            (Some(_), false) => "suggested",
        };
        bump(&self.agent_answers, (answer.backend.clone(), outcome));
        if let Some(u) = answer.usage {
            self.agent_prompt_tokens.fetch_add(u.prompt_tokens, Ordering::Relaxed);
            self.agent_completion_tokens.fetch_add(u.completion_tokens, Ordering::Relaxed);
        }
        if let Some(ms) = answer.latency_ms {
            self.agent_latency.lock().unwrap_or_else(|p| p.into_inner()).observe(ms as f64 / 1000.0);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let simple: [(&str, &str, &str, u64); 9] = [
            ("casebridge_polls_total", "counter", "Poll cycles run.", load(&self.polls)),
            ("casebridge_poll_errors_total", "counter", "Poll cycles whose query failed.", load(&self.poll_errors)),
            ("casebridge_cases_processed_total", "counter", "Case updates decided.", load(&self.cases_processed)),
            ("casebridge_replies_total", "counter", "AI replies decided.", load(&self.replies)),
            ("casebridge_emails_sent_total", "counter", "Emails accepted by the SMTP server.", load(&self.emails_sent)),
            (
                "casebridge_topics_assigned_total",
                "counter",
                "Topics newly assigned to cases.",
                load(&self.topics_assigned),
            ),
            ("casebridge_outbox_pending", "gauge", "Actions waiting in the outbox.", load(&self.outbox_pending)),
            (
                "casebridge_salesforce_api_used",
                "gauge",
                "Daily Salesforce API requests used (Sforce-Limit-Info).",
                load(&self.api_used),
            ),
            ("casebridge_salesforce_api_limit", "gauge", "Daily Salesforce API request limit.", load(&self.api_max)),
        ];
        for (name, kind, help, value) in simple {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let used = load(&self.api_used);
        let max = load(&self.api_max);
        let _ = writeln!(
            out,
            "# HELP casebridge_salesforce_api_remaining Daily Salesforce API requests left.\n# TYPE casebridge_salesforce_api_remaining gauge\ncasebridge_salesforce_api_remaining {}",
            max.saturating_sub(used)
        );
        let _ = writeln!(
            out,
            "# HELP casebridge_handovers_total Cases handed to a person, by target and rule.\n# TYPE casebridge_handovers_total counter"
        );
        for ((target, rule), n) in self.handovers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "casebridge_handovers_total{{target=\"{}\",rule=\"{}\"}} {n}",
                label(target),
                label(rule)
            );
        }
        let _ = writeln!(
            out,
            "# HELP casebridge_sync_errors_total Refused actions and reads, by error code.\n# TYPE casebridge_sync_errors_total counter"
        );
        for (code, n) in self.sync_errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "casebridge_sync_errors_total{{code=\"{}\"}} {n}", label(code));
        }
        let _ = writeln!(
            out,
            "# HELP casebridge_rule_reloads_total Rule set reloads, by result.\n# TYPE casebridge_rule_reloads_total counter"
        );
        for (result, n) in self.reloads.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "casebridge_rule_reloads_total{{result=\"{}\"}} {n}", label(result));
        }
        self.latency.lock().unwrap_or_else(|p| p.into_inner()).render(
            &mut out,
            "casebridge_decision_seconds",
            "Time to decide one case update (rules and agent).",
        );
        let _ = writeln!(
            out,
            "# HELP casebridge_agent_answers_total Agent answers, by backend and outcome.\n# TYPE casebridge_agent_answers_total counter"
        );
        for ((backend, outcome), n) in self.agent_answers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "casebridge_agent_answers_total{{backend=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(backend)
            );
        }
        let _ = writeln!(
            out,
            "# HELP casebridge_agent_tokens_total Tokens the AI service reported, by kind.\n# TYPE casebridge_agent_tokens_total counter\n\
             casebridge_agent_tokens_total{{kind=\"prompt\"}} {}\ncasebridge_agent_tokens_total{{kind=\"completion\"}} {}",
            load(&self.agent_prompt_tokens),
            load(&self.agent_completion_tokens)
        );
        let _ = writeln!(
            out,
            "# HELP casebridge_resolutions_total Conversations the agent took part in reaching a resolution state.\n# TYPE casebridge_resolutions_total counter"
        );
        for (state, n) in self.resolutions.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "casebridge_resolutions_total{{state=\"{}\"}} {n}", label(state));
        }
        let _ = writeln!(
            out,
            "# HELP casebridge_csat_ratings_total Visitors' ratings of their conversations (CSAT), by rating.\n# TYPE casebridge_csat_ratings_total counter"
        );
        for (i, n) in self.ratings.iter().enumerate() {
            let _ = writeln!(out, "casebridge_csat_ratings_total{{rating=\"{}\"}} {}", i + 1, load(n));
        }
        self.agent_latency.lock().unwrap_or_else(|p| p.into_inner()).render(
            &mut out,
            "casebridge_agent_service_seconds",
            "Time the AI service took to answer, per call.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        m.polls.fetch_add(3, Ordering::Relaxed);
        m.handover("Tier 2 \"Support\"", "vip");
        m.sync_error("STRING_TOO_LONG");
        m.decision_seconds(0.003);
        m.decision_seconds(2.0);
        let text = m.render();
        assert!(text.contains("# TYPE casebridge_polls_total counter\ncasebridge_polls_total 3\n"), "{text}");
        assert!(text.contains(r#"casebridge_handovers_total{target="Tier 2 \"Support\"",rule="vip"} 1"#), "{text}");
        assert!(text.contains("casebridge_sync_errors_total{code=\"STRING_TOO_LONG\"} 1"));
        assert!(text.contains("casebridge_decision_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("casebridge_decision_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("casebridge_decision_seconds_count 2"));
        let mut answer = crate::model::AgentAnswer::answered("openai", "Hi".into(), 0.8, Vec::new());
        answer.usage = Some(crate::model::Usage { prompt_tokens: 900, completion_tokens: 40 });
        answer.latency_ms = Some(1_200);
        m.agent_answer(&answer);
        m.agent_answer(&crate::model::AgentAnswer::cannot_help("openai", 0.0, "no"));
        let text = m.render();
        assert!(text.contains("casebridge_agent_answers_total{backend=\"openai\",outcome=\"answered\"} 1"), "{text}");
        assert!(text.contains("casebridge_agent_answers_total{backend=\"openai\",outcome=\"cannot_help\"} 1"));
        assert!(text.contains("casebridge_agent_tokens_total{kind=\"prompt\"} 900\n"), "{text}");
        assert!(text.contains("casebridge_agent_service_seconds_bucket{le=\"2.5\"} 1"), "{text}");
        assert!(text.contains("casebridge_agent_service_seconds_count 1"));
    }
}
