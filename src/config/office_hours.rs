//! `messenger.office_hours`: when the team answers, in its own time zone (days, opening and
//! closing times, holidays) and how soon it usually replies. A visitor handed over to a
//! person is told when to expect a reply: within the usual time while the team is in,
//! else when the team is back.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;

/// The most holidays `office_hours` may list.
pub const HOLIDAYS_MAX: usize = 1_000;
/// The longest `reply_within`: a week.
pub const REPLY_WITHIN_MAX: Duration = Duration::from_secs(7 * 86_400);

/// When the team answers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficeHours {
    /// The team's time zone, as the IANA time zone database names it (`Europe/Paris`,
    /// `America/New_York`, `UTC`).
    pub timezone: String,
    /// The days the team works: `mon` to `sun` (Monday to Friday by default).
    #[serde(default = "weekdays")]
    pub days: Vec<String>,
    /// When the working day starts, local time (`09:00` by default).
    #[serde(default = "default_opens")]
    pub opens: String,
    /// When it ends, local time (`17:00` by default); after `opens`.
    #[serde(default = "default_closes")]
    pub closes: String,
    /// Days off, `YYYY-MM-DD`, at most 1,000.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// How soon the team usually replies while it is in, as visitors are told: 1m to 7d
    /// (`4h` by default).
    #[serde(default = "default_reply_within", with = "duration")]
    #[schemars(with = "String")]
    pub reply_within: Duration,
}

fn weekdays() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec()
}
fn default_opens() -> String {
    "09:00".into()
}
fn default_closes() -> String {
    "17:00".into()
}
fn default_reply_within() -> Duration {
    Duration::from_secs(4 * 3_600)
}

/// `office_hours`, checked: what the daemon asks of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    timezone: chrono_tz::Tz,
    days: [bool; 7],
    opens: NaiveTime,
    closes: NaiveTime,
    holidays: BTreeSet<NaiveDate>,
    pub reply_within: Duration,
}

fn weekday(name: &str) -> Option<Weekday> {
    match name.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Some(Weekday::Mon),
        "tue" | "tuesday" => Some(Weekday::Tue),
        "wed" | "wednesday" => Some(Weekday::Wed),
        "thu" | "thursday" => Some(Weekday::Thu),
        "fri" | "friday" => Some(Weekday::Fri),
        "sat" | "saturday" => Some(Weekday::Sat),
        "sun" | "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

fn shown(text: &str) -> String {
    text.chars().take(40).collect()
}

impl OfficeHours {
    /// The schedule, or every problem with the section, setting by setting.
    pub fn schedule(&self) -> Result<Schedule, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut bad = |path: &str, why: String| problems.push((format!("messenger.office_hours.{path}"), why));
        let timezone = self.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!("{:?} is not a time zone such as Europe/Paris (the IANA database's names)", shown(&self.timezone))
        });
        let mut days = [false; 7];
        for name in &self.days {
            match weekday(name) {
                Some(day) => days[day.num_days_from_monday() as usize] = true,
                None => bad("days", format!("{:?} is not a day: mon, tue, wed, thu, fri, sat or sun", shown(name))),
            }
        }
        if !days.contains(&true) {
            bad("days", "at least one day".into());
        }
        let time = |path: &str, text: &str, bad: &mut dyn FnMut(&str, String)| {
            NaiveTime::parse_from_str(text.trim(), "%H:%M")
                .map_err(|_| bad(path, format!("a time such as 09:00, found {:?}", shown(text))))
                .ok()
        };
        let opens = time("opens", &self.opens, &mut bad);
        let closes = time("closes", &self.closes, &mut bad);
        if let (Some(o), Some(c)) = (opens, closes)
            && c <= o
        {
            bad("closes", format!("after opens ({o}), found {c}"));
        }
        if self.holidays.len() > HOLIDAYS_MAX {
            bad("holidays", format!("at most {HOLIDAYS_MAX} days, found {}", self.holidays.len()));
        }
        let mut holidays = BTreeSet::new();
        for day in self.holidays.iter().take(HOLIDAYS_MAX) {
            match NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") {
                Ok(date) => {
                    holidays.insert(date);
                }
                Err(_) => bad("holidays", format!("a date such as 2026-12-25, found {:?}", shown(day))),
            }
        }
        if !(Duration::from_secs(60)..=REPLY_WITHIN_MAX).contains(&self.reply_within) {
            bad("reply_within", format!("1m to 7d, found {}", duration::format(&self.reply_within)));
        }
        match (timezone, opens, closes) {
            (Ok(timezone), Some(opens), Some(closes)) if problems.is_empty() => {
                Ok(Schedule { timezone, days, opens, closes, holidays, reply_within: self.reply_within })
            }
            (timezone, ..) => {
                if let Err(why) = timezone {
                    problems.insert(0, ("messenger.office_hours.timezone".into(), why));
                }
                Err(problems)
            }
        }
    }
}

impl Schedule {
    fn works_on(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&date)
    }

    /// Whether the team is in at `now`.
    pub fn team_in(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.timezone);
        let time = local.time();
        self.works_on(local.date_naive()) && time >= self.opens && time < self.closes
    }

    /// When the team is next in after `now` (the next working day's opening; a clock that
    /// skips that hour opens at the first instant after it). `None` when no working day
    /// comes in the next year (every day a holiday).
    pub fn back_at(&self, now: DateTime<Utc>) -> Option<DateTime<chrono_tz::Tz>> {
        let local = now.with_timezone(&self.timezone);
        (0..=366).find_map(|ahead| {
            let date = local.date_naive() + chrono::Duration::days(ahead);
            if !self.works_on(date) {
                return None;
            }
            let start = date.and_time(self.opens);
            let opening = self
                .timezone
                .from_local_datetime(&start)
                .earliest()
                .or_else(|| self.timezone.from_local_datetime(&(start + chrono::Duration::hours(1))).earliest())?;
            (opening > local).then_some(opening)
        })
    }

    /// What a visitor handed over is told to expect: a reply within the usual time, or
    /// when the team is back (`Monday 09:00 (Europe/Paris)`).
    pub fn expectation(&self, now: DateTime<Utc>, reply_time: &str, away: &str) -> String {
        if self.team_in(now) {
            return reply_time.replace("{within}", &humane(self.reply_within));
        }
        let back = self
            .back_at(now)
            .map(|at| format!("{} ({})", at.format("%A %H:%M"), self.timezone.name()))
            .unwrap_or_else(|| "later".into());
        away.replace("{back}", &back)
    }
}

/// A duration as a visitor reads it: "4 hours", "30 minutes", "2 days".
fn humane(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    let (n, unit) = match minutes {
        m if m % 1_440 == 0 => (m / 1_440, "day"),
        m if m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> Schedule {
        let hours = OfficeHours {
            timezone: "Europe/Paris".into(),
            days: weekdays(),
            opens: "09:00".into(),
            closes: "18:00".into(),
            holidays: vec!["2026-12-25".into()],
            reply_within: Duration::from_secs(4 * 3_600),
        };
        hours.schedule().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_team_is_in_on_its_days_and_hours_in_its_own_time_zone() {
        let s = paris();
        // Thursday 3 December 2026, winter: Paris is UTC+1.
        assert!(s.team_in(utc("2026-12-03T08:00:00Z")), "09:00 in Paris");
        assert!(!s.team_in(utc("2026-12-03T07:59:00Z")), "08:59 in Paris");
        assert!(!s.team_in(utc("2026-12-03T17:00:00Z")), "18:00 in Paris: closed");
        assert!(!s.team_in(utc("2026-12-05T10:00:00Z")), "a Saturday");
        assert!(!s.team_in(utc("2026-12-25T10:00:00Z")), "a holiday");
        // Summer: Paris is UTC+2.
        assert!(s.team_in(utc("2026-07-01T07:00:00Z")));
        assert!(!s.team_in(utc("2026-07-01T06:59:00Z")));
    }

    #[test]
    fn a_visitor_out_of_hours_is_told_when_the_team_is_back() {
        let s = paris();
        // Thursday 24 December, 20:00 in Paris: the 25th is a holiday, the 26th and 27th a
        // weekend, so Monday the 28th.
        let said = s.expectation(utc("2026-12-24T19:00:00Z"), "within {within}", "back {back}");
        assert_eq!(said, "back Monday 09:00 (Europe/Paris)");
        assert_eq!(s.expectation(utc("2026-12-03T10:00:00Z"), "within {within}", "back {back}"), "within 4 hours");
        // Before opening on a working day: that morning.
        let back = s.back_at(utc("2026-12-03T05:00:00Z")).unwrap();
        assert_eq!(back.format("%Y-%m-%d %H:%M").to_string(), "2026-12-03 09:00");
    }

    #[test]
    fn an_opening_in_the_hour_a_clock_skips_is_just_after_it() {
        // New York skips 02:00-03:00 on 8 March 2026.
        let hours = OfficeHours {
            timezone: "America/New_York".into(),
            days: vec!["sun".into()],
            opens: "02:30".into(),
            closes: "05:00".into(),
            holidays: Vec::new(),
            reply_within: Duration::from_secs(3_600),
        };
        let back = hours.schedule().unwrap().back_at(utc("2026-03-07T12:00:00Z")).unwrap();
        assert_eq!(back.format("%Y-%m-%d %H:%M").to_string(), "2026-03-08 03:30");
    }

    #[test]
    fn every_mistake_is_named_by_its_setting() {
        let hours = OfficeHours {
            timezone: "Mars/Olympus".into(),
            days: vec!["funday".into()],
            opens: "9am".into(),
            closes: "25:00".into(),
            holidays: vec!["25/12".into()],
            reply_within: Duration::from_secs(30 * 86_400),
        };
        let problems = hours.schedule().unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "messenger.office_hours.timezone",
                "messenger.office_hours.days",
                "messenger.office_hours.days",
                "messenger.office_hours.opens",
                "messenger.office_hours.closes",
                "messenger.office_hours.holidays",
                "messenger.office_hours.reply_within"
            ],
            "{problems:?}"
        );
        let backwards = OfficeHours { opens: "18:00".into(), closes: "09:00".into(), ..hours.clone() };
        let backwards = OfficeHours {
            timezone: "UTC".into(),
            days: weekdays(),
            holidays: Vec::new(),
            reply_within: Duration::from_secs(60),
            ..backwards
        };
        assert_eq!(backwards.schedule().unwrap_err()[0].0, "messenger.office_hours.closes");
        assert_eq!(humane(Duration::from_secs(90 * 60)), "90 minutes");
        assert_eq!(humane(Duration::from_secs(86_400)), "1 day");
    }
}
