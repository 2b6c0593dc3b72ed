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
}

#[derive(Default)]
struct Histogram {
    counts: [u64; 14],
    count: u64,
    sum: f64,
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
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
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
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP casebridge_decision_seconds Time to decide one case update (rules and agent).\n# TYPE casebridge_decision_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "casebridge_decision_seconds_bucket{{le=\"{bound}\"}} {}", h.counts[i]);
        }
        let _ = writeln!(out, "casebridge_decision_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "casebridge_decision_seconds_sum {}", h.sum);
        let _ = writeln!(out, "casebridge_decision_seconds_count {}", h.count);
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
    }
}
