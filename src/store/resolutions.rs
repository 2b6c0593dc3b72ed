//! The resolution figures over time, for the admin page: per UTC day, how many of the
//! conversations the agent took part in reached each resolution, and the share resolved,
//! from the conversations' summaries.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Result, Store};
use crate::model::Resolution;

/// The longest a resolution may come after a conversation's last activity, in days: the
/// longest `quiet_after` (30 days), and a day's margin.
const RESOLUTION_LAG_DAYS: i64 = 31;

/// One day's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResolutionDay {
    pub date: NaiveDate,
    /// Resolution state → conversations that reached it that day (and are in it still).
    pub states: BTreeMap<&'static str, u64>,
    /// Soft and hard resolutions over the conversations settled that day (resolved,
    /// routed or abandoned); `None` when none was.
    pub resolution_rate: Option<f64>,
    /// Hard resolutions (the customer confirmed) over the same: reported apart from the
    /// soft ones (silence after an answer or suggestions).
    pub confirmed_rate: Option<f64>,
    /// Soft resolutions over the same.
    pub soft_rate: Option<f64>,
}

impl Store {
    /// The last `days` days up to `now`, oldest first, from every stored conversation.
    pub fn resolutions_by_day(&self, now: DateTime<Utc>, days: u32) -> Result<Vec<ResolutionDay>> {
        let first = now.date_naive() - chrono::Duration::days(i64::from(days.max(1)) - 1);
        let mut by_day: BTreeMap<NaiveDate, ResolutionDay> = BTreeMap::new();
        for offset in 0..days.max(1) {
            let date = first + chrono::Duration::days(i64::from(offset));
            by_day.insert(date, ResolutionDay { date, ..ResolutionDay::default() });
        }
        // A resolution comes at most `quiet_after` (30 days at most) after the
        // conversation's last activity: the summaries of those active since then hold
        // every resolution of the period. No conversation is read.
        let since =
            first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - chrono::Duration::days(RESOLUTION_LAG_DAYS);
        for item in self.summaries_since(since) {
            let (_, summary) = item?;
            let Some(r) = summary.resolution else { continue };
            if let Some(day) = by_day.get_mut(&r.since.date_naive()) {
                *day.states.entry(r.state.as_str()).or_default() += 1;
            }
        }
        for day in by_day.values_mut() {
            let count = |s: Resolution| day.states.get(s.as_str()).copied().unwrap_or(0);
            let resolved = count(Resolution::SoftResolution) + count(Resolution::HardResolution);
            let settled = resolved + count(Resolution::RoutedToTeam) + count(Resolution::Abandoned);
            let rate = |n: u64| (settled > 0).then(|| n as f64 / settled as f64);
            day.resolution_rate = rate(resolved);
            day.confirmed_rate = rate(count(Resolution::HardResolution));
            day.soft_rate = rate(count(Resolution::SoftResolution));
        }
        Ok(by_day.into_values().collect())
    }
}
