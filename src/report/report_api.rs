//! `GET /api/report?from=YYYY-MM-DD&to=YYYY-MM-DD`: the agent report (`agent.rs`) over
//! whole UTC days, `to` included (the last 30 days by default, at most
//! [`REPORT_MAX_DAYS`]), with its charts as SVG text (`charts.rs`). Read from the
//! conversations' summaries, off the async workers.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use super::admin::AdminState;
use super::agent::{AgentReport, REPORT_MAX_DAYS, build_grouping};
use super::charts;
use super::questions::{Grouping, MEANING_THRESHOLD};
use crate::store::{Store, StoreError};

/// The period a report covers by default, in days.
pub const REPORT_DEFAULT_DAYS: i64 = 30;

#[derive(serde::Deserialize)]
pub(super) struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The report over the conversations that began in `[from, to)`.
pub fn agent_report(store: &Store, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<AgentReport, StoreError> {
    agent_report_grouping(store, from, to, Grouping::Words)
}

/// [`agent_report`], the unanswered questions grouped as `grouping` says (by meaning when
/// the agent has the embedding model).
pub fn agent_report_grouping(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    grouping: Grouping<'_>,
) -> Result<AgentReport, StoreError> {
    // Read as they are counted, not gathered first: a period long past reads many.
    let mut failed = None;
    let summaries = store.summaries_since(from).map_while(|item| match item {
        Ok((_, s)) => Some(s),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let report = build_grouping(from, to, summaries, grouping);
    failed.map_or(Ok(report), Err)
}

fn day(name: &str, text: Option<&str>, default: NaiveDate) -> Result<NaiveDate, String> {
    match text {
        None | Some("") => Ok(default),
        Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            // chrono reads signed years of six digits: only four-digit years are dates here.
            .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| format!("{name}: a date as YYYY-MM-DD, found {:?}", t.chars().take(40).collect::<String>())),
    }
}

/// The period asked for, as `[from, to)` instants.
fn period(q: &PeriodQuery, today: NaiveDate) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let to = day("to", q.to.as_deref(), today)?;
    let from = day("from", q.from.as_deref(), to - Duration::days(REPORT_DEFAULT_DAYS - 1))?;
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    if (to - from).num_days() + 1 > REPORT_MAX_DAYS {
        return Err(format!("a report covers at most {REPORT_MAX_DAYS} days; {from} to {to} is longer"));
    }
    let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    Ok((start(from), start(to) + Duration::days(1)))
}

pub(super) async fn report(State(state): State<AdminState>, Query(q): Query<PeriodQuery>) -> Response {
    let (from, to) = match period(&q, Utc::now().date_naive()) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": e }))).into_response(),
    };
    let store = state.store.clone();
    let embedder = state.embedder.clone();
    let built = tokio::task::spawn_blocking(move || {
        let grouping = match &embedder {
            Some(e) => Grouping::Meaning { embedder: e.as_ref(), threshold: MEANING_THRESHOLD },
            None => Grouping::Words,
        };
        agent_report_grouping(&store, from, to, grouping)
    })
    .await;
    match built.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(report) => {
            let topics: Vec<_> = report.by_topic.iter().map(|(t, f)| (t.clone(), f.clone())).collect();
            let charts = json!({ "by_day": charts::by_day(&report.by_day), "by_topic": charts::by_topic(&topics) });
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            body["charts"] = charts;
            axum::Json(body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e }))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>) -> PeriodQuery {
        PeriodQuery { from: from.map(String::from), to: to.map(String::from) }
    }

    #[test]
    fn periods_are_whole_days_with_to_included_and_bad_ones_say_why() {
        let today: NaiveDate = "2026-03-31".parse().unwrap();
        let (from, to) = period(&q(None, None), today).unwrap();
        assert_eq!(
            (from.to_rfc3339(), to.to_rfc3339()),
            ("2026-03-02T00:00:00+00:00".into(), "2026-04-01T00:00:00+00:00".into())
        );
        let (from, to) = period(&q(Some("2026-03-05"), Some("2026-03-05")), today).unwrap();
        assert_eq!(to - from, Duration::days(1));
        assert!(period(&q(Some("2026-13-01"), None), today).unwrap_err().starts_with("from: a date as YYYY-MM-DD"));
        assert!(period(&q(Some("2026-03-06"), Some("2026-03-05")), today).unwrap_err().contains("is after"));
        assert!(period(&q(Some("2020-01-01"), None), today).unwrap_err().contains("at most 366 days"));
        assert!(period(&q(None, Some("-262144-01-01")), today).unwrap_err().starts_with("to: a date"));
        assert!(period(&q(Some("+262143-12-31"), Some("+262143-12-31")), today).is_err());
        let huge = "9".repeat(10_000);
        assert!(period(&q(None, Some(&huge)), today).unwrap_err().len() < 100);
    }
}
