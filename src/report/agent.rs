//! The agent report: over a period, overall, by channel, by topic and by day, how the
//! agent did (the figures support leads read: involvement, answer, resolution hard and
//! soft, routed, abandoned, automation, CSAT, time to first reply), what customers asked
//! that it could not answer, grouped (`questions.rs`), and how each article it used did.
//! Counted from the conversations' summaries (`model::Summary`), never the conversations.
//!
//! A conversation belongs to the period in which it began. Rates are over the
//! conversations the agent took part in, except involvement (over all of them) and
//! automation (involvement × resolution, as Intercom's Fin reports it: resolved over all).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::questions::{Grouping, QuestionGroup, group};
use crate::model::{Resolution, Summary};

/// How many topics the report lists, the busiest first.
pub const REPORT_TOPICS: usize = 20;
/// How many articles the report lists, the most used first.
pub const REPORT_ARTICLES: usize = 50;
/// The longest period a report covers, in days.
pub const REPORT_MAX_DAYS: i64 = 366;

/// The figures of one slice of the conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub conversations: u64,
    /// The agent was asked about them.
    pub involved: u64,
    /// The agent answered or offered articles.
    pub answered: u64,
    /// The customer confirmed an answer.
    pub hard_resolutions: u64,
    /// The customer went quiet after an answer.
    pub soft_resolutions: u64,
    /// Handed to a person or a queue.
    pub routed: u64,
    /// Unhappy, then quiet.
    pub abandoned: u64,
    pub involvement_rate: Option<f64>,
    pub answer_rate: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub hard_resolution_rate: Option<f64>,
    pub soft_resolution_rate: Option<f64>,
    pub routed_rate: Option<f64>,
    pub abandoned_rate: Option<f64>,
    pub automation_rate: Option<f64>,
    pub csat_responses: u64,
    /// The mean rating, 1 to 5.
    pub csat_average: Option<f64>,
    /// Ratings of 4 or 5 over all ratings.
    pub csat_positive_rate: Option<f64>,
    pub median_first_reply_secs: Option<i64>,
    #[serde(skip)]
    pub(super) csat_sum: u64,
    #[serde(skip)]
    pub(super) csat_positive: u64,
    #[serde(skip)]
    pub(super) first_replies: Vec<i64>,
}

impl Figures {
    fn add(&mut self, s: &Summary) {
        self.conversations += 1;
        if s.involved {
            self.involved += 1;
            self.answered += u64::from(s.answered);
            // One outcome a conversation: how it ended, else routed if it ever was.
            match s.resolution.map(|r| r.state) {
                Some(Resolution::HardResolution) => self.hard_resolutions += 1,
                Some(Resolution::SoftResolution) => self.soft_resolutions += 1,
                Some(Resolution::Abandoned) => self.abandoned += 1,
                _ => self.routed += u64::from(s.routed),
            }
        }
        if let Some(rating) = s.csat.filter(|r| (1..=5).contains(r)) {
            self.csat_responses += 1;
            self.csat_sum += u64::from(rating);
            self.csat_positive += u64::from(rating >= 4);
        }
        if let Some(secs) = s.first_reply_secs {
            self.first_replies.push(secs);
        }
    }

    fn finish(&mut self) {
        let over = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        let resolved = self.hard_resolutions + self.soft_resolutions;
        self.involvement_rate = over(self.involved, self.conversations);
        self.answer_rate = over(self.answered, self.involved);
        self.resolution_rate = over(resolved, self.involved);
        self.hard_resolution_rate = over(self.hard_resolutions, self.involved);
        self.soft_resolution_rate = over(self.soft_resolutions, self.involved);
        self.routed_rate = over(self.routed, self.involved);
        self.abandoned_rate = over(self.abandoned, self.involved);
        self.automation_rate = over(resolved, self.conversations);
        self.csat_average = over(self.csat_sum, self.csat_responses);
        self.csat_positive_rate = over(self.csat_positive, self.csat_responses);
        self.first_replies.sort_unstable();
        self.median_first_reply_secs = median(&self.first_replies);
    }
}

/// The middle value (the mean of the two middle ones for an even count, rounded down).
fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if !n.is_multiple_of(2) => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// One day's figures, for the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    #[serde(flatten)]
    pub figures: Figures,
}

/// How one article did: how often the agent used it, and what followed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArticleFigures {
    pub url: String,
    pub title: String,
    /// Conversations whose answer cited it.
    pub cited: u64,
    /// Conversations it was offered in, to confirm.
    pub suggested: u64,
    /// Of those conversations, how many were resolved (hard or soft).
    pub resolved_after: u64,
    /// Of those, how many ended with the customer saying the articles did not help.
    pub declined_after: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub overall: Figures,
    pub by_channel: BTreeMap<String, Figures>,
    /// The busiest [`REPORT_TOPICS`] topics.
    pub by_topic: BTreeMap<String, Figures>,
    pub by_day: Vec<Day>,
    pub unanswered: Vec<QuestionGroup>,
    /// How the unanswered questions were grouped: `meaning` (the embedding model) or `words`.
    pub unanswered_grouped_by: &'static str,
    pub articles: Vec<ArticleFigures>,
}

/// Builds the report over the conversations that began in `[from, to)`, from `summaries`
/// (any order; those outside the period are skipped), the unanswered questions grouped by
/// their words.
pub fn build(from: DateTime<Utc>, to: DateTime<Utc>, summaries: impl IntoIterator<Item = Summary>) -> AgentReport {
    build_grouping(from, to, summaries, Grouping::Words)
}

/// [`build`], the unanswered questions grouped as `grouping` says.
pub fn build_grouping(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    summaries: impl IntoIterator<Item = Summary>,
    grouping: Grouping<'_>,
) -> AgentReport {
    let mut overall = Figures::default();
    let mut by_channel: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_topic: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_day: BTreeMap<NaiveDate, Figures> = BTreeMap::new();
    let mut day = from.date_naive();
    while day < to.date_naive() || (day == to.date_naive() && to.time() > chrono::NaiveTime::MIN) {
        by_day.insert(day, Figures::default());
        day = day.succ_opt().unwrap_or(day);
        if by_day.len() as i64 > REPORT_MAX_DAYS {
            break;
        }
    }
    let mut questions = Vec::new();
    let mut articles: BTreeMap<String, ArticleFigures> = BTreeMap::new();
    for s in summaries.into_iter().filter(|s| s.created_at >= from && s.created_at < to) {
        overall.add(&s);
        by_channel.entry(s.channel.as_str().to_string()).or_default().add(&s);
        for topic in &s.topics {
            by_topic.entry(topic.clone()).or_default().add(&s);
        }
        if let Some(figures) = by_day.get_mut(&s.created_at.date_naive()) {
            figures.add(&s);
        }
        questions.extend(s.unanswered.iter().cloned());
        let resolved = s.resolution.is_some_and(|r| r.state.is_resolved());
        for used in &s.articles {
            let a = articles.entry(used.url.clone()).or_default();
            a.url.clone_from(&used.url);
            a.title.clone_from(&used.title);
            a.cited += u64::from(used.cited);
            a.suggested += u64::from(used.suggested);
            a.resolved_after += u64::from(resolved);
            a.declined_after += u64::from(s.declined && used.suggested);
        }
    }
    overall.finish();
    by_channel.values_mut().for_each(Figures::finish);
    let mut topics: Vec<(String, Figures)> = by_topic.into_iter().collect();
    topics.sort_by(|a, b| b.1.conversations.cmp(&a.1.conversations).then_with(|| a.0.cmp(&b.0)));
    topics.truncate(REPORT_TOPICS);
    topics.iter_mut().for_each(|(_, f)| f.finish());
    let mut articles: Vec<ArticleFigures> = articles.into_values().collect();
    articles.sort_by(|a, b| (b.cited + b.suggested).cmp(&(a.cited + a.suggested)).then_with(|| a.url.cmp(&b.url)));
    articles.truncate(REPORT_ARTICLES);
    let (unanswered, unanswered_grouped_by) = group(&questions, grouping);
    AgentReport {
        from,
        to,
        overall,
        by_channel,
        by_topic: topics.into_iter().collect(),
        by_day: by_day
            .into_iter()
            .map(|(date, mut figures)| {
                figures.finish();
                Day { date, figures }
            })
            .collect(),
        unanswered,
        unanswered_grouped_by,
        articles,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{ArticleUse, Channel, ResolutionState};

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    fn summary(channel: Channel, day: u32, resolution: Option<Resolution>) -> Summary {
        Summary {
            channel,
            created_at: at(day, 10),
            involved: true,
            answered: true,
            resolution: resolution.map(|state| ResolutionState { state, since: at(day, 12), unhappy: false }),
            routed: resolution == Some(Resolution::RoutedToTeam),
            topics: Vec::new(),
            first_reply_secs: None,
            csat: None,
            unanswered: Vec::new(),
            articles: Vec::new(),
            declined: false,
        }
    }

    /// Nine conversations in the period and one before it, counted by hand.
    fn fixture() -> Vec<Summary> {
        use Channel::{Case, Messenger};
        use Resolution::*;
        let article = |cited| ArticleUse { url: "https://help/a".into(), title: "A".into(), cited, suggested: !cited };
        let billing = vec!["billing".to_string()];
        let shipping = vec!["shipping".to_string()];
        vec![
            Summary {
                topics: billing.clone(),
                first_reply_secs: Some(60),
                csat: Some(5),
                ..summary(Case, 1, Some(HardResolution))
            },
            Summary {
                topics: billing.clone(),
                first_reply_secs: Some(120),
                csat: Some(4),
                ..summary(Case, 1, Some(SoftResolution))
            },
            Summary {
                topics: shipping.clone(),
                first_reply_secs: Some(30),
                csat: Some(2),
                ..summary(Messenger, 2, Some(RoutedToTeam))
            },
            Summary {
                answered: false,
                unanswered: vec!["Do you ship to Iceland?".into()],
                ..summary(Messenger, 2, Some(RoutedToTeam))
            },
            Summary { topics: shipping, first_reply_secs: Some(10), ..summary(Messenger, 3, Some(Abandoned)) },
            Summary { involved: false, answered: false, ..summary(Case, 3, None) },
            Summary { topics: billing.clone(), first_reply_secs: Some(90), ..summary(Case, 4, Some(AwaitingCustomer)) },
            Summary {
                first_reply_secs: Some(20),
                declined: true,
                articles: vec![article(false)],
                unanswered: vec!["How do I export invoices to PDF?".into()],
                ..summary(Messenger, 4, Some(RoutedToTeam))
            },
            Summary {
                topics: billing,
                first_reply_secs: Some(45),
                articles: vec![article(true)],
                ..summary(Case, 5, Some(HardResolution))
            },
            Summary { csat: Some(1), ..summary(Messenger, 1, Some(HardResolution)) }
                .with_created(at(1, 0) - chrono::Duration::days(1)),
        ]
    }

    impl Summary {
        fn with_created(mut self, created_at: DateTime<Utc>) -> Summary {
            self.created_at = created_at;
            self
        }
    }

    #[test]
    fn the_figures_match_a_hand_counted_mix() {
        let report = build(at(1, 0), at(6, 0), fixture());
        let o = &report.overall;
        assert_eq!(
            (o.conversations, o.involved, o.answered, o.hard_resolutions, o.soft_resolutions, o.routed, o.abandoned),
            (9, 8, 7, 2, 1, 3, 1)
        );
        assert_eq!(o.involvement_rate, Some(8.0 / 9.0));
        assert_eq!(o.answer_rate, Some(7.0 / 8.0));
        assert_eq!(o.resolution_rate, Some(3.0 / 8.0));
        assert_eq!((o.hard_resolution_rate, o.soft_resolution_rate), (Some(2.0 / 8.0), Some(1.0 / 8.0)));
        assert_eq!((o.routed_rate, o.abandoned_rate), (Some(3.0 / 8.0), Some(1.0 / 8.0)));
        assert_eq!(o.automation_rate, Some(3.0 / 9.0));
        assert_eq!((o.csat_responses, o.csat_average, o.csat_positive_rate), (3, Some(11.0 / 3.0), Some(2.0 / 3.0)));
        assert_eq!(o.median_first_reply_secs, Some(45));

        let case = &report.by_channel["case"];
        assert_eq!((case.conversations, case.involved, case.resolution_rate), (5, 4, Some(3.0 / 4.0)));
        let chat = &report.by_channel["messenger"];
        assert_eq!((chat.conversations, chat.routed, chat.resolution_rate), (4, 3, Some(0.0)));
        let billing = &report.by_topic["billing"];
        assert_eq!(
            (billing.conversations, billing.hard_resolutions, billing.median_first_reply_secs),
            (4, 2, Some(75))
        );

        assert_eq!(report.by_day.len(), 5);
        let per_day: Vec<u64> = report.by_day.iter().map(|d| d.figures.conversations).collect();
        assert_eq!(per_day, vec![2, 2, 2, 2, 1]);

        let a = &report.articles[0];
        assert_eq!((a.cited, a.suggested, a.resolved_after, a.declined_after), (1, 1, 1, 1));
        let asked: Vec<u64> = report.unanswered.iter().map(|g| g.count).collect();
        assert_eq!(asked, vec![1, 1]);
    }

    #[test]
    fn an_empty_period_has_no_rates() {
        let report = build(at(10, 0), at(11, 0), fixture());
        assert_eq!(report.overall.conversations, 0);
        assert_eq!(report.overall.resolution_rate, None);
        assert_eq!(report.overall.median_first_reply_secs, None);
        assert_eq!(report.by_day.len(), 1);
        assert!(report.unanswered.is_empty() && report.articles.is_empty());
    }
}
